#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
//! # webphone
//!
//! A headless SIP-over-WebSocket + WebRTC user agent: the phone that
//! call-center platforms put in an agent's browser, for Rust programs with
//! no browser (voice bots, CRM back ends, call testing, kiosks).
//!
//! It registers over `ws://` / `wss://` (RFC 7118) with digest
//! authentication, refreshes, keeps the connection alive, reconnects with
//! backoff and fails over between servers; it places and answers calls with
//! real WebRTC audio (ICE, DTLS-SRTP, Opus, G.711) that interoperates with
//! browsers and PBXs; and it reports everything on one event stream.
//!
//! ```no_run
//! use webphone::{AudioSetup, CallOptions, Event, Phone, PhoneConfig, SendAudio};
//!
//! # async fn run() -> Result<(), webphone::Error> {
//! let config = PhoneConfig::builder()
//!     .server("wss://pbx.example.com:7443/ws")
//!     .server("wss://backup.example.com:7443/ws") // failover, in order
//!     .user("1001")
//!     .password("secret")
//!     .domain("example.com")
//!     .build()?;
//! let phone = Phone::new(config);
//! let mut events = phone.events();
//! phone.start()?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Registered { .. } => {
//!             let audio = AudioSetup {
//!                 send: SendAudio::Tone { frequency_hz: 440.0, level_dbfs: -12.0 },
//!                 ..Default::default()
//!             };
//!             phone.call("1002", CallOptions { audio, ..Default::default() }).await?;
//!         }
//!         Event::CallIncoming { call } => phone.answer(call.key).await?,
//!         Event::CallEnded { call, .. } => {
//!             println!("call {} ended: {:?}", call.call_id, call.end);
//!             break;
//!         }
//!         other => println!("{other:?}"),
//!     }
//! }
//! phone.stop().await?;
//! # Ok(()) }
//! ```
//!
//! ## The model
//! - [`Phone`] is a cheap handle; a driver task (tokio) owns the connection
//!   and the calls' media. Every command is an [`Action`] (one serde enum:
//!   call, answer, reject, hangup, mute, volume, stats, ...) run by
//!   [`Phone::execute`]; the typed methods of [`Phone`] and of the per-call
//!   [`Call`] handle wrap it, and the CLI's `phone` verb reads it as JSON.
//! - One ordered [`Event`] stream per subscriber ([`Phone::events`], or a
//!   call's own with [`Call::events`]); [`Event::CallEnded`] carries the
//!   call's final [`CallStats`]. [`Phone::status`] is one value computed by
//!   the driver and published on every change.
//! - The SIP logic ([`dialog`]) is sans-IO: it takes time as an argument and
//!   returns what to send, what happened and what the media side must do
//!   (see its drive loop), so its timers are tested on fake time. Each call
//!   is a state machine of its own, with one offer/answer sub-state for
//!   INVITE, re-INVITE and UPDATE (491 glare answered and retried).
//!   The SIP core and [`media`] share only a small contract ([`CallKey`],
//!   [`MediaDirection`], the SDP work the core asks for): media knows no
//!   dialogs.
//! - [`sip`] is the message layer: zero-copy parsing, typed headers on
//!   demand, the RFC 4475 torture messages as a conformance suite.
//! - [`media`]: one webrtc-rs peer connection per call and an audio pipeline
//!   at 48 kHz mono in 20 ms (or 10 ms) frames: sources (silence, tone, WAV,
//!   application PCM, devices), an adaptive jitter buffer with Opus PLC/FEC
//!   and a playout clock phase-locked to the packets (about 30 ms
//!   mouth-to-ear on a clean network), sinks (WAV, application PCM, devices,
//!   a level/frequency meter); quality alerts (loss, jitter, no audio) as
//!   [`Event::CallQuality`].
//! - Passwords live in [`Password`], which never prints; SIP logged at
//!   `trace` level has its Authorization headers redacted.
//!
//! ## Many calls in one process
//! Call media (webrtc's peers and each call's audio task: one Opus encode,
//! ~0.2 ms, and one decode per 20 ms frame) runs on its own runtime with
//! twice as many worker threads as cores, shared by every phone in the
//! process, so that audio deadlines never wait behind the application's
//! work nor behind a worker busy with other calls' encodes. On 2 cores
//! (`examples/load`): 120 call legs (60 calls, 70 % of the libopus-bound
//! ceiling) run with 0.07–0.27 % of their frame ticks late; at 148 legs
//! both cores are saturated.
//!
//! ## Features
//! - `device`: audio devices through cpal (needs `libasound2-dev` on Linux).
//!
//! ## Calls
//! Hold and resume ([`Phone::hold`]) re-offer the direction only (same ICE
//! and DTLS session); the far end's holds are reported too. With two lines
//! (the default), placing, answering or resuming a call holds the others
//! first ([`PhoneConfigBuilder::hold_other_lines`]). [`Phone::status`] says
//! what the phone is doing with the seeds' status codes ([`PhoneState`]);
//! an action that does not fit it fails with [`Error::NotAllowed`].
//!
//! ## DTMF
//! [`Phone::send_dtmf`] (or the `dtmf` action) sends digits by RFC 4733
//! telephone-events (payload type and clock from the negotiated SDP, on the
//! audio's SSRC), SIP INFO or in-band tones; `auto` takes RFC 4733 when the
//! peer negotiated telephone-event, else INFO. A call's digits wait in one
//! queue whatever their method and go out one at a time, in order. Digits received by any of the
//! three come as [`Event::DtmfReceived`]; in-band detection runs when the
//! peer negotiated no telephone-event or [`AudioSetup::detect_inband_dtmf`]
//! asks for it. The pure parts (payloads, sender and receiver machines, INFO
//! bodies, tones, the detector) are in [`dtmf`].
//!
//! ## Not yet
//! Transfer (REFER, Replaces), the seeds' compatibility facades and the
//! control server are the next milestones. DTMF is not sent as RFC 2198
//! redundant events, and INFO digits are not re-sent after a failure. A
//! call's digits leave in order whatever their methods, but INFO travels
//! by SIP and the others in the media: a far end whose SIP path is slower
//! than the gap between two digits of different methods may see them swapped.

pub mod dialog;
pub mod dtmf;
pub mod media;
pub mod sip;
mod transport;

mod action;
mod config;
mod contract;
mod driver;
mod error;
mod event;
mod phone;
mod secret;

pub use action::{Action, ActionOutcome, AudioDirection, LineInfo, PhoneStatus};
pub use config::{PhoneConfig, PhoneConfigBuilder};
pub use contract::{CallKey, MediaDirection};
pub use dialog::call::{CallDirection, EndCause, Originator, Party};
pub use dialog::{CallError, CallRequest, Mode, PhoneState};
pub use dtmf::{DtmfMethod, DtmfOptions};
pub use error::Error;
pub use event::{CallInfo, Event};
pub use media::{
    AppSink, AppSinkReader, AppSource, AppSourceWriter, AudioSetup, CallStats, ReceiveAudio, SendAudio,
    app_sink_channel, app_source_channel,
};
pub use phone::{Call, CallEvents, CallOptions, Events, Phone};
pub use secret::Password;
pub use transport::keepalive::PingKind;
pub use transport::tls::TlsConfig;
