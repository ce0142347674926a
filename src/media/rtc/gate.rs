//! What [`Peer::send_rtp`](super::peer::Peer::send_rtp) may send: the
//! gate refreshed after every direction change and negotiation, and what it
//! says about a packet.

use std::fmt;
use std::sync::Arc;

use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

#[cfg(doc)]
use crate::media::rtc::peer::{Peer, PeerState};
#[cfg(doc)]
use crate::media::rtc::stats::PeerStats;

/// Why [`Peer::send_rtp`] did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The connection is not in [`PeerState::Connected`] (no SRTP keys yet,
    /// or disconnected).
    NotConnected,
    /// Our direction, or the negotiated one, has no send (hold, a
    /// `recvonly` answer, a `sendonly` offer from the remote, ...).
    NotSending,
    /// The payload type is not one the remote accepted.
    PayloadType(u8),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::NotConnected => f.write_str("not connected"),
            DropReason::NotSending => f.write_str("direction does not send"),
            DropReason::PayloadType(pt) => write!(f, "payload type {pt} not negotiated"),
        }
    }
}

/// What [`Peer::send_rtp`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the connection for encryption and sending.
    Sent,
    /// Not sent, and counted in [`PeerStats::packets_dropped`].
    Dropped(DropReason),
}

/// What may be sent, refreshed after every direction change and negotiation.
#[derive(Default)]
pub(crate) struct Gate {
    pub(crate) sending: bool,
    pub(crate) payload_types: Vec<u8>,
    pub(crate) track: Option<Arc<TrackLocalStaticRTP>>,
}
