//! The call history (feature `history`, on by default): every call a
//! phone makes or takes, kept in an embedded SQLite database, with notes
//! and ratings (Bizfly's `histories` / `note`), exportable as JSON or CSV.
//!
//! Turn it on with [`crate::PhoneConfigBuilder::history`]; read it with
//! [`crate::Phone::history`], note a call with [`crate::Phone::note`] (or
//! the `history` and `note` actions), or open the file with [`Store`] from
//! any program.
//!
//! A call's record is written when the call starts (placed, or ringing
//! here) and completed as it goes (answered, ended, its final media
//! figures, the DTMF digits sent and received): a process killed in the
//! middle of a call leaves a record with its start (and answer) and no end.
//! Writes happen on a thread of their own fed from the phone's events
//! (`writer`), so a slow disk never holds up the SIP driver or the audio.
//!
//! - `schema`: the tables and their migrations (SQLite `user_version`);
//! - `store`: [`Store`], the database;
//! - `export`: [`to_json`] and [`to_csv`];
//! - `writer`: the thread that records a phone's calls.

mod export;
mod schema;
mod store;
pub(crate) mod writer;

use serde::{Deserialize, Serialize};

use crate::CallKey;
use crate::dialog::call::{CallDirection, EndCause, Party};

pub use export::{to_csv, to_json};
pub use store::Store;

/// One call as the history keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    /// The record's id in the history (Bizfly's history item id).
    pub id: i64,
    /// The call's key in the phone that made the record (unique only
    /// within that phone's life).
    pub call_key: CallKey,
    /// SIP Call-ID.
    pub call_id: String,
    /// `outgoing` or `incoming`.
    pub direction: CallDirection,
    /// This phone's party.
    pub local: Party,
    /// The other party.
    pub remote: Party,
    /// Extension headers received: on the INVITE of an incoming call
    /// (`X-bizfly-call-center-call-id`, ...), on the final response of an
    /// outgoing one.
    pub headers: Vec<(String, String)>,
    /// Extension headers we sent on an outgoing call's INVITE (NXCloud's
    /// `orderId` and `params`, ...).
    pub sent_headers: Vec<(String, String)>,
    /// When the call started: INVITE sent or received (ms since the epoch).
    pub started_ms: u64,
    /// When it was answered.
    pub answered_ms: Option<u64>,
    /// When it ended; `None` while it goes on, or when the process
    /// stopped before it ended (killed, crashed).
    pub ended_ms: Option<u64>,
    /// Why it ended.
    pub end: Option<EndCause>,
    /// The call's last media figures ([`crate::CallStats`] as JSON), when
    /// it had media and ended.
    pub stats: Option<serde_json::Value>,
    /// DTMF digits sent, in order.
    pub dtmf_sent: String,
    /// DTMF digits received, in order.
    pub dtmf_received: String,
    /// Where the call was recorded, if it was (its latest recording).
    pub recording: Option<String>,
    /// The note written about the call.
    pub note: Option<String>,
    /// Its rating.
    pub rate: Option<i64>,
    /// The report that goes with the rating.
    pub report: Option<String>,
    /// When the note or rating was last written.
    pub noted_ms: Option<u64>,
}

/// A note or a rating for a call (Bizfly `note(callId, {note})` or
/// `note(callId, {rate, report})`): the fields given replace the record's,
/// those left `None` stay as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<i64>,
    /// What the rating says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl Note {
    /// True when it sets nothing.
    pub fn is_empty(&self) -> bool {
        self.note.is_none() && self.rate.is_none() && self.report.is_none()
    }
}

/// Which call records an operation is about. In JSON: `{"record": 12}`,
/// `{"call_id": "a84b4c76e66710"}` or
/// `{"header": {"name": "X-bizfly-call-center-call-id", "value": "8842"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallRef {
    /// A record by its [`CallRecord::id`].
    Record(i64),
    /// The records of a SIP Call-ID.
    CallId(String),
    /// The records of calls that carried this header (received or sent;
    /// the name compared without regard to case).
    Header {
        /// The header's name.
        name: String,
        /// Its value.
        value: String,
    },
}

impl std::fmt::Display for CallRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallRef::Record(id) => write!(f, "record {id}"),
            CallRef::CallId(id) => write!(f, "Call-ID {id:?}"),
            CallRef::Header { name, value } => write!(f, "{name}: {value:?}"),
        }
    }
}

/// A database file in the temporary directory, removed (with its WAL
/// files) when dropped.
#[cfg(test)]
pub(crate) struct TempDb(pub(crate) std::path::PathBuf);

#[cfg(test)]
impl TempDb {
    pub(crate) fn new(name: &str) -> TempDb {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempDb(std::env::temp_dir().join(format!("webphone-{name}-{}-{n}.sqlite", std::process::id())))
    }
}

#[cfg(test)]
impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
