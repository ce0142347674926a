//! `webphone`: the command-line front end of the `webphone` crate.
//!
//! ```text
//! webphone register --server ws://127.0.0.1:5080 --user alice --password secret --domain example.com
//! webphone call 1002 --server ... --allow-loopback --tone 440 --duration 5 --report report.json
//! webphone answer --server ... --answer-after 1 --max-calls 1 --record heard.wav
//! webphone call 1002 --server ... --hold-at 2 --resume-at 4 --transfer-to 1003 --transfer-at 6
//! webphone phone --server ... --allow-loopback   # JSON actions in on stdin, JSON events out
//! webphone serve --server ... --token T           # the same over ws://127.0.0.1:PORT/control, and the iframe pages
//! webphone demo          # two phones on loopback through a built-in relay: no server needed
//! ```
//!
//! Every verb prints each event (one JSON object per line with
//! `--json-events`), writes a JSON report with `--report FILE`, and exits
//! non-zero with a one-line reason when it failed: registration failed, or
//! (for `call` / `answer` / `demo`) a call was not confirmed or no audio was
//! received. When the phone gives up (a permanent failure: a certificate
//! that fails verification, a refused subprotocol, a 403) it exits at once.

mod relay;
use relay::loopback_media;
mod phone;
mod report;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use report::{Outcome, Recorder};
use webphone::media::{AudioSetup, ReceiveAudio, SendAudio};
use webphone::{CallKey, CallOptions, DtmfMethod, DtmfOptions, Event, Phone, PhoneConfig, TlsConfig};

#[derive(Parser)]
#[command(name = "webphone", version, about = "A headless SIP-over-WebSocket + WebRTC phone")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register, stay registered, unregister.
    Register(RegisterArgs),
    /// Place a call, play audio into it, record what comes back.
    Call(CallArgs),
    /// Wait for calls and answer them.
    Answer(AnswerArgs),
    /// Register and stay up, driven by JSON actions on stdin (one per line),
    /// printing every event and each action's result as JSON lines.
    Phone(PhoneArgs),
    /// Register and serve the phone on a local WebSocket (`/control?token=`,
    /// the `phone` verb's JSON vocabulary) and the pages that replace the
    /// NXCloud, myCC and NICE MAX iframe widgets (`/nxcloud`, `/mycc`, `/max`).
    Serve(ServeArgs),
    /// Two phones in this process call each other through a built-in
    /// loopback relay, with real WebRTC audio: no server needed.
    Demo(DemoArgs),
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
    #[arg(long, conflicts_with = "ca_file")]
    insecure_skip_tls_verify: bool,
    /// Verify wss:// servers against the CA certificates in this PEM file
    /// (a lab's or a PBX's own CA) instead of the public roots.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Give up when not registered within this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(Args)]
struct Output {
    /// Print events as one JSON object per line.
    #[arg(long)]
    json_events: bool,
    /// Write a JSON report here at exit.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct Audio {
    /// Use loopback addresses for media (tests, local labs), like Chromium's
    /// --allow-loopback-in-peer-connection. Media binds 127.0.0.1 only then.
    #[arg(long)]
    allow_loopback: bool,
    /// Send a tone of this frequency (Hz).
    #[arg(long, conflicts_with = "play")]
    tone: Option<f64>,
    /// Send this WAV file (looped).
    #[arg(long)]
    play: Option<PathBuf>,
    /// Record what we hear to this WAV file (48 kHz mono).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Play this WAV file (looped) to the far end while we hold the call
    /// (default: silence).
    #[arg(long)]
    hold_music: Option<PathBuf>,
}

impl Audio {
    fn setup(&self, call_index: usize) -> AudioSetup {
        let send = match (&self.tone, &self.play) {
            (Some(hz), _) => SendAudio::Tone { frequency_hz: *hz, level_dbfs: -12.0 },
            (None, Some(path)) => SendAudio::WavFile { path: path.clone(), looping: true },
            (None, None) => SendAudio::Silence,
        };
        let receive = match &self.record {
            Some(path) if call_index == 0 => ReceiveAudio::WavFile(path.clone()),
            Some(path) => ReceiveAudio::WavFile(numbered(path, call_index)),
            None => ReceiveAudio::Discard,
        };
        let hold = self.hold_music.as_ref().map(|path| SendAudio::WavFile { path: path.clone(), looping: true });
        AudioSetup { send, receive, hold, ..Default::default() }
    }
}

/// `heard.wav` → `heard-2.wav` for the second call.
fn numbered(path: &std::path::Path, index: usize) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-{}{ext}", index + 1))
}

/// DTMF to send on each call once it is answered.
#[derive(Args, Clone)]
struct DtmfArgs {
    /// Send these DTMF digits on the call (0-9 * # A-D; `,` pauses 2 s).
    #[arg(long)]
    dtmf: Option<String>,
    /// Seconds after the answer to send them.
    #[arg(long, default_value_t = 1.0)]
    dtmf_at: f64,
    /// How: auto (RFC 4733 when negotiated, else INFO), rfc4733, info or inband.
    #[arg(long, default_value = "auto")]
    dtmf_method: DtmfMethod,
}

/// Call control at set times after each call is answered (for one-shot test calls).
#[derive(Args, Clone, Default)]
struct ControlArgs {
    /// Hold the call this many seconds after the answer.
    #[arg(long)]
    hold_at: Option<f64>,
    /// Resume it this many seconds after the answer.
    #[arg(long)]
    resume_at: Option<f64>,
    /// Transfer the call to this target (blind: REFER)...
    #[arg(long)]
    transfer_to: Option<String>,
    /// ... this many seconds after the answer.
    #[arg(long, default_value_t = 2.0)]
    transfer_at: f64,
}

#[derive(Args)]
struct RegisterArgs {
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    output: Output,
    /// Stay registered this many seconds, then unregister and exit (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
}

#[derive(Args)]
struct CallArgs {
    /// Who to call: a number or user in the domain, user@host, or a sip:/tel: URI.
    target: String,
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    audio: Audio,
    #[command(flatten)]
    output: Output,
    /// Hang up this many seconds after the answer (default: wait for the far end).
    #[arg(long)]
    duration: Option<f64>,
    /// Extra INVITE header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Keep a history of the calls in this SQLite database (created if need be).
    #[arg(long, value_name = "DB")]
    history: Option<PathBuf>,
    #[command(flatten)]
    dtmf: DtmfArgs,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Args)]
struct AnswerArgs {
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    audio: Audio,
    #[command(flatten)]
    output: Output,
    /// Answer this many seconds after a call starts ringing.
    #[arg(long, default_value_t = 0.0)]
    answer_after: f64,
    /// Exit after this many calls have ended (default: until Ctrl-C).
    #[arg(long)]
    max_calls: Option<usize>,
    /// Keep a history of the calls in this SQLite database (created if need be).
    #[arg(long, value_name = "DB")]
    history: Option<PathBuf>,
    /// Hang up this many seconds after answering (default: wait for the far end).
    #[arg(long)]
    duration: Option<f64>,
    #[command(flatten)]
    dtmf: DtmfArgs,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Args)]
struct PhoneArgs {
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    audio: Audio,
    /// Write a JSON report here at exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Answer incoming calls this many seconds after they start ringing
    /// (default: only when an `answer` action says so).
    #[arg(long)]
    answer_after: Option<f64>,
    /// Keep a history of the calls in this SQLite database (created if need be).
    #[arg(long, value_name = "DB")]
    history: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    account: Account,
    #[command(flatten)]
    audio: Audio,
    #[command(flatten)]
    output: Output,
    /// Listen here (loopback addresses only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// The token clients must give (`?token=`); or set WEBPHONE_CONTROL_TOKEN.
    #[arg(long, env = "WEBPHONE_CONTROL_TOKEN", hide_env_values = true)]
    token: String,
    /// Write the recordings a client asks for without a file name (a
    /// widget's record button) into this directory.
    #[arg(long, value_name = "DIR")]
    recordings: Option<PathBuf>,
    /// Keep a history of the calls in this SQLite database (created if need be).
    #[arg(long, value_name = "DB")]
    history: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    /// How long the demo call lasts once answered, in seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    #[command(flatten)]
    output: Output,
}

/// Resolves once Ctrl-C was pressed. The signal is listened for once, for
/// the process's life, and remembered: a Ctrl-C that arrives between two
/// passes of a loop is not lost (a fresh `ctrl_c()` in each pass would
/// miss it: tokio drops a signal nobody is listening for).
async fn interrupted() {
    static INTERRUPTED: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> = std::sync::OnceLock::new();
    let mut rx = INTERRUPTED
        .get_or_init(|| {
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    tx.send_replace(true);
                }
            });
            rx
        })
        .clone();
    let _ = rx.wait_for(|pressed| *pressed).await;
}

#[tokio::main]
async fn main() -> ExitCode {
    // Start listening for Ctrl-C before anything else.
    tokio::spawn(interrupted());
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Register(args) => register(args).await,
        Command::Call(args) => call(args).await,
        Command::Answer(args) => answer(args).await,
        Command::Phone(args) => phone::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Demo(args) => demo(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("webphone: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn config(account: &Account, audio: Option<&Audio>, history: Option<&std::path::Path>) -> Result<PhoneConfig, String> {
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
    if let Some(path) = &account.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        b = b.tls(
            TlsConfig::with_root_certificates_pem(&pem).map_err(|e| format!("--ca-file {}: {e}", path.display()))?,
        );
    }
    if let Some(audio) = audio {
        if audio.allow_loopback {
            b = loopback_media(b);
        }
        // The calls a transfer gives us (placed on a REFER, or replacing
        // one of ours) send and record like the others.
        let audio = audio.clone();
        let index = std::sync::atomic::AtomicUsize::new(1);
        b = b.transfer_audio(move |_| audio.setup(index.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    }
    if let Some(path) = history {
        b = b.history(path);
    }
    b.build().map_err(|e| e.to_string())
}

/// Starts `phone` and waits until it is registered (or fails).
async fn start_registered(phone: &Phone, rec: &mut Recorder, timeout: f64) -> Result<(), String> {
    phone.start().map_err(|e| e.to_string())?;
    let deadline = tokio::time::sleep(Duration::from_secs_f64(timeout.max(0.0)));
    tokio::pin!(deadline);
    let mut last_problem = String::from("no answer");
    loop {
        tokio::select! {
            ev = rec.next() => match ev {
                None => return Err("the phone stopped".into()),
                Some(Event::Registered { .. }) => {
                    rec.registered = true;
                    return Ok(());
                }
                Some(ev) => {
                    if let Some(why) = given_up(&ev) {
                        return Err(why);
                    }
                    match ev {
                        Event::RegistrationFailed { status, reason, .. } => {
                            last_problem = format!("{} {reason}", status.map_or(String::new(), |s| s.to_string()));
                        }
                        Event::ConnectFailed { server, reason, .. } => last_problem = format!("{server}: {reason}"),
                        _ => {}
                    }
                }
            },
            _ = &mut deadline => return Err(format!("not registered within {timeout} s ({last_problem})")),
            _ = interrupted() => return Err("interrupted".into()),
        }
    }
}

/// The reason to exit at once when `ev` says the phone stopped trying:
/// every server failed permanently (a certificate that fails verification,
/// a refused subprotocol), or the registrar refused us for good (403,
/// wrong credentials).
fn given_up(ev: &Event) -> Option<String> {
    match ev {
        Event::ConnectFailed { server, reason, kind, retry_in_ms: None, .. } => {
            Some(format!("cannot connect to {server} ({kind}): {reason}"))
        }
        Event::RegistrationFailed { status, reason, kind, retry_in_ms: None, .. } => {
            let status = status.map_or(String::new(), |s| format!("{s} "));
            Some(format!("registration failed ({kind}): {status}{reason}"))
        }
        _ => None,
    }
}

async fn finish(phone: &Phone, mut rec: Recorder, output: &Output, result: Result<(), String>) -> Result<(), String> {
    let _ = phone.stop().await;
    while let Some(ev) = rec.next().await {
        let _ = ev;
    }
    let result = result.and_then(|()| match rec.outcome() {
        Outcome::Ok => Ok(()),
        Outcome::Failed(why) => Err(why),
    });
    if let Some(path) = &output.report {
        rec.write_report(path, result.as_ref().err().map(String::as_str))?;
    }
    result
}

async fn register(args: RegisterArgs) -> Result<(), String> {
    let phone = Phone::new(config(&args.account, None, None)?);
    let mut rec = Recorder::new(&phone, "register", args.output.json_events, false);
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let stay = async {
            match args.duration {
                Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stay);
        loop {
            tokio::select! {
                ev = rec.next() => match ev {
                    None => return Ok(()),
                    Some(ev) => if let Some(why) = given_up(&ev) { return Err(why) },
                },
                _ = &mut stay => return Ok(()),
                _ = interrupted() => return Ok(()),
            }
        }
    }
    .await;
    finish(&phone, rec, &args.output, result).await
}

fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, value) = h.split_once(':').ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

async fn call(args: CallArgs) -> Result<(), String> {
    let headers = args.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    let phone = Phone::new(config(&args.account, Some(&args.audio), args.history.as_deref())?);
    let mut rec = Recorder::new(&phone, "call", args.output.json_events, true);
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let options = CallOptions { headers, audio: args.audio.setup(0), ..Default::default() };
        let key = phone.call(&args.target, options).await.map_err(|e| e.to_string())?.key();
        rec.expect_call(key);
        let plan = Plan {
            answering: None,
            duration: args.duration,
            max_calls: Some(1),
            dtmf: args.dtmf,
            control: args.control,
        };
        run_calls(&phone, &mut rec, plan).await
    }
    .await;
    finish(&phone, rec, &args.output, result).await
}

async fn answer(args: AnswerArgs) -> Result<(), String> {
    let phone = Phone::new(config(&args.account, Some(&args.audio), args.history.as_deref())?);
    let mut rec = Recorder::new(&phone, "answer", args.output.json_events, true);
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let answering =
            Answering { after: Duration::from_secs_f64(args.answer_after.max(0.0)), audio: args.audio.clone() };
        let plan = Plan {
            answering: Some(answering),
            duration: args.duration,
            max_calls: args.max_calls,
            dtmf: args.dtmf,
            control: args.control,
        };
        run_calls(&phone, &mut rec, plan).await
    }
    .await;
    finish(&phone, rec, &args.output, result).await
}

/// How incoming calls are answered.
struct Answering {
    after: Duration,
    audio: Audio,
}

/// What `call` and `answer` do with their calls.
struct Plan {
    /// Answer incoming calls (else only follow the call placed).
    answering: Option<Answering>,
    /// Hang each call up this long after its answer.
    duration: Option<f64>,
    /// Exit once this many calls have ended and none is left.
    max_calls: Option<usize>,
    dtmf: DtmfArgs,
    control: ControlArgs,
}

/// Something to do to a call at a set time.
enum Due {
    Answer,
    Hangup,
    Dtmf,
    Hold,
    Resume,
    Transfer(String),
}

/// Sends `what` for `call` on `tx` after `secs` seconds.
fn schedule(tx: &tokio::sync::mpsc::UnboundedSender<(CallKey, Due)>, call: CallKey, secs: f64, what: Due) {
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        let _ = tx.send((call, what));
    });
}

/// Follows calls until `max_calls` have ended and none is left (or
/// Ctrl-C): answers incoming ones when answering, and does what the plan
/// says at its times after each answer (DTMF, hold, resume, transfer,
/// hang-up). Calls a transfer gives us are followed like the others.
async fn run_calls(phone: &Phone, rec: &mut Recorder, plan: Plan) -> Result<(), String> {
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<(CallKey, Due)>();
    let mut status = tokio::time::interval(Duration::from_millis(500));
    let mut answered = 0usize;
    loop {
        if plan.max_calls.is_some_and(|m| rec.ended_calls() >= m) && rec.active_calls().is_empty() {
            return Ok(());
        }
        tokio::select! {
            ev = rec.next() => {
                let Some(ev) = ev else { return Ok(()) };
                if let Some(why) = given_up(&ev) {
                    return Err(why);
                }
                match ev {
                    Event::CallIncoming { call } => {
                        if let Some(a) = &plan.answering {
                            rec.expect_call(call.key);
                            schedule(&due_tx, call.key, a.after.as_secs_f64(), Due::Answer);
                        }
                    }
                    Event::CallOutgoing { call } if call.transferred_from.is_some() => rec.expect_call(call.key),
                    Event::CallReplaced { new, .. } => rec.expect_call(new.key),
                    Event::CallConfirmed { call } if !rec.is_consequence_of_transfer(call.key) => {
                        let key = call.key;
                        if plan.dtmf.dtmf.is_some() {
                            schedule(&due_tx, key, plan.dtmf.dtmf_at, Due::Dtmf);
                        }
                        let c = &plan.control;
                        if let Some(at) = c.hold_at {
                            schedule(&due_tx, key, at, Due::Hold);
                        }
                        if let Some(at) = c.resume_at {
                            schedule(&due_tx, key, at, Due::Resume);
                        }
                        if let Some(target) = &c.transfer_to {
                            schedule(&due_tx, key, c.transfer_at, Due::Transfer(target.clone()));
                        }
                        if let Some(secs) = plan.duration {
                            schedule(&due_tx, key, secs, Due::Hangup);
                        }
                    }
                    Event::CallConfirmed { call } => {
                        // A call a transfer gave us lasts as long as the plan's calls do.
                        if let Some(secs) = plan.duration {
                            schedule(&due_tx, call.key, secs, Due::Hangup);
                        }
                    }
                    _ => {}
                }
            }
            Some((key, due)) = due_rx.recv() => {
                let result = match due {
                    Due::Answer => match &plan.answering {
                        Some(a) => {
                            let audio = a.audio.setup(answered);
                            answered += 1;
                            phone.answer_with(key, audio).await
                        }
                        None => Ok(()),
                    },
                    Due::Hangup => {
                        rec.refresh_stats(key).await;
                        // The call may have ended already (transferred, hung up by the far end).
                        let _ = phone.hangup(key).await;
                        Ok(())
                    }
                    Due::Dtmf => match &plan.dtmf.dtmf {
                        Some(digits) => {
                            let options = DtmfOptions { method: plan.dtmf.dtmf_method, ..Default::default() };
                            phone.send_dtmf(key, digits, options).await
                        }
                        None => Ok(()),
                    },
                    Due::Hold => phone.hold(key).await,
                    Due::Resume => phone.resume(key).await,
                    Due::Transfer(target) => {
                        rec.refresh_stats(key).await;
                        phone.transfer(key, &target).await
                    }
                };
                if let Err(e) = result {
                    rec.note(&format!("call {key}: {e}"));
                }
            }
            _ = status.tick() => rec.refresh_all_stats().await,
            _ = interrupted() => {
                for key in rec.active_calls() {
                    rec.refresh_stats(key).await;
                    let _ = phone.hangup(key).await;
                }
                return Ok(());
            }
        }
    }
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let relay = relay::start().await.map_err(|e| format!("relay: {e}"))?;
    println!("relay listening on {} (loopback only)", relay.url);
    let make = |user: &str| {
        loopback_media(PhoneConfig::builder().server(&relay.url).user(user).password("demo").domain("demo.invalid"))
            .build()
            .map_err(|e| e.to_string())
    };
    let alice = Phone::new(make("alice")?);
    let bob = Phone::new(make("bob")?);
    let mut alice_rec = Recorder::new(&alice, "alice", args.output.json_events, true);
    let mut bob_rec = Recorder::new(&bob, "bob", args.output.json_events, true);
    start_registered(&alice, &mut alice_rec, 10.0).await?;
    start_registered(&bob, &mut bob_rec, 10.0).await?;

    let tone = |hz: f64| AudioSetup {
        send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
        receive: ReceiveAudio::Discard,
        track_frequencies: vec![440.0, 880.0],
        ..Default::default()
    };
    let placed = Instant::now();
    let key = alice
        .call("bob", CallOptions { audio: tone(440.0), ..Default::default() })
        .await
        .map_err(|e| e.to_string())?
        .key();
    alice_rec.expect_call(key);
    let bob_key = loop {
        match bob_rec.next().await {
            Some(Event::CallIncoming { call }) => break call.key,
            Some(_) => {}
            None => return Err("bob stopped".into()),
        }
    };
    bob_rec.expect_call(bob_key);
    bob.answer_with(bob_key, tone(880.0)).await.map_err(|e| e.to_string())?;
    let stop_at =
        tokio::time::Instant::now() + Duration::from_secs_f64(args.duration.max(0.5)) + Duration::from_millis(300);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while tokio::time::Instant::now() < stop_at {
        tokio::select! {
            _ = tick.tick() => {
                alice_rec.refresh_all_stats().await;
                bob_rec.refresh_all_stats().await;
            }
            ev = alice_rec.next() => if ev.is_none() { break },
            ev = bob_rec.next() => if ev.is_none() { break },
        }
    }
    alice_rec.refresh_stats(key).await;
    bob_rec.refresh_stats(bob_key).await;
    alice.hangup(key).await.map_err(|e| e.to_string())?;
    let wait_end = async {
        while bob_rec.ended_calls() < 1 {
            if bob_rec.next().await.is_none() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), wait_end).await;

    println!();
    println!(
        "summary (call placed {:.0} ms before the first tone arrived at alice):",
        alice_rec.first_audio_after(key, placed).unwrap_or(f64::NAN)
    );
    let mut failures = Vec::new();
    for (name, rec, call, want) in [("alice", &alice_rec, key, 880.0), ("bob", &bob_rec, bob_key, 440.0)] {
        let line = rec.summary_line(call, want);
        println!("  {name}: {line}");
        if !rec.heard(call, want) {
            failures.push(format!("{name} did not hear {want} Hz"));
        }
    }
    let result = if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) };
    let _ = bob.stop().await;
    finish(&alice, alice_rec, &args.output, result).await
}
