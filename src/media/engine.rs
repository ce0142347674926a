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

/// What the engine tells a call's running audio.
enum AudioInput {
    /// A new offer/answer exchange completed (codec, payload type, direction).
    Renegotiated(Negotiated),
}

struct CallMedia {
    peer: Option<Arc<Peer>>,
    setup: Option<AudioSetup>,
    shared: Arc<Mutex<Shared>>,
    audio: Option<JoinHandle<()>>,
    /// Inputs of the audio task, once it is spawned.
    inputs: Option<mpsc::UnboundedSender<AudioInput>>,
}

impl CallMedia {
    fn new(setup: AudioSetup) -> CallMedia {
        CallMedia { peer: None, setup: Some(setup), shared: Arc::default(), audio: None, inputs: None }
    }

    /// The audio task's input channel, made when the task is spawned.
    fn audio_inputs(&mut self) -> mpsc::UnboundedReceiver<AudioInput> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inputs = Some(tx);
        rx
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
                // A new task's inputs, or the running one's (a re-offer).
                let (inputs_rx, running) =
                    if start_audio { (Some(entry.audio_inputs()), None) } else { (None, entry.inputs.clone()) };
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
                            if let (Some(setup), Some(inputs)) = (setup, inputs_rx) {
                                run_audio(call, peer, negotiated, setup, shared, cfg, tx, inputs).await;
                            } else if let Some(running) = running {
                                let _ = running.send(AudioInput::Renegotiated(negotiated));
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
                let tx = self.results_tx.clone();
                let apply = async move |peer: &Peer| match std::str::from_utf8(&answer) {
                    Ok(sdp) => peer.apply_answer(sdp).await.map_err(|e| e.to_string()),
                    Err(_) => Err("answer is not UTF-8".to_string()),
                };
                if let Some(running) = entry.inputs.clone() {
                    // The answer to a re-offer: the running audio follows it.
                    spawn(async move {
                        match apply(&peer).await {
                            Ok(negotiated) => {
                                let _ = running.send(AudioInput::Renegotiated(negotiated));
                            }
                            Err(reason) => {
                                let _ = tx.send(MediaResult::Failed { call, reason });
                            }
                        }
                    });
                    return;
                }
                let setup = entry.setup.take().unwrap_or_default();
                let shared = entry.shared.clone();
                let cfg = self.config.clone();
                let inputs = entry.audio_inputs();
                entry.audio = Some(spawn(async move {
                    match apply(&peer).await {
                        Ok(negotiated) => run_audio(call, peer, negotiated, setup, shared, cfg, tx, inputs).await,
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
#[allow(clippy::too_many_arguments)]
async fn run_audio(
    call: CallKey,
    peer: Arc<Peer>,
    negotiated: Negotiated,
    setup: AudioSetup,
    shared: Arc<Mutex<Shared>>,
    cfg: MediaConfig,
    tx: mpsc::UnboundedSender<MediaResult>,
    mut inputs: mpsc::UnboundedReceiver<AudioInput>,
) {
    if let Err(reason) = wait_connected(peer.state(), cfg.connect_timeout).await {
        let _ = tx.send(MediaResult::Failed { call, reason });
        return;
    }
    let frame = cfg.frame;
    let mut codec = negotiated.codec;
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
    let jitter = |clock_rate| JitterConfig {
        min_delay: cfg.jitter_min,
        max_delay: cfg.jitter_max,
        initial_delay: cfg.jitter_initial,
        ..JitterConfig::new(frame, clock_rate)
    };
    let recv = ReceivePipeline::new(sink, codec.kind, codec.payload_type, frame, jitter(codec.clock_rate));
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
            input = inputs.recv() => {
                let Some(AudioInput::Renegotiated(n)) = input else { return };
                if n.codec != codec {
                    let switched = send
                        .set_codec(n.codec.kind, n.codec.payload_type, frame)
                        .and_then(|()| recv.set_codec(n.codec.kind, n.codec.payload_type, frame, jitter(n.codec.clock_rate)));
                    if let Err(e) = switched {
                        let _ = tx.send(MediaResult::Failed { call, reason: format!("codec: {e}") });
                        return;
                    }
                    tracing::debug!(%call, from = ?codec, to = ?n.codec, "codec renegotiated");
                    codec = n.codec;
                    shared.lock().unwrap_or_else(|p| p.into_inner()).stats.codec = Some(codec.kind.to_string());
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::contract::MediaDirection;
    use crate::media::app_channel::{AppSinkReader, app_sink_channel};
    use crate::media::meter::Meter;
    use crate::media::peer::{IceConfig, PeerConfig};
    use crate::media::{ReceiveAudio, SendAudio};

    /// Generous bound for anything network-bound on loopback.
    const WITHIN: Duration = Duration::from_secs(10);

    fn loopback_config() -> MediaConfig {
        MediaConfig {
            peer: PeerConfig {
                ice: IceConfig {
                    allow_loopback: true,
                    interfaces: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                    check_interval: Duration::from_millis(20),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn tone_setup(hz: f64) -> (AudioSetup, AppSinkReader) {
        let (sink, reader) = app_sink_channel(50);
        let setup = AudioSetup {
            send: SendAudio::Tone { frequency_hz: hz, level_dbfs: -12.0 },
            receive: ReceiveAudio::App(sink),
            track_frequencies: vec![],
        };
        (setup, reader)
    }

    /// The next SDP an engine produces for `call` (adopting its peer).
    async fn local_sdp(engine: &mut MediaEngine, call: CallKey) -> Bytes {
        let result = tokio::time::timeout(WITHIN, engine.next_result()).await.expect("a media result in time");
        match result {
            MediaResult::LocalSdp { call: c, sdp: Ok((peer, sdp)) } if c == call => {
                engine.adopt_peer(call, peer);
                sdp
            }
            MediaResult::LocalSdp { sdp: Err(e), .. } => panic!("no SDP: {e}"),
            MediaResult::LocalSdp { call: c, .. } => panic!("SDP for another call {c}"),
            MediaResult::Failed { reason, .. } => panic!("media failed: {reason}"),
            MediaResult::Quality { alert, .. } => panic!("unexpected quality alert {alert:?}"),
        }
    }

    /// Polls a call's stats until `done` holds.
    async fn wait_stats(
        engine: &MediaEngine,
        call: CallKey,
        what: &str,
        done: impl Fn(&CallStats) -> bool,
    ) -> CallStats {
        let wait = async {
            loop {
                let (stats, _) = engine.stats(call).expect("the call exists");
                if done(&stats) {
                    return stats;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        match tokio::time::timeout(WITHIN, wait).await {
            Ok(s) => s,
            Err(_) => panic!("{what}: not reached; stats {:?}", engine.stats(call).map(|s| s.0)),
        }
    }

    /// The dominant frequency of the next half second the sink receives
    /// (after dropping what it holds).
    async fn heard_hz(reader: &mut AppSinkReader) -> Option<f64> {
        let mut frame = vec![0i16; 960];
        while reader.available() > 0 {
            reader.read(&mut frame);
        }
        let mut meter = Meter::new();
        for _ in 0..25 {
            let n = tokio::time::timeout(WITHIN, reader.recv_frame(&mut frame)).await.expect("audio in time");
            meter.process(&frame[..n]);
        }
        meter.dominant_hz()
    }

    fn near(hz: Option<f64>, want: f64) -> bool {
        hz.is_some_and(|hz| (hz - want).abs() < 15.0)
    }

    /// Keeps only PCMU (and the 8 kHz telephone-event) in an offer's audio section.
    fn pcmu_only(offer: &str) -> String {
        let keep = ["0", "101"];
        let mut out = String::new();
        for line in offer.lines() {
            if line.starts_with("m=audio") {
                let fields: Vec<&str> = line.split(' ').collect();
                let mut m: Vec<&str> = fields[..3].to_vec();
                m.extend(fields[3..].iter().filter(|pt| keep.contains(pt)));
                out.push_str(&m.join(" "));
            } else if let Some(rest) =
                line.strip_prefix("a=rtpmap:").or(line.strip_prefix("a=fmtp:")).or(line.strip_prefix("a=rtcp-fb:"))
            {
                let pt = rest.split(' ').next().unwrap_or_default();
                if !keep.contains(&pt) {
                    continue;
                }
                out.push_str(line);
            } else {
                out.push_str(line);
            }
            out.push_str("\r\n");
        }
        out
    }

    /// Audio flows with Opus, then A re-offers PCMU only (as a PBX would)
    /// and B answers: both running audios switch codec and the tones are
    /// still heard.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reoffer_switches_the_running_codec() {
        let call = CallKey(1);
        let mut a = MediaEngine::new(loopback_config());
        let mut b = MediaEngine::new(loopback_config());
        let (setup_a, mut heard_a) = tone_setup(600.0);
        let (setup_b, mut heard_b) = tone_setup(1000.0);
        a.set_audio(call, setup_a);
        b.set_audio(call, setup_b);

        a.handle(MediaRequest::Offer { call, direction: MediaDirection::SendRecv });
        let offer = local_sdp(&mut a, call).await;
        b.handle(MediaRequest::Answer { call, offer, direction: MediaDirection::SendRecv });
        let answer = local_sdp(&mut b, call).await;
        a.handle(MediaRequest::ApplyAnswer { call, answer });
        let opus = |s: &CallStats| s.codec.as_deref() == Some("opus") && s.decoded_frames > 25;
        wait_stats(&a, call, "A decodes opus", opus).await;
        wait_stats(&b, call, "B decodes opus", opus).await;
        assert!(near(heard_hz(&mut heard_a).await, 1000.0));
        assert!(near(heard_hz(&mut heard_b).await, 600.0));

        a.handle(MediaRequest::Reoffer { call, direction: MediaDirection::SendRecv });
        let reoffer = local_sdp(&mut a, call).await;
        let reoffer = pcmu_only(std::str::from_utf8(&reoffer).unwrap());
        assert!(reoffer.contains("a=rtpmap:0 PCMU/8000") && !reoffer.contains("opus"), "{reoffer}");
        b.handle(MediaRequest::Answer { call, offer: reoffer.into(), direction: MediaDirection::SendRecv });
        let answer = local_sdp(&mut b, call).await;
        a.handle(MediaRequest::ApplyAnswer { call, answer });

        let pcmu = |s: &CallStats| s.codec.as_deref() == Some("PCMU");
        let before_a = wait_stats(&a, call, "A switches to PCMU", pcmu).await.decoded_frames;
        let before_b = wait_stats(&b, call, "B switches to PCMU", pcmu).await.decoded_frames;
        wait_stats(&a, call, "A decodes PCMU", |s| s.decoded_frames > before_a + 25).await;
        wait_stats(&b, call, "B decodes PCMU", |s| s.decoded_frames > before_b + 25).await;
        let (hz_a, hz_b) = (heard_hz(&mut heard_a).await, heard_hz(&mut heard_b).await);
        assert!(near(hz_a, 1000.0), "A hears {hz_a:?} after the switch");
        assert!(near(hz_b, 600.0), "B hears {hz_b:?} after the switch");
        let peer_a = a.stats(call).unwrap().1.expect("A's peer");
        assert_eq!(peer_a.negotiated().map(|n| n.codec.kind), Some(crate::media::codec::CodecKind::Pcmu));
        a.close_all();
        b.close_all();
    }
}
