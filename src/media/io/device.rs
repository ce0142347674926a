//! Sound-card audio through [cpal](https://docs.rs/cpal): a microphone as an [`AudioSource`] ([`DeviceSource`]),
//! a speaker or headset as an [`AudioSink`] ([`DeviceSink`]), and [`list_devices`] for a CLI to show.
//!
//! This module is behind the `device` cargo feature (off by default). On Linux cpal talks to ALSA through
//! `alsa-sys`, which finds `libasound` with pkg-config at build time: building with the feature needs the ALSA
//! development files (Debian's `libasound2-dev`, installed by `scripts/install-deps.sh`); running needs only
//! the `libasound2` library and a device (PulseAudio and PipeWire are reached through ALSA's default device).
//!
//! # What it owns
//!
//! Each [`DeviceSource`] or [`DeviceSink`] owns one cpal stream, opened in the device's preferred configuration
//! (whatever sample format, rate and channel count its default config has), and three pieces around it:
//!
//! - **The device callback** (cpal's audio thread, which must never block or allocate): for capture it
//!   downmixes the interleaved samples to mono, converts them to `i16` and pushes them into a lock-free SPSC ring
//!   (an [`app_channel`](super::app_channel) writer/source pair, at the device rate); for playback it pulls mono
//!   `i16` from the ring, converts and copies it to every channel, and fills silence when the ring runs dry.
//!   The buffers it uses are allocated when the stream is opened.
//! - **The pipeline side** (the [`AudioSource::read`] / [`AudioSink::write`] the call's frame clock drives):
//!   the [`Resampler`] between the device rate and 48 kHz lives here, never in the callback. Reads and writes
//!   never block either, and allocate nothing.
//! - **A stream thread**: `cpal::Stream` is not `Send` on every platform, so the stream is built, started,
//!   parked with and dropped on a dedicated std thread that does nothing else; dropping the source or sink sets
//!   its stop flag, wakes it and joins it. That keeps [`DeviceSource`] and [`DeviceSink`] `Send`, as the
//!   source and sink traits require.
//!
//! # Timing
//!
//! The device's clock and the pipeline's frame clock are independent. The ring absorbs the difference: the
//! consumer waits until a priming level (one 20 ms frame plus the largest device callback seen, at most half the
//! 500 ms ring) is buffered before it starts, pads with silence and starts priming again when the ring runs dry (an *underrun*), and
//! drops audio when more than 100 ms above the priming level has piled up (clock drift), so the added latency
//! stays bounded. Every such event is counted in [`DeviceStats`]; errors that cpal reports on the stream are
//! logged through `tracing` and counted, never a panic.
//!
//! # Errors
//!
//! Opening fails with a [`DeviceError`]: no such device, an unsupported configuration (DSD formats, a rate the
//! [`Resampler`] cannot convert), or the stream could not be built or started. [`AudioSetup`](crate::media::setup::AudioSetup) turns it
//! into the call's media failure (`media device failed: ...`), which ends the call's media cleanly.
//!
//! # What is tested here, and what is not
//!
//! The unit tests cover everything that does not need hardware: the sample conversions for every cpal sample
//! format supported, downmixing and upmixing, both callback-side ring handlers fed with synthetic buffers, the
//! pipeline-side resampling (a tone captured at 44.1 kHz comes out at 48 kHz at the same frequency, and back),
//! the priming, underrun and latency-trimming rules, and the stream thread's lifecycle with a stand-in stream.
//! The machines this project is built and tested on have no sound card, so a real microphone or speaker, the
//! callbacks' real timing against the pipeline's clock (priming, drift trimming and underruns under real
//! scheduling), latency, and backends other than ALSA are *not* exercised. What the tests do reach of cpal:
//! listing devices, opening a device that is not there (an error, not a panic), and ALSA's `null` device, which
//! exists without a sound card and runs the real open/build/start/callback/stop path (unclocked: it calls back
//! as fast as it can, so it says nothing about timing). `default_devices_run_for_a_second` is an ignored test
//! for a machine with a sound card.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{I24, SampleFormat, SizedSample, U24};

use crate::media::dsp::resample::Resampler;
use crate::media::frame::{MAX_FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::io::app_channel::{
    AppSink, AppSinkReader, AppSource, AppSourceWriter, app_sink_channel_with_capacity,
    app_source_channel_with_capacity,
};
use crate::media::io::sink::AudioSink;
use crate::media::io::source::AudioSource;

/// Capacity of each ring, in milliseconds of mono audio at the device rate.
const RING_MS: usize = 500;

/// The base priming level, in milliseconds (the largest device callback seen is added to it).
const PRIME_MS: usize = 20;

/// How far above the priming level the ring may fill before audio is dropped to bound latency, in ms.
const HEADROOM_MS: usize = 100;

/// Frames the callback-side handlers convert per chunk (their scratch buffers' size).
const CALLBACK_CHUNK: usize = 1024;

/// How long opening a device may take before it is given up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Samples in `ms` milliseconds at `rate_hz`.
fn ms_at(rate_hz: u32, ms: usize) -> usize {
    rate_hz as usize * ms / 1000
}

/// The capacity of a ring at `rate_hz`, in samples.
fn ring_capacity(rate_hz: u32) -> usize {
    ms_at(rate_hz, RING_MS).max(MAX_FRAME_SAMPLES)
}

/// The priming level at `rate_hz` with device callbacks of up to `callback_frames` frames: one 20 ms frame
/// plus one callback, but at most half the ring (or a device with huge callbacks would never start).
fn prime_level(rate_hz: u32, callback_frames: usize) -> usize {
    (ms_at(rate_hz, PRIME_MS) + callback_frames).min(ring_capacity(rate_hz) / 2)
}

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceDirection {
    /// Capture (a microphone).
    Input,
    /// Playback (a speaker or headset).
    Output,
}

impl fmt::Display for DeviceDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceDirection::Input => "input",
            DeviceDirection::Output => "output",
        })
    }
}

/// Why a device could not be listed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// There is no default device for this direction, or none with that name.
    #[error("no {direction} audio device{}", name.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoDevice {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The name asked for (`None`: the default device).
        name: Option<String>,
    },
    /// The device's configuration cannot be used (an unknown or DSD sample format, no channels, a rate the
    /// resampler cannot convert), or the device could not report one.
    #[error("{direction} audio device {device:?}: unsupported configuration: {reason}")]
    UnsupportedConfig {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The device's name.
        device: String,
        /// What is wrong.
        reason: String,
    },
    /// The device exists but cannot be used now (disconnected, busy, access denied, no sound card behind it).
    #[error("{direction} audio device {device:?} is not available: {reason}")]
    Unavailable {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The device's name.
        device: String,
        /// cpal's error.
        reason: String,
    },
    /// cpal could not build the stream.
    #[error("{direction} audio device {device:?}: could not open the stream: {reason}")]
    BuildStream {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The device's name.
        device: String,
        /// cpal's error.
        reason: String,
    },
    /// The stream was built but could not be started.
    #[error("{direction} audio device {device:?}: could not start the stream: {reason}")]
    PlayStream {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The device's name.
        device: String,
        /// cpal's error.
        reason: String,
    },
    /// The audio host could not list its devices.
    #[error("could not list audio devices: {0}")]
    Enumerate(String),
    /// The stream thread could not be started, died while opening the device, or opening took too long.
    #[error("audio device thread: {0}")]
    Thread(String),
}

/// A device, as [`list_devices`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// The human-readable name; pass it to [`DeviceSource::open`] / [`DeviceSink::open`] (or as
    /// `SendAudio::Device` / `ReceiveAudio::Device`).
    pub name: String,
    /// The backend's identifier (for ALSA the PCM name, such as `hw:CARD=PCH,DEV=0`); also accepted as a name,
    /// and unique where names may repeat.
    pub id: String,
    /// Whether it can capture.
    pub is_input: bool,
    /// Whether it can play.
    pub is_output: bool,
    /// The sample rate of its preferred configuration (output if it plays, else input), if it reports one.
    pub default_rate: Option<u32>,
}

/// The configuration a device stream was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFormat {
    /// The device's name.
    pub device: String,
    /// The device's sample rate in Hz (converted to and from 48 kHz on the pipeline side).
    pub sample_rate: u32,
    /// Its channel count (downmixed to mono on capture, mono copied to each on playback).
    pub channels: u16,
    /// Its sample format, as cpal names it (`i16`, `f32`, ...).
    pub sample_format: String,
}

/// Counters of a [`DeviceSource`] or [`DeviceSink`], cumulative since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// Frames the pipeline read (source) or wrote (sink).
    pub frames: u64,
    /// Data callbacks cpal made.
    pub callbacks: u64,
    /// The most frames one callback carried.
    pub max_callback_frames: u64,
    /// Times the ring ran dry while audio was flowing (capture: a pipeline frame could not be filled; playback:
    /// a device callback could not be); each is padded with silence and followed by priming again.
    pub underruns: u64,
    /// Mono samples of silence inserted, including while priming (48 kHz for a source, the device rate for a
    /// sink).
    pub silence_samples: u64,
    /// Mono samples lost because the ring was full, at the device rate.
    pub overflow_samples: u64,
    /// Mono samples dropped to keep the latency bounded when the two clocks drift apart, at the device rate.
    pub trimmed_samples: u64,
    /// Errors cpal reported on the stream (other than xruns), each also logged.
    pub stream_errors: u64,
    /// Buffer overruns or underruns the backend reported.
    pub xruns: u64,
}

/// Lists the default host's devices.
///
/// # Errors
/// [`DeviceError::Enumerate`] when the host cannot list them (no audio system at all).
pub fn list_devices() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal::default_host();
    let devices = host.devices().map_err(|e| DeviceError::Enumerate(e.to_string()))?;
    Ok(devices
        .map(|d| {
            let is_input = d.supports_input();
            let is_output = d.supports_output();
            let default = if is_output { d.default_output_config() } else { d.default_input_config() };
            DeviceInfo {
                name: device_name(&d),
                id: d.id().map(|id| id.id().to_owned()).unwrap_or_default(),
                is_input,
                is_output,
                default_rate: default.ok().map(|c| c.sample_rate()),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------------------------
// Sample conversion and channel mixing (pure)
// ---------------------------------------------------------------------------------------------------------------

/// A sample type a device may use, converted to and from the pipeline's `i16`.
///
/// Integer formats are rescaled by shifting (rounded to nearest on the way to `i16`; exact for every `i16` on
/// the way back for formats of 16 bits or more), unsigned formats are offset by their midpoint, floats are
/// scaled by 32768 with clamping (NaN is silence).
trait DeviceSample: Copy {
    /// To the pipeline's 16-bit range.
    fn to_i16(self) -> i16;
    /// From the pipeline's 16-bit range.
    fn from_i16(s: i16) -> Self;
}

/// `x / 2^k` rounded to nearest (halves up), without overflow.
fn shr_round(x: i64, k: u32) -> i64 {
    ((x >> (k - 1)) + 1) >> 1
}

/// Clamps to the `i16` range.
fn sat16(x: i64) -> i16 {
    x.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

impl DeviceSample for i16 {
    fn to_i16(self) -> i16 {
        self
    }
    fn from_i16(s: i16) -> Self {
        s
    }
}

impl DeviceSample for i8 {
    fn to_i16(self) -> i16 {
        i16::from(self) << 8
    }
    fn from_i16(s: i16) -> Self {
        shr_round(i64::from(s), 8).clamp(i64::from(i8::MIN), i64::from(i8::MAX)) as i8
    }
}

impl DeviceSample for I24 {
    fn to_i16(self) -> i16 {
        sat16(shr_round(i64::from(self.inner()), 8))
    }
    fn from_i16(s: i16) -> Self {
        I24::new_unchecked(i32::from(s) << 8)
    }
}

impl DeviceSample for i32 {
    fn to_i16(self) -> i16 {
        sat16(shr_round(i64::from(self), 16))
    }
    fn from_i16(s: i16) -> Self {
        i32::from(s) << 16
    }
}

impl DeviceSample for i64 {
    fn to_i16(self) -> i16 {
        sat16(shr_round(self, 48))
    }
    fn from_i16(s: i16) -> Self {
        i64::from(s) << 48
    }
}

impl DeviceSample for u8 {
    fn to_i16(self) -> i16 {
        (i16::from(self) - 128) << 8
    }
    fn from_i16(s: i16) -> Self {
        (shr_round(i64::from(s), 8).clamp(-128, 127) + 128) as u8
    }
}

impl DeviceSample for u16 {
    fn to_i16(self) -> i16 {
        (self ^ 0x8000) as i16
    }
    fn from_i16(s: i16) -> Self {
        (s as u16) ^ 0x8000
    }
}

impl DeviceSample for U24 {
    fn to_i16(self) -> i16 {
        sat16(shr_round(i64::from(self.inner()) - (1 << 23), 8))
    }
    fn from_i16(s: i16) -> Self {
        U24::new_unchecked((i32::from(s) << 8) + (1 << 23))
    }
}

impl DeviceSample for u32 {
    fn to_i16(self) -> i16 {
        sat16(shr_round(i64::from(self) - (1 << 31), 16))
    }
    fn from_i16(s: i16) -> Self {
        ((i32::from(s) << 16) as u32) ^ 0x8000_0000
    }
}

impl DeviceSample for u64 {
    fn to_i16(self) -> i16 {
        sat16(shr_round((self ^ (1 << 63)) as i64, 48))
    }
    fn from_i16(s: i16) -> Self {
        ((i64::from(s) << 48) as u64) ^ (1 << 63)
    }
}

impl DeviceSample for f32 {
    fn to_i16(self) -> i16 {
        // `as` saturates, and maps NaN to 0.
        (self * 32768.0).round() as i16
    }
    fn from_i16(s: i16) -> Self {
        f32::from(s) / 32768.0
    }
}

impl DeviceSample for f64 {
    fn to_i16(self) -> i16 {
        (self * 32768.0).round() as i16
    }
    fn from_i16(s: i16) -> Self {
        f64::from(s) / 32768.0
    }
}

/// Converts interleaved frames of `channels` channels to mono `i16` (the mean of the channels, rounded), as many
/// whole frames as both slices hold; a trailing partial frame is ignored. Returns the frames written.
fn downmix<T: DeviceSample>(interleaved: &[T], channels: usize, out: &mut [i16]) -> usize {
    let channels = channels.max(1);
    if channels == 1 {
        let n = interleaved.len().min(out.len());
        for (o, &s) in out.iter_mut().zip(&interleaved[..n]) {
            *o = s.to_i16();
        }
        return n;
    }
    let ch = channels as i32;
    let mut n = 0;
    for (o, frame) in out.iter_mut().zip(interleaved.chunks_exact(channels)) {
        let sum: i32 = frame.iter().map(|s| i32::from(s.to_i16())).sum();
        // Rounded to nearest, halves up; the mean of i16 values is an i16.
        *o = (2 * sum + ch).div_euclid(2 * ch) as i16;
        n += 1;
    }
    n
}

/// Writes each mono sample to every channel of one interleaved frame of `out`, as many whole frames as both
/// slices hold. Returns the frames written.
fn upmix<T: DeviceSample>(mono: &[i16], channels: usize, out: &mut [T]) -> usize {
    let channels = channels.max(1);
    let mut n = 0;
    for (frame, &s) in out.chunks_exact_mut(channels).zip(mono) {
        frame.fill(T::from_i16(s));
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------------------------
// Ring handlers: callback side and pipeline side (pure, no cpal)
// ---------------------------------------------------------------------------------------------------------------

/// Counters shared by the callback, the pipeline side and the error callback.
#[derive(Debug, Default)]
struct Counters {
    frames: AtomicU64,
    callbacks: AtomicU64,
    max_callback_frames: AtomicU64,
    underruns: AtomicU64,
    silence_samples: AtomicU64,
    trimmed_samples: AtomicU64,
    stream_errors: AtomicU64,
    xruns: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn max_callback_frames(&self) -> usize {
        usize::try_from(self.max_callback_frames.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// Counts a callback of `frames` frames.
    fn callback(&self, frames: usize) {
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        self.max_callback_frames.fetch_max(frames as u64, Ordering::Relaxed);
    }

    fn snapshot(&self, overflow_samples: u64) -> DeviceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeviceStats {
            frames: get(&self.frames),
            callbacks: get(&self.callbacks),
            max_callback_frames: get(&self.max_callback_frames),
            underruns: get(&self.underruns),
            silence_samples: get(&self.silence_samples),
            overflow_samples,
            trimmed_samples: get(&self.trimmed_samples),
            stream_errors: get(&self.stream_errors),
            xruns: get(&self.xruns),
        }
    }
}

/// The capture callback's work: interleaved device samples in, mono `i16` at the device rate into the ring.
/// Never blocks or allocates (the scratch buffer is allocated here, up front).
struct CaptureFeeder {
    writer: AppSourceWriter,
    channels: usize,
    scratch: Box<[i16]>,
    counters: Arc<Counters>,
}

impl CaptureFeeder {
    fn new(writer: AppSourceWriter, channels: usize, counters: Arc<Counters>) -> Self {
        CaptureFeeder { writer, channels: channels.max(1), scratch: vec![0; CALLBACK_CHUNK].into(), counters }
    }

    /// Handles one callback's buffer. When the ring is full the newest samples are dropped and counted.
    fn push<T: DeviceSample>(&mut self, data: &[T]) {
        let frames = data.len() / self.channels;
        self.counters.callback(frames);
        let whole = &data[..frames * self.channels];
        for chunk in whole.chunks(self.scratch.len() * self.channels) {
            let n = downmix(chunk, self.channels, &mut self.scratch);
            self.writer.push(&self.scratch[..n]);
        }
    }
}

/// The pipeline side of capture: reads one 48 kHz frame at a time from the device-rate ring.
struct CaptureReader {
    source: AppSource,
    rate: u32,
    /// `None` when the device runs at 48 kHz.
    resampler: Option<Resampler>,
    /// Device-rate samples taken from the ring.
    input: Box<[i16]>,
    /// Resampled audio not yet handed out: `resampled[start..end]`.
    resampled: Box<[i16]>,
    start: usize,
    end: usize,
    primed: bool,
    counters: Arc<Counters>,
}

impl CaptureReader {
    /// A reader of `source`, whose samples are at `rate` Hz.
    ///
    /// # Errors
    /// When the [`Resampler`] cannot convert `rate` to 48 kHz.
    fn new(source: AppSource, rate: u32, counters: Arc<Counters>) -> Result<Self, String> {
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(Resampler::new(rate, SAMPLE_RATE).map_err(|e| e.to_string())?)
        };
        // Enough input for one full frame (plus slack for the resampler's phase); longer frames loop.
        let input_len = (MAX_FRAME_SAMPLES * rate as usize).div_ceil(SAMPLE_RATE as usize) + 8;
        let resampled_len = resampler.as_ref().map_or(0, |r| r.max_output_len(input_len));
        Ok(CaptureReader {
            source,
            rate,
            resampler,
            input: vec![0; input_len].into(),
            resampled: vec![0; resampled_len].into(),
            start: 0,
            end: 0,
            primed: false,
            counters,
        })
    }

    /// Copies what is left of the last resampled block into `out`; returns how much.
    fn take_resampled(&mut self, out: &mut [i16]) -> usize {
        let n = (self.end - self.start).min(out.len());
        out[..n].copy_from_slice(&self.resampled[self.start..self.start + n]);
        self.start += n;
        n
    }

    /// Moves exactly `n` samples (at most what is buffered) from the ring into `self.input`.
    fn pop_input(&mut self, n: usize) {
        // Only this side consumes, so at least `buffered()` samples are there and `read` pads nothing.
        let _ = self.source.read(&mut self.input[..n]);
    }

    /// Fills `out` (48 kHz mono), padding with silence what the ring cannot supply.
    fn read(&mut self, out: &mut [i16]) {
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        let prime = prime_level(self.rate, self.counters.max_callback_frames());
        // Bound the latency: if the device has run ahead by more than the headroom, drop back to the priming
        // level.
        let buffered = self.source.buffered();
        if buffered > prime + ms_at(self.rate, HEADROOM_MS) {
            let mut excess = buffered - prime;
            Counters::add(&self.counters.trimmed_samples, excess);
            while excess > 0 {
                let n = excess.min(self.input.len());
                self.pop_input(n);
                excess -= n;
            }
        }
        let mut filled = self.take_resampled(out);
        while filled < out.len() {
            let available = self.source.buffered();
            if !self.primed {
                if available < prime.max(1) {
                    break;
                }
                self.primed = true;
            }
            if available == 0 {
                self.primed = false;
                self.counters.underruns.fetch_add(1, Ordering::Relaxed);
                break;
            }
            let need = out.len() - filled;
            if self.resampler.is_none() {
                let n = need.min(available).min(self.input.len());
                self.pop_input(n);
                out[filled..filled + n].copy_from_slice(&self.input[..n]);
                filled += n;
            } else {
                // Enough input for `need` outputs (the resampler may give one more, kept for the next frame).
                let want = (need * self.rate as usize).div_ceil(SAMPLE_RATE as usize) + 1;
                let n = want.min(available).min(self.input.len());
                self.pop_input(n);
                self.end = self
                    .resampler
                    .as_mut()
                    .map_or(0, |r| r.process(&self.input[..n], &mut self.resampled).unwrap_or(0));
                self.start = 0;
                filled += self.take_resampled(&mut out[filled..]);
            }
        }
        if filled < out.len() {
            out[filled..].fill(0);
            Counters::add(&self.counters.silence_samples, out.len() - filled);
        }
    }

    fn stats(&self) -> DeviceStats {
        self.counters.snapshot(self.source.stats().dropped_samples)
    }
}

/// The pipeline side of playback: 48 kHz frames in, resampled to the device rate into the ring.
struct PlaybackWriter {
    sink: AppSink,
    rate: u32,
    /// `None` when the device runs at 48 kHz.
    resampler: Option<Resampler>,
    scratch: Box<[i16]>,
    counters: Arc<Counters>,
}

impl PlaybackWriter {
    /// A writer into `sink`, whose reader plays at `rate` Hz.
    ///
    /// # Errors
    /// When the [`Resampler`] cannot convert 48 kHz to `rate`.
    fn new(sink: AppSink, rate: u32, counters: Arc<Counters>) -> Result<Self, String> {
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(Resampler::new(SAMPLE_RATE, rate).map_err(|e| e.to_string())?)
        };
        let scratch_len = resampler.as_ref().map_or(0, |r| r.max_output_len(MAX_FRAME_SAMPLES));
        Ok(PlaybackWriter { sink, rate, resampler, scratch: vec![0; scratch_len].into(), counters })
    }

    /// Device-rate samples in the ring, as far as the counters tell.
    fn buffered(&self) -> usize {
        let s = self.sink.stats();
        let n = s.written_samples.saturating_sub(s.dropped_samples).saturating_sub(s.read_samples);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    fn write(&mut self, frame: &[i16]) {
        self.counters.frames.fetch_add(1, Ordering::Relaxed);
        let limit = prime_level(self.rate, self.counters.max_callback_frames()) + ms_at(self.rate, HEADROOM_MS);
        for chunk in frame.chunks(MAX_FRAME_SAMPLES) {
            // Resample even what is then dropped, so the filter history stays continuous.
            let converted: &[i16] = match self.resampler.as_mut() {
                None => chunk,
                Some(r) => {
                    let n = r.process(chunk, &mut self.scratch).unwrap_or(0);
                    &self.scratch[..n]
                }
            };
            if self.buffered() > limit {
                Counters::add(&self.counters.trimmed_samples, converted.len());
            } else {
                self.sink.write(converted);
            }
        }
    }

    fn stats(&self) -> DeviceStats {
        self.counters.snapshot(self.sink.stats().dropped_samples)
    }
}

/// The playback callback's work: mono `i16` from the ring out to every channel in the device's format, silence
/// while priming and on underrun. Never blocks or allocates.
struct PlaybackFeeder {
    reader: AppSinkReader,
    rate: u32,
    channels: usize,
    scratch: Box<[i16]>,
    primed: bool,
    counters: Arc<Counters>,
}

impl PlaybackFeeder {
    fn new(reader: AppSinkReader, rate: u32, channels: usize, counters: Arc<Counters>) -> Self {
        PlaybackFeeder {
            reader,
            rate,
            channels: channels.max(1),
            scratch: vec![0; CALLBACK_CHUNK].into(),
            primed: false,
            counters,
        }
    }

    /// Fills one callback's buffer.
    fn fill<T: DeviceSample>(&mut self, out: &mut [T]) {
        let frames = out.len() / self.channels;
        self.counters.callback(frames);
        let mut done = 0;
        if !self.primed && self.reader.available() >= prime_level(self.rate, frames) {
            self.primed = true;
        }
        if self.primed {
            while done < frames {
                let want = (frames - done).min(self.scratch.len());
                let n = self.reader.read(&mut self.scratch[..want]);
                let at = done * self.channels;
                upmix(&self.scratch[..n], self.channels, &mut out[at..at + n * self.channels]);
                done += n;
                if n < want {
                    self.primed = false;
                    self.counters.underruns.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if done < frames {
            Counters::add(&self.counters.silence_samples, frames - done);
        }
        out[done * self.channels..].fill(T::from_i16(0));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The stream thread
// ---------------------------------------------------------------------------------------------------------------

/// A thread that builds a stream (or anything else that must live and die on one thread), keeps it until told
/// to stop, and drops it there. Dropping the handle stops and joins the thread.
#[derive(Debug)]
struct StreamThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StreamThread {
    /// Runs `open` on a new thread; on success the thread keeps the stream `S` (which need not be `Send`) parked
    /// until the handle is dropped, and `P` is handed back to the caller.
    fn spawn<S, P, F>(label: &str, timeout: Duration, open: F) -> Result<(StreamThread, P), DeviceError>
    where
        S: 'static,
        P: Send + 'static,
        F: FnOnce() -> Result<(S, P), DeviceError> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = thread::Builder::new()
            .name(format!("webphone-{label}"))
            .spawn(move || {
                let (stream, payload) = match open() {
                    Ok(opened) => opened,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if tx.send(Ok(payload)).is_err() {
                    // The opener gave up waiting: close the stream again.
                    return;
                }
                while !thread_stop.load(Ordering::Acquire) {
                    thread::park();
                }
                drop(stream);
            })
            .map_err(|e| DeviceError::Thread(format!("could not start: {e}")))?;
        let mut me = StreamThread { stop, handle: Some(handle) };
        match rx.recv_timeout(timeout) {
            Ok(Ok(payload)) => Ok((me, payload)),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Do not wait for a backend that hangs: the thread closes the stream if `open` ever returns.
                me.stop.store(true, Ordering::Release);
                me.handle = None;
                Err(DeviceError::Thread(format!("opening the device took more than {} s", timeout.as_secs())))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(DeviceError::Thread("the thread ended while opening the device".to_owned()))
            }
        }
    }
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            if handle.join().is_err() {
                tracing::warn!("audio device thread panicked");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// cpal-facing part
// ---------------------------------------------------------------------------------------------------------------

/// A device's name for messages and matching.
fn device_name(device: &cpal::Device) -> String {
    match device.description() {
        Ok(d) => d.name().to_owned(),
        Err(_) => device.id().map(|id| id.id().to_owned()).unwrap_or_else(|_| "unknown device".to_owned()),
    }
}

fn supports(device: &cpal::Device, direction: DeviceDirection) -> bool {
    match direction {
        DeviceDirection::Input => device.supports_input(),
        DeviceDirection::Output => device.supports_output(),
    }
}

/// The default device for `direction`, or the one whose name or backend id is `name`.
fn find_device(host: &cpal::Host, name: Option<&str>, direction: DeviceDirection) -> Result<cpal::Device, DeviceError> {
    let not_found = || DeviceError::NoDevice { direction, name: name.map(str::to_owned) };
    let Some(name) = name else {
        let device = match direction {
            DeviceDirection::Input => host.default_input_device(),
            DeviceDirection::Output => host.default_output_device(),
        };
        return device.ok_or_else(not_found);
    };
    if let Ok(devices) = host.devices() {
        for device in devices {
            let id = device.id().ok();
            let matches =
                device_name(&device) == name || id.as_ref().is_some_and(|id| id.id() == name || id.to_string() == name);
            if matches && supports(&device, direction) {
                return Ok(device);
            }
        }
    }
    // Backend shorthands the listing does not show, such as ALSA's `hw:0,0` or `plughw:1`.
    let id = name.parse::<cpal::DeviceId>().unwrap_or_else(|_| cpal::DeviceId::new(host.id(), name));
    match host.device_by_id(&id) {
        Some(device) if supports(&device, direction) => Ok(device),
        _ => Err(not_found()),
    }
}

/// The device's preferred configuration, checked for what this module can convert.
fn preferred_config(
    device: &cpal::Device,
    name: &str,
    direction: DeviceDirection,
) -> Result<(cpal::StreamConfig, SampleFormat), DeviceError> {
    let unsupported = |reason: String| DeviceError::UnsupportedConfig { direction, device: name.to_owned(), reason };
    let supported = match direction {
        DeviceDirection::Input => device.default_input_config(),
        DeviceDirection::Output => device.default_output_config(),
    }
    .map_err(|e| match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable
        | cpal::ErrorKind::DeviceBusy
        | cpal::ErrorKind::PermissionDenied
        | cpal::ErrorKind::HostUnavailable => {
            DeviceError::Unavailable { direction, device: name.to_owned(), reason: e.to_string() }
        }
        _ => unsupported(e.to_string()),
    })?;
    let format = supported.sample_format();
    if !is_supported_format(format) {
        return Err(unsupported(format!("sample format {format}")));
    }
    if supported.channels() == 0 {
        return Err(unsupported("no channels".to_owned()));
    }
    Ok((supported.config(), format))
}

fn is_supported_format(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::I8
            | SampleFormat::I16
            | SampleFormat::I24
            | SampleFormat::I32
            | SampleFormat::I64
            | SampleFormat::U8
            | SampleFormat::U16
            | SampleFormat::U24
            | SampleFormat::U32
            | SampleFormat::U64
            | SampleFormat::F32
            | SampleFormat::F64
    )
}

/// cpal's stream error callback: logs and counts, never panics.
fn error_callback(
    direction: DeviceDirection,
    device: String,
    counters: Arc<Counters>,
) -> impl FnMut(cpal::Error) + Send {
    move |error: cpal::Error| {
        if error.kind() == cpal::ErrorKind::Xrun {
            counters.xruns.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%direction, %device, %error, "audio device xrun");
        } else {
            counters.stream_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%direction, %device, %error, "audio device stream error");
        }
    }
}

fn build_input<T: DeviceSample + SizedSample + Send + 'static>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut feeder: CaptureFeeder,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error> {
    device.build_input_stream(config, move |data: &[T], _: &cpal::InputCallbackInfo| feeder.push(data), on_error, None)
}

fn build_output<T: DeviceSample + SizedSample + Send + 'static>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut feeder: PlaybackFeeder,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error> {
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| feeder.fill(data),
        on_error,
        None,
    )
}

/// Runs `$build::<T>(args)` with `T` the Rust type of the sample format `$format`.
macro_rules! with_sample_type {
    ($format:expr, $build:ident, $($arg:expr),* $(,)?) => {
        match $format {
            SampleFormat::I8 => $build::<i8>($($arg),*),
            SampleFormat::I16 => $build::<i16>($($arg),*),
            SampleFormat::I24 => $build::<I24>($($arg),*),
            SampleFormat::I32 => $build::<i32>($($arg),*),
            SampleFormat::I64 => $build::<i64>($($arg),*),
            SampleFormat::U8 => $build::<u8>($($arg),*),
            SampleFormat::U16 => $build::<u16>($($arg),*),
            SampleFormat::U24 => $build::<U24>($($arg),*),
            SampleFormat::U32 => $build::<u32>($($arg),*),
            SampleFormat::U64 => $build::<u64>($($arg),*),
            SampleFormat::F32 => $build::<f32>($($arg),*),
            SampleFormat::F64 => $build::<f64>($($arg),*),
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other}"),
            )),
        }
    };
}

fn format_of(name: String, config: &cpal::StreamConfig, format: SampleFormat) -> DeviceFormat {
    DeviceFormat {
        device: name,
        sample_rate: config.sample_rate,
        channels: config.channels,
        sample_format: format.to_string(),
    }
}

/// On the stream thread: opens, builds and starts a capture stream.
fn open_input(
    name: Option<String>,
    counters: Arc<Counters>,
) -> Result<(cpal::Stream, (CaptureReader, DeviceFormat)), DeviceError> {
    let direction = DeviceDirection::Input;
    let host = cpal::default_host();
    let device = find_device(&host, name.as_deref(), direction)?;
    let label = device_name(&device);
    let (config, format) = preferred_config(&device, &label, direction)?;
    let rate = config.sample_rate;
    let (writer, source) = app_source_channel_with_capacity(ring_capacity(rate));
    let reader = CaptureReader::new(source, rate, Arc::clone(&counters))
        .map_err(|reason| DeviceError::UnsupportedConfig { direction, device: label.clone(), reason })?;
    let feeder = CaptureFeeder::new(writer, usize::from(config.channels), Arc::clone(&counters));
    let on_error = error_callback(direction, label.clone(), counters);
    let stream = with_sample_type!(format, build_input, &device, config, feeder, on_error)
        .map_err(|e| DeviceError::BuildStream { direction, device: label.clone(), reason: e.to_string() })?;
    stream.play().map_err(|e| DeviceError::PlayStream { direction, device: label.clone(), reason: e.to_string() })?;
    Ok((stream, (reader, format_of(label, &config, format))))
}

/// On the stream thread: opens, builds and starts a playback stream.
fn open_output(
    name: Option<String>,
    counters: Arc<Counters>,
) -> Result<(cpal::Stream, (PlaybackWriter, DeviceFormat)), DeviceError> {
    let direction = DeviceDirection::Output;
    let host = cpal::default_host();
    let device = find_device(&host, name.as_deref(), direction)?;
    let label = device_name(&device);
    let (config, format) = preferred_config(&device, &label, direction)?;
    let rate = config.sample_rate;
    let (sink, reader) = app_sink_channel_with_capacity(ring_capacity(rate));
    let writer = PlaybackWriter::new(sink, rate, Arc::clone(&counters))
        .map_err(|reason| DeviceError::UnsupportedConfig { direction, device: label.clone(), reason })?;
    let feeder = PlaybackFeeder::new(reader, rate, usize::from(config.channels), Arc::clone(&counters));
    let on_error = error_callback(direction, label.clone(), counters);
    let stream = with_sample_type!(format, build_output, &device, config, feeder, on_error)
        .map_err(|e| DeviceError::BuildStream { direction, device: label.clone(), reason: e.to_string() })?;
    stream.play().map_err(|e| DeviceError::PlayStream { direction, device: label.clone(), reason: e.to_string() })?;
    Ok((stream, (writer, format_of(label, &config, format))))
}

// ---------------------------------------------------------------------------------------------------------------
// DeviceSource / DeviceSink
// ---------------------------------------------------------------------------------------------------------------

/// A capture device (microphone) as an [`AudioSource`]: 48 kHz mono frames, whatever the device's format.
///
/// `read` never blocks: it returns what the device has delivered, resampled to 48 kHz, and pads with silence
/// (counted) when the device is behind. It never ends. Dropping it stops and closes the device (briefly
/// joining the stream thread).
pub struct DeviceSource {
    // Declared first so the device stops before the ring's reading end goes away.
    _thread: StreamThread,
    reader: CaptureReader,
    format: DeviceFormat,
}

impl DeviceSource {
    /// Opens the default input device (`None`) or the one named `name` (a [`DeviceInfo::name`] or
    /// [`DeviceInfo::id`], or a backend shorthand such as ALSA's `hw:1,0`), in its preferred configuration,
    /// and starts capturing.
    ///
    /// Blocks while the device opens (normally milliseconds, at most 10 s).
    ///
    /// # Errors
    /// A [`DeviceError`] when there is no such device or it cannot be opened.
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        let name = name.map(str::to_owned);
        let counters = Arc::new(Counters::default());
        let (thread, (reader, format)) =
            StreamThread::spawn("audio-in", OPEN_TIMEOUT, move || open_input(name, counters))?;
        tracing::info!(device = %format.device, rate = format.sample_rate, channels = format.channels,
            format = %format.sample_format, "audio input device opened");
        Ok(DeviceSource { _thread: thread, reader, format })
    }

    /// What the device was opened with.
    pub fn format(&self) -> &DeviceFormat {
        &self.format
    }

    /// The counters.
    pub fn stats(&self) -> DeviceStats {
        self.reader.stats()
    }
}

impl fmt::Debug for DeviceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSource").field("format", &self.format).field("stats", &self.stats()).finish()
    }
}

impl AudioSource for DeviceSource {
    fn read(&mut self, out: &mut [i16]) -> bool {
        self.reader.read(out);
        true
    }
}

/// A playback device (speaker, headset) as an [`AudioSink`]: takes 48 kHz mono frames, plays them in the
/// device's format on every channel.
///
/// `write` never blocks: frames are resampled to the device rate and queued; the device plays silence (counted)
/// when the queue runs dry, and frames are dropped (counted) when the queue is more than 100 ms ahead of it.
/// Dropping it stops and closes the device (briefly joining the stream thread).
pub struct DeviceSink {
    // Declared first so the device stops before the ring's writing end goes away.
    _thread: StreamThread,
    writer: PlaybackWriter,
    format: DeviceFormat,
}

impl DeviceSink {
    /// Opens the default output device (`None`) or the one named `name` (see [`DeviceSource::open`]), in its
    /// preferred configuration, and starts playing (silence until frames arrive).
    ///
    /// # Errors
    /// A [`DeviceError`] when there is no such device or it cannot be opened.
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        let name = name.map(str::to_owned);
        let counters = Arc::new(Counters::default());
        let (thread, (writer, format)) =
            StreamThread::spawn("audio-out", OPEN_TIMEOUT, move || open_output(name, counters))?;
        tracing::info!(device = %format.device, rate = format.sample_rate, channels = format.channels,
            format = %format.sample_format, "audio output device opened");
        Ok(DeviceSink { _thread: thread, writer, format })
    }

    /// What the device was opened with.
    pub fn format(&self) -> &DeviceFormat {
        &self.format
    }

    /// The counters.
    pub fn stats(&self) -> DeviceStats {
        self.writer.stats()
    }
}

impl fmt::Debug for DeviceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSink").field("format", &self.format).field("stats", &self.stats()).finish()
    }
}

impl AudioSink for DeviceSink {
    fn write(&mut self, frame: &[i16]) {
        self.writer.write(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dsp::meter::Meter;
    use crate::media::io::app_channel::{app_sink_channel_with_capacity, app_source_channel_with_capacity};
    use std::f64::consts::TAU;

    /// Every `i16`, and the extremes first.
    fn all_i16() -> impl Iterator<Item = i16> {
        [i16::MIN, -1, 0, 1, i16::MAX].into_iter().chain(i16::MIN..=i16::MAX)
    }

    /// `T` carries every `i16` exactly: to the device format and back is the identity.
    fn assert_lossless<T: DeviceSample + fmt::Debug>() {
        for s in all_i16() {
            let d = T::from_i16(s);
            assert_eq!(d.to_i16(), s, "{} -> {d:?}", s);
        }
    }

    #[test]
    fn sixteen_bit_and_wider_formats_round_trip_every_i16() {
        assert_lossless::<i16>();
        assert_lossless::<I24>();
        assert_lossless::<i32>();
        assert_lossless::<i64>();
        assert_lossless::<u16>();
        assert_lossless::<U24>();
        assert_lossless::<u32>();
        assert_lossless::<u64>();
        assert_lossless::<f32>();
        assert_lossless::<f64>();
    }

    #[test]
    fn eight_bit_formats_keep_the_top_byte_rounded() {
        for s in all_i16() {
            // Within half a step, except at the top, which saturates at 127 steps.
            let bound = if s > 127 * 256 { 255 } else { 128 };
            let back = i8::from_i16(s).to_i16();
            assert!((i32::from(back) - i32::from(s)).abs() <= bound, "i8: {s} -> {back}");
            let back = u8::from_i16(s).to_i16();
            assert!((i32::from(back) - i32::from(s)).abs() <= bound, "u8: {s} -> {back}");
        }
        assert_eq!((i8::from_i16(0), i8::from_i16(i16::MAX), i8::from_i16(i16::MIN)), (0, 127, -128));
        assert_eq!((i8::from_i16(383), i8::from_i16(384)), (1, 2), "rounded to nearest");
        assert_eq!((u8::from_i16(0), u8::from_i16(i16::MAX), u8::from_i16(i16::MIN)), (128, 255, 0));
        assert_eq!((i8::MIN.to_i16(), 0i8.to_i16(), i8::MAX.to_i16()), (-32768, 0, 32512));
        assert_eq!((0u8.to_i16(), 128u8.to_i16(), 255u8.to_i16()), (-32768, 0, 32512));
    }

    #[test]
    fn integer_formats_map_their_full_range_with_rounding() {
        // Signed: the top 16 bits, rounded to nearest, saturating at the top.
        assert_eq!((i32::MIN.to_i16(), 0i32.to_i16(), i32::MAX.to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!(((1i32 << 15) - 1).to_i16(), 0);
        assert_eq!((1i32 << 15).to_i16(), 1, "a half rounds up");
        assert_eq!((-(1i32 << 15) - 1).to_i16(), -1);
        assert_eq!((i64::MIN.to_i16(), 0i64.to_i16(), i64::MAX.to_i16()), (i16::MIN, 0, i16::MAX));
        let i24 = |v: i32| I24::new(v).unwrap_or_else(|| panic!("{v} out of range"));
        assert_eq!((i24(-(1 << 23)).to_i16(), i24(0).to_i16(), i24((1 << 23) - 1).to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!((i24(127).to_i16(), i24(128).to_i16()), (0, 1));
        assert_eq!(I24::from_i16(-2).inner(), -512);
        // Unsigned: offset by the midpoint, which is silence.
        assert_eq!((u16::MIN.to_i16(), 32768u16.to_i16(), u16::MAX.to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!((u16::from_i16(0), u16::from_i16(i16::MIN), u16::from_i16(i16::MAX)), (32768, 0, 65535));
        assert_eq!((u32::MIN.to_i16(), (1u32 << 31).to_i16(), u32::MAX.to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!(u32::from_i16(0), 1 << 31);
        assert_eq!((u64::MIN.to_i16(), (1u64 << 63).to_i16(), u64::MAX.to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!(u64::from_i16(0), 1 << 63);
        let u24 = |v: i32| U24::new(v).unwrap_or_else(|| panic!("{v} out of range"));
        assert_eq!((u24(0).to_i16(), u24(1 << 23).to_i16(), u24((1 << 24) - 1).to_i16()), (i16::MIN, 0, i16::MAX));
        assert_eq!(U24::from_i16(0).inner(), 1 << 23);
    }

    #[test]
    fn float_formats_scale_clamp_and_silence_nan() {
        assert_eq!((0.5f32.to_i16(), (-0.5f32).to_i16(), (-1.0f32).to_i16()), (16384, -16384, -32768));
        assert_eq!((1.0f32.to_i16(), 7.5f32.to_i16(), (-3.0f32).to_i16()), (i16::MAX, i16::MAX, i16::MIN));
        assert_eq!((f32::NAN.to_i16(), f32::INFINITY.to_i16(), f32::NEG_INFINITY.to_i16()), (0, i16::MAX, i16::MIN));
        assert_eq!((0.25f64.to_i16(), 2.0f64.to_i16(), f64::NAN.to_i16()), (8192, i16::MAX, 0));
        assert_eq!((f32::from_i16(i16::MIN), f32::from_i16(16384), f32::from_i16(0)), (-1.0, 0.5, 0.0));
        assert!(f32::from_i16(i16::MAX) < 1.0);
        assert_eq!(f64::from_i16(-8192), -0.25);
    }

    #[test]
    fn downmix_averages_channels_for_any_format() {
        let mut out = [0i16; 8];
        // Stereo i16: the rounded mean.
        assert_eq!(downmix(&[100i16, 300, -100, -301, i16::MAX, i16::MAX, i16::MIN, i16::MIN], 2, &mut out), 4);
        assert_eq!(out[..4], [200, -200, i16::MAX, i16::MIN]);
        // A signal in one channel only comes out 6 dB down.
        assert_eq!(downmix(&[1000i16, 0, -1000, 0], 2, &mut out), 2);
        assert_eq!(out[..2], [500, -500]);
        // f32 stereo, u16 stereo, u8 and I24 and f64 with more channels.
        assert_eq!(downmix(&[0.5f32, 0.25, -1.0, -1.0], 2, &mut out), 2);
        assert_eq!(out[..2], [12288, -32768]);
        assert_eq!(downmix(&[32768u16, 65535, 0, 32768], 2, &mut out), 2);
        assert_eq!(out[..2], [16384, -16384]);
        assert_eq!(downmix(&[255u8, 255, 255, 0, 0, 0], 6, &mut out), 1);
        assert_eq!(out[0], -128, "(3 * 32512 - 3 * 32768) / 6");
        let i24 = |v: i32| I24::new(v).unwrap_or_else(|| panic!("{v}"));
        assert_eq!(downmix(&[i24(256 * 10), i24(256 * 20), i24(256 * 30), i24(256 * 40)], 4, &mut out), 1);
        assert_eq!(out[0], 25);
        assert_eq!(downmix(&[0.5f64, 0.5, 0.5], 3, &mut out), 1);
        assert_eq!(out[0], 16384);
        // Mono passes through; u32/i32/u64/i64/i8/U24 at 16 bits too.
        assert_eq!(downmix(&[1u32 << 31, u32::MAX], 1, &mut out), 2);
        assert_eq!(out[..2], [0, i16::MAX]);
        assert_eq!(downmix(&[1i32 << 16, -(1i32 << 16)], 1, &mut out), 2);
        assert_eq!(out[..2], [1, -1]);
        assert_eq!(downmix(&[u64::MAX, 0u64], 2, &mut out), 1);
        assert_eq!(out[0], 0);
        assert_eq!(downmix(&[i64::MAX, i64::MAX], 2, &mut out), 1);
        assert_eq!(out[0], i16::MAX);
        assert_eq!(downmix(&[-128i8, 0, 64], 1, &mut out), 3);
        assert_eq!(out[..3], [-32768, 0, 16384]);
        let u24 = |v: i32| U24::new(v).unwrap_or_else(|| panic!("{v}"));
        assert_eq!(downmix(&[u24(1 << 23), u24((1 << 23) + 512)], 2, &mut out), 1);
        assert_eq!(out[0], 1);
    }

    #[test]
    fn downmix_ignores_partial_frames_and_respects_the_output_length() {
        let mut out = [7i16; 3];
        assert_eq!(downmix(&[2i16, 2, 4, 4, 6], 2, &mut out), 2, "the odd sample is not a frame");
        assert_eq!(out, [2, 4, 7]);
        let long: Vec<i16> = (0..20).collect();
        assert_eq!(downmix(&long, 2, &mut out), 3);
        assert_eq!(downmix(&long, 1, &mut out), 3);
        assert_eq!(out, [0, 1, 2]);
        assert_eq!(downmix::<i16>(&[], 2, &mut out), 0);
    }

    #[test]
    fn upmix_copies_mono_to_every_channel_in_any_format() {
        let mono = [i16::MIN, 0, 16384];
        let mut f = [9.0f32; 6];
        assert_eq!(upmix(&mono, 2, &mut f), 3);
        assert_eq!(f, [-1.0, -1.0, 0.0, 0.0, 0.5, 0.5]);
        let mut u = [1u16; 7];
        assert_eq!(upmix(&mono, 2, &mut u), 3);
        assert_eq!(u[..6], [0, 0, 32768, 32768, 49152, 49152]);
        assert_eq!(u[6], 1, "a partial frame is left alone");
        let mut b = [0u8; 12];
        assert_eq!(upmix(&mono, 4, &mut b), 3);
        assert_eq!(b, [0, 0, 0, 0, 128, 128, 128, 128, 192, 192, 192, 192]);
        let mut i = [0i32; 2];
        assert_eq!(upmix(&mono, 1, &mut i), 2, "as many frames as fit");
        assert_eq!(i, [i32::MIN, 0]);
        let mut w = [I24::from_i16(0); 3];
        assert_eq!(upmix(&mono[2..], 3, &mut w), 1);
        assert!(w.iter().all(|s| s.inner() == 16384 << 8));
        let mut d = [0.0f64; 2];
        assert_eq!(upmix(&mono[2..], 2, &mut d), 1);
        assert_eq!(d, [0.5, 0.5]);
    }

    /// `len` samples of a sine at `freq` Hz, sampled at `rate`, peak `amp` (0..1), from sample `start` on.
    fn sine(freq: f64, rate: u32, amp: f64, start: usize, len: usize) -> Vec<f64> {
        (start..start + len).map(|n| amp * (TAU * freq * n as f64 / f64::from(rate)).sin()).collect()
    }

    fn interleave<T: Copy>(mono: &[T], channels: usize) -> Vec<T> {
        mono.iter().flat_map(|&s| std::iter::repeat_n(s, channels)).collect()
    }

    /// A capture chain without cpal: feeder (callback side) → ring → reader (pipeline side).
    fn capture_chain(rate: u32, channels: usize) -> (CaptureFeeder, CaptureReader, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let (writer, source) = app_source_channel_with_capacity(ring_capacity(rate));
        let feeder = CaptureFeeder::new(writer, channels, Arc::clone(&counters));
        let reader = CaptureReader::new(source, rate, Arc::clone(&counters)).unwrap_or_else(|e| panic!("{e}"));
        (feeder, reader, counters)
    }

    #[test]
    fn capture_at_44k1_comes_out_at_48k_with_the_same_tone() {
        // A 1 kHz tone at -6 dBFS peak, captured as f32 stereo at 44.1 kHz in 10 ms callbacks (two per 20 ms
        // pipeline frame), read as 48 kHz mono frames.
        let (mut feeder, mut reader, counters) = capture_chain(44_100, 2);
        let mut meter = Meter::new();
        let mut frame = [0i16; 960];
        let mut pos = 0;
        let mut read_after_priming = 0;
        for f in 0..150 {
            for _ in 0..2 {
                let chunk: Vec<f32> = sine(1000.0, 44_100, 0.5, pos, 441).iter().map(|&v| v as f32).collect();
                feeder.push(&interleave(&chunk, 2));
                pos += 441;
            }
            reader.read(&mut frame);
            if f >= 10 {
                meter.process(&frame);
                read_after_priming += frame.len();
            }
        }
        let stats = reader.stats();
        assert_eq!(stats.frames, 150);
        assert_eq!(stats.callbacks, 300);
        assert_eq!(stats.max_callback_frames, 441);
        assert_eq!(stats.underruns, 0, "{stats:?}");
        assert_eq!(stats.silence_samples, 960, "only the first frame, while priming: {stats:?}");
        assert_eq!((stats.overflow_samples, stats.trimmed_samples), (0, 0));
        assert_eq!(read_after_priming, 140 * 960);
        let d = meter.dominant_hz().unwrap_or(0.0);
        assert!((d - 1000.0).abs() <= 5.0, "dominant {d} Hz");
        // -6 dBFS peak is -9.03 dBFS RMS; the resampler's passband keeps the level.
        let level = meter.tone_level_dbfs(1000.0);
        assert!((level + 9.03).abs() < 0.3, "level {level}");
        assert!(meter.tone_present(1000.0, -12.0));
        assert!(!meter.tone_present(3000.0, -50.0));
        // Latency stays at the priming level: about one frame plus one callback buffered.
        assert!(reader.source.buffered() <= ms_at(44_100, PRIME_MS) + 441 + 2, "{}", reader.source.buffered());
        assert_eq!(counters.frames.load(Ordering::Relaxed), 150);
    }

    #[test]
    fn capture_frequency_is_exact_over_many_frames() {
        // The sample count is preserved too: 1 s at 44.1 kHz gives 1 s at 48 kHz, and a 440 Hz tone has its
        // 880 zero crossings per second.
        let (mut feeder, mut reader, _) = capture_chain(44_100, 1);
        let mut out = Vec::new();
        let mut frame = [0i16; 480];
        let mut pos = 0;
        for _ in 0..400 {
            let chunk: Vec<i16> = sine(440.0, 44_100, 0.8, pos, 441).iter().map(|v| (v * 32767.0) as i16).collect();
            feeder.push(&chunk);
            pos += 441;
            reader.read(&mut frame);
            out.extend_from_slice(&frame);
        }
        assert_eq!(reader.stats().underruns, 0);
        let steady = &out[48_000..48_000 * 3];
        let crossings = steady.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((crossings as i64 - 2 * 880).abs() <= 2, "{crossings} crossings in 2 s");
    }

    #[test]
    fn capture_at_48k_passes_samples_through_unchanged() {
        let (mut feeder, mut reader, _) = capture_chain(48_000, 2);
        let samples: Vec<i16> = (0..4800).map(|i| (i * 7) as i16).collect();
        for chunk in samples.chunks(480) {
            feeder.push(&interleave(chunk, 2));
        }
        let mut got = Vec::new();
        let mut frame = [0i16; 960];
        for _ in 0..5 {
            reader.read(&mut frame);
            got.extend_from_slice(&frame);
        }
        assert_eq!(got, samples);
        assert_eq!(reader.stats().underruns, 0);
    }

    #[test]
    fn capture_underrun_gives_silence_counts_and_primes_again() {
        let (mut feeder, mut reader, _) = capture_chain(48_000, 1);
        let mut frame = [5i16; 960];
        reader.read(&mut frame);
        assert!(frame.iter().all(|&s| s == 0), "nothing captured yet");
        let stats = reader.stats();
        assert_eq!((stats.underruns, stats.silence_samples), (0, 960), "priming is not an underrun");
        // Below the priming level (20 ms plus the 500-sample callback), nothing is read yet.
        feeder.push(&[3i16; 500]);
        reader.read(&mut frame);
        assert!(frame.iter().all(|&s| s == 0));
        feeder.push(&[3i16; 500]);
        feeder.push(&[3i16; 500]);
        reader.read(&mut frame);
        assert!(frame.iter().all(|&s| s == 3), "primed at 1500 samples");
        // 540 left: the next frame runs dry.
        reader.read(&mut frame);
        assert!(frame[..540].iter().all(|&s| s == 3));
        assert!(frame[540..].iter().all(|&s| s == 0));
        let stats = reader.stats();
        assert_eq!(stats.underruns, 1);
        assert_eq!(stats.silence_samples, 960 * 2 + 420);
        // Primes again before reading on.
        feeder.push(&[4i16; 500]);
        feeder.push(&[4i16; 500]);
        reader.read(&mut frame);
        assert!(frame.iter().all(|&s| s == 0));
        assert_eq!(reader.stats().underruns, 1, "waiting for the priming level is not another underrun");
    }

    #[test]
    fn capture_trims_latency_when_the_device_runs_ahead() {
        let (mut feeder, mut reader, _) = capture_chain(16_000, 1);
        let mut frame = [0i16; 960];
        // 300 ms arrives at once (in 10 ms callbacks): more than 100 ms above the priming level.
        for _ in 0..30 {
            feeder.push(&[100i16; 160]);
        }
        reader.read(&mut frame);
        let prime = ms_at(16_000, PRIME_MS) + 160;
        let stats = reader.stats();
        assert_eq!(stats.trimmed_samples, (4800 - prime) as u64);
        assert!(reader.source.buffered() < prime, "the rest was read");
        // A full ring drops the newest samples and counts them.
        let before = reader.source.buffered();
        let capacity = ring_capacity(16_000);
        for _ in 0..100 {
            feeder.push(&[1i16; 160]);
        }
        assert_eq!(reader.stats().overflow_samples, (16_000 - (capacity - before)) as u64);
    }

    /// A playback chain without cpal: writer (pipeline side) → ring → feeder (callback side).
    fn playback_chain(rate: u32, channels: usize) -> (PlaybackWriter, PlaybackFeeder) {
        let counters = Arc::new(Counters::default());
        let (sink, reader) = app_sink_channel_with_capacity(ring_capacity(rate));
        let writer = PlaybackWriter::new(sink, rate, Arc::clone(&counters)).unwrap_or_else(|e| panic!("{e}"));
        let feeder = PlaybackFeeder::new(reader, rate, channels, counters);
        (writer, feeder)
    }

    #[test]
    fn playback_at_44k1_plays_the_tone_on_every_channel() {
        let (mut writer, mut feeder) = playback_chain(44_100, 2);
        let mut tone = crate::media::io::source::Tone::new(1000.0, -6.0);
        let mut frame = [0i16; 960];
        let mut left = Vec::new();
        let mut buf = [0.0f32; 441 * 2];
        for f in 0..150 {
            tone.read(&mut frame);
            writer.write(&frame);
            for _ in 0..2 {
                feeder.fill(&mut buf);
                assert!(buf.chunks_exact(2).all(|c| c[0] == c[1]), "both channels alike");
                if f >= 10 {
                    left.extend(buf.iter().step_by(2).map(|&s| s.to_i16()));
                }
            }
        }
        let stats = writer.stats();
        assert_eq!((stats.frames, stats.callbacks, stats.max_callback_frames), (150, 300, 441));
        assert_eq!(stats.underruns, 0, "{stats:?}");
        assert_eq!(stats.silence_samples, 2 * 441, "one frame's worth while priming: {stats:?}");
        assert_eq!((stats.overflow_samples, stats.trimmed_samples), (0, 0));
        // Frequency: 2000 zero crossings per second at 44.1 kHz.
        let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        let seconds = left.len() as f64 / 44_100.0;
        assert!((crossings as f64 / seconds / 2.0 - 1000.0).abs() < 2.0, "{crossings} in {seconds} s");
        // Level: -6 dBFS peak.
        let peak = left.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
        assert!((16_200..=16_600).contains(&peak), "peak {peak}");
        // And back to 48 kHz through the meter, for good measure.
        let mut back = Resampler::new(44_100, 48_000).unwrap_or_else(|e| panic!("{e}"));
        let mut out = vec![0i16; back.max_output_len(left.len())];
        let n = back.process(&left, &mut out).unwrap_or_else(|e| panic!("{e}"));
        let mut meter = Meter::new();
        for chunk in out[960..n].chunks_exact(960) {
            meter.process(chunk);
        }
        assert!((meter.dominant_hz().unwrap_or(0.0) - 1000.0).abs() <= 5.0);
    }

    #[test]
    fn playback_underrun_plays_silence_in_the_device_format_and_counts() {
        let (mut writer, mut feeder) = playback_chain(48_000, 2);
        let mut buf = [1u16; 480 * 2];
        feeder.fill(&mut buf);
        assert!(buf.iter().all(|&s| s == 32768), "unsigned silence is the midpoint");
        assert_eq!(writer.stats().underruns, 0, "priming is not an underrun");
        writer.write(&[1000i16; 960]);
        writer.write(&[1000i16; 960]);
        feeder.fill(&mut buf); // primed: 1920 ≥ 960 + 480
        assert!(buf.iter().all(|&s| s == u16::from_i16(1000)));
        feeder.fill(&mut buf);
        feeder.fill(&mut buf);
        feeder.fill(&mut buf);
        assert!(buf.iter().all(|&s| s == u16::from_i16(1000)));
        feeder.fill(&mut buf); // dry
        assert!(buf.iter().all(|&s| s == 32768));
        let stats = writer.stats();
        assert_eq!(stats.underruns, 1);
        assert_eq!(stats.silence_samples, 480 + 480);
        // An odd-length buffer (not whole frames) gets silence in its tail.
        let mut odd = [5i16; 7];
        feeder.fill(&mut odd);
        assert_eq!(odd, [0; 7]);
    }

    #[test]
    fn playback_drops_frames_when_the_device_falls_behind() {
        let (mut writer, mut feeder) = playback_chain(8_000, 1);
        let mut buf = [0i16; 80];
        feeder.fill(&mut buf);
        // The device stops pulling: the queue may grow to 20 + 100 ms plus one callback, then frames are
        // dropped instead of piling up latency.
        for _ in 0..50 {
            writer.write(&[500i16; 960]);
        }
        let stats = writer.stats();
        let limit = ms_at(8_000, PRIME_MS + HEADROOM_MS) + 80;
        assert!(writer.buffered() <= limit + 160, "{} buffered", writer.buffered());
        assert_eq!(stats.trimmed_samples as usize + writer.buffered(), 50 * 160);
        assert_eq!(stats.overflow_samples, 0);
    }

    #[test]
    fn stream_thread_keeps_a_non_send_stream_until_dropped() {
        use std::rc::Rc;
        struct FakeStream {
            _not_send: Rc<()>,
            dropped: Arc<AtomicBool>,
            thread: String,
        }
        impl Drop for FakeStream {
            fn drop(&mut self) {
                assert_eq!(thread::current().name().unwrap_or_default(), self.thread, "dropped on its own thread");
                self.dropped.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let (handle, payload) = StreamThread::spawn("test-stream", Duration::from_secs(10), move || {
            let name = thread::current().name().unwrap_or_default().to_owned();
            Ok((FakeStream { _not_send: Rc::new(()), dropped: flag, thread: name }, 42u32))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(payload, 42);
        thread::sleep(Duration::from_millis(20));
        assert!(!dropped.load(Ordering::SeqCst), "the stream lives while the handle does");
        drop(handle);
        assert!(dropped.load(Ordering::SeqCst), "dropping the handle stops and joins the thread");
    }

    #[test]
    fn stream_thread_reports_open_errors_timeouts_and_panics() {
        let err = StreamThread::spawn::<(), (), _>("test-err", Duration::from_secs(10), || {
            Err(DeviceError::NoDevice { direction: DeviceDirection::Input, name: Some("x".into()) })
        })
        .err();
        assert_eq!(err, Some(DeviceError::NoDevice { direction: DeviceDirection::Input, name: Some("x".into()) }));
        let slow = StreamThread::spawn::<(), (), _>("test-slow", Duration::from_millis(50), || {
            thread::sleep(Duration::from_millis(300));
            Ok(((), ()))
        });
        assert!(matches!(slow, Err(DeviceError::Thread(ref m)) if m.contains("took more than")), "{slow:?}");
        let died = StreamThread::spawn::<(), (), _>("test-panic", Duration::from_secs(10), || {
            panic!("backend bug (expected by this test)")
        });
        assert!(matches!(died, Err(DeviceError::Thread(_))), "{died:?}");
    }

    #[test]
    fn device_source_and_sink_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<DeviceSource>();
        assert_send::<DeviceSink>();
        assert_send::<DeviceError>();
    }

    #[test]
    fn errors_read_well() {
        let e = DeviceError::NoDevice { direction: DeviceDirection::Output, name: None };
        assert_eq!(e.to_string(), "no output audio device");
        let e = DeviceError::NoDevice { direction: DeviceDirection::Input, name: Some("USB mic".into()) };
        assert_eq!(e.to_string(), "no input audio device named \"USB mic\"");
        let e = DeviceError::UnsupportedConfig {
            direction: DeviceDirection::Input,
            device: "hw:0".into(),
            reason: "sample format dsd_u8".into(),
        };
        assert_eq!(e.to_string(), "input audio device \"hw:0\": unsupported configuration: sample format dsd_u8");
    }

    #[test]
    fn priming_level_follows_the_callback_size_within_the_ring() {
        assert_eq!(prime_level(48_000, 0), 960);
        assert_eq!(prime_level(44_100, 441), 882 + 441);
        assert_eq!(ring_capacity(48_000), 24_000);
        assert_eq!(prime_level(48_000, 100_000), 12_000, "huge callbacks: half the ring, so it still starts");
        assert_eq!(ring_capacity(1_000), MAX_FRAME_SAMPLES);
    }

    #[test]
    fn unsupported_rates_and_formats_are_rejected_up_front() {
        let (_, source) = app_source_channel_with_capacity(10);
        assert!(CaptureReader::new(source, 0, Arc::default()).is_err());
        let (sink, _) = app_sink_channel_with_capacity(10);
        assert!(PlaybackWriter::new(sink, 44_101, Arc::default()).is_err(), "a ratio the resampler cannot do");
        assert!(!is_supported_format(SampleFormat::DsdU8));
        assert!(is_supported_format(SampleFormat::F32) && is_supported_format(SampleFormat::U24));
    }

    /// The cpal-facing part, on whatever this machine has (usually no sound card): it must answer with a
    /// result, never panic or hang.
    #[test]
    fn missing_devices_fail_cleanly() {
        match list_devices() {
            Ok(devices) => {
                for d in &devices {
                    assert!(!d.name.is_empty());
                }
            }
            Err(e) => assert!(matches!(e, DeviceError::Enumerate(_))),
        }
        let name = "webphone-test-no-such-device";
        let err = DeviceSource::open(Some(name)).err();
        assert_eq!(err, Some(DeviceError::NoDevice { direction: DeviceDirection::Input, name: Some(name.into()) }));
        let err = DeviceSink::open(Some(name)).err();
        assert_eq!(err, Some(DeviceError::NoDevice { direction: DeviceDirection::Output, name: Some(name.into()) }));
        let setup = crate::media::AudioSetup {
            receive: crate::media::ReceiveAudio::Device { name: Some(name.into()) },
            ..Default::default()
        };
        match setup.build() {
            Err(reason) => assert!(reason.starts_with("media device failed: no output audio device"), "{reason}"),
            Ok(_) => panic!("a missing device must fail the media"),
        }
    }

    /// On a machine with a sound card: `cargo test --features device --lib media::io::device -- --ignored
    /// --nocapture` opens the default input and output, plays what it captures for a second and checks that
    /// both devices called back.
    /// ALSA's `null` PCM (discards playback, captures zeros) is a real device on any Linux with libasound, sound
    /// card or not: it runs the whole cpal path (open, build, start, callbacks in f32 stereo, stop). It has no
    /// clock, so its callbacks spin: run it briefly. Skipped where there is no such device.
    #[test]
    fn alsa_null_device_runs_through_cpal() {
        let source = DeviceSource::open(Some("null"));
        let sink = DeviceSink::open(Some("null"));
        let (mut source, mut sink) = match (source, sink) {
            (Ok(source), Ok(sink)) => (source, sink),
            (source, sink) => {
                println!("no usable ALSA null device, skipped: {:?} {:?}", source.err(), sink.err());
                return;
            }
        };
        assert!(source.format().sample_rate > 0 && source.format().channels > 0, "{:?}", source.format());
        assert!(sink.format().sample_rate > 0 && sink.format().channels > 0, "{:?}", sink.format());
        let mut frame = [1i16; 960];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (source.stats().callbacks == 0 || sink.stats().callbacks == 0) && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..3 {
            assert!(source.read(&mut frame));
            assert!(frame.iter().all(|&s| s == 0), "null captures silence");
            sink.write(&[1000; 960]);
        }
        let (s, k) = (source.stats(), sink.stats());
        assert!(s.callbacks > 0 && k.callbacks > 0, "{s:?} {k:?}");
        assert_eq!((s.frames, k.frames), (3, 3));
        drop(source);
        drop(sink);
    }

    #[test]
    #[ignore = "needs a sound card"]
    fn default_devices_run_for_a_second() {
        for d in list_devices().unwrap_or_else(|e| panic!("{e}")) {
            println!("{d:?}");
        }
        let mut source = DeviceSource::open(None).unwrap_or_else(|e| panic!("{e}"));
        let mut sink = DeviceSink::open(None).unwrap_or_else(|e| panic!("{e}"));
        println!("{:?}\n{:?}", source.format(), sink.format());
        let mut frame = [0i16; 960];
        for _ in 0..50 {
            thread::sleep(Duration::from_millis(20));
            assert!(source.read(&mut frame));
            sink.write(&frame);
        }
        println!("{:?}\n{:?}", source.stats(), sink.stats());
        assert!(source.stats().callbacks > 0 && sink.stats().callbacks > 0);
    }
}
