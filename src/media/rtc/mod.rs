//! The WebRTC side of a call: one audio-only peer connection per call
//! ([`peer`], over webrtc-rs), split by concern: its settings ([`config`]),
//! what it may send ([`gate`]), the RTCP interceptor that reads the
//! remote's reports ([`interceptor`]), its figures ([`stats`]), which local
//! addresses it binds (`interfaces`), the runtime and UDP sockets its driver
//! runs on (`socket`), and the fixes applied to remote SDP
//! for interoperability ([`sdp`]).

pub mod config;
pub mod gate;
pub mod interceptor;
pub(crate) mod interfaces;
pub mod peer;
pub mod sdp;
pub(crate) mod socket;
pub mod stats;

pub use config::{AudioCodecs, IceConfig, IceServer, PeerConfig};
pub use gate::{DropReason, SendOutcome};
pub use interceptor::{dlsr, report_blocks};
pub use peer::{Codec, MediaError, Negotiated, Peer, PeerState, RtpIn};
pub use stats::PeerStats;
