//! [`Event`]: everything the phone reports, on one ordered stream per
//! subscriber ([`crate::Phone::events`]).
//!
//! Events serialize to JSON as `{"event": "registered", ...}` (snake_case
//! names, durations in milliseconds) so that tools can log them line by line.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::dialog::call::{CallDirection, CallKey, CallSnapshot, EndCause, Party};

/// A call as events report it (the seeds' per-call fields: Call-ID,
/// direction, parties, custom headers, and start / connect / end times in
/// milliseconds since the Unix epoch, as the NXCloud widget reports them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// The handle to use with [`crate::Phone`]'s call methods.
    pub key: CallKey,
    /// SIP Call-ID.
    pub call_id: String,
    /// `outgoing` or `incoming`.
    pub direction: CallDirection,
    /// This phone's party.
    pub local: Party,
    /// The other party.
    pub remote: Party,
    /// Extension headers received (name, value), e.g. `X-Order-Id`.
    pub headers: Vec<(String, String)>,
    /// When the call started (ms since the epoch).
    pub started_ms: u64,
    /// When it was answered.
    pub connected_ms: Option<u64>,
    /// When it ended.
    pub ended_ms: Option<u64>,
    /// Why it ended.
    pub end: Option<EndCause>,
    /// This call was placed because the peer of that call asked us to
    /// transfer it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transferred_from: Option<CallKey>,
}

/// Maps the core's monotonic instants to wall-clock milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    instant: Instant,
    epoch_ms: u64,
}

impl WallClock {
    pub(crate) fn new() -> WallClock {
        let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        WallClock { instant: tokio::time::Instant::now().into_std(), epoch_ms }
    }

    pub(crate) fn ms(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(d) => self.epoch_ms + d.as_millis() as u64,
            None => self.epoch_ms.saturating_sub(self.instant.duration_since(at).as_millis() as u64),
        }
    }

    pub(crate) fn call_info(&self, s: &CallSnapshot) -> CallInfo {
        CallInfo {
            key: s.key,
            call_id: s.call_id.clone(),
            direction: s.direction,
            local: s.local.clone(),
            remote: s.remote.clone(),
            headers: s.headers.clone(),
            started_ms: self.ms(s.started),
            connected_ms: s.connected.map(|t| self.ms(t)),
            ended_ms: s.ended.map(|t| self.ms(t)),
            end: s.end.clone(),
            transferred_from: s.transferred_from,
        }
    }
}

/// Something that happened to the phone.
// Moved once each from the core to the application; CallReplaced carries
// two calls, and boxing it would allocate per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The WebSocket connection to `server` is up.
    Connected {
        /// Server URL.
        server: String,
    },
    /// An established connection was lost.
    Disconnected {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
        /// When the next connection attempt happens (ms); `None` when stopping.
        retry_in_ms: Option<u64>,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
        /// The kind of failure; a [permanent](crate::FailureKind::is_permanent)
        /// one is not retried by default
        /// ([`crate::PhoneConfigBuilder::on_permanent_failure`]).
        kind: crate::FailureKind,
        /// When the next attempt happens (ms), possibly to another server;
        /// `None`: no more attempts (every server failed permanently) until
        /// [`crate::Phone::register`] is called again.
        retry_in_ms: Option<u64>,
        /// The server of the next attempt.
        next_server: Option<String>,
    },
    /// The registrar accepted our binding.
    Registered {
        /// Server URL the registration went through.
        server: String,
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// Our binding is gone.
    Unregistered {
        /// Server URL.
        server: String,
        /// Why (unregistered on request, connection closed, ...).
        reason: String,
    },
    /// Registration failed.
    RegistrationFailed {
        /// Server URL.
        server: String,
        /// SIP status of the final response (408 for a timeout).
        status: Option<u16>,
        /// Reason phrase or description.
        reason: String,
        /// The kind of failure; a [permanent](crate::FailureKind::is_permanent)
        /// one is not retried by default.
        kind: crate::FailureKind,
        /// When it is retried automatically (ms); `None`: not retried.
        retry_in_ms: Option<u64>,
    },
    /// We placed a call.
    CallOutgoing {
        /// The call.
        call: CallInfo,
    },
    /// A call is ringing here.
    CallIncoming {
        /// The call.
        call: CallInfo,
    },
    /// The far end reports progress: ringing (180) or early media (183 with SDP).
    CallProgress {
        /// The call.
        call: CallInfo,
        /// The 18x status.
        status: u16,
        /// Its reason phrase.
        reason: String,
        /// Early media is flowing.
        early_media: bool,
    },
    /// The call is answered and confirmed.
    CallConfirmed {
        /// The call.
        call: CallInfo,
    },
    /// The call is held, by us ([`crate::Phone::hold`] succeeded) or by the
    /// far end (its offer stopped receiving).
    CallHeld {
        /// The call.
        call: CallInfo,
        /// Who holds it: `local` or `remote`.
        by: crate::Originator,
    },
    /// The call is no longer held by `by`.
    CallResumed {
        /// The call.
        call: CallInfo,
        /// Who resumed: `local` or `remote`.
        by: crate::Originator,
    },
    /// A hold or resume of ours failed; the call goes on as it was.
    HoldFailed {
        /// The call.
        call: CallInfo,
        /// The final response, if any (488, 5xx; 408 for a time-out).
        status: Option<u16>,
        /// Why.
        reason: String,
    },
    /// Our transfer's target is being called: the status the transferee
    /// reported (100 Trying, 180 Ringing...).
    TransferProgress {
        /// The call being transferred.
        call: CallInfo,
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Our transfer succeeded: the target answered (Bizfly `referAccepted`).
    /// A blind transfer's call then ends (unless configured otherwise); an
    /// attended transfer ends both calls.
    TransferAccepted {
        /// The call transferred.
        call: CallInfo,
    },
    /// Our transfer failed (REFER refused, target busy or unreachable, no
    /// final word in time): the call goes on as it was (Bizfly `referFailed`).
    TransferFailed {
        /// The call.
        call: CallInfo,
        /// The REFER's refusal or the target's final status, if there was one.
        status: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The peer asks us to call someone else (REFER). With the `ask` policy
    /// answer it with [`crate::Phone::accept_transfer`] or
    /// [`crate::Phone::reject_transfer`]; otherwise the policy already did.
    TransferRequested {
        /// The call the request came in.
        call: CallInfo,
        /// Whom to call.
        target: String,
        /// Who asked (the Referred-By header), if said.
        referred_by: Option<String>,
        /// The new call replaces a call of the target's (attended transfer).
        replaces: bool,
    },
    /// After a reconnection, the peer learned how to reach us over the new
    /// connection (our target refresh was answered 2xx): its BYE will arrive.
    TargetRefreshed {
        /// The call.
        call: CallInfo,
    },
    /// After a reconnection, the call could not tell the peer how to reach
    /// us now (the target refresh failed); it is tried again after
    /// `retry_in_ms` and the call goes on.
    TargetRefreshFailed {
        /// The call.
        call: CallInfo,
        /// The final response, if one came.
        status: Option<u16>,
        /// Why.
        reason: String,
        /// When the next attempt goes out.
        retry_in_ms: u64,
    },
    /// A call that came in with `Replaces` took the place of one of ours
    /// (we were the target of an attended transfer): `new` is answered,
    /// `old` ends.
    CallReplaced {
        /// The call replaced.
        old: CallInfo,
        /// The call replacing it.
        new: CallInfo,
    },
    /// The call ended; `call.end` says who ended it and why.
    CallEnded {
        /// The call.
        call: CallInfo,
        /// The call's last media figures (`None` when it never had media).
        stats: Option<Box<crate::media::CallStats>>,
    },
    /// A call's received audio passed a quality threshold (loss, jitter, no
    /// audio) or is back to normal; thresholds are set with
    /// [`crate::PhoneConfigBuilder::quality_thresholds`].
    CallQuality {
        /// The call.
        call: CallInfo,
        /// What was passed, raised or cleared.
        alert: crate::media::receive::quality::QualityAlert,
    },
    /// What a call sends ran out (a WAV file played to its end, not
    /// looping); the call goes on sending silence until told otherwise
    /// ([`crate::Action::SetSendAudio`]). An IVR's cue for the next prompt.
    SendAudioEnded {
        /// The call.
        call: CallInfo,
    },
    /// A DTMF digit was received (when it ended), by any method.
    DtmfReceived {
        /// The call.
        call: CallInfo,
        /// One of the 16 symbols `0-9 * # A-D`.
        digit: char,
        /// How long it lasted (RFC 4733, in-band) or said it lasted (INFO).
        duration_ms: u32,
        /// `rfc4733`, `info` or `inband`.
        method: crate::dtmf::DtmfMethod,
    },
    /// A DTMF digit was sent: its last RFC 4733 packet or tone sample left,
    /// or its INFO was accepted.
    DtmfSent {
        /// The call.
        call: CallInfo,
        /// The symbol.
        digit: char,
        /// `rfc4733`, `info` or `inband`.
        method: crate::dtmf::DtmfMethod,
    },
    /// A call's recording began ([`crate::Action::Record`]): the file is
    /// being written.
    RecordingStarted {
        /// The call.
        call: CallInfo,
        /// The WAV file.
        path: std::path::PathBuf,
        /// `stereo` (what we send left, what we hear right) or `mixed`.
        channels: crate::media::RecordChannels,
    },
    /// A call's recording is complete (stopped, or replaced by another).
    /// A recording still running when the call ends is completed too, but
    /// reported only by the history and the file.
    RecordingStopped {
        /// The call.
        call: CallInfo,
        /// The WAV file.
        path: std::path::PathBuf,
        /// What went wrong writing it, if anything (the file holds what was
        /// written before).
        error: Option<String>,
    },
    /// Malformed messages were received and dropped or rejected. A burst
    /// is reported in one event per second at most: the first at once,
    /// the rest counted.
    MalformedMessage {
        /// What was wrong with the last of them.
        why: String,
        /// How many this event stands for (1 for a lone one).
        count: u64,
    },
    /// This subscriber fell behind: its queue was full and `missed` events
    /// (of any kind, call events included) were not queued in this place.
    /// Re-read what matters ([`crate::Phone::status`], [`crate::Action::Lines`]).
    /// See [`crate::Phone::events`] for the policy.
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
    /// The phone's state changed (Aliyun `onStatusChange`).
    StatusChanged {
        /// The new state.
        state: crate::PhoneState,
        /// Its code ([`crate::PhoneState::code`]).
        code: i32,
        /// The previous code.
        last: i32,
    },
    /// The phone stopped; no more events follow.
    Stopped,
}

impl Event {
    /// The call an event is about, if it is about one.
    pub fn call(&self) -> Option<&CallInfo> {
        match self {
            Event::CallOutgoing { call }
            | Event::CallIncoming { call }
            | Event::CallProgress { call, .. }
            | Event::CallConfirmed { call }
            | Event::CallHeld { call, .. }
            | Event::CallResumed { call, .. }
            | Event::HoldFailed { call, .. }
            | Event::TransferProgress { call, .. }
            | Event::TransferAccepted { call }
            | Event::TransferFailed { call, .. }
            | Event::TransferRequested { call, .. }
            | Event::CallReplaced { new: call, .. }
            | Event::TargetRefreshFailed { call, .. }
            | Event::TargetRefreshed { call }
            | Event::CallEnded { call, .. }
            | Event::CallQuality { call, .. }
            | Event::SendAudioEnded { call }
            | Event::DtmfReceived { call, .. }
            | Event::DtmfSent { call, .. }
            | Event::RecordingStarted { call, .. }
            | Event::RecordingStopped { call, .. } => Some(call),
            _ => None,
        }
    }
}
