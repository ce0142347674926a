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
}

impl Error {
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
        }
    }
}
