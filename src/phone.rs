//! [`Phone`], the handle applications hold, and the driver task behind it.
//!
//! The driver is the only code that touches sockets and the clock: it owns
//! the WebSocket [`Connection`], feeds the sans-IO [`UserAgent`] with
//! received frames, commands and timeouts, sends what the core emits, and
//! turns core events into [`Event`]s. It reads time through
//! `tokio::time::Instant`, so tests can run it on tokio's paused clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::PhoneConfig;
use crate::dialog::auth::DigestClient;
use crate::dialog::call::CallKey;
use crate::dialog::invite::CallError;
use crate::dialog::invite::CallRequest;
use crate::dialog::register::{RegistrationConfig, RegistrationEvent, random_token};
use crate::dialog::{AgentConfig, AgentEvent, CallEvent, Output, UserAgent};
use crate::event::{Event, WallClock};
use crate::media::engine::{MediaControl, MediaEngine, MediaResult};
use crate::media::{AudioSetup, CallStats};
use crate::sip::{Host, NameAddr, SipUri, StatusCode, Uri};
use crate::transport::keepalive::{KeepAlive, KeepAliveAction, PingKind};
use crate::transport::reconnect::{Attempt, Reconnect};
use crate::transport::ws::{Connection, Incoming, ServerUrl};
use crate::{Error, dialog::transaction::Timers};

/// A phone: a cheap, clonable handle to one SIP user agent.
///
/// Create it with [`Phone::new`], subscribe with [`Phone::events`], then
/// [`Phone::start`] it inside a tokio runtime. [`Phone::stop`] unregisters
/// and closes the connection.
#[derive(Clone)]
pub struct Phone {
    shared: Arc<Shared>,
    /// Shared by all clones: when the last handle goes, the driver stops.
    _last_handle: Arc<StopOnDrop>,
}

/// Stops the driver when the last [`Phone`] handle is dropped (the driver
/// itself holds `Shared`, so it cannot notice otherwise).
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(control) = lock(&self.0.control).as_ref() {
            let _ = control.commands.send(Command::Stop);
        }
    }
}

/// The longest a WebSocket send may take before the connection counts as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    config: PhoneConfig,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
    connected: AtomicBool,
    registered: AtomicBool,
    control: Mutex<Option<Control>>,
    clock: WallClock,
    interceptor: Mutex<Option<DialInterceptor>>,
}

type DialInterceptor = Arc<dyn Fn(&mut CallRequest) -> Result<(), String> + Send + Sync>;

/// Options for an outgoing call.
#[derive(Debug, Default)]
pub struct CallOptions {
    /// Display name in our From header for this call.
    pub display_name: Option<String>,
    /// Extra headers carried on the INVITE (`X-Order-Id: 42`, ...).
    pub headers: Vec<(String, String)>,
    /// What the call sends and where what it hears goes.
    pub audio: AudioSetup,
}

struct Control {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

enum Command {
    Register,
    Unregister,
    Stop,
    Call { request: CallRequest, audio: AudioSetup, reply: oneshot::Sender<Result<CallKey, Error>> },
    Answer { call: CallKey, audio: AudioSetup, reply: oneshot::Sender<Result<(), Error>> },
    Stats { call: CallKey, reply: oneshot::Sender<Result<CallStats, Error>> },
    Mute { call: CallKey, send: Option<bool>, receive: Option<bool>, reply: oneshot::Sender<Result<(), Error>> },
    Volume { call: CallKey, volume: f32, reply: oneshot::Sender<Result<(), Error>> },
    Reject { call: CallKey, status: u16, reply: oneshot::Sender<Result<(), Error>> },
    Hangup { call: CallKey, reply: oneshot::Sender<Result<(), Error>> },
}

/// A subscription to a phone's events, in the order they happened.
pub struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event; `None` after the phone stopped and all events were read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("user", &self.shared.config.user)
            .field("domain", &self.shared.config.domain)
            .field("connected", &self.is_connected())
            .field("registered", &self.is_registered())
            .finish()
    }
}

impl Phone {
    /// A phone that is not started yet.
    pub fn new(config: PhoneConfig) -> Phone {
        let shared = Arc::new(Shared {
            config,
            subscribers: Mutex::new(Vec::new()),
            connected: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            control: Mutex::new(None),
            clock: WallClock::new(),
            interceptor: Mutex::new(None),
        });
        Phone { _last_handle: Arc::new(StopOnDrop(shared.clone())), shared }
    }

    /// Subscribes to events from now on. Each subscriber gets every event.
    pub fn events(&self) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.subscribers).push(tx);
        Events(rx)
    }

    /// Starts the driver: connect (with failover and backoff), then register
    /// unless the configuration says not to. Must be called inside a tokio
    /// runtime. Returns at once; progress arrives as events.
    pub fn start(&self) -> Result<(), Error> {
        let mut control = lock(&self.shared.control);
        if control.as_ref().is_some_and(|c| !c.task.is_finished()) {
            return Err(Error::AlreadyRunning);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = runtime.spawn(drive(self.shared.clone(), rx));
        *control = Some(Control { commands, task });
        Ok(())
    }

    /// Unregisters (waiting at most the configured unregister timeout for
    /// the answer), closes the connection and ends the driver.
    pub async fn stop(&self) -> Result<(), Error> {
        let control = lock(&self.shared.control).take().ok_or(Error::NotRunning)?;
        let _ = control.commands.send(Command::Stop);
        let _ = control.task.await;
        Ok(())
    }

    /// Registers now (or as soon as connected), and keeps the registration
    /// refreshed. The outcome arrives as [`Event::Registered`] or
    /// [`Event::RegistrationFailed`].
    pub fn register(&self) -> Result<(), Error> {
        self.command(Command::Register)
    }

    /// Removes the registration; [`Event::Unregistered`] follows.
    pub fn unregister(&self) -> Result<(), Error> {
        self.command(Command::Unregister)
    }

    /// Places a call to `target`: a number or user in our domain
    /// (`"1002"`), `user@host`, or a full `sip:` / `tel:` URI. Returns the
    /// call's key at once; [`Event::CallOutgoing`] follows, then progress.
    /// The dial interceptor, when set, may rewrite or veto the request first.
    pub async fn call(&self, target: &str, options: CallOptions) -> Result<CallKey, Error> {
        let mut request =
            CallRequest { target: target.to_string(), display_name: options.display_name, headers: options.headers };
        let interceptor = lock(&self.shared.interceptor).clone();
        if let Some(intercept) = interceptor {
            intercept(&mut request).map_err(Error::CallVetoed)?;
        }
        let audio = options.audio;
        self.request(|reply| Command::Call { request, audio, reply }).await
    }

    /// Sets the hook that sees every outgoing call before its INVITE is
    /// built (Aliyun's `onBeforeCallDialing`): it may rewrite the target,
    /// display name or headers, or veto the call with a reason.
    pub fn set_dial_interceptor(&self, hook: impl Fn(&mut CallRequest) -> Result<(), String> + Send + Sync + 'static) {
        *lock(&self.shared.interceptor) = Some(Arc::new(hook));
    }

    /// Answers a ringing incoming call (sending silence, discarding what
    /// is heard; see [`Phone::answer_with`]).
    pub async fn answer(&self, call: CallKey) -> Result<(), Error> {
        self.answer_with(call, AudioSetup::default()).await
    }

    /// Answers a ringing incoming call with this audio.
    pub async fn answer_with(&self, call: CallKey, audio: AudioSetup) -> Result<(), Error> {
        self.request(|reply| Command::Answer { call, audio, reply }).await
    }

    /// A call's media figures now: packets, loss, jitter, levels.
    pub async fn call_stats(&self, call: CallKey) -> Result<CallStats, Error> {
        self.request(|reply| Command::Stats { call, reply }).await
    }

    /// Mutes (or unmutes) what we send: the far end hears silence. No renegotiation.
    pub async fn mute(&self, call: CallKey, muted: bool) -> Result<(), Error> {
        self.request(|reply| Command::Mute { call, send: Some(muted), receive: None, reply }).await
    }

    /// Mutes (or unmutes) what we hear. No renegotiation.
    pub async fn mute_incoming(&self, call: CallKey, muted: bool) -> Result<(), Error> {
        self.request(|reply| Command::Mute { call, send: None, receive: Some(muted), reply }).await
    }

    /// Playback volume of a call: 0.0 (silent) to 1.0 (as received), up to 4.0.
    pub async fn set_volume(&self, call: CallKey, volume: f32) -> Result<(), Error> {
        self.request(|reply| Command::Volume { call, volume, reply }).await
    }

    /// Refuses a ringing incoming call with `status` (486 Busy Here, 603 Decline, ...).
    pub async fn reject(&self, call: CallKey, status: u16) -> Result<(), Error> {
        self.request(|reply| Command::Reject { call, status, reply }).await
    }

    /// Ends a call in any state: CANCEL while it rings out, BYE once up,
    /// 486 while it rings here.
    pub async fn hangup(&self, call: CallKey) -> Result<(), Error> {
        self.request(|reply| Command::Hangup { call, reply }).await
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(make(tx))?;
        rx.await.map_err(|_| Error::NotRunning)?
    }

    /// True while the WebSocket connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// True while the registrar holds our binding.
    pub fn is_registered(&self) -> bool {
        self.shared.registered.load(Ordering::Relaxed)
    }

    fn command(&self, cmd: Command) -> Result<(), Error> {
        let control = lock(&self.shared.control);
        let control = control.as_ref().ok_or(Error::NotRunning)?;
        control.commands.send(cmd).map_err(|_| Error::NotRunning)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (plain pushes and swaps), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Shared {
    fn emit(&self, event: Event) {
        tracing::debug!(?event, "event");
        lock(&self.subscribers).retain(|s| s.send(event.clone()).is_ok());
    }
}

/// Why a connection's session ended.
enum SessionEnd {
    Stopped,
    Lost(String),
}

async fn drive(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let cfg = &shared.config;
    let mut rng = match cfg.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let mut ua = build_agent(cfg, &mut rng);
    let mut media = MediaEngine::new(cfg.media.clone());
    if cfg.register_on_start {
        ua.register(now());
    }
    let mut reconnect = Reconnect::new(cfg.servers.len(), cfg.reconnect_min, cfg.reconnect_max);
    let mut attempt = Attempt { server: 0, delay: Duration::ZERO };
    let mut last_server = cfg.servers[0].clone();
    'run: loop {
        if !wait_offline(attempt.delay, &mut commands, &mut ua, &mut media, &last_server, &shared).await {
            break;
        }
        let server = &cfg.servers[attempt.server];
        last_server = server.clone();
        let connect = Connection::connect(server, &cfg.tls, cfg.connect_timeout);
        tokio::pin!(connect);
        let connected = loop {
            tokio::select! {
                c = &mut connect => break c,
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Stop) => break 'run,
                    Some(other) => apply(other, &mut ua, &mut media),
                },
                result = media.next_result() => apply_media_result(result, &mut ua, &mut media, &shared),
            }
            drain_offline(&mut ua, &mut media, server, &shared);
        };
        match connected {
            Err(e) => {
                tracing::info!(server = server.as_str(), error = %e, "connection attempt failed");
                attempt = reconnect.handle_failure(&mut rng);
                let reason = match e {
                    Error::Connect { reason, .. } => reason,
                    other => other.to_string(),
                };
                shared.emit(Event::ConnectFailed {
                    server: server.as_str().to_string(),
                    reason,
                    retry_in_ms: attempt.delay.as_millis() as u64,
                    next_server: cfg.servers[attempt.server].as_str().to_string(),
                });
            }
            Ok(conn) => {
                reconnect.handle_connected();
                shared.connected.store(true, Ordering::Relaxed);
                shared.emit(Event::Connected { server: server.as_str().to_string() });
                let end = session(conn, server, &mut ua, &mut media, &mut commands, &shared).await;
                shared.connected.store(false, Ordering::Relaxed);
                let (reason, retry) = match &end {
                    SessionEnd::Stopped => ("stopped".to_string(), None),
                    SessionEnd::Lost(r) => {
                        attempt = reconnect.handle_disconnected(&mut rng);
                        (r.clone(), Some(attempt.delay))
                    }
                };
                tracing::info!(server = server.as_str(), %reason, "disconnected");
                shared.emit(Event::Disconnected {
                    server: server.as_str().to_string(),
                    reason,
                    retry_in_ms: retry.map(|d| d.as_millis() as u64),
                });
                ua.handle_disconnected(now());
                drain_offline(&mut ua, &mut media, server, &shared);
                if matches!(end, SessionEnd::Stopped) {
                    break;
                }
            }
        }
    }
    // Calls still up (stopped while offline) end here, reported.
    ua.abandon_calls("phone stopped", now());
    drain_offline(&mut ua, &mut media, &last_server, &shared);
    media.close_all();
    shared.registered.store(false, Ordering::Relaxed);
    shared.emit(Event::Stopped);
    lock(&shared.subscribers).clear();
}

/// Waits `delay` while offline, applying commands and media results.
/// False when told to stop.
async fn wait_offline(
    delay: Duration,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    ua: &mut UserAgent,
    media: &mut MediaEngine,
    server: &ServerUrl,
    shared: &Shared,
) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        drain_offline(ua, media, server, shared);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Stop) => return false,
                Some(other) => apply(other, ua, media),
            },
            result = media.next_result() => apply_media_result(result, ua, media, shared),
        }
    }
}

/// Applies a user command to the core and media (online or not). `Stop`
/// is the caller's business.
fn apply(cmd: Command, ua: &mut UserAgent, media: &mut MediaEngine) {
    let t = now();
    match cmd {
        Command::Register => ua.register(t),
        Command::Unregister => ua.unregister(t),
        Command::Stop => {}
        Command::Call { request, audio, reply } => {
            let result = ua.call(request, t).map_err(Error::Call);
            if let Ok(call) = result {
                media.set_audio(call, audio);
            }
            let _ = reply.send(result);
        }
        Command::Answer { call, audio, reply } => {
            // The media request this queues is handled after this returns,
            // so the audio choice is in place before the media starts.
            let result = ua.answer(call, t).map_err(Error::Call);
            if result.is_ok() {
                media.set_audio(call, audio);
            }
            let _ = reply.send(result);
        }
        Command::Stats { call, reply } => match media.stats(call) {
            None => {
                let _ = reply.send(Err(Error::Call(CallError::NoSuchCall)));
            }
            Some((mut stats, peer)) => {
                tokio::spawn(async move {
                    if let Some(peer) = peer {
                        let p = peer.stats().await;
                        stats.rtt_ms = p.rtt.map(|d| d.as_secs_f64() * 1000.0);
                    }
                    let _ = reply.send(Ok(stats));
                });
            }
        },
        Command::Mute { call, send, receive, reply } => {
            let mutes = [send.map(MediaControl::MuteSend), receive.map(MediaControl::MuteReceive)];
            let ok = mutes.into_iter().flatten().all(|c| media.control(call, c));
            let _ = reply.send(if ok { Ok(()) } else { Err(Error::Call(CallError::NoSuchCall)) });
        }
        Command::Volume { call, volume, reply } => {
            let ok = media.control(call, MediaControl::Volume(volume));
            let _ = reply.send(if ok { Ok(()) } else { Err(Error::Call(CallError::NoSuchCall)) });
        }
        Command::Reject { call, status, reply } => {
            let result = match StatusCode::new(status) {
                Some(status) => ua.reject(call, status, t).map_err(Error::Call),
                None => Err(Error::Call(CallError::InvalidState)),
            };
            let _ = reply.send(result);
        }
        Command::Hangup { call, reply } => {
            let _ = reply.send(ua.hangup(call, t).map_err(Error::Call));
        }
    }
}

fn build_agent(cfg: &PhoneConfig, rng: &mut StdRng) -> UserAgent {
    let via_host = format!("{}.invalid", random_token(rng, 12));
    let instance = cfg.instance_id.clone().unwrap_or_else(|| random_uuid(rng));
    let mut contact_uri = SipUri::new(Some(&random_token(rng, 8)), Host::Domain(via_host.clone()));
    contact_uri.params.set("transport", Some("ws".into()));
    let mut contact = NameAddr::new(Uri::Sip(contact_uri));
    contact.params.set("+sip.instance", Some(format!("\"<urn:uuid:{instance}>\"")));
    let domain = Host::Domain(cfg.domain.clone());
    let domain = Host::parse(&cfg.domain).unwrap_or(domain);
    let registration = RegistrationConfig {
        registrar: Uri::Sip(SipUri::new(None, domain.clone())),
        aor: Uri::Sip(SipUri::new(Some(&cfg.user), domain)),
        display_name: cfg.display_name.clone(),
        contact,
        expires: cfg.register_expires,
        retry_min: cfg.reconnect_min.max(Duration::from_secs(1)),
        retry_max: Duration::from_secs(300),
    };
    let agent = AgentConfig {
        via_transport: "WS",
        via_host,
        user_agent: cfg.user_agent.clone(),
        timers: Timers::default(),
        seed: Some(rng.random()),
        calls: cfg.calls.clone(),
    };
    let auth = DigestClient::new(cfg.auth_user.clone().unwrap_or_else(|| cfg.user.clone()), cfg.password.clone());
    UserAgent::new(agent, registration, auth)
}

fn random_uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// Runs one connection until it is lost or the phone stops.
async fn session(
    mut conn: Connection,
    server: &ServerUrl,
    ua: &mut UserAgent,
    media: &mut MediaEngine,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    shared: &Shared,
) -> SessionEnd {
    let cfg = &shared.config;
    ua.handle_connected(now(), server.via_transport());
    let mut keepalive = KeepAlive::new(cfg.keepalive, now());
    let mut stop_deadline: Option<Instant> = None;
    loop {
        while let Some(out) = ua.poll_output() {
            match out {
                Output::Transmit(bytes) => match tokio::time::timeout(SEND_TIMEOUT, conn.send_sip(bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return SessionEnd::Lost(format!("send failed: {e}")),
                    Err(_) => return SessionEnd::Lost("send stalled".into()),
                },
                Output::Event(ev) => {
                    choose_incoming_audio(&ev, media, shared);
                    emit_agent_event(ev, server, shared)
                }
                Output::Media(req) => media.handle(req),
            }
        }
        if let Some(deadline) = stop_deadline
            && (!ua.has_pending_transactions() || now() >= deadline)
        {
            conn.close().await;
            return SessionEnd::Stopped;
        }
        let wake = [ua.poll_timeout(), Some(keepalive.poll_timeout()), stop_deadline].into_iter().flatten().min();
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
            wake.unwrap_or_else(|| now() + Duration::from_secs(3600)),
        ));
        tokio::select! {
            incoming = conn.recv() => {
                keepalive.handle_received(now());
                match incoming {
                    Incoming::Sip(bytes) => {
                        tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP in");
                        ua.handle_message(bytes, now());
                    }
                    Incoming::KeepAlive => {}
                    Incoming::Closed(reason) => return SessionEnd::Lost(reason),
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Stop) | None => {
                    if stop_deadline.is_none() {
                        ua.unregister(now());
                        stop_deadline = Some(now() + cfg.unregister_timeout);
                        for call in ua.call_keys() {
                            let _ = ua.hangup(call, now());
                        }
                    }
                }
                Some(other) => apply(other, ua, media),
            },
            result = media.next_result() => apply_media_result(result, ua, media, shared),
            _ = sleep => {
                let t = now();
                ua.handle_timeout(t);
                match keepalive.handle_timeout(t) {
                    KeepAliveAction::None => {}
                    KeepAliveAction::SendPing(kind) => {
                        let ping = async {
                            match kind {
                                PingKind::WebSocket => conn.send_ping().await,
                                PingKind::DoubleCrlf => conn.send_crlf_ping().await,
                            }
                        };
                        match tokio::time::timeout(SEND_TIMEOUT, ping).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => return SessionEnd::Lost(format!("send failed: {e}")),
                            Err(_) => return SessionEnd::Lost("send stalled".into()),
                        }
                    }
                    KeepAliveAction::Dead => return SessionEnd::Lost("keep-alive: no answer from server".into()),
                }
            }
        }
    }
}

/// Feeds a media task's result into the core.
fn apply_media_result(result: MediaResult, ua: &mut UserAgent, media: &mut MediaEngine, shared: &Shared) {
    match result {
        MediaResult::LocalSdp { call, sdp: Ok((peer, sdp)) } => {
            if media.adopt_peer(call, peer) {
                ua.handle_local_sdp(call, Ok(sdp), now());
            }
        }
        MediaResult::LocalSdp { call, sdp: Err(reason) } => ua.handle_local_sdp(call, Err(reason), now()),
        MediaResult::Failed { call, reason } => ua.handle_media_failure(call, &reason, now()),
        MediaResult::Quality { call, alert } => {
            if let Some(snapshot) = ua.call_snapshot(call) {
                shared.emit(Event::CallQuality { call: shared.clock.call_info(snapshot), alert });
            }
        }
        MediaResult::SourceEnded { call } => tracing::debug!(%call, "send source ended"),
    }
}

/// Drains the core's outputs while offline: events go out, media requests
/// are handled, nothing can be transmitted.
fn drain_offline(ua: &mut UserAgent, media: &mut MediaEngine, server: &ServerUrl, shared: &Shared) {
    while let Some(out) = ua.poll_output() {
        match out {
            Output::Event(ev) => {
                choose_incoming_audio(&ev, media, shared);
                emit_agent_event(ev, server, shared)
            }
            Output::Media(req) => media.handle(req),
            Output::Transmit(_) => tracing::debug!("offline: a message could not be sent"),
        }
    }
}

/// Gives a ringing call the audio the configuration chooses for it.
fn choose_incoming_audio(ev: &AgentEvent, media: &mut MediaEngine, shared: &Shared) {
    if let (AgentEvent::Call(CallEvent::Incoming(s)), Some(choose)) = (ev, &shared.config.incoming_audio) {
        media.set_audio(s.key, (choose.0)(&shared.clock.call_info(s)));
    }
}

fn emit_agent_event(ev: AgentEvent, server: &ServerUrl, shared: &Shared) {
    let server = server.as_str().to_string();
    let event = match ev {
        AgentEvent::Registration(RegistrationEvent::Registered { expires }) => {
            shared.registered.store(true, Ordering::Relaxed);
            Event::Registered { server, expires }
        }
        AgentEvent::Registration(RegistrationEvent::Unregistered { reason }) => {
            shared.registered.store(false, Ordering::Relaxed);
            Event::Unregistered { server, reason }
        }
        AgentEvent::Registration(RegistrationEvent::Failed { status, reason, retry_in }) => {
            shared.registered.store(false, Ordering::Relaxed);
            Event::RegistrationFailed { server, status, reason, retry_in_ms: retry_in.map(|d| d.as_millis() as u64) }
        }
        AgentEvent::Call(ev) => {
            let clock = &shared.clock;
            match ev {
                CallEvent::Outgoing(s) => Event::CallOutgoing { call: clock.call_info(&s) },
                CallEvent::Incoming(s) => Event::CallIncoming { call: clock.call_info(&s) },
                CallEvent::Progress { call, status, reason, early_media } => {
                    Event::CallProgress { call: clock.call_info(&call), status, reason, early_media }
                }
                CallEvent::Confirmed(s) => Event::CallConfirmed { call: clock.call_info(&s) },
                CallEvent::Ended(s) => Event::CallEnded { call: clock.call_info(&s) },
            }
        }
        AgentEvent::MalformedMessage { why } => Event::MalformedMessage { why },
    };
    shared.emit(event);
}
