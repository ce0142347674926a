//! SIPml5's surface over a [`Phone`]: its `Stack` and `Session` objects and
//! its event type strings (`started`, `i_new_call`, `connected`,
//! `m_local_hold_ok`, `o_ect_accepted`, ...), translated to and from
//! webphone's actions and events, nothing more. A program written against
//! SIPml5 maps one to one:
//!
//! | SIPml5 | here |
//! |---|---|
//! | `new SIPml.Stack({realm, impi, impu, password, websocket_proxy_url, events_listener})` | [`StackConfig`] → [`Stack::new`] with an [`EventsListener`] |
//! | `stack.start()`, `stack.stop()` | [`Stack::start`], [`Stack::stop`] |
//! | `stack.newSession('register', {events_listener})`, `.register()`, `.unregister()` | [`Stack::new_session`] → [`Session::register`], [`Session::unregister`] |
//! | `stack.newSession('call-audio', {events_listener})`, `.call(to)` | [`Stack::new_session`] → [`Session::call`] |
//! | `i_new_call`'s `e.newSession`, `.setConfiguration({events_listener})`, `.accept()`, `.reject()` | [`SipmlEvent::new_session`], [`Session::set_listener`], [`Session::accept`], [`Session::reject`] |
//! | `hangup()`, `hold()`, `resume()`, `dtmf(c)`, `mute('audio', b)` | [`Session::hangup`], [`Session::hold`], [`Session::resume`], [`Session::dtmf`], [`Session::mute`] |
//! | `transfer(to)`, `acceptTransfer()`, `rejectTransfer()` | [`Session::transfer`], [`Session::accept_transfer`], [`Session::reject_transfer`] |
//! | `e.type`, `e.description`, `e.getSipResponseCode()` | [`SipmlEvent::kind`], [`SipmlEvent::description`], [`SipmlEvent::code`] |
//!
//! As in SIPml5, starting the stack does not register (a `register`
//! session does) and a peer's transfer request waits for
//! `acceptTransfer` / `rejectTransfer` (`i_ect_requested`): [`Stack::new`]
//! sets [`crate::PhoneConfigBuilder::register_on_start`] off and the
//! transfer policy to [`crate::TransferPolicy::Ask`].
//!
//! Events, from what the phone reports:
//! - stack: `starting` / `stopping` (when asked), `started` (connected),
//!   `failed_to_start` (every server failed for good), `stopped`,
//!   `i_new_call` (with the ringing call's session);
//! - register session: `connecting` (asked), `connected` (registered, 200),
//!   `terminating` (asked to unregister), `terminated` (unregistered, or
//!   registration failed with its status), `transport_error` (the
//!   connection dropped; the phone reconnects);
//! - call session: `connecting` (placed, or answered), `i_ao_request` (18x
//!   with its code), `m_early_media`, `connected`, `terminating` (asked),
//!   `terminated` (with the final status and reason), `m_local_hold_ok` /
//!   `_nok`, `m_local_resume_ok` / `_nok`, `m_remote_hold`,
//!   `m_remote_resume`, `i_info` (a DTMF digit received by SIP INFO),
//!   `sent_request` (a DTMF digit sent by SIP INFO); our transfer:
//!   `o_ect_trying` (REFER sent), `o_ect_accepted` (the peer's first
//!   NOTIFY, which means it accepted), `o_ect_notify` (each progress status),
//!   `o_ect_completed`, `o_ect_failed`; the peer's: `i_ect_requested`,
//!   `i_ect_new_call` (with the new call's session), `i_ect_completed`,
//!   `i_ect_failed`.
//!
//! The descriptions are the SIP reason phrase when there is one, else a
//! short sentence of ours (SIPml5's own wording is not reproduced).
//!
//! Not here: `newSession` of `message`, `publish`, `subscribe` and video
//! types (webphone is audio-only and sends no MESSAGE / PUBLISH), generic
//! `info(content, type)` (webphone sends INFO for DTMF only), and the
//! events webphone has no source for (`i_new_message`,
//! `m_permission_*`, `m_stream_*`, `media_added` / `_removed`,
//! `i_ect_notify`, `i_notify`).

pub mod aliyun;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Action, ActionOutcome, AudioDirection, CallInfo, CallKey, Error, Event, Originator, Phone, PhoneConfig};

/// Every event type SIPml5 documents, stack and session.
pub const EVENT_TYPES: [&str; 52] = [
    "starting",
    "started",
    "stopping",
    "stopped",
    "failed_to_start",
    "failed_to_stop",
    "i_new_call",
    "i_new_message",
    "m_permission_requested",
    "m_permission_accepted",
    "m_permission_refused",
    "connecting",
    "connected",
    "terminating",
    "terminated",
    "i_ao_request",
    "media_added",
    "media_removed",
    "i_request",
    "o_request",
    "cancelled_request",
    "sent_request",
    "transport_error",
    "global_error",
    "message_error",
    "webrtc_error",
    "m_early_media",
    "m_local_hold_ok",
    "m_local_hold_nok",
    "m_local_resume_ok",
    "m_local_resume_nok",
    "m_remote_hold",
    "m_remote_resume",
    "m_stream_video_local_added",
    "m_stream_video_local_removed",
    "m_stream_video_remote_added",
    "m_stream_video_remote_removed",
    "m_stream_audio_local_added",
    "m_stream_audio_local_removed",
    "m_stream_audio_remote_added",
    "m_stream_audio_remote_removed",
    "i_ect_new_call",
    "o_ect_trying",
    "o_ect_accepted",
    "o_ect_completed",
    "o_ect_failed",
    "o_ect_notify",
    "i_ect_requested",
    "i_ect_completed",
    "i_ect_failed",
    "i_ect_notify",
    "i_notify",
];

/// SIPml5's stack configuration, by its names.
#[derive(Clone, Debug, Default)]
pub struct StackConfig {
    /// `realm`: the SIP domain.
    pub realm: String,
    /// `impi`: the authentication name.
    pub impi: String,
    /// `impu`: our public identity, `sip:user@domain`.
    pub impu: String,
    /// `password`.
    pub password: String,
    /// `display_name`.
    pub display_name: Option<String>,
    /// `websocket_proxy_url`: `ws://` or `wss://`.
    pub websocket_proxy_url: String,
}

impl StackConfig {
    /// The phone configuration it means, to adjust further and build.
    pub fn builder(self) -> Result<crate::PhoneConfigBuilder, Error> {
        let uri = self.impu.strip_prefix("sip:").unwrap_or(&self.impu);
        let user = uri
            .split_once('@')
            .map(|(user, _)| user)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::Config(format!("impu {:?} is not sip:user@domain", self.impu)))?;
        let mut b = PhoneConfig::builder()
            .server(self.websocket_proxy_url)
            .user(user)
            .auth_user(self.impi)
            .password(self.password)
            .domain(self.realm);
        if let Some(name) = self.display_name {
            b = b.display_name(name);
        }
        Ok(b)
    }
}

/// An event as a SIPml5 listener receives it.
#[derive(Clone, Serialize)]
pub struct SipmlEvent {
    /// `e.type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `e.description`.
    pub description: String,
    /// `e.getSipResponseCode()`, when a SIP status is involved.
    pub code: Option<u16>,
    /// The id of the session it is about (`e.session.getId()`).
    pub session: Option<CallKey>,
    /// What else the event carries: the call (parties, headers, times),
    /// the transfer target, the DTMF digit.
    pub data: Value,
    /// `e.newSession`: the ringing call of `i_new_call`, the new call of
    /// `i_ect_new_call`.
    #[serde(skip)]
    pub new_session: Option<Session>,
}

impl std::fmt::Debug for SipmlEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipmlEvent")
            .field("type", &self.kind)
            .field("description", &self.description)
            .field("code", &self.code)
            .field("session", &self.session)
            .field("data", &self.data)
            .field("new_session", &self.new_session.as_ref().and_then(Session::id))
            .finish()
    }
}

impl SipmlEvent {
    fn new(kind: &'static str, description: impl Into<String>) -> SipmlEvent {
        SipmlEvent {
            kind,
            description: description.into(),
            code: None,
            session: None,
            data: Value::Null,
            new_session: None,
        }
    }

    fn with_code(mut self, code: Option<u16>) -> SipmlEvent {
        self.code = code;
        self
    }

    fn call(mut self, call: &CallInfo) -> SipmlEvent {
        self.session = Some(call.key);
        self.data = json!({ "call": call });
        self
    }

    fn with(mut self, name: &str, value: Value) -> SipmlEvent {
        if !self.data.is_object() {
            self.data = json!({});
        }
        self.data[name] = value;
        self
    }
}

/// SIPml5's `events_listener`: which event types (`'*'` for all) and the
/// function called with each, in order, from a task of the stack's.
#[derive(Clone)]
pub struct EventsListener {
    events: Option<Vec<&'static str>>,
    listener: Arc<dyn Fn(&SipmlEvent) + Send + Sync>,
}

impl EventsListener {
    /// `{events: '*', listener}`.
    pub fn all(listener: impl Fn(&SipmlEvent) + Send + Sync + 'static) -> EventsListener {
        EventsListener { events: None, listener: Arc::new(listener) }
    }

    /// `{events: [...], listener}`; a name SIPml5 does not have is refused.
    pub fn only(
        events: &[&str],
        listener: impl Fn(&SipmlEvent) + Send + Sync + 'static,
    ) -> Result<EventsListener, Error> {
        let events = events
            .iter()
            .map(|e| {
                EVENT_TYPES
                    .iter()
                    .copied()
                    .find(|t| t == e)
                    .ok_or_else(|| Error::InvalidAction(format!("no SIPml5 event type {e:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(EventsListener { events: Some(events), listener: Arc::new(listener) })
    }

    fn deliver(&self, event: &SipmlEvent) {
        if self.events.as_ref().is_none_or(|list| list.contains(&event.kind)) {
            (self.listener)(event);
        }
    }
}

/// Where one object's (the stack's, a session's) events wait for its
/// listener, in order: events that come before a listener is set (a
/// ringing call's, before `setConfiguration`) are kept for it.
struct Slot {
    key: OnceLock<CallKey>,
    tx: mpsc::UnboundedSender<SipmlEvent>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<SipmlEvent>>>,
    listener: Arc<Mutex<Option<EventsListener>>>,
    /// What the last hold or resume asked (true: hold), to name its failure.
    holding: AtomicBool,
    /// Our transfer's REFER was accepted (`o_ect_accepted` sent).
    ect_accepted: AtomicBool,
}

impl Slot {
    fn new() -> Arc<Slot> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Slot {
            key: OnceLock::new(),
            tx,
            rx: Mutex::new(Some(rx)),
            listener: Arc::new(Mutex::new(None)),
            holding: AtomicBool::new(false),
            ect_accepted: AtomicBool::new(false),
        })
    }

    fn for_call(key: CallKey) -> Arc<Slot> {
        let slot = Slot::new();
        let _ = slot.key.set(key);
        slot
    }

    fn send(&self, event: SipmlEvent) {
        let _ = self.tx.send(event);
    }

    /// Sets (or replaces) the listener; the first one starts delivery.
    fn listen(&self, listener: EventsListener) {
        *lock(&self.listener) = Some(listener);
        let rx = lock(&self.rx).take();
        if let Some(mut rx) = rx {
            let current = self.listener.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    let listener = lock(&current).clone();
                    if let Some(listener) = listener {
                        listener.deliver(&event);
                    }
                }
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct StackInner {
    stack_slot: Arc<Slot>,
    register_slot: Arc<Slot>,
    /// Each call's slot, by key, while the call lasts. Held (async) while
    /// an action that adds an event of ours runs, so that the event takes
    /// its place before anything the phone reports after it.
    sessions: tokio::sync::Mutex<HashMap<CallKey, Arc<Slot>>>,
}

/// SIPml5's `SIPml.Stack` over a [`Phone`].
#[derive(Clone)]
pub struct Stack {
    phone: Phone,
    inner: Arc<StackInner>,
}

impl Stack {
    /// `new SIPml.Stack(config)` with its `events_listener`. SIPml5's
    /// defaults apply: no registration until a `register` session asks,
    /// and a transfer request waits for the application.
    pub fn new(mut config: PhoneConfig, listener: EventsListener) -> Stack {
        config.register_on_start = false;
        config.calls.transfer_policy = crate::TransferPolicy::Ask;
        let phone = Phone::new(config);
        let stack_slot = Slot::new();
        *lock(&stack_slot.listener) = Some(listener);
        let inner =
            StackInner { stack_slot, register_slot: Slot::new(), sessions: tokio::sync::Mutex::new(HashMap::new()) };
        Stack { phone, inner: Arc::new(inner) }
    }

    /// The phone underneath, for what SIPml5 does not have.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    /// `stack.start()`: `starting`, then `started` once connected (or
    /// `failed_to_start`); again after a `stop`. Must be called inside a
    /// tokio runtime.
    pub fn start(&self) -> Result<(), Error> {
        let slot = &self.inner.stack_slot;
        let listener = lock(&slot.listener).clone();
        if let Some(listener) = listener {
            slot.listen(listener);
        }
        // Subscribed before the phone starts, so that nothing is missed.
        let events = self.phone.events();
        self.phone.start()?;
        slot.send(SipmlEvent::new("starting", "Stack starting"));
        tokio::spawn(dispatch(self.clone(), events));
        Ok(())
    }

    /// `stack.stop()`: `stopping`, then `stopped` (calls are hung up, the
    /// registration removed).
    pub async fn stop(&self) -> Result<(), Error> {
        self.inner.stack_slot.send(SipmlEvent::new("stopping", "Stack stopping"));
        self.phone.stop().await
    }

    /// `stack.newSession(type, {events_listener})`: `"register"` or
    /// `"call-audio"`.
    pub fn new_session(&self, kind: &str, listener: EventsListener) -> Result<Session, Error> {
        let session = match kind {
            "register" => Session { stack: self.clone(), register: true, slot: self.inner.register_slot.clone() },
            "call-audio" => Session { stack: self.clone(), register: false, slot: Slot::new() },
            other => {
                return Err(Error::InvalidAction(format!(
                    "session type {other:?} is not supported (audio calls and registration only)"
                )));
            }
        };
        session.slot.listen(listener);
        Ok(session)
    }

    fn call_session(&self, slot: Arc<Slot>) -> Session {
        Session { stack: self.clone(), register: false, slot }
    }
}

/// Reads the phone's events in order and hands each object its SIPml5 events.
async fn dispatch(stack: Stack, mut events: crate::Events) {
    let mut started = false;
    let mut registered = false;
    while let Some(event) = events.recv().await {
        let mut sessions = stack.inner.sessions.lock().await;
        let stack_slot = &stack.inner.stack_slot;
        let register = &stack.inner.register_slot;
        let mut slot = |key: CallKey| sessions.entry(key).or_insert_with(|| Slot::for_call(key)).clone();
        match &event {
            Event::Connected { server } if !started => {
                started = true;
                stack_slot.send(SipmlEvent::new("started", "Stack started").with("server", json!(server)));
            }
            Event::ConnectFailed { reason, retry_in_ms: None, .. } if !started => {
                stack_slot.send(SipmlEvent::new("failed_to_start", reason.clone()));
            }
            Event::Disconnected { reason, retry_in_ms: Some(_), .. } => {
                register.send(SipmlEvent::new("transport_error", reason.clone()));
            }
            Event::Registered { expires, .. } if !registered => {
                registered = true;
                register.send(
                    SipmlEvent::new("connected", "Connected").with_code(Some(200)).with("expires", json!(expires)),
                );
            }
            Event::Unregistered { reason, .. } => {
                registered = false;
                register.send(SipmlEvent::new("terminated", reason.clone()));
            }
            Event::RegistrationFailed { status, reason, .. } => {
                registered = false;
                register.send(SipmlEvent::new("terminated", reason.clone()).with_code(*status));
            }
            Event::CallIncoming { call } => {
                let session = stack.call_session(slot(call.key));
                let mut e = SipmlEvent::new("i_new_call", "Incoming call").call(call);
                e.new_session = Some(session);
                stack_slot.send(e);
            }
            Event::CallOutgoing { call } => {
                slot(call.key).send(SipmlEvent::new("connecting", "Call in progress...").call(call));
                if let Some(old) = call.transferred_from {
                    let mut e = SipmlEvent::new("i_ect_new_call", "Transfer: new call placed").call(call);
                    e.session = Some(old);
                    e.new_session = Some(stack.call_session(slot(call.key)));
                    slot(old).send(e);
                }
            }
            Event::CallProgress { call, status, reason, early_media } => {
                let s = slot(call.key);
                s.send(SipmlEvent::new("i_ao_request", reason.clone()).with_code(Some(*status)).call(call));
                if *early_media {
                    s.send(SipmlEvent::new("m_early_media", "Early media started").with_code(Some(*status)).call(call));
                }
            }
            Event::CallConfirmed { call } => {
                slot(call.key).send(SipmlEvent::new("connected", "In Call").with_code(Some(200)).call(call));
                if let Some(old) = call.transferred_from {
                    let mut e =
                        SipmlEvent::new("i_ect_completed", "Transfer completed").with_code(Some(200)).call(call);
                    e.session = Some(old);
                    slot(old).send(e);
                }
            }
            Event::CallHeld { call, by } => {
                let kind = if *by == Originator::Remote { "m_remote_hold" } else { "m_local_hold_ok" };
                slot(call.key).send(SipmlEvent::new(kind, "Call placed on hold").call(call));
            }
            Event::CallResumed { call, by } => {
                let kind = if *by == Originator::Remote { "m_remote_resume" } else { "m_local_resume_ok" };
                slot(call.key).send(SipmlEvent::new(kind, "Call taken off hold").call(call));
            }
            Event::HoldFailed { call, status, reason } => {
                let s = slot(call.key);
                let kind = if s.holding.load(Ordering::SeqCst) { "m_local_hold_nok" } else { "m_local_resume_nok" };
                s.send(SipmlEvent::new(kind, reason.clone()).with_code(*status).call(call));
            }
            Event::TransferProgress { call, status, reason } => {
                let s = slot(call.key);
                if !s.ect_accepted.swap(true, Ordering::SeqCst) {
                    s.send(SipmlEvent::new("o_ect_accepted", "Transfer accepted").call(call));
                }
                s.send(SipmlEvent::new("o_ect_notify", reason.clone()).with_code(Some(*status)).call(call));
            }
            Event::TransferAccepted { call } => {
                let s = slot(call.key);
                if !s.ect_accepted.swap(true, Ordering::SeqCst) {
                    s.send(SipmlEvent::new("o_ect_accepted", "Transfer accepted").call(call));
                }
                s.send(SipmlEvent::new("o_ect_completed", "Transfer completed").with_code(Some(200)).call(call));
            }
            Event::TransferFailed { call, status, reason } => {
                let s = slot(call.key);
                s.ect_accepted.store(false, Ordering::SeqCst);
                s.send(SipmlEvent::new("o_ect_failed", reason.clone()).with_code(*status).call(call));
            }
            Event::TransferRequested { call, target, referred_by, replaces } => {
                let e = SipmlEvent::new("i_ect_requested", "Transfer requested")
                    .call(call)
                    .with("target", json!(target))
                    .with("referredBy", json!(referred_by))
                    .with("replaces", json!(replaces));
                slot(call.key).send(e);
            }
            Event::DtmfReceived { call, digit, duration_ms, method: crate::DtmfMethod::Info } => {
                let e = SipmlEvent::new("i_info", "INFO received")
                    .call(call)
                    .with("digit", json!(digit.to_string()))
                    .with("duration", json!(duration_ms));
                slot(call.key).send(e);
            }
            Event::DtmfSent { call, digit, method: crate::DtmfMethod::Info } => {
                let e = SipmlEvent::new("sent_request", "INFO sent").call(call).with("digit", json!(digit.to_string()));
                slot(call.key).send(e);
            }
            Event::CallEnded { call, .. } => {
                if let Some(old) = call.transferred_from.filter(|_| call.connected_ms.is_none()) {
                    let mut e = SipmlEvent::new("i_ect_failed", "Transfer failed").call(call);
                    e.code = call.end.as_ref().and_then(|c| c.status);
                    e.session = Some(old);
                    slot(old).send(e);
                }
                let (status, reason) =
                    call.end.as_ref().map_or((None, "Call terminated".to_string()), |c| (c.status, c.reason.clone()));
                slot(call.key).send(SipmlEvent::new("terminated", reason).with_code(status).call(call));
                sessions.remove(&call.key);
            }
            Event::Stopped => {
                stack_slot.send(SipmlEvent::new("stopped", "Stack stopped"));
                break;
            }
            _ => {}
        }
    }
}

/// SIPml5's `SIPml.Session`: a `register` session or a `call-audio` one.
#[derive(Clone)]
pub struct Session {
    stack: Stack,
    register: bool,
    slot: Arc<Slot>,
}

impl Session {
    /// `session.getId()`: the call's key once the call exists.
    pub fn id(&self) -> Option<CallKey> {
        self.slot.key.get().copied()
    }

    /// `session.setConfiguration({events_listener})`: a ringing call's
    /// events so far are delivered to it, then the rest.
    pub fn set_listener(&self, listener: EventsListener) {
        self.slot.listen(listener);
    }

    fn key(&self) -> Result<CallKey, Error> {
        self.id().ok_or_else(|| Error::InvalidAction("the session has no call".into()))
    }

    /// Runs a call action; `ours`, when it succeeded, is the event it adds
    /// (`terminating`, `o_ect_trying`...), queued before anything the phone
    /// reports after it.
    async fn act(&self, action: Action, ours: Option<SipmlEvent>) -> Result<(), Error> {
        let _order = self.stack.inner.sessions.lock().await;
        self.stack.phone.execute(action).await?;
        if let Some(mut e) = ours {
            e.session = self.id();
            self.slot.send(e);
        }
        Ok(())
    }

    /// `registerSession.register()`: `connecting`, then `connected`.
    pub async fn register(&self) -> Result<(), Error> {
        self.register_only()?;
        self.slot.send(SipmlEvent::new("connecting", "Connecting..."));
        self.stack.phone.execute(Action::Register).await.map(drop)
    }

    /// `registerSession.unregister()`: `terminating`, then `terminated`.
    pub async fn unregister(&self) -> Result<(), Error> {
        self.register_only()?;
        self.slot.send(SipmlEvent::new("terminating", "Terminating..."));
        self.stack.phone.execute(Action::Unregister).await.map(drop)
    }

    fn register_only(&self) -> Result<(), Error> {
        if self.register { Ok(()) } else { Err(Error::InvalidAction("not a register session".into())) }
    }

    fn call_only(&self) -> Result<CallKey, Error> {
        if self.register {
            return Err(Error::InvalidAction("not a call session".into()));
        }
        self.key()
    }

    /// `callSession.call(to)`: `connecting`, progress, then `connected` or
    /// `terminated`. `audio` is what the call sends and where what it
    /// hears goes (SIPml5's `audio_remote` element and microphone).
    pub async fn call(&self, to: &str, audio: crate::AudioSetup) -> Result<(), Error> {
        if self.register || self.id().is_some() {
            return Err(Error::InvalidAction("a call session places one call".into()));
        }
        let mut sessions = self.stack.inner.sessions.lock().await;
        let action = Action::Call { target: to.to_string(), display_name: None, headers: Vec::new(), audio };
        match self.stack.phone.execute(action).await? {
            ActionOutcome::Call(key) => {
                let _ = self.slot.key.set(key);
                sessions.insert(key, self.slot.clone());
                Ok(())
            }
            other => Err(Error::InvalidAction(format!("unexpected outcome {other:?}"))),
        }
    }

    /// `session.accept()` of a ringing call: `connecting`, then `connected`.
    pub async fn accept(&self, audio: crate::AudioSetup) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.act(Action::Answer { call, audio }, Some(SipmlEvent::new("connecting", "Call in progress..."))).await
    }

    /// `session.reject()`: 603 Decline.
    pub async fn reject(&self) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.act(Action::Reject { call, status: 603 }, None).await
    }

    /// `session.hangup()`: `terminating`, then `terminated`.
    pub async fn hangup(&self) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.act(Action::Hangup { call }, Some(SipmlEvent::new("terminating", "Terminating the call..."))).await
    }

    /// `session.hold()`: `m_local_hold_ok` or `m_local_hold_nok`.
    pub async fn hold(&self) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.slot.holding.store(true, Ordering::SeqCst);
        self.act(Action::Hold { call }, None).await
    }

    /// `session.resume()`: `m_local_resume_ok` or `m_local_resume_nok`.
    pub async fn resume(&self) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.slot.holding.store(false, Ordering::SeqCst);
        self.act(Action::Resume { call }, None).await
    }

    /// `session.dtmf(c)`: by RFC 4733 when the call negotiated it, else by
    /// SIP INFO (SIPml5's only way; `sent_request` reports those).
    pub async fn dtmf(&self, c: char) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        let action =
            Action::Dtmf { call, digits: c.to_string(), method: Default::default(), duration_ms: None, gap_ms: None };
        self.act(action, None).await
    }

    /// `session.mute('audio', muted)`: what we send.
    pub async fn mute(&self, muted: bool) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        let direction = AudioDirection::Send;
        let action = if muted { Action::Mute { call, direction } } else { Action::Unmute { call, direction } };
        self.act(action, None).await
    }

    /// `session.transfer(to)` (blind): `o_ect_trying`, `o_ect_accepted`,
    /// `o_ect_notify`..., then `o_ect_completed` (and `terminated`) or
    /// `o_ect_failed`.
    pub async fn transfer(&self, to: &str) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        let trying = SipmlEvent::new("o_ect_trying", "Call transfer in progress...");
        self.act(Action::Transfer { call, target: to.to_string() }, Some(trying)).await
    }

    /// `session.acceptTransfer()` after `i_ect_requested`: the new call
    /// comes as `i_ect_new_call`.
    pub async fn accept_transfer(&self, audio: crate::AudioSetup) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.act(Action::AcceptTransfer { call, audio }, None).await
    }

    /// `session.rejectTransfer()` after `i_ect_requested`.
    pub async fn reject_transfer(&self) -> Result<(), Error> {
        let call = Some(self.call_only()?);
        self.act(Action::RejectTransfer { call }, None).await
    }
}
