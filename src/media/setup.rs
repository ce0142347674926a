//! What a phone's calls send and receive ([`SendAudio`], [`ReceiveAudio`],
//! [`AudioSetup`]) and the media settings ([`MediaConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::media::frame::FrameDuration;
#[cfg(feature = "device")]
use crate::media::io::device;
use crate::media::io::sink::{self, AudioSink};
use crate::media::io::source::{self, AudioSource};
use crate::media::io::{AppSink, AppSource};
use crate::media::receive::{impairment, quality};
use crate::media::rtc::PeerConfig;
#[cfg(doc)]
use crate::media::{
    io::{AppSinkReader, AppSourceWriter},
    receive::playout,
    stats::CallStats,
};

/// What a call sends.
///
/// In JSON (the action vocabulary): `"silence"`,
/// `{"tone": {"frequency_hz": 440, "level_dbfs": -12}}`,
/// `{"wav_file": {"path": "prompt.wav", "looping": false}}`; application
/// channels and custom sources exist only in Rust.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SendAudio {
    /// Silence (the default).
    #[default]
    Silence,
    /// A sine tone.
    Tone {
        /// Frequency in Hz.
        frequency_hz: f64,
        /// Level in dBFS (e.g. -12.0).
        level_dbfs: f64,
    },
    /// A WAV file (any rate, mono or stereo; converted to 48 kHz mono).
    WavFile {
        /// The file.
        path: PathBuf,
        /// Start again at the end.
        looping: bool,
    },
    /// PCM the application pushes through an [`AppSourceWriter`].
    #[serde(skip)]
    App(AppSource),
    /// Any [`AudioSource`] of the application's own (a speech synthesizer, a
    /// generator); it is read once per frame on the call's audio task, so it
    /// must not block.
    #[serde(skip)]
    Custom(Box<dyn AudioSource>),
    /// A sound-card input (microphone), see [`device::DeviceSource`].
    #[cfg(feature = "device")]
    Device {
        /// The device's name or id (see [`device::list_devices`]); `None` for the system default.
        name: Option<String>,
    },
}

/// Where what a call receives goes.
///
/// In JSON: `"discard"`, `{"wav_file": "heard.wav"}`; application channels
/// and custom sinks exist only in Rust.
#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReceiveAudio {
    /// Nowhere (it is still decoded and metered for statistics).
    #[default]
    Discard,
    /// Recorded to a 48 kHz mono 16-bit WAV file.
    WavFile(PathBuf),
    /// To the application, read through an [`AppSinkReader`].
    #[serde(skip)]
    App(AppSink),
    /// Any [`AudioSink`] of the application's own; it is written once per
    /// frame on the call's audio task, so it must not block.
    #[serde(skip)]
    Custom(Box<dyn AudioSink>),
    /// To a sound-card output (speaker, headset), see [`device::DeviceSink`].
    #[cfg(feature = "device")]
    Device {
        /// The device's name or id (see [`device::list_devices`]); `None` for the system default.
        name: Option<String>,
    },
}

impl std::fmt::Debug for SendAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendAudio::Silence => f.write_str("Silence"),
            SendAudio::Tone { frequency_hz, level_dbfs } => {
                f.debug_struct("Tone").field("frequency_hz", frequency_hz).field("level_dbfs", level_dbfs).finish()
            }
            SendAudio::WavFile { path, looping } => {
                f.debug_struct("WavFile").field("path", path).field("looping", looping).finish()
            }
            SendAudio::App(s) => f.debug_tuple("App").field(s).finish(),
            SendAudio::Custom(_) => f.write_str("Custom(..)"),
            #[cfg(feature = "device")]
            SendAudio::Device { name } => f.debug_struct("Device").field("name", name).finish(),
        }
    }
}

impl std::fmt::Debug for ReceiveAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveAudio::Discard => f.write_str("Discard"),
            ReceiveAudio::WavFile(p) => f.debug_tuple("WavFile").field(p).finish(),
            ReceiveAudio::App(s) => f.debug_tuple("App").field(s).finish(),
            ReceiveAudio::Custom(_) => f.write_str("Custom(..)"),
            #[cfg(feature = "device")]
            ReceiveAudio::Device { name } => f.debug_struct("Device").field("name", name).finish(),
        }
    }
}

/// A call's audio choices.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AudioSetup {
    /// What we send.
    pub send: SendAudio,
    /// What we do with what we hear.
    pub receive: ReceiveAudio,
    /// Frequencies whose presence in the received audio is tracked
    /// (reported in [`CallStats::tracked`]); for call tests.
    pub track_frequencies: Vec<f64>,
    /// Detect DTMF tones in the received audio (a Goertzel detector on the
    /// decoded frames; its digits come as `DtmfReceived` with method
    /// `inband`). `None`: only when the peer negotiated no telephone-event.
    /// Tones are heard only as whole as the audio: with the default jitter
    /// buffer (one frame deep) a bursty sender makes it conceal or skip
    /// frames, which can cut a tone in two; a deeper buffer
    /// (`PhoneConfigBuilder::jitter_buffer`, 60 ms say) keeps them whole.
    pub detect_inband_dtmf: Option<bool>,
    /// What the peer hears while we hold the call (music on hold, a
    /// "please wait" loop); `None`: silence. The main source keeps running
    /// underneath (a microphone is read and dropped), so it resumes live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<SendAudio>,
}

impl AudioSetup {
    /// Builds the source and sink (opening files).
    pub(crate) fn build(self) -> Result<BuiltAudio, String> {
        Ok(BuiltAudio {
            source: self.send.build()?,
            sink: self.receive.build()?,
            tracked: self.track_frequencies,
            detect_dtmf: self.detect_inband_dtmf,
            hold: self.hold.map(SendAudio::build).transpose()?,
        })
    }
}

impl SendAudio {
    /// Opens the source (a file, a device: may block).
    pub(crate) fn build(self) -> Result<Box<dyn AudioSource>, String> {
        let source: Box<dyn AudioSource> = match self {
            SendAudio::Silence => Box::new(source::Silence),
            SendAudio::Tone { frequency_hz, level_dbfs } => Box::new(source::Tone::new(frequency_hz, level_dbfs)),
            SendAudio::WavFile { path, looping } => Box::new(
                source::WavSource::open(&path).map_err(|e| format!("{}: {e}", path.display()))?.looping(looping),
            ),
            SendAudio::App(src) => Box::new(src),
            SendAudio::Custom(src) => src,
            #[cfg(feature = "device")]
            SendAudio::Device { name } => {
                Box::new(device::DeviceSource::open(name.as_deref()).map_err(|e| format!("media device failed: {e}"))?)
            }
        };
        Ok(source)
    }
}

impl ReceiveAudio {
    /// Opens the sink (a file, a device: may block).
    pub(crate) fn build(self) -> Result<Box<dyn AudioSink>, String> {
        let sink: Box<dyn AudioSink> = match self {
            ReceiveAudio::Discard => Box::new(sink::NullSink::new()),
            ReceiveAudio::WavFile(path) => {
                Box::new(sink::WavRecorder::create(&path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            ReceiveAudio::App(s) => Box::new(s),
            ReceiveAudio::Custom(s) => s,
            #[cfg(feature = "device")]
            ReceiveAudio::Device { name } => {
                Box::new(device::DeviceSink::open(name.as_deref()).map_err(|e| format!("media device failed: {e}"))?)
            }
        };
        Ok(sink)
    }
}

/// A call's opened source and sink, and the frequencies it tracks.
pub(crate) struct BuiltAudio {
    pub(crate) source: Box<dyn AudioSource>,
    pub(crate) sink: Box<dyn AudioSink>,
    pub(crate) tracked: Vec<f64>,
    pub(crate) detect_dtmf: Option<bool>,
    pub(crate) hold: Option<Box<dyn AudioSource>>,
}

/// Media settings of a phone.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// The peer connection settings (ICE servers, loopback, codecs).
    pub peer: PeerConfig,
    /// Frame duration (20 ms default).
    pub frame: FrameDuration,
    /// How long ICE/DTLS may take before the call's media is declared failed.
    pub connect_timeout: Duration,
    /// How long after its arrival a packet is played on a clean network
    /// (the receive clock's phase, see [`playout`]); default 1 ms. A packet
    /// that misses its tick anyway gets a short grace (a quarter frame, at
    /// most 4 ms) before the frame is concealed.
    pub playout_margin: Duration,
    /// Jitter buffer delay bounds: lowest target (default one frame), highest
    /// target (default 400 ms) and the delay before the first frame (default
    /// 40 ms).
    pub jitter_min: Duration,
    /// See [`jitter_min`](Self::jitter_min).
    pub jitter_max: Duration,
    /// See [`jitter_min`](Self::jitter_min).
    pub jitter_initial: Duration,
    /// When quality alerts are raised.
    pub quality: quality::QualityThresholds,
    /// Simulated loss and jitter on received packets (call tests only).
    pub impairment: Option<impairment::Impairment>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            peer: PeerConfig::default(),
            frame: FrameDuration::Ms20,
            connect_timeout: Duration::from_secs(20),
            playout_margin: Duration::from_millis(1),
            jitter_min: Duration::ZERO,
            jitter_max: Duration::from_millis(400),
            jitter_initial: Duration::from_millis(40),
            quality: quality::QualityThresholds::default(),
            impairment: None,
        }
    }
}
