//! A voice bot: registers, answers every call after a moment, plays a WAV
//! prompt, listens (the level of what the caller says, once a second),
//! hangs up after a while and prints the call's final figures.
//!
//! ```text
//! cargo run --example voice_bot -- --server wss://pbx.example.com/ws \
//!     --user bot --password secret --domain example.com --prompt hello.wav
//! ```
//!
//! Each call runs in its own task on a [`webphone::Call`] handle with its
//! own event stream: no map of calls to keep.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use webphone::media::app_sink_channel;
use webphone::{AudioSetup, Call, Event, Phone, PhoneConfig, ReceiveAudio, SendAudio};

#[derive(Parser)]
struct Args {
    /// WebSocket server (ws:// or wss://).
    #[arg(long)]
    server: String,
    #[arg(long)]
    user: String,
    #[arg(long, env = "WEBPHONE_PASSWORD", hide_env_values = true)]
    password: String,
    #[arg(long)]
    domain: String,
    /// The prompt to play (any WAV: resampled to 48 kHz mono).
    #[arg(long)]
    prompt: PathBuf,
    /// Answer this many seconds after a call starts ringing.
    #[arg(long, default_value_t = 1.0)]
    answer_after: f64,
    /// Hang up this many seconds after answering.
    #[arg(long, default_value_t = 20.0)]
    talk_for: f64,
    /// Use loopback addresses for media (local labs).
    #[arg(long)]
    allow_loopback: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = PhoneConfig::builder()
        .server(&args.server)
        .user(&args.user)
        .password(args.password.as_str())
        .domain(&args.domain)
        .allow_loopback(args.allow_loopback)
        .build()?;
    let phone = Phone::new(config);
    let mut events = phone.events();
    phone.start()?;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Registered { server, .. }) => println!("registered via {server}"),
                Some(Event::RegistrationFailed { reason, retry_in_ms: None, .. }) => return Err(reason.into()),
                Some(Event::CallIncoming { call }) => {
                    println!("{}: call from {}", call.key, call.remote.uri);
                    let call = phone.call_handle(call.key);
                    tokio::spawn(serve(call, args.prompt.clone(), args.answer_after, args.talk_for));
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    phone.stop().await?;
    Ok(())
}

/// One call: answer, play the prompt, report the caller's level every
/// second, hang up, print the final figures.
async fn serve(call: Call, prompt: PathBuf, answer_after: f64, talk_for: f64) {
    let mut events = call.events();
    tokio::time::sleep(Duration::from_secs_f64(answer_after)).await;
    // 50 frames (one second) of what the caller says, for the application to read.
    let (sink, mut heard) = app_sink_channel(50);
    let audio = AudioSetup {
        send: SendAudio::WavFile { path: prompt, looping: false },
        receive: ReceiveAudio::App(sink),
        ..Default::default()
    };
    if let Err(e) = call.answer_with(audio).await {
        println!("{}: could not answer: {e}", call.key());
        return;
    }
    let hang_up = tokio::time::sleep(Duration::from_secs_f64(talk_for));
    tokio::pin!(hang_up);
    let mut second = vec![0i16; 48_000];
    let (mut listening, mut hung_up) = (true, false);
    loop {
        tokio::select! {
            n = heard.recv_frame(&mut second), if listening => {
                if n == 0 {
                    listening = false; // the call's media is gone; its CallEnded follows
                    continue;
                }
                let rms = (second[..n].iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n as f64).sqrt();
                println!("{}: caller level {:.1} dBFS", call.key(), 20.0 * (rms.max(1.0) / 32768.0).log10());
            }
            event = events.recv() => match event {
                Some(Event::CallEnded { call: info, stats }) => {
                    let end = info.end.map(|e| format!("{:?}: {}", e.by, e.reason)).unwrap_or_default();
                    println!("{}: ended ({end})", info.key);
                    if let Some(s) = stats {
                        println!(
                            "{}: {} packets in, {} out, loss {:.1} %, jitter {:.1} ms, codec {}",
                            info.key,
                            s.rx_packets,
                            s.tx_packets,
                            s.loss * 100.0,
                            s.jitter_ms,
                            s.codec.as_deref().unwrap_or("-")
                        );
                    }
                    return;
                }
                Some(_) => {}
                None => return,
            },
            _ = &mut hang_up, if !hung_up => {
                hung_up = true;
                let _ = call.hangup().await;
            }
        }
    }
}
