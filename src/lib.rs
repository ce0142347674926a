#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # webphone
//!
//! A headless SIP-over-WebSocket user agent: the phone that call-center
//! platforms put in an agent's browser, for Rust programs with no browser
//! (voice bots, CRM back ends, call testing, kiosks).
//!
//! This release does registration: it connects to one of several `ws://` /
//! `wss://` servers (RFC 7118), registers with digest authentication (MD5,
//! SHA-256, SHA-512-256; `qop=auth`), refreshes before expiry, keeps the
//! connection alive, reconnects with backoff and fails over between
//! servers, and reports all of it on one event stream. Calls and media
//! come next; they are not here yet.
//!
//! ```no_run
//! use webphone::{Event, Phone, PhoneConfig};
//!
//! # async fn run() -> Result<(), webphone::Error> {
//! let config = PhoneConfig::builder()
//!     .server("wss://pbx.example.com:7443/ws")
//!     .server("wss://backup.example.com:7443/ws")
//!     .user("1001")
//!     .password("secret")
//!     .domain("example.com")
//!     .build()?;
//! let phone = Phone::new(config);
//! let mut events = phone.events();
//! phone.start()?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Registered { expires, .. } => println!("registered for {expires} s"),
//!         Event::RegistrationFailed { status, reason, .. } => {
//!             eprintln!("registration failed: {status:?} {reason}");
//!             break;
//!         }
//!         other => println!("{other:?}"),
//!     }
//! }
//! phone.stop().await?;
//! # Ok(()) }
//! ```
//!
//! ## The model
//! - [`Phone`] is a cheap handle; a driver task (tokio) owns the connection.
//! - The SIP logic ([`dialog`]) is sans-IO: it takes time as an argument and
//!   returns what to send, so its timers are tested without sleeping.
//! - [`sip`] is the message layer: zero-copy parsing, typed headers on
//!   demand, RFC 4475 torture tests passed.
//! - Passwords live in [`Password`], which never prints; SIP logged at
//!   `trace` level has its Authorization headers redacted.

pub mod dialog;
pub mod media;
pub mod sip;
pub mod transport;

mod config;
mod error;
mod event;
mod phone;
mod secret;

pub use config::{PhoneConfig, PhoneConfigBuilder};
pub use error::Error;
pub use dialog::call::{CallKey, Direction, EndCause, Originator, Party};
pub use dialog::invite::{CallError, CallRequest};
pub use event::{CallInfo, Event};
pub use phone::{CallOptions, Events, Phone};
pub use secret::Password;
pub use transport::keepalive::PingKind;
pub use transport::tls::TlsConfig;
