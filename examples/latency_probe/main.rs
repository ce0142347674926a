//! `latency_probe`: mouth-to-ear latency of a webphone call, measured on the audio itself.
//!
//! The demo's setup (the loopback relay from `src/bin/webphone/relay.rs`, two phones A and B in this
//! process, media on 127.0.0.1): A calls B, B answers at once. A sends through a probe source that produces
//! silence with, every 500 ms, a tone burst (1 kHz, -10 dBFS peak, 200 ms) starting at an exact sample index
//! (burst `k` starts at sample `k·24000 + (173·k mod 960)`, so its onset falls at a different offset inside
//! its 20 ms frame each time). B receives into a probe sink that keeps every sample it is given.
//!
//! # Definitions
//!
//! - **Mouth time.** The source records `Instant::now()` at each `read` and the index of the first sample of
//!   the frame it fills. A frame read at time `t` holds the samples captured over `[t - 20 ms, t]` (a
//!   microphone driver delivers a frame when it is complete), so a burst whose onset is at offset `i` in that
//!   frame has its mouth time at `t - (960 - i) / 48000 s`.
//! - **Ear time.** The sink records `Instant::now()` at each `write` and the running index of the frame's
//!   first sample. A frame written at time `p` is played over `[p, p + 20 ms]`, so an onset found at offset
//!   `j` in that frame has its ear time at `p + j / 48000 s`.
//! - **Onset.** In the received stream, the first sample whose absolute value exceeds 25 % of the burst
//!   amplitude after at least 100 ms below it. (The sent burst is a sine starting at phase 0: it first
//!   exceeds 25 % about 2 samples, 0.04 ms, after its start; this bias is left in.) Each onset is paired with
//!   the latest burst whose mouth time precedes it (bursts are 500 ms apart; a pairing above 250 ms is
//!   flagged).
//! - **Mouth-to-ear delay** = ear time - mouth time. The first `--warmup` seconds (default 2 s: the jitter
//!   buffer settling from its 40 ms initial delay) are skipped; the bursts of the next `--duration` seconds
//!   are measured.
//!
//! # What to expect
//!
//! The floor is one 20 ms frame (the frame must be complete before it is encoded) plus the Opus encoder's
//! look-ahead (queried from libopus with the settings of `src/media/opus.rs`: 312 samples, 6.5 ms in VoIP
//! mode): 26.5 ms, plus whatever the network, the jitter buffer and the playout clock add (on loopback with
//! the phase-locked playout clock, a couple of ms). The goal is at most 30 ms.
//!
//! Each burst's delay is also split as `frame read -> frame written` (the time from the read of the frame
//! holding the onset to the write of the frame where it shows up) + the shift of the onset inside the audio
//! (`j - i` samples: the codec delay, or that minus one frame when the onset moved to the next frame) + one
//! frame, which tells a slow network or jitter buffer apart from codec delay.
//!
//! ```text
//! cargo build --release --example latency_probe
//! scripts/in-netns.sh target/release/examples/latency_probe --duration 10 [--json]
//! ```
//!
//! Exits 1 when no onset was detected (or the call failed).

// The demo's loopback SIP relay, shared rather than copied.
#[path = "../../src/bin/webphone/relay.rs"]
mod relay;
use relay::loopback_media;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audiopus::coder::Encoder as LibopusEncoder;
use audiopus::{Application, Bitrate, Channels, SampleRate, Signal};
use clap::Parser;
use webphone::media::codec::opus::OpusConfig;
use webphone::media::io::sink::AudioSink;
use webphone::media::io::source::AudioSource;
use webphone::media::{AudioSetup, CallStats, ReceiveAudio, SendAudio};
use webphone::{CallKey, CallOptions, Event, Events, Phone, PhoneConfig};

const RATE: f64 = 48_000.0;
/// Samples between two bursts (500 ms).
const PERIOD: u64 = 24_000;
/// Burst length in samples (200 ms).
const BURST: u64 = 9_600;
/// Burst frequency, Hz.
const BURST_HZ: f64 = 1_000.0;
/// Burst peak level, dBFS.
const BURST_DBFS: f64 = -10.0;
/// Onset threshold, share of the burst amplitude.
const THRESHOLD: f64 = 0.25;
/// Quiet needed before an onset, samples (100 ms).
const QUIET: u64 = 4_800;
/// The goal, ms.
const GOAL_MS: f64 = 30.0;

#[derive(Parser)]
#[command(name = "latency_probe", about = "Mouth-to-ear latency of a loopback webphone call")]
struct Args {
    /// Seconds of bursts measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds skipped at the start of the call (jitter buffer settling).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Also print the results as one JSON line.
    #[arg(long)]
    json: bool,
    /// Print every burst's figures.
    #[arg(long)]
    verbose: bool,
    /// Set both phones' playout margin (ms; default: the library's, 2 ms).
    #[arg(long)]
    playout_margin_ms: Option<f64>,
}

/// Start of burst `k` (k >= 1), in samples since the start of the stream.
fn onset(k: u64) -> u64 {
    k * PERIOD + (k * 173) % 960
}

fn amplitude() -> f64 {
    32767.0 * 10f64.powf(BURST_DBFS / 20.0)
}

/// What the source did: (time of `read`, index of the frame's first sample, frame length).
type Reads = Arc<Mutex<Vec<(Instant, u64, usize)>>>;

/// Silence with a tone burst every 500 ms; logs every read.
struct BurstSource {
    next: u64,
    amplitude: f64,
    reads: Reads,
}

impl AudioSource for BurstSource {
    fn read(&mut self, out: &mut [i16]) -> bool {
        let now = Instant::now();
        if let Ok(mut r) = self.reads.lock() {
            r.push((now, self.next, out.len()));
        }
        for (i, o) in out.iter_mut().enumerate() {
            let n = self.next + i as u64;
            let k = n / PERIOD;
            *o = 0;
            if k >= 1 {
                let s = onset(k);
                if n >= s && n < s + BURST {
                    let phase = std::f64::consts::TAU * BURST_HZ * (n - s) as f64 / RATE;
                    *o = (self.amplitude * phase.sin()).round() as i16;
                }
            }
        }
        self.next += out.len() as u64;
        true
    }
}

#[derive(Default)]
struct Recorded {
    /// (time of `write`, index of the frame's first sample, frame length).
    writes: Vec<(Instant, u64, usize)>,
    samples: Vec<i16>,
}

/// Keeps every sample played, and when each frame was written.
struct RecordSink(Arc<Mutex<Recorded>>);

impl AudioSink for RecordSink {
    fn write(&mut self, frame: &[i16]) {
        let now = Instant::now();
        if let Ok(mut r) = self.0.lock() {
            let first = r.samples.len() as u64;
            r.writes.push((now, first, frame.len()));
            r.samples.extend_from_slice(frame);
        }
    }
}

/// The Opus encoder's look-ahead in samples, with the settings of `webphone::media::codec::opus::OpusEncoder::new`.
fn opus_lookahead() -> Result<u32, audiopus::Error> {
    let config = OpusConfig::default();
    let mut enc = LibopusEncoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)?;
    enc.set_signal(Signal::Voice)?;
    enc.set_inband_fec(config.fec)?;
    enc.set_dtx(config.dtx)?;
    enc.set_bitrate(Bitrate::BitsPerSecond(config.bitrate as i32))?;
    enc.set_complexity(config.complexity)?;
    enc.set_packet_loss_perc(config.expected_loss_percent)?;
    enc.lookahead()
}

/// Waits for the first event `pick` maps to `Some`, at most `timeout`.
async fn wait_for<T>(events: &mut Events, timeout: Duration, mut pick: impl FnMut(&Event) -> Option<T>) -> Option<T> {
    tokio::time::timeout(timeout, async {
        loop {
            let ev = events.recv().await?;
            if let Some(t) = pick(&ev) {
                return Some(t);
            }
            if let Event::RegistrationFailed { reason, retry_in_ms: None, .. } = &ev {
                eprintln!("latency_probe: registration failed: {reason}");
                return None;
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Seconds from `t0` to `t` (negative when before).
fn secs(t: Instant, t0: Instant) -> f64 {
    if t >= t0 { (t - t0).as_secs_f64() } else { -(t0 - t).as_secs_f64() }
}

/// The frame record holding sample `n`.
fn frame_of(frames: &[(Instant, u64, usize)], n: u64) -> Option<(Instant, u64, usize)> {
    let i = frames.partition_point(|&(_, first, _)| first <= n);
    let f = *frames.get(i.checked_sub(1)?)?;
    (n < f.1 + f.2 as u64).then_some(f)
}

/// One measured burst.
#[derive(Clone, Debug, serde::Serialize)]
struct Burst {
    index: u64,
    /// Mouth time, s since the first read.
    mouth_s: f64,
    /// Offset of the onset in its sent frame, samples.
    send_offset: u64,
    /// Mouth-to-ear delay, ms (None: not detected).
    delay_ms: Option<f64>,
    /// Frame read -> frame holding the onset written, ms.
    read_to_write_ms: Option<f64>,
    /// Onset shift inside the audio (j - i), ms.
    audio_shift_ms: Option<f64>,
}

fn quantiles(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 1 { s[s.len() / 2] } else { (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0 };
    Some((s[0], median, s[s.len() - 1]))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(reason) => {
            eprintln!("latency_probe: {reason}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<bool, String> {
    let lookahead = opus_lookahead().map_err(|e| format!("libopus: {e}"))?;
    let lookahead_ms = f64::from(lookahead) * 1000.0 / RATE;
    let relay = relay::start().await.map_err(|e| format!("relay: {e}"))?;
    let make = |user: &str| {
        let mut b = loopback_media(
            PhoneConfig::builder().server(&relay.url).user(user).password("probe").domain("demo.invalid"),
        );
        if let Some(ms) = args.playout_margin_ms {
            b = b.playout_margin(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        }
        b.build().map_err(|e| e.to_string())
    };
    let alice = Phone::new(make("alice")?);
    let bob = Phone::new(make("bob")?);
    let mut alice_events = alice.events();
    let mut bob_events = bob.events();
    let registered = |e: &Event| matches!(e, Event::Registered { .. }).then_some(());
    alice.start().map_err(|e| e.to_string())?;
    bob.start().map_err(|e| e.to_string())?;
    wait_for(&mut alice_events, Duration::from_secs(10), registered).await.ok_or("alice not registered")?;
    wait_for(&mut bob_events, Duration::from_secs(10), registered).await.ok_or("bob not registered")?;

    let reads: Reads = Arc::new(Mutex::new(Vec::with_capacity(4096)));
    let recorded = Arc::new(Mutex::new(Recorded {
        writes: Vec::with_capacity(4096),
        samples: Vec::with_capacity(((args.warmup + args.duration + 5.0) * RATE) as usize),
    }));
    let source = BurstSource { next: 0, amplitude: amplitude(), reads: reads.clone() };
    let audio = AudioSetup { send: SendAudio::Custom(Box::new(source)), ..Default::default() };
    let key = alice.call("bob", CallOptions { audio, ..Default::default() }).await.map_err(|e| e.to_string())?.key();
    // B answers at once. (The phone's auto-answer would answer with the default audio: silence and no sink,
    // so the probe answers itself, with its sink, as soon as the call rings.)
    let bob_key: CallKey = wait_for(&mut bob_events, Duration::from_secs(10), |e| match e {
        Event::CallIncoming { call } => Some(call.key),
        _ => None,
    })
    .await
    .ok_or("no incoming call at bob")?;
    let bob_audio =
        AudioSetup { receive: ReceiveAudio::Custom(Box::new(RecordSink(recorded.clone()))), ..Default::default() };
    bob.answer_with(bob_key, bob_audio).await.map_err(|e| e.to_string())?;
    wait_for(&mut alice_events, Duration::from_secs(10), |e| match e {
        Event::CallConfirmed { call } if call.key == key => Some(()),
        _ => None,
    })
    .await
    .ok_or("call not confirmed")?;

    // Run from the first read: warm-up + measured duration + 0.5 s for the last bursts to arrive.
    let first_read = async {
        loop {
            if let Some(t) = reads.lock().ok().and_then(|r| r.first().map(|f| f.0)) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let t0 = tokio::time::timeout(Duration::from_secs(10), first_read).await.map_err(|_| "media never started")?;
    let end = t0 + Duration::from_secs_f64(args.warmup.max(0.0) + args.duration.max(0.5) + 0.5);
    let mut stats_mid: Option<CallStats> = None;
    let mid = t0 + Duration::from_secs_f64(args.warmup.max(0.0) + args.duration.max(0.5) / 2.0);
    while Instant::now() < end {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            ev = alice_events.recv() => if let Some(Event::CallEnded { call, .. }) = ev { return Err(format!("call ended early: {:?}", call.end)) },
            _ = bob_events.recv() => {}
        }
        if stats_mid.is_none() && Instant::now() >= mid {
            stats_mid = bob.call_stats(bob_key).await.ok();
        }
    }
    let bob_stats = bob.call_stats(bob_key).await.map_err(|e| format!("bob's stats: {e}"))?;
    let alice_stats = alice.call_stats(key).await.map_err(|e| format!("alice's stats: {e}"))?;
    let _ = alice.hangup(key).await;
    let _ =
        wait_for(&mut bob_events, Duration::from_secs(3), |e| matches!(e, Event::CallEnded { .. }).then_some(())).await;
    let _ = bob.stop().await;
    let _ = alice.stop().await;

    // Analysis.
    let reads = reads.lock().map_err(|_| "poisoned")?.clone();
    let rec = std::mem::take(&mut *recorded.lock().map_err(|_| "poisoned")?);
    let frame_len = reads.first().map_or(960, |r| r.2);
    let last_write = rec.writes.last().map(|w| secs(w.0, t0)).unwrap_or(0.0);
    let (win_start, win_end) = (args.warmup.max(0.0), args.warmup.max(0.0) + args.duration.max(0.5));

    // Sent bursts: mouth time of each onset.
    let sent_end = reads.last().map_or(0, |r| r.1 + r.2 as u64);
    let mut bursts: Vec<Burst> = Vec::new();
    let mut k = 1;
    while onset(k) < sent_end {
        let s = onset(k);
        if let Some((t, first, len)) = frame_of(&reads, s) {
            let i = s - first;
            let mouth = secs(t, t0) - (len as u64 - i) as f64 / RATE;
            bursts.push(Burst {
                index: k,
                mouth_s: mouth,
                send_offset: i,
                delay_ms: None,
                read_to_write_ms: None,
                audio_shift_ms: None,
            });
        }
        k += 1;
    }

    // Onsets in the received stream.
    let threshold = THRESHOLD * amplitude();
    let mut quiet: u64 = 0;
    let mut onsets: Vec<(u64, f64)> = Vec::new(); // (sample index, ear time s)
    for (n, &x) in rec.samples.iter().enumerate() {
        if f64::from(x).abs() > threshold {
            if quiet >= QUIET
                && let Some((p, first, _)) = frame_of(&rec.writes, n as u64)
            {
                onsets.push((n as u64, secs(p, t0) + (n as u64 - first) as f64 / RATE));
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }

    // Pair each onset with the latest burst before it.
    let mut unpaired = 0;
    let mut far = 0;
    for &(r, ear) in &onsets {
        let Some(b) = bursts.iter_mut().rev().find(|b| b.mouth_s <= ear) else {
            unpaired += 1;
            continue;
        };
        if b.delay_ms.is_some() {
            unpaired += 1; // a second onset for one burst (a glitch inside the burst)
            continue;
        }
        let delay = (ear - b.mouth_s) * 1000.0;
        if delay > 250.0 {
            far += 1;
        }
        let s = onset(b.index);
        let (Some((t, fs, _)), Some((p, fr, _))) = (frame_of(&reads, s), frame_of(&rec.writes, r)) else { continue };
        b.delay_ms = Some(delay);
        b.read_to_write_ms = Some(secs(p, t) * 1000.0);
        b.audio_shift_ms = Some(((r - fr) as f64 - (s - fs) as f64) * 1000.0 / RATE);
    }

    // The measurement window: mouth time inside it, and enough recorded after it for the burst to arrive.
    let measured: Vec<&Burst> = bursts
        .iter()
        .filter(|b| b.mouth_s >= win_start && b.mouth_s < win_end && b.mouth_s + 0.3 < last_write)
        .collect();
    let delays: Vec<f64> = measured.iter().filter_map(|b| b.delay_ms).collect();
    let shifts: Vec<f64> = measured.iter().filter_map(|b| b.audio_shift_ms).collect();
    let r2w: Vec<f64> = measured.iter().filter_map(|b| b.read_to_write_ms).collect();
    let stats = quantiles(&delays);
    let floor_ms = 1000.0 * frame_len as f64 / RATE + lookahead_ms;

    println!(
        "latency probe: A -> B over loopback WebRTC (Opus), bursts of {BURST_HZ} Hz at {BURST_DBFS} dBFS, 200 ms every 500 ms"
    );
    println!(
        "  floor: one {:.0} ms frame + Opus look-ahead {lookahead} samples = {lookahead_ms:.2} ms (libopus, VoIP mode) -> {floor_ms:.1} ms; goal <= {GOAL_MS:.0} ms",
        1000.0 * frame_len as f64 / RATE
    );
    println!(
        "  window: {win_start:.1} s .. {win_end:.1} s after the first read (warm-up {win_start:.1} s skipped); recording ends at {last_write:.2} s"
    );
    if args.verbose {
        println!("  burst  mouth(s)  offset  delay(ms)  read->write(ms)  shift(ms)");
        for b in &bursts {
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            let tag = if measured.iter().any(|m| m.index == b.index) { "" } else { "  (not measured)" };
            println!(
                "  {:5}  {:8.3}  {:6}  {:>9}  {:>15}  {:>9}{tag}",
                b.index,
                b.mouth_s,
                b.send_offset,
                f(b.delay_ms),
                f(b.read_to_write_ms),
                f(b.audio_shift_ms)
            );
        }
    } else {
        let list: Vec<String> =
            measured.iter().map(|b| b.delay_ms.map_or("-".to_string(), |d| format!("{d:.1}"))).collect();
        println!("  per-burst delays (ms): {}", list.join(" "));
    }
    println!("  bursts detected: {} of {} sent in the window", delays.len(), measured.len());
    if unpaired > 0 || far > 0 {
        println!("  WARNING: {unpaired} onsets not paired with a burst, {far} pairings above 250 ms");
    }
    match stats {
        Some((min, median, max)) => println!(
            "  mouth-to-ear: min {min:.1} ms, median {median:.1} ms, max {max:.1} ms ({} the {GOAL_MS:.0} ms goal at the median)",
            if median <= GOAL_MS { "meets" } else { "misses" }
        ),
        None => println!("  mouth-to-ear: no onset detected"),
    }
    if let (Some((smin, smed, smax)), Some((rmin, rmed, rmax))) = (quantiles(&shifts), quantiles(&r2w)) {
        println!(
            "  split: frame read -> frame written {rmin:.1} / {rmed:.1} / {rmax:.1} ms (min / median / max); onset shift in the audio {smin:.2} / {smed:.2} / {smax:.2} ms; + one frame"
        );
    }
    let jb = |s: &CallStats| {
        format!(
            "jitter buffer target {:.0} ms, rx_late {}, rx_lost {}, concealed {}, decoded {}, playout adjustments {}, late ticks {}/{}",
            s.jitter_buffer_ms,
            s.rx_late,
            s.rx_lost,
            s.concealed_frames,
            s.decoded_frames,
            s.playout_adjustments,
            s.late_ticks,
            s.audio_ticks
        )
    };
    if let Some(s) = &stats_mid {
        println!("  B mid-window: {}", jb(s));
    }
    println!("  B at the end: {}", jb(&bob_stats));
    println!(
        "  A at the end: late ticks {}/{}, tx packets {}",
        alice_stats.late_ticks, alice_stats.audio_ticks, alice_stats.tx_packets
    );

    if args.json {
        let (min, median, max) = stats.map_or((None, None, None), |(a, b, c)| (Some(a), Some(b), Some(c)));
        let line = serde_json::json!({
            "probe": "latency",
            "frame_ms": 1000.0 * frame_len as f64 / RATE,
            "opus_lookahead_samples": lookahead,
            "playout_margin_ms": args.playout_margin_ms,
            "opus_lookahead_ms": lookahead_ms,
            "floor_ms": floor_ms,
            "goal_ms": GOAL_MS,
            "warmup_s": win_start,
            "duration_s": win_end - win_start,
            "bursts_sent": measured.len(),
            "bursts_detected": delays.len(),
            "delay_ms": { "min": min, "median": median, "max": max },
            "delays_ms": delays,
            "read_to_write_ms_median": quantiles(&r2w).map(|q| q.1),
            "audio_shift_ms_median": quantiles(&shifts).map(|q| q.1),
            "meets_goal": median.is_some_and(|m| m <= GOAL_MS),
            "b_jitter_buffer_ms": bob_stats.jitter_buffer_ms,
            "b_jitter_buffer_ms_mid": stats_mid.as_ref().map(|s| s.jitter_buffer_ms),
            "b_rx_late": bob_stats.rx_late,
            "b_rx_lost": bob_stats.rx_lost,
            "b_concealed_frames": bob_stats.concealed_frames,
            "b_playout_adjustments": bob_stats.playout_adjustments,
            "b_late_ticks": bob_stats.late_ticks,
            "b_audio_ticks": bob_stats.audio_ticks,
            "a_late_ticks": alice_stats.late_ticks,
            "a_audio_ticks": alice_stats.audio_ticks,
        });
        println!("{line}");
    }
    if delays.is_empty() {
        eprintln!("latency_probe: no onset detected");
        return Ok(false);
    }
    Ok(true)
}
