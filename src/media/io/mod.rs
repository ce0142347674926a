//! Where a call's audio comes from and goes to: sources ([`source`]:
//! silence, tone, WAV file), sinks ([`sink`]: nothing, WAV file, meter), the
//! application's PCM ([`app_channel`]), WAV decoding ([`wav`]), call
//! recording (`recording`) and, with the
//! `device` feature, the sound card (`device`).

pub mod app_channel;
#[cfg(feature = "device")]
pub mod device;
pub(crate) mod recording;
pub mod sink;
pub mod source;
pub mod wav;

pub use app_channel::{AppSink, AppSinkReader, AppSource, AppSourceWriter, app_sink_channel, app_source_channel};
