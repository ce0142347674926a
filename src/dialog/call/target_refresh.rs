//! Surviving a WebSocket drop: a confirmed call goes on (its media is peer
//! to peer), but the proxy's record of how to reach us named the dead
//! connection (Kamailio's Contact alias), so the peer's BYE would be lost.
//! When the connection is back, the call sends a target refresh (RFC 3261
//! §12.2: UPDATE without SDP when the peer allows it, else a re-INVITE with
//! our current SDP), whose Contact the proxy records anew
//! ([`CallEvent::TargetRefreshed`] once the peer took it). A refresh that
//! fails is reported ([`CallEvent::TargetRefreshFailed`]) and retried with
//! backoff (1, 2, 4 ... 30 s); it never ends the call by itself, except a
//! 481 (the peer has no such dialog any more).
//!
//! Also here: what a call does when the connection drops, for the
//! requests it had in flight (their transactions die with the connection).

use std::time::{Duration, Instant};

use super::session::{OfferAnswer, OfferCarrier};
use super::{Call, CallCtx, CallState, Originator, Purpose};
use crate::dialog::CallEvent;
use crate::sip::{HeaderName, Method, Response};

/// The longest wait between two refresh attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a refresh waits for an offer/answer exchange in progress.
const POSTPONE: Duration = Duration::from_secs(1);

/// A target refresh to make.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TargetRefresh {
    /// Failed attempts so far.
    failures: u32,
    /// When to (re)try; `None` while one is in flight.
    due: Option<Instant>,
}

impl Call {
    /// Input: the transport is back. A confirmed call refreshes its target.
    pub(crate) fn handle_reconnected(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.state == CallState::Confirmed {
            self.target_refresh = Some(TargetRefresh { failures: 0, due: Some(now) });
            self.try_target_refresh(ctx, now);
        }
    }

    /// When the next refresh attempt is due.
    pub(super) fn target_refresh_deadline(&self) -> Option<Instant> {
        self.target_refresh.and_then(|t| t.due).filter(|_| !self.is_ended())
    }

    pub(super) fn handle_target_refresh_timer(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.target_refresh_deadline().is_some_and(|t| now >= t) {
            self.try_target_refresh(ctx, now);
        }
    }

    fn try_target_refresh(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        let Some(refresh) = &mut self.target_refresh else { return };
        if self.state != CallState::Confirmed {
            self.target_refresh = None;
            return;
        }
        if !self.offer_answer.is_idle() {
            // An exchange is in progress (a peer's re-INVITE already reached us): after it.
            refresh.due = Some(now + POSTPONE);
            return;
        }
        refresh.due = None;
        let reinvite = !self.dialog.peer_allows_update;
        let method = if reinvite { Method::Invite } else { Method::Update };
        let mut req = self.dialog.request(method, ctx.contact);
        if reinvite {
            if let Some(sdp) = self.local_sdp.clone() {
                req.headers.push(HeaderName::ContentType, "application/sdp");
                req.body = sdp;
            }
            self.offer_answer = OfferAnswer::OfferSent(OfferCarrier::ReInvite { refresh: true });
            self.reinvite = Some(ctx.send(req, Purpose::TargetRefresh { reinvite }));
        } else {
            ctx.send(req, Purpose::TargetRefresh { reinvite });
        }
    }

    /// Input: the response to our target refresh.
    pub(super) fn handle_target_refresh_response(
        &mut self,
        ctx: &mut CallCtx<'_>,
        reinvite: bool,
        resp: &Response,
        now: Instant,
    ) {
        if resp.status.is_provisional() || self.is_ended() {
            return;
        }
        if resp.status.is_success() {
            self.target_refresh = None;
            tracing::debug!(call = %self.key, "target refreshed after reconnecting");
            ctx.emit(CallEvent::TargetRefreshed { call: self.snapshot.clone() });
            // ACK (re-INVITE), the session timer, the end of the exchange.
            let purpose = if reinvite { Purpose::ReInvite } else { Purpose::Update };
            self.handle_offer_response(ctx, purpose, resp, now);
            return;
        }
        self.end_refresh_exchange(reinvite);
        let code = resp.status.as_u16();
        if code == 481 {
            self.target_refresh = None;
            self.bye(ctx, Originator::System, "the peer lost the dialog", now);
            return;
        }
        self.target_refresh_failed(ctx, Some(code), resp.reason_phrase(), now);
    }

    /// Input: our target refresh got no answer.
    pub(super) fn handle_target_refresh_timeout(&mut self, ctx: &mut CallCtx<'_>, reinvite: bool, now: Instant) {
        self.end_refresh_exchange(reinvite);
        self.target_refresh_failed(ctx, None, "no answer", now);
    }

    fn end_refresh_exchange(&mut self, reinvite: bool) {
        if reinvite && matches!(self.offer_answer, OfferAnswer::OfferSent(OfferCarrier::ReInvite { refresh: true })) {
            self.offer_answer = OfferAnswer::Idle;
        }
    }

    fn target_refresh_failed(&mut self, ctx: &mut CallCtx<'_>, status: Option<u16>, reason: &str, now: Instant) {
        let Some(refresh) = &mut self.target_refresh else { return };
        refresh.failures += 1;
        let wait = Duration::from_secs(1 << refresh.failures.saturating_sub(1).min(5)).min(MAX_BACKOFF);
        refresh.due = Some(now + wait);
        tracing::info!(call = %self.key, ?status, reason, ?wait, "target refresh failed: retrying");
        ctx.emit(CallEvent::TargetRefreshFailed {
            call: self.snapshot.clone(),
            status,
            reason: reason.to_string(),
            retry_in: wait,
        });
        self.sync_hold(ctx);
    }

    /// Input: the transport is gone. A call still being set up cannot
    /// complete; a confirmed one goes on (its media is peer to peer), but
    /// what it had in flight died with the connection: an offer of ours is
    /// given up (a hold is reported failed), a refresh is made again on
    /// reconnection, and a BYE counts as answered by a transport error (503,
    /// RFC 3261 §8.1.3.1).
    pub(crate) fn handle_disconnected(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.bye_pending() {
            self.finish_bye(ctx, Some(503), "the connection was lost before the BYE was answered");
            return;
        }
        if self.is_ended() {
            return;
        }
        match self.state {
            CallState::Confirmed => {}
            CallState::Ringing | CallState::Answering | CallState::WaitingAck => {
                return self.end(ctx, Originator::System, None, "connection lost while ringing here", now);
            }
            _ => {
                // Our INVITE's transaction is gone: CANCEL it when the connection is back.
                self.cancel_on_reconnect = self.invite.is_some() && self.state != CallState::Dialing;
                return self.end(ctx, Originator::System, None, "connection lost while calling out", now);
            }
        }
        match std::mem::take(&mut self.offer_answer) {
            OfferAnswer::OfferSent(OfferCarrier::ReInvite { refresh: false })
            | OfferAnswer::Retrying { carrier: OfferCarrier::ReInvite { refresh: false }, .. } => {
                self.timers.offer_retry = None;
                self.reoffer_failed(ctx, None, "connection lost");
            }
            OfferAnswer::OfferSent(OfferCarrier::ReInvite { refresh: true })
            | OfferAnswer::Retrying { carrier: OfferCarrier::ReInvite { refresh: true }, .. } => {
                self.timers.offer_retry = None;
            }
            other => self.offer_answer = other,
        }
    }

    /// Whether this call, ended, waits for a CANCEL to send once reconnected.
    pub(crate) fn wants_cancel_on_reconnect(&self) -> bool {
        self.cancel_on_reconnect
    }

    /// The connection is back: CANCEL the INVITE the drop orphaned, so the
    /// callee stops ringing (the proxy still has its transaction).
    pub(crate) fn cancel_orphaned_invite(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if std::mem::take(&mut self.cancel_on_reconnect) {
            self.send_cancel(ctx, now);
            // The call ended already; nothing waits for the INVITE's answer.
            self.timers.cancel = None;
            self.state = CallState::Ended;
        }
    }
}
