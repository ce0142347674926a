//! The driver task behind a [`crate::Phone`]: the only code that touches
//! sockets and the clock.
//!
//! It owns the WebSocket [`Connection`] (connect, reconnect with backoff,
//! fail over, keep alive), feeds the sans-IO [`UserAgent`] with received
//! frames, actions and timeouts, sends what the core emits, hands media
//! requests to the [`MediaEngine`] and its results back to the core, and
//! turns core events into [`Event`]s. It reads time through
//! `tokio::time::Instant`, so tests can run it on tokio's paused clock.
//!
//! The loop, online or not, is the same: wait for the first of a received
//! frame, a command, a media result or the core's next timeout; feed it in;
//! drain the core's outputs; publish the status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::action::{Action, ActionOutcome, AudioDirection, LineInfo, PhoneStatus};
use crate::config::PhoneConfig;
use crate::contract::{CallKey, MediaRequest};
use crate::dialog::auth::DigestClient;
use crate::dialog::register::{RegistrationConfig, RegistrationEvent, random_token};
use crate::dialog::transaction::Timers;
use crate::dialog::{AgentConfig, AgentEvent, CallError, CallEvent, CallRequest, CallState, Output, UserAgent};
use crate::dtmf::DtmfMethod;
use crate::error::FailureKind;
use crate::event::Event;
use crate::media::CallStats;
use crate::media::engine::{MediaControl, MediaEngine, MediaResult};
use crate::phone::{Command, Shared, no_such_call};
use crate::sip::{Host, NameAddr, SipUri, StatusCode, Uri};
use crate::transport::keepalive::{KeepAlive, KeepAliveAction, PingKind};
use crate::transport::reconnect::{Attempt, Reconnect};
use crate::transport::ws::{Connection, Incoming, ServerUrl};

/// The longest a WebSocket send may take before the connection counts as dead.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Why a connection's session ended.
enum SessionEnd {
    Stopped,
    Lost(String),
}

/// What a command asks of the loop that received it.
enum Flow {
    Continue,
    Stop,
}

/// Why waiting offline ended.
enum Wake {
    /// The wait is over: time for the next connection attempt.
    Due,
    /// The user asked to register: try every server again, now.
    RegisterAsked,
    /// Told to stop.
    Stop,
}

/// The state the driver works on: the SIP core, the calls' media, and the
/// last figures of calls whose media closed (put on their `CallEnded`).
struct Core {
    ua: UserAgent,
    media: MediaEngine,
    final_stats: HashMap<CallKey, CallStats>,
    /// Per call: what we send is muted, what we hear is muted.
    mutes: HashMap<CallKey, (bool, bool)>,
    /// Per call a transfer request came in: the audio the application
    /// chose for the call that carries it out.
    transfer_audio: HashMap<CallKey, crate::media::AudioSetup>,
    /// The user asked to register since the last connection attempt (an
    /// idle phone that gave up on its servers tries them again).
    register_asked: bool,
}

pub(crate) async fn drive(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let cfg = &shared.config;
    let mut rng = match cfg.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let mut core = Core {
        ua: build_agent(cfg, &mut rng),
        media: MediaEngine::new(cfg.media.clone()),
        final_stats: HashMap::new(),
        mutes: HashMap::new(),
        transfer_audio: HashMap::new(),
        register_asked: false,
    };
    if cfg.register_on_start {
        core.ua.register(now());
    }
    let mut reconnect =
        Reconnect::new(cfg.servers.len(), cfg.reconnect_min, cfg.reconnect_max, cfg.on_permanent_failure);
    // The next connection attempt; `None` after every server failed permanently.
    let mut attempt = Some(Attempt { server: 0, delay: Duration::ZERO });
    let mut last_server = cfg.servers[0].clone();
    'run: loop {
        core.register_asked = false;
        match core.wait_offline(attempt.map(|a| a.delay), &mut commands, &last_server, &shared).await {
            Wake::Stop => break,
            Wake::Due => {}
            Wake::RegisterAsked => {
                reconnect.reset();
                attempt = Some(Attempt { server: 0, delay: Duration::ZERO });
            }
        }
        let Some(next) = attempt else { continue };
        let server = &cfg.servers[next.server];
        last_server = server.clone();
        let connect = Connection::connect(server, &cfg.tls, cfg.connect_timeout);
        tokio::pin!(connect);
        let connected = loop {
            tokio::select! {
                c = &mut connect => break c,
                cmd = commands.recv() => if let Flow::Stop = core.handle_command(cmd, &shared) {
                    break 'run;
                },
                result = core.media.next_result() => core.handle_media_result(result, &shared),
            }
            core.drain_offline(server, &shared);
        };
        match connected {
            Err(e) => {
                tracing::info!(server = server.as_str(), error = %e, "connection attempt failed");
                let kind = e.failure_kind().unwrap_or(FailureKind::Network);
                attempt = reconnect.handle_failure(kind.is_permanent(), &mut rng);
                let reason = match e {
                    Error::Connect { reason, .. } => reason,
                    other => other.to_string(),
                };
                if attempt.is_none() {
                    tracing::warn!(server = server.as_str(), %reason, %kind, "every server failed permanently: not retrying");
                }
                shared.emit(Event::ConnectFailed {
                    server: server.as_str().to_string(),
                    reason,
                    kind,
                    retry_in_ms: attempt.map(|a| a.delay.as_millis() as u64),
                    next_server: attempt.map(|a| cfg.servers[a.server].as_str().to_string()),
                });
            }
            Ok(conn) => {
                reconnect.handle_connected();
                shared.emit(Event::Connected { server: server.as_str().to_string() });
                let end = core.session(conn, server, &mut commands, &shared).await;
                let (reason, retry) = match &end {
                    SessionEnd::Stopped => ("stopped".to_string(), None),
                    SessionEnd::Lost(r) => {
                        let next = reconnect.handle_disconnected(&mut rng);
                        attempt = Some(next);
                        (r.clone(), Some(next.delay))
                    }
                };
                tracing::info!(server = server.as_str(), %reason, "disconnected");
                core.ua.handle_disconnected(now());
                shared.emit(Event::Disconnected {
                    server: server.as_str().to_string(),
                    reason,
                    retry_in_ms: retry.map(|d| d.as_millis() as u64),
                });
                core.drain_offline(server, &shared);
                if matches!(end, SessionEnd::Stopped) {
                    break;
                }
            }
        }
    }
    // Calls still up (stopped while offline) end here, reported.
    core.ua.abandon_calls("phone stopped", now());
    core.drain_offline(&last_server, &shared);
    core.media.close_all();
    shared.status.send_replace(PhoneStatus::default());
    shared.emit(Event::Stopped);
    shared.close_subscriptions();
}

impl Core {
    /// Waits `delay` while offline (`None`: until the user asks to
    /// register), handling commands and media results.
    async fn wait_offline(
        &mut self,
        delay: Option<Duration>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        server: &ServerUrl,
        shared: &Shared,
    ) -> Wake {
        let deadline = delay.map(|d| tokio::time::Instant::now() + d);
        loop {
            self.drain_offline(server, shared);
            if deadline.is_none() && self.register_asked {
                return Wake::RegisterAsked;
            }
            let due = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = due => return Wake::Due,
                cmd = commands.recv() => if let Flow::Stop = self.handle_command(cmd, shared) {
                    return Wake::Stop;
                },
                result = self.media.next_result() => self.handle_media_result(result, shared),
            }
        }
    }

    /// Runs one connection until it is lost or the phone stops.
    async fn session(
        &mut self,
        mut conn: Connection,
        server: &ServerUrl,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        shared: &Shared,
    ) -> SessionEnd {
        let cfg = &shared.config;
        self.ua.handle_connected(now(), server.via_transport());
        let mut keepalive = KeepAlive::new(cfg.keepalive, now());
        let mut stop_deadline: Option<Instant> = None;
        loop {
            while let Some(out) = self.ua.poll_output() {
                match out {
                    Output::Transmit(bytes) => match tokio::time::timeout(SEND_TIMEOUT, conn.send_sip(bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return SessionEnd::Lost(format!("send failed: {e}")),
                        Err(_) => return SessionEnd::Lost("send stalled".into()),
                    },
                    other => self.dispatch(other, server, shared),
                }
            }
            self.publish_status(shared);
            if let Some(deadline) = stop_deadline
                && (!self.ua.has_pending_transactions() || now() >= deadline)
            {
                conn.close().await;
                return SessionEnd::Stopped;
            }
            let wake =
                [self.ua.poll_timeout(), Some(keepalive.poll_timeout()), stop_deadline].into_iter().flatten().min();
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
                wake.unwrap_or_else(|| now() + Duration::from_secs(3600)),
            ));
            tokio::select! {
                incoming = conn.recv() => {
                    keepalive.handle_received(now());
                    match incoming {
                        Incoming::Sip(bytes) => {
                            tracing::trace!(message = %crate::sip::redacted(&bytes), "SIP in");
                            self.ua.handle_message(bytes, now());
                        }
                        Incoming::KeepAlive => {}
                        Incoming::Closed(reason) => return SessionEnd::Lost(reason),
                    }
                }
                cmd = commands.recv() => if let Flow::Stop = self.handle_command(cmd, shared)
                    && stop_deadline.is_none()
                {
                    self.ua.unregister(now());
                    stop_deadline = Some(now() + cfg.unregister_timeout);
                    for call in self.ua.call_keys() {
                        let _ = self.ua.hangup(call, now());
                    }
                },
                result = self.media.next_result() => self.handle_media_result(result, shared),
                _ = sleep => {
                    let t = now();
                    self.ua.handle_timeout(t);
                    match keepalive.handle_timeout(t) {
                        KeepAliveAction::None => {}
                        KeepAliveAction::SendPing(kind) => {
                            let ping = async {
                                match kind {
                                    PingKind::WebSocket => conn.send_ping().await,
                                    PingKind::DoubleCrlf => conn.send_crlf_ping().await,
                                }
                            };
                            match tokio::time::timeout(SEND_TIMEOUT, ping).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => return SessionEnd::Lost(format!("send failed: {e}")),
                                Err(_) => return SessionEnd::Lost("send stalled".into()),
                            }
                        }
                        KeepAliveAction::Dead => return SessionEnd::Lost("keep-alive: no answer from server".into()),
                    }
                }
            }
        }
    }

    /// A command from a handle. `None` (every handle gone) counts as Stop.
    fn handle_command(&mut self, cmd: Option<Command>, shared: &Shared) -> Flow {
        match cmd {
            None | Some(Command::Stop) => Flow::Stop,
            Some(Command::Execute { action, reply }) => {
                self.execute(action, reply, shared);
                Flow::Continue
            }
        }
    }

    /// Runs an action against the core and the media (online or not) and
    /// replies with its outcome.
    fn execute(&mut self, action: Action, reply: oneshot::Sender<Result<ActionOutcome, Error>>, shared: &Shared) {
        let t = now();
        let name = action.name();
        let done = |r: Result<(), Error>| r.map(|()| ActionOutcome::Done);
        let outcome = match action {
            Action::Register => {
                self.register_asked = true;
                self.ua.register(t);
                Ok(ActionOutcome::Done)
            }
            Action::Unregister => {
                self.ua.unregister(t);
                Ok(ActionOutcome::Done)
            }
            Action::Call { target, display_name, headers, audio } => {
                let request = CallRequest { target, display_name, headers };
                self.ua.call(request, t).map_err(Error::Call).map(|call| {
                    self.media.set_audio(call, audio);
                    ActionOutcome::Call(call)
                })
            }
            Action::Answer { call, audio } => self.ringing_call(call).and_then(|call| {
                // The media request this queues is handled after this returns,
                // so the audio choice is in place before the media starts.
                self.ua.answer(call, t).map_err(Error::Call)?;
                self.media.set_audio(call, audio);
                Ok(ActionOutcome::Done)
            }),
            Action::Reject { call, status } => {
                match StatusCode::new(status).filter(|s| (300..700).contains(&s.as_u16())) {
                    None => Err(Error::InvalidAction(format!("reject status {status} is not 300-699"))),
                    Some(status) => self
                        .ringing_call(call)
                        .and_then(|call| done(self.ua.reject(call, status, t).map_err(Error::Call))),
                }
            }
            Action::Hangup { call } => {
                self.current_call(call).and_then(|call| done(self.ua.hangup(call, t).map_err(Error::Call)))
            }
            Action::Hold { call } => {
                self.current_call(call).and_then(|call| done(self.ua.hold(call, t).map_err(Error::Call)))
            }
            Action::Resume { call } => {
                self.current_call(call).and_then(|call| done(self.ua.resume(call, t).map_err(Error::Call)))
            }
            Action::Transfer { call, target } => {
                self.current_call(call).and_then(|call| done(self.ua.transfer(call, &target, t).map_err(Error::Call)))
            }
            Action::Consult { call, target, headers, audio } => self.current_call(call).and_then(|call| {
                let request = CallRequest { target, display_name: None, headers };
                let consult = self.ua.consult(call, request, t).map_err(Error::Call)?;
                self.media.set_audio(consult, audio);
                Ok(ActionOutcome::Call(consult))
            }),
            Action::Retrieve { call } => self
                .current_call(call)
                .and_then(|call| self.ua.retrieve(call, t).map_err(Error::Call).map(ActionOutcome::Call)),
            Action::Complete { call, with } => {
                let call = call.or_else(|| self.ua.consultation_of(with));
                match call {
                    None => Err(Error::Call(CallError::InvalidState)),
                    Some(call) => done(self.ua.complete(call, with, t).map_err(Error::Call)),
                }
            }
            Action::AcceptTransfer { call, audio } => self.current_call(call).and_then(|call| {
                self.transfer_audio.insert(call, audio);
                let accepted = self.ua.answer_transfer(call, true, t).map_err(Error::Call);
                if accepted.is_err() {
                    self.transfer_audio.remove(&call);
                }
                done(accepted)
            }),
            Action::RejectTransfer { call } => self
                .current_call(call)
                .and_then(|call| done(self.ua.answer_transfer(call, false, t).map_err(Error::Call))),
            Action::Mute { call, direction } => {
                self.current_call(call).and_then(|call| done(self.set_muted(call, direction, true)))
            }
            Action::Unmute { call, direction } => {
                self.current_call(call).and_then(|call| done(self.set_muted(call, direction, false)))
            }
            Action::Volume { call, volume } => {
                if !(0.0..=4.0).contains(&volume) {
                    Err(Error::InvalidAction(format!("volume {volume} is not 0.0-4.0")))
                } else {
                    self.current_call(call).and_then(|call| done(self.control(call, MediaControl::Volume(volume))))
                }
            }
            Action::SetSendAudio { call, audio } => {
                self.current_call(call).and_then(|call| done(self.control(call, MediaControl::SendAudio(audio))))
            }
            Action::SetReceiveAudio { call, audio } => {
                self.current_call(call).and_then(|call| done(self.control(call, MediaControl::ReceiveAudio(audio))))
            }
            Action::Dtmf { call, digits, method, duration_ms, gap_ms } => self
                .current_call(call)
                .and_then(|call| done(self.send_dtmf(call, &digits, method, duration_ms, gap_ms))),
            Action::Stats { call } => match self.current_call(call).map(|call| self.media.stats(call)) {
                Err(e) => Err(e),
                Ok(None) => Err(no_such_call()),
                Ok(Some((mut stats, peer))) => {
                    // The peer's round-trip time is asked for off the driver.
                    tokio::spawn(async move {
                        if let Some(peer) = peer {
                            let p = peer.stats().await;
                            stats.rtt_ms = p.rtt.map(|d| d.as_secs_f64() * 1000.0);
                        }
                        let _ = reply.send(Ok(ActionOutcome::Stats(Box::new(stats))));
                    });
                    return;
                }
            },
            Action::SetMode { mode } => {
                self.ua.set_mode(mode);
                Ok(ActionOutcome::Done)
            }
            Action::Lines => Ok(ActionOutcome::Lines(self.lines(shared))),
            Action::Status => Ok(ActionOutcome::Status(self.status())),
            Action::Record { call, path, channels } => self.current_call(call).and_then(|call| {
                let snapshot = self.ua.call_snapshot(call).ok_or_else(no_such_call)?;
                let info = shared.clock.call_info(snapshot);
                self.control(call, MediaControl::Record(Some((path.clone(), channels))))?;
                shared.emit(Event::RecordingStarted { call: info, path, channels });
                Ok(ActionOutcome::Done)
            }),
            Action::StopRecording { call } => {
                self.current_call(call).and_then(|call| done(self.control(call, MediaControl::Record(None))))
            }
            // `Phone::execute` answers these from the history itself.
            #[cfg(feature = "history")]
            Action::History { .. } | Action::Note { .. } => {
                Err(Error::InvalidAction(format!("{name} is the phone's, not the driver's")))
            }
        };
        // Refused for the state of a call or the phone's mode: Aliyun's 9001.
        let outcome = match outcome {
            Err(Error::Call(CallError::InvalidState | CallError::ModeForbids)) => {
                Err(Error::NotAllowed { action: name.to_string(), status: self.ua.phone_state().code() })
            }
            other => other,
        };
        let _ = reply.send(outcome);
    }

    /// Queues digits on the call's one DTMF queue (in its audio, whatever
    /// the method: see `media::engine`); INFO digits come back to the core
    /// as [`MediaResult::DtmfInfoDue`] when their turn comes. `auto` is
    /// decided per digit then (RFC 4733 when negotiated, else INFO).
    fn send_dtmf(
        &mut self,
        call: CallKey,
        digits: &str,
        method: DtmfMethod,
        duration_ms: Option<u32>,
        gap_ms: Option<u32>,
    ) -> Result<(), Error> {
        let steps = crate::dtmf::parse_digits(digits, duration_ms, gap_ms).map_err(Error::InvalidAction)?;
        let state = self.ua.call_state(call).ok_or_else(no_such_call)?;
        match method {
            DtmfMethod::Rfc4733 if self.media.telephone_event(call).is_none() => {
                Err(Error::InvalidAction("the call's media negotiated no telephone-event".into()))
            }
            DtmfMethod::Info if state != CallState::Confirmed => Err(Error::Call(CallError::InvalidState)),
            _ => self.control(call, MediaControl::Dtmf { steps, method }),
        }
    }

    fn set_muted(&mut self, call: CallKey, direction: AudioDirection, muted: bool) -> Result<(), Error> {
        let control = match direction {
            AudioDirection::Send => MediaControl::MuteSend(muted),
            AudioDirection::Receive => MediaControl::MuteReceive(muted),
        };
        self.control(call, control)?;
        let mutes = self.mutes.entry(call).or_default();
        match direction {
            AudioDirection::Send => mutes.0 = muted,
            AudioDirection::Receive => mutes.1 = muted,
        }
        Ok(())
    }

    /// Changes a live call's audio (from its next frame on).
    fn control(&mut self, call: CallKey, control: MediaControl) -> Result<(), Error> {
        self.media.control(call, control).then_some(()).ok_or_else(no_such_call)
    }

    /// The call an action names, or the current one (the newest that has not ended).
    fn current_call(&self, call: Option<CallKey>) -> Result<CallKey, Error> {
        match call {
            Some(call) => Ok(call),
            // Nothing to act on: the caller maps this to NotAllowed with the status.
            None => self.ua.call_keys().into_iter().max().ok_or(Error::Call(CallError::InvalidState)),
        }
    }

    /// The call an action names, or the newest one ringing here.
    fn ringing_call(&self, call: Option<CallKey>) -> Result<CallKey, Error> {
        match call {
            Some(call) => Ok(call),
            None => self
                .ua
                .call_keys()
                .into_iter()
                .filter(|k| self.ua.call_state(*k) == Some(CallState::Ringing))
                .max()
                .ok_or(Error::Call(CallError::InvalidState)),
        }
    }

    fn status(&self) -> PhoneStatus {
        let state = self.ua.phone_state();
        PhoneStatus {
            state,
            code: state.code(),
            mode: self.ua.mode(),
            connected: self.ua.is_connected(),
            registered: self.ua.is_registered(),
            calls: self.ua.call_keys(),
        }
    }

    /// Publishes the status when it changed, and reports a change of state.
    fn publish_status(&self, shared: &Shared) {
        let status = self.status();
        let mut last = None;
        shared.status.send_if_modified(|s| {
            if s.state != status.state {
                last = Some(s.code);
            }
            let changed = *s != status;
            *s = status.clone();
            changed
        });
        if let Some(last) = last {
            shared.emit(Event::StatusChanged { state: status.state, code: status.code, last });
        }
    }

    /// Every call that has not ended, oldest first, as lines.
    fn lines(&self, shared: &Shared) -> Vec<LineInfo> {
        let mut keys = self.ua.call_keys();
        keys.sort();
        let mut lines = Vec::new();
        for key in keys {
            let (Some(snapshot), Some(state)) = (self.ua.call_snapshot(key), self.ua.call_state(key)) else { continue };
            let (held_local, held_remote) = self.ua.call_held(key).unwrap_or_default();
            let (muted_send, muted_receive) = self.mutes.get(&key).copied().unwrap_or_default();
            lines.push(LineInfo {
                line: lines.len() + 1,
                call: shared.clock.call_info(snapshot),
                state: match state {
                    CallState::Ringing => "ringing",
                    CallState::Answering | CallState::WaitingAck => "connecting",
                    CallState::Confirmed => "connected",
                    _ => "dialing",
                },
                held_local,
                held_remote,
                muted_send,
                muted_receive,
            });
        }
        lines
    }

    /// Feeds a media task's result into the core.
    fn handle_media_result(&mut self, result: MediaResult, shared: &Shared) {
        match result {
            MediaResult::LocalSdp { call, sdp: Ok((peer, sdp)) } => {
                if self.media.adopt_peer(call, peer) {
                    self.ua.handle_local_sdp(call, Ok(sdp), now());
                }
            }
            MediaResult::LocalSdp { call, sdp: Err(reason) } => self.ua.handle_local_sdp(call, Err(reason), now()),
            MediaResult::Failed { call, reason } => self.ua.handle_media_failure(call, &reason, now()),
            MediaResult::Quality { call, alert } => {
                if let Some(snapshot) = self.ua.call_snapshot(call) {
                    shared.emit(Event::CallQuality { call: shared.clock.call_info(snapshot), alert });
                }
            }
            MediaResult::SourceEnded { call } => {
                if let Some(snapshot) = self.ua.call_snapshot(call) {
                    shared.emit(Event::SendAudioEnded { call: shared.clock.call_info(snapshot) });
                }
            }
            MediaResult::Dtmf { call, digit, duration_ms, method } => {
                if let Some(snapshot) = self.ua.call_snapshot(call) {
                    let call = shared.clock.call_info(snapshot);
                    shared.emit(Event::DtmfReceived { call, digit, duration_ms, method });
                }
            }
            MediaResult::DtmfSent { call, digit, method } => {
                if let Some(snapshot) = self.ua.call_snapshot(call) {
                    shared.emit(Event::DtmfSent { call: shared.clock.call_info(snapshot), digit, method });
                }
            }
            MediaResult::RecordingDone { call, path, error } => {
                if let Some(e) = &error {
                    tracing::warn!(%call, path = %path.display(), error = %e, "recording failed");
                }
                if let Some(snapshot) = self.ua.call_snapshot(call) {
                    shared.emit(Event::RecordingStopped { call: shared.clock.call_info(snapshot), path, error });
                }
            }
            MediaResult::DtmfInfoDue { call, digit, duration_ms } => {
                match self.ua.send_dtmf_info(call, digit, duration_ms, now()) {
                    Ok(()) => {}
                    // Ended while the result was on its way: the queue went with the media.
                    Err(CallError::NoSuchCall) => {}
                    // Not confirmed (an `auto` digit in early media with no telephone-event).
                    Err(e) => tracing::warn!(%call, %digit, error = %e, "DTMF INFO not sent"),
                }
            }
        }
    }

    /// Drains the core's outputs while offline: events go out, media
    /// requests are handled, nothing can be transmitted.
    fn drain_offline(&mut self, server: &ServerUrl, shared: &Shared) {
        while let Some(out) = self.ua.poll_output() {
            match out {
                Output::Transmit(_) => tracing::debug!("offline: a message could not be sent"),
                other => self.dispatch(other, server, shared),
            }
        }
        self.publish_status(shared);
    }

    /// Carries out an output of the core other than a transmission.
    fn dispatch(&mut self, out: Output, server: &ServerUrl, shared: &Shared) {
        match out {
            Output::Transmit(_) => {}
            Output::Media(MediaRequest::Close { call }) => {
                // The call's last figures, for its CallEnded (reported next).
                if let Some(stats) = self.media.close(call) {
                    self.final_stats.insert(call, stats);
                }
                self.mutes.remove(&call);
            }
            Output::Media(request) => self.media.handle(request),
            Output::Event(ev) => {
                if let (AgentEvent::Call(CallEvent::Incoming(s)), Some(choose)) = (&ev, &shared.config.incoming_audio) {
                    // The audio the configuration chooses for a ringing call.
                    self.media.set_audio(s.key, (choose.0)(&shared.clock.call_info(s)));
                }
                match &ev {
                    // The media side plays the hold source (or silence) while we hold.
                    AgentEvent::Call(CallEvent::Held { call, by: crate::Originator::Local }) => {
                        self.media.control(call.key, MediaControl::LocalHold(true));
                    }
                    AgentEvent::Call(CallEvent::Resumed { call, by: crate::Originator::Local }) => {
                        self.media.control(call.key, MediaControl::LocalHold(false));
                    }
                    _ => {}
                }
                if let (AgentEvent::Call(CallEvent::CallReplaced { new, .. }), Some(choose)) =
                    (&ev, &shared.config.transfer_audio)
                {
                    // A call taking the place of ours (attended transfer): answered next.
                    self.media.set_audio(new.key, (choose.0)(&shared.clock.call_info(new)));
                }
                if let AgentEvent::Call(CallEvent::Outgoing(s)) = &ev
                    && let Some(from) = s.transferred_from
                {
                    // A call placed on a transfer request: the application's
                    // choice when it accepted, else the configuration's.
                    let audio = self.transfer_audio.remove(&from).or_else(|| {
                        shared.config.transfer_audio.as_ref().map(|choose| (choose.0)(&shared.clock.call_info(s)))
                    });
                    if let Some(audio) = audio {
                        self.media.set_audio(s.key, audio);
                    }
                }
                let event = self.event(ev, server, shared);
                // The status first, so that whoever reacts to the event sees it.
                self.publish_status(shared);
                shared.emit(event);
            }
        }
    }

    fn event(&mut self, ev: AgentEvent, server: &ServerUrl, shared: &Shared) -> Event {
        let server = server.as_str().to_string();
        match ev {
            AgentEvent::Registration(RegistrationEvent::Registered { expires }) => {
                Event::Registered { server, expires }
            }
            AgentEvent::Registration(RegistrationEvent::Unregistered { reason }) => {
                Event::Unregistered { server, reason }
            }
            AgentEvent::Registration(RegistrationEvent::Failed { status, reason, kind, retry_in }) => {
                Event::RegistrationFailed {
                    server,
                    status,
                    reason,
                    kind,
                    retry_in_ms: retry_in.map(|d| d.as_millis() as u64),
                }
            }
            AgentEvent::Call(ev) => {
                let clock = &shared.clock;
                match ev {
                    CallEvent::Outgoing(s) => Event::CallOutgoing { call: clock.call_info(&s) },
                    CallEvent::Incoming(s) => Event::CallIncoming { call: clock.call_info(&s) },
                    CallEvent::Progress { call, status, reason, early_media } => {
                        Event::CallProgress { call: clock.call_info(&call), status, reason, early_media }
                    }
                    CallEvent::Confirmed(s) => Event::CallConfirmed { call: clock.call_info(&s) },
                    CallEvent::Held { call, by } => Event::CallHeld { call: clock.call_info(&call), by },
                    CallEvent::Resumed { call, by } => Event::CallResumed { call: clock.call_info(&call), by },
                    CallEvent::HoldFailed { call, status, reason } => {
                        Event::HoldFailed { call: clock.call_info(&call), status, reason }
                    }
                    CallEvent::Ended(s) => {
                        let stats = self.final_stats.remove(&s.key).map(Box::new);
                        Event::CallEnded { call: clock.call_info(&s), stats }
                    }
                    CallEvent::DtmfReceived { call, digit, duration_ms } => Event::DtmfReceived {
                        call: clock.call_info(&call),
                        digit,
                        duration_ms,
                        method: DtmfMethod::Info,
                    },
                    CallEvent::DtmfSent { call, digit } => {
                        Event::DtmfSent { call: clock.call_info(&call), digit, method: DtmfMethod::Info }
                    }
                    CallEvent::TransferProgress { call, status, reason } => {
                        Event::TransferProgress { call: clock.call_info(&call), status, reason }
                    }
                    CallEvent::TransferAccepted { call } => Event::TransferAccepted { call: clock.call_info(&call) },
                    CallEvent::TransferFailed { call, status, reason } => {
                        Event::TransferFailed { call: clock.call_info(&call), status, reason }
                    }
                    CallEvent::TransferRequested { call, target, referred_by, replaces } => {
                        Event::TransferRequested { call: clock.call_info(&call), target, referred_by, replaces }
                    }
                    CallEvent::TargetRefreshed { call } => Event::TargetRefreshed { call: clock.call_info(&call) },
                    CallEvent::TargetRefreshFailed { call, status, reason, retry_in } => Event::TargetRefreshFailed {
                        call: clock.call_info(&call),
                        status,
                        reason,
                        retry_in_ms: retry_in.as_millis() as u64,
                    },
                    CallEvent::CallReplaced { old, new } => {
                        Event::CallReplaced { old: clock.call_info(&old), new: clock.call_info(&new) }
                    }
                }
            }
            AgentEvent::MalformedMessage { why, count } => Event::MalformedMessage { why, count },
        }
    }
}

fn build_agent(cfg: &PhoneConfig, rng: &mut StdRng) -> UserAgent {
    let via_host = format!("{}.invalid", random_token(rng, 12));
    let instance = cfg.instance_id.clone().unwrap_or_else(|| random_uuid(rng));
    let mut contact_uri = SipUri::new(Some(&random_token(rng, 8)), Host::Domain(via_host.clone()));
    contact_uri.params.set("transport", Some("ws".into()));
    let mut contact = NameAddr::new(Uri::Sip(contact_uri));
    contact.params.set("+sip.instance", Some(format!("\"<urn:uuid:{instance}>\"")));
    let domain = Host::Domain(cfg.domain.clone());
    let domain = Host::parse(&cfg.domain).unwrap_or(domain);
    let registration = RegistrationConfig {
        registrar: Uri::Sip(SipUri::new(None, domain.clone())),
        aor: Uri::Sip(SipUri::new(Some(&cfg.user), domain)),
        display_name: cfg.display_name.clone(),
        contact,
        expires: cfg.register_expires,
        retry_min: cfg.reconnect_min.max(Duration::from_secs(1)),
        retry_max: Duration::from_secs(300),
        on_permanent_failure: cfg.on_permanent_failure,
    };
    let agent = AgentConfig {
        via_transport: "WS",
        via_host,
        user_agent: cfg.user_agent.clone(),
        timers: Timers::default(),
        seed: Some(rng.random()),
        calls: cfg.calls.clone(),
    };
    let auth = DigestClient::new(cfg.auth_user.clone().unwrap_or_else(|| cfg.user.clone()), cfg.password.clone());
    UserAgent::new(agent, registration, auth)
}

fn random_uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}
