//! The media side of the driver: one [`Peer`] and one audio task per call,
//! created and torn down as the SIP core asks ([`MediaRequest`]), with
//! results (SDP, failures, quality alerts) coming back as [`MediaResult`]s
//! for the driver to feed into the core.
//!
//! Everything runs on the media runtime (`runtime::media_runtime`), not the
//! caller's. A call's audio task waits until ICE/DTLS is connected, then is
//! a thin shell around the call's [`CallAudio`] machine (which holds the
//! frame clocks, pipelines, playout, impairment and quality checks): it
//! sleeps until the machine's `poll_timeout`, feeds it received RTP,
//! renegotiations and controls ([`MediaControl`], through a channel: they
//! apply at the next frame; the call's one DTMF queue, for every method,
//! is there too) and sends the packets and reports the events
//! that come out. Its figures are published for [`MediaEngine::stats`]
//! every few frames.

pub(crate) mod call_audio;
mod call_dtmf;
pub(crate) mod calls;
pub mod pipeline;
pub(crate) mod runtime;
pub(crate) mod shell;

pub(crate) use calls::{MediaControl, MediaEngine, MediaResult};
