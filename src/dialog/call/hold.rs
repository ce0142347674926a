//! Hold and resume (RFC 3264 §8.4, RFC 6337 §5.3): a re-offer of ours
//! that changes only the direction, and the peer's offers that do.
//!
//! The call keeps what the application wants (held or not) apart from
//! what was agreed: `hold()` and `resume()` only change the wish, and a
//! re-offer goes out whenever the wish and the agreement differ and no
//! other exchange is in progress (so a second `hold()` while one is
//! pending is a no-op, and a `resume()` during a pending hold is sent when
//! the hold completes). We offer `sendonly` to hold (`inactive` while the
//! peer holds us) and `sendrecv` to resume (`recvonly` while the peer holds
//! us). A hold that finally fails (488, 5xx, time-out) leaves the call up
//! with the direction it had, rolls the media side's offer back and
//! reports [`CallEvent::HoldFailed`].

use super::session::{OfferAnswer, OfferCarrier};
use super::{Call, CallCtx, CallError, CallState, Originator};
use crate::contract::{MediaDirection, MediaRequest};
use crate::dialog::CallEvent;

/// Who holds a call, and what the application wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hold {
    /// We hold the call (agreed with the peer).
    pub local: bool,
    /// The peer holds the call (its last offer stopped receiving).
    pub remote: bool,
    /// What the application asked for.
    want_local: bool,
    /// The hold state our re-offer in progress asks for, if one is.
    offered: Option<bool>,
}

impl Hold {
    /// The direction we offer for a local hold state `held`.
    fn offer_direction(&self, held: bool) -> MediaDirection {
        match (held, self.remote) {
            (true, false) => MediaDirection::SendOnly,
            (true, true) => MediaDirection::Inactive,
            (false, false) => MediaDirection::SendRecv,
            (false, true) => MediaDirection::RecvOnly,
        }
    }

    /// What we are willing to do when answering an offer (the media side
    /// intersects it with the reverse of what was offered).
    pub(crate) fn answer_direction(&self) -> MediaDirection {
        if self.local { MediaDirection::SendOnly } else { MediaDirection::SendRecv }
    }
}

impl Call {
    /// Command: hold (`true`) or resume (`false`) the call.
    pub(crate) fn set_held(&mut self, ctx: &mut CallCtx<'_>, held: bool) -> Result<(), CallError> {
        if self.state != CallState::Confirmed {
            return Err(CallError::InvalidState);
        }
        self.hold.want_local = held;
        self.sync_hold(ctx);
        Ok(())
    }

    /// Whether we hold the call and whether the peer does.
    pub(crate) fn held(&self) -> (bool, bool) {
        (self.hold.local, self.hold.remote)
    }

    /// Starts a re-offer when what the application wants differs from what
    /// was agreed and no exchange is in progress.
    pub(super) fn sync_hold(&mut self, ctx: &mut CallCtx<'_>) {
        let wanted = self.hold.want_local;
        if self.state != CallState::Confirmed || !self.offer_answer.is_idle() || wanted == self.hold.local {
            return;
        }
        self.hold.offered = Some(wanted);
        self.offer_answer = OfferAnswer::MakingOffer(OfferCarrier::ReInvite { refresh: false });
        ctx.media(MediaRequest::Reoffer { call: self.key, direction: self.hold.offer_direction(wanted) });
    }

    /// Our re-offer was accepted (2xx): the hold state it asked for holds.
    pub(super) fn reoffer_accepted(&mut self, ctx: &mut CallCtx<'_>) {
        if let Some(reinvite) = &self.reinvite {
            self.local_sdp = Some(reinvite.body.clone());
        }
        if let Some(held) = self.hold.offered.take()
            && held != self.hold.local
        {
            self.hold.local = held;
            let call = self.snapshot.clone();
            ctx.emit(if held {
                CallEvent::Held { call, by: Originator::Local }
            } else {
                CallEvent::Resumed { call, by: Originator::Local }
            });
        }
        self.sync_hold(ctx);
    }

    /// Our re-offer finally failed (`status`: the final response, if any):
    /// the call keeps its direction, the media side forgets the offer.
    pub(super) fn reoffer_failed(&mut self, ctx: &mut CallCtx<'_>, status: Option<u16>, reason: &str) {
        let Some(_) = self.hold.offered.take() else { return };
        self.hold.want_local = self.hold.local;
        ctx.media(MediaRequest::RollbackOffer { call: self.key });
        ctx.emit(CallEvent::HoldFailed { call: self.snapshot.clone(), status, reason: reason.to_string() });
    }

    /// We answered the peer's offer whose direction was `offered` (from
    /// its side): it holds us when it stopped receiving.
    pub(super) fn remote_offer_answered(&mut self, ctx: &mut CallCtx<'_>, offered: MediaDirection) {
        let remote = !offered.has_recv();
        if remote != self.hold.remote {
            self.hold.remote = remote;
            let call = self.snapshot.clone();
            ctx.emit(if remote {
                CallEvent::Held { call, by: Originator::Remote }
            } else {
                CallEvent::Resumed { call, by: Originator::Remote }
            });
        }
    }
}
