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
//!   call's final [`CallStats`]. Each subscriber's queue is bounded: one
//!   that falls behind reads [`Event::Lagged`] in place of what it lost, and
//!   malformed input is reported once per second with a count.
//!   [`Phone::status`] is one value computed by the driver and published on
//!   every change.
//! - Failures are data: [`Event::ConnectFailed`] and
//!   [`Event::RegistrationFailed`] carry a [`FailureKind`]; the permanent
//!   ones (a certificate that fails verification, a refused `sip`
//!   subprotocol, 403, refused credentials) are not retried unless
//!   [`PermanentFailurePolicy::RetryAfter`] says so.
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
//! both cores are saturated. Beyond one process, run several, each
//! registered as its own user, behind the SIP proxy's load balancer
//! (the README's "Several processes behind Kamailio": the `dispatcher`
//! module over the processes' AoRs, tested with one process killed).
//!
//! ## Features
//! - `device`: audio devices through cpal (needs `libasound2-dev` on Linux).
//!
//! ## Calls
//! Hold and resume ([`Phone::hold`]) re-offer the direction only (same ICE
//! and DTLS session); the far end's holds are reported too. While we hold,
//! the peer hears the call's hold source ([`AudioSetup::hold`]) or silence.
//! With two lines (the default), placing, answering or resuming a call
//! holds the others first ([`PhoneConfigBuilder::hold_other_lines`]).
//!
//! Transfer, in every role:
//! - blind: [`Phone::transfer`] REFERs the peer to a target and reports the
//!   target's progress and the outcome ([`Event::TransferAccepted`] /
//!   [`Event::TransferFailed`]: the call goes on, as it was);
//! - attended: [`Phone::consult`] holds a call and calls someone on another
//!   line, [`Phone::retrieve`] gives that up, [`Phone::complete`] REFERs the
//!   first peer to the consulted party's Contact with `Replaces`;
//! - transferee: a REFER is accepted, refused or handed to the application
//!   ([`PhoneConfigBuilder::transfer_policy`]); the new call's progress goes
//!   back to the referrer as NOTIFYs (`Refer-Sub: false` honoured);
//! - transfer target: an INVITE with `Replaces` takes the place of the call
//!   it names ([`Event::CallReplaced`]).
//!
//! A dropped WebSocket does not end a confirmed call (its media is peer to
//! peer): once reconnected, the call refreshes its target so the peer's
//! requests reach us again ([`Event::TargetRefreshed`], or
//! [`Event::TargetRefreshFailed`] and a retry with backoff), and our dialogs'
//! Contact is the registrar's GRUU when it gives one. Calls still being set
//! up end with a cause that says so (an orphaned INVITE is cancelled once
//! reconnected). A BYE that fails is reported on [`Event::CallEnded`]
//! ([`EndCause::bye_status`]): the far end may not know.
//!
//! ## Status
//! [`Phone::status`] says what the phone is doing, one value with the seeds'
//! status codes ([`PhoneState`], Aliyun's table); [`Event::StatusChanged`]
//! reports each change. The current state follows from the calls: an
//! unheld call first (the newest), then a call being placed, a call
//! ringing here, held calls, then registration. An action that does not
//! fit the state of the call it names fails with [`Error::NotAllowed`]
//! (Aliyun's 9001), carrying the status code; it is never a silent no-op.
//!
//! | code | state | what it allows (besides `status`, `lines`, `set_mode`, `register`, `unregister`) |
//! |-----:|-------|------------------------------------------------------------------------------------|
//! | -1 | unregistered | `call` once connected (a call needs the connection, not the registration) |
//! | 0 | registering | as -1 |
//! | 3 | idle | `call` (not in mode `inactive`) |
//! | 6 | ringing (a call rings here) | `answer`, `reject`, `hangup`; `call` on a free line |
//! | 8 | dialing | `hangup` (CANCEL); `call` on a free line |
//! | 9 / 10 | in a call we answered / placed | `hangup`, `hold`, `mute`/`unmute`, `volume`, `dtmf`, `transfer`, `consult`, `set_send_audio`, `set_receive_audio`, `stats`; `call` on a free line (holding this one) |
//! | 12 | every call held by us | `resume`, `hangup`, `transfer`, `consult`, `complete`; `call` on a free line |
//! | 16 | consultation dialing (placing a call while another is held) | `hangup` / `retrieve` of the consultation, actions on the held call |
//! | 17 | consultation call (in a call we placed while another is held) | `complete`, `retrieve`, and all of 9 / 10 on either call |
//!
//! Events still arrive in every state; `answer` needs a ringing call,
//! `hold`/`resume`/`transfer`/`consult`/`dtmf` a confirmed one, `complete`
//! two confirmed calls, `retrieve` a consultation call.

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
//! Of the seeds' compatibility facades only Bizfly's is here ([`compat`]);
//! the others, the call history and the control server are the next
//! milestones. A call a transfer gives us takes its audio from
//! [`PhoneConfigBuilder::transfer_audio`], not from the call it replaces
//! (the running source is not moved from one call to the other). An
//! attended transfer names the consulted party's Contact: a GRUU when its
//! registrar gave one, else a Contact the proxy must be able to route
//! (Kamailio: see the README). DTMF is not sent as RFC 2198
//! redundant events, and INFO digits are not re-sent after a failure. A
//! call's digits leave in order whatever their methods, but INFO travels
//! by SIP and the others in the media: a far end whose SIP path is slower
//! than the gap between two digits of different methods may see them swapped.

pub mod compat;
pub mod control;
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
mod event_queue;
mod phone;
mod secret;

pub use action::{Action, ActionOutcome, AudioDirection, LineInfo, PhoneStatus};
pub use config::{PhoneConfig, PhoneConfigBuilder};
pub use contract::{CallKey, MediaDirection};
pub use dialog::call::{CallDirection, EndCause, Originator, Party};
pub use dialog::{CallError, CallRequest, Mode, PhoneState, TransferPolicy};
pub use dtmf::{DtmfMethod, DtmfOptions};
pub use error::{Error, FailureKind, PermanentFailurePolicy};
pub use event::{CallInfo, Event};
pub use media::{
    AppSink, AppSinkReader, AppSource, AppSourceWriter, AudioSetup, CallStats, ReceiveAudio, SendAudio,
    app_sink_channel, app_source_channel,
};
pub use phone::{Call, CallEvents, CallOptions, Events, Phone};
pub use secret::Password;
pub use transport::keepalive::PingKind;
pub use transport::tls::TlsConfig;
