//! A peer's settings: ICE ([`IceConfig`], [`IceServer`]) and the audio
//! codecs it offers ([`AudioCodecs`]), with the payload types we offer them at.

use std::net::IpAddr;
use std::time::Duration;

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_PCMA, MIME_TYPE_PCMU, MIME_TYPE_TELEPHONE_EVENT,
};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters};

use crate::media::codec::common::CodecKind;
use crate::media::rtc::sdp;
#[cfg(doc)]
use crate::media::rtc::{
    peer::{MediaError, Peer, RtpIn},
    stats::PeerStats,
};

/// Payload type we offer Opus at.
pub const PT_OPUS: u8 = 111;
/// Payload type of PCMU (static).
pub const PT_PCMU: u8 = 0;
/// Payload type of PCMA (static).
pub const PT_PCMA: u8 = 8;
/// Payload type we offer telephone-event/48000 at (RFC 4733, with Opus).
pub const PT_TELEPHONE_EVENT_48K: u8 = 110;
/// Payload type we offer telephone-event/8000 at (RFC 4733, with G.711).
pub const PT_TELEPHONE_EVENT_8K: u8 = 101;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// A STUN or TURN server.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp` (webrtc 0.21 skips
    /// `turns:` and TCP TURN with a warning).
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// ICE settings of a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceConfig {
    /// STUN/TURN servers; none by default.
    pub servers: Vec<IceServer>,
    /// The longest [`Peer::create_offer`], [`Peer::answer`] and
    /// [`Peer::reoffer`] wait for candidate gathering; the SDP then carries
    /// whatever was gathered so far. Default 2 s. (webrtc retries an
    /// unanswered STUN request for about 8 s.)
    pub gather_timeout: Duration,
    /// Like Chromium's `--allow-loopback-in-peer-connection`: also bind
    /// `127.0.0.1` (and `::1` when the host has it) and offer those host
    /// candidates. Needed to talk to a PBX or a test peer on the same host.
    pub allow_loopback: bool,
    /// The local addresses to bind, one UDP socket (port chosen by the OS)
    /// and one host candidate each. Wildcards (`0.0.0.0`, `::`) are
    /// refused, and loopback addresses need [`allow_loopback`](Self::allow_loopback).
    ///
    /// Empty (the default) means the address of the default route, per
    /// family: the source address the kernel picks for a public destination
    /// (found with `connect()` on an unbound UDP socket, which sends
    /// nothing), like Chromium's default "default route only" policy. It
    /// never binds every interface: webrtc's own wildcard expansion would
    /// silently add docker bridges and VPNs. With no default route and no
    /// loopback, [`Peer::new`] fails with [`MediaError::NoLocalAddress`].
    pub interfaces: Vec<IpAddr>,
    /// Interval between ICE connectivity checks while connecting. DTLS
    /// starts on the check tick after ICE connects, so this bounds the
    /// connect time: on loopback, Peer::new to connected took 210 ms with
    /// webrtc's 200 ms default, 69 ms at 50 ms, 32 ms at 20 ms and 22 ms at
    /// 10 ms (the `offer_answer_connects_and_reports_connect_time` test).
    /// Default 10 ms, so media starts after an answer about as fast as
    /// Chromium's; a phone has a handful of candidate pairs, so the checks
    /// are a few dozen small packets, and once connected the agent runs on
    /// its keep-alive interval: the short interval costs nothing during the
    /// call. The attempts per pair
    /// are scaled so a pair still gets about 1.4 s before it fails.
    pub check_interval: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            servers: vec![],
            gather_timeout: Duration::from_secs(2),
            allow_loopback: false,
            interfaces: vec![],
            check_interval: Duration::from_millis(10),
        }
    }
}

pub(crate) fn codec_from_rtpmap(name: &str, clock_rate: u32) -> Option<CodecKind> {
    let kind = CodecKind::from_rtp_name(name)?;
    (kind.clock_rate() == clock_rate).then_some(kind)
}

pub(crate) fn rtp_codec(kind: CodecKind) -> RTCRtpCodec {
    let (mime, channels, fmtp) = match kind {
        CodecKind::Opus => (MIME_TYPE_OPUS, 2, "minptime=10;useinbandfec=1"),
        CodecKind::Pcmu => (MIME_TYPE_PCMU, 0, ""),
        CodecKind::Pcma => (MIME_TYPE_PCMA, 0, ""),
    };
    RTCRtpCodec {
        mime_type: mime.to_string(),
        clock_rate: kind.clock_rate(),
        channels,
        sdp_fmtp_line: fmtp.to_string(),
        rtcp_feedback: vec![],
    }
}

/// The codecs a peer registers, in offer preference order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioCodecs {
    /// Codecs in preference order (duplicates ignored). Default: Opus, PCMU, PCMA.
    pub codecs: Vec<CodecKind>,
    /// Offer/accept RFC 4733 telephone-event: at 48000 Hz (PT 110) when
    /// Opus is enabled and at 8000 Hz (PT 101) when G.711 is. Default on.
    pub telephone_event: bool,
}

impl Default for AudioCodecs {
    fn default() -> Self {
        AudioCodecs { codecs: vec![CodecKind::Opus, CodecKind::Pcmu, CodecKind::Pcma], telephone_event: true }
    }
}

impl AudioCodecs {
    pub(crate) fn kinds(&self) -> Vec<CodecKind> {
        let mut out: Vec<CodecKind> = vec![];
        for k in &self.codecs {
            if !out.contains(k) {
                out.push(*k);
            }
        }
        out
    }
    /// The telephone-event clock rates we register.
    pub(crate) fn te_rates(&self) -> Vec<u32> {
        if !self.telephone_event {
            return vec![];
        }
        let kinds = self.kinds();
        let mut rates = vec![];
        if kinds.contains(&CodecKind::Opus) {
            rates.push(48000);
        }
        if kinds.iter().any(|k| k.clock_rate() == 8000) {
            rates.push(8000);
        }
        rates
    }
    /// Everything to register / offer, in order: codecs, then telephone-events.
    pub(crate) fn all_params(&self) -> Vec<RTCRtpCodecParameters> {
        let mut out: Vec<RTCRtpCodecParameters> = self
            .kinds()
            .into_iter()
            .map(|k| RTCRtpCodecParameters { rtp_codec: rtp_codec(k), payload_type: k.default_payload_type() })
            .collect();
        for rate in self.te_rates() {
            out.push(telephone_event_params(rate));
        }
        out
    }
}

pub(crate) fn telephone_event_params(rate: u32) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_TELEPHONE_EVENT.to_string(),
            clock_rate: rate,
            channels: 0,
            // The tag is stripped from every SDP we hand out.
            sdp_fmtp_line: format!("0-16;{}={rate}", sdp::TE_RATE_KEY),
            rtcp_feedback: vec![],
        },
        payload_type: if rate == 48000 { PT_TELEPHONE_EVENT_48K } else { PT_TELEPHONE_EVENT_8K },
    }
}

/// Everything [`Peer::new`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// ICE settings.
    pub ice: IceConfig,
    /// Codec registration.
    pub codecs: AudioCodecs,
    /// Capacity of the [`RtpIn`] queue; packets that find it full are
    /// counted in [`PeerStats::receive_queue_dropped`] and discarded.
    /// Default 256 (5 s of 20 ms audio).
    pub rtp_queue: usize,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig { ice: IceConfig::default(), codecs: AudioCodecs::default(), rtp_queue: 256 }
    }
}
