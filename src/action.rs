//! [`Action`]: every command a phone takes, as one serde enum.
//!
//! [`crate::Phone::execute`] runs an action; the typed methods of
//! [`crate::Phone`] and [`crate::Call`] are thin wrappers over it, and the
//! CLI's `phone` verb reads actions as JSON lines, so every front end speaks
//! the same vocabulary. An action serializes as
//! `{"action": "hangup", "call": 1}`; call-scoped actions that leave `call`
//! out act on the current call (the newest one that has not ended; for
//! `answer` and `reject`, the newest one ringing here).

use serde::{Deserialize, Serialize};

use crate::contract::CallKey;
use crate::media::{AudioSetup, CallStats, ReceiveAudio, SendAudio};

/// Which way of a call's audio: what we send or what we hear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioDirection {
    /// What we send (the microphone side).
    #[default]
    Send,
    /// What we hear (the speaker side).
    Receive,
}

/// A command to a phone.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Action {
    /// Register now (or as soon as connected) and keep the registration
    /// refreshed.
    Register,
    /// Remove the registration.
    Unregister,
    /// Place a call.
    Call {
        /// A number or user in our domain (`"1002"`), `user@host`, or a
        /// full `sip:` / `tel:` URI.
        target: String,
        /// Display name in our From header for this call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// Extra headers for the INVITE, in order (`[["X-Order-Id", "42"]]`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<(String, String)>,
        /// What the call sends and where what it hears goes.
        #[serde(default)]
        audio: AudioSetup,
    },
    /// Answer a call ringing here.
    Answer {
        /// The call (default: the newest one ringing here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// What the call sends and where what it hears goes.
        #[serde(default)]
        audio: AudioSetup,
    },
    /// Refuse a call ringing here.
    Reject {
        /// The call (default: the newest one ringing here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The SIP status, 300-699 (default 486 Busy Here; 603 Decline...).
        #[serde(default = "busy_here")]
        status: u16,
    },
    /// End a call in any state: CANCEL while it rings out, BYE once up,
    /// 486 while it rings here.
    Hangup {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// Hold a call: the peer is asked to stop sending (a re-INVITE offering
    /// `sendonly`); we send nothing meanwhile. Idempotent.
    Hold {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// Resume a call we hold. Idempotent.
    Resume {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// Blind transfer: ask the call's peer to call `target` (REFER);
    /// progress comes as `transfer_progress`, the outcome as
    /// `transfer_accepted` or `transfer_failed`.
    Transfer {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// A number or user in our domain, `user@host`, or a URI.
        target: String,
    },
    /// Consult before transferring: hold the call and call `target` on
    /// another line (the consultation call's key is the outcome).
    Consult {
        /// The call to transfer later (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// Whom to consult.
        target: String,
        /// Extra headers for the consultation INVITE.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<(String, String)>,
        /// The consultation call's audio.
        #[serde(default)]
        audio: AudioSetup,
    },
    /// Give up a consultation: hang it up and resume the call it was about.
    Retrieve {
        /// The consultation call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// Attended transfer: connect the peer of `call` with the peer of
    /// `with` (REFER with Replaces); both our calls end when it succeeds.
    Complete {
        /// The call to transfer (default: the call `with` consults about).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The consultation call: its peer takes over.
        with: CallKey,
    },
    /// Accept the peer's transfer request (policy `ask`): the new call is
    /// placed with this audio.
    AcceptTransfer {
        /// The call the request came in (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The new call's audio.
        #[serde(default)]
        audio: AudioSetup,
    },
    /// Refuse the peer's transfer request (policy `ask`): 603 Decline.
    RejectTransfer {
        /// The call the request came in (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// Silence one way of a call's audio (no renegotiation).
    Mute {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// Which way (default: what we send).
        #[serde(default)]
        direction: AudioDirection,
    },
    /// Undo [`Action::Mute`].
    Unmute {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// Which way (default: what we send).
        #[serde(default)]
        direction: AudioDirection,
    },
    /// Set a call's playback volume: 0.0 (silent) to 1.0 (as received), up to 4.0.
    Volume {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The volume.
        volume: f32,
    },
    /// Send this from now on (a prompt, a tone, silence), from the next
    /// frame; [`crate::Event::SendAudioEnded`] reports when a file runs out.
    SetSendAudio {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// What to send.
        audio: SendAudio,
    },
    /// Play what the call receives into this from now on (a recording, nowhere).
    SetReceiveAudio {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// Where it goes.
        audio: ReceiveAudio,
    },
    /// Choose which calls the phone takes (`active`, `outgoing`, `inactive`).
    SetMode {
        /// The mode.
        mode: crate::dialog::Mode,
    },
    /// Every line (call that has not ended) now, oldest first.
    Lines,
    /// Send DTMF digits (`0-9 * # A-D`, `,` a 2 s pause) on a call, after
    /// those queued by any method (one queue per call, digits one at a
    /// time); one [`crate::Event::DtmfSent`] per digit.
    Dtmf {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The digits.
        digits: String,
        /// `auto` (default), `rfc4733`, `info` or `inband`.
        #[serde(default)]
        method: crate::dtmf::DtmfMethod,
        /// Each digit's duration in ms (default 100, clamped to 40–6000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u32>,
        /// Silence after each digit in ms (default 70).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gap_ms: Option<u32>,
    },
    /// A call's media figures now.
    Stats {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// The phone's status now.
    Status,
    /// Record the call to a WAV file from now on (48 kHz 16-bit): `stereo`
    /// (what we send left, what we hear right, the default) or `mixed`. A
    /// recording already running is completed first.
    /// [`crate::Event::RecordingStarted`] follows, then
    /// [`crate::Event::RecordingStopped`] once the file is complete.
    Record {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
        /// The file to write.
        path: std::path::PathBuf,
        /// `stereo` or `mixed`.
        #[serde(default)]
        channels: crate::media::RecordChannels,
    },
    /// Stop recording the call (its file is completed).
    StopRecording {
        /// The call (default: the current one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<CallKey>,
    },
    /// The call history's newest records, newest first (needs
    /// [`crate::PhoneConfigBuilder::history`]).
    #[cfg(feature = "history")]
    History {
        /// How many (default 30, as Bizfly's `histories`).
        #[serde(default = "thirty")]
        limit: usize,
    },
    /// Note or rate calls in the history (Bizfly `note`): the fields given
    /// replace the record's, the others stay.
    #[cfg(feature = "history")]
    Note {
        /// Which records: `{"record": 12}`, `{"call_id": "..."}` or
        /// `{"header": {"name": "...", "value": "..."}}`.
        of: crate::history::CallRef,
        /// Free text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// A rating.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<i64>,
        /// What the rating says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<String>,
    },
}

#[cfg(feature = "history")]
fn thirty() -> usize {
    30
}

fn busy_here() -> u16 {
    486
}

impl Action {
    /// The action's name as it appears in JSON (`"hangup"`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Unregister => "unregister",
            Action::Call { .. } => "call",
            Action::Answer { .. } => "answer",
            Action::Reject { .. } => "reject",
            Action::Hangup { .. } => "hangup",
            Action::Hold { .. } => "hold",
            Action::Resume { .. } => "resume",
            Action::Transfer { .. } => "transfer",
            Action::Consult { .. } => "consult",
            Action::Retrieve { .. } => "retrieve",
            Action::Complete { .. } => "complete",
            Action::AcceptTransfer { .. } => "accept_transfer",
            Action::RejectTransfer { .. } => "reject_transfer",
            Action::Mute { .. } => "mute",
            Action::Unmute { .. } => "unmute",
            Action::Volume { .. } => "volume",
            Action::SetSendAudio { .. } => "set_send_audio",
            Action::SetReceiveAudio { .. } => "set_receive_audio",
            Action::SetMode { .. } => "set_mode",
            Action::Lines => "lines",
            Action::Dtmf { .. } => "dtmf",
            Action::Stats { .. } => "stats",
            Action::Status => "status",
            Action::Record { .. } => "record",
            Action::StopRecording { .. } => "stop_recording",
            #[cfg(feature = "history")]
            Action::History { .. } => "history",
            #[cfg(feature = "history")]
            Action::Note { .. } => "note",
        }
    }
}

/// What an action produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionOutcome {
    /// Done (or under way: its progress arrives as events).
    Done,
    /// The call an action created.
    Call(CallKey),
    /// A call's figures.
    Stats(Box<CallStats>),
    /// The phone's status.
    Status(PhoneStatus),
    /// The lines.
    Lines(Vec<LineInfo>),
    /// Call history records, newest first.
    #[cfg(feature = "history")]
    History(Vec<crate::history::CallRecord>),
}

/// One line: a call that has not ended (Bizfly's `ping`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineInfo {
    /// 1 for the oldest call, 2 for the next.
    pub line: usize,
    /// The call, with its timestamps.
    pub call: crate::CallInfo,
    /// `ringing`, `dialing`, `connecting`, `connected`.
    pub state: &'static str,
    /// We hold it.
    pub held_local: bool,
    /// The far end holds it.
    pub held_remote: bool,
    /// What we send is muted.
    pub muted_send: bool,
    /// What we hear is muted.
    pub muted_receive: bool,
}

/// The phone's state as one value, computed by the driver from the SIP
/// core and published on every change ([`crate::Phone::status`],
/// [`crate::Phone::status_changes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PhoneStatus {
    /// What the phone is doing.
    pub state: crate::dialog::PhoneState,
    /// Its number in the seeds' status table (Aliyun `getStatusCode`).
    pub code: i32,
    /// Which calls it takes.
    pub mode: crate::dialog::Mode,
    /// The WebSocket connection is up.
    pub connected: bool,
    /// The registrar holds our binding.
    pub registered: bool,
    /// Calls that have not ended, oldest first.
    pub calls: Vec<CallKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::DtmfMethod;

    #[test]
    fn dtmf_action_reads_as_the_issue_writes_it() {
        let a: Action =
            serde_json::from_str(r#"{"action":"dtmf","call":1,"digits":"123#","method":"rfc4733"}"#).unwrap();
        assert_eq!(a.name(), "dtmf");
        let Action::Dtmf { call, digits, method, duration_ms, gap_ms } = a else { panic!("not dtmf") };
        assert_eq!(
            (call, digits.as_str(), method, duration_ms, gap_ms),
            (Some(CallKey(1)), "123#", DtmfMethod::Rfc4733, None, None)
        );
        let a: Action = serde_json::from_str(r#"{"action":"dtmf","digits":"5"}"#).unwrap();
        assert!(matches!(a, Action::Dtmf { method: DtmfMethod::Auto, call: None, .. }));
    }

    #[test]
    fn transfer_actions_read_as_the_issue_writes_them() {
        let a: Action =
            serde_json::from_str(r#"{"action":"transfer","call":1,"target":"sip:carol@example.com"}"#).unwrap();
        assert!(matches!(&a, Action::Transfer { call: Some(CallKey(1)), target } if target == "sip:carol@example.com"));
        let a: Action = serde_json::from_str(r#"{"action":"complete","call":1,"with":2}"#).unwrap();
        assert!(matches!(a, Action::Complete { call: Some(CallKey(1)), with: CallKey(2) }));
        let a: Action = serde_json::from_str(r#"{"action":"complete","with":2}"#).unwrap();
        assert!(matches!(a, Action::Complete { call: None, with: CallKey(2) }));
        let a: Action = serde_json::from_str(r#"{"action":"consult","call":1,"target":"1003"}"#).unwrap();
        assert_eq!(a.name(), "consult");
        let a: Action = serde_json::from_str(r#"{"action":"retrieve","call":2}"#).unwrap();
        assert!(matches!(a, Action::Retrieve { call: Some(CallKey(2)) }));
        let a: Action = serde_json::from_str(r#"{"action":"accept_transfer"}"#).unwrap();
        assert!(matches!(a, Action::AcceptTransfer { call: None, .. }));
        assert!(serde_json::from_str::<Action>(r#"{"action":"complete","call":1}"#).is_err(), "`with` is required");
    }

    #[test]
    fn record_actions_read_as_the_readme_writes_them() {
        use crate::media::RecordChannels;
        let a: Action = serde_json::from_str(r#"{"action":"record","path":"call.wav"}"#).unwrap();
        assert_eq!(a.name(), "record");
        let Action::Record { call, path, channels } = a else { panic!("not record") };
        assert_eq!((call, path.to_str(), channels), (None, Some("call.wav"), RecordChannels::Stereo));
        let a: Action =
            serde_json::from_str(r#"{"action":"record","call":2,"path":"m.wav","channels":"mixed"}"#).unwrap();
        assert!(matches!(a, Action::Record { call: Some(CallKey(2)), channels: RecordChannels::Mixed, .. }));
        let a: Action = serde_json::from_str(r#"{"action":"stop_recording"}"#).unwrap();
        assert!(matches!(a, Action::StopRecording { call: None }));
        assert!(serde_json::from_str::<Action>(r#"{"action":"record"}"#).is_err(), "`path` is required");
    }

    #[cfg(feature = "history")]
    #[test]
    fn history_actions_read_as_bizfly_writes_them() {
        use crate::history::CallRef;
        let a: Action = serde_json::from_str(r#"{"action":"history"}"#).unwrap();
        assert!(matches!(a, Action::History { limit: 30 }), "Bizfly's default is 30: {a:?}");
        let a: Action = serde_json::from_str(
            r#"{"action":"note","of":{"header":{"name":"X-bizfly-call-center-call-id","value":"8842"}},"rate":1,"report":"Good"}"#,
        )
        .unwrap();
        assert_eq!(a.name(), "note");
        let Action::Note { of, note, rate, report } = a else { panic!("not note") };
        assert_eq!(of, CallRef::Header { name: "X-bizfly-call-center-call-id".into(), value: "8842".into() });
        assert_eq!((note, rate, report.as_deref()), (None, Some(1), Some("Good")));
        let a: Action = serde_json::from_str(r#"{"action":"note","of":{"record":3},"note":"called back"}"#).unwrap();
        assert!(matches!(a, Action::Note { of: CallRef::Record(3), .. }));
        assert!(serde_json::from_str::<Action>(r#"{"action":"note","note":"x"}"#).is_err(), "`of` is required");
    }
}
