//! The calls' media: one [`Peer`] and one audio task per call, created and
//! torn down as the SIP core asks ([`MediaRequest`]), with results coming
//! back as [`MediaResult`]s; controls ([`MediaControl`]) reach the running
//! audio through a channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::contract::{CallKey, MediaRequest};
use crate::dtmf::{DtmfMethod, DtmfStep};
use crate::media::engine::runtime::spawn;
use crate::media::engine::shell::{AudioInput, AudioStart, run_audio};
use crate::media::io::recording::RecordChannels;
use crate::media::receive::quality::QualityAlert;
use crate::media::rtc::peer::Peer;
use crate::media::setup::{AudioSetup, MediaConfig, ReceiveAudio, SendAudio};
use crate::media::stats::CallStats;

/// What a media task reports back to the driver.
pub(crate) enum MediaResult {
    /// The offer or answer asked for (with the peer that made it).
    LocalSdp { call: CallKey, sdp: Result<(Arc<Peer>, Bytes), String> },
    /// The call's media failed after setup (answer rejected, never connected).
    Failed { call: CallKey, reason: String },
    /// A quality threshold was passed or is back to normal.
    Quality { call: CallKey, alert: QualityAlert },
    /// The call's send source ran out (a WAV file played to its end); the
    /// call goes on sending silence. Once per source.
    SourceEnded { call: CallKey },
    /// A DTMF digit was received in the call's media (RFC 4733 or in-band).
    Dtmf { call: CallKey, digit: char, duration_ms: u32, method: DtmfMethod },
    /// A DTMF digit went out in the call's media (its last packet or sample).
    DtmfSent { call: CallKey, digit: char, method: DtmfMethod },
    /// A DTMF digit's turn came in the call's queue and it goes by SIP
    /// INFO: the core must send it now.
    DtmfInfoDue { call: CallKey, digit: char, duration_ms: u32 },
    /// A recording of the call is complete (stopped, or the call ended).
    RecordingDone { call: CallKey, path: PathBuf, error: Option<String> },
}

/// A change of a call's running audio, applied from its next frame on.
pub(crate) enum MediaControl {
    /// Send silence instead of the source (or stop).
    MuteSend(bool),
    /// Stop playing what arrives (it is still decoded and metered).
    MuteReceive(bool),
    /// Playback volume, 0.0 (silent) to 1.0 (as received); up to 4.0 amplifies.
    Volume(f32),
    /// Send this from now on (opened off the audio task).
    SendAudio(SendAudio),
    /// We hold the call, or resumed it (see [`crate::media::AudioSetup::hold`]).
    LocalHold(bool),
    /// Play what arrives into this from now on (opened off the audio task).
    ReceiveAudio(ReceiveAudio),
    /// Send these DTMF steps by `method` after every digit queued before,
    /// whatever its method (the call's one queue; INFO digits come back as
    /// [`MediaResult::DtmfInfoDue`] when their turn comes).
    Dtmf { steps: Vec<DtmfStep>, method: DtmfMethod },
    /// Record both directions to this WAV file from now on (created by
    /// the recording's own writer thread), or stop recording (`None`).
    Record(Option<(PathBuf, RecordChannels)>),
}

struct CallMedia {
    peer: Option<Arc<Peer>>,
    setup: Option<AudioSetup>,
    /// The latest figures, published by the audio task.
    stats: Arc<Mutex<CallStats>>,
    audio: Option<JoinHandle<()>>,
    /// The audio task's inputs: they queue until the task runs.
    inputs: mpsc::UnboundedSender<AudioInput>,
    /// The other end, until the audio task takes it.
    inputs_rx: Option<mpsc::UnboundedReceiver<AudioInput>>,
    /// Ends when the latest negotiation step asked for has run (see [`StepOrder`]).
    last_step: Option<oneshot::Receiver<()>>,
}

/// A call's negotiation steps (offer, answer, applying an answer, re-offer,
/// rollback) run on the peer in the order the SIP core asked for them, each
/// after the previous one has finished: they are separate tasks, and a
/// re-offer that overtook the answer it follows would find no session (a
/// hold asked for right after the call was confirmed failed that way).
struct StepOrder {
    previous: Option<oneshot::Receiver<()>>,
    /// Dropped when this step is done: the next one may go.
    _done: oneshot::Sender<()>,
}

impl StepOrder {
    /// Waits until the steps asked for before this one have run.
    async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
    }
}

impl CallMedia {
    fn new(setup: AudioSetup) -> CallMedia {
        let (inputs, inputs_rx) = mpsc::unbounded_channel();
        CallMedia {
            peer: None,
            setup: Some(setup),
            stats: Arc::default(),
            audio: None,
            inputs,
            inputs_rx: Some(inputs_rx),
            last_step: None,
        }
    }

    /// The next negotiation step's place in the order.
    fn next_step(&mut self) -> StepOrder {
        let (done, next) = oneshot::channel();
        StepOrder { previous: self.last_step.replace(next), _done: done }
    }

    /// What a new audio task needs from the call: its setup, stats and inputs.
    fn start_audio(&mut self) -> Option<AudioStart> {
        Some(AudioStart {
            setup: self.setup.take().unwrap_or_default(),
            stats: self.stats.clone(),
            inputs: self.inputs_rx.take()?,
        })
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
                let mut step = entry.next_step();
                let cfg = self.config.peer.clone();
                let tx = self.results_tx.clone();
                spawn(async move {
                    step.wait().await;
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
                let Some((peer, mut step)) =
                    self.calls.get_mut(&call).and_then(|e| Some((e.peer.clone()?, e.next_step())))
                else {
                    let _ =
                        self.results_tx.send(MediaResult::LocalSdp { call, sdp: Err("no media to re-offer".into()) });
                    return;
                };
                let tx = self.results_tx.clone();
                spawn(async move {
                    step.wait().await;
                    let sdp = peer.reoffer(direction).await.map_err(|e| e.to_string());
                    let _ = tx.send(MediaResult::LocalSdp { call, sdp: sdp.map(|s| (peer, Bytes::from(s))) });
                });
            }
            MediaRequest::Answer { call, offer, direction } => {
                let entry = self.calls.entry(call).or_insert_with(|| CallMedia::new(AudioSetup::default()));
                let existing = entry.peer.clone();
                // A new audio task, or the running one's inputs (a re-offer).
                let start = if entry.audio.is_none() { entry.start_audio() } else { None };
                let running = entry.inputs.clone();
                let starting = start.is_some();
                let mut step = entry.next_step();
                let cfg = self.config.clone();
                let tx = self.results_tx.clone();
                let handle = spawn(async move {
                    step.wait().await;
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
                    drop(step);
                    match answer {
                        Ok((peer, sdp, negotiated)) => {
                            let _ = tx.send(MediaResult::LocalSdp { call, sdp: Ok((peer.clone(), sdp)) });
                            match start {
                                Some(start) => run_audio(call, peer, negotiated, start, cfg, tx).await,
                                None => {
                                    let _ = running.send(AudioInput::Renegotiated(negotiated));
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(MediaResult::LocalSdp { call, sdp: Err(e) });
                        }
                    }
                });
                if starting && let Some(entry) = self.calls.get_mut(&call) {
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
                let mut step = entry.next_step();
                let start = if entry.audio.is_none() { entry.start_audio() } else { None };
                let Some(start) = start else {
                    // The answer to a re-offer: the running audio follows it.
                    let running = entry.inputs.clone();
                    spawn(async move {
                        step.wait().await;
                        let applied = apply(&peer).await;
                        drop(step);
                        match applied {
                            Ok(negotiated) => {
                                let _ = running.send(AudioInput::Renegotiated(negotiated));
                            }
                            Err(reason) => {
                                let _ = tx.send(MediaResult::Failed { call, reason });
                            }
                        }
                    });
                    return;
                };
                let cfg = self.config.clone();
                entry.audio = Some(spawn(async move {
                    step.wait().await;
                    let applied = apply(&peer).await;
                    drop(step);
                    match applied {
                        Ok(negotiated) => run_audio(call, peer, negotiated, start, cfg, tx).await,
                        Err(reason) => {
                            let _ = tx.send(MediaResult::Failed { call, reason });
                        }
                    }
                }));
            }
            MediaRequest::RollbackOffer { call } => {
                let Some((peer, mut step)) =
                    self.calls.get_mut(&call).and_then(|e| Some((e.peer.clone()?, e.next_step())))
                else {
                    return;
                };
                spawn(async move {
                    step.wait().await;
                    if let Err(e) = peer.rollback_offer().await {
                        // The session stays as it was; the next re-offer will say whether it can go on.
                        tracing::warn!(%call, error = %e, "could not roll back the refused re-offer");
                    }
                });
            }
            MediaRequest::Close { call } => {
                self.close(call);
            }
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

    /// Releases a call's media; returns its last figures (as last
    /// published: at most a few frames old), `None` if there is no such call.
    pub(crate) fn close(&mut self, call: CallKey) -> Option<CallStats> {
        let entry = self.calls.remove(&call)?;
        if let Some(task) = entry.audio {
            task.abort();
        }
        if let Some(peer) = entry.peer {
            spawn(async move { peer.close().await });
        }
        let stats = entry.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(stats)
    }

    /// Closes every call's media (also when the engine is dropped: the media
    /// runtime outlives any one phone's driver).
    pub(crate) fn close_all(&mut self) {
        let keys: Vec<_> = self.calls.keys().copied().collect();
        for k in keys {
            self.close(k);
        }
    }

    /// Changes a call's audio from its next frame on (queued until the
    /// audio runs); false if there is no such call.
    pub(crate) fn control(&mut self, call: CallKey, control: MediaControl) -> bool {
        let Some(entry) = self.calls.get(&call) else { return false };
        // The receiver lives as long as the call (in the entry or its task).
        let _ = entry.inputs.send(AudioInput::Control(control));
        true
    }

    /// The telephone-event a call sends DTMF with (payload type, clock
    /// rate), once its media is negotiated; `None` when the peer offered none.
    pub(crate) fn telephone_event(&self, call: CallKey) -> Option<(u8, u32)> {
        let n = self.calls.get(&call)?.peer.as_ref()?.negotiated()?;
        Some((n.telephone_event_pt?, n.telephone_event_rate?))
    }

    /// The latest figures of a call, with the peer's own counters.
    pub(crate) fn stats(&self, call: CallKey) -> Option<(CallStats, Option<Arc<Peer>>)> {
        let entry = self.calls.get(&call)?;
        let stats = entry.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some((stats, entry.peer.clone()))
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.close_all();
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::contract::MediaDirection;
    use crate::media::dsp::meter::Meter;
    use crate::media::io::app_channel::{AppSinkReader, app_sink_channel};
    use crate::media::rtc::peer::{IceConfig, PeerConfig};
    use crate::media::{ReceiveAudio, SendAudio};

    /// Generous bound for anything network-bound on loopback.
    const WITHIN: Duration = Duration::from_secs(10);

    fn loopback_config() -> MediaConfig {
        MediaConfig {
            peer: PeerConfig {
                ice: IceConfig {
                    allow_loopback: true,
                    interfaces: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
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
            detect_inband_dtmf: None,
            hold: None,
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
            MediaResult::SourceEnded { .. } => panic!("unexpected end of source"),
            MediaResult::Dtmf { .. } | MediaResult::DtmfSent { .. } | MediaResult::DtmfInfoDue { .. } => {
                panic!("unexpected DTMF")
            }
            MediaResult::RecordingDone { .. } => panic!("unexpected recording"),
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

    /// A hold asked for the moment the call is confirmed: the re-offer is
    /// asked for right after the answer is, and waits for it to be applied
    /// (it used to overtake it and fail: "reoffer before the first
    /// offer/answer").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reoffer_right_after_the_answer_waits_for_it() {
        let call = CallKey(1);
        for _ in 0..5 {
            let mut a = MediaEngine::new(loopback_config());
            let mut b = MediaEngine::new(loopback_config());
            a.handle(MediaRequest::Offer { call, direction: MediaDirection::SendRecv });
            let offer = local_sdp(&mut a, call).await;
            b.handle(MediaRequest::Answer { call, offer, direction: MediaDirection::SendRecv });
            let answer = local_sdp(&mut b, call).await;
            a.handle(MediaRequest::ApplyAnswer { call, answer });
            a.handle(MediaRequest::Reoffer { call, direction: MediaDirection::SendOnly });
            let reoffer = local_sdp(&mut a, call).await;
            assert!(std::str::from_utf8(&reoffer).unwrap().contains("a=sendonly"));
            a.close_all();
            b.close_all();
        }
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
        assert_eq!(peer_a.negotiated().map(|n| n.codec.kind), Some(crate::media::codec::common::CodecKind::Pcmu));
        a.close_all();
        b.close_all();
    }

    /// A WAV source plays to its end (SourceEnded, once), a control puts a
    /// tone in its place (heard at the far end), and closing returns the
    /// call's figures.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn source_ends_is_replaced_by_control_and_close_returns_stats() {
        use crate::media::io::sink::{AudioSink, WavRecorder};
        use crate::media::io::source::{AudioSource, Tone};

        let path = std::env::temp_dir().join(format!("webphone-engine-{}-short.wav", std::process::id()));
        {
            // A third of a second of 800 Hz.
            let mut rec = WavRecorder::create(&path).unwrap();
            let mut tone = Tone::new(800.0, -12.0);
            let mut frame = vec![0i16; 960];
            for _ in 0..17 {
                tone.read(&mut frame);
                rec.write(&frame);
            }
            rec.finish().unwrap();
        }
        let call = CallKey(7);
        let mut a = MediaEngine::new(loopback_config());
        let mut b = MediaEngine::new(loopback_config());
        let (mut setup_a, _heard_a) = tone_setup(600.0);
        setup_a.send = SendAudio::WavFile { path: path.clone(), looping: false };
        let (setup_b, mut heard_b) = tone_setup(1000.0);
        a.set_audio(call, setup_a);
        b.set_audio(call, setup_b);
        // Queued before the audio runs: applies from its first frame.
        assert!(a.control(call, MediaControl::Volume(0.5)));
        assert!(!a.control(CallKey(99), MediaControl::MuteSend(true)));

        a.handle(MediaRequest::Offer { call, direction: MediaDirection::SendRecv });
        let offer = local_sdp(&mut a, call).await;
        b.handle(MediaRequest::Answer { call, offer, direction: MediaDirection::SendRecv });
        let answer = local_sdp(&mut b, call).await;
        a.handle(MediaRequest::ApplyAnswer { call, answer });

        let ended = tokio::time::timeout(WITHIN, a.next_result()).await.expect("the file ends in time");
        assert!(matches!(ended, MediaResult::SourceEnded { call: c } if c == call));
        assert!(a.control(call, MediaControl::SendAudio(SendAudio::Tone { frequency_hz: 1500.0, level_dbfs: -12.0 })));
        // The new source is opened off the audio task: hear until it plays.
        let mut hz = None;
        for _ in 0..10 {
            hz = heard_hz(&mut heard_b).await;
            if near(hz, 1500.0) {
                break;
            }
        }
        assert!(near(hz, 1500.0), "B hears {hz:?} after the source was replaced");
        // B plays into a new sink from now on.
        let (sink, mut heard_b2) = app_sink_channel(50);
        assert!(b.control(call, MediaControl::ReceiveAudio(ReceiveAudio::App(sink))));
        let hz = heard_hz(&mut heard_b2).await;
        assert!(near(hz, 1500.0), "B's new sink hears {hz:?}");
        // The tone never ends: no second SourceEnded.
        assert!(tokio::time::timeout(Duration::from_millis(300), a.next_result()).await.is_err());

        let stats = a.close(call).expect("the call's last figures");
        assert!(stats.tx_packets > 25 && stats.codec.as_deref() == Some("opus"), "{stats:?}");
        assert!(a.close(call).is_none());
        assert!(!a.control(call, MediaControl::MuteSend(true)));
        b.close_all();
        let _ = std::fs::remove_file(&path);
    }
}
