//! PCM exchange between the audio clock and application code on other threads or tasks.
//!
//! This module owns the two bounded channels between a call's pipeline and the application:
//!
//! - [`app_source_channel`]: the application pushes PCM of any length with [`AppSourceWriter::push`]
//!   (non-blocking; what does not fit is dropped and counted); the pipeline reads exactly one frame per tick from
//!   the [`AppSource`] (an [`AudioSource`]), padded with silence on underrun (counted). When the writer is
//!   dropped, the source plays what is left and then ends.
//! - [`app_sink_channel`]: the pipeline writes frames into the [`AppSink`] (an [`AudioSink`]; never blocks, on
//!   overflow the *oldest* samples are overwritten and counted, so the application always gets the most recent
//!   audio); the application reads with [`AppSinkReader::read`] (non-blocking) or awaits whole frames with
//!   [`AppSinkReader::recv_frame`].
//!
//! # Why a lock-free ring
//!
//! Both channels are single-producer single-consumer rings over a preallocated `Box<[AtomicI16]>` with two
//! monotonically increasing indices, written without `unsafe`: per-sample `Relaxed` atomic loads and stores
//! compile to plain moves, and acquire/release on the indices orders them. Neither side ever waits for the
//! other, whatever the other is doing (preempted, holding nothing, blocked in the runtime): a
//! `Mutex<VecDeque>` with `try_lock` would also never block the audio side, but a reader preempted while
//! holding the lock would make the audio side drop or underrun whole frames, and it costs a lock per call.
//!
//! Dropping the *oldest* samples (sink channel) means the producer must advance the consumer's index. It does so
//! with a compare-and-swap, then a release fence, then the overwriting stores; the consumer copies, issues an
//! acquire fence and commits its read with a compare-and-swap on the same index. If the producer overwrote
//! anything the consumer copied, the fences make that index change visible to the consumer's CAS, which fails,
//! and the consumer retries on fresh data (the seqlock argument). Both sides are lock-free; the audio side
//! retries at most while the reader is concurrently committing reads, which only makes room.
//!
//! # Wake-ups
//!
//! [`AppSinkReader::recv_frame`] parks on a [`tokio::sync::Notify`] that [`AppSink::write`] signals after each
//! frame. With no task waiting that is one atomic compare-and-swap on the audio thread; with a task waiting it
//! also takes Notify's short internal lock and wakes the task through its runtime. Applications that only poll
//! [`AppSinkReader::read`] never pay the latter.
//!
//! # Example
//!
//! ```
//! use webphone::media::io::app_channel::{app_sink_channel, app_source_channel};
//! use webphone::media::io::sink::AudioSink;
//! use webphone::media::io::source::AudioSource;
//!
//! // Application to call: push any length, the pipeline reads 20 ms frames.
//! let (mut to_call, mut source) = app_source_channel(50);
//! assert_eq!(to_call.push(&[100; 1500]), 1500);
//! let mut frame = [0i16; 960];
//! assert!(source.read(&mut frame)); // 960 samples of audio
//! assert!(source.read(&mut frame)); // the other 540, then silence: an underrun
//! assert_eq!(source.stats().underrun_frames, 1);
//!
//! // Call to application.
//! let (mut sink, mut from_call) = app_sink_channel(50);
//! sink.write(&frame);
//! let mut buf = [0i16; 2048];
//! assert_eq!(from_call.read(&mut buf), 960);
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicU64, AtomicUsize, Ordering, fence};

use tokio::sync::Notify;

use crate::media::frame::FrameDuration;
use crate::media::io::sink::AudioSink;
use crate::media::io::source::AudioSource;

/// A single-producer single-consumer ring of `i16` samples.
///
/// `head` counts samples consumed and `tail` samples produced; both only grow (wrapping), and
/// `tail - head` is the number of buffered samples (at most the capacity once both are read consistently).
struct Ring {
    slots: Box<[AtomicI16]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

impl Ring {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Ring {
            slots: (0..capacity).map(|_| AtomicI16::new(0)).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Buffered samples (a snapshot; exact when called from either end with the other idle).
    fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    /// Stores `data` (at most the capacity) into the slots for positions `start..start + data.len()`.
    fn store(&self, start: usize, data: &[i16]) {
        let at = start % self.capacity();
        let first = data.len().min(self.capacity() - at);
        for (slot, &s) in self.slots[at..at + first].iter().zip(&data[..first]) {
            slot.store(s, Ordering::Relaxed);
        }
        for (slot, &s) in self.slots.iter().zip(&data[first..]) {
            slot.store(s, Ordering::Relaxed);
        }
    }

    /// Loads the slots for positions `start..start + out.len()` (at most the capacity) into `out`.
    fn load(&self, start: usize, out: &mut [i16]) {
        let at = start % self.capacity();
        let first = out.len().min(self.capacity() - at);
        let (a, b) = out.split_at_mut(first);
        for (o, slot) in a.iter_mut().zip(&self.slots[at..at + first]) {
            *o = slot.load(Ordering::Relaxed);
        }
        for (o, slot) in b.iter_mut().zip(self.slots.iter()) {
            *o = slot.load(Ordering::Relaxed);
        }
    }

    /// Producer: appends as much of `data` as fits; returns how much was accepted (the rest is not stored).
    fn push_newest_dropped(&self, data: &[i16]) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let free = self.capacity().saturating_sub(tail.wrapping_sub(head));
        let n = free.min(data.len());
        self.store(tail, &data[..n]);
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
        n
    }

    /// Producer: appends all of `data`, discarding the oldest buffered samples (and, if `data` is longer than the
    /// ring, its own beginning) to make room; returns how many samples were discarded.
    fn push_oldest_dropped(&self, data: &[i16]) -> usize {
        let cap = self.capacity();
        let mut dropped = data.len().saturating_sub(cap);
        let data = &data[dropped..];
        let tail = self.tail.load(Ordering::Relaxed);
        loop {
            let head = self.head.load(Ordering::Acquire);
            let used = tail.wrapping_sub(head);
            let free = cap.saturating_sub(used);
            if free >= data.len() {
                break;
            }
            let need = data.len() - free;
            match self.head.compare_exchange(head, head.wrapping_add(need), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    dropped += need;
                    break;
                }
                // The consumer moved `head`: re-evaluate (it only ever makes room).
                Err(_) => continue,
            }
        }
        // Orders the `head` update above before the stores below, for the consumer's overwrite check.
        fence(Ordering::Release);
        self.store(tail, data);
        self.tail.store(tail.wrapping_add(data.len()), Ordering::Release);
        dropped
    }

    /// Consumer: moves up to `out.len()` of the oldest samples into `out`; returns how many.
    fn pop(&self, out: &mut [i16]) -> usize {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let tail = self.tail.load(Ordering::Acquire);
            let available = tail.wrapping_sub(head);
            if available > self.capacity() {
                // `head` was read before an overwrite that `tail` already shows: read both again.
                std::hint::spin_loop();
                continue;
            }
            let n = available.min(out.len());
            if n == 0 {
                return 0;
            }
            self.load(head, &mut out[..n]);
            // Pairs with the producer's release fence: if we copied anything it overwrote, the CAS sees its
            // `head` update and fails.
            fence(Ordering::Acquire);
            if self.head.compare_exchange(head, head.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return n;
            }
        }
    }
}

/// Counters of an [`app_source_channel`], cumulative since creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppSourceStats {
    /// Samples accepted by [`AppSourceWriter::push`].
    pub pushed_samples: u64,
    /// Samples [`AppSourceWriter::push`] dropped because the ring was full.
    pub dropped_samples: u64,
    /// Frames read by the pipeline.
    pub frames_read: u64,
    /// Frames the ring could not fill completely (including while the application pushed nothing), padded with
    /// silence.
    pub underrun_frames: u64,
    /// Samples of silence inserted by those underruns.
    pub silence_samples: u64,
}

/// Counters of an [`app_sink_channel`], cumulative since creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppSinkStats {
    /// Frames written by the pipeline.
    pub frames_written: u64,
    /// Samples written by the pipeline.
    pub written_samples: u64,
    /// Samples discarded, oldest first, because the application did not read them in time.
    pub dropped_samples: u64,
    /// Samples the application read.
    pub read_samples: u64,
}

struct SourceShared {
    ring: Ring,
    writer_closed: AtomicBool,
    reader_closed: AtomicBool,
    pushed: AtomicU64,
    dropped: AtomicU64,
    frames: AtomicU64,
    underruns: AtomicU64,
    silence: AtomicU64,
}

impl SourceShared {
    fn stats(&self) -> AppSourceStats {
        AppSourceStats {
            pushed_samples: self.pushed.load(Ordering::Relaxed),
            dropped_samples: self.dropped.load(Ordering::Relaxed),
            frames_read: self.frames.load(Ordering::Relaxed),
            underrun_frames: self.underruns.load(Ordering::Relaxed),
            silence_samples: self.silence.load(Ordering::Relaxed),
        }
    }
}

/// Creates a channel from the application to the pipeline holding `capacity_frames` 20 ms frames (at least one).
pub fn app_source_channel(capacity_frames: usize) -> (AppSourceWriter, AppSource) {
    app_source_channel_with_capacity(capacity_frames.max(1).saturating_mul(FrameDuration::Ms20.samples()))
}

/// Creates a channel from the application to the pipeline holding `capacity_samples` samples (at least one).
pub fn app_source_channel_with_capacity(capacity_samples: usize) -> (AppSourceWriter, AppSource) {
    let shared = Arc::new(SourceShared {
        ring: Ring::new(capacity_samples),
        writer_closed: AtomicBool::new(false),
        reader_closed: AtomicBool::new(false),
        pushed: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        underruns: AtomicU64::new(0),
        silence: AtomicU64::new(0),
    });
    (AppSourceWriter { shared: Arc::clone(&shared) }, AppSource { shared })
}

/// The application's end of an [`app_source_channel`]: pushes 48 kHz mono PCM for the pipeline to play.
///
/// Pushing never blocks. Pace the pushes to real time (or watch [`AppSourceWriter::free`]) to avoid drops;
/// dropping the writer lets the [`AppSource`] drain what is buffered and then end.
pub struct AppSourceWriter {
    shared: Arc<SourceShared>,
}

impl fmt::Debug for AppSourceWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSourceWriter").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl AppSourceWriter {
    /// Appends as much of `pcm` as fits and returns how many samples were accepted; the rest is dropped and
    /// counted in [`AppSourceStats::dropped_samples`].
    pub fn push(&mut self, pcm: &[i16]) -> usize {
        let accepted = self.shared.ring.push_newest_dropped(pcm);
        self.shared.pushed.fetch_add(accepted as u64, Ordering::Relaxed);
        let dropped = pcm.len() - accepted;
        if dropped > 0 {
            self.shared.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        accepted
    }

    /// Samples that [`AppSourceWriter::push`] would accept now.
    pub fn free(&self) -> usize {
        self.shared.ring.capacity() - self.shared.ring.len()
    }

    /// Samples buffered and not yet played.
    pub fn buffered(&self) -> usize {
        self.shared.ring.len()
    }

    /// The ring's capacity in samples.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity()
    }

    /// The channel's counters.
    pub fn stats(&self) -> AppSourceStats {
        self.shared.stats()
    }

    /// True once the [`AppSource`] has been dropped (nothing will play what is pushed).
    pub fn is_closed(&self) -> bool {
        self.shared.reader_closed.load(Ordering::Acquire)
    }
}

impl Drop for AppSourceWriter {
    fn drop(&mut self) {
        self.shared.writer_closed.store(true, Ordering::Release);
    }
}

/// The pipeline's end of an [`app_source_channel`]: an [`AudioSource`] playing what the application pushed.
///
/// Each `read` takes up to one frame from the ring and pads the rest with silence, counting an underrun when it
/// had to pad. It returns false once the writer is dropped and the ring is empty.
pub struct AppSource {
    shared: Arc<SourceShared>,
}

impl fmt::Debug for AppSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSource").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl AppSource {
    /// Samples buffered and not yet played.
    pub fn buffered(&self) -> usize {
        self.shared.ring.len()
    }

    /// The channel's counters.
    pub fn stats(&self) -> AppSourceStats {
        self.shared.stats()
    }
}

impl AudioSource for AppSource {
    fn read(&mut self, out: &mut [i16]) -> bool {
        // Read the flag first: if the writer had closed before we looked at the ring, a short read is the end.
        let closed = self.shared.writer_closed.load(Ordering::Acquire);
        let n = self.shared.ring.pop(out);
        out[n..].fill(0);
        if closed && n == 0 {
            return false;
        }
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        if n < out.len() && !closed {
            self.shared.underruns.fetch_add(1, Ordering::Relaxed);
            self.shared.silence.fetch_add((out.len() - n) as u64, Ordering::Relaxed);
        }
        true
    }
}

impl Drop for AppSource {
    fn drop(&mut self) {
        self.shared.reader_closed.store(true, Ordering::Release);
    }
}

struct SinkShared {
    ring: Ring,
    notify: Notify,
    writer_closed: AtomicBool,
    reader_closed: AtomicBool,
    frames: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    read: AtomicU64,
}

impl SinkShared {
    fn stats(&self) -> AppSinkStats {
        AppSinkStats {
            frames_written: self.frames.load(Ordering::Relaxed),
            written_samples: self.written.load(Ordering::Relaxed),
            dropped_samples: self.dropped.load(Ordering::Relaxed),
            read_samples: self.read.load(Ordering::Relaxed),
        }
    }
}

/// Creates a channel from the pipeline to the application holding `capacity_frames` 20 ms frames (at least one).
pub fn app_sink_channel(capacity_frames: usize) -> (AppSink, AppSinkReader) {
    app_sink_channel_with_capacity(capacity_frames.max(1).saturating_mul(FrameDuration::Ms20.samples()))
}

/// Creates a channel from the pipeline to the application holding `capacity_samples` samples (at least one).
pub fn app_sink_channel_with_capacity(capacity_samples: usize) -> (AppSink, AppSinkReader) {
    let shared = Arc::new(SinkShared {
        ring: Ring::new(capacity_samples),
        notify: Notify::new(),
        writer_closed: AtomicBool::new(false),
        reader_closed: AtomicBool::new(false),
        frames: AtomicU64::new(0),
        written: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        read: AtomicU64::new(0),
    });
    (AppSink { shared: Arc::clone(&shared) }, AppSinkReader { shared })
}

/// The pipeline's end of an [`app_sink_channel`]: an [`AudioSink`] handing frames to the application.
///
/// `write` never blocks: when the application lags, the oldest buffered samples are overwritten and counted in
/// [`AppSinkStats::dropped_samples`]. Dropping the sink ends the reader's stream.
pub struct AppSink {
    shared: Arc<SinkShared>,
}

impl fmt::Debug for AppSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSink").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl AppSink {
    /// The channel's counters.
    pub fn stats(&self) -> AppSinkStats {
        self.shared.stats()
    }

    /// True once the [`AppSinkReader`] has been dropped (frames written now go nowhere).
    pub fn is_closed(&self) -> bool {
        self.shared.reader_closed.load(Ordering::Acquire)
    }
}

impl AudioSink for AppSink {
    fn write(&mut self, frame: &[i16]) {
        let dropped = self.shared.ring.push_oldest_dropped(frame);
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        self.shared.written.fetch_add(frame.len() as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.shared.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        self.shared.notify.notify_one();
    }
}

impl Drop for AppSink {
    fn drop(&mut self) {
        self.shared.writer_closed.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }
}

/// The application's end of an [`app_sink_channel`]: reads the 48 kHz mono PCM the pipeline wrote.
pub struct AppSinkReader {
    shared: Arc<SinkShared>,
}

impl fmt::Debug for AppSinkReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSinkReader").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl AppSinkReader {
    /// Moves up to `out.len()` of the oldest buffered samples into `out` and returns how many; never blocks.
    pub fn read(&mut self, out: &mut [i16]) -> usize {
        let n = self.shared.ring.pop(out);
        self.shared.read.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Waits until `out.len()` samples are buffered (or the ring's capacity, if `out` is longer), then reads
    /// them like [`AppSinkReader::read`]. Returns fewer only once the [`AppSink`] is dropped: what was left,
    /// then 0. Cancel-safe: dropping the future loses no audio.
    pub async fn recv_frame(&mut self, out: &mut [i16]) -> usize {
        let want = out.len().min(self.shared.ring.capacity());
        loop {
            // Read the flag before the length: a sink that closed before we looked has written everything.
            let closed = self.shared.writer_closed.load(Ordering::Acquire);
            if self.shared.ring.len() >= want || closed {
                return self.read(out);
            }
            // A notification sent since our check is stored as a permit, so this cannot miss a frame.
            self.shared.notify.notified().await;
        }
    }

    /// Samples buffered and not yet read.
    pub fn available(&self) -> usize {
        self.shared.ring.len()
    }

    /// The ring's capacity in samples.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity()
    }

    /// The channel's counters.
    pub fn stats(&self) -> AppSinkStats {
        self.shared.stats()
    }

    /// True once the [`AppSink`] has been dropped; what is buffered can still be read.
    pub fn is_closed(&self) -> bool {
        self.shared.writer_closed.load(Ordering::Acquire)
    }
}

impl Drop for AppSinkReader {
    fn drop(&mut self) {
        self.shared.reader_closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::{Duration, Instant};

    /// A test pattern that never repeats within a 10 s run and never is 0 (so padding is recognisable).
    fn pattern(i: u64) -> i16 {
        ((i % 65_521) as i32 - 32_760) as i16 | 1
    }

    #[test]
    fn source_push_beyond_capacity_drops_and_counts() {
        let (mut writer, mut source) = app_source_channel(2);
        assert_eq!(writer.capacity(), 1920);
        let data: Vec<i16> = (0..2500).map(pattern).collect();
        assert_eq!(writer.push(&data), 1920);
        assert_eq!(writer.push(&data[..10]), 0);
        let stats = writer.stats();
        assert_eq!(stats.pushed_samples, 1920);
        assert_eq!(stats.dropped_samples, 580 + 10);
        assert_eq!(writer.free(), 0);
        let mut frame = [0i16; 960];
        assert!(source.read(&mut frame));
        assert_eq!(frame[..], data[..960]);
        assert_eq!(writer.free(), 960);
        assert_eq!(writer.push(&data[1920..2100]), 180);
        assert!(source.read(&mut frame));
        assert_eq!(frame[..], data[960..1920]);
        assert!(source.read(&mut frame));
        assert_eq!(frame[..180], data[1920..2100]);
        assert_eq!(source.stats().underrun_frames, 1);
    }

    #[test]
    fn source_underrun_yields_silence_and_counts() {
        let (mut writer, mut source) = app_source_channel(4);
        let mut frame = [9i16; 960];
        assert!(source.read(&mut frame), "an empty ring is an underrun, not the end");
        assert!(frame.iter().all(|&s| s == 0));
        writer.push(&[5; 100]);
        assert!(source.read(&mut frame));
        assert!(frame[..100].iter().all(|&s| s == 5));
        assert!(frame[100..].iter().all(|&s| s == 0));
        let stats = source.stats();
        assert_eq!(stats.frames_read, 2);
        assert_eq!(stats.underrun_frames, 2);
        assert_eq!(stats.silence_samples, 960 + 860);
    }

    #[test]
    fn source_ends_after_the_writer_is_dropped_and_drained() {
        let (mut writer, mut source) = app_source_channel(4);
        writer.push(&[3; 1000]);
        drop(writer);
        let mut frame = [0i16; 960];
        assert!(source.read(&mut frame));
        assert!(source.read(&mut frame), "the tail of the stream still plays");
        assert_eq!(frame[..40], [3; 40]);
        assert!(!source.read(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
        assert_eq!(source.stats().underrun_frames, 0);
        let (writer, source) = app_source_channel(1);
        drop(source);
        assert!(writer.is_closed());
    }

    #[test]
    fn sink_overflow_drops_oldest_and_counts() {
        let (mut sink, mut reader) = app_sink_channel(3);
        let frames: Vec<Vec<i16>> = (0..5).map(|f| vec![f as i16 + 1; 960]).collect();
        for f in &frames {
            sink.write(f);
        }
        let stats = reader.stats();
        assert_eq!(stats.frames_written, 5);
        assert_eq!(stats.dropped_samples, 2 * 960);
        assert_eq!(reader.available(), 3 * 960);
        let mut out = vec![0i16; 4000];
        assert_eq!(reader.read(&mut out), 2880);
        assert!(out[..960].iter().all(|&s| s == 3), "the two oldest frames were dropped");
        assert!(out[1920..2880].iter().all(|&s| s == 5));
        assert_eq!(reader.read(&mut out), 0);
        // A frame longer than the ring keeps its end.
        let long: Vec<i16> = (0..4000).map(|i| i as i16).collect();
        sink.write(&long);
        assert_eq!(reader.read(&mut out), 2880);
        assert_eq!(out[..2880], long[1120..]);
        assert_eq!(reader.stats().dropped_samples, 2 * 960 + 1120);
        assert_eq!(reader.stats().read_samples, 2 * 2880);
        drop(reader);
        assert!(sink.is_closed());
    }

    #[test]
    fn source_channel_moves_ten_seconds_across_threads_without_loss() {
        const TOTAL: u64 = 480_000;
        let (mut writer, mut source) = app_source_channel(5);
        let producer = thread::spawn(move || {
            // Odd chunk sizes, so pushes straddle frame and ring boundaries.
            let mut chunk = Vec::with_capacity(777);
            let mut next = 0u64;
            let deadline = Instant::now() + Duration::from_secs(60);
            while next < TOTAL && Instant::now() < deadline {
                chunk.clear();
                let len = (TOTAL - next).min(1 + (next * 7919 % 777)) as usize;
                chunk.extend((0..len as u64).map(|i| pattern(next + i)));
                let mut sent = 0;
                while sent < len && Instant::now() < deadline {
                    sent += writer.push(&chunk[sent..]);
                    if sent < len {
                        thread::yield_now();
                    }
                }
                next += sent as u64;
            }
            writer.stats()
        });
        // The reader keeps up: it reads a frame whenever one is buffered, so it never pads.
        let mut frame = [0i16; 960];
        let mut received = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while received < TOTAL && Instant::now() < deadline {
            if source.buffered() < frame.len() {
                thread::yield_now();
                continue;
            }
            assert!(source.read(&mut frame));
            for (i, &s) in frame.iter().enumerate() {
                assert_eq!(s, pattern(received + i as u64), "sample {}", received + i as u64);
            }
            received += frame.len() as u64;
        }
        let stats = producer.join().unwrap_or_else(|_| panic!("producer panicked"));
        assert_eq!(received, TOTAL);
        assert_eq!(stats.pushed_samples, TOTAL);
        assert_eq!(source.stats().underrun_frames, 0);
        assert_eq!(source.stats().frames_read, 500);
    }

    #[test]
    fn sink_channel_moves_ten_seconds_across_threads_without_loss() {
        const FRAMES: u64 = 500;
        let (mut sink, mut reader) = app_sink_channel(5);
        let producer = thread::spawn(move || {
            let mut frame = [0i16; 960];
            let deadline = Instant::now() + Duration::from_secs(60);
            for f in 0..FRAMES {
                for (i, s) in frame.iter_mut().enumerate() {
                    *s = pattern(f * 960 + i as u64);
                }
                // "The reader keeps up": do not run ahead of it by more than the ring holds.
                while reader_lag(&sink) > 4 * 960 && Instant::now() < deadline {
                    thread::yield_now();
                }
                sink.write(&frame);
            }
            sink.stats()
        });
        let mut buf = [0i16; 333];
        let mut received = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while received < FRAMES * 960 && Instant::now() < deadline {
            let n = reader.read(&mut buf);
            if n == 0 {
                thread::yield_now();
            }
            for (i, &s) in buf[..n].iter().enumerate() {
                assert_eq!(s, pattern(received + i as u64), "sample {}", received + i as u64);
            }
            received += n as u64;
        }
        let stats = producer.join().unwrap_or_else(|_| panic!("producer panicked"));
        assert_eq!(received, FRAMES * 960);
        assert_eq!(stats.dropped_samples, 0);
        assert_eq!(reader.stats().read_samples, FRAMES * 960);
    }

    fn reader_lag(sink: &AppSink) -> usize {
        sink.shared.ring.len()
    }

    #[test]
    fn sink_overwrite_races_never_tear() {
        // The producer never waits and the reader is slow, so samples get overwritten while the reader copies
        // them. Every successful read is one contiguous run of positions, so its samples must be consecutive
        // values of the sequence: a torn read (a slot overwritten mid-copy) would show a jump.
        let (mut sink, mut reader) = app_sink_channel_with_capacity(257);
        let producer = thread::spawn(move || {
            let mut frame = [0i16; 100];
            for f in 0..20_000u64 {
                for (i, s) in frame.iter_mut().enumerate() {
                    *s = ((f * 100 + i as u64) % 32_768) as i16;
                }
                sink.write(&frame);
            }
        });
        let mut buf = [0i16; 61];
        let mut reads = 0u64;
        let start = Instant::now();
        loop {
            let done = producer.is_finished();
            let n = reader.read(&mut buf);
            for w in buf[..n].windows(2) {
                assert_eq!((w[1] as u16).wrapping_sub(w[0] as u16) & 0x7fff, 1, "torn read: {:?}", &buf[..n]);
            }
            reads += u64::from(n > 0);
            if done && n == 0 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60));
        }
        assert!(producer.join().is_ok());
        assert!(reads > 0);
        let stats = reader.stats();
        assert_eq!(stats.written_samples, 2_000_000);
        assert!(stats.dropped_samples > 0, "the test should exercise overwrites");
        assert_eq!(stats.read_samples + stats.dropped_samples, stats.written_samples, "every sample accounted for");
    }

    #[tokio::test]
    async fn recv_frame_waits_for_whole_frames() {
        let (mut sink, mut reader) = app_sink_channel(10);
        let producer = thread::spawn(move || {
            for f in 0..20i16 {
                // Written in halves, with pauses, so the reader must wait for the second half.
                sink.write(&[f; 480]);
                thread::sleep(Duration::from_millis(2));
                sink.write(&[f; 480]);
                thread::sleep(Duration::from_millis(2));
            }
        });
        let mut frame = [0i16; 960];
        for f in 0..20i16 {
            let n = tokio::time::timeout(Duration::from_secs(10), reader.recv_frame(&mut frame))
                .await
                .unwrap_or_else(|_| panic!("timed out at frame {f}"));
            assert_eq!(n, 960);
            assert!(frame.iter().all(|&s| s == f), "frame {f}");
        }
        assert!(producer.join().is_ok());
        // The sink is gone: nothing left, and recv_frame returns at once.
        assert_eq!(reader.recv_frame(&mut frame).await, 0);
        assert!(reader.is_closed());
    }
}
