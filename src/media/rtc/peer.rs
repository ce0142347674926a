//! One audio-only WebRTC peer connection per call, over webrtc 0.21.
//!
//! [`Peer`] wraps a webrtc 0.21 `PeerConnection` (the 2026 rewrite over the
//! sans-IO `rtc` crate) and gives a SIP call what it needs: complete SDP
//! (non-trickle: every candidate is in the SDP), offer/answer with correct
//! hold semantics, raw RTP in and out with our own sequence numbers,
//! timestamps and SSRC, the connection state, and statistics.
//!
//! # What this module works around in webrtc 0.21
//!
//! - **mDNS**: the default `QueryOnly` mode opens a multicast socket and
//!   makes `build()` fail on a host without a multicast route. mDNS is
//!   always disabled (remote `*.local` candidates are dropped by
//!   [`normalize_remote_sdp`](super::sdp::normalize_remote_sdp)).
//! - **Wildcard binding**: `0.0.0.0` expands silently to every interface
//!   (docker, VPN ...). We never pass a wildcard: see [`IceConfig::interfaces`].
//! - **Slow DTLS start**: DTLS waits for the next ICE check tick, 200 ms by
//!   default. [`IceConfig::check_interval`] (default 10 ms) is passed to
//!   the agent, with the per-pair attempt count raised so a pair still gets
//!   about 1.4 s before it is declared failed.
//! - **Silent drops**: `write_rtp` returns `Ok` while the driver drops the
//!   packet (and logs one `error!` per packet) when the transceiver does not
//!   send, before DTLS is up, or for a payload type that is not negotiated.
//!   [`Peer::send_rtp`] checks all three first and returns
//!   [`SendOutcome::Dropped`] without touching webrtc.
//! - **Answer direction**: webrtc answers a `sendonly` offer with
//!   `sendrecv`. [`Peer::answer`] sets the transceiver direction to
//!   `want ∩ reverse(offered)` before creating the answer.
//! - **`a=inactive`**: webrtc ignores the candidates of an inactive m= line
//!   (an initial inactive offer or answer never connects) and stops the
//!   transceiver on an inactive offer. It is shown `recvonly`/`sendonly`
//!   instead; the real direction is set on the transceiver and enforced by
//!   the send gate.
//! - **Two telephone-events**: webrtc matches codecs ignoring clock rate;
//!   a private fmtp tag keeps telephone-event/48000 (PT 110) and
//!   telephone-event/8000 (PT 101) apart (see `sdp::TE_RATE_KEY`).
//! - **Codec matching on fmtp**: a remote Opus with `useinbandfec=0` or
//!   `minptime=20` only "partially" matches ours, and webrtc then drops it
//!   whenever another codec matches exactly (the call falls back to PCMU).
//!   Conflicting values of the parameters we register are removed from the
//!   remote SDP before webrtc sees it.
//! - **RTCP statistics**: rtc 0.21 never feeds received RTCP into its
//!   statistics and reports an RTCP RTT of 0. A pass-through interceptor
//!   reads the remote's report blocks about our stream (loss, jitter,
//!   LSR/DLSR round trip) for [`Peer::stats`].
//! - **Leaks**: dropping a peer connection without `close()` leaks its
//!   driver task and sockets. [`Peer::close`] always closes it, and dropping
//!   a [`Peer`] that was not closed spawns the close.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceConnectionState, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
    RTCStatsReportEntry, Registry, SettingEngineBuilder, StatsSelector, configure_rtcp_reports,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RtpSender, RtpTransceiver};

pub use crate::media::codec::common::CodecKind;
pub use crate::media::rtc::config::{
    AudioCodecs, IceConfig, IceServer, PT_OPUS, PT_PCMA, PT_PCMU, PT_TELEPHONE_EVENT_8K, PT_TELEPHONE_EVENT_48K,
    PeerConfig,
};
use crate::media::rtc::config::{codec_from_rtpmap, rtp_codec, telephone_event_params};
use crate::media::rtc::early_checks::LocalIce;
use crate::media::rtc::gate::Gate;
pub use crate::media::rtc::gate::{DropReason, SendOutcome};
use crate::media::rtc::interceptor::{RTCP_MONITOR_SLOT, RtcpMonitor, RtcpReports};
pub use crate::media::rtc::interceptor::{dlsr, report_blocks};
use crate::media::rtc::interfaces::bind_addresses;
pub use crate::media::rtc::sdp::MediaDirection;
use crate::media::rtc::sdp::{self, MediaInfo, SdpError};
use crate::media::rtc::socket::{IceGate, PeerRuntime};
pub use crate::media::rtc::stats::PeerStats;

/// The window a candidate pair gets before it is declared failed, kept near
/// webrtc's default (7 attempts × 200 ms) whatever the check interval.
const PAIR_CHECK_WINDOW: Duration = Duration::from_millis(1400);

// ---------------------------------------------------------------------------------------------
// Results, events, errors
// ---------------------------------------------------------------------------------------------

/// The codec both sides agreed on, with the payload type to send it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Which codec.
    pub kind: CodecKind,
    /// Its payload type in this session (the offerer's numbering).
    pub payload_type: u8,
    /// RTP clock rate.
    pub clock_rate: u32,
}

/// The outcome of an offer/answer exchange, read from the final local and
/// remote SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The first codec of the answer that we support.
    pub codec: Codec,
    /// The telephone-event payload type to send DTMF with: the one at the
    /// codec's clock rate, else the 8000 Hz one, else none.
    pub telephone_event_pt: Option<u8>,
    /// The clock rate of `telephone_event_pt` (durations of the events we
    /// send count in it).
    pub telephone_event_rate: Option<u32>,
    /// Every telephone-event of the answer (payload type, clock rate): the
    /// peer may send on any of them (Chromium sends on 126/8000 even when
    /// 110/48000 was negotiated too).
    pub telephone_events_received: [Option<(u8, u32)>; 2],
    /// The direction from our side: our direction ∩ reverse(theirs).
    pub direction: MediaDirection,
}

/// Connection state of a peer, from webrtc's `RTCPeerConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Not connecting yet.
    New,
    /// ICE/DTLS in progress.
    Connecting,
    /// ICE and DTLS are up; media can flow.
    Connected,
    /// Consent checks failing; may recover.
    Disconnected,
    /// Gave up.
    Failed,
    /// [`Peer::close`] was called.
    Closed,
}

/// One received RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpIn {
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// Sender's SSRC.
    pub ssrc: u32,
    /// Payload (decrypted, without RTP header or padding).
    pub payload: Bytes,
    /// When our reader task got it from webrtc.
    pub arrival: Instant,
}

/// Errors of the media layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The configuration cannot be used.
    #[error("invalid media configuration: {0}")]
    InvalidConfig(String),
    /// No local address to bind (no default route, loopback not allowed).
    #[error(
        "no local address to bind: no default route and loopback not allowed \
         (allow it with PhoneConfigBuilder::allow_loopback(true), i.e. IceConfig::allow_loopback, \
         or list addresses with PhoneConfigBuilder::media_interfaces, i.e. IceConfig::interfaces)"
    )]
    NoLocalAddress,
    /// The remote SDP could not be normalized.
    #[error("remote SDP: {0}")]
    Sdp(#[from] SdpError),
    /// Offer/answer failed: no common codec, audio rejected, ...
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The call does not fit the negotiation state (answer without offer, ...).
    #[error("invalid negotiation state: {0}")]
    InvalidState(&'static str),
    /// webrtc returned an error.
    #[error("webrtc {op}: {reason}")]
    WebRtc {
        /// The operation that failed.
        op: &'static str,
        /// webrtc's message.
        reason: String,
    },
    /// The peer was closed.
    #[error("the peer connection is closed")]
    Closed,
}

fn webrtc_err(op: &'static str) -> impl FnOnce(webrtc::error::Error) -> MediaError {
    move |e| MediaError::WebRtc { op, reason: e.to_string() }
}

// ---------------------------------------------------------------------------------------------
// Shared state and the event handler
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    received_bytes: AtomicU64,
    queue_dropped: AtomicU64,
}

/// What the webrtc event handler and the [`Peer`] share.
struct Shared {
    created_at: Instant,
    state_tx: watch::Sender<PeerState>,
    /// Incremented on every "gathering complete".
    gathered_tx: watch::Sender<u64>,
    connected_at: StdMutex<Option<Instant>>,
    rtp_tx: StdMutex<Option<mpsc::Sender<RtpIn>>>,
    counters: Counters,
    tasks: StdMutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

struct Handler {
    shared: Arc<Shared>,
    ice_gate: Arc<IceGate>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed) {
            self.ice_gate.open();
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.shared.gathered_tx.send_modify(|g| *g += 1);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let shared = &self.shared;
        let mapped = match state {
            RTCPeerConnectionState::New => PeerState::New,
            RTCPeerConnectionState::Connecting => PeerState::Connecting,
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
            RTCPeerConnectionState::Failed => PeerState::Failed,
            RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => return,
        };
        if shared.closed.load(Ordering::Acquire) && mapped != PeerState::Closed {
            return;
        }
        if mapped == PeerState::Connected {
            let mut at = lock(&shared.connected_at);
            if at.is_none() {
                let now = Instant::now();
                *at = Some(now);
                info!(elapsed = ?now - shared.created_at, "peer connected");
            }
        } else {
            debug!(state = ?mapped, "peer state");
        }
        shared.state_tx.send_replace(mapped);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // Runs on webrtc's driver task: spawn the reader, never loop here.
        let Some(tx) = lock(&self.shared.rtp_tx).clone() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let handle = tokio::spawn(read_track(track, tx, shared));
        let mut tasks = lock(&self.shared.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}

async fn read_track(track: Arc<dyn TrackRemote>, tx: mpsc::Sender<RtpIn>, shared: Arc<Shared>) {
    let c = &shared.counters;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(p) => {
                // Tokio's clock: the audio path's one clock (paused in tests).
                let arrival = tokio::time::Instant::now().into_std();
                c.received.fetch_add(1, Ordering::Relaxed);
                c.received_bytes.fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                let h = p.header;
                let pkt = RtpIn {
                    payload_type: h.payload_type,
                    sequence: h.sequence_number,
                    timestamp: h.timestamp,
                    marker: h.marker,
                    ssrc: h.ssrc,
                    payload: p.payload,
                    arrival,
                };
                // Never block: a full queue would back up into webrtc's own
                // 256-packet track queue, which drops with an error! per packet.
                if tx.try_send(pkt).is_err() {
                    c.queue_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

pub(crate) fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct NegState {
    transceiver: Option<Arc<dyn RtpTransceiver>>,
    sender: Option<Arc<dyn RtpSender>>,
    track: Option<Arc<TrackLocalStaticRTP>>,
    /// A local offer waits for its answer.
    offer_pending: bool,
    /// One offer/answer exchange has completed.
    negotiated: Option<Negotiated>,
    /// The codec the sender's interceptors were bound with (first exchange).
    bound: bool,
}

/// One audio-only WebRTC peer connection (one call leg).
///
/// Create it with [`Peer::new`], negotiate with [`create_offer`](Self::create_offer)
/// and [`apply_answer`](Self::apply_answer) or with [`answer`](Self::answer),
/// hold and resume with [`reoffer`](Self::reoffer) or by answering
/// re-offers, and always finish with [`close`](Self::close).
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    cfg: PeerConfig,
    ssrc: u32,
    stream_id: String,
    track_id: String,
    seq: AtomicU16,
    neg: Mutex<NegState>,
    gate: StdMutex<Gate>,
    negotiated: StdMutex<Option<Negotiated>>,
    rtp_rx: StdMutex<Option<mpsc::Receiver<RtpIn>>>,
    rtcp: Arc<StdMutex<RtcpReports>>,
    /// The last drop reason logged (0 = none), so drops log once per streak.
    last_drop: AtomicU8,
    /// Shared with the sockets: early checks answered, datagrams held until
    /// ICE is connected (see `socket`).
    ice_gate: Arc<IceGate>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("ssrc", &self.ssrc)
            .field("state", &*self.shared.state_tx.borrow())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Builds the peer connection: registers the codecs, binds the UDP
    /// sockets (see [`IceConfig::interfaces`]), starts webrtc's driver task.
    /// Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidConfig`], [`MediaError::NoLocalAddress`], or
    /// [`MediaError::WebRtc`] when no socket can be bound.
    pub async fn new(cfg: &PeerConfig) -> Result<Peer, MediaError> {
        let created_at = Instant::now();
        let cfg = cfg.clone();
        if cfg.codecs.kinds().is_empty() {
            return Err(MediaError::InvalidConfig("no audio codec enabled".into()));
        }
        if cfg.rtp_queue == 0 {
            return Err(MediaError::InvalidConfig("rtp_queue must be at least 1".into()));
        }
        if cfg.ice.check_interval.is_zero() {
            return Err(MediaError::InvalidConfig("check_interval must not be zero".into()));
        }
        let addrs = bind_addresses(&cfg.ice)?;

        let mut media_engine = MediaEngine::default();
        for codec in cfg.codecs.all_params() {
            media_engine.register_codec(codec, RtpCodecKind::Audio).map_err(webrtc_err("register_codec"))?;
        }

        let interval = cfg.ice.check_interval;
        let attempts = (PAIR_CHECK_WINDOW.as_millis() / interval.as_millis().max(1)).clamp(7, 1000) as u16;
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(interval), Some(attempts))
            .with_network_types(vec![NetworkType::Udp4, NetworkType::Udp6])
            .build();

        let servers = cfg
            .ice
            .servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let configuration = RTCConfigurationBuilder::new().with_ice_servers(servers).build();

        let (rtp_tx, rtp_rx) = mpsc::channel(cfg.rtp_queue);
        let shared = Arc::new(Shared {
            created_at,
            state_tx: watch::Sender::new(PeerState::New),
            gathered_tx: watch::Sender::new(0),
            connected_at: StdMutex::new(None),
            rtp_tx: StdMutex::new(Some(rtp_tx)),
            counters: Counters::default(),
            tasks: StdMutex::new(vec![]),
            closed: AtomicBool::new(false),
        });

        let ssrc = loop {
            let s: u32 = rand::random();
            if s != 0 {
                break s;
            }
        };
        let rtcp = Arc::new(StdMutex::new(RtcpReports::default()));
        let registry = configure_rtcp_reports(Registry::new()).with(
            Slot::from(RTCP_MONITOR_SLOT),
            RtcpMonitor { ssrc, reports: Arc::clone(&rtcp), read: VecDeque::new(), write: VecDeque::new() },
        );

        debug!(?addrs, check_interval = ?interval, attempts, "building peer connection");
        let ice_gate = Arc::new(IceGate::default());
        let runtime = Arc::new(PeerRuntime::new(Arc::clone(&ice_gate)));
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler { shared: Arc::clone(&shared), ice_gate: Arc::clone(&ice_gate) }))
            .with_udp_addrs(addrs)
            .with_runtime(runtime)
            .build()
            .await
            .map_err(webrtc_err("build"))?;

        Ok(Peer {
            pc: Arc::new(pc),
            shared,
            cfg,
            ssrc,
            stream_id: format!("webphone-{ssrc:08x}"),
            track_id: format!("audio-{ssrc:08x}"),
            seq: AtomicU16::new(rand::random()),
            neg: Mutex::new(NegState::default()),
            gate: StdMutex::new(Gate::default()),
            negotiated: StdMutex::new(None),
            rtp_rx: StdMutex::new(Some(rtp_rx)),
            rtcp,
            last_drop: AtomicU8::new(0),
            ice_gate,
        })
    }

    /// Our SSRC (every packet we send carries it).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// When [`Peer::new`] started.
    pub fn created_at(&self) -> Instant {
        self.shared.created_at
    }

    /// When the connection first reached [`PeerState::Connected`].
    pub fn connected_at(&self) -> Option<Instant> {
        *lock(&self.shared.connected_at)
    }

    /// The connection state, as a watch channel.
    pub fn state(&self) -> watch::Receiver<PeerState> {
        self.shared.state_tx.subscribe()
    }

    /// The received-RTP queue. `Some` once; it ends (`None` from `recv`)
    /// after [`close`](Self::close).
    pub fn take_rtp_receiver(&self) -> Option<mpsc::Receiver<RtpIn>> {
        lock(&self.rtp_rx).take()
    }

    /// The result of the last completed offer/answer exchange.
    pub fn negotiated(&self) -> Option<Negotiated> {
        *lock(&self.negotiated)
    }

    /// Creates the initial offer with `direction`, waits for candidate
    /// gathering (at most [`IceConfig::gather_timeout`]) and returns the
    /// complete SDP. Apply the answer with [`apply_answer`](Self::apply_answer).
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidState`] if an exchange already started (use
    /// [`reoffer`](Self::reoffer)); [`MediaError::WebRtc`].
    pub async fn create_offer(&self, direction: MediaDirection) -> Result<String, MediaError> {
        self.check_open()?;
        let mut neg = self.neg.lock().await;
        if neg.transceiver.is_some() {
            return Err(MediaError::InvalidState("create_offer after a negotiation; use reoffer"));
        }
        let codings = self.offer_codings();
        self.add_track(&mut neg, codings).await?;
        let offer = self.offer_locked(&mut neg, direction).await?;
        if let Some((ufrag, pwd)) = sdp::ice_credentials(&offer) {
            self.ice_gate.answer_early_checks(LocalIce::new(ufrag, pwd));
        }
        Ok(offer)
    }

    /// A new offer on the established session, typically for hold
    /// (`SendOnly`/`Inactive`) and resume (`SendRecv`). Same ICE
    /// credentials and DTLS fingerprint: no ICE restart. Apply the answer
    /// with [`apply_answer`](Self::apply_answer).
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidState`] before the first exchange completed or
    /// while an offer is pending; [`MediaError::WebRtc`].
    pub async fn reoffer(&self, direction: MediaDirection) -> Result<String, MediaError> {
        self.check_open()?;
        let mut neg = self.neg.lock().await;
        if neg.negotiated.is_none() {
            return Err(MediaError::InvalidState("reoffer before the first offer/answer"));
        }
        if neg.offer_pending {
            return Err(MediaError::InvalidState("an offer is already pending"));
        }
        self.offer_locked(&mut neg, direction).await
    }

    /// Forgets our pending re-offer (the peer refused it: a failed hold or
    /// resume): the local description and the transceiver's direction go
    /// back to what was last agreed. No-op without a pending offer.
    ///
    /// # Errors
    ///
    /// [`MediaError::WebRtc`] when webrtc refuses the rollback.
    pub async fn rollback_offer(&self) -> Result<(), MediaError> {
        self.check_open()?;
        let mut neg = self.neg.lock().await;
        if !neg.offer_pending {
            return Ok(());
        }
        let rollback = RTCSessionDescription::rollback(None).map_err(webrtc_err("rollback description"))?;
        self.pc.set_local_description(rollback).await.map_err(webrtc_err("set_local_description(rollback)"))?;
        neg.offer_pending = false;
        if let (Some(t), Some(agreed)) = (neg.transceiver.clone(), neg.negotiated) {
            t.set_direction(agreed.direction.into()).await.map_err(webrtc_err("set_direction"))?;
        }
        self.refresh_gate(&neg).await;
        Ok(())
    }

    async fn offer_locked(&self, neg: &mut NegState, direction: MediaDirection) -> Result<String, MediaError> {
        let t = neg.transceiver.clone().ok_or(MediaError::InvalidState("no transceiver"))?;
        t.set_direction(direction.into()).await.map_err(webrtc_err("set_direction"))?;
        self.refresh_gate(neg).await;
        let offer = self.pc.create_offer(None).await.map_err(webrtc_err("create_offer"))?;
        let sdp = self.set_local_and_gather(offer).await?;
        neg.offer_pending = true;
        Ok(sdp)
    }

    /// Applies the remote answer to our pending offer.
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidState`] without a pending offer,
    /// [`MediaError::Sdp`], [`MediaError::Negotiation`] (audio rejected, no
    /// common codec), [`MediaError::WebRtc`].
    pub async fn apply_answer(&self, answer_sdp: &str) -> Result<Negotiated, MediaError> {
        self.check_open()?;
        let mut neg = self.neg.lock().await;
        if !neg.offer_pending {
            return Err(MediaError::InvalidState("apply_answer without a pending offer"));
        }
        let remote = self.prepare_remote(answer_sdp)?;
        let local = self.local_sdp().await?;
        let negotiated = negotiated_from(&local, &remote, true, &self.cfg.codecs)?;
        if !neg.bound {
            // The remote answer binds the sender's RTCP interceptors to the
            // track's first coding: make that the negotiated codec.
            self.align_sender_codec(&neg, negotiated.codec.kind).await;
        }
        let audio =
            sdp::audio_section(&remote).ok_or_else(|| MediaError::Negotiation("no remote audio m= line".into()))?;
        let desc = RTCSessionDescription::answer(inactive_for_webrtc(&remote, &audio, MediaDirection::SendOnly))
            .map_err(webrtc_err("parse answer"))?;
        self.ice_gate.stop_answering_early_checks();
        self.pc.set_remote_description(desc).await.map_err(webrtc_err("set_remote_description"))?;
        neg.offer_pending = false;
        neg.bound = true;
        self.finish_negotiation(&mut neg, negotiated).await;
        Ok(negotiated)
    }

    /// Answers a remote offer (initial or re-offer). Our direction becomes
    /// `want ∩ reverse(offered)`: a `sendonly` (hold) offer is answered
    /// `recvonly`, an `inactive` one `inactive`. Returns the complete answer
    /// SDP and the negotiated result.
    ///
    /// # Errors
    ///
    /// [`MediaError::InvalidState`] while our own offer is pending (glare),
    /// [`MediaError::Sdp`], [`MediaError::Negotiation`] (no audio, no common
    /// codec), [`MediaError::WebRtc`].
    pub async fn answer(&self, offer_sdp: &str, want: MediaDirection) -> Result<(String, Negotiated), MediaError> {
        self.check_open()?;
        let mut neg = self.neg.lock().await;
        if neg.offer_pending {
            return Err(MediaError::InvalidState("remote offer while our offer is pending"));
        }
        let remote = self.prepare_remote(offer_sdp)?;
        let audio = sdp::audio_section(&remote)
            .filter(|a| a.port != 0)
            .ok_or_else(|| MediaError::Negotiation("the offer has no active audio m= line".into()))?;
        let first = first_supported(&audio, &self.cfg.codecs)
            .ok_or_else(|| MediaError::Negotiation("no common audio codec".into()))?;
        let offered = audio.direction;

        let desc = RTCSessionDescription::offer(inactive_for_webrtc(&remote, &audio, MediaDirection::RecvOnly))
            .map_err(webrtc_err("parse offer"))?;
        self.pc.set_remote_description(desc).await.map_err(webrtc_err("set_remote_description"))?;

        if neg.transceiver.is_none() {
            // First offer: send the codec the answer will pick first. Every
            // coding must be among the offer's codecs as webrtc matched them;
            // should the prediction be wrong, fall back to a codec-less
            // coding and let align_sender_codec set it before binding.
            if let Err(e) = self.add_track(&mut neg, vec![self.coding(first.kind)]).await {
                debug!(error = %e, "add_track with the predicted codec failed; retrying without codec");
                let bare = RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(self.ssrc), ..Default::default() },
                    ..Default::default()
                };
                self.add_track(&mut neg, vec![bare]).await?;
            }
            let want_mid = audio.mid.clone();
            if let Some(t) = &neg.transceiver {
                let mid = t.mid().await.ok().flatten();
                if mid != want_mid {
                    warn!(?mid, ?want_mid, "audio transceiver bound to an unexpected m= line");
                }
            }
        }
        let t = neg.transceiver.clone().ok_or(MediaError::InvalidState("no transceiver"))?;
        let direction = want.intersect(offered.reverse());
        t.set_direction(direction.into()).await.map_err(webrtc_err("set_direction"))?;

        let answer = self.pc.create_answer(None).await.map_err(webrtc_err("create_answer"))?;
        let negotiated = negotiated_from(&answer.sdp, &remote, false, &self.cfg.codecs)?;
        if !neg.bound {
            self.align_sender_codec(&neg, negotiated.codec.kind).await;
        }
        let sdp = self.set_local_and_gather(answer).await?;
        neg.bound = true;
        self.finish_negotiation(&mut neg, negotiated).await;
        Ok((sdp, negotiated))
    }

    /// Sends one RTP packet with our SSRC and the next sequence number.
    ///
    /// Returns [`SendOutcome::Dropped`] (and counts it) instead of handing
    /// the packet to webrtc when it would be dropped there: not connected,
    /// direction without send, or a payload type the remote did not accept.
    /// Drops are logged once per streak at debug level, never per packet.
    ///
    /// # Errors
    ///
    /// [`MediaError::Closed`] after [`close`](Self::close);
    /// [`MediaError::WebRtc`] if webrtc's driver is gone.
    pub async fn send_rtp(
        &self,
        pt: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<SendOutcome, MediaError> {
        self.check_open()?;
        let state = *self.shared.state_tx.borrow();
        let verdict = {
            let gate = lock(&self.gate);
            if state != PeerState::Connected {
                Err(DropReason::NotConnected)
            } else if !gate.sending {
                Err(DropReason::NotSending)
            } else if !gate.payload_types.contains(&pt) {
                Err(DropReason::PayloadType(pt))
            } else {
                gate.track.clone().ok_or(DropReason::NotSending)
            }
        };
        let track = match verdict {
            Ok(track) => track,
            Err(reason) => {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                let code = match reason {
                    DropReason::NotConnected => 1,
                    DropReason::NotSending => 2,
                    DropReason::PayloadType(_) => 3,
                };
                if self.last_drop.swap(code, Ordering::Relaxed) != code {
                    debug!(%reason, "dropping outgoing RTP until this changes");
                }
                return Ok(SendOutcome::Dropped(reason));
            }
        };
        self.last_drop.store(0, Ordering::Relaxed);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                marker,
                payload_type: pt,
                sequence_number: seq,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        track.write_rtp(packet).await.map_err(webrtc_err("write_rtp"))?;
        let c = &self.shared.counters;
        c.sent.fetch_add(1, Ordering::Relaxed);
        c.sent_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
        Ok(SendOutcome::Sent)
    }

    /// Our counters plus what webrtc's statistics report.
    pub async fn stats(&self) -> PeerStats {
        let c = &self.shared.counters;
        let (early_checks_answered, early_datagrams_held) = self.ice_gate.counts();
        let mut s = PeerStats {
            packets_sent: c.sent.load(Ordering::Relaxed),
            bytes_sent: c.sent_bytes.load(Ordering::Relaxed),
            packets_dropped: c.dropped.load(Ordering::Relaxed),
            packets_received: c.received.load(Ordering::Relaxed),
            bytes_received: c.received_bytes.load(Ordering::Relaxed),
            receive_queue_dropped: c.queue_dropped.load(Ordering::Relaxed),
            connect_time: self.connected_at().map(|t| t - self.shared.created_at),
            early_checks_answered,
            early_datagrams_held,
            ..Default::default()
        };
        if self.shared.closed.load(Ordering::Acquire) {
            return s;
        }
        let clock = self.negotiated().map_or(8000, |n| n.codec.clock_rate) as f64;
        // rtc 0.21 stores RR jitter in RTP timestamp units, and its jitter
        // estimator does not handle timestamp wrap-around: one wrap adds
        // about 2^32/16 units that decay over seconds. No real jitter is
        // anywhere near 10 s, so such values are reported as unknown.
        let to_duration =
            |units: f64| Duration::try_from_secs_f64(units / clock).ok().filter(|d| *d < Duration::from_secs(10));
        {
            let r = lock(&self.rtcp);
            if let Some(block) = &r.last {
                s.remote_packets_lost = Some(i64::from(block.total_lost));
                s.remote_fraction_lost = Some(f64::from(block.fraction_lost) / 256.0);
                s.remote_jitter = to_duration(f64::from(block.jitter));
            }
            s.rtcp_rtt = r.rtt;
        }
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let selected = report.transport().map(|t| t.selected_candidate_pair_id.clone()).filter(|id| !id.is_empty());
        for entry in report.iter() {
            match entry {
                RTCStatsReportEntry::IceCandidatePair(p) => {
                    let is_selected = match &selected {
                        Some(id) => *id == p.stats.id,
                        None => p.nominated,
                    };
                    if is_selected && p.current_round_trip_time > 0.0 {
                        s.rtt = Duration::try_from_secs_f64(p.current_round_trip_time).ok();
                    }
                }
                RTCStatsReportEntry::OutboundRtp(o) if o.sent_rtp_stream_stats.rtp_stream_stats.ssrc == self.ssrc => {
                    s.wire_packets_sent = o.sent_rtp_stream_stats.packets_sent;
                }
                RTCStatsReportEntry::InboundRtp(i) if i.received_rtp_stream_stats.packets_received > 0 => {
                    let rx = &i.received_rtp_stream_stats;
                    s.packets_lost = Some(rx.packets_lost);
                    s.jitter = to_duration(rx.jitter);
                }
                _ => {}
            }
        }
        s
    }

    /// Closes the peer connection (idempotent): stops webrtc's driver and
    /// sockets, ends the reader tasks and the [`RtpIn`] queue, and sets the
    /// state to [`PeerState::Closed`].
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "peer connection close");
        }
        shutdown_shared(&self.shared);
    }

    // -- internals ---------------------------------------------------------------------------

    /// Remote SDP as webrtc gets it: normalized for interop
    /// ([`sdp::normalize_remote_sdp`]), our codecs' fmtp reconciled, and
    /// the telephone-events tagged with their clock rate.
    fn prepare_remote(&self, remote: &str) -> Result<String, MediaError> {
        let mut out = sdp::normalize_remote_sdp(remote)?;
        for kind in self.cfg.codecs.kinds() {
            let codec = rtp_codec(kind);
            if !codec.sdp_fmtp_line.is_empty() {
                out = sdp::reconcile_fmtp(&out, &kind.to_string(), codec.clock_rate, &codec.sdp_fmtp_line);
            }
        }
        Ok(sdp::tag_telephone_events(&out))
    }

    fn check_open(&self) -> Result<(), MediaError> {
        if self.shared.closed.load(Ordering::Acquire) { Err(MediaError::Closed) } else { Ok(()) }
    }

    fn coding(&self, kind: CodecKind) -> RTCRtpEncodingParameters {
        RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(self.ssrc), ..Default::default() },
            codec: rtp_codec(kind),
            ..Default::default()
        }
    }

    fn media_track(&self, codings: Vec<RTCRtpEncodingParameters>) -> MediaStreamTrack {
        MediaStreamTrack::new(
            self.stream_id.clone(),
            self.track_id.clone(),
            "audio".to_string(),
            RtpCodecKind::Audio,
            codings,
        )
    }

    /// The codings of the offer track: one per codec, then one per
    /// telephone-event rate, all on our SSRC.
    fn offer_codings(&self) -> Vec<RTCRtpEncodingParameters> {
        let mut codings: Vec<RTCRtpEncodingParameters> =
            self.cfg.codecs.kinds().into_iter().map(|k| self.coding(k)).collect();
        for rate in self.cfg.codecs.te_rates() {
            codings.push(RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(self.ssrc), ..Default::default() },
                codec: telephone_event_params(rate).rtp_codec,
                ..Default::default()
            });
        }
        codings
    }

    /// Adds our track. When we offer, its codings become the transceiver's
    /// codec preferences (so they must all be registered); when we answer,
    /// the offer's codecs are the preferences and every coding must be
    /// among them. webrtc keeps the first coding as the sending one.
    async fn add_track(&self, neg: &mut NegState, codings: Vec<RTCRtpEncodingParameters>) -> Result<(), MediaError> {
        let track = Arc::new(TrackLocalStaticRTP::new(self.media_track(codings)));
        let sender =
            self.pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await.map_err(webrtc_err("add_track"))?;
        let mut transceiver = None;
        for t in self.pc.get_transceivers().await {
            if let Ok(Some(s)) = t.sender().await
                && s.id() == sender.id()
            {
                transceiver = Some(t);
                break;
            }
        }
        neg.transceiver = Some(transceiver.ok_or(MediaError::InvalidState("add_track made no transceiver"))?);
        neg.sender = Some(sender);
        neg.track = Some(track);
        Ok(())
    }

    /// Before the exchange that binds the sender (the first), make the core
    /// track's only coding the codec the answer chose, so RTCP sender
    /// reports use its clock rate. The webrtc-level track is unchanged
    /// (same SSRC and ids), so `write_rtp` keeps working.
    async fn align_sender_codec(&self, neg: &NegState, kind: CodecKind) {
        let Some(sender) = &neg.sender else { return };
        let current = sender.track().codings().await;
        if current
            .first()
            .is_some_and(|c| codec_from_rtpmap(mime_subtype(&c.codec.mime_type), c.codec.clock_rate) == Some(kind))
        {
            return;
        }
        let replacement = Arc::new(TrackLocalStaticRTP::new(self.media_track(vec![self.coding(kind)])));
        if let Err(e) = sender.replace_track(replacement as Arc<dyn TrackLocal>).await {
            debug!(error = %e, "could not align the sending coding (not sending yet)");
        }
    }

    /// set_local_description, then wait for gathering (bounded) and return
    /// the SDP with every candidate, without our private fmtp tags.
    async fn set_local_and_gather(&self, desc: RTCSessionDescription) -> Result<String, MediaError> {
        let mut gathered = self.shared.gathered_tx.subscribe();
        let before = *gathered.borrow_and_update();
        self.pc.set_local_description(desc).await.map_err(webrtc_err("set_local_description"))?;
        let wait = gathered.wait_for(|g| *g > before);
        if tokio::time::timeout(self.cfg.ice.gather_timeout, wait).await.is_err() {
            debug!(timeout = ?self.cfg.ice.gather_timeout, "candidate gathering not complete; using what we have");
        }
        Ok(sdp::strip_telephone_event_tags(&self.local_sdp().await?))
    }

    async fn local_sdp(&self) -> Result<String, MediaError> {
        self.pc.local_description().await.map(|d| d.sdp).ok_or(MediaError::InvalidState("no local description"))
    }

    async fn finish_negotiation(&self, neg: &mut NegState, negotiated: Negotiated) {
        neg.negotiated = Some(negotiated);
        *lock(&self.negotiated) = Some(negotiated);
        self.refresh_gate(neg).await;
        debug!(?negotiated, "negotiated");
    }

    /// Recomputes what [`send_rtp`](Self::send_rtp) may send from webrtc's
    /// own view: the preferred direction (what the driver checks), the
    /// negotiated direction (what the remote accepted: ours from the SDP,
    /// and webrtc's `current_direction`) and the sender's negotiated
    /// payload types (what `RTCRtpSender::write_rtp` checks).
    async fn refresh_gate(&self, neg: &NegState) {
        let agreed = neg.negotiated.is_some_and(|n| n.direction.has_send());
        let mut gate = Gate { track: neg.track.clone(), ..Default::default() };
        if let (Some(t), Some(sender)) = (&neg.transceiver, &neg.sender) {
            let dir = t.direction().await.unwrap_or(RTCRtpTransceiverDirection::Inactive);
            let current = t.current_direction().await.unwrap_or(RTCRtpTransceiverDirection::Inactive);
            gate.sending = agreed && dir.has_send() && current.has_send();
            if dir.has_send()
                && let Ok(params) = sender.get_parameters().await
            {
                gate.payload_types = params.rtp_parameters.codecs.iter().map(|c| c.payload_type).collect();
            }
        }
        *lock(&self.gate) = gate;
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Dropping webrtc's connection without close() leaks its driver and sockets.
        shutdown_shared(&self.shared);
        let pc = Arc::clone(&self.pc);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                debug!("Peer dropped without close(); closing in the background");
                handle.spawn(async move {
                    let _ = pc.close().await;
                });
            }
            Err(_) => warn!("Peer dropped without close() outside a tokio runtime: its sockets leak"),
        }
    }
}

fn shutdown_shared(shared: &Shared) {
    lock(&shared.rtp_tx).take();
    for t in lock(&shared.tasks).drain(..) {
        t.abort();
    }
    shared.state_tx.send_replace(PeerState::Closed);
}

impl From<MediaDirection> for RTCRtpTransceiverDirection {
    fn from(d: MediaDirection) -> Self {
        match d {
            MediaDirection::SendRecv => RTCRtpTransceiverDirection::Sendrecv,
            MediaDirection::SendOnly => RTCRtpTransceiverDirection::Sendonly,
            MediaDirection::RecvOnly => RTCRtpTransceiverDirection::Recvonly,
            MediaDirection::Inactive => RTCRtpTransceiverDirection::Inactive,
        }
    }
}

fn mime_subtype(mime: &str) -> &str {
    mime.split_once('/').map_or(mime, |(_, s)| s)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The first codec of an m= line that we support, in that line's order.
fn first_supported(m: &MediaInfo, codecs: &AudioCodecs) -> Option<Codec> {
    let enabled = codecs.kinds();
    m.rtpmaps.iter().find_map(|r| {
        let kind = codec_from_rtpmap(&r.name, r.clock_rate).filter(|k| enabled.contains(k))?;
        Some(Codec { kind, payload_type: r.pt, clock_rate: r.clock_rate })
    })
}

/// Reads the negotiation result from the local and remote SDP.
fn negotiated_from(
    local: &str,
    remote: &str,
    we_offered: bool,
    codecs: &AudioCodecs,
) -> Result<Negotiated, MediaError> {
    let l = sdp::audio_section(local).ok_or_else(|| MediaError::Negotiation("no local audio m= line".into()))?;
    let r = sdp::audio_section(remote).ok_or_else(|| MediaError::Negotiation("no remote audio m= line".into()))?;
    let answer = if we_offered { &r } else { &l };
    if answer.port == 0 {
        return Err(MediaError::Negotiation("audio m= line rejected (port 0)".into()));
    }
    let codec =
        first_supported(answer, codecs).ok_or_else(|| MediaError::Negotiation("no common audio codec".into()))?;
    let te: Vec<(u8, u32)> = answer
        .rtpmaps
        .iter()
        .filter(|m| m.name.eq_ignore_ascii_case("telephone-event"))
        .map(|m| (m.pt, m.clock_rate))
        .collect();
    let send_te = if codecs.telephone_event {
        te.iter()
            .find(|(_, rate)| *rate == codec.clock_rate)
            .or_else(|| te.iter().find(|(_, rate)| *rate == 8000))
            .or_else(|| te.first())
            .copied()
    } else {
        None
    };
    let mut received = [None; 2];
    if codecs.telephone_event {
        for (slot, te) in received.iter_mut().zip(&te) {
            *slot = Some(*te);
        }
    }
    Ok(Negotiated {
        codec,
        telephone_event_pt: send_te.map(|(pt, _)| pt),
        telephone_event_rate: send_te.map(|(_, rate)| rate),
        telephone_events_received: received,
        direction: l.direction.intersect(r.direction.reverse()),
    })
}

/// webrtc 0.21 ignores the candidates of an `a=inactive` m= line (so an
/// initial inactive offer or answer never connects) and stops the
/// transceiver of an inactive offer. It is told `instead` (an offer:
/// `recvonly`, an answer: `sendonly`, neither lets us send); the real
/// direction is set on the transceiver and checked by the send gate.
fn inactive_for_webrtc(remote: &str, audio: &MediaInfo, instead: MediaDirection) -> String {
    if audio.direction == MediaDirection::Inactive {
        replace_audio_direction(remote, audio.mid.as_deref(), instead)
    } else {
        remote.to_string()
    }
}

/// Replaces the direction attribute of the m= line with `mid`.
fn replace_audio_direction(sdp_text: &str, mid: Option<&str>, to: MediaDirection) -> String {
    let mut out = String::with_capacity(sdp_text.len());
    let lines: Vec<&str> = sdp_text.split("\r\n").collect();
    // Find the section of `mid`.
    let mut sections: Vec<(usize, usize)> = vec![];
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("m=") {
            if let Some(last) = sections.last_mut() {
                last.1 = i;
            }
            sections.push((i, lines.len()));
        }
    }
    let target =
        sections.iter().find(|(s, e)| lines[*s..*e].iter().any(|l| l.strip_prefix("a=mid:").map(str::trim) == mid));
    for (i, l) in lines.iter().enumerate() {
        let in_target = target.is_some_and(|(s, e)| i > *s && i < *e);
        let is_dir = l.strip_prefix("a=").and_then(MediaDirection::from_attribute).is_some();
        if in_target && is_dir {
            out.push_str("a=");
            out.push_str(to.as_attribute());
        } else {
            out.push_str(l);
        }
        if i + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

// These tests open UDP sockets on 127.0.0.1 only (and [::1] where
// `allow_loopback` adds it) and never use a STUN/TURN server other than an
// unreachable one on 127.0.0.1. Run them in a network namespace:
// `unshare -n bash -c 'ip link set lo up; cargo test media::rtc::peer'`.
#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::media::rtc::interfaces::default_route_source;
    use crate::media::rtc::sdp::tests::{ASTERISK_OFFER, CHROME_JSSIP_OFFER, FREESWITCH_OFFER};

    const OPUS_FRAME: u32 = 960; // 20 ms at 48 kHz

    /// `RUST_LOG=warn cargo test ...` shows webrtc's own log lines too
    /// (through tracing-subscriber's `log` bridge).
    fn init_logs() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }

    fn loopback_config(check_interval_ms: u64) -> PeerConfig {
        init_logs();
        PeerConfig {
            ice: IceConfig {
                allow_loopback: true,
                interfaces: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                check_interval: Duration::from_millis(check_interval_ms),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn address_errors_name_the_setting_to_change() {
        assert!(MediaError::NoLocalAddress.to_string().contains("allow_loopback(true)"));
        let ice = IceConfig { interfaces: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)], ..Default::default() };
        let e = bind_addresses(&ice).unwrap_err().to_string();
        assert!(e.contains("PhoneConfigBuilder::allow_loopback(true)"), "{e}");
        // In a namespace with only loopback there is no default route either.
        let ice = IceConfig::default();
        if let Err(e) = bind_addresses(&ice) {
            assert!(e.to_string().contains("IceConfig::allow_loopback"), "{e}");
        }
    }

    #[test]
    fn peer_and_its_futures_are_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Peer>();
        send_sync::<PeerStats>();
        send_sync::<MediaError>();
        #[allow(clippy::diverging_sub_expression, unreachable_code, unused_variables)]
        let _ = || {
            let p: &Peer = unimplemented!();
            send(&p.create_offer(MediaDirection::SendRecv));
            send(&p.answer("", MediaDirection::SendRecv));
            send(&p.apply_answer(""));
            send(&p.reoffer(MediaDirection::SendRecv));
            send(&p.send_rtp(0, false, 0, &[]));
            send(&p.stats());
            send(&p.close());
        };
    }

    /// Every candidate in `sdp` is on a loopback address.
    fn assert_loopback_only(sdp: &str) {
        let mut n = 0;
        for line in sdp.lines().filter(|l| l.starts_with("a=candidate:")) {
            let addr = line.split_whitespace().nth(4).unwrap();
            let ip: IpAddr = addr.parse().unwrap_or_else(|_| panic!("candidate address {addr}"));
            assert!(ip.is_loopback(), "non-loopback candidate: {line}");
            n += 1;
        }
        assert!(n > 0, "no candidate in\n{sdp}");
    }

    async fn wait_state(p: &Peer, want: PeerState, within: Duration) {
        let mut rx = p.state();
        tokio::time::timeout(within, rx.wait_for(|s| *s == want))
            .await
            .unwrap_or_else(|_| panic!("state {want:?} not reached, still {:?}", *p.state().borrow()))
            .unwrap();
    }

    /// A offers `offer_dir`, B answers wanting `want`; both connected.
    async fn connected_pair(
        check_ms: u64,
        offer_dir: MediaDirection,
        want: MediaDirection,
    ) -> (Peer, Peer, Negotiated, Negotiated, String, String) {
        let a = Peer::new(&loopback_config(check_ms)).await.unwrap();
        let b = Peer::new(&loopback_config(check_ms)).await.unwrap();
        let offer = a.create_offer(offer_dir).await.unwrap();
        assert_loopback_only(&offer);
        let (answer, nb) = b.answer(&offer, want).await.unwrap();
        assert_loopback_only(&answer);
        let na = a.apply_answer(&answer).await.unwrap();
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        wait_state(&b, PeerState::Connected, Duration::from_secs(5)).await;
        (a, b, na, nb, offer, answer)
    }

    fn direction_of(sdp: &str) -> MediaDirection {
        sdp::audio_section(sdp).unwrap().direction
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offer_answer_connects_and_reports_connect_time() {
        for check_ms in [10u64, 20, 50, 200] {
            let (a, b, na, nb, offer, answer) =
                connected_pair(check_ms, MediaDirection::SendRecv, MediaDirection::SendRecv).await;
            let ta = a.connected_at().unwrap() - a.created_at();
            let tb = b.connected_at().unwrap() - b.created_at();
            println!("check_interval {check_ms} ms: Peer::new -> Connected: offerer {ta:?}, answerer {tb:?}");
            if check_ms == 20 {
                assert_eq!(na.codec, Codec { kind: CodecKind::Opus, payload_type: 111, clock_rate: 48000 });
                assert_eq!(na, nb);
                assert_eq!(na.telephone_event_pt, Some(110));
                assert_eq!(na.direction, MediaDirection::SendRecv);
                // What we offer: every codec once, both telephone-events, no private tag.
                let m = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
                assert!(m.ends_with("UDP/TLS/RTP/SAVPF 111 0 8 110 101"), "{m}");
                for l in [
                    "a=rtpmap:111 opus/48000/2",
                    "a=fmtp:111 minptime=10;useinbandfec=1",
                    "a=rtpmap:0 PCMU/8000",
                    "a=rtpmap:8 PCMA/8000",
                    "a=rtpmap:110 telephone-event/48000",
                    "a=fmtp:110 0-16",
                    "a=rtpmap:101 telephone-event/8000",
                    "a=fmtp:101 0-16",
                ] {
                    assert!(offer.lines().any(|x| x == l), "offer lacks {l}\n{offer}");
                }
                assert!(!offer.contains(sdp::TE_RATE_KEY) && !answer.contains(sdp::TE_RATE_KEY));
                // The answer keeps the offer's numbering, each PT once.
                let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
                assert!(m.ends_with("UDP/TLS/RTP/SAVPF 111 0 8 110 101"), "{m}");
                assert!(answer.lines().any(|x| x == "a=rtpmap:110 telephone-event/48000"));
                assert!(answer.lines().any(|x| x == "a=rtpmap:101 telephone-event/8000"));
                assert!(ta < Duration::from_secs(1) && tb < Duration::from_secs(1));
                assert!(a.stats().await.connect_time.is_some());
            }
            a.close().await;
            b.close().await;
        }
    }

    /// The answerer checks our candidates as soon as it has our offer; while
    /// its answer is on the way those checks are answered by our sockets
    /// (webrtc's agent, without the remote's credentials, would drop them),
    /// and the call connects as usual once the answer is applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_before_the_answer_are_answered() {
        let a = Peer::new(&loopback_config(10)).await.unwrap();
        let b = Peer::new(&loopback_config(10)).await.unwrap();
        let offer = a.create_offer(MediaDirection::SendRecv).await.unwrap();
        let (answer, _) = b.answer(&offer, MediaDirection::SendRecv).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.stats().await.early_checks_answered == 0 {
            assert!(Instant::now() < deadline, "no early check answered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        a.apply_answer(&answer).await.unwrap();
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        wait_state(&b, PeerState::Connected, Duration::from_secs(5)).await;
        let stats = a.stats().await;
        println!(
            "offerer: {} early checks answered, {} datagrams held",
            stats.early_checks_answered, stats.early_datagrams_held
        );
        assert_eq!(b.stats().await.early_checks_answered, 0, "the answerer had our credentials from the start");
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_opus_packets_arrive_in_order() {
        let (a, b, _, _, _, _) = connected_pair(20, MediaDirection::SendRecv, MediaDirection::SendRecv).await;
        let mut rx = b.take_rtp_receiver().unwrap();
        assert!(b.take_rtp_receiver().is_none());
        let ts0: u32 = 0xFFFF_F000; // wraps during the test
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..100u32 {
            tick.tick().await;
            let payload = [i as u8; 80];
            let out = a.send_rtp(111, i == 0, ts0.wrapping_add(i * OPUS_FRAME), &payload).await.unwrap();
            assert_eq!(out, SendOutcome::Sent);
        }
        let mut got: Vec<RtpIn> = vec![];
        while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            got.push(p);
        }
        println!("received {} of 100", got.len());
        assert!(got.len() >= 95, "only {} packets", got.len());
        // The first received packet anchors seq/ts; all must be consistent with it.
        let first = got[0].clone();
        let i0 = first.payload[0] as u32;
        let seq0 = first.sequence.wrapping_sub(i0 as u16);
        for p in &got {
            let i = p.payload[0] as u32;
            assert_eq!(p.payload_type, 111);
            assert_eq!(p.ssrc, a.ssrc());
            assert_eq!(p.sequence, seq0.wrapping_add(i as u16));
            assert_eq!(p.timestamp, ts0.wrapping_add(i * OPUS_FRAME));
            assert_eq!(p.marker, i == 0);
            assert_eq!(p.payload.len(), 80);
        }
        let seqs: Vec<u16> = got.iter().map(|p| p.sequence.wrapping_sub(seq0)).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "out of order: {seqs:?}");

        let sa = a.stats().await;
        let sb = b.stats().await;
        println!("A stats: {sa:?}\nB stats: {sb:?}");
        // B's receiver reports (1 s interval) reached A and echoed A's SRs.
        assert_eq!(sa.remote_packets_lost, Some(0));
        assert_eq!(sa.remote_fraction_lost, Some(0.0));
        assert!(sa.rtcp_rtt.is_some_and(|rtt| rtt < Duration::from_millis(100)), "{:?}", sa.rtcp_rtt);
        assert_eq!(sb.remote_packets_lost, None, "B sent nothing");
        assert_eq!(sb.packets_lost, Some(0));
        // The timestamps wrapped: rtc 0.21's jitter is garbage for a while.
        assert!(sb.jitter.is_none_or(|j| j < Duration::from_secs(1)), "{:?}", sb.jitter);
        assert_eq!(sa.packets_sent, 100);
        assert_eq!(sa.bytes_sent, 8000);
        assert_eq!(sa.packets_dropped, 0);
        assert_eq!(sb.packets_received, got.len() as u64);
        assert_eq!(sb.receive_queue_dropped, 0);
        assert!(sa.wire_packets_sent >= 95, "webrtc counted {}", sa.wire_packets_sent);
        assert!(sa.rtt.is_some(), "no RTT");

        // close ends the queue and the state; sending is an error afterwards.
        b.close().await;
        assert_eq!(*b.state().borrow(), PeerState::Closed);
        assert!(tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.unwrap().is_none());
        assert_eq!(b.send_rtp(111, false, 0, &[0]).await, Err(MediaError::Closed));
        b.close().await; // idempotent
        a.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sendonly_offer_is_answered_recvonly_and_b_drops() {
        let a = Peer::new(&loopback_config(20)).await.unwrap();
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        // Before negotiation / connection: dropped, not an error.
        assert_eq!(a.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::NotConnected));
        let offer = a.create_offer(MediaDirection::SendOnly).await.unwrap();
        assert_eq!(direction_of(&offer), MediaDirection::SendOnly);
        let (answer, nb) = b.answer(&offer, MediaDirection::SendRecv).await.unwrap();
        assert_eq!(direction_of(&answer), MediaDirection::RecvOnly, "webrtc alone would answer sendrecv");
        assert_eq!(nb.direction, MediaDirection::RecvOnly);
        let na = a.apply_answer(&answer).await.unwrap();
        assert_eq!(na.direction, MediaDirection::SendOnly);
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        wait_state(&b, PeerState::Connected, Duration::from_secs(5)).await;

        let mut rx = b.take_rtp_receiver().unwrap();
        for i in 0..20u32 {
            assert_eq!(
                b.send_rtp(111, false, i * OPUS_FRAME, &[2; 40]).await.unwrap(),
                SendOutcome::Dropped(DropReason::NotSending)
            );
            assert_eq!(a.send_rtp(111, false, i * OPUS_FRAME, &[1; 40]).await.unwrap(), SendOutcome::Sent);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The webrtc 0.21 defect the gate exists for: writing to the
        // non-sending transceiver directly returns Ok, sends nothing (and
        // logs an error per packet).
        let raw = lock(&b.gate).track.clone().unwrap();
        for i in 0..3u16 {
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    payload_type: 111,
                    sequence_number: i,
                    ssrc: b.ssrc(),
                    ..Default::default()
                },
                payload: Bytes::from_static(&[3; 40]),
            };
            assert!(raw.write_rtp(pkt).await.is_ok(), "webrtc now reports the drop");
        }
        // A payload type B never accepted.
        assert_eq!(a.send_rtp(96, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::PayloadType(96)));
        let p = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!(p.payload_type, 111);
        let sb = b.stats().await;
        assert_eq!(sb.packets_dropped, 20);
        assert_eq!(sb.packets_sent, 0);
        assert_eq!(sb.wire_packets_sent, 0);
        assert_eq!(a.stats().await.packets_dropped, 2);
        // Nothing came back from B.
        let mut ra = a.take_rtp_receiver().unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(200), ra.recv()).await.is_err());
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hold_and_resume_by_reoffer_keeps_the_connection() {
        let (a, b, _, _, offer0, answer0) =
            connected_pair(20, MediaDirection::SendRecv, MediaDirection::SendRecv).await;
        let ufrag_a = sdp::ice_ufrag(&offer0).unwrap();
        let ufrag_b = sdp::ice_ufrag(&answer0).unwrap();
        let fp = |s: &str| s.lines().find(|l| l.starts_with("a=fingerprint:")).unwrap().to_string();
        let mut rx_a = a.take_rtp_receiver().unwrap();
        let mut rx_b = b.take_rtp_receiver().unwrap();
        let mut ts = 0u32;

        // Exchange a few packets each way and report who got something.
        async fn exchange(
            a: &Peer,
            b: &Peer,
            rx_a: &mut mpsc::Receiver<RtpIn>,
            rx_b: &mut mpsc::Receiver<RtpIn>,
            ts: &mut u32,
        ) -> (Vec<SendOutcome>, Vec<SendOutcome>, bool, bool) {
            while rx_a.try_recv().is_ok() {}
            while rx_b.try_recv().is_ok() {}
            let (mut oa, mut ob) = (vec![], vec![]);
            for _ in 0..5 {
                *ts = ts.wrapping_add(OPUS_FRAME);
                oa.push(a.send_rtp(111, false, *ts, &[0xA; 20]).await.unwrap());
                ob.push(b.send_rtp(111, false, *ts, &[0xB; 20]).await.unwrap());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let got_b = tokio::time::timeout(Duration::from_millis(300), rx_b.recv()).await.is_ok_and(|p| p.is_some());
            let got_a = tokio::time::timeout(Duration::from_millis(300), rx_a.recv()).await.is_ok_and(|p| p.is_some());
            (oa, ob, got_a, got_b)
        }
        let sent = |v: &[SendOutcome]| v.iter().all(|o| *o == SendOutcome::Sent);
        let dropped = |v: &[SendOutcome]| v.iter().all(|o| *o == SendOutcome::Dropped(DropReason::NotSending));

        let (oa, ob, got_a, got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
        assert!(sent(&oa) && sent(&ob) && got_a && got_b);

        // Hold: A sendonly -> B recvonly.
        let hold = a.reoffer(MediaDirection::SendOnly).await.unwrap();
        let (hold_answer, nb) = b.answer(&hold, MediaDirection::SendRecv).await.unwrap();
        let na = a.apply_answer(&hold_answer).await.unwrap();
        assert_eq!((na.direction, nb.direction), (MediaDirection::SendOnly, MediaDirection::RecvOnly));
        assert_eq!(direction_of(&hold_answer), MediaDirection::RecvOnly);
        assert_eq!(sdp::ice_ufrag(&hold).unwrap(), ufrag_a, "re-offer restarted ICE");
        assert_eq!(sdp::ice_ufrag(&hold_answer).unwrap(), ufrag_b, "answer restarted ICE");
        assert_eq!(fp(&hold), fp(&offer0));
        assert_loopback_only(&hold);
        let (oa, ob, _got_a, got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
        assert!(sent(&oa) && dropped(&ob) && got_b, "hold sendonly: {oa:?} {ob:?}");

        // Hold: A inactive -> B inactive.
        let hold = a.reoffer(MediaDirection::Inactive).await.unwrap();
        let (hold_answer, nb) = b.answer(&hold, MediaDirection::SendRecv).await.unwrap();
        let na = a.apply_answer(&hold_answer).await.unwrap();
        assert_eq!((na.direction, nb.direction), (MediaDirection::Inactive, MediaDirection::Inactive));
        assert_eq!(sdp::ice_ufrag(&hold).unwrap(), ufrag_a);
        let (oa, ob, got_a, got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
        assert!(dropped(&oa) && dropped(&ob) && !got_a && !got_b, "inactive: {oa:?} {ob:?}");

        // Resume.
        let resume = a.reoffer(MediaDirection::SendRecv).await.unwrap();
        let (resume_answer, nb) = b.answer(&resume, MediaDirection::SendRecv).await.unwrap();
        let na = a.apply_answer(&resume_answer).await.unwrap();
        assert_eq!((na.direction, nb.direction), (MediaDirection::SendRecv, MediaDirection::SendRecv));
        assert_eq!(sdp::ice_ufrag(&resume).unwrap(), ufrag_a);
        assert_eq!(sdp::ice_ufrag(&resume_answer).unwrap(), ufrag_b);
        let (oa, ob, got_a, got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
        assert!(sent(&oa) && sent(&ob) && got_a && got_b, "resumed: {oa:?} {ob:?} {got_a} {got_b}");

        // Remote hold the other way round: B puts A on hold, A answers recvonly.
        let hold = b.reoffer(MediaDirection::SendOnly).await.unwrap();
        let (hold_answer, na) = a.answer(&hold, MediaDirection::SendRecv).await.unwrap();
        assert_eq!(direction_of(&hold_answer), MediaDirection::RecvOnly);
        assert_eq!(na.direction, MediaDirection::RecvOnly);
        b.apply_answer(&hold_answer).await.unwrap();
        let (oa, ob, _, got_a) = {
            let (oa, ob, got_a, _got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
            (oa, ob, (), got_a)
        };
        assert!(dropped(&oa) && sent(&ob) && got_a);
        let resume = b.reoffer(MediaDirection::SendRecv).await.unwrap();
        let (resume_answer, _) = a.answer(&resume, MediaDirection::SendRecv).await.unwrap();
        b.apply_answer(&resume_answer).await.unwrap();
        let (oa, ob, got_a, got_b) = exchange(&a, &b, &mut rx_a, &mut rx_b, &mut ts).await;
        assert!(sent(&oa) && sent(&ob) && got_a && got_b);

        assert_eq!(*a.state().borrow(), PeerState::Connected);
        assert_eq!(*b.state().borrow(), PeerState::Connected);
        a.close().await;
        b.close().await;
    }

    /// An initial `a=inactive` offer (a call set up on hold): webrtc skips
    /// the candidates of inactive m= lines and stops the transceiver, so
    /// the answerer tells webrtc `recvonly` and sets `inactive` itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn initial_inactive_offer_connects_and_resumes() {
        let (a, b, na, nb, _, answer) = connected_pair(20, MediaDirection::Inactive, MediaDirection::SendRecv).await;
        assert_eq!((na.direction, nb.direction), (MediaDirection::Inactive, MediaDirection::Inactive));
        assert_eq!(direction_of(&answer), MediaDirection::Inactive);
        assert_eq!(b.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::NotSending));
        let resume = a.reoffer(MediaDirection::SendRecv).await.unwrap();
        let (resume_answer, _) = b.answer(&resume, MediaDirection::SendRecv).await.unwrap();
        a.apply_answer(&resume_answer).await.unwrap();
        let mut rx = a.take_rtp_receiver().unwrap();
        assert_eq!(b.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Sent);
        let p = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!(p.payload_type, 111);
        a.close().await;
        b.close().await;

        // A sendrecv offer answered inactive (B wants no media yet).
        let (a, b, na, nb, _, answer) = connected_pair(20, MediaDirection::SendRecv, MediaDirection::Inactive).await;
        assert_eq!((na.direction, nb.direction), (MediaDirection::Inactive, MediaDirection::Inactive));
        assert_eq!(direction_of(&answer), MediaDirection::Inactive);
        assert_eq!(a.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::NotSending));
        assert_eq!(b.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::NotSending));
        a.close().await;
        b.close().await;
    }

    /// Opus fmtp values that differ from ours (`useinbandfec=0`,
    /// `minptime=20`) must not make webrtc drop Opus for PCMU.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicting_opus_fmtp_still_negotiates_opus() {
        let a = Peer::new(&loopback_config(20)).await.unwrap();
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let offer = a
            .create_offer(MediaDirection::SendRecv)
            .await
            .unwrap()
            .replace("a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111 minptime=20;useinbandfec=0");
        let (answer, nb) = b.answer(&offer, MediaDirection::SendRecv).await.unwrap();
        assert_eq!(nb.codec.kind, CodecKind::Opus);
        let answer = answer
            .lines()
            .map(|l| if l.starts_with("a=fmtp:111") { "a=fmtp:111 useinbandfec=0;minptime=20" } else { l })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n";
        let na = a.apply_answer(&answer).await.unwrap();
        assert_eq!(na.codec.kind, CodecKind::Opus);
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        wait_state(&b, PeerState::Connected, Duration::from_secs(5)).await;
        let (mut ra, mut rb) = (a.take_rtp_receiver().unwrap(), b.take_rtp_receiver().unwrap());
        assert_eq!(a.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Sent);
        assert_eq!(b.send_rtp(111, false, 0, &[2]).await.unwrap(), SendOutcome::Sent);
        assert_eq!(tokio::time::timeout(Duration::from_secs(2), rb.recv()).await.unwrap().unwrap().payload_type, 111);
        assert_eq!(tokio::time::timeout(Duration::from_secs(2), ra.recv()).await.unwrap().unwrap().payload_type, 111);
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn telephone_events_both_rates_are_usable() {
        let (a, b, na, _, _, _) = connected_pair(20, MediaDirection::SendRecv, MediaDirection::SendRecv).await;
        assert_eq!(na.telephone_event_pt, Some(PT_TELEPHONE_EVENT_48K));
        let mut rx = b.take_rtp_receiver().unwrap();
        // RFC 4733 event: digit 5, end bit, volume 10, duration 160.
        let event = [5u8, 0x8a, 0x00, 0xa0];
        for pt in [PT_TELEPHONE_EVENT_48K, PT_TELEPHONE_EVENT_8K, PT_PCMU, PT_PCMA] {
            assert_eq!(a.send_rtp(pt, true, 1234, &event).await.unwrap(), SendOutcome::Sent, "pt {pt}");
            let p = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
            assert_eq!((p.payload_type, &p.payload[..]), (pt, &event[..]));
        }
        a.close().await;
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gather_timeout_bounds_offer_with_unreachable_stun() {
        let mut cfg = loopback_config(20);
        cfg.ice.servers = vec![IceServer { urls: vec!["stun:127.0.0.1:9".into()], ..Default::default() }];
        cfg.ice.gather_timeout = Duration::from_millis(300);
        let a = Peer::new(&cfg).await.unwrap();
        let t = Instant::now();
        let offer = a.create_offer(MediaDirection::SendRecv).await.unwrap();
        let took = t.elapsed();
        println!("create_offer with an unreachable STUN server took {took:?} (gather_timeout 300 ms)");
        assert!(took < Duration::from_millis(600), "took {took:?}");
        assert_loopback_only(&offer);
        // The peer still works: connect to a peer without STUN.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let (answer, _) = b.answer(&offer, MediaDirection::SendRecv).await.unwrap();
        a.apply_answer(&answer).await.unwrap();
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        a.close().await;
        b.close().await;
    }

    /// In a network namespace with only `lo` up there is no multicast (and
    /// no default) route: webrtc's default mDNS mode would fail build().
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn builds_without_multicast_route_and_binds_no_wildcard() {
        init_logs();
        let cfg = PeerConfig { ice: IceConfig { allow_loopback: true, ..Default::default() }, ..Default::default() };
        let a = Peer::new(&cfg).await.unwrap();
        let offer = a.create_offer(MediaDirection::SendRecv).await.unwrap();
        let no_default_route = default_route_source("192.0.2.1:9".parse().unwrap()).is_none();
        if no_default_route {
            // Only loopback was bound.
            assert_loopback_only(&offer);
            let no_loop = PeerConfig::default();
            assert_eq!(Peer::new(&no_loop).await.unwrap_err(), MediaError::NoLocalAddress);
        }
        a.close().await;

        let wildcard = PeerConfig {
            ice: IceConfig { interfaces: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)], ..Default::default() },
            ..Default::default()
        };
        assert!(matches!(Peer::new(&wildcard).await, Err(MediaError::InvalidConfig(_))));
        let loop_not_allowed = PeerConfig {
            ice: IceConfig { interfaces: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)], ..Default::default() },
            ..Default::default()
        };
        assert!(matches!(Peer::new(&loop_not_allowed).await, Err(MediaError::InvalidConfig(_))));
    }

    /// The three realistic offers from `sdp.rs`, candidates moved to
    /// 127.0.0.1:9 so nothing is sent off the host.
    fn local_offer(sdp_text: &str) -> String {
        sdp_text
            .replace("\r\n", "\n")
            .lines()
            .map(|l| {
                if l.starts_with("a=candidate:") {
                    let mut t: Vec<&str> = l.split_whitespace().collect();
                    if t.len() > 5 {
                        t[4] = "127.0.0.1";
                        t[5] = "9";
                    }
                    t.join(" ")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    }

    fn mline(sdp_text: &str, media: &str) -> String {
        sdp_text.lines().find(|l| l.starts_with(&format!("m={media}"))).unwrap_or("").to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_chrome_asterisk_and_freeswitch_offers() {
        // Chrome/JsSIP: opus first, te/48000 at 110 and te/8000 at 126.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let (ans, n) = b.answer(&local_offer(CHROME_JSSIP_OFFER), MediaDirection::SendRecv).await.unwrap();
        println!("answer to Chrome:\n{ans}");
        assert_eq!(n.codec, Codec { kind: CodecKind::Opus, payload_type: 111, clock_rate: 48000 });
        assert_eq!(n.telephone_event_pt, Some(110));
        assert_eq!(n.direction, MediaDirection::SendRecv);
        assert!(
            mline(&ans, "audio").starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 110 126"),
            "{}",
            mline(&ans, "audio")
        );
        assert!(ans.lines().any(|l| l == "a=rtpmap:110 telephone-event/48000"));
        assert!(ans.lines().any(|l| l == "a=rtpmap:126 telephone-event/8000"));
        assert!(!ans.contains(sdp::TE_RATE_KEY));
        assert!(ans.lines().any(|l| l == "a=setup:active"));
        assert!(ans.lines().any(|l| l == "a=mid:0"));
        assert_loopback_only(&ans);
        b.close().await;

        // Asterisk: PCMU first (no rtpmap in the offer), te/8000 at 101.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let (ans, n) = b.answer(&local_offer(ASTERISK_OFFER), MediaDirection::SendRecv).await.unwrap();
        println!("answer to Asterisk:\n{ans}");
        assert_eq!(n.codec, Codec { kind: CodecKind::Pcmu, payload_type: 0, clock_rate: 8000 });
        assert_eq!(n.telephone_event_pt, Some(101));
        assert!(
            mline(&ans, "audio").starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 0 8 111 101"),
            "{}",
            mline(&ans, "audio")
        );
        assert!(ans.lines().any(|l| l == "a=group:BUNDLE 0"));
        assert!(ans.lines().any(|l| l == "a=fmtp:101 0-16"));
        b.close().await;

        // FreeSWITCH: opus at 102, video rejected.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let (ans, n) = b.answer(&local_offer(FREESWITCH_OFFER), MediaDirection::SendRecv).await.unwrap();
        println!("answer to FreeSWITCH:\n{ans}");
        assert_eq!(n.codec, Codec { kind: CodecKind::Opus, payload_type: 102, clock_rate: 48000 });
        assert_eq!(n.telephone_event_pt, Some(101));
        let video = mline(&ans, "video");
        assert!(video.is_empty() || video.starts_with("m=video 0 "), "video not rejected: {video}");
        b.close().await;

        // A remote hold offer (sendonly, Asterisk style) is answered recvonly.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let held = local_offer(ASTERISK_OFFER).replace("a=sendrecv", "a=sendonly");
        let (ans, n) = b.answer(&held, MediaDirection::SendRecv).await.unwrap();
        assert_eq!(direction_of(&ans), MediaDirection::RecvOnly);
        assert_eq!(n.direction, MediaDirection::RecvOnly);
        b.close().await;

        // No common codec / no audio.
        let b = Peer::new(&loopback_config(20)).await.unwrap();
        let g722 =
            local_offer(ASTERISK_OFFER).replace("m=audio 12786 RTP/SAVPF 0 8 111 101", "m=audio 12786 RTP/SAVPF 9");
        assert!(matches!(b.answer(&g722, MediaDirection::SendRecv).await, Err(MediaError::Negotiation(_))));
        let no_audio = local_offer(FREESWITCH_OFFER).replace("m=audio 23170", "m=audio 0");
        assert!(matches!(b.answer(&no_audio, MediaDirection::SendRecv).await, Err(MediaError::Negotiation(_))));
        b.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pcmu_only_answer_aligns_sender_and_misuse_is_refused() {
        let a = Peer::new(&loopback_config(20)).await.unwrap();
        let b_cfg = PeerConfig {
            codecs: AudioCodecs { codecs: vec![CodecKind::Pcmu], telephone_event: true },
            ..loopback_config(20)
        };
        let b = Peer::new(&b_cfg).await.unwrap();
        assert!(matches!(a.apply_answer("v=0").await, Err(MediaError::InvalidState(_))));
        assert!(matches!(a.reoffer(MediaDirection::SendRecv).await, Err(MediaError::InvalidState(_))));
        let offer = a.create_offer(MediaDirection::SendRecv).await.unwrap();
        assert!(matches!(a.create_offer(MediaDirection::SendRecv).await, Err(MediaError::InvalidState(_))));
        let (answer, nb) = b.answer(&offer, MediaDirection::SendRecv).await.unwrap();
        assert!(mline(&answer, "audio").ends_with(" 0 101"), "{}", mline(&answer, "audio"));
        let na = a.apply_answer(&answer).await.unwrap();
        assert_eq!(na.codec.kind, CodecKind::Pcmu);
        assert_eq!(na.telephone_event_pt, Some(101));
        assert_eq!(nb, na);
        wait_state(&a, PeerState::Connected, Duration::from_secs(5)).await;
        wait_state(&b, PeerState::Connected, Duration::from_secs(5)).await;
        let mut rx = b.take_rtp_receiver().unwrap();
        assert_eq!(a.send_rtp(111, false, 0, &[1]).await.unwrap(), SendOutcome::Dropped(DropReason::PayloadType(111)));
        assert_eq!(a.send_rtp(0, false, 160, &[0xff; 160]).await.unwrap(), SendOutcome::Sent);
        let p = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert_eq!((p.payload_type, p.timestamp, p.payload.len()), (0, 160, 160));
        // Dropping without close still closes (in the background).
        drop(b);
        a.close().await;
    }
}
