//! Call recording to a WAV file: both directions of a call, as stereo
//! (what we send on the left, what we hear on the right) or mixed to mono,
//! 48 kHz 16-bit. "What we send" is each frame as encoded (mute and
//! in-band DTMF applied; while an RFC 4733 digit replaces the audio, the
//! audio it replaced); "what we hear" is each frame as played (volume and
//! mute applied).
//!
//! The audio task hands each frame to a [`Recorder`], which queues it in a
//! bounded channel for a writer thread and never waits: when the channel is
//! full (a disk slower than real time), the frame is dropped and counted.
//! The writer pairs the two directions frame by frame; a direction that
//! stops (no media received, on hold) is filled with silence once the other
//! is [`MAX_LAG`] frames ahead. The file is complete when the recorder is
//! dropped and the writer has finished: `on_done` is called then (or when
//! the file could not be created).

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::media::frame::SAMPLE_RATE;

/// How a recording lays out the call's two directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordChannels {
    /// Two channels: what we send on the left, what we hear on the right.
    #[default]
    Stereo,
    /// One channel: both directions summed.
    Mixed,
}

/// Frames the channel to the writer holds (about 2 s of 20 ms frames).
const QUEUE_FRAMES: usize = 100;

/// How far one direction may run ahead of the other before the other is
/// taken as silent (1 s of 20 ms frames).
pub(crate) const MAX_LAG: usize = 50;

/// A frame of one direction.
enum Frame {
    Local(Box<[i16]>),
    Remote(Box<[i16]>),
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordingDone {
    /// The file.
    pub(crate) path: PathBuf,
    /// What went wrong writing it, if anything.
    pub(crate) error: Option<String>,
}

/// The audio task's end of a recording.
pub(crate) struct Recorder {
    frames: mpsc::SyncSender<Frame>,
    /// Buffers the writer is done with, to carry the next frames: once the
    /// recording runs, the audio task allocates nothing per frame.
    spare: mpsc::Receiver<Box<[i16]>>,
    dropped: u64,
}

impl Recorder {
    /// Starts a recording into `path`: its writer thread creates the file
    /// (the audio task does no file I/O) and calls `on_done` when the file
    /// is complete, or could not be written.
    pub(crate) fn start(
        path: &Path,
        channels: RecordChannels,
        on_done: impl FnOnce(RecordingDone) + Send + 'static,
    ) -> Result<Recorder, String> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_FRAMES);
        let (spare_tx, spare) = mpsc::sync_channel(2 * QUEUE_FRAMES);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("webphone-recording".into())
            .spawn(move || on_done(write(rx, &spare_tx, channels, path)))
            .map_err(|e| format!("recording: cannot start its writer: {e}"))?;
        Ok(Recorder { frames: tx, spare, dropped: 0 })
    }

    /// A frame we sent.
    pub(crate) fn local(&mut self, pcm: &[i16]) {
        let frame = Frame::Local(self.buffer_of(pcm));
        self.push(frame);
    }

    /// A frame we played.
    pub(crate) fn remote(&mut self, pcm: &[i16]) {
        let frame = Frame::Remote(self.buffer_of(pcm));
        self.push(frame);
    }

    /// `pcm` in a spare buffer of its length, or a new one.
    fn buffer_of(&mut self, pcm: &[i16]) -> Box<[i16]> {
        match self.spare.try_recv() {
            Ok(mut buf) if buf.len() == pcm.len() => {
                buf.copy_from_slice(pcm);
                buf
            }
            _ => pcm.into(),
        }
    }

    fn push(&mut self, frame: Frame) {
        if self.frames.try_send(frame).is_err() {
            self.dropped += 1;
        }
    }

    /// Frames dropped because the writer was behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The writer thread: creates the file, then pairs and writes frames
/// until the recorder is gone, handing written buffers back as `spare`.
fn write(
    rx: mpsc::Receiver<Frame>,
    spare: &mpsc::SyncSender<Box<[i16]>>,
    channels: RecordChannels,
    path: PathBuf,
) -> RecordingDone {
    let spec = hound::WavSpec {
        channels: match channels {
            RecordChannels::Stereo => 2,
            RecordChannels::Mixed => 1,
        },
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = match hound::WavWriter::create(&path, spec) {
        Ok(wav) => wav,
        Err(e) => {
            let error = Some(format!("{}: {e}", path.display()));
            return RecordingDone { path, error };
        }
    };
    let mut pairs = Pairing::default();
    let mut error = None;
    let out = |local: &[i16], remote: &[i16], wav: &mut hound::WavWriter<BufWriter<File>>| {
        let n = local.len().max(remote.len());
        let at = |s: &[i16], i: usize| s.get(i).copied().unwrap_or(0);
        (0..n).try_for_each(|i| match channels {
            RecordChannels::Stereo => wav.write_sample(at(local, i)).and_then(|()| wav.write_sample(at(remote, i))),
            RecordChannels::Mixed => wav.write_sample(at(local, i).saturating_add(at(remote, i))),
        })
    };
    for frame in rx {
        pairs.push(frame);
        while let Some((local, remote)) = pairs.next(false) {
            if let Err(e) = out(&local, &remote, &mut wav) {
                error.get_or_insert(e.to_string());
            }
            // A full queue of spares drops them: the recorder has enough.
            let _ = spare.try_send(local);
            let _ = spare.try_send(remote);
        }
    }
    while let Some((local, remote)) = pairs.next(true) {
        if let Err(e) = out(&local, &remote, &mut wav) {
            error.get_or_insert(e.to_string());
        }
    }
    if let Err(e) = wav.finalize() {
        error.get_or_insert(e.to_string());
    }
    RecordingDone { path, error }
}

/// One frame of each direction (ours, theirs), written side by side.
type Pair = (Box<[i16]>, Box<[i16]>);

/// Frames of both directions waiting for their counterpart.
#[derive(Default)]
struct Pairing {
    local: VecDeque<Box<[i16]>>,
    remote: VecDeque<Box<[i16]>>,
}

impl Pairing {
    fn push(&mut self, frame: Frame) {
        match frame {
            Frame::Local(pcm) => self.local.push_back(pcm),
            Frame::Remote(pcm) => self.remote.push_back(pcm),
        }
    }

    /// The next pair to write: both directions' next frames; or, once one
    /// direction is [`MAX_LAG`] frames ahead (or at the end, `flush`), its
    /// frame with silence for the other.
    fn next(&mut self, flush: bool) -> Option<Pair> {
        let silence = |other: &[i16]| vec![0; other.len()].into_boxed_slice();
        if !self.local.is_empty() && !self.remote.is_empty() {
            return self.local.pop_front().zip(self.remote.pop_front());
        }
        let limit = if flush { 1 } else { MAX_LAG + 1 };
        if self.local.len() >= limit {
            let local = self.local.pop_front()?;
            let quiet = silence(&local);
            return Some((local, quiet));
        }
        if self.remote.len() >= limit {
            let remote = self.remote.pop_front()?;
            return Some((silence(&remote), remote));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_wav(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("webphone-rec-{name}-{}.wav", std::process::id()))
    }

    fn record(
        channels: RecordChannels,
        name: &str,
        feed: impl FnOnce(&mut Recorder),
    ) -> (RecordingDone, Vec<i16>, u16) {
        let path = temp_wav(name);
        let (tx, rx) = mpsc::channel();
        let mut recorder = Recorder::start(&path, channels, move |done| tx.send(done).unwrap()).unwrap();
        feed(&mut recorder);
        assert_eq!(recorder.dropped(), 0);
        drop(recorder);
        let done = rx.recv().unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!((spec.sample_rate, spec.bits_per_sample), (48_000, 16));
        let samples = reader.samples::<i16>().map(Result::unwrap).collect();
        let _ = std::fs::remove_file(&path);
        (done, samples, spec.channels)
    }

    #[test]
    fn stereo_puts_what_we_send_left_and_what_we_hear_right() {
        let (done, samples, channels) = record(RecordChannels::Stereo, "stereo", |r| {
            r.local(&[1, 2, 3]);
            r.remote(&[-1, -2, -3]);
            r.remote(&[-4, -5, -6]);
            r.local(&[4, 5, 6]);
            // The far end went quiet: our last frame is paired with silence at the end.
            r.local(&[7, 8, 9]);
        });
        assert_eq!((channels, done.error), (2, None));
        assert_eq!(samples, [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, 0, 8, 0, 9, 0]);
    }

    #[test]
    fn mixed_sums_both_directions_into_one_channel() {
        let (done, samples, channels) = record(RecordChannels::Mixed, "mixed", |r| {
            r.local(&[100, i16::MAX, -5]);
            r.remote(&[10, 1, -5]);
        });
        assert_eq!((channels, done.error), (1, None));
        assert_eq!(samples, [110, i16::MAX, -10], "saturating, not wrapping");
    }

    #[test]
    fn a_direction_that_stops_is_filled_with_silence_once_the_other_is_far_ahead() {
        let mut p = Pairing::default();
        for i in 0..MAX_LAG as i16 {
            p.push(Frame::Local(vec![i].into()));
            assert!(p.next(false).is_none(), "waits for the remote frame");
        }
        p.push(Frame::Local(vec![99].into()));
        assert_eq!(p.next(false), Some((vec![0].into(), vec![0].into())), "the oldest, with silence");
        p.push(Frame::Remote(vec![-1].into()));
        assert_eq!(p.next(false), Some((vec![1].into(), vec![-1].into())), "paired again when it comes back");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // A writer that never reads: every frame past the queue is dropped.
        let (tx, _rx) = mpsc::sync_channel(QUEUE_FRAMES);
        let (_spare_tx, spare) = mpsc::sync_channel(1);
        let mut recorder = Recorder { frames: tx, spare, dropped: 0 };
        for _ in 0..QUEUE_FRAMES + 7 {
            recorder.local(&[0; 960]);
        }
        assert_eq!(recorder.dropped(), 7);
    }

    #[test]
    fn a_file_that_cannot_be_created_is_reported_when_done() {
        let (tx, rx) = mpsc::channel();
        let path = Path::new("/nonexistent-dir/x.wav");
        let mut recorder = Recorder::start(path, RecordChannels::Stereo, move |d| tx.send(d).unwrap()).unwrap();
        let done = rx.recv().unwrap();
        assert!(done.error.is_some_and(|e| e.contains("/nonexistent-dir/x.wav")));
        // Frames to a writer that gave up are dropped and counted, never waited for.
        recorder.local(&[0; 960]);
        assert_eq!(recorder.dropped(), 1);
    }
}
