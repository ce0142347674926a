//! The `phone` verb: a registered phone driven by JSON lines.
//!
//! Each line on stdin is one [`webphone::Action`] (`{"action":"call",
//! "target":"sip:bob@example.com"}`), optionally with an `"id"`; each event
//! is printed as one JSON object per line, and each action's outcome as
//! `{"event":"action_result","id":...,"action":"call","ok":true,"call":1}` or
//! `{"event":"action_result","id":...,"ok":false,"error":{"kind":"...",
//! "message":"..."}}`. `{"action":"quit"}`, the end of stdin or Ctrl-C
//! hangs up, unregisters and exits. Call and answer actions without an
//! `"audio"` use the audio of the command line (`--tone`, `--play`,
//! `--record`).

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use webphone::control::wire::{self, Request};
use webphone::{CallKey, Event, Phone};

use crate::report::Recorder;
use crate::{Output, PhoneArgs, config, finish, start_registered};

pub async fn run(args: PhoneArgs) -> Result<(), String> {
    let phone = Phone::new(config(&args.account, Some(&args.audio))?);
    let mut rec = Recorder::new(&phone, "phone", true, false);
    let output = Output { json_events: true, report: args.report.clone() };
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let (answer_tx, mut answer_rx) = tokio::sync::mpsc::unbounded_channel::<CallKey>();
        let mut calls_audio = 0usize;
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let line = match line {
                        Ok(Some(line)) => line,
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(format!("reading stdin: {e}")),
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    match wire::parse_request(&line) {
                        Request::Quit { id } => {
                            rec.print_json(json!({"event": "action_result", "id": id, "action": "quit", "ok": true}));
                            return Ok(());
                        }
                        Request::Bad { id, message } => rec.print_json(wire::bad_request(id, &message)),
                        Request::Action { id, mut action } => {
                            if !wire::has_audio(&line) {
                                wire::give_audio(&mut action, args.audio.setup(calls_audio));
                                calls_audio += 1;
                            }
                            let name = action.name();
                            rec.print_json(wire::action_result(id, name, phone.execute(*action).await));
                        }
                    }
                }
                ev = rec.next() => match ev {
                    None => return Ok(()),
                    Some(Event::CallIncoming { call }) => {
                        if let Some(after) = args.answer_after {
                            let tx = answer_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs_f64(after.max(0.0))).await;
                                let _ = tx.send(call.key);
                            });
                        }
                    }
                    Some(_) => {}
                },
                Some(key) = answer_rx.recv() => {
                    let audio = args.audio.setup(calls_audio);
                    calls_audio += 1;
                    if let Err(e) = phone.answer_with(key, audio).await {
                        rec.print_json(wire::failure(None, Some("answer"), e.kind(), &e.to_string()));
                    }
                }
                _ = crate::interrupted() => return Ok(()),
            }
        }
    }
    .await;
    finish(&phone, rec, &output, result).await
}
