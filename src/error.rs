//! The crate's error type. Errors are data: each variant carries what a
//! caller needs to react, and none carries a password or digest.

/// Everything that can go wrong in a call to the `webphone` API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A server URL is not a usable `ws://` / `wss://` URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidServer {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The WebSocket connection could not be opened.
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        /// The server URL.
        server: String,
        /// What failed.
        reason: String,
        /// The kind of failure (whether retrying can heal it).
        kind: FailureKind,
    },
    /// The server did not accept the `sip` WebSocket subprotocol.
    #[error("{server} did not accept the `sip` WebSocket subprotocol")]
    SubprotocolRejected {
        /// The server URL.
        server: String,
    },
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The phone was not started, or has stopped.
    #[error("the phone is not running")]
    NotRunning,
    /// A call command was refused (see [`crate::dialog::CallError`]).
    #[error("call: {0}")]
    Call(#[from] crate::dialog::CallError),
    /// An action's arguments are not usable (a reject status outside
    /// 300-699, a volume outside 0-4, no call to act on).
    #[error("invalid action: {0}")]
    InvalidAction(String),
    /// The action does not fit what the phone is doing (answering with
    /// nothing ringing, holding a call not yet up, dialing while inactive):
    /// Aliyun's error 9001.
    #[error("{action} is not allowed in status {status}")]
    NotAllowed {
        /// The action's name (`"hold"`).
        action: String,
        /// The phone's status code when it was refused ([`crate::PhoneState::code`]).
        status: i32,
    },
    /// The dial interceptor vetoed the call.
    #[error("call vetoed: {0}")]
    CallVetoed(String),
    /// `start` was called outside a tokio runtime.
    #[error("Phone::start must be called inside a tokio runtime")]
    NoRuntime,
    /// `start` was called on a running phone.
    #[error("the phone is already running")]
    AlreadyRunning,
    /// The call history could not be opened, read or written, or names no
    /// such call.
    #[cfg(feature = "history")]
    #[error("call history: {0}")]
    History(String),
}

impl Error {
    /// The kind of a connection failure: `Some` for [`Error::Connect`],
    /// [`Error::SubprotocolRejected`] and [`Error::Tls`].
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            Error::Connect { kind, .. } => Some(*kind),
            Error::SubprotocolRejected { .. } => Some(FailureKind::Subprotocol),
            // Our own root certificates could not be loaded.
            Error::Tls(_) => Some(FailureKind::Certificate),
            _ => None,
        }
    }

    /// A short, stable name for the kind of error (`"no_such_call"`,
    /// `"busy"`, `"not_running"`, ...), for programs that read errors as data
    /// (the CLI's `phone` verb prints it in `action_result`).
    pub fn kind(&self) -> &'static str {
        use crate::dialog::CallError;
        match self {
            Error::Config(_) => "config",
            Error::InvalidServer { .. } => "invalid_server",
            Error::Connect { .. } => "connect",
            Error::SubprotocolRejected { .. } => "subprotocol_rejected",
            Error::Tls(_) => "tls",
            Error::NotRunning => "not_running",
            Error::Call(CallError::NoSuchCall) => "no_such_call",
            Error::Call(CallError::InvalidState) => "invalid_state",
            Error::Call(CallError::InvalidTarget(_)) => "invalid_target",
            Error::Call(CallError::Busy) => "busy",
            Error::Call(CallError::NotConnected) => "not_connected",
            Error::Call(CallError::InvalidHeader(_)) => "invalid_header",
            Error::Call(CallError::ModeForbids) => "mode_forbids",
            Error::NotAllowed { .. } => "not_allowed",
            Error::Call(CallError::InvalidDigits(_)) => "invalid_digits",
            Error::InvalidAction(_) => "invalid_action",
            Error::CallVetoed(_) => "vetoed",
            Error::NoRuntime => "no_runtime",
            Error::AlreadyRunning => "already_running",
            #[cfg(feature = "history")]
            Error::History(_) => "history",
        }
    }
}

/// Why connecting or registering failed, as data: what
/// [`crate::Event::ConnectFailed`] and [`crate::Event::RegistrationFailed`]
/// carry, and what the retry policy reads. Serialized in snake_case
/// (`"certificate"`, `"forbidden"`, ...).
///
/// Some kinds are [permanent](FailureKind::is_permanent): they are
/// configuration errors that no retry heals (a certificate that fails
/// verification, a server that refuses the `sip` subprotocol, a 403). The
/// phone does not retry those (see
/// [`crate::PhoneConfigBuilder::on_permanent_failure`]); it retries the
/// others with backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The server's TLS certificate failed verification (unknown issuer,
    /// expired, another name), or our root certificates are unusable.
    /// Permanent.
    Certificate,
    /// The TLS handshake failed for another reason (no common protocol
    /// version or cipher suite, an alert from the server).
    Tls,
    /// The server did not accept the `sip` WebSocket subprotocol. Permanent.
    Subprotocol,
    /// The server answered the WebSocket upgrade with an HTTP 4xx (a wrong
    /// path, an origin it forbids). Permanent.
    HandshakeRefused,
    /// Nothing accepts connections at that address (TCP connection refused).
    ConnectionRefused,
    /// No answer in time (connection, handshake or SIP transaction).
    Timeout,
    /// Another network error (name resolution, reset, unreachable).
    Network,
    /// The server failed (HTTP 5xx to the upgrade, SIP 5xx).
    ServerError,
    /// The registrar refused our credentials (a second challenge, or no
    /// challenge we can answer). Permanent.
    Unauthorized,
    /// 403 Forbidden. Permanent.
    Forbidden,
    /// 404 Not Found: the registrar does not know the user. Permanent.
    NotFound,
    /// 6xx: the registrar declines everywhere. Permanent.
    Declined,
    /// The registrar accepts no expiry we can ask for (423 without a usable
    /// Min-Expires, or a binding granted for 0 s). Permanent.
    IntervalRefused,
    /// Another SIP failure (a 4xx not listed above).
    Rejected,
}

impl FailureKind {
    /// True for configuration errors that retrying will not heal.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            FailureKind::Certificate
                | FailureKind::Subprotocol
                | FailureKind::HandshakeRefused
                | FailureKind::Unauthorized
                | FailureKind::Forbidden
                | FailureKind::NotFound
                | FailureKind::Declined
                | FailureKind::IntervalRefused
        )
    }

    /// The kind of a final SIP status that ends a registration attempt
    /// (401/407 here means the credentials were refused; 408 a time-out).
    pub fn of_sip_status(status: u16) -> FailureKind {
        match status {
            401 | 407 => FailureKind::Unauthorized,
            403 => FailureKind::Forbidden,
            404 => FailureKind::NotFound,
            408 => FailureKind::Timeout,
            423 => FailureKind::IntervalRefused,
            500..=599 => FailureKind::ServerError,
            600..=699 => FailureKind::Declined,
            _ => FailureKind::Rejected,
        }
    }

    /// The snake_case name (`"certificate"`), as serialized.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Certificate => "certificate",
            FailureKind::Tls => "tls",
            FailureKind::Subprotocol => "subprotocol",
            FailureKind::HandshakeRefused => "handshake_refused",
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Network => "network",
            FailureKind::ServerError => "server_error",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Forbidden => "forbidden",
            FailureKind::NotFound => "not_found",
            FailureKind::Declined => "declined",
            FailureKind::IntervalRefused => "interval_refused",
            FailureKind::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the phone does after a [permanent](FailureKind::is_permanent)
/// failure ([`crate::PhoneConfigBuilder::on_permanent_failure`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PermanentFailurePolicy {
    /// Report it and stop trying (the default). A server that failed
    /// permanently is left out of later connection rounds; when every
    /// server has, or the registrar refused us, the phone stays idle until
    /// [`crate::Phone::register`] is called again. A retry would fail the
    /// same way until someone changes the configuration, and retrying in
    /// silence hides the error.
    #[default]
    Stop,
    /// Retry, but no sooner than this after the failure (a deployment that
    /// must come back by itself once the server's certificate or the account
    /// is fixed).
    RetryAfter(std::time::Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_kinds_are_the_configuration_errors() {
        for kind in [
            FailureKind::Certificate,
            FailureKind::Subprotocol,
            FailureKind::HandshakeRefused,
            FailureKind::Unauthorized,
            FailureKind::Forbidden,
            FailureKind::NotFound,
            FailureKind::Declined,
            FailureKind::IntervalRefused,
        ] {
            assert!(kind.is_permanent(), "{kind}");
        }
        for kind in [
            FailureKind::Tls,
            FailureKind::ConnectionRefused,
            FailureKind::Timeout,
            FailureKind::Network,
            FailureKind::ServerError,
            FailureKind::Rejected,
        ] {
            assert!(!kind.is_permanent(), "{kind}");
        }
    }

    #[test]
    fn sip_statuses_are_classified() {
        let kinds: Vec<_> = [401, 407, 403, 404, 408, 423, 480, 500, 503, 603]
            .into_iter()
            .map(|s| FailureKind::of_sip_status(s).name())
            .collect();
        assert_eq!(
            kinds,
            [
                "unauthorized",
                "unauthorized",
                "forbidden",
                "not_found",
                "timeout",
                "interval_refused",
                "rejected",
                "server_error",
                "server_error",
                "declined"
            ]
        );
    }

    #[test]
    fn kinds_serialize_as_their_names() {
        for kind in [FailureKind::Certificate, FailureKind::HandshakeRefused, FailureKind::IntervalRefused] {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::String(kind.name().into())));
        }
        let e = Error::SubprotocolRejected { server: "ws://x".into() };
        assert_eq!(e.failure_kind(), Some(FailureKind::Subprotocol));
    }
}
