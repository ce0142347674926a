//! Transfer as one call sees it (RFC 3515 REFER and its implicit
//! subscription, RFC 4488 `Refer-Sub`, the flows of RFC 5589), in both
//! roles:
//! - **transferor**: we send REFER and follow the NOTIFYs the peer sends
//!   about the call it places (`message/sipfrag` status lines, matched by
//!   `Event: refer;id=<our REFER's CSeq>`). The outcome is one event:
//!   [`CallEvent::TransferAccepted`] when the target answered (and then the
//!   call is ended, when the settings say so, and the consultation call of
//!   an attended transfer is hung up) or [`CallEvent::TransferFailed`]
//!   (REFER refused, a final non-2xx, the subscription ended without a
//!   final status, or no final NOTIFY in time): the call stays up as it was.
//!   A call whose REFER was accepted outlives its BYE until the outcome
//!   arrives (RFC 5057: the subscription is a usage of the dialog of its
//!   own), so a NOTIFY that crosses a BYE is still answered and reported;
//! - **transferee**: the peer's REFER is checked here ([`Call::check_refer`]);
//!   the agent decides (its policy, or the application) and places the new
//!   call; this call then owes the peer NOTIFYs about it
//!   ([`Call::notify_referred`]), unless `Refer-Sub: false` waived them,
//!   until the final one, even when the peer hangs up first.
//!
//! Matching an INVITE with `Replaces` to a dialog (the transfer target's
//! role) spans calls, so it lives with the agent (`dialog::transfer`).

use std::time::Instant;

use super::{Call, CallCtx, CallError, CallOutput, CallState, Originator, Purpose};
use crate::contract::CallKey;
use crate::dialog::CallEvent;
use crate::dialog::transaction::TransactionKey;
use crate::sip::validate::response_to;
use crate::sip::{
    CSeq, Event, HeaderName, Method, NameAddr, ReferTo, Replaces, Request, Response, StatusCode, SubscriptionState,
    TypedHeader, Uri, sipfrag,
};

/// How long a referred call's NOTIFYs keep the subscription (`expires` of
/// `Subscription-State: active`), in seconds.
const REFER_SUBSCRIPTION_SECS: u32 = 120;

/// What the transferee does with a REFER.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferPolicy {
    /// Accept it and place the call (the default, as browsers do).
    #[default]
    Accept,
    /// Refuse it (603 Decline).
    Reject,
    /// Let the application decide (`accept_transfer` / `reject_transfer`).
    Ask,
}

/// A REFER of ours in progress.
#[derive(Clone, Debug)]
pub(crate) struct Transfer {
    /// CSeq of our REFER: the `id` of its subscription.
    cseq: u32,
    /// The peer accepted it (2xx, or a NOTIFY came): we wait for the outcome.
    accepted: bool,
    /// Give up waiting for the final NOTIFY then.
    deadline: Instant,
    /// Attended transfer: the consultation call to hang up on success.
    consult: Option<CallKey>,
}

/// The peer's REFER that we accepted: the NOTIFYs we owe it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Referred {
    /// CSeq of its REFER: the `id` in our `Event` header.
    id: u32,
    /// It wants NOTIFYs (no `Refer-Sub: false`).
    subscribed: bool,
    /// The final NOTIFY went out.
    done: bool,
}

/// A REFER from the peer, checked: what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReferRequest {
    /// The call to place: the Refer-To URI without its embedded headers.
    pub target: Uri,
    /// The Replaces embedded in the Refer-To (attended transfer), as written.
    pub replaces: Option<String>,
    /// The Referred-By header, if any.
    pub referred_by: Option<String>,
    /// The REFER's CSeq.
    pub id: u32,
    /// It asked for NOTIFYs (no `Refer-Sub: false`).
    pub subscribed: bool,
}

/// The outcome a transferor learns.
enum Outcome {
    Succeeded,
    Failed(Option<u16>, String),
}

fn refer_sub_false(headers: &crate::sip::Headers) -> bool {
    headers.get(&HeaderName::new("Refer-Sub")).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

impl Call {
    // ------------------------------------------------------------ transferor

    /// Command: ask the peer to call `refer_to` (REFER). `consult`: the
    /// consultation call of an attended transfer, hung up on success.
    pub(crate) fn transfer(
        &mut self,
        ctx: &mut CallCtx<'_>,
        refer_to: &NameAddr,
        consult: Option<CallKey>,
        now: Instant,
    ) -> Result<(), CallError> {
        if self.state != CallState::Confirmed || self.transfer.is_some() {
            return Err(CallError::InvalidState);
        }
        let mut req = self.dialog.request(Method::Refer, ctx.contact);
        req.headers.push(HeaderName::ReferTo, refer_to.to_string());
        req.headers.push(HeaderName::ReferredBy, NameAddr::new(self.dialog.local.uri.clone()).to_string());
        let cseq = self.dialog.local_cseq;
        ctx.send(req, Purpose::Refer);
        self.transfer =
            Some(Transfer { cseq, accepted: false, deadline: now + ctx.settings.transfer_timeout, consult });
        Ok(())
    }

    /// Whether this call, ended, still has something to finish, so the agent
    /// keeps it: a transfer's subscription (RFC 5057: the dialog lives while
    /// a usage does: our REFER's outcome has not come, or we owe the peer the
    /// final NOTIFY about the call it asked for), our BYE's answer, or a
    /// CANCEL to send once reconnected.
    pub(crate) fn lingers(&self) -> bool {
        self.is_ended()
            && (self.transfer.as_ref().is_some_and(|t| t.accepted)
                || self.referred.is_some_and(|r| r.subscribed && !r.done)
                || self.bye_pending()
                || self.wants_cancel_on_reconnect())
    }

    /// When the transfer in progress gives up waiting.
    pub(super) fn transfer_deadline(&self) -> Option<Instant> {
        self.transfer.as_ref().map(|t| t.deadline)
    }

    pub(super) fn handle_transfer_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
            let secs = ctx.settings.transfer_timeout.as_secs();
            self.finish_transfer(ctx, Outcome::Failed(None, format!("no final NOTIFY within {secs} s")), now);
        }
    }

    /// Input: the response to our REFER.
    pub(super) fn handle_refer_response(&mut self, ctx: &mut CallCtx<'_>, resp: &Response, now: Instant) {
        let code = resp.status.as_u16();
        let Some(transfer) = &mut self.transfer else { return };
        if code < 200 {
            return;
        }
        if !(200..300).contains(&code) {
            self.finish_transfer(ctx, Outcome::Failed(Some(code), resp.reason_phrase().to_string()), now);
            return;
        }
        transfer.accepted = true;
        if refer_sub_false(&resp.headers) {
            // RFC 4488: no NOTIFYs will come; the peer's acceptance is all we learn.
            self.finish_transfer(ctx, Outcome::Succeeded, now);
        }
    }

    /// Input: our REFER got no answer.
    pub(super) fn handle_refer_timeout(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        if self.transfer.as_ref().is_some_and(|t| !t.accepted) {
            self.finish_transfer(ctx, Outcome::Failed(Some(408), "no answer to the REFER".into()), now);
        }
    }

    /// Input: a NOTIFY in this call's dialog.
    pub(super) fn handle_notify(&mut self, ctx: &mut CallCtx<'_>, req: &Request, tx: &TransactionKey, now: Instant) {
        let event = match req.headers.typed::<Event>() {
            Some(Ok(e)) if e.package.eq_ignore_ascii_case("refer") => e,
            _ => {
                let mut resp = response_to(req, StatusCode::new(489).unwrap_or(StatusCode::BAD_REQUEST));
                resp.headers.push(HeaderName::AllowEvents, "refer");
                ctx.respond(tx, resp);
                return;
            }
        };
        let id = event.params.value("id").and_then(|v| v.trim().parse::<u32>().ok());
        let ours = self.transfer.as_ref().is_some_and(|t| id.is_none_or(|id| id == t.cseq));
        if !ours {
            ctx.respond(tx, response_to(req, StatusCode::CALL_DOES_NOT_EXIST));
            return;
        }
        let Some(Ok(state)) = req.headers.typed::<SubscriptionState>() else {
            ctx.respond(tx, response_to(req, StatusCode::BAD_REQUEST));
            return;
        };
        let frag = sipfrag::status_line(&req.body);
        if frag.is_none() && !req.body.is_empty() {
            ctx.respond(tx, response_to(req, StatusCode::BAD_REQUEST));
            return;
        }
        ctx.respond(tx, response_to(req, StatusCode::OK));
        if let Some(t) = &mut self.transfer {
            // A NOTIFY may come before the 202 (RFC 3515 §2.4.7): it accepts.
            t.accepted = true;
            t.deadline = now + ctx.settings.transfer_timeout;
        }
        let terminated = state.state == "terminated";
        match frag {
            Some((code, _)) if (200..300).contains(&code) => self.finish_transfer(ctx, Outcome::Succeeded, now),
            Some((code, reason)) if code >= 300 => self.finish_transfer(ctx, Outcome::Failed(Some(code), reason), now),
            Some((code, reason)) => {
                ctx.emit(CallEvent::TransferProgress { call: self.snapshot.clone(), status: code, reason });
                if terminated {
                    let why = format!(
                        "the subscription ended at {code} ({})",
                        state.params.value("reason").unwrap_or_default()
                    );
                    self.finish_transfer(ctx, Outcome::Failed(None, why), now);
                }
            }
            None if terminated => {
                let why = format!("the subscription ended ({})", state.params.value("reason").unwrap_or_default());
                self.finish_transfer(ctx, Outcome::Failed(None, why), now);
            }
            None => {}
        }
    }

    fn finish_transfer(&mut self, ctx: &mut CallCtx<'_>, outcome: Outcome, now: Instant) {
        let Some(transfer) = self.transfer.take() else { return };
        match outcome {
            Outcome::Succeeded => {
                ctx.emit(CallEvent::TransferAccepted { call: self.snapshot.clone() });
                if let Some(consult) = transfer.consult {
                    ctx.out.push_back(CallOutput::EndReplaced(consult));
                }
                if ctx.settings.end_after_transfer || transfer.consult.is_some() {
                    self.bye(ctx, Originator::Local, "transferred", now);
                }
            }
            Outcome::Failed(status, reason) => {
                ctx.emit(CallEvent::TransferFailed { call: self.snapshot.clone(), status, reason });
            }
        }
    }

    /// The call ended: a REFER the peer has not accepted yet is given up
    /// (an accepted one still waits for its outcome).
    pub(super) fn transfer_call_ended(&mut self, ctx: &mut CallCtx<'_>) {
        if self.transfer.as_ref().is_some_and(|t| !t.accepted) {
            self.transfer = None;
            ctx.emit(CallEvent::TransferFailed {
                call: self.snapshot.clone(),
                status: None,
                reason: "the call ended before the REFER was accepted".into(),
            });
        }
    }

    /// The address to refer someone to so that their call replaces this
    /// one (attended transfer): the peer's Contact, which reaches that very
    /// device (the AoR may fork or be refused), with `Replaces` naming this
    /// dialog from the peer's side (RFC 3891: its tag is the to-tag).
    pub(crate) fn replacing_address(&self) -> Option<NameAddr> {
        if self.state != CallState::Confirmed {
            return None;
        }
        let remote_tag = self.dialog.remote_tag.clone()?;
        let mut uri = self.dialog.remote_target.clone().unwrap_or_else(|| self.dialog.remote.uri.clone());
        let replaces = Replaces {
            call_id: self.dialog.call_id.clone(),
            to_tag: remote_tag,
            from_tag: self.dialog.local_tag.clone(),
            early_only: false,
        };
        let Uri::Sip(sip) = &mut uri else { return None };
        sip.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("Replaces"));
        sip.headers.push(("Replaces".into(), crate::sip::uri::escape(&replaces.to_string())));
        Some(NameAddr::new(uri))
    }

    /// Whether an INVITE's `Replaces` names this call's dialog, in either
    /// tag order (JsSIP writes them from its From/To, reversed for calls it
    /// received).
    pub(crate) fn replaced_by(&self, replaces: &Replaces) -> bool {
        let d = &self.dialog;
        d.remote_tag.as_deref().is_some_and(|remote| names_dialog(replaces, &d.call_id, &d.local_tag, remote))
    }

    // ------------------------------------------------------------ transferee

    /// Input: a REFER in this call's dialog: what it asks for, or the
    /// status to refuse it with.
    pub(crate) fn check_refer(&self, req: &Request) -> Result<ReferRequest, StatusCode> {
        if self.state != CallState::Confirmed {
            return Err(StatusCode::CALL_DOES_NOT_EXIST);
        }
        if self.referred.is_some_and(|r| r.subscribed && !r.done) {
            // One transfer at a time; the peer may try again.
            return Err(StatusCode::new(491).unwrap_or(StatusCode::BUSY_HERE));
        }
        if req.headers.get_all(&HeaderName::ReferTo).count() != 1 {
            return Err(StatusCode::BAD_REQUEST);
        }
        let Some(Ok(ReferTo(addr))) = req.headers.typed::<ReferTo>() else { return Err(StatusCode::BAD_REQUEST) };
        let replaces = match &addr.uri {
            Uri::Sip(sip) => match sip.header("Replaces") {
                Some(value) => match Replaces::parse(&value) {
                    Ok(r) => Some(r.to_string()),
                    Err(_) => return Err(StatusCode::BAD_REQUEST),
                },
                None => None,
            },
            Uri::Tel(_) => None,
            Uri::Other { .. } => return Err(StatusCode::new(416).unwrap_or(StatusCode::BAD_REQUEST)),
        };
        let mut target = addr.uri.clone();
        if let Uri::Sip(sip) = &mut target {
            // Only Replaces is honoured of the embedded headers (others could
            // make us send anything); it goes into our INVITE as a header.
            sip.headers.clear();
            sip.params.remove("method");
        }
        let id = req.headers.typed::<CSeq>().and_then(Result::ok).map_or(0, |c| c.seq);
        Ok(ReferRequest {
            target,
            replaces,
            referred_by: req.headers.get(&HeaderName::ReferredBy).map(str::to_string),
            id,
            subscribed: !refer_sub_false(&req.headers),
        })
    }

    /// Accepts the peer's REFER: 202, and (unless it waived them) the first
    /// NOTIFY, `100 Trying`.
    pub(crate) fn accept_refer(
        &mut self,
        ctx: &mut CallCtx<'_>,
        req: &Request,
        tx: &TransactionKey,
        refer: &ReferRequest,
    ) {
        let mut resp = response_to(req, StatusCode::new(202).unwrap_or(StatusCode::OK));
        if !refer.subscribed {
            resp.headers.push(HeaderName::new("Refer-Sub"), "false");
        }
        ctx.respond(tx, resp);
        self.referred = Some(Referred { id: refer.id, subscribed: refer.subscribed, done: false });
        self.notify_referred(ctx, 100, "Trying");
    }

    /// Tells the peer that asked for a transfer how the call it asked for is
    /// going: `code` is the status that call got (a final one ends the
    /// subscription). Nothing when it waived NOTIFYs. The subscription
    /// outlives a BYE of this call, so the NOTIFYs still go then.
    pub(crate) fn notify_referred(&mut self, ctx: &mut CallCtx<'_>, code: u16, reason: &str) {
        let Some(referred) = &mut self.referred else { return };
        if !referred.subscribed || referred.done {
            return;
        }
        let last = code >= 200;
        referred.done = last;
        let id = referred.id;
        let mut req = self.dialog.request(Method::Notify, ctx.contact);
        req.headers.push(HeaderName::Event, format!("refer;id={id}"));
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={REFER_SUBSCRIPTION_SECS}")
        };
        req.headers.push(HeaderName::SubscriptionState, state);
        req.headers.push(HeaderName::ContentType, sipfrag::CONTENT_TYPE);
        req.body = sipfrag::body(code, reason).into();
        ctx.send(req, Purpose::Notify);
    }
}

/// Whether `replaces` names the dialog (Call-ID, our tag, the peer's tag),
/// in either tag order.
pub(crate) fn names_dialog(replaces: &Replaces, call_id: &str, local: &str, remote: &str) -> bool {
    call_id == replaces.call_id
        && ((local == replaces.to_tag && remote == replaces.from_tag)
            || (local == replaces.from_tag && remote == replaces.to_tag))
}
