//! [`Event`]: everything the phone reports, on one ordered stream per
//! subscriber ([`crate::Phone::events`]).
//!
//! Events serialize to JSON as `{"event": "registered", ...}` (snake_case
//! names, durations in milliseconds) so that tools can log them line by line.

use serde::Serialize;

/// Something that happened to the phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
        /// When the next attempt happens (ms), possibly to another server.
        retry_in_ms: u64,
        /// The server of the next attempt.
        next_server: String,
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
        /// When it is retried automatically (ms); `None`: not retried.
        retry_in_ms: Option<u64>,
    },
    /// A malformed message was received and dropped or rejected.
    MalformedMessage {
        /// What was wrong.
        why: String,
    },
    /// The phone stopped; no more events follow.
    Stopped,
}
