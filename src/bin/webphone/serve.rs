//! The `serve` verb: a registered phone behind the library's control
//! server (`webphone::control`): programs and pages on this machine drive
//! it over `ws://127.0.0.1:PORT/control?token=T` in the action and event
//! vocabulary of the `phone` verb, and a CRM embeds `/nxcloud`, `/mycc` or
//! `/max` as its iframe in place of that vendor's widget.
//!
//! Prints `{"event":"serving","url":"http://127.0.0.1:PORT"}` once it
//! listens (and, with `--json-events`, every event), and runs until Ctrl-C
//! or SIGTERM.

use serde_json::json;
use webphone::Phone;
use webphone::control::{ControlConfig, ControlServer};

use crate::report::Recorder;
use crate::{Output, ServeArgs, config, finish, start_registered};

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let phone = Phone::new(config(&args.account, Some(&args.audio), args.history.as_deref())?);
    let mut rec = Recorder::new(&phone, "serve", args.output.json_events, false);
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let audio = args.audio.clone();
        let count = std::sync::atomic::AtomicUsize::new(0);
        let mut control = ControlConfig::new(args.token.as_str())
            .default_audio(move || audio.setup(count.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        control.listen = args.listen;
        if let Some(dir) = &args.recordings {
            control = control.recordings(dir);
        }
        let server = ControlServer::start(phone.clone(), control).await.map_err(|e| e.to_string())?;
        rec.print_json(json!({"event": "serving", "url": server.url()}));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("listening for SIGTERM: {e}"))?;
        let outcome = loop {
            tokio::select! {
                ev = rec.next() => if ev.is_none() { break Ok(()) },
                _ = crate::interrupted() => break Ok(()),
                _ = term.recv() => break Ok(()),
            }
        };
        server.stop().await;
        outcome
    }
    .await;
    finish(&phone, rec, &Output { json_events: args.output.json_events, report: args.output.report.clone() }, result)
        .await
}
