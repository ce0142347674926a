//! The WebRTC side of a call: one audio-only peer connection per call
//! ([`peer`], over webrtc-rs), split by concern: its settings ([`config`]),
//! what it may send ([`gate`]), the RTCP interceptor that reads the
//! remote's reports ([`interceptor`]), its figures ([`stats`]), which local
//! addresses it binds (`interfaces`), the runtime and UDP sockets its driver
//! runs on (`socket`) and the early connectivity checks they answer
//! (`early_checks`), and the fixes applied to remote SDP
//! for interoperability ([`sdp`]).

pub mod config;
pub(crate) mod early_checks;
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

/// Hooks for the fuzz targets. Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::net::SocketAddr;

    use super::early_checks::LocalIce;

    /// The username fragment the hooks answer for.
    pub const UFRAG: &str = "ab12";
    /// The password the hooks answer with.
    pub const PWD: &str = "0123456789abcdefghijklmn";

    /// What the peer's sockets answer to `datagram` before the answer is
    /// applied (see `early_checks`), with [`UFRAG`] / [`PWD`].
    pub fn answer_early_check(datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        LocalIce::new(UFRAG.into(), PWD.into()).answer(datagram, from)
    }

    /// A valid check for us from `remote_ufrag`, to mutate.
    pub fn valid_check(remote_ufrag: &str) -> Vec<u8> {
        super::early_checks::check_for_tests(&format!("{UFRAG}:{remote_ufrag}"), PWD)
    }
}
