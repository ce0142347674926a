//! `webphone`: the command-line front end of the `webphone` crate.
//!
//! ```text
//! webphone register --server ws://127.0.0.1:5080 --user alice --password secret \
//!     --domain example.com --duration 5 --json-events --report report.json
//! ```
//!
//! `register` connects (failing over between `--server`s), registers, prints
//! every event, stays registered for `--duration` seconds (default: until
//! Ctrl-C), unregisters and exits 0. It exits 1 with a one-line reason when
//! registration fails or does not succeed within `--timeout`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use webphone::{Event, Phone, PhoneConfig, TlsConfig};

#[derive(Parser)]
#[command(name = "webphone", version, about = "A headless SIP-over-WebSocket phone")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register, stay registered, unregister.
    Register(RegisterArgs),
}

#[derive(Args)]
struct Account {
    /// WebSocket server (ws:// or wss://); repeat for failover, most preferred first.
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    /// SIP user (the user part of the address of record).
    #[arg(long)]
    user: String,
    /// Password (or set WEBPHONE_PASSWORD, which keeps it out of the process list).
    #[arg(long, env = "WEBPHONE_PASSWORD", hide_env_values = true)]
    password: String,
    /// SIP domain.
    #[arg(long)]
    domain: String,
    /// Digest user name, when it differs from --user.
    #[arg(long)]
    auth_user: Option<String>,
    /// Registration expiry to ask for, in seconds.
    #[arg(long, default_value_t = 600)]
    expires: u32,
    /// Accept any TLS certificate on wss:// (lab servers only: no authentication).
    #[arg(long)]
    insecure_skip_tls_verify: bool,
}

#[derive(Args)]
struct RegisterArgs {
    #[command(flatten)]
    account: Account,
    /// Stay registered this many seconds, then unregister and exit (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Give up when not registered within this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Print events as one JSON object per line.
    #[arg(long)]
    json_events: bool,
    /// Write a JSON report here at exit: {"registered": bool, "events": [...]}.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Register(args) => register(args).await,
    }
}

fn config(account: &Account) -> Result<PhoneConfig, webphone::Error> {
    let mut b = PhoneConfig::builder()
        .user(&account.user)
        .password(account.password.as_str())
        .domain(&account.domain)
        .register_expires(account.expires);
    for s in &account.servers {
        b = b.server(s);
    }
    if let Some(a) = &account.auth_user {
        b = b.auth_user(a);
    }
    if account.insecure_skip_tls_verify {
        b = b.tls(TlsConfig::dangerous_accept_any_certificate());
    }
    b.build()
}

/// Prints events and remembers them for the report.
struct Printer {
    json: bool,
    started: Instant,
    events: Vec<Value>,
}

impl Printer {
    fn print(&mut self, event: &Event) {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        let mut value =
            serde_json::to_value(event).unwrap_or_else(|e| json!({ "event": "unprintable", "error": e.to_string() }));
        if let Value::Object(map) = &mut value {
            map.insert("at_ms".into(), json!(epoch_ms()));
            map.insert("elapsed_ms".into(), json!(elapsed_ms));
        }
        if self.json {
            println!("{value}");
        } else {
            println!("[{:>8.3}s] {}", elapsed_ms as f64 / 1000.0, describe(event));
        }
        let _ = std::io::stdout().flush();
        self.events.push(value);
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn describe(event: &Event) -> String {
    match event {
        Event::Connected { server } => format!("connected to {server}"),
        Event::Disconnected { server, reason, retry_in_ms } => match retry_in_ms {
            Some(ms) => format!("disconnected from {server}: {reason} (reconnecting in {ms} ms)"),
            None => format!("disconnected from {server}: {reason}"),
        },
        Event::ConnectFailed { server, reason, retry_in_ms, next_server } => {
            format!("cannot connect to {server}: {reason} (next: {next_server} in {retry_in_ms} ms)")
        }
        Event::Registered { server, expires } => format!("registered via {server} for {expires} s"),
        Event::Unregistered { reason, .. } => format!("unregistered ({reason})"),
        Event::RegistrationFailed { status, reason, retry_in_ms, .. } => {
            let status = status.map_or("-".to_string(), |s| s.to_string());
            match retry_in_ms {
                Some(ms) => format!("registration failed: {status} {reason} (retrying in {ms} ms)"),
                None => format!("registration failed: {status} {reason}"),
            }
        }
        Event::MalformedMessage { why } => format!("malformed message dropped: {why}"),
        Event::Stopped => "stopped".to_string(),
        other => format!("{other:?}"),
    }
}

async fn register(args: RegisterArgs) -> ExitCode {
    let config = match config(&args.account) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let phone = Phone::new(config);
    let mut events = phone.events();
    let mut printer = Printer { json: args.json_events, started: Instant::now(), events: Vec::new() };
    if let Err(e) = phone.start() {
        return fail(&e.to_string());
    }
    if std::io::stderr().is_terminal() && !args.json_events {
        eprintln!("registering {}@{} ...", args.account.user, args.account.domain);
    }

    let register_deadline = tokio::time::sleep(Duration::from_secs_f64(args.timeout.max(0.0)));
    tokio::pin!(register_deadline);
    let mut failure: Option<String> = None;
    let mut registered_once = false;
    let mut stay: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut last_problem = String::from("no answer");
    loop {
        let stay_done = async {
            match stay.as_mut() {
                Some(s) => s.as_mut().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                printer.print(&ev);
                match &ev {
                    Event::Registered { .. } if !registered_once => {
                        registered_once = true;
                        if let Some(secs) = args.duration {
                            stay = Some(Box::pin(tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0)))));
                        }
                    }
                    Event::RegistrationFailed { status, reason, retry_in_ms: None, .. } => {
                        let status = status.map_or(String::new(), |s| format!("{s} "));
                        failure = Some(format!("registration failed: {status}{reason}"));
                        break;
                    }
                    Event::RegistrationFailed { status, reason, .. } => {
                        last_problem = format!("{} {reason}", status.map_or(String::new(), |s| s.to_string()));
                    }
                    Event::ConnectFailed { server, reason, .. } => last_problem = format!("{server}: {reason}"),
                    _ => {}
                }
            }
            _ = &mut register_deadline, if !registered_once => {
                failure = Some(format!("not registered within {} s ({last_problem})", args.timeout));
                break;
            }
            _ = stay_done => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let registered = registered_once && failure.is_none();
    let _ = phone.stop().await;
    while let Some(ev) = events.recv().await {
        printer.print(&ev);
    }
    if let Some(path) = &args.report {
        let report = json!({ "registered": registered, "events": printer.events, "error": failure });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            return fail(&format!("cannot write report {}: {e}", path.display()));
        }
    }
    match failure {
        Some(reason) => fail(&reason),
        None => ExitCode::SUCCESS,
    }
}

fn fail(reason: &str) -> ExitCode {
    eprintln!("webphone: {reason}");
    ExitCode::FAILURE
}
