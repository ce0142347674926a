//! Measuring audio: level, peak, dominant frequency, tone presence, and statistics for tests.
//!
//! This module owns [`Meter`], which analyses one frame per [`Meter::process`] call on the audio thread, and
//! [`MeterHandle`], which other threads use to read the latest results without ever making the audio thread
//! wait.
//!
//! # What is measured
//!
//! - Per frame: RMS level and peak of that frame. Levels are dBFS relative to a full-scale *square* wave
//!   (`20·log10(rms / 32768)`), so a full-scale sine reads −3.01 dBFS; [`DBFS_FLOOR`] stands for silence.
//! - Over the last [`ANALYSIS_WINDOW`] samples (170.7 ms): the dominant frequency, the largest spectral peak
//!   between [`MeterConfig::min_frequency_hz`] and [`MeterConfig::max_frequency_hz`]; every frame while a
//!   frequency is tracked, else every [`MeterConfig::spectrum_interval`]-th frame.
//! - On demand, over the same window: the level of a tone at an exact frequency and its share of the window's
//!   energy ([`Meter::measure_tone`], [`Meter::tone_present`]).
//! - History: frames analysed, non-silent frames, the first non-silent frame, and for each tracked frequency
//!   ([`Meter::track`]) the frames in which it was dominant.
//!
//! # How, and what it costs
//!
//! Finding an unknown peak to ≤ 5 Hz needs a window of at least ~1/(5 Hz) of resolution after interpolation
//! and a scan of every candidate bin. Goertzel costs one multiply-add per sample *per candidate*: scanning the
//! ~650 bins between 200 and 4000 Hz over 8192 samples would be ~5 M multiply-adds per frame (milliseconds).
//! An FFT gets every bin at once, so the dominant frequency uses one:
//!
//! 1. the window is multiplied by a periodic Hann window and packed as 4096 complex samples (even samples real,
//!    odd samples imaginary);
//! 2. a 4096-point complex FFT (`rustfft`, planned once per process; its buffers are one set per thread, since a
//!    call's meter uses them for microseconds every half second) and a split step give the 8192-point real
//!    spectrum, 5.86 Hz per bin;
//! 3. the largest bin in the band is refined with the exact two-bin interpolation for a Hann window,
//!    `δ = (2·|X[k±1]| − |X[k]|) / (|X[k]| + |X[k±1]|)`, using the larger neighbour. For a steady pure tone
//!    this is exact up to leakage from other components: the error measured over 200–4000 Hz is below
//!    0.001 Hz. While the window still holds the onset of a tone (its first 170 ms) the window is not a clean
//!    Hann and the error grows to a few hertz (≤ 4.1 Hz seen at 300 Hz on the very first frame).
//!
//! The frame's level and peak are one pass over the frame; the window's energy is kept as an exact running sum,
//! so a silent window skips the FFT. The per-frame cost is therefore one pass over the frame, 8192 window
//! multiplications, one 4096-point FFT and one pass over the band's bins: about 20 µs per spectrum frame on a
//! shared 2-core Xeon (release build, `benches/audio_io.rs`), about 3 µs when the window is silent. That is
//! 0.1 % of a 20 ms frame but two thirds of an Opus decode, so a call's receive path computes the spectrum
//! only every [`MeterConfig::spectrum_interval`]-th frame unless a test tracks a frequency (the frame level
//! and peak are still computed every frame).
//!
//! Tone presence uses Goertzel at exactly the requested frequency over the Hann-windowed window (8192
//! multiply-adds, only when asked), normalised so a tone's level reads the same as its RMS level, and compares
//! it with the window's total energy (about 24 µs per query). The Hann window's side lobes fall by 18 dB per
//! octave, so a loud 440 Hz tone leaks nothing measurable into 880 Hz.
//!
//! # Sharing with other threads
//!
//! After each frame the meter publishes a [`MeterSnapshot`] into a mutex with `try_lock`: if a reader holds the
//! lock at that instant, that frame's publication is skipped (the next frame publishes everything, counters are
//! cumulative), so the audio thread never waits. Publishing copies into preallocated storage and never
//! allocates. Frequencies registered with [`MeterHandle::track`] are queued and picked up by the audio thread
//! the same way.
//!
//! # Example
//!
//! ```
//! use webphone::media::dsp::meter::Meter;
//! use webphone::media::io::source::{AudioSource, Tone};
//!
//! let mut meter = Meter::new();
//! meter.track(440.0);
//! let handle = meter.handle(); // for another thread
//! let mut tone = Tone::new(440.0, -6.0);
//! let mut frame = [0i16; 960];
//! for _ in 0..25 {
//!     tone.read(&mut frame);
//!     meter.process(&frame);
//! }
//! let dominant = handle.dominant_hz().unwrap_or_default();
//! assert!((dominant - 440.0).abs() < 5.0);
//! assert!(meter.tone_present(440.0, -20.0));
//! assert!(!meter.tone_present(880.0, -60.0));
//! assert_eq!(handle.tracked_ratio(440.0), Some(1.0));
//! assert_eq!(handle.first_sound_frame(), Some(0));
//! ```

use std::f64::consts::TAU;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::media::frame::SAMPLE_RATE;

/// Samples in the analysis window (170.7 ms at 48 kHz).
pub const ANALYSIS_WINDOW: usize = 8192;
const MASK: usize = ANALYSIS_WINDOW - 1;
const HALF: usize = ANALYSIS_WINDOW / 2;
/// Spacing of the analysis spectrum's bins, in Hz (before interpolation).
pub const BIN_HZ: f64 = SAMPLE_RATE as f64 / ANALYSIS_WINDOW as f64;
/// The level reported for digital silence, in dBFS (lower levels are clamped to it).
pub const DBFS_FLOOR: f64 = -150.0;
/// The most frequencies one meter can track.
pub const MAX_TRACKED: usize = 16;
/// Full scale for the dBFS computations: a square wave of ±32768 is 0 dBFS.
const FULL_SCALE_POWER: f64 = 32768.0 * 32768.0;

/// Sum of squares of `samples` (exact: at most 2³⁰ per sample).
fn energy(samples: &[i16]) -> u64 {
    samples.iter().map(|&s| (i32::from(s) * i32::from(s)) as u64).sum()
}

/// Mean square power (in LSB²) to dBFS, clamped to [`DBFS_FLOOR`].
fn power_to_dbfs(power: f64) -> f64 {
    if power > 0.0 { (10.0 * (power / FULL_SCALE_POWER).log10()).max(DBFS_FLOOR) } else { DBFS_FLOOR }
}

/// Thresholds and ranges of a [`Meter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterConfig {
    /// A frame whose RMS level is below this is silent (it does not count as non-silent, and cannot make a tracked
    /// frequency dominant); a window below it has no dominant frequency. Default −60 dBFS.
    pub silence_dbfs: f64,
    /// Lowest frequency the dominant-frequency search considers. Default 50 Hz (clamped to at least 2 bins).
    pub min_frequency_hz: f64,
    /// Highest frequency the dominant-frequency search considers. Default 12 kHz (clamped to 2 bins below
    /// 24 kHz). Lowering it makes the search cheaper.
    pub max_frequency_hz: f64,
    /// How close the dominant frequency must be to a tracked frequency to count for it. Default 10 Hz.
    pub track_tolerance_hz: f64,
    /// The share of the window's energy a tone must carry for [`Meter::tone_present`]. Default 0.01 (the tone
    /// is at most 20 dB below the total), which white noise never reaches by chance on this window length.
    pub min_tone_share: f64,
    /// While no frequency is tracked, the dominant frequency is computed on every `spectrum_interval`-th frame
    /// only (the latest value is carried in between). Default 1: every frame. A call's receive pipeline uses
    /// 25 (every 500 ms with 20 ms frames: the spectrum then costs under 1 µs per frame on average, against
    /// about 20 µs every frame, two thirds of an Opus decode). While a frequency is tracked it is computed every frame, since
    /// the tracked counters are per frame.
    pub spectrum_interval: u32,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            silence_dbfs: -60.0,
            min_frequency_hz: 50.0,
            max_frequency_hz: 12_000.0,
            track_tolerance_hz: 10.0,
            min_tone_share: 0.01,
            spectrum_interval: 1,
        }
    }
}

/// What [`Meter::process`] found in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameAnalysis {
    /// The frame's index, counting from 0 for the first frame processed.
    pub index: u64,
    /// The frame's RMS level in dBFS.
    pub level_dbfs: f64,
    /// The frame's largest absolute sample (0..=32768).
    pub peak: u16,
    /// Whether the frame is below [`MeterConfig::silence_dbfs`].
    pub silent: bool,
    /// The dominant frequency of the analysis window ending with this frame, in Hz; `None` when the window is
    /// silent.
    pub dominant_hz: Option<f64>,
}

impl FrameAnalysis {
    /// The peak in dBFS.
    pub fn peak_dbfs(&self) -> f64 {
        if self.peak == 0 { DBFS_FLOOR } else { (20.0 * (f64::from(self.peak) / 32768.0).log10()).max(DBFS_FLOOR) }
    }
}

/// A tone's strength in the analysis window, from [`Meter::measure_tone`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneMeasurement {
    /// The tone's RMS level in dBFS (a full-scale sine reads −3.01), averaged over the window.
    pub level_dbfs: f64,
    /// The tone's share of the window's energy, 0.0..=1.0.
    pub share: f64,
}

/// Counters for one tracked frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackedStats {
    /// The tracked frequency, in Hz.
    pub frequency_hz: f64,
    /// Non-silent frames since it was registered.
    pub non_silent_frames: u64,
    /// Non-silent frames since it was registered in which it was the dominant frequency (within
    /// [`MeterConfig::track_tolerance_hz`]).
    pub dominant_frames: u64,
}

impl TrackedStats {
    /// `dominant_frames / non_silent_frames`, or `None` before the first non-silent frame.
    pub fn ratio(&self) -> Option<f64> {
        (self.non_silent_frames > 0).then(|| self.dominant_frames as f64 / self.non_silent_frames as f64)
    }
}

/// The meter's state as last published, read through a [`MeterHandle`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeterSnapshot {
    /// Frames processed.
    pub frames_analysed: u64,
    /// Frames at or above the silence threshold.
    pub non_silent_frames: u64,
    /// Index of the first non-silent frame.
    pub first_sound_frame: Option<u64>,
    /// The latest frame's analysis (`None` before the first frame).
    pub last: Option<FrameAnalysis>,
    /// Counters of every tracked frequency.
    pub tracked: Vec<TrackedStats>,
}

impl MeterSnapshot {
    /// The counters of the tracked frequency `frequency_hz`.
    pub fn tracked(&self, frequency_hz: f64) -> Option<&TrackedStats> {
        self.tracked.iter().find(|t| same_frequency(t.frequency_hz, frequency_hz))
    }

    /// The share of non-silent frames in which `frequency_hz` was dominant; `None` if it is not tracked or no
    /// non-silent frame has been seen since it was registered.
    pub fn tracked_ratio(&self, frequency_hz: f64) -> Option<f64> {
        self.tracked(frequency_hz).and_then(TrackedStats::ratio)
    }
}

fn same_frequency(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn valid_frequency(frequency_hz: f64) -> bool {
    frequency_hz.is_finite() && frequency_hz > 0.0 && frequency_hz < f64::from(SAMPLE_RATE) / 2.0
}

struct Shared {
    snapshot: Mutex<MeterSnapshot>,
    pending_tracks: Mutex<Vec<f64>>,
    has_pending: AtomicBool,
    skipped_publications: AtomicU64,
}

/// Locks, recovering from poisoning (nothing here can leave the data inconsistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Tries to lock without waiting, recovering from poisoning.
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A thread-safe, cloneable view of a [`Meter`]'s latest published state.
///
/// Reading locks a mutex the audio thread only ever `try_lock`s: a reader may delay one publication, never the
/// audio.
#[derive(Clone)]
pub struct MeterHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for MeterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeterHandle").finish_non_exhaustive()
    }
}

impl MeterHandle {
    /// A copy of the latest published state.
    pub fn snapshot(&self) -> MeterSnapshot {
        lock(&self.shared.snapshot).clone()
    }

    /// The latest frame's analysis (`None` before the first frame).
    pub fn last(&self) -> Option<FrameAnalysis> {
        lock(&self.shared.snapshot).last
    }

    /// The latest frame's RMS level in dBFS ([`DBFS_FLOOR`] before the first frame).
    pub fn level_dbfs(&self) -> f64 {
        self.last().map_or(DBFS_FLOOR, |a| a.level_dbfs)
    }

    /// The latest frame's peak (0..=32768).
    pub fn peak(&self) -> u16 {
        self.last().map_or(0, |a| a.peak)
    }

    /// The latest dominant frequency in Hz.
    pub fn dominant_hz(&self) -> Option<f64> {
        self.last().and_then(|a| a.dominant_hz)
    }

    /// Frames processed, as of the latest publication.
    pub fn frames_analysed(&self) -> u64 {
        lock(&self.shared.snapshot).frames_analysed
    }

    /// Index of the first non-silent frame, as of the latest publication.
    pub fn first_sound_frame(&self) -> Option<u64> {
        lock(&self.shared.snapshot).first_sound_frame
    }

    /// See [`MeterSnapshot::tracked_ratio`].
    pub fn tracked_ratio(&self, frequency_hz: f64) -> Option<f64> {
        lock(&self.shared.snapshot).tracked_ratio(frequency_hz)
    }

    /// Starts tracking `frequency_hz` from the next frame the meter processes (see [`Meter::track`]). Invalid
    /// frequencies and registrations beyond [`MAX_TRACKED`] are ignored by the meter.
    pub fn track(&self, frequency_hz: f64) {
        let mut pending = lock(&self.shared.pending_tracks);
        if pending.len() < MAX_TRACKED {
            pending.push(frequency_hz);
        }
        self.shared.has_pending.store(true, Ordering::Release);
    }

    /// How many publications were skipped because a reader held the lock (a contention diagnostic).
    pub fn skipped_publications(&self) -> u64 {
        self.shared.skipped_publications.load(Ordering::Relaxed)
    }
}

/// What every meter's spectrum needs and no meter changes: the Hann window, the FFT plan and the
/// real-FFT split's twiddles (about 100 KiB), built once per process.
struct SpectrumTables {
    hann: Box<[f32]>,
    fft: Arc<dyn Fft<f32>>,
    scratch_len: usize,
    /// `e^{-2πik/N}` for the real-FFT split.
    twiddles: Box<[Complex<f32>]>,
}

impl SpectrumTables {
    fn get() -> &'static SpectrumTables {
        static TABLES: OnceLock<SpectrumTables> = OnceLock::new();
        TABLES.get_or_init(|| {
            let fft = FftPlanner::<f32>::new().plan_fft_forward(HALF);
            let scratch_len = fft.get_inplace_scratch_len();
            let hann = (0..ANALYSIS_WINDOW)
                .map(|n| (0.5 - 0.5 * (TAU * n as f64 / ANALYSIS_WINDOW as f64).cos()) as f32)
                .collect();
            let twiddles = (0..HALF)
                .map(|k| {
                    let a = -TAU * k as f64 / ANALYSIS_WINDOW as f64;
                    Complex::new(a.cos() as f32, a.sin() as f32)
                })
                .collect();
            SpectrumTables { hann, fft, scratch_len, twiddles }
        })
    }
}

/// The FFT's input/output and scratch buffers (about 64 KiB): one set per thread, used only during an
/// analysis, so meters on the same thread share them.
type SpectrumWorkspace = Option<(Box<[Complex<f32>]>, Box<[Complex<f32>]>)>;

thread_local! {
    static SPECTRUM_WORKSPACE: std::cell::RefCell<SpectrumWorkspace> = const { std::cell::RefCell::new(None) };
}

/// Measures level, peak and dominant frequency of 48 kHz mono audio, frame by frame.
///
/// See the [module documentation](self) for the method and its cost. A meter owns its 16 KiB window;
/// the tables of the spectrum are the process's and its FFT buffers the thread's (allocated on the
/// thread's first analysis). [`Meter::process`] does not allocate otherwise.
pub struct Meter {
    config: MeterConfig,
    /// The last `ANALYSIS_WINDOW` samples; the oldest is at `ring_pos`.
    ring: Box<[i16]>,
    ring_pos: usize,
    /// Exact sum of squares of `ring`.
    ring_energy: u64,
    /// The window, FFT plan and twiddles, shared by every meter of the process.
    tables: &'static SpectrumTables,
    bin_range: (usize, usize),
    /// The latest dominant frequency computed, carried between spectrum frames.
    dominant: Option<f64>,
    last: Option<FrameAnalysis>,
    frames: u64,
    non_silent: u64,
    first_sound: Option<u64>,
    tracked: Vec<TrackedStats>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("config", &self.config)
            .field("frames", &self.frames)
            .field("last", &self.last)
            .field("tracked", &self.tracked)
            .finish_non_exhaustive()
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    /// A meter with the default [`MeterConfig`].
    pub fn new() -> Self {
        Self::with_config(MeterConfig::default())
    }

    /// A meter with `config` (frequency limits are clamped to the analysable range).
    pub fn with_config(config: MeterConfig) -> Self {
        let lo = if config.min_frequency_hz.is_finite() { (config.min_frequency_hz / BIN_HZ).ceil() } else { 0.0 };
        let hi = if config.max_frequency_hz.is_finite() { (config.max_frequency_hz / BIN_HZ).floor() } else { 0.0 };
        let lo = (lo.max(2.0) as usize).min(HALF - 2);
        let hi = (hi.max(0.0) as usize).clamp(lo, HALF - 2);
        let mut snapshot = MeterSnapshot::default();
        snapshot.tracked.reserve_exact(MAX_TRACKED);
        Meter {
            config,
            ring: vec![0; ANALYSIS_WINDOW].into_boxed_slice(),
            ring_pos: 0,
            ring_energy: 0,
            tables: SpectrumTables::get(),
            bin_range: (lo, hi),
            dominant: None,
            last: None,
            frames: 0,
            non_silent: 0,
            first_sound: None,
            tracked: Vec::with_capacity(MAX_TRACKED),
            shared: Arc::new(Shared {
                snapshot: Mutex::new(snapshot),
                pending_tracks: Mutex::new(Vec::with_capacity(MAX_TRACKED)),
                has_pending: AtomicBool::new(false),
                skipped_publications: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &MeterConfig {
        &self.config
    }

    /// A handle for reading this meter's results from other threads.
    pub fn handle(&self) -> MeterHandle {
        MeterHandle { shared: Arc::clone(&self.shared) }
    }

    /// Analyses one frame (any length; normally 480 or 960 samples) and publishes the result to the handles.
    pub fn process(&mut self, frame: &[i16]) -> FrameAnalysis {
        let mut sum_sq: u64 = 0;
        let mut peak: u16 = 0;
        for &s in frame {
            let v = i32::from(s);
            sum_sq += (v * v) as u64;
            peak = peak.max(v.unsigned_abs() as u16);
        }
        let level_dbfs = if frame.is_empty() { DBFS_FLOOR } else { power_to_dbfs(sum_sq as f64 / frame.len() as f64) };

        // Into the ring in at most two block copies; the running energy gains the new samples'
        // squares (the level pass summed them already unless the frame exceeds the window) and
        // loses the overwritten ones'.
        let incoming = &frame[frame.len().saturating_sub(ANALYSIS_WINDOW)..];
        let incoming_energy = if incoming.len() == frame.len() { sum_sq } else { energy(incoming) };
        let first = incoming.len().min(ANALYSIS_WINDOW - self.ring_pos);
        let (head, tail) = incoming.split_at(first);
        let outgoing = energy(&self.ring[self.ring_pos..self.ring_pos + first]) + energy(&self.ring[..tail.len()]);
        self.ring[self.ring_pos..self.ring_pos + first].copy_from_slice(head);
        self.ring[..tail.len()].copy_from_slice(tail);
        self.ring_pos = (self.ring_pos + incoming.len()) & MASK;
        self.ring_energy = self.ring_energy + incoming_energy - outgoing;

        let window_dbfs = power_to_dbfs(self.ring_energy as f64 / ANALYSIS_WINDOW as f64);
        let interval = u64::from(self.config.spectrum_interval.max(1));
        if window_dbfs < self.config.silence_dbfs {
            self.dominant = None;
        } else if !self.tracked.is_empty() || self.frames.is_multiple_of(interval) || self.dominant.is_none() {
            self.dominant = self.dominant_frequency();
        }
        let dominant_hz = self.dominant;
        let silent = level_dbfs < self.config.silence_dbfs;
        let analysis = FrameAnalysis { index: self.frames, level_dbfs, peak, silent, dominant_hz };

        self.frames += 1;
        if !silent {
            self.non_silent += 1;
            self.first_sound.get_or_insert(analysis.index);
            for t in &mut self.tracked {
                t.non_silent_frames += 1;
                if dominant_hz.is_some_and(|d| (d - t.frequency_hz).abs() <= self.config.track_tolerance_hz) {
                    t.dominant_frames += 1;
                }
            }
        }
        self.last = Some(analysis);
        self.publish();
        analysis
    }

    /// Runs `f` on the half-length complex FFT of the Hann-windowed window (even samples as real parts,
    /// odd ones as imaginary parts: [`real_bin`] splits it into the real spectrum). The FFT works in the
    /// calling thread's workspace, allocated on the thread's first analysis.
    fn with_spectrum<R>(&self, f: impl FnOnce(&[Complex<f32>]) -> R) -> R {
        let tables = self.tables;
        SPECTRUM_WORKSPACE.with_borrow_mut(|w| {
            let (buf, scratch) = w.get_or_insert_with(|| {
                let zero = Complex::new(0.0, 0.0);
                (vec![zero; HALF].into_boxed_slice(), vec![zero; tables.scratch_len].into_boxed_slice())
            });
            for (n, z) in buf.iter_mut().enumerate() {
                let i = (self.ring_pos + 2 * n) & MASK;
                let re = f32::from(self.ring[i]) * tables.hann[2 * n];
                let im = f32::from(self.ring[(i + 1) & MASK]) * tables.hann[2 * n + 1];
                *z = Complex::new(re, im);
            }
            tables.fft.process_with_scratch(buf, scratch);
            f(buf)
        })
    }

    /// The Hann-windowed real spectrum of the window, its largest bin in the band, and the interpolated peak.
    fn dominant_frequency(&mut self) -> Option<f64> {
        let (lo, hi) = self.bin_range;
        let twiddles = &self.tables.twiddles;
        self.with_spectrum(|spectrum| {
            let mut best = lo;
            let mut best_power = 0.0f32;
            for k in lo..=hi {
                let p = real_bin(spectrum, twiddles, k).norm_sqr();
                if p > best_power {
                    best_power = p;
                    best = k;
                }
            }
            if best_power <= 0.0 {
                return None;
            }
            let b = f64::from(best_power.sqrt());
            let l = f64::from(real_bin(spectrum, twiddles, best - 1).norm());
            let r = f64::from(real_bin(spectrum, twiddles, best + 1).norm());
            // Exact for a Hann window: |X[k+1]| / |X[k]| = (1 + δ) / (2 − δ) for a tone at bin k + δ.
            let (side, neighbour) = if r >= l { (1.0, r) } else { (-1.0, l) };
            let delta = ((2.0 * neighbour - b) / (b + neighbour)).clamp(0.0, 1.0);
            Some((best as f64 + side * delta) * BIN_HZ)
        })
    }

    fn publish(&mut self) {
        if self.shared.has_pending.load(Ordering::Acquire) {
            // A reference-count bump (no allocation), so that `track` can borrow `self` mutably.
            let shared = Arc::clone(&self.shared);
            if let Some(mut pending) = try_lock(&shared.pending_tracks) {
                for &f in pending.iter() {
                    self.track(f);
                }
                pending.clear();
                shared.has_pending.store(false, Ordering::Release);
            }
        }
        match try_lock(&self.shared.snapshot) {
            Some(mut snap) => {
                snap.frames_analysed = self.frames;
                snap.non_silent_frames = self.non_silent;
                snap.first_sound_frame = self.first_sound;
                snap.last = self.last;
                // Both vectors have capacity MAX_TRACKED: no allocation.
                snap.tracked.clear();
                snap.tracked.extend_from_slice(&self.tracked);
            }
            None => {
                self.shared.skipped_publications.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The latest frame's analysis (`None` before the first frame).
    pub fn last(&self) -> Option<FrameAnalysis> {
        self.last
    }

    /// The latest frame's RMS level in dBFS ([`DBFS_FLOOR`] before the first frame).
    pub fn level_dbfs(&self) -> f64 {
        self.last.map_or(DBFS_FLOOR, |a| a.level_dbfs)
    }

    /// The latest frame's peak (0..=32768).
    pub fn peak(&self) -> u16 {
        self.last.map_or(0, |a| a.peak)
    }

    /// The dominant frequency of the latest window, in Hz (`None` if silent or before the first frame).
    pub fn dominant_hz(&self) -> Option<f64> {
        self.last.and_then(|a| a.dominant_hz)
    }

    /// The RMS level of the whole analysis window (the last 170.7 ms), in dBFS.
    pub fn window_level_dbfs(&self) -> f64 {
        power_to_dbfs(self.ring_energy as f64 / ANALYSIS_WINDOW as f64)
    }

    /// Frames processed.
    pub fn frames_analysed(&self) -> u64 {
        self.frames
    }

    /// Frames at or above the silence threshold.
    pub fn non_silent_frames(&self) -> u64 {
        self.non_silent
    }

    /// Index of the first non-silent frame (multiply by the frame duration for a time).
    pub fn first_sound_frame(&self) -> Option<u64> {
        self.first_sound
    }

    /// The level of a tone at exactly `frequency_hz` in the analysis window and its share of the window's energy
    /// (Goertzel over the Hann-windowed window; 8192 multiply-adds). Invalid frequencies measure nothing.
    pub fn measure_tone(&self, frequency_hz: f64) -> ToneMeasurement {
        if !valid_frequency(frequency_hz) {
            return ToneMeasurement { level_dbfs: DBFS_FLOOR, share: 0.0 };
        }
        let coeff = 2.0 * (TAU * frequency_hz / f64::from(SAMPLE_RATE)).cos();
        let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
        // The oldest sample is at `ring_pos`: chronological order is `ring[pos..]` then `ring[..pos]`.
        let (newest, oldest) = self.ring.split_at(self.ring_pos);
        for (&x, &w) in oldest.iter().chain(newest).zip(self.tables.hann.iter()) {
            let v = f64::from(x) * f64::from(w);
            total += v * v;
            let s0 = v + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
        // A sine of amplitude A gives |X| = A·Σw/2 and mean square A²/2; Σw = N/2 and Σw² = 3N/8 for Hann.
        let sum_w = ANALYSIS_WINDOW as f64 / 2.0;
        let sum_w2 = 3.0 * ANALYSIS_WINDOW as f64 / 8.0;
        let tone = 2.0 * power / (sum_w * sum_w);
        let all = total / sum_w2;
        let share = if all > 0.0 { (tone / all).min(1.0) } else { 0.0 };
        ToneMeasurement { level_dbfs: power_to_dbfs(tone), share }
    }

    /// The RMS level in dBFS of a tone at exactly `frequency_hz` in the analysis window.
    pub fn tone_level_dbfs(&self, frequency_hz: f64) -> f64 {
        self.measure_tone(frequency_hz).level_dbfs
    }

    /// Whether a tone at `frequency_hz` is in the analysis window at `min_dbfs` (RMS) or more, carrying at least
    /// [`MeterConfig::min_tone_share`] of the window's energy.
    pub fn tone_present(&self, frequency_hz: f64, min_dbfs: f64) -> bool {
        let m = self.measure_tone(frequency_hz);
        m.level_dbfs >= min_dbfs && m.share >= self.config.min_tone_share
    }

    /// Starts counting the frames in which `frequency_hz` is dominant. Returns false (and does nothing) for an
    /// invalid frequency or when [`MAX_TRACKED`] frequencies are already tracked; tracking a frequency twice
    /// keeps its counters.
    pub fn track(&mut self, frequency_hz: f64) -> bool {
        if !valid_frequency(frequency_hz) {
            return false;
        }
        if self.tracked.iter().any(|t| same_frequency(t.frequency_hz, frequency_hz)) {
            return true;
        }
        if self.tracked.len() >= MAX_TRACKED {
            return false;
        }
        self.tracked.push(TrackedStats { frequency_hz, non_silent_frames: 0, dominant_frames: 0 });
        true
    }

    /// The counters of the tracked frequency `frequency_hz`.
    pub fn tracked(&self, frequency_hz: f64) -> Option<&TrackedStats> {
        self.tracked.iter().find(|t| same_frequency(t.frequency_hz, frequency_hz))
    }

    /// The share of non-silent frames in which `frequency_hz` was dominant; `None` if it is not tracked or no
    /// non-silent frame has been seen since it was registered.
    pub fn tracked_ratio(&self, frequency_hz: f64) -> Option<f64> {
        self.tracked(frequency_hz).and_then(TrackedStats::ratio)
    }

    /// Clears the window and all history (frame counts, first sound, tracked counters), keeping the tracked
    /// frequencies and the configuration.
    pub fn reset(&mut self) {
        self.dominant = None;
        self.ring.fill(0);
        self.ring_pos = 0;
        self.ring_energy = 0;
        self.last = None;
        self.frames = 0;
        self.non_silent = 0;
        self.first_sound = None;
        for t in &mut self.tracked {
            t.non_silent_frames = 0;
            t.dominant_frames = 0;
        }
        self.publish();
    }
}

/// Bin `k` (1 ≤ k < N/2) of the real N-point DFT, from the N/2-point complex DFT `z` of the even/odd packing.
fn real_bin(z: &[Complex<f32>], twiddles: &[Complex<f32>], k: usize) -> Complex<f32> {
    let a = z[k];
    let b = z[HALF - k].conj();
    let even = (a + b) * 0.5;
    let odd = (a - b) * Complex::new(0.0, -0.5);
    even + twiddles[k] * odd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_window_energy_stays_exact() {
        // Frames of every awkward length (wrapping the ring, longer than the window, empty),
        // full-scale values included: the running sum must equal a fresh sum every time.
        let mut meter = Meter::new();
        let mut x: u32 = 99;
        for (n, len) in [960usize, 480, 1, 0, 8191, 8192, 9000, 7, 960, 4096, 960].iter().cycle().take(60).enumerate() {
            let frame: Vec<i16> = (0..*len)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    if n % 5 == 0 { i16::MIN } else { (x >> 16) as i16 }
                })
                .collect();
            meter.process(&frame);
            assert_eq!(meter.ring_energy, energy(&meter.ring), "after frame {n} of {len} samples");
        }
    }
    use crate::media::io::source::{AudioSource, Silence, Tone};

    /// Feeds `frames` 20 ms frames of `source` to `meter`.
    fn feed(meter: &mut Meter, source: &mut impl AudioSource, frames: usize) {
        let mut frame = [0i16; 960];
        for _ in 0..frames {
            source.read(&mut frame);
            meter.process(&frame);
        }
    }

    /// Two tones mixed.
    struct Mix(Tone, Tone);
    impl AudioSource for Mix {
        fn read(&mut self, out: &mut [i16]) -> bool {
            let mut b = [0i16; 960];
            self.0.read(out);
            self.1.read(&mut b[..out.len()]);
            for (o, x) in out.iter_mut().zip(b) {
                *o = o.saturating_add(x);
            }
            true
        }
    }

    #[test]
    fn real_fft_split_matches_a_direct_dft() {
        let mut m = Meter::new();
        let mut src = Mix(Tone::new(700.0, -6.0), Tone::new(5300.0, -12.0));
        feed(&mut m, &mut src, 10);
        let spectrum = m.with_spectrum(<[Complex<f32>]>::to_vec);
        let (newest, oldest) = m.ring.split_at(m.ring_pos);
        let x: Vec<f64> =
            oldest.iter().chain(newest).zip(m.tables.hann.iter()).map(|(&s, &w)| f64::from(s) * f64::from(w)).collect();
        for k in [1usize, 17, 119, 120, 905, 2048, 4095] {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, v) in x.iter().enumerate() {
                let a = -TAU * (k * n % ANALYSIS_WINDOW) as f64 / ANALYSIS_WINDOW as f64;
                re += v * a.cos();
                im += v * a.sin();
            }
            let got = real_bin(&spectrum, &m.tables.twiddles, k);
            let scale = (re * re + im * im).sqrt().max(1e3);
            assert!((f64::from(got.re) - re).abs() / scale < 1e-3, "bin {k}: {got} vs {re}+{im}i");
            assert!((f64::from(got.im) - im).abs() / scale < 1e-3, "bin {k}: {got} vs {re}+{im}i");
        }
    }

    #[test]
    fn dominant_frequency_is_within_5_hz() {
        for freq in [200.0, 300.0, 440.0, 880.0, 1000.0, 1234.5, 3000.0, 3999.0] {
            let mut m = Meter::new();
            feed(&mut m, &mut Tone::new(freq, -10.0), 15);
            let d = m.dominant_hz().unwrap_or(0.0);
            assert!((d - freq).abs() <= 5.0, "{freq} Hz measured {d}");
            // In practice the interpolation is far better than the requirement.
            assert!((d - freq).abs() <= 0.05, "{freq} Hz measured {d}");
        }
    }

    #[test]
    fn dominant_frequency_is_close_from_the_first_frames() {
        // With the window still mostly zeros the estimate is rougher but stays within the tolerance.
        let mut m = Meter::new();
        let mut tone = Tone::new(1000.0, -10.0);
        let mut frame = [0i16; 960];
        for i in 0..12 {
            tone.read(&mut frame);
            let a = m.process(&frame);
            let d = a.dominant_hz.unwrap_or(0.0);
            assert!((d - 1000.0).abs() <= 5.0, "frame {i}: {d}");
        }
    }

    #[test]
    fn level_and_peak() {
        let mut m = Meter::new();
        feed(&mut m, &mut Tone::new(1000.0, 0.0), 3);
        assert!((m.level_dbfs() + 3.01).abs() < 0.02, "{}", m.level_dbfs());
        assert!(m.peak() >= 32760, "{}", m.peak());
        feed(&mut m, &mut Tone::new(1000.0, -20.0), 3);
        assert!((m.level_dbfs() + 23.01).abs() < 0.02, "{}", m.level_dbfs());
        let last = m.last().unwrap_or_else(|| unreachable!());
        assert!((last.peak_dbfs() + 20.0).abs() < 0.01, "{}", last.peak_dbfs());
        m.process(&[i16::MIN; 960]);
        assert_eq!(m.peak(), 32768);
        assert!(m.level_dbfs().abs() < 1e-9);
    }

    #[test]
    fn tells_440_from_880_at_different_levels() {
        // 440 Hz at −6 dBFS peak (−9 dBFS RMS) with 880 Hz at −20 dBFS peak (−23 dBFS RMS).
        let mut m = Meter::new();
        feed(&mut m, &mut Mix(Tone::new(440.0, -6.0), Tone::new(880.0, -20.0)), 15);
        let d = m.dominant_hz().unwrap_or(0.0);
        assert!((d - 440.0).abs() < 1.0, "dominant {d}");
        assert!((m.tone_level_dbfs(440.0) + 9.03).abs() < 0.2, "{}", m.tone_level_dbfs(440.0));
        assert!((m.tone_level_dbfs(880.0) + 23.03).abs() < 0.2, "{}", m.tone_level_dbfs(880.0));
        assert!(m.tone_present(440.0, -12.0));
        assert!(!m.tone_present(880.0, -12.0), "880 Hz is 14 dB weaker than 440 Hz");
        assert!(m.tone_present(880.0, -26.0), "but it is there");
        for absent in [220.0, 660.0, 1320.0, 1000.0] {
            assert!(!m.tone_present(absent, -80.0), "{absent} Hz");
            assert!(m.tone_level_dbfs(absent) < -90.0, "{absent} Hz at {}", m.tone_level_dbfs(absent));
        }

        // And the other way round.
        let mut m = Meter::new();
        feed(&mut m, &mut Mix(Tone::new(440.0, -20.0), Tone::new(880.0, -6.0)), 15);
        let d = m.dominant_hz().unwrap_or(0.0);
        assert!((d - 880.0).abs() < 1.0, "dominant {d}");
        assert!(m.tone_present(880.0, -12.0));
        assert!(!m.tone_present(440.0, -12.0));
        assert!(m.tone_present(440.0, -26.0));
    }

    #[test]
    fn tone_share_rejects_broadband_noise() {
        // White-ish noise at about −15 dBFS RMS: loud, but no single tone carries 1 % of it.
        let mut m = Meter::new();
        let mut state = 0x1234_5678u32;
        let mut frame = [0i16; 960];
        for _ in 0..15 {
            for s in &mut frame {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *s = ((state >> 16) as i16) / 4;
            }
            m.process(&frame);
        }
        assert!(m.level_dbfs() > -20.0);
        for f in [440.0, 880.0, 1000.0, 2500.0] {
            assert!(!m.tone_present(f, -60.0), "{f} Hz in noise: {:?}", m.measure_tone(f));
        }
    }

    #[test]
    fn silence_reports_no_tone() {
        let mut m = Meter::new();
        m.track(440.0);
        feed(&mut m, &mut Silence, 20);
        assert_eq!(m.dominant_hz(), None);
        assert_eq!(m.level_dbfs(), DBFS_FLOOR);
        assert_eq!(m.peak(), 0);
        assert!(!m.tone_present(440.0, -150.0));
        assert_eq!(m.first_sound_frame(), None);
        assert_eq!(m.non_silent_frames(), 0);
        assert_eq!(m.frames_analysed(), 20);
        assert_eq!(m.tracked_ratio(440.0), None);
        assert_eq!(m.window_level_dbfs(), DBFS_FLOOR);
    }

    #[test]
    fn history_and_tracking() {
        let mut m = Meter::new();
        assert!(m.track(440.0));
        assert!(m.track(880.0));
        assert!(m.track(440.0), "tracking twice is fine");
        assert!(!m.track(f64::NAN));
        assert!(!m.track(30_000.0));
        feed(&mut m, &mut Silence, 7);
        feed(&mut m, &mut Tone::new(440.0, -10.0), 50);
        feed(&mut m, &mut Tone::new(880.0, -10.0), 50);
        feed(&mut m, &mut Silence, 10);
        assert_eq!(m.first_sound_frame(), Some(7));
        assert_eq!(m.frames_analysed(), 117);
        // The first frame of a tone starts at phase 0 and is still well above −60 dBFS.
        assert_eq!(m.non_silent_frames(), 100);
        let r440 = m.tracked_ratio(440.0).unwrap_or(0.0);
        let r880 = m.tracked_ratio(880.0).unwrap_or(0.0);
        // The 170 ms window lags a switch by about half its length (4 frames).
        assert!((0.48..=0.58).contains(&r440), "440: {r440}");
        assert!((0.42..=0.52).contains(&r880), "880: {r880}");
        assert_eq!(m.tracked_ratio(1000.0), None);
        let t = m.tracked(440.0).copied().unwrap_or_else(|| unreachable!());
        assert_eq!(t.non_silent_frames, 100);

        m.reset();
        assert_eq!(m.frames_analysed(), 0);
        assert_eq!(m.first_sound_frame(), None);
        assert_eq!(m.tracked_ratio(440.0), None);
        assert_eq!(m.window_level_dbfs(), DBFS_FLOOR);
    }

    #[test]
    fn tracking_is_bounded() {
        let mut m = Meter::new();
        for i in 0..MAX_TRACKED {
            assert!(m.track(100.0 + i as f64));
        }
        assert!(!m.track(5000.0));
    }

    #[test]
    fn ten_ms_frames_work() {
        let mut m = Meter::new();
        let mut tone = Tone::new(3000.0, -10.0);
        let mut frame = [0i16; 480];
        for _ in 0..30 {
            tone.read(&mut frame);
            m.process(&frame);
        }
        let d = m.dominant_hz().unwrap_or(0.0);
        assert!((d - 3000.0).abs() < 1.0, "{d}");
        // Frames longer than the window keep its tail only.
        m.process(&vec![0i16; ANALYSIS_WINDOW + 100]);
        assert_eq!(m.dominant_hz(), None);
        m.process(&[]);
        assert_eq!(m.frames_analysed(), 32);
    }

    #[test]
    fn handle_reads_from_another_thread() {
        let mut m = Meter::new();
        let handle = m.handle();
        assert_eq!(handle.last(), None);
        assert_eq!(handle.level_dbfs(), DBFS_FLOOR);
        handle.track(1000.0);
        let reader = {
            let handle = handle.clone();
            std::thread::spawn(move || {
                // Hammer the lock while the audio side runs: it must never wait for us.
                let mut seen = 0;
                while handle.frames_analysed() < 100 {
                    seen += usize::from(handle.snapshot().last.is_some());
                    std::thread::yield_now();
                }
                seen
            })
        };
        let mut tone = Tone::new(1000.0, -10.0);
        let mut frame = [0i16; 960];
        let mut processed = 0;
        // Publication may be skipped while the reader holds the lock: keep going until it lands.
        while handle.frames_analysed() < 100 {
            tone.read(&mut frame);
            m.process(&frame);
            processed += 1;
            assert!(processed < 1_000_000, "publication never lands");
        }
        assert!(reader.join().is_ok());
        let snap = handle.snapshot();
        assert_eq!(snap.frames_analysed, m.frames_analysed());
        assert_eq!(snap.first_sound_frame, Some(0));
        let d = handle.dominant_hz().unwrap_or(0.0);
        assert!((d - 1000.0).abs() < 1.0, "{d}");
        assert!((handle.level_dbfs() + 13.01).abs() < 0.05);
        assert!(handle.peak() > 10_000);
        let ratio = handle.tracked_ratio(1000.0).unwrap_or(0.0);
        assert!(ratio > 0.95, "{ratio}");
        assert_eq!(m.tracked_ratio(1000.0), handle.tracked_ratio(1000.0));
    }
}
