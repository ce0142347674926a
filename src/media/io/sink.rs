//! Where incoming audio goes: the [`AudioSink`] trait and its consumers.
//!
//! A sink is a plain struct driven by a frame clock it does not own: the pipeline calls [`AudioSink::write`]
//! once per frame with exactly one frame of 48 kHz mono `i16`. `write` cannot fail; a sink that can (the
//! recorder) keeps its first error for later. No sink allocates per frame.
//!
//! - [`NullSink`]: discards, counting frames and samples.
//! - [`WavRecorder`]: 48 kHz mono 16-bit WAV through a 64 KiB buffered writer.
//! - [`MeterSink`]: feeds a [`Meter`].
//! - [`Tee`]: one frame to two sinks (nest for more).
//! - [`AppSink`]: hands frames to application code on another thread, see [`app_channel`](super::app_channel).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;
use std::time::Duration;

use crate::media::dsp::meter::{Meter, MeterHandle};
use crate::media::frame::SAMPLE_RATE;
pub use crate::media::io::app_channel::AppSink;
use crate::media::io::wav::{self, WavError};

/// A consumer of 48 kHz mono PCM, written one frame at a time by the pipeline's clock.
pub trait AudioSink: Send {
    /// Consume exactly one frame. Never blocks for long and never fails; sinks that can fail record the error.
    fn write(&mut self, frame: &[i16]);
}

impl<S: AudioSink + ?Sized> AudioSink for Box<S> {
    fn write(&mut self, frame: &[i16]) {
        (**self).write(frame)
    }
}

impl<S: AudioSink + ?Sized> AudioSink for &mut S {
    fn write(&mut self, frame: &[i16]) {
        (**self).write(frame)
    }
}

/// Discards audio, counting what it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NullSink {
    frames: u64,
    samples: u64,
}

impl NullSink {
    /// A sink with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl AudioSink for NullSink {
    fn write(&mut self, frame: &[i16]) {
        self.frames += 1;
        self.samples += frame.len() as u64;
    }
}

/// The most samples one WAV file can hold: the RIFF size fields are 32-bit (about 12.4 hours at 48 kHz mono
/// 16-bit). Samples past it are dropped and counted.
pub const MAX_RECORDED_SAMPLES: u64 = (u32::MAX as u64 - 64) / 2;

/// Buffer between the recorder and the file: about 0.7 s of audio, so the file sees one 64 KiB `write` every
/// 34 frames rather than small writes every frame.
const RECORDER_BUFFER: usize = 64 * 1024;

/// Records to a WAV file: 48 kHz, mono, 16-bit PCM.
///
/// Samples go through a 64 KiB [`BufWriter`], so a frame costs a copy and, every ~0.7 s, one write to the
/// file (a page-cache copy on a local disk; the recorder cannot promise more than the file system does). Call
/// [`WavRecorder::finish`] to write the final header sizes and see any error; a recorder dropped without it
/// still patches the header, silently. [`WavRecorder::flush`] updates the header mid-recording (crash safety),
/// at the cost of two seeks: call it from a timer, not per frame.
///
/// `write` cannot fail: the first I/O error is kept (see [`WavRecorder::error`]), and every sample from then
/// on is dropped and counted, as are samples past [`MAX_RECORDED_SAMPLES`].
pub struct WavRecorder<W: Write + Seek = BufWriter<File>> {
    writer: Option<hound::WavWriter<W>>,
    written: u64,
    dropped: u64,
    error: Option<WavError>,
}

impl<W: Write + Seek> std::fmt::Debug for WavRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("written", &self.written)
            .field("dropped", &self.dropped)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl WavRecorder<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes a provisional header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, WavError> {
        let file = File::create(path)?;
        Self::new(BufWriter::with_capacity(RECORDER_BUFFER, file))
    }
}

impl<W: Write + Seek> WavRecorder<W> {
    /// Records into `writer` (for example a `&mut std::io::Cursor<Vec<u8>>`), writing a provisional header now.
    /// Wrap unbuffered writers in a [`BufWriter`].
    pub fn new(writer: W) -> Result<Self, WavError> {
        let writer = hound::WavWriter::new(writer, wav::recorder_spec())?;
        Ok(WavRecorder { writer: Some(writer), written: 0, dropped: 0, error: None })
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// Samples dropped after an error or past [`MAX_RECORDED_SAMPLES`].
    pub fn samples_dropped(&self) -> u64 {
        self.dropped
    }

    /// The duration recorded so far.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.written as f64 / f64::from(SAMPLE_RATE))
    }

    /// The first error met while writing, if any (recording stopped there).
    pub fn error(&self) -> Option<&WavError> {
        self.error.as_ref()
    }

    /// Writes the header's current sizes and flushes the buffer, so the file is valid as it stands.
    pub fn flush(&mut self) -> Result<(), WavError> {
        match self.writer.as_mut() {
            Some(w) => w.flush().map_err(WavError::from),
            None => Ok(()),
        }
    }

    /// Finalises the header and flushes. Returns the samples written, or the first error met while recording
    /// or finalising.
    pub fn finish(mut self) -> Result<u64, WavError> {
        let finalized = match self.writer.take() {
            Some(w) => w.finalize().map_err(WavError::from),
            None => Ok(()),
        };
        match self.error.take() {
            Some(e) => Err(e),
            None => finalized.map(|()| self.written),
        }
    }
}

impl<W: Write + Seek + Send> AudioSink for WavRecorder<W> {
    fn write(&mut self, frame: &[i16]) {
        let Some(writer) = self.writer.as_mut() else {
            self.dropped += frame.len() as u64;
            return;
        };
        let before = self.written;
        let room = MAX_RECORDED_SAMPLES.saturating_sub(self.written);
        let take = frame.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        for &s in &frame[..take] {
            if let Err(e) = writer.write_sample(s) {
                self.error = Some(e.into());
                // Stop here; the partial header patch on drop is all we can still do.
                self.writer = None;
                break;
            }
            self.written += 1;
        }
        self.dropped += frame.len() as u64 - (self.written - before);
    }
}

/// Measures the audio written to it with a [`Meter`]; read the results through [`MeterSink::meter`] or, from
/// another thread, a [`MeterHandle`].
#[derive(Debug)]
pub struct MeterSink {
    meter: Meter,
}

impl MeterSink {
    /// Wraps `meter`.
    pub fn new(meter: Meter) -> Self {
        MeterSink { meter }
    }

    /// A handle for reading the measurements from another thread.
    pub fn handle(&self) -> MeterHandle {
        self.meter.handle()
    }

    /// The meter.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The meter, mutably (to register tracked frequencies, for example).
    pub fn meter_mut(&mut self) -> &mut Meter {
        &mut self.meter
    }

    /// Unwraps the meter.
    pub fn into_inner(self) -> Meter {
        self.meter
    }
}

impl Default for MeterSink {
    fn default() -> Self {
        MeterSink::new(Meter::new())
    }
}

impl AudioSink for MeterSink {
    fn write(&mut self, frame: &[i16]) {
        self.meter.process(frame);
    }
}

/// Writes every frame to two sinks, `first` then `second`. Nest tees for more.
#[derive(Debug, Clone, Default)]
pub struct Tee<A, B> {
    /// Gets each frame first.
    pub first: A,
    /// Gets each frame second.
    pub second: B,
}

impl<A: AudioSink, B: AudioSink> Tee<A, B> {
    /// A tee feeding `first` and `second`.
    pub fn new(first: A, second: B) -> Self {
        Tee { first, second }
    }

    /// Unwraps the two sinks.
    pub fn into_inner(self) -> (A, B) {
        (self.first, self.second)
    }
}

impl<A: AudioSink, B: AudioSink> AudioSink for Tee<A, B> {
    fn write(&mut self, frame: &[i16]) {
        self.first.write(frame);
        self.second.write(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::io::source::{AudioSource, Tone, WavSource};
    use std::io::{self, Cursor, SeekFrom};
    use std::path::PathBuf;

    /// A file in the temp directory, removed on drop.
    struct TempFile(PathBuf);
    impl TempFile {
        fn new(name: &str) -> Self {
            TempFile(std::env::temp_dir().join(format!("webphone-media-{}-{name}", std::process::id())))
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Plays `source` to its end through a meter; returns the meter and the frames played.
    fn measure(source: &mut impl AudioSource) -> (Meter, usize) {
        let mut sink = MeterSink::default();
        let mut frame = [0i16; 960];
        let mut frames = 0;
        while source.read(&mut frame) {
            sink.write(&frame);
            frames += 1;
            assert!(frames < 100_000);
        }
        (sink.into_inner(), frames)
    }

    fn write_tone_file<S: hound::Sample + Copy>(
        path: &Path,
        spec: hound::WavSpec,
        freq: f64,
        amplitude: f64,
        to_sample: impl Fn(f64) -> S,
    ) {
        let mut w = hound::WavWriter::create(path, spec).expect("test file");
        for n in 0..spec.sample_rate as usize {
            let v = amplitude * (std::f64::consts::TAU * freq * n as f64 / f64::from(spec.sample_rate)).sin();
            for _ in 0..spec.channels {
                w.write_sample(to_sample(v)).expect("test write");
            }
        }
        w.finalize().expect("test finalize");
    }

    #[test]
    fn recorded_tone_reads_back_bit_exact_and_is_found_by_the_meter() {
        let file = TempFile::new("roundtrip.wav");
        let mut recorder = WavRecorder::create(&file.0).expect("create");
        let mut tone = Tone::new(1000.0, -6.0);
        let mut frame = [0i16; 960];
        let mut written = Vec::new();
        for _ in 0..50 {
            tone.read(&mut frame);
            recorder.write(&frame);
            written.extend_from_slice(&frame);
        }
        assert_eq!(recorder.duration(), Duration::from_secs(1));
        assert_eq!(recorder.finish().expect("finish"), 48_000);

        let mut source = WavSource::open(&file.0).expect("open");
        let info = *source.info().unwrap_or_else(|| unreachable!());
        assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (48_000, 1, 16));
        assert_eq!(source.samples(), &written[..]);
        let (meter, frames) = measure(&mut source);
        assert_eq!(frames, 50);
        let d = meter.dominant_hz().unwrap_or(0.0);
        assert!((d - 1000.0).abs() <= 5.0, "{d}");
        assert!(meter.tone_present(1000.0, -10.0));
        assert!((meter.tone_level_dbfs(1000.0) + 9.03).abs() < 0.1);
    }

    #[test]
    fn stereo_8k_16bit_file_plays_as_48k_mono_with_the_tone() {
        let file = TempFile::new("stereo8k.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_tone_file(&file.0, spec, 440.0, 0.5, |v| (v * 32767.0).round() as i16);
        let mut source = WavSource::open(&file.0).expect("open");
        let info = *source.info().unwrap_or_else(|| unreachable!());
        assert_eq!((info.sample_rate, info.channels, info.frames_decoded), (8_000, 2, 8_000));
        assert_eq!(source.samples().len(), 48_000);
        let (meter, frames) = measure(&mut source);
        assert_eq!(frames, 50);
        let d = meter.dominant_hz().unwrap_or(0.0);
        assert!((d - 440.0).abs() <= 5.0, "{d}");
        // Amplitude 0.5 is −6 dBFS peak, −9 dBFS RMS; the resampler's passband keeps it.
        assert!((meter.tone_level_dbfs(440.0) + 9.03).abs() < 0.2, "{}", meter.tone_level_dbfs(440.0));
        assert!(meter.tone_present(440.0, -12.0));
        assert!(!meter.tone_present(880.0, -60.0));
    }

    #[test]
    fn float_44k1_file_plays_as_48k_mono_with_the_tone() {
        let file = TempFile::new("float44k1.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write_tone_file(&file.0, spec, 3000.0, 0.25, |v| v as f32);
        let mut source = WavSource::open(&file.0).expect("open");
        let info = *source.info().unwrap_or_else(|| unreachable!());
        assert_eq!(info.sample_kind, crate::media::io::wav::SampleKind::Float);
        assert_eq!(source.samples().len(), 48_000);
        let (meter, _) = measure(&mut source);
        let d = meter.dominant_hz().unwrap_or(0.0);
        assert!((d - 3000.0).abs() <= 5.0, "{d}");
        assert!((meter.tone_level_dbfs(3000.0) + 15.05).abs() < 0.2, "{}", meter.tone_level_dbfs(3000.0));
    }

    #[test]
    fn recorder_dropped_without_finish_still_leaves_a_valid_file() {
        let file = TempFile::new("dropped.wav");
        {
            let mut recorder = WavRecorder::create(&file.0).expect("create");
            for _ in 0..10 {
                recorder.write(&[1234; 960]);
            }
        }
        let source = WavSource::open(&file.0).expect("open");
        assert_eq!(source.samples().len(), 9600);
        assert!(source.samples().iter().all(|&s| s == 1234));
    }

    #[test]
    fn recorder_into_memory_and_mid_recording_flush() {
        let mut cursor = Cursor::new(Vec::new());
        let mut recorder = WavRecorder::new(&mut cursor).expect("new");
        recorder.write(&[7; 960]);
        recorder.flush().expect("flush");
        recorder.write(&[8; 480]);
        assert_eq!(recorder.finish().expect("finish"), 1440);
        let source = WavSource::from_reader(Cursor::new(cursor.into_inner())).expect("decode");
        assert_eq!(source.samples().len(), 1440);
        assert_eq!(source.samples()[1439], 8);
    }

    /// A writer that fails once `limit` bytes have been written.
    struct Failing {
        inner: Cursor<Vec<u8>>,
        limit: u64,
    }
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.inner.position() + buf.len() as u64 > self.limit {
                return Err(io::Error::other("disk full"));
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for Failing {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn recorder_keeps_the_first_error_and_counts_what_it_drops() {
        // Unbuffered, so the failure shows up inside `write`.
        let mut recorder =
            WavRecorder::new(Failing { inner: Cursor::new(Vec::new()), limit: 44 + 1000 }).expect("header fits");
        for _ in 0..3 {
            recorder.write(&[1; 960]);
        }
        assert_eq!(recorder.samples_written(), 500);
        assert_eq!(recorder.samples_dropped(), 3 * 960 - 500);
        assert!(matches!(recorder.error(), Some(WavError::Io(_))));
        assert!(matches!(recorder.finish(), Err(WavError::Io(_))));
    }

    #[test]
    fn tee_feeds_both_sinks() {
        let mut tee = Tee::new(MeterSink::default(), Tee::new(NullSink::new(), NullSink::new()));
        let handle = tee.first.handle();
        let mut tone = Tone::new(880.0, -3.0);
        let mut frame = [0i16; 960];
        let mut sinks: Vec<Box<dyn AudioSink>> = vec![Box::new(NullSink::new())];
        for _ in 0..20 {
            tone.read(&mut frame);
            tee.write(&frame);
            sinks[0].write(&frame);
        }
        let (meter, nulls) = tee.into_inner();
        assert_eq!(meter.meter().frames_analysed(), 20);
        assert_eq!(handle.frames_analysed(), 20);
        assert_eq!((nulls.first.frames(), nulls.second.samples()), (20, 20 * 960));
        assert!((meter.meter().dominant_hz().unwrap_or(0.0) - 880.0).abs() < 1.0);
    }
}
