//! Transfer across calls, the agent's part (each call's own part is
//! `call/transfer.rs`):
//! - blind transfer: [`UserAgent::transfer`] REFERs a call's peer to a target;
//! - attended transfer (Aliyun's consultation flow): [`UserAgent::consult`]
//!   holds a call and calls someone on another line,
//!   [`UserAgent::retrieve`] drops that consultation and resumes the first
//!   call, [`UserAgent::complete`] REFERs the first call's peer to the
//!   consulted party's Contact with `Replaces` naming the consultation
//!   dialog, and both our calls end when the transfer succeeds;
//! - transferee: a REFER goes through [`super::CallSettings::transfer_policy`]
//!   (or the application: [`UserAgent::answer_transfer`]); once accepted the
//!   new call is placed and each of its responses is reported to the
//!   referrer as a NOTIFY on the old call;
//! - transfer target: an INVITE with `Replaces` (RFC 3891) that names one of
//!   our dialogs takes its place: it is answered at once, the old call gets
//!   BYE (or CANCEL) and [`CallEvent::CallReplaced`] is reported.
//!
//! # Choices where the RFCs leave room
//! - The consulted party is named by its Contact, not its AoR: the AoR may
//!   fork to other devices or be refused by the PBX (PJSIP users hit 403).
//! - `Replaces` is matched in both tag orders (JsSIP reverses them for
//!   calls it received); `early-only` on a confirmed dialog gets 486, an
//!   early dialog we did not originate 481, a dialog that ended 603.
//! - A REFER asked of us while the application decides is declined (603)
//!   after [`ASK_TIMEOUT`]: the referrer's transaction times out at 32 s.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::call::{CallError, CallKey, CallRequest, CallState, ReferRequest, TransferPolicy, names_dialog};
use super::transaction::TransactionKey;
use super::{AgentEvent, CallEvent, UserAgent};
use crate::sip::{HeaderName, Replaces, Request, StatusCode, TypedHeader};

/// How long a REFER waits for the application's decision.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// How long, after an attended transfer of ours succeeded, the consulted
/// party has to end our consultation call itself (RFC 3891 §3: the UA that
/// accepts Replaces ends the replaced dialog) before we send our own BYE.
/// Both sending BYE at once is legal but races: JsSIP then throws on its
/// own terminate of a session our BYE already ended.
pub(super) const REPLACED_BYE_GRACE: Duration = Duration::from_secs(2);

/// How many ended dialogs are remembered, so that an INVITE replacing one
/// gets 603 rather than 481.
const ENDED_DIALOGS_KEPT: usize = 32;

/// A REFER waiting for the application's decision.
#[derive(Debug)]
pub(super) struct PendingRefer {
    request: Request,
    tx: TransactionKey,
    refer: ReferRequest,
    deadline: Instant,
}

/// The agent's transfer bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Transfers {
    /// Consultation call → the call it consults about.
    consultations: Vec<(CallKey, CallKey)>,
    /// Call placed on the peer's REFER → the call the REFER came in.
    referred: Vec<(CallKey, CallKey)>,
    /// REFERs waiting for the application, by call.
    pending: Vec<(CallKey, PendingRefer)>,
    /// Dialogs that ended lately: (Call-ID, local tag, remote tag).
    ended: VecDeque<(String, String, String)>,
    /// Consultation calls of completed attended transfers, ended by us at
    /// the deadline unless the consulted party ended them first.
    replaced: Vec<(CallKey, Instant)>,
}

impl Transfers {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|(_, p)| p.deadline).chain(self.replaced.iter().map(|(_, at)| *at)).min()
    }

    /// The call a consultation call consults about.
    pub(super) fn consulted_from(&self, consult: CallKey) -> Option<CallKey> {
        self.consultations.iter().find(|(c, _)| *c == consult).map(|(_, o)| *o)
    }
}

impl UserAgent {
    /// Command: blind transfer. REFERs the peer of `key` to `target` (a
    /// number, `user@host` or URI); [`CallEvent::TransferProgress`], then
    /// [`CallEvent::TransferAccepted`] or [`CallEvent::TransferFailed`] follow.
    pub fn transfer(&mut self, key: CallKey, target: &str, now: Instant) -> Result<(), CallError> {
        let uri = self.resolve_target(target)?;
        let refer_to = crate::sip::NameAddr::new(uri);
        self.with_call(key, now, |call, ctx| call.transfer(ctx, &refer_to, None, now))
            .unwrap_or(Err(CallError::NoSuchCall))
    }

    /// Command: consult before transferring. Holds `key` and calls
    /// `request`'s target on another line; returns the consultation call.
    pub fn consult(&mut self, key: CallKey, request: CallRequest, now: Instant) -> Result<CallKey, CallError> {
        match self.call_state(key) {
            None => return Err(CallError::NoSuchCall),
            Some(CallState::Confirmed) => {}
            Some(_) => return Err(CallError::InvalidState),
        }
        // Held even when the lines policy is off: the party must not hear the consultation.
        self.hold(key, now)?;
        let consult = self.call(request, now)?;
        self.transfers.consultations.push((consult, key));
        Ok(consult)
    }

    /// Command: give up a consultation: hangs `consult` up and resumes the
    /// call it consulted about (Aliyun's `thirdCallRetrieve`). Returns that call.
    pub fn retrieve(&mut self, consult: CallKey, now: Instant) -> Result<CallKey, CallError> {
        let Some(original) = self.transfers.consulted_from(consult) else {
            return Err(if self.calls.contains_key(&consult) {
                CallError::InvalidState
            } else {
                CallError::NoSuchCall
            });
        };
        self.hangup(consult, now)?;
        self.transfers.consultations.retain(|(c, _)| *c != consult);
        self.resume(original, now)?;
        Ok(original)
    }

    /// Command: attended transfer. REFERs the peer of `key` to the party of
    /// `consult` (its Contact, with `Replaces` naming our dialog with it);
    /// both our calls end when the transfer succeeds.
    pub fn complete(&mut self, key: CallKey, consult: CallKey, now: Instant) -> Result<(), CallError> {
        if key == consult {
            return Err(CallError::InvalidState);
        }
        let refer_to = match self.calls.get(&consult) {
            None => return Err(CallError::NoSuchCall),
            Some(c) => c.replacing_address().ok_or(CallError::InvalidState)?,
        };
        self.with_call(key, now, |call, ctx| call.transfer(ctx, &refer_to, Some(consult), now))
            .unwrap_or(Err(CallError::NoSuchCall))
    }

    /// The call a consultation call ([`UserAgent::consult`]) consults about.
    pub fn consultation_of(&self, consult: CallKey) -> Option<CallKey> {
        self.transfers.consulted_from(consult)
    }

    /// Command: the application's decision on a REFER it was asked about
    /// ([`TransferPolicy::Ask`]).
    pub fn answer_transfer(&mut self, key: CallKey, accept: bool, now: Instant) -> Result<(), CallError> {
        let Some(i) = self.transfers.pending.iter().position(|(k, _)| *k == key) else {
            return Err(if self.calls.contains_key(&key) { CallError::InvalidState } else { CallError::NoSuchCall });
        };
        let (_, pending) = self.transfers.pending.remove(i);
        if accept {
            self.accept_refer(key, pending, now);
        } else {
            self.decline_refer(&pending, now);
        }
        Ok(())
    }

    /// Input: a REFER in the dialog of `key`.
    pub(super) fn handle_refer(&mut self, key: CallKey, req: &Request, tx: &TransactionKey, now: Instant) {
        let checked = self.calls.get(&key).map(|c| c.check_refer(req));
        let refer = match checked {
            Some(Ok(refer)) => refer,
            Some(Err(status)) => return self.reply(req, tx, status, now),
            None => return self.reply(req, tx, StatusCode::CALL_DOES_NOT_EXIST, now),
        };
        if let Some(call) = self.calls.get(&key) {
            self.emit(AgentEvent::Call(CallEvent::TransferRequested {
                call: call.snapshot().clone(),
                target: refer.target.to_string(),
                referred_by: refer.referred_by.clone(),
                replaces: refer.replaces.is_some(),
            }));
        }
        let pending = PendingRefer { request: req.clone(), tx: tx.clone(), refer, deadline: now + ASK_TIMEOUT };
        match self.cfg.calls.transfer_policy {
            TransferPolicy::Accept => self.accept_refer(key, pending, now),
            TransferPolicy::Reject => self.decline_refer(&pending, now),
            TransferPolicy::Ask => {
                self.transfers.pending.retain(|(k, _)| *k != key);
                self.transfers.pending.push((key, pending));
            }
        }
    }

    /// An attended transfer of ours succeeded: `consult` is ended
    /// [`REPLACED_BYE_GRACE`] from now unless the consulted party ends it first.
    pub(super) fn end_replaced_later(&mut self, consult: CallKey, now: Instant) {
        self.transfers.replaced.push((consult, now + REPLACED_BYE_GRACE));
    }

    /// Decisions the application did not make in time: declined; replaced
    /// consultation calls their peer did not end: hung up.
    pub(super) fn handle_transfer_timeouts(&mut self, now: Instant) {
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.transfers.replaced).into_iter().partition(|(_, at)| now >= *at);
        self.transfers.replaced = keep;
        for (consult, _) in due {
            if self.calls.get(&consult).is_some_and(|c| !c.is_ended()) {
                tracing::debug!(call = %consult, "the consulted party kept the replaced call: hanging it up");
                let _ = self.hangup(consult, now);
            }
        }
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.transfers.pending).into_iter().partition(|(_, p)| now >= p.deadline);
        self.transfers.pending = keep;
        for (key, pending) in due {
            tracing::info!(call = %key, "transfer request not answered in time: declined");
            self.decline_refer(&pending, now);
        }
    }

    fn decline_refer(&mut self, pending: &PendingRefer, now: Instant) {
        self.reply(&pending.request, &pending.tx, StatusCode::DECLINE, now);
    }

    /// 202, NOTIFY 100, and the new call; a call that cannot be placed is
    /// reported to the referrer as the final NOTIFY.
    fn accept_refer(&mut self, key: CallKey, pending: PendingRefer, now: Instant) {
        let PendingRefer { request, tx, refer, .. } = pending;
        let accepted = self.with_call(key, now, |call, ctx| {
            if call.state() != CallState::Confirmed {
                return false;
            }
            call.accept_refer(ctx, &request, &tx, &refer);
            true
        });
        if accepted != Some(true) {
            self.reply(&request, &tx, StatusCode::CALL_DOES_NOT_EXIST, now);
            return;
        }
        let mut headers = Vec::new();
        if let Some(replaces) = &refer.replaces {
            headers.push(("Replaces".to_string(), replaces.clone()));
        }
        if let Some(by) = &refer.referred_by {
            headers.push(("Referred-By".to_string(), by.clone()));
        }
        let request = CallRequest { target: refer.target.to_string(), display_name: None, headers };
        match self.place_call(request, Some(key), now) {
            Ok(new) => self.transfers.referred.push((new, key)),
            Err(e) => {
                let (code, reason) = match e {
                    CallError::Busy => (486, "Busy Here"),
                    CallError::ModeForbids => (403, "Forbidden"),
                    CallError::InvalidTarget(_) => (400, "Bad Request"),
                    _ => (503, "Service Unavailable"),
                };
                tracing::info!(call = %key, error = %e, "the referred call could not be placed");
                self.with_call(key, now, |call, ctx| call.notify_referred(ctx, code, reason));
            }
        }
    }

    /// A call placed on a REFER made progress: the referrer hears of it.
    pub(super) fn relay_transfer_progress(&mut self, key: CallKey, event: &CallEvent, now: Instant) {
        let Some(&(_, old)) = self.transfers.referred.iter().find(|(new, _)| *new == key) else { return };
        let (code, reason) = match event {
            CallEvent::Progress { status, reason, .. } => (*status, reason.clone()),
            CallEvent::Confirmed(_) => (200, "OK".to_string()),
            CallEvent::Ended(s) => match &s.end {
                Some(end) => (end.status.filter(|c| *c >= 300).unwrap_or(487), end.reason.clone()),
                None => (487, "Request Terminated".to_string()),
            },
            _ => return,
        };
        if code >= 200 {
            self.transfers.referred.retain(|(new, _)| *new != key);
        }
        self.with_call(old, now, |call, ctx| call.notify_referred(ctx, code, &reason));
    }

    /// Input: a new INVITE with a `Replaces` header. Returns false when the
    /// INVITE must be handled as an ordinary new call (it never is: a
    /// Replaces that names no dialog of ours is refused).
    pub(super) fn handle_replacing_invite(&mut self, req: &Request, tx: &TransactionKey, now: Instant) {
        let replaces = match req.headers.get(&HeaderName::Replaces).map(Replaces::parse) {
            Some(Ok(r)) => r,
            _ => return self.reply(req, tx, StatusCode::BAD_REQUEST, now),
        };
        let found = self.calls.values().find(|c| !c.is_ended() && c.replaced_by(&replaces)).map(|c| (c.key(), c));
        let Some((old, call)) = found else {
            let ended = self.calls.values().any(|c| c.is_ended() && c.replaced_by(&replaces))
                || self.transfers.ended.iter().any(|(id, local, remote)| names_dialog(&replaces, id, local, remote));
            let status = if ended { StatusCode::DECLINE } else { StatusCode::CALL_DOES_NOT_EXIST };
            return self.reply(req, tx, status, now);
        };
        let outgoing = call.snapshot().direction == super::call::CallDirection::Outgoing;
        let status = match call.state() {
            CallState::Confirmed | CallState::WaitingAck if replaces.early_only => Some(StatusCode::BUSY_HERE),
            CallState::Confirmed | CallState::WaitingAck => None,
            CallState::Calling | CallState::Early if outgoing => None,
            _ => Some(StatusCode::CALL_DOES_NOT_EXIST),
        };
        if let Some(status) = status {
            return self.reply(req, tx, status, now);
        }
        let Some(new) = self.accept_new_invite(req, tx, now) else { return };
        let (Some(old_snapshot), Some(new_snapshot)) =
            (self.call_snapshot(old).cloned(), self.call_snapshot(new).cloned())
        else {
            return;
        };
        self.emit(AgentEvent::Call(CallEvent::CallReplaced { old: old_snapshot, new: new_snapshot }));
        let _ = self.hangup(old, now);
        let _ = self.answer(new, now);
    }

    /// Remembers the dialogs of calls about to be forgotten, and forgets
    /// the bookkeeping of calls that ended.
    pub(super) fn forget_transfers_of_ended(&mut self) {
        let ended: Vec<_> =
            self.calls.values().filter(|c| c.is_ended() && !c.lingers()).filter_map(|c| c.dialog_id()).collect();
        for dialog in ended {
            {
                self.transfers.ended.push_back(dialog);
                if self.transfers.ended.len() > ENDED_DIALOGS_KEPT {
                    self.transfers.ended.pop_front();
                }
            }
        }
        let live = |k: &CallKey| self.calls.get(k).is_some_and(|c| !c.is_ended());
        let (consultations, pending) = (&self.transfers.consultations, &self.transfers.pending);
        let keep_consultations: Vec<_> = consultations.iter().copied().filter(|(c, o)| live(c) && live(o)).collect();
        let drop_pending: Vec<CallKey> = pending.iter().map(|(k, _)| *k).filter(|k| !live(k)).collect();
        self.transfers.consultations = keep_consultations;
        self.transfers.pending.retain(|(k, _)| !drop_pending.contains(k));
        // A referred call that ended has sent its final NOTIFY already.
        let referred: Vec<_> = self.transfers.referred.iter().copied().filter(|(n, _)| live(n)).collect();
        self.transfers.referred = referred;
    }
}
