//! RFC 4028 session timers: who refreshes, when, and what happens when the
//! session is not refreshed in time.

use std::time::{Duration, Instant};

use super::session::OfferCarrier;
use super::{Call, CallCtx, Originator, Purpose};
use crate::sip::{HeaderName, Method, Request, SessionExpires};

/// The session timer of a confirmed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    /// Session interval in seconds.
    pub interval: u32,
    /// True when we refresh; false when the peer must.
    pub we_refresh: bool,
    /// When to refresh (we refresh) or give up (peer refreshes).
    pub deadline: Instant,
}

/// The session timer our 2xx to an INVITE sets up, with the header values it carries.
pub(crate) struct TimerAnswer {
    pub timer: SessionTimer,
    /// The `Session-Expires` value of our 2xx.
    pub session_expires: String,
    /// Whether our 2xx carries `Require: timer` (the peer supports timers).
    pub require: bool,
}

impl SessionTimer {
    pub(crate) fn new(interval: u32, we_refresh: bool, now: Instant) -> SessionTimer {
        let secs = u64::from(interval);
        let deadline = if we_refresh {
            now + Duration::from_secs(secs / 2)
        } else {
            // RFC 4028 §10: BYE at expiry minus min(32 s, interval / 3).
            now + Duration::from_secs(secs - (secs / 3).min(32))
        };
        SessionTimer { interval, we_refresh, deadline }
    }

    /// The timer a 2xx of ours to `invite` sets up, if it asked for one.
    pub(crate) fn for_answer(invite: &Request, min_se: u32, now: Instant) -> Option<TimerAnswer> {
        let se = invite.headers.typed::<SessionExpires>().and_then(Result::ok)?;
        let interval = se.delta.max(min_se);
        let has_timer =
            |name| invite.headers.tokens(&name).is_ok_and(|t| t.iter().any(|o| o.eq_ignore_ascii_case("timer")));
        let peer_supports = has_timer(HeaderName::Supported) || has_timer(HeaderName::Require);
        // RFC 4028 §9: a caller without timer support cannot refresh (a proxy
        // added the header): we refresh, and require nothing.
        let refresher = match (peer_supports, se.refresher.as_deref()) {
            (false, _) => "uas",
            (true, Some("uas")) => "uas",
            (true, _) => "uac",
        };
        Some(TimerAnswer {
            timer: SessionTimer::new(interval, refresher == "uas", now),
            session_expires: format!("{interval};refresher={refresher}"),
            require: peer_supports,
        })
    }

    /// The `Session-Expires` value for a response of ours to a refresh
    /// (we answer as the UAS of that transaction).
    pub(crate) fn header_as_uas(&self) -> String {
        let refresher = if self.we_refresh { "uas" } else { "uac" };
        format!("{};refresher={refresher}", self.interval)
    }
}

impl Call {
    /// The session timer is due: refresh it (UPDATE without SDP when the
    /// peer allows it, else a re-INVITE with our current SDP) or, when the
    /// peer had to refresh and did not, end the call.
    pub(super) fn handle_session_timer(&mut self, ctx: &mut CallCtx<'_>, now: Instant) {
        let Some(timer) = self.session_timer.clone() else { return };
        if !timer.we_refresh {
            self.bye(ctx, Originator::System, "session timer expired", now);
            return;
        }
        if !self.offer_answer.is_idle() {
            // An exchange is in progress; refresh once it is over.
            self.session_timer = Some(SessionTimer { deadline: now + REFRESH_POSTPONE, ..timer });
            return;
        }
        let method = if self.dialog.peer_allows_update { Method::Update } else { Method::Invite };
        let mut req = self.dialog.request(method.clone(), ctx.contact);
        req.headers.push(HeaderName::Supported, "timer");
        req.headers.push(HeaderName::SessionExpires, format!("{};refresher=uac", timer.interval));
        // Until the answer arrives, do not refresh again.
        self.session_timer =
            Some(SessionTimer { deadline: now + Duration::from_secs(u64::from(timer.interval) / 2), ..timer });
        if method == Method::Invite {
            if let Some(sdp) = self.local_sdp.clone() {
                req.headers.push(HeaderName::ContentType, "application/sdp");
                req.body = sdp;
            }
            self.send_offer(ctx, req, OfferCarrier::ReInvite { refresh: true });
        } else {
            ctx.send(req, Purpose::Update);
        }
    }

    /// Takes the session interval from a peer's refresh request (re-INVITE
    /// or UPDATE), restarting the timer; returns the header value of our
    /// 2xx, if a timer runs.
    pub(super) fn refresh_by_peer(&mut self, req: &Request, min_se: u32, now: Instant) -> Option<String> {
        let se = req.headers.typed::<SessionExpires>().and_then(Result::ok);
        let interval =
            se.as_ref().map_or(self.session_timer.as_ref().map(|t| t.interval), |s| Some(s.delta.max(min_se)));
        let refresher = se.as_ref().and_then(|s| s.refresher.clone()).unwrap_or_else(|| "uac".into());
        self.session_timer = interval.map(|i| SessionTimer::new(i, refresher == "uas", now));
        interval.map(|i| format!("{i};refresher={refresher}"))
    }

    /// Restarts the timer from the 2xx to our refresh.
    pub(super) fn refreshed(&mut self, resp: &crate::sip::Response, min_se: u32, now: Instant) {
        if let Some(Ok(se)) = resp.headers.typed::<SessionExpires>() {
            let interval = se.delta.max(min_se);
            self.session_timer = Some(SessionTimer::new(interval, se.refresher.as_deref() != Some("uas"), now));
        } else if let Some(t) = &self.session_timer {
            self.session_timer = Some(SessionTimer::new(t.interval, t.we_refresh, now));
        }
    }
}

/// How long a due refresh waits for an offer/answer exchange in progress.
const REFRESH_POSTPONE: Duration = Duration::from_secs(2);
