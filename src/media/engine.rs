//! The media side of the driver: one [`Peer`] and one audio task per call,
//! created and torn down as the SIP core asks ([`MediaRequest`]), with
//! results (SDP, failures) coming back as [`MediaResult`]s for the driver
//! to feed into the core.
//!
//! Everything runs on the media runtime ([`media_runtime`]), not the
//! caller's. The audio task waits until ICE/DTLS is connected, then runs two frame
//! clocks: the send tick (the send pipeline produces a packet) and the
//! playout tick, phase-locked to the packets' arrivals ([`PlayoutClock`]:
//! the receive pipeline plays a frame out). Received RTP goes into the
//! jitter buffer as it arrives (through the simulated impairment when one
//! is configured). Stats are published and quality checked on send ticks,
//! which run whether or not anything is received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::impairment::ImpairmentStage;
use super::jitter::JitterConfig;
use super::meter::{DBFS_FLOOR, FrameAnalysis};
use super::peer::{Negotiated, Peer, PeerState, RtpIn};
use super::pipeline::{ReceivePipeline, SendPipeline};
use super::playout::PlayoutClock;
use super::quality::{QualityAlert, QualityMonitor, QualitySample};
use super::{AudioSetup, BuiltAudio, CallStats, MediaConfig};
use crate::contract::{CallKey, MediaRequest};

/// The runtime all call media runs on: the peers (webrtc's driver tasks) and
/// the audio tasks, with twice as many worker threads as cores, built on
/// first use and shared by every phone of the process.
///
/// Its own runtime because an audio tick is a deadline: on the application's
/// runtime it can wait behind the application's work, and on one worker per
/// core it waits behind other calls' encodes (a worker busy with a burst of
/// encodes is not preempted by the runtime). With twice the workers the
/// kernel time-slices them: on 2 cores, 60 two-way calls ran 0.17–0.8 % of
/// their ticks late on one shared 2-worker runtime, 0.07–0.27 % on this one
/// (`examples/load`, three runs each).
/// If the runtime cannot be built, media runs on the caller's runtime.
fn media_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2 * cores)
                .thread_name("webphone-media")
                .enable_all()
                .build()
                .map_err(|e| tracing::warn!("media runtime: {e}; media runs on the caller's runtime"))
                .ok()
        })
        .as_ref()
}

/// Spawns a media task on the media runtime.
fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match media_runtime() {
        Some(rt) => rt.spawn(task),
        None => tokio::spawn(task),
    }
}

/// What a media task reports back to the driver.
pub(crate) enum MediaResult {
    /// The offer or answer asked for (with the peer that made it).
    LocalSdp { call: CallKey, sdp: Result<(Arc<Peer>, Bytes), String> },
    /// The call's media failed after setup (answer rejected, never connected).
    Failed { call: CallKey, reason: String },
    /// A quality threshold was passed or is back to normal.
    Quality { call: CallKey, alert: QualityAlert },
}

/// Live controls and figures shared between the driver and an audio task.
#[derive(Default)]
struct Shared {
    muted_send: bool,
    muted_receive: bool,
    volume: Option<f32>,
    stats: CallStats,
    dirty: bool,
}

struct CallMedia {
    peer: Option<Arc<Peer>>,
    setup: Option<AudioSetup>,
    shared: Arc<Mutex<Shared>>,
    audio: Option<JoinHandle<()>>,
}

impl CallMedia {
    fn new(setup: AudioSetup) -> CallMedia {
        CallMedia { peer: None, setup: Some(setup), shared: Arc::default(), audio: None }
    }
}

/// All calls' media.
pub(crate) struct MediaEngine {
    config: MediaConfig,
    calls: HashMap<CallKey, CallMedia>,
    results_tx: mpsc::UnboundedSender<MediaResult>,
    results_rx: mpsc::UnboundedReceiver<MediaResult>,
}

impl MediaEngine {
    pub(crate) fn new(config: MediaConfig) -> MediaEngine {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        MediaEngine { config, calls: HashMap::new(), results_tx, results_rx }
    }

    /// Chooses what a call sends and where what it receives goes; call
    /// before the call's media starts (placing or answering it).
    pub(crate) fn set_audio(&mut self, call: CallKey, setup: AudioSetup) {
        self.calls.entry(call).or_insert_with(|| CallMedia::new(AudioSetup::default())).setup = Some(setup);
    }

    /// The next result of a media task.
    pub(crate) async fn next_result(&mut self) -> MediaResult {
        // The engine holds a sender, so the channel never closes.
        match self.results_rx.recv().await {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }

    /// Acts on a request of the SIP core.
    pub(crate) fn handle(&mut self, request: MediaRequest) {
        match request {
            MediaRequest::Offer { call, direction } => {
                let entry = self.calls.entry(call).or_insert_with(|| CallMedia::new(AudioSetup::default()));
                let peer = entry.peer.clone();
                let cfg = self.config.peer.clone();
                let tx = self.results_tx.clone();
                spawn(async move {
                    let sdp = async {
                        let peer = match peer {
                            Some(p) => p,
                            None => Arc::new(Peer::new(&cfg).await.map_err(|e| e.to_string())?),
                        };
                        let sdp = peer.create_offer(direction).await.map_err(|e| e.to_string())?;
                        Ok((peer, Bytes::from(sdp)))
                    }
                    .await;
                    let _ = tx.send(MediaResult::LocalSdp { call, sdp });
                });
            }
            MediaRequest::Reoffer { call, direction } => {
                let Some(peer) = self.calls.get(&call).and_then(|e| e.peer.clone()) else {
                    let _ =
                        self.results_tx.send(MediaResult::LocalSdp { call, sdp: Err("no media to re-offer".into()) });
                    return;
                };
                let tx = self.results_tx.clone();
                spawn(async move {
                    let sdp = peer.reoffer(direction).await.map_err(|e| e.to_string());
                    let _ = tx.send(MediaResult::LocalSdp { call, sdp: sdp.map(|s| (peer, Bytes::from(s))) });
                });
            }
            MediaRequest::Answer { call, offer, direction } => {
                let entry = self.calls.entry(call).or_insert_with(|| CallMedia::new(AudioSetup::default()));
                let existing = entry.peer.clone();
                let start_audio = entry.audio.is_none();
                let setup = if start_audio { entry.setup.take() } else { None };
                let shared = entry.shared.clone();
                let cfg = self.config.clone();
                let tx = self.results_tx.clone();
                let handle = spawn(async move {
                    let answer = async {
                        let offer = std::str::from_utf8(&offer).map_err(|_| "offer is not UTF-8".to_string())?;
                        let peer = match existing {
                            Some(p) => p,
                            None => Arc::new(Peer::new(&cfg.peer).await.map_err(|e| e.to_string())?),
                        };
                        let (sdp, negotiated) = peer.answer(offer, direction).await.map_err(|e| e.to_string())?;
                        Ok::<_, String>((peer, Bytes::from(sdp), negotiated))
                    }
                    .await;
                    match answer {
                        Ok((peer, sdp, negotiated)) => {
                            let _ = tx.send(MediaResult::LocalSdp { call, sdp: Ok((peer.clone(), sdp)) });
                            if let Some(setup) = setup {
                                run_audio(call, peer, negotiated, setup, shared, cfg, tx).await;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(MediaResult::LocalSdp { call, sdp: Err(e) });
                        }
                    }
                });
                if start_audio && let Some(entry) = self.calls.get_mut(&call) {
                    entry.audio = Some(handle);
                }
            }
            MediaRequest::ApplyAnswer { call, answer } => {
                let Some(entry) = self.calls.get_mut(&call) else { return };
                let Some(peer) = entry.peer.clone() else { return };
                if entry.audio.is_some() {
                    return;
                }
                let setup = entry.setup.take().unwrap_or_default();
                let shared = entry.shared.clone();
                let cfg = self.config.clone();
                let tx = self.results_tx.clone();
                entry.audio = Some(spawn(async move {
                    let applied = match std::str::from_utf8(&answer) {
                        Ok(sdp) => peer.apply_answer(sdp).await.map_err(|e| e.to_string()),
                        Err(_) => Err("answer is not UTF-8".to_string()),
                    };
                    match applied {
                        Ok(negotiated) => run_audio(call, peer, negotiated, setup, shared, cfg, tx).await,
                        Err(reason) => {
                            let _ = tx.send(MediaResult::Failed { call, reason });
                        }
                    }
                }));
            }
            MediaRequest::Close { call } => self.close(call),
        }
    }

    /// Records the peer a task created (when its SDP comes back).
    pub(crate) fn adopt_peer(&mut self, call: CallKey, peer: Arc<Peer>) -> bool {
        match self.calls.get_mut(&call) {
            Some(entry) => {
                entry.peer = Some(peer);
                true
            }
            None => {
                spawn(async move { peer.close().await });
                false
            }
        }
    }

    fn close(&mut self, call: CallKey) {
        let Some(entry) = self.calls.remove(&call) else { return };
        if let Some(task) = entry.audio {
            task.abort();
        }
        if let Some(peer) = entry.peer {
            spawn(async move { peer.close().await });
        }
    }

    /// Closes every call's media (also when the engine is dropped: the media
    /// runtime outlives any one phone's driver).
    pub(crate) fn close_all(&mut self) {
        let keys: Vec<_> = self.calls.keys().copied().collect();
        for k in keys {
            self.close(k);
        }
    }

    /// Mutes what a call sends or what it plays.
    pub(crate) fn set_muted(&mut self, call: CallKey, send: Option<bool>, receive: Option<bool>) -> bool {
        let Some(entry) = self.calls.get(&call) else { return false };
        let mut s = entry.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = send {
            s.muted_send = m;
        }
        if let Some(m) = receive {
            s.muted_receive = m;
        }
        s.dirty = true;
        true
    }

    /// Sets a call's playback volume.
    pub(crate) fn set_volume(&mut self, call: CallKey, volume: f32) -> bool {
        let Some(entry) = self.calls.get(&call) else { return false };
        let mut s = entry.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.volume = Some(volume);
        s.dirty = true;
        true
    }

    /// The latest figures of a call, with the peer's own counters.
    pub(crate) fn stats(&self, call: CallKey) -> Option<(CallStats, Option<Arc<Peer>>)> {
        let entry = self.calls.get(&call)?;
        let stats = entry.shared.lock().unwrap_or_else(|p| p.into_inner()).stats.clone();
        Some((stats, entry.peer.clone()))
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// Waits for the connection, then runs the call's audio until aborted.
async fn run_audio(
    call: CallKey,
    peer: Arc<Peer>,
    negotiated: Negotiated,
    setup: AudioSetup,
    shared: Arc<Mutex<Shared>>,
    cfg: MediaConfig,
    tx: mpsc::UnboundedSender<MediaResult>,
) {
    if let Err(reason) = wait_connected(peer.state(), cfg.connect_timeout).await {
        let _ = tx.send(MediaResult::Failed { call, reason });
        return;
    }
    let frame = cfg.frame;
    let codec = negotiated.codec;
    let mut rtp_in = peer.take_rtp_receiver();
    // Opening files or audio devices may block: not on an async worker.
    let built = tokio::task::spawn_blocking(move || setup.build()).await;
    let BuiltAudio { source, sink, tracked } = match built.unwrap_or_else(|e| Err(format!("opening audio: {e}"))) {
        Ok(parts) => parts,
        Err(reason) => {
            let _ = tx.send(MediaResult::Failed { call, reason });
            return;
        }
    };
    let first_ts = rand::rng().random::<u32>();
    let send = SendPipeline::new(source, codec.kind, codec.payload_type, frame, first_ts);
    let jitter = JitterConfig {
        min_delay: cfg.jitter_min,
        max_delay: cfg.jitter_max,
        initial_delay: cfg.jitter_initial,
        ..JitterConfig::new(frame, codec.clock_rate)
    };
    let recv = ReceivePipeline::new(sink, codec.kind, codec.payload_type, frame, jitter);
    let (mut send, mut recv) = match (send, recv) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => {
            let _ = tx.send(MediaResult::Failed { call, reason: format!("codec: {e}") });
            return;
        }
    };
    for hz in &tracked {
        recv.track(*hz);
    }
    let mut state = peer.state();
    let connected_at = Instant::now();
    {
        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
        s.stats.codec = Some(codec.kind.to_string());
        s.stats.media_connected = Some(connected_at);
    }
    let frame_len = frame.duration();
    let half_frame = frame_len / 2;
    let mut send_ticker = tokio::time::interval(frame_len);
    send_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut clock = PlayoutClock::new(frame_len, cfg.playout_margin);
    let far = || tokio::time::Instant::now() + Duration::from_secs(86_400);
    let mut playout_timer = Box::pin(tokio::time::sleep_until(far()));
    let mut playout_armed = false;
    // While a playout tick waits a moment for its packet: until when.
    let mut grace_until: Option<Instant> = None;
    let mut impairment = cfg.impairment.map(ImpairmentStage::<RtpIn>::new);
    let mut impairment_timer = Box::pin(tokio::time::sleep_until(far()));
    let mut impairment_armed = false;
    let mut quality = QualityMonitor::new(cfg.quality, connected_at);
    let mut send_ticks: u64 = 0;
    let mut ticks: u64 = 0;
    let mut late_ticks: u64 = 0;
    let mut last_analysis =
        FrameAnalysis { index: 0, level_dbfs: DBFS_FLOOR, peak: 0, silent: true, dominant_hz: None };
    loop {
        tokio::select! {
            due = send_ticker.tick() => {
                let now = Instant::now();
                send_ticks += 1;
                ticks += 1;
                if now.saturating_duration_since(due.into_std()) > half_frame {
                    late_ticks += 1;
                }
                // Drops (counted and logged once per streak by the peer) and
                // encoder failures (counted in SendStats) are not logged per frame.
                if let Ok(pkt) = send.next_packet() {
                    let _ = peer.send_rtp(pkt.payload_type, pkt.marker, pkt.timestamp, pkt.payload).await;
                }
                if send_ticks.is_multiple_of(5)
                    && let Ok(mut s) = shared.try_lock()
                {
                    if s.dirty {
                        send.set_muted(s.muted_send);
                        recv.set_muted(s.muted_receive);
                        if let Some(v) = s.volume {
                            recv.set_volume(v);
                        }
                        s.dirty = false;
                    }
                    s.stats.update(&send.stats(), &recv, &last_analysis, &tracked);
                    s.stats.audio_ticks = ticks;
                    s.stats.late_ticks = late_ticks;
                    s.stats.playout_adjustments = clock.adjustments();
                    s.stats.impairment_dropped = impairment.as_ref().map_or(0, |i| i.stats().dropped);
                }
                if send_ticks.is_multiple_of(QUALITY_TICKS) {
                    let r = recv.stats();
                    let sample = QualitySample {
                        expected: r.jitter.played + r.jitter.lost,
                        lost: r.jitter.lost,
                        jitter_ms: r.jitter.jitter_ms,
                        packets: r.packets,
                    };
                    quality.observe(now, sample, |alert| {
                        let _ = tx.send(MediaResult::Quality { call, alert });
                    });
                }
            }
            _ = &mut playout_timer, if playout_armed => {
                let now = Instant::now();
                if recv.awaiting_next() && grace_until.is_none() {
                    // The packet for this tick is not here yet: give it a moment (a hiccup of
                    // either side's scheduler) rather than conceal a frame and add a frame of delay.
                    let until = now + (frame_len / 4).min(PLAYOUT_GRACE);
                    grace_until = Some(until);
                    playout_timer.as_mut().reset(tokio::time::Instant::from_std(until));
                    continue;
                }
                grace_until = None;
                ticks += 1;
                if let Some(due) = clock.on_tick()
                    && now.saturating_duration_since(due) > half_frame
                {
                    late_ticks += 1;
                }
                last_analysis = recv.tick(now);
                if let Some(next) = clock.next_tick() {
                    playout_timer.as_mut().reset(tokio::time::Instant::from_std(next));
                }
            }
            _ = &mut impairment_timer, if impairment_armed => {
                let now = Instant::now();
                if let Some(stage) = impairment.as_mut() {
                    while let Some((p, at)) = stage.pop_due(now) {
                        deliver(&mut recv, &mut clock, codec.payload_type, &p, at);
                    }
                    impairment_armed = rearm(&mut impairment_timer, stage.next_due());
                    if grace_until.is_some() && !recv.awaiting_next() {
                        playout_timer.as_mut().reset(tokio::time::Instant::now());
                    }
                }
            }
            changed = state.changed() => {
                let gone = changed.is_err() || matches!(*state.borrow(), PeerState::Failed | PeerState::Closed);
                if gone {
                    let _ = tx.send(MediaResult::Failed { call, reason: "media connection lost".into() });
                    return;
                }
            }
            pkt = async {
                match rtp_in.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(p) = pkt else {
                    rtp_in = None;
                    continue;
                };
                match impairment.as_mut() {
                    Some(stage) => {
                        let arrival = p.arrival;
                        if let Some((p, at)) = stage.push(p, arrival) {
                            deliver(&mut recv, &mut clock, codec.payload_type, &p, at);
                        }
                        impairment_armed = rearm(&mut impairment_timer, stage.next_due());
                    }
                    None => deliver(&mut recv, &mut clock, codec.payload_type, &p, p.arrival),
                }
                if !playout_armed && let Some(next) = clock.next_tick() {
                    playout_timer.as_mut().reset(tokio::time::Instant::from_std(next));
                    playout_armed = true;
                } else if grace_until.is_some() && !recv.awaiting_next() {
                    // What the tick was waiting for came: play it now.
                    playout_timer.as_mut().reset(tokio::time::Instant::now());
                }
            }
        }
    }
}

/// How long a playout tick may wait for a packet that is due but not yet
/// here, before concealing (at most a quarter frame, so never a late tick).
const PLAYOUT_GRACE: Duration = Duration::from_millis(4);

/// Send ticks between two quality checks (one second with 20 ms frames).
const QUALITY_TICKS: u64 = 50;

/// Hands a received packet to the jitter buffer and its arrival to the playout clock.
fn deliver(recv: &mut ReceivePipeline, clock: &mut PlayoutClock, audio_pt: u8, p: &RtpIn, arrival: Instant) {
    recv.push_packet(p.payload_type, p.sequence, p.timestamp, &p.payload, arrival);
    if p.payload_type == audio_pt {
        clock.on_packet(arrival);
    }
}

/// Points `timer` at `due`; returns whether it is armed.
fn rearm(timer: &mut std::pin::Pin<Box<tokio::time::Sleep>>, due: Option<Instant>) -> bool {
    match due {
        Some(at) => {
            timer.as_mut().reset(tokio::time::Instant::from_std(at));
            true
        }
        None => false,
    }
}

async fn wait_connected(mut state: watch::Receiver<PeerState>, timeout: Duration) -> Result<(), String> {
    let wait = async {
        loop {
            match *state.borrow_and_update() {
                PeerState::Connected => return Ok(()),
                PeerState::Failed => return Err("ICE/DTLS failed".to_string()),
                PeerState::Closed => return Err("peer closed".to_string()),
                _ => {}
            }
            if state.changed().await.is_err() {
                return Err("peer gone".to_string());
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| format!("media not connected within {timeout:?}"))?
}
