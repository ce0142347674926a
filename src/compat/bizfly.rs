//! The Bizfly Webphone SDK's surface (seed 004) over a [`Phone`]: its
//! method names, its `{status, error, data}` results and its listener
//! names, translated to and from webphone's actions and events, nothing
//! more. A program written against the SDK maps one to one:
//!
//! | Bizfly | here |
//! |---|---|
//! | `sdk.init(config, cb)` with `listeners` | [`BizflySdk::init`] with [`Listeners`] |
//! | `stop`, `register`, `unregister` | [`BizflySdk::stop`], [`BizflySdk::register`], [`BizflySdk::unregister`] |
//! | `makeCall(phone)`, `answerCall`, `endCall` | [`BizflySdk::make_call`], [`BizflySdk::answer_call`], [`BizflySdk::end_call`] |
//! | `createLine2(phone)` | [`BizflySdk::create_line2`]: holds line 1, calls on line 2 |
//! | `mute`/`unmute`, `muteAudio`/`unmuteAudio` | what we send / what we hear, on the current line |
//! | `hold`/`unhold`, `sendDTMF(tone)` | on the current line |
//! | `transferCall(phone)` | line 1: blind transfer to `phone`; line 2: line 1 joins line 2 (attended) |
//! | `ping()` | `{line1, line2}` |
//! | `setMode`, `currentMode`, `currentLine`, `isRegistered`, `isConnected`, `isMuted`, `isOnHold` | the same |
//! | `histories(limit)`, `note(callId, data)` | [`BizflySdk::histories`], [`BizflySdk::note`]: the phone's [call history](crate::history) |
//!
//! Listener names: `alerts` (call quality, lost connection), `connected`,
//! `disconnected`, `registered`, `unregistered`, `registrationFailed`,
//! `callEnded`, `callOutgoing`, `callIncoming`, `callConfirmed`,
//! `referAccepted`, `referFailed`. A call's `callId` is its
//! `X-bizfly-call-center-call-id` header when it carries one (Bizfly's
//! call-center id), else its SIP Call-ID.
//!
//! Not here: Bizfly's account API (`baseURL`, `username` as a dashboard
//! e-mail, `hotlines`, `chooseHotline`, `contacts`, `currentExtension`) is
//! its server's, so [`BizflySdk::init`] takes the SIP account itself; the
//! history is the phone's own (the configuration's
//! [`history`](crate::PhoneConfigBuilder::history)), not the call center's.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Action, ActionOutcome, AudioDirection, CallInfo, CallKey, Error, Event, Mode, Phone, PhoneConfig};

/// The header Bizfly's call center puts its call id in.
pub const CALL_ID_HEADER: &str = "X-bizfly-call-center-call-id";

/// A method's result, in the SDK's callback shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BizflyResult {
    /// `"success"` or `"error"`.
    pub status: &'static str,
    /// What went wrong, if it did.
    pub error: Option<String>,
    /// What the method returns, if anything.
    pub data: Value,
}

impl BizflyResult {
    fn ok(data: Value) -> BizflyResult {
        BizflyResult { status: "success", error: None, data }
    }

    fn from(result: Result<Value, Error>) -> BizflyResult {
        match result {
            Ok(data) => BizflyResult::ok(data),
            Err(e) => BizflyResult { status: "error", error: Some(e.to_string()), data: Value::Null },
        }
    }
}

/// A listener: called with the event's data.
pub type Listener = Box<dyn Fn(&Value) + Send + Sync>;

/// Listeners by the SDK's event names (`registered`, `callEnded`, ...).
#[derive(Default)]
pub struct Listeners(HashMap<&'static str, Listener>);

impl Listeners {
    /// No listeners.
    pub fn new() -> Listeners {
        Listeners::default()
    }

    /// Listens for `name` (one of [`LISTENER_NAMES`]); other names are
    /// refused, as a typo would otherwise never fire.
    pub fn on(mut self, name: &str, listener: impl Fn(&Value) + Send + Sync + 'static) -> Result<Listeners, Error> {
        let name = LISTENER_NAMES
            .iter()
            .copied()
            .find(|n| *n == name)
            .ok_or_else(|| Error::InvalidAction(format!("no Bizfly listener named {name:?}")))?;
        self.0.insert(name, Box::new(listener));
        Ok(self)
    }
}

/// Every listener name the SDK documents.
pub const LISTENER_NAMES: [&str; 12] = [
    "alerts",
    "connected",
    "disconnected",
    "registered",
    "unregistered",
    "registrationFailed",
    "callEnded",
    "callOutgoing",
    "callIncoming",
    "callConfirmed",
    "referAccepted",
    "referFailed",
];

/// A call as a Bizfly listener sees it.
fn call_data(call: &CallInfo) -> Value {
    let call_center_id =
        call.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(CALL_ID_HEADER)).map(|(_, v)| v.clone());
    json!({
        "callId": call_center_id.unwrap_or_else(|| call.call_id.clone()),
        "sipCallId": call.call_id,
        "direction": call.direction,
        "from": if call.direction == crate::CallDirection::Outgoing { &call.local } else { &call.remote },
        "to": if call.direction == crate::CallDirection::Outgoing { &call.remote } else { &call.local },
        "headers": call.headers,
        "startTime": call.started_ms,
        "answerTime": call.connected_ms,
        "endTime": call.ended_ms,
        "cause": call.end,
    })
}

/// The SDK's listener name and data for a webphone event, if it has one.
pub fn listener_event(event: &Event) -> Option<(&'static str, Value)> {
    Some(match event {
        Event::Connected { server } => ("connected", json!({ "server": server })),
        Event::Disconnected { server, reason, .. } => ("disconnected", json!({ "server": server, "reason": reason })),
        Event::Registered { server, expires } => ("registered", json!({ "server": server, "expires": expires })),
        Event::Unregistered { reason, .. } => ("unregistered", json!({ "reason": reason })),
        Event::RegistrationFailed { status, reason, .. } => {
            ("registrationFailed", json!({ "status": status, "reason": reason }))
        }
        Event::CallOutgoing { call } => ("callOutgoing", call_data(call)),
        Event::CallIncoming { call } => ("callIncoming", call_data(call)),
        Event::CallConfirmed { call } => ("callConfirmed", call_data(call)),
        Event::CallEnded { call, .. } => ("callEnded", call_data(call)),
        Event::TransferAccepted { call } => ("referAccepted", call_data(call)),
        Event::TransferFailed { call, status, reason } => {
            ("referFailed", json!({ "call": call_data(call), "status": status, "reason": reason }))
        }
        Event::CallQuality { call, alert } => {
            ("alerts", json!({ "type": "call", "call": call_data(call), "alert": alert }))
        }
        Event::ConnectFailed { server, reason, .. } => {
            ("alerts", json!({ "type": "network", "server": server, "reason": reason }))
        }
        _ => return None,
    })
}

/// The Bizfly Webphone SDK over a [`Phone`].
#[derive(Clone)]
pub struct BizflySdk {
    phone: Phone,
}

impl BizflySdk {
    /// `sdk.init(config, cb)`: a phone for `config` (the SIP account and
    /// servers; `mode` as the SDK's, `register: false` as
    /// [`crate::PhoneConfigBuilder::register_on_start`]), started, with
    /// `listeners` called from a task of their own in event order.
    pub async fn init(config: PhoneConfig, mode: Mode, listeners: Listeners) -> (BizflySdk, BizflyResult) {
        let phone = Phone::new(config);
        let mut events = phone.events();
        let listeners = Arc::new(listeners);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Some((name, data)) = listener_event(&event)
                    && let Some(listener) = listeners.0.get(name)
                {
                    listener(&data);
                }
            }
        });
        let sdk = BizflySdk { phone };
        let started = sdk.phone.start().map(|()| Value::Null);
        let result = match started {
            Ok(_) => sdk.set_mode(mode).await,
            Err(e) => BizflyResult::from(Err(e)),
        };
        (sdk, result)
    }

    /// The phone underneath, for what the SDK does not have.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    async fn run(&self, action: Action) -> BizflyResult {
        let outcome = self.phone.execute(action).await;
        let data = match outcome {
            Ok(ActionOutcome::Call(key)) => Ok(json!({ "line": self.line_of(key).await, "call": key })),
            Ok(_) => Ok(Value::Null),
            Err(e) => Err(e),
        };
        BizflyResult::from(data)
    }

    /// Every line now (1 the oldest).
    async fn lines(&self) -> Vec<crate::LineInfo> {
        match self.phone.execute(Action::Lines).await {
            Ok(ActionOutcome::Lines(lines)) => lines,
            _ => Vec::new(),
        }
    }

    /// The line a call is on, if it is still up.
    async fn line_of(&self, key: CallKey) -> Option<usize> {
        self.lines().await.into_iter().find(|l| l.call.key == key).map(|l| l.line)
    }

    /// The call of the current line: the newest that is not held by us,
    /// else the newest.
    async fn current(&self) -> Option<crate::LineInfo> {
        let lines = self.lines().await;
        lines.iter().rev().find(|l| !l.held_local).or(lines.last()).cloned()
    }

    /// `sdk.stop(cb)`.
    pub async fn stop(&self) -> BizflyResult {
        BizflyResult::from(self.phone.stop().await.map(|()| Value::Null))
    }

    /// `sdk.register(cb)`.
    pub async fn register(&self) -> BizflyResult {
        self.run(Action::Register).await
    }

    /// `sdk.unregister(cb)`.
    pub async fn unregister(&self) -> BizflyResult {
        self.run(Action::Unregister).await
    }

    /// `sdk.makeCall(phone, cb)`.
    pub async fn make_call(&self, phone: &str) -> BizflyResult {
        let action = Action::Call {
            target: phone.to_string(),
            display_name: None,
            headers: Vec::new(),
            audio: Default::default(),
        };
        self.run(action).await
    }

    /// `sdk.answerCall(cb)`: the call ringing here.
    pub async fn answer_call(&self) -> BizflyResult {
        self.run(Action::Answer { call: None, audio: Default::default() }).await
    }

    /// `sdk.endCall(cb)`: the current line's call.
    pub async fn end_call(&self) -> BizflyResult {
        self.on_current(|call| Action::Hangup { call }).await
    }

    /// `sdk.createLine2(phone, cb)`: only during another call; holds it.
    pub async fn create_line2(&self, phone: &str) -> BizflyResult {
        let Some(line1) = self.lines().await.into_iter().find(|l| l.line == 1) else {
            return BizflyResult::from(Err(Error::InvalidAction("line 2 needs a call on line 1".into())));
        };
        let action = Action::Consult {
            call: Some(line1.call.key),
            target: phone.to_string(),
            headers: Vec::new(),
            audio: Default::default(),
        };
        self.run(action).await
    }

    async fn on_current(&self, make: impl FnOnce(Option<CallKey>) -> Action) -> BizflyResult {
        let call = self.current().await.map(|l| l.call.key);
        self.run(make(call)).await
    }

    /// `sdk.mute(cb)`: what we send.
    pub async fn mute(&self) -> BizflyResult {
        self.on_current(|call| Action::Mute { call, direction: AudioDirection::Send }).await
    }

    /// `sdk.unmute(cb)`.
    pub async fn unmute(&self) -> BizflyResult {
        self.on_current(|call| Action::Unmute { call, direction: AudioDirection::Send }).await
    }

    /// `sdk.muteAudio(cb)`: what we hear.
    pub async fn mute_audio(&self) -> BizflyResult {
        self.on_current(|call| Action::Mute { call, direction: AudioDirection::Receive }).await
    }

    /// `sdk.unmuteAudio(cb)`.
    pub async fn unmute_audio(&self) -> BizflyResult {
        self.on_current(|call| Action::Unmute { call, direction: AudioDirection::Receive }).await
    }

    /// `sdk.hold(cb)`.
    pub async fn hold(&self) -> BizflyResult {
        self.on_current(|call| Action::Hold { call }).await
    }

    /// `sdk.unhold(cb)`: the current line, or the held one when every line is held.
    pub async fn unhold(&self) -> BizflyResult {
        self.on_current(|call| Action::Resume { call }).await
    }

    /// `sdk.sendDTMF(tone, cb)`.
    pub async fn send_dtmf(&self, tone: &str) -> BizflyResult {
        let digits = tone.to_string();
        self.on_current(|call| Action::Dtmf {
            call,
            digits,
            method: Default::default(),
            duration_ms: None,
            gap_ms: None,
        })
        .await
    }

    /// `sdk.transferCall(phone, cb)`: on line 1, a blind transfer to
    /// `phone`; on line 2, line 1's party joins line 2's and both our calls
    /// end (attended transfer).
    pub async fn transfer_call(&self, phone: Option<&str>) -> BizflyResult {
        let lines = self.lines().await;
        let line = |n: usize| lines.iter().find(|l| l.line == n).map(|l| l.call.key);
        match (self.current().await.map(|l| l.line), line(1), line(2)) {
            (Some(2), Some(first), Some(second)) => {
                self.run(Action::Complete { call: Some(first), with: second }).await
            }
            (_, Some(first), _) => match phone {
                Some(target) => self.run(Action::Transfer { call: Some(first), target: target.to_string() }).await,
                None => BizflyResult::from(Err(Error::InvalidAction("a transfer from line 1 needs a number".into()))),
            },
            _ => BizflyResult::from(Err(Error::InvalidAction("no call to transfer".into()))),
        }
    }

    /// `sdk.ping()`: `{line1, line2}`, each line's call and state (`null` when free).
    pub async fn ping(&self) -> Value {
        let lines = self.lines().await;
        let line = |n: usize| {
            lines.iter().find(|l| l.line == n).map_or(Value::Null, |l| {
                json!({
                    "call": call_data(&l.call),
                    "state": l.state,
                    "isOnHold": l.held_local,
                    "heldByRemote": l.held_remote,
                    "isMuted": l.muted_send,
                    "isAudioMuted": l.muted_receive,
                })
            })
        };
        json!({ "line1": line(1), "line2": line(2) })
    }

    /// `sdk.setMode(mode, cb)`.
    pub async fn set_mode(&self, mode: Mode) -> BizflyResult {
        self.run(Action::SetMode { mode }).await
    }

    /// `sdk.currentMode`.
    pub async fn current_mode(&self) -> Mode {
        match self.phone.execute(Action::Status).await {
            Ok(ActionOutcome::Status(status)) => status.mode,
            _ => self.phone.status().mode,
        }
    }

    /// `sdk.currentLine`: the line of the current call (1 or 2), if any.
    pub async fn current_line(&self) -> Option<usize> {
        self.current().await.map(|l| l.line)
    }

    /// `sdk.isRegistered`.
    pub fn is_registered(&self) -> bool {
        self.phone.is_registered()
    }

    /// `sdk.isConnected`.
    pub fn is_connected(&self) -> bool {
        self.phone.is_connected()
    }

    /// `sdk.isMuted`: what we send on the current line.
    pub async fn is_muted(&self) -> bool {
        self.current().await.is_some_and(|l| l.muted_send)
    }

    /// `sdk.isOnHold`: the current line is held by us.
    pub async fn is_on_hold(&self) -> bool {
        self.current().await.is_some_and(|l| l.held_local)
    }

    /// `sdk.histories(limit)`: the `limit` newest calls (30 when `None`),
    /// newest first, each a [`crate::history::CallRecord`] with its
    /// `callId` as listeners see it.
    #[cfg(feature = "history")]
    pub async fn histories(&self, limit: Option<usize>) -> BizflyResult {
        let records = self.phone.history(limit.unwrap_or(30)).await;
        BizflyResult::from(records.map(|records| records.iter().map(history_item).collect()))
    }

    /// `sdk.note(callId, data)`, `data` being `{note}` or `{rate, report}`:
    /// `callId` is a call's `X-bizfly-call-center-call-id`, else its SIP
    /// Call-ID, else a history item's `id`.
    #[cfg(feature = "history")]
    pub async fn note(&self, call_id: &str, data: &Value) -> BizflyResult {
        use crate::history::{CallRef, Note};
        let note = match serde_json::from_value::<Note>(data.clone()) {
            Ok(note) if !note.is_empty() => note,
            _ => {
                let why = format!("note data must be {{note}} or {{rate, report}}, not {data}");
                return BizflyResult::from(Err(Error::InvalidAction(why)));
            }
        };
        let mut refs = vec![
            CallRef::Header { name: CALL_ID_HEADER.into(), value: call_id.into() },
            CallRef::CallId(call_id.into()),
        ];
        refs.extend(call_id.parse().ok().map(CallRef::Record));
        let mut result = Err(Error::InvalidAction("no call id".into()));
        for which in refs {
            result = self.phone.note(which, note.clone()).await;
            if result.is_ok() {
                break;
            }
        }
        BizflyResult::from(result.map(|_| Value::Null))
    }
}

/// A history record as `histories` gives it: the record, and its `callId`
/// as the listeners give it.
#[cfg(feature = "history")]
fn history_item(record: &crate::history::CallRecord) -> Value {
    let call_center_id = record
        .headers
        .iter()
        .chain(&record.sent_headers)
        .find(|(n, _)| n.eq_ignore_ascii_case(CALL_ID_HEADER))
        .map(|(_, v)| v.clone());
    let mut item = serde_json::to_value(record).unwrap_or(Value::Null);
    item["callId"] = Value::String(call_center_id.unwrap_or_else(|| record.call_id.clone()));
    item
}
