//! The offer/answer exchange (RFC 3264 over RFC 3261 §13-14 and RFC 3311):
//! one sub-state, [`OfferAnswer`], that the initial INVITE, re-INVITE and
//! UPDATE all go through, in both directions.
//!
//! At most one exchange is in progress. A remote offer that arrives while
//! one is gets 491; a 491 to our offer is retried after RFC 3261 §14.1's
//! random wait. SDP never comes from here: the call asks the media side
//! ([`MediaRequest`]) and is handed the result
//! ([`Call::handle_local_sdp`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use super::{Call, CallCtx, CallDirection, CallState, Originator, Purpose};
use crate::contract::{MediaRequest, offered_direction};
use crate::dialog::transaction::TransactionKey;
use crate::sip::validate::response_to;
use crate::sip::{CSeq, HeaderName, Method, Request, Response, StatusCode};

/// Where the offer/answer exchange of a call stands.
#[derive(Clone, Debug, Default)]
pub(crate) enum OfferAnswer {
    /// No exchange in progress.
    #[default]
    Idle,
    /// The media side is making our offer; it leaves in `OfferCarrier`.
    MakingOffer(OfferCarrier),
    /// Our offer left in `OfferCarrier`; its answer is awaited.
    OfferSent(OfferCarrier),
    /// The peer's offer is here; our answer leaves in the response to it
    /// (once the application answers, for an initial INVITE).
    RemoteOffer(Box<RemoteOffer>),
    /// Our offer got 491: it is sent again when the call's `offer_retry`
    /// timer fires.
    Retrying {
        /// How it is sent again.
        carrier: OfferCarrier,
        /// The offer, as made the first time.
        sdp: Bytes,
    },
}

impl OfferAnswer {
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self, OfferAnswer::Idle)
    }
}

/// What carries our offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OfferCarrier {
    /// Our initial INVITE; the answer comes in an 18x or the 2xx.
    Invite,
    /// Our 2xx to an INVITE that came without an offer; the answer comes in the ACK.
    Ok200,
    /// Our 2xx to a re-INVITE without an offer (our current SDP again);
    /// the ACK carries the peer's answer to it.
    Ok200ToReInvite,
    /// A re-INVITE of ours. `refresh`: a session refresh offering our
    /// current SDP unchanged (its answer changes nothing); else a new
    /// offer made by the media side (hold, resume, ...), whose answer the
    /// media side applies.
    ReInvite {
        /// A session refresh.
        refresh: bool,
    },
}

/// An offer of the peer's, waiting for our answer.
#[derive(Clone, Debug)]
pub(crate) struct RemoteOffer {
    /// The request that carried it.
    pub request: Request,
    /// Its server transaction.
    pub tx: TransactionKey,
    /// The media side was asked for the answer.
    pub asked: bool,
}

impl RemoteOffer {
    /// True for a re-INVITE or UPDATE (not the initial INVITE).
    pub(crate) fn is_in_dialog(&self) -> bool {
        self.request.method == Method::Update
            || crate::dialog::call::tag_of(self.request.headers.get(&HeaderName::To)).is_some()
    }
}

impl Call {
    /// Input: the media side's SDP (the offer or answer asked for), or why
    /// it could not make one.
    pub(crate) fn handle_local_sdp(&mut self, ctx: &mut CallCtx<'_>, sdp: Result<Bytes, String>, now: Instant) {
        if self.is_ended() {
            return;
        }
        let state = std::mem::take(&mut self.offer_answer);
        let sdp = match sdp {
            Ok(sdp) => sdp,
            Err(why) => {
                tracing::warn!(call = %self.key, %why, "media could not make SDP");
                self.local_sdp_failed(ctx, state, &format!("media: {why}"), now);
                return;
            }
        };
        match state {
            OfferAnswer::MakingOffer(OfferCarrier::Invite) => {
                self.local_sdp = Some(sdp.clone());
                self.send_invite(ctx, sdp);
            }
            OfferAnswer::MakingOffer(OfferCarrier::Ok200) => {
                self.local_sdp = Some(sdp.clone());
                self.offer_answer = OfferAnswer::OfferSent(OfferCarrier::Ok200);
                self.respond_to_invite(ctx, StatusCode::OK, Some(sdp), now);
            }
            OfferAnswer::MakingOffer(carrier @ OfferCarrier::ReInvite { .. }) => {
                let mut req = self.dialog.request(Method::Invite, ctx.contact);
                req.headers.push(HeaderName::ContentType, "application/sdp");
                req.body = sdp;
                self.send_offer(ctx, req, carrier);
            }
            OfferAnswer::RemoteOffer(offer) if offer.asked => {
                self.local_sdp = Some(sdp.clone());
                if offer.is_in_dialog() {
                    let mut resp = response_to(&offer.request, StatusCode::OK);
                    resp.headers.push(HeaderName::Contact, ctx.contact.to_string());
                    if let Some(t) = &self.session_timer {
                        resp.headers.push(HeaderName::Require, "timer");
                        resp.headers.push(HeaderName::SessionExpires, t.header_as_uas());
                    }
                    resp.headers.push(HeaderName::ContentType, "application/sdp");
                    resp.body = sdp;
                    ctx.respond(&offer.tx, resp);
                    self.remote_offer_answered(ctx, offered_direction(&offer.request.body));
                    self.sync_hold(ctx);
                } else {
                    self.respond_to_invite(ctx, StatusCode::OK, Some(sdp), now);
                }
            }
            other => {
                tracing::debug!(call = %self.key, state = ?other, "SDP from the media side that nothing waits for: ignored");
                self.offer_answer = other;
            }
        }
    }

    /// The media side could not make the SDP an exchange needed.
    fn local_sdp_failed(&mut self, ctx: &mut CallCtx<'_>, state: OfferAnswer, why: &str, now: Instant) {
        match state {
            // A re-offer of the peer's that we cannot take: refuse it, keep the call.
            OfferAnswer::RemoteOffer(offer) if offer.is_in_dialog() => {
                ctx.respond(&offer.tx, response_to(&offer.request, not_acceptable_here()));
                self.sync_hold(ctx);
            }
            // A re-offer of ours that could not be made: nothing was sent, the call goes on.
            OfferAnswer::MakingOffer(OfferCarrier::ReInvite { .. }) => self.reoffer_failed(ctx, None, why),
            other => {
                self.offer_answer = other;
                match self.state {
                    CallState::Ringing | CallState::Answering => {
                        self.respond_to_invite(ctx, not_acceptable_here(), None, now);
                        self.end(ctx, Originator::System, Some(488), why, now);
                    }
                    CallState::Confirmed | CallState::WaitingAck => self.bye(ctx, Originator::System, why, now),
                    _ => self.end(ctx, Originator::System, None, why, now),
                }
            }
        }
    }

    /// Input: the call's media failed after setup (the answer could not be
    /// applied, ICE/DTLS never connected or was lost): end the call the
    /// right way for its state.
    pub(crate) fn handle_media_failure(&mut self, ctx: &mut CallCtx<'_>, reason: &str, now: Instant) {
        let why = format!("media: {reason}");
        match self.state {
            CallState::Calling | CallState::Early => {
                // The call ends when the INVITE's final response (487) comes,
                // so a 200 crossing the CANCEL is still ACKed and hung up.
                let early = self.state == CallState::Early;
                self.cancel_cause =
                    Some(super::EndCause { by: Originator::System, status: None, reason: why, bye_status: None });
                self.state = CallState::CancelPending;
                if early {
                    self.send_cancel(ctx, now);
                }
            }
            CallState::CancelPending | CallState::Cancelling | CallState::Ended => {}
            CallState::Confirmed | CallState::WaitingAck => self.bye(ctx, Originator::System, &why, now),
            _ => {
                let state = std::mem::take(&mut self.offer_answer);
                self.local_sdp_failed(ctx, state, &why, now);
            }
        }
    }

    /// A re-INVITE or UPDATE in the dialog: a session refresh, with or
    /// without a new offer.
    pub(super) fn handle_remote_offer(
        &mut self,
        ctx: &mut CallCtx<'_>,
        req: &Request,
        tx: &TransactionKey,
        now: Instant,
    ) {
        if self.state != CallState::Confirmed || !self.offer_answer.is_idle() {
            // RFC 3261 §14.2, RFC 3311 §5.2: an offer while another is in progress.
            ctx.respond(tx, response_to(req, StatusCode::new(491).unwrap_or(StatusCode::BAD_REQUEST)));
            return;
        }
        if let Some(addr) = super::first_contact(&req.headers) {
            self.dialog.remote_target = Some(addr);
        }
        let session_expires = self.refresh_by_peer(req, ctx.settings.min_se, now);
        if !req.body.is_empty() {
            self.offer_answer =
                OfferAnswer::RemoteOffer(Box::new(RemoteOffer { request: req.clone(), tx: tx.clone(), asked: true }));
            ctx.media(MediaRequest::Answer {
                call: self.key,
                offer: req.body.clone(),
                direction: self.hold.answer_direction(),
            });
            return;
        }
        let mut resp = response_to(req, StatusCode::OK);
        resp.headers.push(HeaderName::Contact, ctx.contact.to_string());
        if let Some(se) = session_expires {
            resp.headers.push(HeaderName::Require, "timer");
            resp.headers.push(HeaderName::SessionExpires, se);
        }
        if req.method == Method::Invite
            && let Some(sdp) = self.local_sdp.clone()
        {
            // A re-INVITE without an offer: offer our current SDP again; the ACK answers.
            resp.headers.push(HeaderName::ContentType, "application/sdp");
            resp.body = sdp;
            self.offer_answer = OfferAnswer::OfferSent(OfferCarrier::Ok200ToReInvite);
        }
        ctx.respond(tx, resp);
    }

    /// The ACK for our 2xx to a re-INVITE.
    pub(super) fn handle_reinvite_ack(&mut self, ctx: &mut CallCtx<'_>) {
        if matches!(self.offer_answer, OfferAnswer::OfferSent(OfferCarrier::Ok200ToReInvite)) {
            // We offered our current SDP unchanged: its answer changes nothing here.
            self.offer_answer = OfferAnswer::Idle;
            self.sync_hold(ctx);
        }
    }

    /// Sends an in-dialog request carrying our offer.
    pub(super) fn send_offer(&mut self, ctx: &mut CallCtx<'_>, req: Request, carrier: OfferCarrier) {
        self.offer_answer = OfferAnswer::OfferSent(carrier);
        self.reinvite = Some(ctx.send(req, Purpose::ReInvite));
    }

    /// The response to our re-INVITE or UPDATE.
    pub(super) fn handle_offer_response(
        &mut self,
        ctx: &mut CallCtx<'_>,
        purpose: Purpose,
        resp: &Response,
        now: Instant,
    ) {
        if self.is_ended() || resp.status.is_provisional() {
            return;
        }
        let code = resp.status.as_u16();
        if purpose == Purpose::ReInvite && resp.status.is_success() {
            // The 2xx to a re-INVITE is ACKed like any INVITE's (RFC 3261 §13.2.2.4).
            let seq = resp.headers.typed::<CSeq>().and_then(Result::ok).map_or(self.dialog.local_cseq, |c| c.seq);
            if let Some(reinvite) = &self.reinvite {
                let ack = self.dialog.ack(reinvite, seq, None);
                self.last_ack = Some(ctx.send_ack(ack));
            }
            if let Some(addr) = super::first_contact(&resp.headers) {
                self.dialog.remote_target = Some(addr);
            }
        }
        let carrier = match &self.offer_answer {
            OfferAnswer::OfferSent(c @ OfferCarrier::ReInvite { .. }) if purpose == Purpose::ReInvite => Some(*c),
            _ => None,
        };
        if resp.status.is_success() {
            self.refreshed(resp, ctx.settings.min_se, now);
            if let Some(carrier) = carrier {
                self.offer_answer = OfferAnswer::Idle;
                if carrier == (OfferCarrier::ReInvite { refresh: false }) && resp.headers.carries_sdp(&resp.body) {
                    ctx.media(MediaRequest::ApplyAnswer { call: self.key, answer: resp.body.clone() });
                    self.reoffer_accepted(ctx);
                } else {
                    self.sync_hold(ctx);
                }
            }
            return;
        }
        if code == 491
            && let Some(carrier) = carrier
            && let Some(sdp) = self.reinvite.as_ref().map(|r| r.body.clone())
        {
            let wait = self.glare_wait(ctx);
            tracing::debug!(call = %self.key, ?wait, "491 to our re-INVITE: retrying");
            self.offer_answer = OfferAnswer::Retrying { carrier, sdp };
            self.timers.offer_retry = Some(now + wait);
            return;
        }
        if carrier.is_some() {
            self.offer_answer = OfferAnswer::Idle;
        }
        if carrier == Some(OfferCarrier::ReInvite { refresh: false }) && code != 481 {
            // A hold or resume that failed: the call goes on as it was.
            self.reoffer_failed(ctx, Some(code), resp.reason_phrase());
        } else if matches!(code, 408 | 481) {
            self.bye(ctx, Originator::System, "the peer lost the dialog", now);
        }
    }

    /// RFC 3261 §14.1: after a 491, the owner of the Call-ID waits 2.1–4 s,
    /// the other side 0–2 s, in units of 10 ms.
    fn glare_wait(&self, ctx: &mut CallCtx<'_>) -> Duration {
        let units = if self.direction == CallDirection::Outgoing {
            ctx.rng.random_range(210..=400)
        } else {
            ctx.rng.random_range(0..=200)
        };
        Duration::from_millis(units * 10)
    }

    /// The 491 wait is over: send our offer again.
    pub(super) fn retry_offer(&mut self, ctx: &mut CallCtx<'_>, _now: Instant) {
        let OfferAnswer::Retrying { carrier, sdp } = std::mem::take(&mut self.offer_answer) else { return };
        if self.state != CallState::Confirmed {
            return;
        }
        let mut req = self.dialog.request(Method::Invite, ctx.contact);
        req.headers.push(HeaderName::ContentType, "application/sdp");
        req.body = sdp;
        if let OfferCarrier::ReInvite { refresh: true } = carrier
            && let Some(t) = &self.session_timer
        {
            req.headers.push(HeaderName::Supported, "timer");
            req.headers.push(HeaderName::SessionExpires, format!("{};refresher=uac", t.interval));
        }
        self.send_offer(ctx, req, carrier);
    }
}

fn not_acceptable_here() -> StatusCode {
    StatusCode::new(488).unwrap_or(StatusCode::BAD_REQUEST)
}
