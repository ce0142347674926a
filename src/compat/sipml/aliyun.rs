//! The Aliyun cloud call center workbench SDK's surface (seed 002, the
//! layer Aliyun puts on SIPml5) over a [`Phone`]: its methods, its hooks
//! with their payloads, its status codes and its numbered errors. A
//! program written against `new WorkbenchSdk(config)` maps one to one:
//!
//! | Aliyun | here |
//! |---|---|
//! | `new WorkbenchSdk({afterCallRule, autoAnswerCall, onXxx...})` | [`Workbench::new`] with [`WorkbenchConfig`] and [`Hooks`] |
//! | `register()`, `ready()` | [`Workbench::register`], [`Workbench::ready`] (ends after-call work) |
//! | `call(callee, caller)`, `answer()`, `hangUp()` | [`Workbench::call`], [`Workbench::answer`], [`Workbench::hang_up`] |
//! | `callHold()`, `callRetrieve()`, `muteAgent()`, `unMuteAgent()`, `changeVolumeInCall(v)`, `sendDtmf(n)` | the same, snake_case |
//! | `thirdCallTransfer(callee, caller)` | blind transfer (REFER) |
//! | `initiateAttendedTransfer(callee, caller)`, `thirdCallRetrieve()`, `thirdCallTransferFinished()` | consult (status 16, 17), give it up, or join the two parties (REFER with Replaces) |
//! | `getStatusCode()` | `{code, lastCode}` |
//!
//! Hooks by the seed's names: `onInit`, `onRegister`, `onReady`,
//! `onCallComing`, `onCallDialing`, `onCallEstablish`, `onHangUp`
//! (`ringing` / `dialing` / `inbound` / `outbound`), `onCallRelease`,
//! `onStatusChange` (`{code, lastCode, context}`), `onErrorNotify`
//! (`{errorCode, errorMsg, errorMsgTip, requestId}`); and the two
//! interceptors, `onBeforeCallDialing` and `onBeforeCallHangup`, which
//! must consent (their `callback`) before the call is dialed or hung up:
//! here a function returning a future of [`Consent`]. Without consent
//! nothing happens and nothing is reported (the seed: "otherwise the call
//! is not dialed"); the method returns [`Done::Intercepted`].
//!
//! Statuses are the phone's ([`crate::PhoneState::code`]) plus after-call
//! work, 5, which only this layer knows: after a call that was up ends,
//! the agent stays in 5 for `afterCallRule` (15 s by default) or, with
//! [`AfterCallRule::Manual`], until [`Workbench::ready`]; meanwhile the
//! phone takes no calls ([`crate::Mode::Inactive`]: incoming ones get
//! 486). Each method is checked against the seed's status table first;
//! one the status does not allow fails with 9001 (or 8003 for `call`
//! while a call exists), through `onErrorNotify` and the returned error.
//! `autoAnswerCall` is the phone's own auto-answer
//! ([`crate::PhoneConfigBuilder::auto_answer`]).
//!
//! Error codes: 9001 (not allowed in this status), 8003 (a call already
//! exists), 8001 (a call's media failed: its audio source or sink could
//! not be opened, or its media path failed; the call ends), 6001 (not
//! registered: no connection), 6008 (no such call); any other failure
//! carries webphone's error kind (`"invalid_action"`...) as its code.
//!
//! Not here: what the workbench asks of Aliyun's servers (skill groups,
//! `logIn` / `logOut`, breaks, monitoring, `switchAccessPoint`) and its
//! panel (`dom`, `width`, `changeVisible`...). A `caller` number other
//! than `''` / `'auto'` is asked for with `P-Preferred-Identity`
//! (RFC 3325), which a trusted proxy may honour; a blind transfer cannot
//! carry one and ignores it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Action, ActionOutcome, AudioDirection, AudioSetup, CallDirection, CallError, CallInfo, Error, Event, Mode, Phone,
    PhoneConfig,
};

/// How long after-call work lasts (`afterCallRule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterCallRule {
    /// This long (the seed counts in seconds; zero: no after-call work).
    After(Duration),
    /// Until [`Workbench::ready`] (`"manual"`).
    Manual,
}

impl Default for AfterCallRule {
    /// The seed's default, 15 seconds.
    fn default() -> Self {
        AfterCallRule::After(Duration::from_secs(15))
    }
}

/// After-call work (status 5) as a machine that takes the time as input.
#[derive(Clone, Debug)]
pub struct AfterCallWork {
    rule: AfterCallRule,
    /// `Some` while in after-call work: until when (`None`: until released).
    until: Option<Option<Instant>>,
}

impl AfterCallWork {
    /// Not in after-call work.
    pub fn new(rule: AfterCallRule) -> AfterCallWork {
        AfterCallWork { rule, until: None }
    }

    /// A call ended at `now`: after-call work starts, unless the rule is
    /// zero. True when it started.
    pub fn call_released(&mut self, now: Instant) -> bool {
        self.until = match self.rule {
            AfterCallRule::After(d) if d.is_zero() => return false,
            AfterCallRule::After(d) => Some(Some(now + d)),
            AfterCallRule::Manual => Some(None),
        };
        true
    }

    /// In after-call work.
    pub fn active(&self) -> bool {
        self.until.is_some()
    }

    /// When it ends by itself, if it does.
    pub fn deadline(&self) -> Option<Instant> {
        self.until.flatten()
    }

    /// True when it ended at `now` (its time is up).
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.deadline().is_some_and(|d| now >= d) {
            self.until = None;
            return true;
        }
        false
    }

    /// `ready()`: ends it now. True when it was on.
    pub fn release(&mut self) -> bool {
        self.until.take().is_some()
    }
}

/// An interceptor's answer (the seed's `callback`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `callback()`: go ahead.
    Proceed,
    /// `callback(callee)`: dial this instead (a prefix added...);
    /// `onBeforeCallDialing` only.
    ProceedTo(String),
    /// The callback is not called: nothing happens.
    Refuse,
}

/// An interceptor: the payload in, a future of the consent out.
pub type Interceptor = Arc<dyn Fn(Value) -> BoxFuture<'static, Consent> + Send + Sync>;

/// A hook: called with its payload, from the workbench's task, in event order.
pub type Hook = Box<dyn Fn(&Value) + Send + Sync>;

/// Every hook name the layer calls.
pub const HOOK_NAMES: [&str; 10] = [
    "onInit",
    "onRegister",
    "onReady",
    "onCallComing",
    "onCallDialing",
    "onCallEstablish",
    "onHangUp",
    "onCallRelease",
    "onErrorNotify",
    "onStatusChange",
];

/// The hooks and interceptors of the SDK's config.
#[derive(Default)]
pub struct Hooks {
    hooks: HashMap<&'static str, Hook>,
    before_call_dialing: Option<Interceptor>,
    before_call_hangup: Option<Interceptor>,
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Hooks {
        Hooks::default()
    }

    /// Sets hook `name` (one of [`HOOK_NAMES`]; another name is refused).
    pub fn on(mut self, name: &str, hook: impl Fn(&Value) + Send + Sync + 'static) -> Result<Hooks, Error> {
        let name = HOOK_NAMES
            .iter()
            .copied()
            .find(|n| *n == name)
            .ok_or_else(|| Error::InvalidAction(format!("no workbench hook named {name:?}")))?;
        self.hooks.insert(name, Box::new(hook));
        Ok(self)
    }

    /// `onBeforeCallDialing(payload)`: `{callee, userId}`; dialed only on consent.
    pub fn on_before_call_dialing(
        mut self,
        hook: impl Fn(Value) -> BoxFuture<'static, Consent> + Send + Sync + 'static,
    ) -> Hooks {
        self.before_call_dialing = Some(Arc::new(hook));
        self
    }

    /// `onBeforeCallHangup(payload)`: `{jobId, channelId, userId}`; hung up only on consent.
    pub fn on_before_call_hangup(
        mut self,
        hook: impl Fn(Value) -> BoxFuture<'static, Consent> + Send + Sync + 'static,
    ) -> Hooks {
        self.before_call_hangup = Some(Arc::new(hook));
        self
    }

    fn call(&self, name: &str, payload: &Value) {
        if let Some(hook) = self.hooks.get(name) {
            hook(payload);
        }
    }
}

/// The audio a call of the agent's sends and plays (the microphone and
/// speaker of the browser the seed runs in).
pub type AgentAudio = Arc<dyn Fn() -> AudioSetup + Send + Sync>;

/// The SDK's behaviour options.
#[derive(Clone, Default)]
pub struct WorkbenchConfig {
    /// `afterCallRule`.
    pub after_call_rule: AfterCallRule,
    /// `autoAnswerCall`: answer a ringing call by itself after this long.
    pub auto_answer_call: Option<Duration>,
    /// The agent's audio for every call (default: silence out, nothing played).
    pub audio: Option<AgentAudio>,
}

/// What a method did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Done (or under way: its progress comes through the hooks).
    Done,
    /// An interceptor did not consent: nothing happened.
    Intercepted,
}

/// What `onErrorNotify` receives, and what a failed method returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorNotice {
    /// The seed's number (9001...), or webphone's error kind when the seed has none.
    pub error_code: Value,
    /// What went wrong.
    pub error_msg: String,
    /// The seed's words for the code.
    pub error_msg_tip: String,
    /// The server request's id: there is none here.
    pub request_id: Option<String>,
}

impl ErrorNotice {
    fn new(code: Value, msg: impl Into<String>, tip: &str) -> ErrorNotice {
        ErrorNotice { error_code: code, error_msg: msg.into(), error_msg_tip: tip.to_string(), request_id: None }
    }

    fn not_allowed(method: &str, status: i32) -> ErrorNotice {
        ErrorNotice::new(json!(9001), format!("{method} is not allowed in status {status}"), "当前状态不能操作该api")
    }

    fn call_exists() -> ErrorNotice {
        ErrorNotice::new(json!(8003), "a call already exists", "call already exist")
    }

    fn from_error(method: &str, e: &Error, status: i32) -> ErrorNotice {
        match e {
            Error::NotAllowed { .. } => ErrorNotice::not_allowed(method, status),
            Error::Call(CallError::Busy) => ErrorNotice::call_exists(),
            Error::Call(CallError::NoSuchCall) => ErrorNotice::new(json!(6008), e.to_string(), "CallNotExisted"),
            Error::Call(CallError::NotConnected) | Error::NotRunning => {
                ErrorNotice::new(json!(6001), e.to_string(), "AgentNotRegistered")
            }
            other => ErrorNotice::new(json!(other.kind()), other.to_string(), ""),
        }
    }
}

/// Whether the seed's status table lets `method` run in status `code`.
/// The table names each status's main operations; the in-call controls
/// (mute, volume, DTMF) go with the call statuses the panel shows them in.
pub fn allowed(code: i32, method: &str) -> bool {
    let in_call = matches!(code, 9 | 10);
    match method {
        "register" => code == -1,
        "ready" => code == 5,
        "call" => code == 3,
        "answer" => matches!(code, 3 | 6),
        "hangUp" => matches!(code, 8..=10),
        "callHold" | "thirdCallTransfer" | "initiateAttendedTransfer" => in_call,
        "callRetrieve" => code == 12,
        "muteAgent" | "unMuteAgent" | "changeVolumeInCall" => matches!(code, 9 | 10 | 12 | 16 | 17),
        "sendDtmf" => matches!(code, 9 | 10 | 17),
        "thirdCallRetrieve" => matches!(code, 16 | 17),
        "thirdCallTransferFinished" => code == 17,
        _ => false,
    }
}

/// Statuses in which a call exists.
fn has_call(code: i32) -> bool {
    matches!(code, 6 | 8 | 9 | 10 | 11 | 12 | 16 | 17 | 20 | 21)
}

/// The workbench's status, as `getStatusCode` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCode {
    /// The current status.
    pub code: i32,
    /// The one before.
    pub last_code: i32,
}

enum Command {
    Ready(oneshot::Sender<bool>),
    Error(ErrorNotice),
}

struct Inner {
    user: String,
    domain: String,
    audio: Option<AgentAudio>,
    before_call_dialing: Option<Interceptor>,
    before_call_hangup: Option<Interceptor>,
    status: Mutex<StatusCode>,
    commands: mpsc::UnboundedSender<Command>,
}

/// The Aliyun workbench SDK over a [`Phone`].
#[derive(Clone)]
pub struct Workbench {
    phone: Phone,
    inner: Arc<Inner>,
}

impl Workbench {
    /// `new WorkbenchSdk(config)`: a phone for `config` (the SIP account,
    /// servers, media), not started (`register` starts it), with the SDK's
    /// options and hooks; `onInit` fires. Must be called inside a tokio
    /// runtime: the hooks run on a task of their own, in event order.
    pub fn new(mut config: PhoneConfig, options: WorkbenchConfig, mut hooks: Hooks) -> Workbench {
        config.register_on_start = true;
        config.calls.auto_answer = options.auto_answer_call;
        if let Some(audio) = options.audio.clone() {
            config.incoming_audio = Some(crate::config::AudioChooser(Arc::new(move |_| audio())));
        }
        let (user, domain) = (config.user.clone(), config.domain.clone());
        let phone = Phone::new(config);
        let events = phone.events();
        let (commands, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            user,
            domain,
            audio: options.audio,
            before_call_dialing: hooks.before_call_dialing.take(),
            before_call_hangup: hooks.before_call_hangup.take(),
            status: Mutex::new(StatusCode { code: -1, last_code: -1 }),
            commands,
        });
        hooks.call("onInit", &Value::Null);
        let task = Task {
            phone: phone.clone(),
            inner: inner.clone(),
            hooks,
            wrap: AfterCallWork::new(options.after_call_rule),
            phone_code: -1,
            registered: false,
        };
        tokio::spawn(task.run(events, rx));
        Workbench { phone, inner }
    }

    /// The phone underneath, for what the SDK does not have.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    /// `getStatusCode()`.
    pub fn get_status_code(&self) -> StatusCode {
        *lock(&self.inner.status)
    }

    fn audio(&self) -> AudioSetup {
        self.inner.audio.as_ref().map(|f| f()).unwrap_or_default()
    }

    /// Fails with `onErrorNotify` when the status does not allow `method`.
    fn check(&self, method: &str) -> Result<i32, ErrorNotice> {
        let code = self.get_status_code().code;
        if allowed(code, method) {
            return Ok(code);
        }
        let notice = if method == "call" && has_call(code) {
            ErrorNotice::call_exists()
        } else {
            ErrorNotice::not_allowed(method, code)
        };
        Err(self.notify(notice))
    }

    fn notify(&self, notice: ErrorNotice) -> ErrorNotice {
        let _ = self.inner.commands.send(Command::Error(notice.clone()));
        notice
    }

    async fn run(&self, method: &str, action: Action) -> Result<ActionOutcome, ErrorNotice> {
        let status = self.get_status_code().code;
        self.phone.execute(action).await.map_err(|e| self.notify(ErrorNotice::from_error(method, &e, status)))
    }

    async fn checked(&self, method: &str, action: Action) -> Result<Done, ErrorNotice> {
        self.check(method)?;
        self.run(method, action).await.map(|_| Done::Done)
    }

    /// `register()`: connect and register (the phone starts); then
    /// `onRegister` and status 3.
    pub async fn register(&self) -> Result<Done, ErrorNotice> {
        self.check("register")?;
        match self.phone.start() {
            Ok(()) => Ok(Done::Done),
            Err(Error::AlreadyRunning) => self.run("register", Action::Register).await.map(|_| Done::Done),
            Err(e) => Err(self.notify(ErrorNotice::from_error("register", &e, -1))),
        }
    }

    /// `ready()`: ends after-call work (status 5 → 3).
    pub async fn ready(&self) -> Result<Done, ErrorNotice> {
        self.check("ready")?;
        let (tx, rx) = oneshot::channel();
        let _ = self.inner.commands.send(Command::Ready(tx));
        match rx.await {
            Ok(true) => Ok(Done::Done),
            _ => Err(self.notify(ErrorNotice::not_allowed("ready", self.get_status_code().code))),
        }
    }

    /// `call(callee, caller)`: `onBeforeCallDialing` consents first (and
    /// may change the callee); then `onCallDialing`, and `onCallEstablish`
    /// when answered.
    pub async fn call(&self, callee: &str, caller: &str) -> Result<Done, ErrorNotice> {
        self.check("call")?;
        let mut target = callee.to_string();
        if let Some(intercept) = &self.inner.before_call_dialing {
            match intercept(json!({ "callee": callee, "userId": self.inner.user })).await {
                Consent::Proceed => {}
                Consent::ProceedTo(other) => target = other,
                Consent::Refuse => return Ok(Done::Intercepted),
            }
        }
        let action = Action::Call {
            target,
            display_name: None,
            headers: caller_headers(caller, &self.inner.domain),
            audio: self.audio(),
        };
        self.run("call", action).await.map(|_| Done::Done)
    }

    /// `answer()`: the call ringing here.
    pub async fn answer(&self) -> Result<Done, ErrorNotice> {
        self.checked("answer", Action::Answer { call: None, audio: self.audio() }).await
    }

    /// `hangUp()`: `onBeforeCallHangup` consents first.
    pub async fn hang_up(&self) -> Result<Done, ErrorNotice> {
        self.check("hangUp")?;
        let current = match self.phone.execute(Action::Lines).await {
            Ok(ActionOutcome::Lines(lines)) => lines.into_iter().rev().find(|l| !l.held_local).map(|l| l.call),
            _ => None,
        };
        let Some(call) = current else {
            return Err(self.notify(ErrorNotice::new(json!(6008), "no call to hang up", "CallNotExisted")));
        };
        if let Some(intercept) = &self.inner.before_call_hangup {
            let payload = json!({ "jobId": call.call_id, "channelId": call.key, "userId": self.inner.user });
            if intercept(payload).await == Consent::Refuse {
                return Ok(Done::Intercepted);
            }
        }
        self.run("hangUp", Action::Hangup { call: Some(call.key) }).await.map(|_| Done::Done)
    }

    /// `callHold()`: status 12.
    pub async fn call_hold(&self) -> Result<Done, ErrorNotice> {
        self.checked("callHold", Action::Hold { call: None }).await
    }

    /// `callRetrieve()`: back to the call.
    pub async fn call_retrieve(&self) -> Result<Done, ErrorNotice> {
        self.checked("callRetrieve", Action::Resume { call: None }).await
    }

    /// `muteAgent()`: the customer no longer hears the agent.
    pub async fn mute_agent(&self) -> Result<Done, ErrorNotice> {
        self.checked("muteAgent", Action::Mute { call: None, direction: AudioDirection::Send }).await
    }

    /// `unMuteAgent()` (the seed's list spells it `umMuteAgent` once).
    pub async fn un_mute_agent(&self) -> Result<Done, ErrorNotice> {
        self.checked("unMuteAgent", Action::Unmute { call: None, direction: AudioDirection::Send }).await
    }

    /// `changeVolumeInCall(volumeInCall)`: 0 to 1.
    pub async fn change_volume_in_call(&self, volume: f32) -> Result<Done, ErrorNotice> {
        self.check("changeVolumeInCall")?;
        if !(0.0..=1.0).contains(&volume) {
            let e = Error::InvalidAction(format!("volume {volume} is not 0 to 1"));
            return Err(self.notify(ErrorNotice::from_error("changeVolumeInCall", &e, 0)));
        }
        self.run("changeVolumeInCall", Action::Volume { call: None, volume }).await.map(|_| Done::Done)
    }

    /// `sendDtmf(number)`: one of `0-9 * #`.
    pub async fn send_dtmf(&self, number: char) -> Result<Done, ErrorNotice> {
        self.check("sendDtmf")?;
        if !matches!(number, '0'..='9' | '*' | '#') {
            let e = Error::InvalidAction(format!("{number:?} is not 0-9, * or #"));
            return Err(self.notify(ErrorNotice::from_error("sendDtmf", &e, 0)));
        }
        let action = Action::Dtmf {
            call: None,
            digits: number.to_string(),
            method: Default::default(),
            duration_ms: None,
            gap_ms: None,
        };
        self.run("sendDtmf", action).await.map(|_| Done::Done)
    }

    /// `thirdCallTransfer(callee, caller)`: blind; the call ends when the
    /// target answers.
    pub async fn third_call_transfer(&self, callee: &str, _caller: &str) -> Result<Done, ErrorNotice> {
        self.checked("thirdCallTransfer", Action::Transfer { call: None, target: callee.to_string() }).await
    }

    /// `initiateAttendedTransfer(callee, caller)`: the call is held and
    /// `callee` called (status 16, then 17 once answered).
    pub async fn initiate_attended_transfer(&self, callee: &str, caller: &str) -> Result<Done, ErrorNotice> {
        let action = Action::Consult {
            call: None,
            target: callee.to_string(),
            headers: caller_headers(caller, &self.inner.domain),
            audio: self.audio(),
        };
        self.checked("initiateAttendedTransfer", action).await
    }

    /// `thirdCallRetrieve()`: the consultation is hung up, back to the first call.
    pub async fn third_call_retrieve(&self) -> Result<Done, ErrorNotice> {
        self.checked("thirdCallRetrieve", Action::Retrieve { call: None }).await
    }

    /// `thirdCallTransferFinished()`: the first call's party and the
    /// consulted one are joined; both our calls end.
    pub async fn third_call_transfer_finished(&self) -> Result<Done, ErrorNotice> {
        self.check("thirdCallTransferFinished")?;
        let consult = match self.phone.execute(Action::Lines).await {
            Ok(ActionOutcome::Lines(lines)) => lines.into_iter().rev().find(|l| !l.held_local).map(|l| l.call.key),
            _ => None,
        };
        let Some(with) = consult else {
            return Err(self.notify(ErrorNotice::new(json!(6008), "no consultation call", "CallNotExisted")));
        };
        self.run("thirdCallTransferFinished", Action::Complete { call: None, with }).await.map(|_| Done::Done)
    }
}

/// The caller number asked for, as a header (none for `''` / `'auto'`).
fn caller_headers(caller: &str, domain: &str) -> Vec<(String, String)> {
    match caller {
        "" | "auto" => Vec::new(),
        number => vec![("P-Preferred-Identity".to_string(), format!("<sip:{number}@{domain}>"))],
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A call as the hooks see it (`callDetail`).
fn call_detail(call: &CallInfo) -> Value {
    let (caller, callee) = match call.direction {
        CallDirection::Outgoing => (&call.local, &call.remote),
        CallDirection::Incoming => (&call.remote, &call.local),
    };
    let number = |p: &crate::Party| p.user.clone().unwrap_or_else(|| p.uri.clone());
    json!({
        "caller": number(caller),
        "callee": number(callee),
        "callType": match call.direction { CallDirection::Outgoing => "outbound", CallDirection::Incoming => "inbound" },
        "jobId": call.call_id,
        "callContext": call,
    })
}

/// The task that turns the phone's events into hook calls, in order, and
/// runs after-call work.
struct Task {
    phone: Phone,
    inner: Arc<Inner>,
    hooks: Hooks,
    wrap: AfterCallWork,
    /// The phone's own status code.
    phone_code: i32,
    registered: bool,
}

impl Task {
    async fn run(mut self, mut events: crate::Events, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.wrap.deadline().map(tokio::time::Instant::from_std);
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break,
                },
                Some(command) = commands.recv() => match command {
                    Command::Ready(reply) => {
                        let released = self.wrap.release();
                        if released {
                            self.wrap_up_ended().await;
                        }
                        let _ = reply.send(released);
                    }
                    Command::Error(notice) => self.hooks.call("onErrorNotify", &json!(notice)),
                },
                () = sleep_until(deadline) => {
                    if self.wrap.poll(tokio::time::Instant::now().into_std()) {
                        self.wrap_up_ended().await;
                    }
                }
            }
        }
    }

    async fn wrap_up_ended(&mut self) {
        let _ = self.phone.execute(Action::SetMode { mode: Mode::Active }).await;
        self.show("after-call work ended");
    }

    /// Reports the status now shown, if it changed.
    fn show(&mut self, why: &str) {
        let code = if self.wrap.active() && self.phone_code == 3 { 5 } else { self.phone_code };
        let previous = lock(&self.inner.status).code;
        if code == previous {
            return;
        }
        *lock(&self.inner.status) = StatusCode { code, last_code: previous };
        self.hooks.call("onStatusChange", &json!({ "code": code, "lastCode": previous, "context": why }));
        if code == 3 {
            self.hooks.call("onReady", &Value::Null);
        }
    }

    async fn on_event(&mut self, event: Event) {
        match &event {
            Event::StatusChanged { state, code, last } => {
                self.phone_code = *code;
                if *code == 3 && matches!(last, 9 | 10 | 12 | 16 | 17) && self.wrap.call_released(Instant::now()) {
                    // No calls in after-call work.
                    let _ = self.phone.execute(Action::SetMode { mode: Mode::Inactive }).await;
                }
                self.show(
                    &serde_json::to_value(state).ok().and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default(),
                );
            }
            Event::Registered { server, expires } if !self.registered => {
                self.registered = true;
                self.hooks.call("onRegister", &json!({ "server": server, "expires": expires }));
            }
            Event::Unregistered { .. } | Event::RegistrationFailed { .. } => self.registered = false,
            Event::CallIncoming { call } => self.hooks.call("onCallComing", &call_detail(call)),
            Event::CallOutgoing { call } => self.hooks.call("onCallDialing", &call_detail(call)),
            Event::CallConfirmed { call } => self.hooks.call("onCallEstablish", &call_detail(call)),
            Event::CallEnded { call, .. } => {
                let kind = match (call.direction, call.connected_ms.is_some()) {
                    (CallDirection::Incoming, false) => "ringing",
                    (CallDirection::Outgoing, false) => "dialing",
                    (CallDirection::Incoming, true) => "inbound",
                    (CallDirection::Outgoing, true) => "outbound",
                };
                if let Some(end) =
                    call.end.as_ref().filter(|e| e.by == crate::Originator::System && e.reason.starts_with("media: "))
                {
                    let notice = ErrorNotice::new(json!(8001), end.reason.clone(), "GetUserMediaFailed");
                    self.hooks.call("onErrorNotify", &json!(notice));
                }
                self.hooks.call("onHangUp", &json!(kind));
                self.hooks.call("onCallRelease", &call_detail(call));
            }
            _ => {}
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_call_work_ends_at_its_time_or_when_released() {
        let t0 = Instant::now();
        let mut w = AfterCallWork::new(AfterCallRule::After(Duration::from_secs(15)));
        assert!(!w.active() && w.deadline().is_none());
        assert!(w.call_released(t0));
        assert!(w.active());
        assert_eq!(w.deadline(), Some(t0 + Duration::from_secs(15)));
        assert!(!w.poll(t0 + Duration::from_millis(14_999)), "not before its time");
        assert!(w.active());
        assert!(w.poll(t0 + Duration::from_secs(15)));
        assert!(!w.active() && !w.poll(t0 + Duration::from_secs(16)), "ends once");

        assert!(w.call_released(t0));
        assert!(w.release(), "ready() ends it early");
        assert!(!w.active() && !w.release());
    }

    #[test]
    fn manual_after_call_work_waits_for_ready_and_zero_means_none() {
        let t0 = Instant::now();
        let mut w = AfterCallWork::new(AfterCallRule::Manual);
        assert!(w.call_released(t0));
        assert_eq!(w.deadline(), None);
        assert!(!w.poll(t0 + Duration::from_secs(86_400)), "no time ends manual work");
        assert!(w.active() && w.release() && !w.active());

        let mut none = AfterCallWork::new(AfterCallRule::After(Duration::ZERO));
        assert!(!none.call_released(t0) && !none.active());
        assert_eq!(AfterCallRule::default(), AfterCallRule::After(Duration::from_secs(15)));
    }

    #[test]
    fn the_status_table_as_the_seed_writes_it() {
        assert!(allowed(-1, "register") && !allowed(3, "register"));
        assert!(allowed(3, "call") && !allowed(5, "call") && !allowed(10, "call"));
        assert!(allowed(5, "ready") && !allowed(3, "ready"));
        assert!(allowed(6, "answer") && !allowed(6, "hangUp"));
        for code in [8, 9, 10] {
            assert!(allowed(code, "hangUp"), "{code}");
        }
        assert!(allowed(10, "callHold") && !allowed(3, "callHold") && !allowed(12, "callHold"));
        assert!(allowed(12, "callRetrieve") && !allowed(10, "callRetrieve"));
        assert!(allowed(17, "thirdCallTransferFinished") && !allowed(16, "thirdCallTransferFinished"));
        assert!(allowed(16, "thirdCallRetrieve") && allowed(17, "thirdCallRetrieve"));
        assert!(!allowed(3, "noSuchMethod"));
        assert!(has_call(10) && !has_call(3) && !has_call(5));
    }

    #[test]
    fn errors_carry_the_seed_codes() {
        let n = ErrorNotice::from_error("callHold", &Error::NotAllowed { action: "hold".into(), status: 3 }, 3);
        assert_eq!(n.error_code, json!(9001));
        assert_eq!(ErrorNotice::from_error("call", &Error::Call(CallError::Busy), 10).error_code, json!(8003));
        assert_eq!(ErrorNotice::from_error("x", &Error::Call(CallError::NoSuchCall), 3).error_code, json!(6008));
        let other = ErrorNotice::from_error("x", &Error::InvalidAction("bad".into()), 3);
        assert_eq!(other.error_code, json!("invalid_action"));
        let shape = serde_json::to_value(ErrorNotice::not_allowed("callHold", 3)).unwrap();
        assert_eq!(
            shape,
            json!({"errorCode": 9001, "errorMsg": "callHold is not allowed in status 3", "errorMsgTip": "当前状态不能操作该api", "requestId": null})
        );
        assert!(caller_headers("auto", "example.com").is_empty() && caller_headers("", "example.com").is_empty());
        let ppi = ("P-Preferred-Identity".to_string(), "<sip:0571@example.com>".to_string());
        assert_eq!(caller_headers("0571", "example.com"), vec![ppi]);
    }
}
