//! A peer's counters and measurements ([`PeerStats`]).

use std::time::Duration;

#[cfg(doc)]
use crate::media::rtc::gate::SendOutcome;
#[cfg(doc)]
use crate::media::rtc::peer::{Peer, PeerState, RtpIn};

/// Counters and measurements of a peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerStats {
    /// Packets handed to webrtc by [`Peer::send_rtp`].
    pub packets_sent: u64,
    /// Payload bytes of those.
    pub bytes_sent: u64,
    /// Packets [`Peer::send_rtp`] refused ([`SendOutcome::Dropped`]).
    pub packets_dropped: u64,
    /// Packets read from the remote track.
    pub packets_received: u64,
    /// Payload bytes of those.
    pub bytes_received: u64,
    /// Received packets discarded because the [`RtpIn`] queue was full or gone.
    pub receive_queue_dropped: u64,
    /// Packets webrtc reports as sent on the wire (after SRTP).
    pub wire_packets_sent: u64,
    /// Round-trip time of the selected ICE candidate pair (STUN consent
    /// checks; webrtc 0.21's own RTCP RTT statistic is hard-coded to 0).
    pub rtt: Option<Duration>,
    /// Round-trip time from RTCP: the remote's last report block that
    /// echoed one of our sender reports (arrival − LSR − DLSR). `None` while
    /// we send nothing or the remote does not echo.
    pub rtcp_rtt: Option<Duration>,
    /// From the remote's last RTCP report block about our stream (RR, or
    /// the blocks of its SR): cumulative packets lost. `None` until one arrived.
    pub remote_packets_lost: Option<i64>,
    /// From the same block: fraction lost (0..1) since its previous report.
    pub remote_fraction_lost: Option<f64>,
    /// From the same block: interarrival jitter.
    pub remote_jitter: Option<Duration>,
    /// From our own receiver reports about the remote stream: cumulative loss.
    pub packets_lost: Option<i64>,
    /// From our own receiver reports: interarrival jitter (`None` while
    /// the value is an rtc 0.21 timestamp-wrap artefact, see `stats`).
    pub jitter: Option<Duration>,
    /// Time from [`Peer::new`] to the first [`PeerState::Connected`].
    pub connect_time: Option<Duration>,
    /// The remote's connectivity checks answered by our sockets before its
    /// answer to our offer was applied (see `socket`).
    pub early_checks_answered: u64,
    /// DTLS / RTP datagrams that arrived before ICE connected and were held
    /// for it rather than dropped.
    pub early_datagrams_held: u64,
}
