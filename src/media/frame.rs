//! The frame every part of the audio path works in: 48 kHz mono, 10 or
//! 20 ms.

use std::time::Duration;

/// The internal sample rate of all PCM audio, in Hz.
pub const SAMPLE_RATE: u32 = 48_000;

/// The largest number of samples in one internal frame (20 ms at 48 kHz).
pub const MAX_FRAME_SAMPLES: usize = FrameDuration::Ms20.samples();

/// The duration of one audio frame (one RTP packet's worth of audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameDuration {
    /// 10 ms frames (480 samples at 48 kHz).
    Ms10,
    /// 20 ms frames (960 samples at 48 kHz), the usual RTP packetization time.
    #[default]
    Ms20,
}

impl FrameDuration {
    /// Samples in one frame at the internal rate of [`SAMPLE_RATE`] (48 kHz).
    pub const fn samples(self) -> usize {
        self.samples_at(SAMPLE_RATE)
    }

    /// Samples in one frame at `rate_hz` (e.g. 160 for 20 ms at 8 kHz).
    pub const fn samples_at(self, rate_hz: u32) -> usize {
        rate_hz as usize * self.millis() as usize / 1000
    }

    /// The frame duration in milliseconds.
    pub const fn millis(self) -> u32 {
        match self {
            FrameDuration::Ms10 => 10,
            FrameDuration::Ms20 => 20,
        }
    }

    /// The frame duration as a [`std::time::Duration`].
    pub const fn duration(self) -> Duration {
        Duration::from_millis(self.millis() as u64)
    }
}
