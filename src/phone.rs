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
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::PhoneConfig;
use crate::dialog::auth::DigestClient;
use crate::dialog::register::{RegistrationConfig, RegistrationEvent, random_token};
use crate::dialog::{AgentConfig, AgentEvent, CallEvent, Output, UserAgent};
use crate::event::{Event, WallClock};
use crate::sip::{Host, NameAddr, SipUri, Uri};
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
}

struct Shared {
    config: PhoneConfig,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
    connected: AtomicBool,
    registered: AtomicBool,
    control: Mutex<Option<Control>>,
    clock: WallClock,
}

struct Control {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Register,
    Unregister,
    Stop,
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
        Phone {
            shared: Arc::new(Shared {
                config,
                subscribers: Mutex::new(Vec::new()),
                connected: AtomicBool::new(false),
                registered: AtomicBool::new(false),
                control: Mutex::new(None),
                clock: WallClock::new(),
            }),
        }
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
    if cfg.register_on_start {
        ua.register(now());
    }
    let mut reconnect = Reconnect::new(cfg.servers.len(), cfg.reconnect_min, cfg.reconnect_max);
    let mut attempt = Attempt { server: 0, delay: Duration::ZERO };
    loop {
        if !wait_offline(attempt.delay, &mut commands, &mut ua, &shared).await {
            break;
        }
        let server = &cfg.servers[attempt.server];
        let connected = tokio::select! {
            c = Connection::connect(server, &cfg.tls, cfg.connect_timeout) => c,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Stop) => break,
                Some(other) => { apply_offline(other, &mut ua); attempt.delay = Duration::ZERO; continue }
            },
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
                let end = session(conn, server, &mut ua, &mut commands, &shared).await;
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
                drain_events(&mut ua, server, &shared);
                if matches!(end, SessionEnd::Stopped) {
                    break;
                }
            }
        }
    }
    shared.registered.store(false, Ordering::Relaxed);
    shared.emit(Event::Stopped);
    lock(&shared.subscribers).clear();
}

/// Waits `delay` while offline, applying commands. False when told to stop.
async fn wait_offline(
    delay: Duration,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    ua: &mut UserAgent,
    _shared: &Shared,
) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            cmd = commands.recv() => match cmd {
                None | Some(Command::Stop) => return false,
                Some(other) => apply_offline(other, ua),
            },
        }
    }
}

fn apply_offline(cmd: Command, ua: &mut UserAgent) {
    match cmd {
        Command::Register => ua.register(now()),
        Command::Unregister => ua.unregister(now()),
        Command::Stop => {}
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
        calls: crate::dialog::invite::CallSettings::default(),
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
                Output::Transmit(bytes) => {
                    if let Err(e) = conn.send_sip(bytes).await {
                        return SessionEnd::Lost(format!("send failed: {e}"));
                    }
                }
                Output::Event(ev) => emit_agent_event(ev, server, shared),
                Output::Media(req) => media_unavailable(req, ua),
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
                Some(Command::Register) => ua.register(now()),
                Some(Command::Unregister) => ua.unregister(now()),
                Some(Command::Stop) | None => {
                    if stop_deadline.is_none() {
                        ua.unregister(now());
                        stop_deadline = Some(now() + cfg.unregister_timeout);
                    }
                }
            },
            _ = sleep => {
                let t = now();
                ua.handle_timeout(t);
                match keepalive.handle_timeout(t) {
                    KeepAliveAction::None => {}
                    KeepAliveAction::SendPing(kind) => {
                        let sent = match kind {
                            PingKind::WebSocket => conn.send_ping().await,
                            PingKind::DoubleCrlf => conn.send_crlf_ping().await,
                        };
                        if let Err(e) = sent {
                            return SessionEnd::Lost(format!("send failed: {e}"));
                        }
                    }
                    KeepAliveAction::Dead => return SessionEnd::Lost("keep-alive: no answer from server".into()),
                }
            }
        }
    }
}

/// Until the media engine is wired in, calls cannot get SDP: refuse them.
fn media_unavailable(req: crate::dialog::MediaRequest, ua: &mut UserAgent) {
    use crate::dialog::MediaRequest;
    match req {
        MediaRequest::CreateOffer { call } | MediaRequest::CreateAnswer { call, .. } => {
            ua.handle_local_sdp(call, Err("no media engine".into()), now());
        }
        MediaRequest::ApplyAnswer { .. } | MediaRequest::Close { .. } => {}
    }
}

fn drain_events(ua: &mut UserAgent, server: &ServerUrl, shared: &Shared) {
    while let Some(out) = ua.poll_output() {
        if let Output::Event(ev) = out {
            emit_agent_event(ev, server, shared);
        }
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
