//! The handles applications hold: [`Phone`] (one SIP user agent) and
//! [`Call`] (one of its calls). Every method is an [`Action`] sent to the
//! driver task (`crate::driver`), which owns the connection, the SIP core
//! and the calls' media.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::action::{Action, ActionOutcome, AudioDirection, PhoneStatus};
use crate::config::PhoneConfig;
use crate::contract::CallKey;
use crate::dialog::{CallError, CallRequest};
use crate::event::{Event, WallClock};
use crate::event_queue::EventQueue;
#[cfg(feature = "history")]
use crate::history::{CallRecord, CallRef, Note, writer::HistoryWriter};
use crate::media::{AudioSetup, CallStats, ReceiveAudio, SendAudio};

/// A phone: a cheap, clonable handle to one SIP user agent.
///
/// Create it with [`Phone::new`], subscribe with [`Phone::events`], then
/// [`Phone::start`] it inside a tokio runtime. [`Phone::stop`] unregisters
/// and closes the connection.
#[derive(Clone)]
pub struct Phone {
    shared: Arc<Shared>,
    /// Shared by all clones: when the last handle goes, the driver stops.
    _last_handle: Arc<StopOnDrop>,
}

/// Stops the driver when the last [`Phone`] handle is dropped (the driver
/// itself holds `Shared`, so it cannot notice otherwise).
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(control) = lock(&self.0.control).as_ref() {
            let _ = control.commands.send(Command::Stop);
        }
    }
}

/// What the handles and the driver share.
pub(crate) struct Shared {
    pub(crate) config: PhoneConfig,
    /// Each subscriber's queue; a dropped [`Events`] leaves a dead entry,
    /// removed at the next event.
    subscribers: Mutex<Vec<Weak<EventQueue>>>,
    pub(crate) status: watch::Sender<PhoneStatus>,
    control: Mutex<Option<Control>>,
    pub(crate) clock: WallClock,
    interceptor: Mutex<Option<DialInterceptor>>,
    /// The call history's writer, when the configuration asks for one (or
    /// why it could not be opened).
    #[cfg(feature = "history")]
    history: Option<Result<HistoryWriter, Error>>,
}

impl Shared {
    pub(crate) fn emit(&self, event: Event) {
        tracing::debug!(?event, "event");
        #[cfg(feature = "history")]
        if let Some(Ok(history)) = &self.history {
            history.observe(&event);
        }
        lock(&self.subscribers).retain(|s| match s.upgrade() {
            Some(queue) => {
                queue.push(event.clone());
                true
            }
            None => false,
        });
    }

    /// Ends every subscription (after [`Event::Stopped`]).
    pub(crate) fn close_subscriptions(&self) {
        for queue in lock(&self.subscribers).drain(..) {
            if let Some(queue) = queue.upgrade() {
                queue.close();
            }
        }
    }
}

type DialInterceptor = Arc<dyn Fn(&mut CallRequest) -> Result<(), String> + Send + Sync>;

/// Options for an outgoing call.
#[derive(Debug, Default)]
pub struct CallOptions {
    /// Display name in our From header for this call.
    pub display_name: Option<String>,
    /// Extra headers carried on the INVITE (`X-Order-Id: 42`, ...).
    pub headers: Vec<(String, String)>,
    /// What the call sends and where what it hears goes.
    pub audio: AudioSetup,
}

struct Control {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

/// What the handles send the driver.
pub(crate) enum Command {
    /// Run an action and reply with its outcome.
    Execute { action: Action, reply: oneshot::Sender<Result<ActionOutcome, Error>> },
    /// Unregister, hang up, close and end the driver.
    Stop,
}

/// A subscription to a phone's events, in the order they happened, held in
/// a bounded queue (see [`Phone::events`]).
pub struct Events(Arc<EventQueue>);

impl Events {
    /// The next event; `None` after the phone stopped and all events were read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is already waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv()
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("user", &self.shared.config.user)
            .field("domain", &self.shared.config.domain)
            .field("status", &*self.shared.status.borrow())
            .finish()
    }
}

impl Phone {
    /// A phone that is not started yet. With a
    /// [history](crate::PhoneConfigBuilder::history) configured, its
    /// database is opened (and migrated) here, a short blocking file
    /// operation; [`Phone::start`] fails if it could not be.
    pub fn new(config: PhoneConfig) -> Phone {
        #[cfg(feature = "history")]
        let history = config.history.as_deref().map(HistoryWriter::open);
        let shared = Arc::new(Shared {
            config,
            subscribers: Mutex::new(Vec::new()),
            status: watch::Sender::new(PhoneStatus::default()),
            control: Mutex::new(None),
            clock: WallClock::new(),
            interceptor: Mutex::new(None),
            #[cfg(feature = "history")]
            history,
        });
        Phone { _last_handle: Arc::new(StopOnDrop(shared.clone())), shared }
    }

    /// Subscribes to events from now on. Each subscriber gets every event,
    /// in a queue of its own that holds at most
    /// [`event_queue_capacity`](crate::PhoneConfigBuilder::event_queue_capacity)
    /// events (1024 by default). A subscriber that falls that far behind
    /// loses the events that arrive while its queue is full and reads an
    /// [`Event::Lagged`] with their count in their place: memory stays
    /// bounded, and nothing is dropped without a word.
    pub fn events(&self) -> Events {
        let queue = Arc::new(EventQueue::new(self.shared.config.event_queue_capacity));
        lock(&self.shared.subscribers).push(Arc::downgrade(&queue));
        Events(queue)
    }

    /// Starts the driver: connect (with failover and backoff), then register
    /// unless the configuration says not to. Must be called inside a tokio
    /// runtime. Returns at once; progress arrives as events.
    pub fn start(&self) -> Result<(), Error> {
        #[cfg(feature = "history")]
        if let Some(Err(e)) = &self.shared.history {
            return Err(e.clone());
        }
        let mut control = lock(&self.shared.control);
        if control.as_ref().is_some_and(|c| !c.task.is_finished()) {
            return Err(Error::AlreadyRunning);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = runtime.spawn(crate::driver::drive(self.shared.clone(), rx));
        *control = Some(Control { commands, task });
        Ok(())
    }

    /// Unregisters (waiting at most the configured unregister timeout for
    /// the answer), hangs up, closes the connection and ends the driver.
    /// With a history, returns once every call's record is written.
    pub async fn stop(&self) -> Result<(), Error> {
        let control = lock(&self.shared.control).take().ok_or(Error::NotRunning)?;
        let _ = control.commands.send(Command::Stop);
        let _ = control.task.await;
        // Once stopped, the history holds every call's end.
        #[cfg(feature = "history")]
        if let Ok(history) = self.history_writer() {
            history.recent(0).await?;
        }
        Ok(())
    }

    /// Runs one [`Action`]: what every typed method below does, and what
    /// front ends that read actions as data (the CLI's `phone` verb, a
    /// control protocol) call directly. For [`Action::Call`] the dial
    /// interceptor runs first.
    pub async fn execute(&self, action: Action) -> Result<ActionOutcome, Error> {
        #[cfg(feature = "history")]
        let action = match action {
            Action::History { limit } => return self.history(limit).await.map(ActionOutcome::History),
            Action::Note { of, note, rate, report } => {
                return self.note(of, Note { note, rate, report }).await.map(|_| ActionOutcome::Done);
            }
            other => other,
        };
        let mut action = action;
        if let Action::Call { target, display_name, headers, .. } = &mut action {
            let interceptor = lock(&self.shared.interceptor).clone();
            if let Some(intercept) = interceptor {
                let mut request = CallRequest {
                    target: std::mem::take(target),
                    display_name: display_name.take(),
                    headers: std::mem::take(headers),
                };
                intercept(&mut request).map_err(Error::CallVetoed)?;
                (*target, *display_name, *headers) = (request.target, request.display_name, request.headers);
            }
        }
        #[cfg(feature = "history")]
        let sent_headers = match &action {
            Action::Call { headers, .. } | Action::Consult { headers, .. } if !headers.is_empty() => {
                self.history_writer().ok().map(|history| (history, headers.clone()))
            }
            _ => None,
        };
        let (reply, outcome) = oneshot::channel();
        self.command(Command::Execute { action, reply })?;
        let outcome = outcome.await.map_err(|_| Error::NotRunning)?;
        #[cfg(feature = "history")]
        if let (Ok(ActionOutcome::Call(key)), Some((history, headers))) = (&outcome, sent_headers) {
            history.sent_headers(*key, headers);
        }
        outcome
    }

    /// The call history's `limit` newest records, newest first, every call
    /// event so far included (needs [`crate::PhoneConfigBuilder::history`];
    /// works whether the phone runs or not).
    #[cfg(feature = "history")]
    pub async fn history(&self, limit: usize) -> Result<Vec<CallRecord>, Error> {
        self.history_writer()?.recent(limit).await
    }

    /// Notes or rates the calls `which` names in the history (Bizfly
    /// `note`); returns how many records were. Fails when none matches or
    /// `note` sets nothing.
    #[cfg(feature = "history")]
    pub async fn note(&self, which: CallRef, note: Note) -> Result<usize, Error> {
        if note.is_empty() {
            return Err(Error::InvalidAction("a note needs a note, a rate or a report".into()));
        }
        self.history_writer()?.note(which, note).await
    }

    #[cfg(feature = "history")]
    fn history_writer(&self) -> Result<&HistoryWriter, Error> {
        match &self.shared.history {
            Some(Ok(history)) => Ok(history),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::History("no history configured (PhoneConfigBuilder::history)".into())),
        }
    }

    /// Runs an action whose progress arrives as events, without waiting.
    fn execute_detached(&self, action: Action) -> Result<(), Error> {
        let (reply, _) = oneshot::channel();
        self.command(Command::Execute { action, reply })
    }

    /// Registers now (or as soon as connected), and keeps the registration
    /// refreshed. The outcome arrives as [`Event::Registered`] or
    /// [`Event::RegistrationFailed`].
    pub fn register(&self) -> Result<(), Error> {
        self.execute_detached(Action::Register)
    }

    /// Removes the registration; [`Event::Unregistered`] follows.
    pub fn unregister(&self) -> Result<(), Error> {
        self.execute_detached(Action::Unregister)
    }

    /// Places a call to `target`: a number or user in our domain
    /// (`"1002"`), `user@host`, or a full `sip:` / `tel:` URI. Returns the
    /// call at once; [`Event::CallOutgoing`] follows, then progress.
    /// The dial interceptor, when set, may rewrite or veto the request first.
    pub async fn call(&self, target: &str, options: CallOptions) -> Result<Call, Error> {
        let action = Action::Call {
            target: target.to_string(),
            display_name: options.display_name,
            headers: options.headers,
            audio: options.audio,
        };
        match self.execute(action).await? {
            ActionOutcome::Call(key) => Ok(self.call_handle(key)),
            other => unreachable!("the driver answers Action::Call with ActionOutcome::Call, not {other:?}"),
        }
    }

    /// The handle of a call known by its key (from an event's
    /// [`crate::CallInfo::key`]). The call need not exist: its methods then
    /// fail with [`CallError::NoSuchCall`].
    pub fn call_handle(&self, key: CallKey) -> Call {
        Call { key, phone: self.clone() }
    }

    /// Sets the hook that sees every outgoing call before its INVITE is
    /// built (Aliyun's `onBeforeCallDialing`): it may rewrite the target,
    /// display name or headers, or veto the call with a reason.
    pub fn set_dial_interceptor(&self, hook: impl Fn(&mut CallRequest) -> Result<(), String> + Send + Sync + 'static) {
        *lock(&self.shared.interceptor) = Some(Arc::new(hook));
    }

    /// Answers a ringing incoming call (sending silence, discarding what
    /// is heard; see [`Phone::answer_with`]).
    pub async fn answer(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.answer_with(call, AudioSetup::default()).await
    }

    /// Answers a ringing incoming call with this audio.
    pub async fn answer_with(&self, call: impl Into<CallKey>, audio: AudioSetup) -> Result<(), Error> {
        self.done(Action::Answer { call: Some(call.into()), audio }).await
    }

    /// A call's media figures now: packets, loss, jitter, levels. After
    /// the call ended its last figures are on [`Event::CallEnded`]; this
    /// then fails with [`CallError::NoSuchCall`].
    pub async fn call_stats(&self, call: impl Into<CallKey>) -> Result<CallStats, Error> {
        match self.execute(Action::Stats { call: Some(call.into()) }).await? {
            ActionOutcome::Stats(stats) => Ok(*stats),
            other => unreachable!("the driver answers Action::Stats with ActionOutcome::Stats, not {other:?}"),
        }
    }

    /// Holds a call: a re-INVITE asks the far end to stop sending, and we
    /// send nothing (no renegotiation for [`Phone::mute`]). Idempotent;
    /// [`Event::CallHeld`] or [`Event::HoldFailed`] follows.
    pub async fn hold(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::Hold { call: Some(call.into()) }).await
    }

    /// Resumes a call we hold; [`Event::CallResumed`] or
    /// [`Event::HoldFailed`] follows.
    pub async fn resume(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::Resume { call: Some(call.into()) }).await
    }

    /// Blind transfer: asks the call's peer to call `target` (REFER).
    /// [`Event::TransferProgress`], then [`Event::TransferAccepted`] (the
    /// call then ends, unless configured otherwise) or
    /// [`Event::TransferFailed`] (the call goes on) follow.
    pub async fn transfer(&self, call: impl Into<CallKey>, target: &str) -> Result<(), Error> {
        self.done(Action::Transfer { call: Some(call.into()), target: target.to_string() }).await
    }

    /// Consults before an attended transfer: holds `call` and calls
    /// `target` on another line. Returns the consultation call; finish with
    /// [`Phone::complete`] or give up with [`Phone::retrieve`].
    pub async fn consult(&self, call: impl Into<CallKey>, target: &str, options: CallOptions) -> Result<Call, Error> {
        let action = Action::Consult {
            call: Some(call.into()),
            target: target.to_string(),
            headers: options.headers,
            audio: options.audio,
        };
        match self.execute(action).await? {
            ActionOutcome::Call(key) => Ok(self.call_handle(key)),
            other => unreachable!("the driver answers Action::Consult with ActionOutcome::Call, not {other:?}"),
        }
    }

    /// Gives up a consultation: hangs `consult` up and resumes the call it
    /// was about, which is returned.
    pub async fn retrieve(&self, consult: impl Into<CallKey>) -> Result<Call, Error> {
        match self.execute(Action::Retrieve { call: Some(consult.into()) }).await? {
            ActionOutcome::Call(key) => Ok(self.call_handle(key)),
            other => unreachable!("the driver answers Action::Retrieve with ActionOutcome::Call, not {other:?}"),
        }
    }

    /// Attended transfer: connects the peer of `call` with the peer of
    /// `consult` (REFER to the latter's Contact with Replaces). Both calls
    /// end when [`Event::TransferAccepted`] comes.
    pub async fn complete(&self, call: impl Into<CallKey>, consult: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::Complete { call: Some(call.into()), with: consult.into() }).await
    }

    /// Accepts a transfer request ([`Event::TransferRequested`], policy
    /// [`crate::TransferPolicy::Ask`]): the new call is placed with `audio`.
    pub async fn accept_transfer(&self, call: impl Into<CallKey>, audio: AudioSetup) -> Result<(), Error> {
        self.done(Action::AcceptTransfer { call: Some(call.into()), audio }).await
    }

    /// Refuses a transfer request (603 Decline).
    pub async fn reject_transfer(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::RejectTransfer { call: Some(call.into()) }).await
    }

    /// Mutes (or unmutes) what we send: the far end hears silence. No renegotiation.
    pub async fn mute(&self, call: impl Into<CallKey>, muted: bool) -> Result<(), Error> {
        self.set_muted(call.into(), AudioDirection::Send, muted).await
    }

    /// Mutes (or unmutes) what we hear. No renegotiation.
    pub async fn mute_incoming(&self, call: impl Into<CallKey>, muted: bool) -> Result<(), Error> {
        self.set_muted(call.into(), AudioDirection::Receive, muted).await
    }

    async fn set_muted(&self, call: CallKey, direction: AudioDirection, muted: bool) -> Result<(), Error> {
        let call = Some(call);
        self.done(if muted { Action::Mute { call, direction } } else { Action::Unmute { call, direction } }).await
    }

    /// Playback volume of a call: 0.0 (silent) to 1.0 (as received), up to 4.0.
    pub async fn set_volume(&self, call: impl Into<CallKey>, volume: f32) -> Result<(), Error> {
        self.done(Action::Volume { call: Some(call.into()), volume }).await
    }

    /// Sends `audio` on a call from its next frame on (a prompt, a tone,
    /// silence); [`Event::SendAudioEnded`] reports when a file runs out.
    pub async fn set_send_audio(&self, call: impl Into<CallKey>, audio: SendAudio) -> Result<(), Error> {
        self.done(Action::SetSendAudio { call: Some(call.into()), audio }).await
    }

    /// Plays what a call receives into `audio` from now on.
    pub async fn set_receive_audio(&self, call: impl Into<CallKey>, audio: ReceiveAudio) -> Result<(), Error> {
        self.done(Action::SetReceiveAudio { call: Some(call.into()), audio }).await
    }

    /// Refuses a ringing incoming call with `status` (486 Busy Here, 603 Decline, ...).
    pub async fn reject(&self, call: impl Into<CallKey>, status: u16) -> Result<(), Error> {
        self.done(Action::Reject { call: Some(call.into()), status }).await
    }

    /// Ends a call in any state: CANCEL while it rings out, BYE once up,
    /// 486 while it rings here.
    pub async fn hangup(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::Hangup { call: Some(call.into()) }).await
    }

    /// Sends DTMF digits (`0-9 * # A-D`, `,` a 2 s pause) on a call, after
    /// those already queued by any method: a call has one DTMF queue, and
    /// its digits go out one at a time, in order; it is dropped when the
    /// call ends. [`Event::DtmfSent`] reports each digit sent.
    pub async fn send_dtmf(
        &self,
        call: impl Into<CallKey>,
        digits: &str,
        options: crate::dtmf::DtmfOptions,
    ) -> Result<(), Error> {
        let crate::dtmf::DtmfOptions { method, duration_ms, gap_ms } = options;
        self.done(Action::Dtmf { call: Some(call.into()), digits: digits.to_string(), method, duration_ms, gap_ms })
            .await
    }

    /// Records a call to a WAV file from now on: both directions, as
    /// stereo (what we send left, what we hear right) or mixed. Written off
    /// the audio task: a slow disk drops frames (counted in
    /// [`CallStats::recording_dropped_frames`]), it never delays one.
    /// [`Event::RecordingStarted`] follows, and [`Event::RecordingStopped`]
    /// once the file is complete; the call's history record keeps the path.
    pub async fn record(
        &self,
        call: impl Into<CallKey>,
        path: impl Into<std::path::PathBuf>,
        channels: crate::media::RecordChannels,
    ) -> Result<(), Error> {
        self.done(Action::Record { call: Some(call.into()), path: path.into(), channels }).await
    }

    /// Stops recording a call; its file is completed.
    pub async fn stop_recording(&self, call: impl Into<CallKey>) -> Result<(), Error> {
        self.done(Action::StopRecording { call: Some(call.into()) }).await
    }

    async fn done(&self, action: Action) -> Result<(), Error> {
        self.execute(action).await.map(|_| ())
    }

    /// The phone's status now (connected, registered, its calls).
    pub fn status(&self) -> PhoneStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver that sees every change of [`Phone::status`].
    pub fn status_changes(&self) -> watch::Receiver<PhoneStatus> {
        self.shared.status.subscribe()
    }

    /// True while the WebSocket connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.status.borrow().connected
    }

    /// True while the registrar holds our binding.
    pub fn is_registered(&self) -> bool {
        self.shared.status.borrow().registered
    }

    fn command(&self, cmd: Command) -> Result<(), Error> {
        let control = lock(&self.shared.control);
        let control = control.as_ref().ok_or(Error::NotRunning)?;
        control.commands.send(cmd).map_err(|_| Error::NotRunning)
    }
}

/// One call of a [`Phone`]: a cheap handle over the same actions, so a
/// program that handles many calls keeps no map of keys of its own.
///
/// ```no_run
/// # async fn bot(phone: webphone::Phone, call: webphone::CallInfo) -> Result<(), webphone::Error> {
/// let call = phone.call_handle(call.key);
/// call.answer().await?;
/// let mut events = call.events(); // this call's events only
/// while let Some(event) = events.recv().await {
///     if let webphone::Event::CallEnded { stats, .. } = event {
///         println!("received {} packets", stats.map_or(0, |s| s.rx_packets));
///         break;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Call {
    key: CallKey,
    phone: Phone,
}

impl Call {
    /// The call's key (as events report it).
    pub fn key(&self) -> CallKey {
        self.key
    }

    /// The phone the call belongs to.
    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    /// Answers the call (ringing here) with silence; see [`Call::answer_with`].
    pub async fn answer(&self) -> Result<(), Error> {
        self.phone.answer(self.key).await
    }

    /// Answers the call (ringing here) with this audio.
    pub async fn answer_with(&self, audio: AudioSetup) -> Result<(), Error> {
        self.phone.answer_with(self.key, audio).await
    }

    /// Refuses the call (ringing here) with `status`.
    pub async fn reject(&self, status: u16) -> Result<(), Error> {
        self.phone.reject(self.key, status).await
    }

    /// Ends the call in any state.
    pub async fn hangup(&self) -> Result<(), Error> {
        self.phone.hangup(self.key).await
    }

    /// The call's media figures now.
    pub async fn stats(&self) -> Result<CallStats, Error> {
        self.phone.call_stats(self.key).await
    }

    /// Holds the call (see [`Phone::hold`]).
    pub async fn hold(&self) -> Result<(), Error> {
        self.phone.hold(self.key).await
    }

    /// Resumes the call (see [`Phone::resume`]).
    pub async fn resume(&self) -> Result<(), Error> {
        self.phone.resume(self.key).await
    }

    /// Mutes (or unmutes) what we send.
    pub async fn mute(&self, muted: bool) -> Result<(), Error> {
        self.phone.mute(self.key, muted).await
    }

    /// Blind transfer of this call to `target` (see [`Phone::transfer`]).
    pub async fn transfer(&self, target: &str) -> Result<(), Error> {
        self.phone.transfer(self.key, target).await
    }

    /// Holds this call and consults `target` (see [`Phone::consult`]).
    pub async fn consult(&self, target: &str, options: CallOptions) -> Result<Call, Error> {
        self.phone.consult(self.key, target, options).await
    }

    /// Attended transfer of this call to the peer of `consult` (see [`Phone::complete`]).
    pub async fn complete(&self, consult: &Call) -> Result<(), Error> {
        self.phone.complete(self.key, consult.key).await
    }

    /// Sends DTMF digits on the call (see [`Phone::send_dtmf`]).
    pub async fn send_dtmf(&self, digits: &str, options: crate::dtmf::DtmfOptions) -> Result<(), Error> {
        self.phone.send_dtmf(self.key, digits, options).await
    }

    /// Mutes (or unmutes) what we hear.
    pub async fn mute_incoming(&self, muted: bool) -> Result<(), Error> {
        self.phone.mute_incoming(self.key, muted).await
    }

    /// Playback volume: 0.0 to 4.0.
    pub async fn set_volume(&self, volume: f32) -> Result<(), Error> {
        self.phone.set_volume(self.key, volume).await
    }

    /// Sends `audio` from the next frame on (a prompt, a tone, silence);
    /// [`Event::SendAudioEnded`] reports when a file runs out.
    pub async fn play(&self, audio: SendAudio) -> Result<(), Error> {
        self.phone.set_send_audio(self.key, audio).await
    }

    /// Plays what the call receives into `audio` from now on.
    pub async fn set_receive_audio(&self, audio: ReceiveAudio) -> Result<(), Error> {
        self.phone.set_receive_audio(self.key, audio).await
    }

    /// Records the call to a WAV file (see [`Phone::record`]).
    pub async fn record(
        &self,
        path: impl Into<std::path::PathBuf>,
        channels: crate::media::RecordChannels,
    ) -> Result<(), Error> {
        self.phone.record(self.key, path, channels).await
    }

    /// Stops recording the call.
    pub async fn stop_recording(&self) -> Result<(), Error> {
        self.phone.stop_recording(self.key).await
    }

    /// This call's events from now on (every event that carries it).
    pub fn events(&self) -> CallEvents {
        CallEvents { key: self.key, events: self.phone.events() }
    }
}

impl From<Call> for CallKey {
    fn from(call: Call) -> CallKey {
        call.key
    }
}

impl From<&Call> for CallKey {
    fn from(call: &Call) -> CallKey {
        call.key
    }
}

/// Two handles are equal when they name the same call of the same phone.
impl PartialEq for Call {
    fn eq(&self, other: &Call) -> bool {
        self.key == other.key && Arc::ptr_eq(&self.phone.shared, &other.phone.shared)
    }
}

impl PartialEq<CallKey> for Call {
    fn eq(&self, key: &CallKey) -> bool {
        self.key == *key
    }
}

impl PartialEq<Call> for CallKey {
    fn eq(&self, call: &Call) -> bool {
        *self == call.key
    }
}

/// The events of one call ([`Call::events`]).
pub struct CallEvents {
    key: CallKey,
    events: Events,
}

impl CallEvents {
    /// The call's next event; `None` once the phone stopped. An
    /// [`Event::Lagged`] comes through too: this subscription fell behind,
    /// and some of the lost events may have been this call's.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            let event = self.events.recv().await?;
            if matches!(event, Event::Lagged { .. }) || event.call().is_some_and(|c| c.key == self.key) {
                return Some(event);
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (plain pushes and swaps), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `NoSuchCall` error, for actions on a call that does not exist.
pub(crate) fn no_such_call() -> Error {
    Error::Call(CallError::NoSuchCall)
}
