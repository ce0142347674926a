//! Call media: one WebRTC peer connection per call and the audio pipeline
//! around it, at 48 kHz mono in 10 or 20 ms frames inside ([`frame`]),
//! resampling only at the edges. Each room holds one concern:
//!
//! - [`rtc`]: the webrtc-rs peer connection ([`rtc::peer`]: offer/answer,
//!   hold, raw RTP in and out) with its configuration, send gate, RTCP
//!   interceptor, statistics and interface discovery, and the fixes applied
//!   to remote SDP for interoperability ([`rtc::sdp`]).
//! - [`codec`]: Opus ([`codec::opus`], via libopus) and G.711
//!   ([`codec::g711`], pure Rust) behind one [`codec::Encoder`] /
//!   [`codec::Decoder`] interface.
//! - [`dsp`]: resampling ([`dsp::resample`]) and measuring level and
//!   frequency ([`dsp::meter`]).
//! - [`receive`]: what stands between the network and the decoder: the
//!   adaptive jitter buffer ([`receive::jitter`]), the playout clock
//!   phase-locked to arrivals ([`receive::playout`]), quality alerts
//!   ([`receive::quality`]) and a seeded loss and jitter stage for call
//!   tests ([`receive::impairment`]).
//! - [`io`]: what a call sends (silence, tone, WAV file, the application's
//!   PCM, the sound card with the `device` feature) and where what it hears
//!   goes.
//! - `engine`: the per-frame pipelines ([`pipeline`], benchmarkable), each
//!   call's audio as a sans-IO machine under a thin async shell, and the
//!   per-call lifecycle on a media runtime of its own.
//! - [`setup`]: a call's audio choices and the phone's media settings;
//!   [`stats`]: a call's figures.
//!
//! The flat paths of earlier versions (`media::rtc::peer`, `media::receive::jitter`, ...)
//! are kept as re-exports of the rooms' modules.

pub mod codec;
pub mod dsp;
pub(crate) mod engine;
pub mod frame;
pub mod io;
pub mod receive;
pub mod rtc;
pub mod setup;
pub mod stats;

pub use engine::pipeline;
pub use frame::{FrameDuration, MAX_FRAME_SAMPLES, SAMPLE_RATE};
pub use io::recording::RecordChannels;
pub use io::{AppSink, AppSinkReader, AppSource, AppSourceWriter, app_sink_channel, app_source_channel};
pub use rtc::{IceConfig, IceServer};
pub use setup::{AudioSetup, MediaConfig, ReceiveAudio, SendAudio};
pub use stats::CallStats;
