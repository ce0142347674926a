//! What the SIP core and the media side share, so that neither imports the
//! other: the key that names a call, the media direction, and the SDP work
//! the core asks of the media side ([`MediaRequest`]).
//!
//! The core emits `MediaRequest`s; the driver hands them to the media
//! engine and feeds the engine's results (our SDP, or why there is none)
//! back to the core. Everything here is plain data.

use std::fmt;

use bytes::Bytes;

/// Identifies a call inside one phone (not the SIP Call-ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CallKey(pub u64);

impl fmt::Display for CallKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// An SDP media direction, always from the point of view of the side that
/// wrote it (`a=sendonly` in an offer means the offerer sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaDirection {
    /// `a=sendrecv`.
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl MediaDirection {
    /// Builds a direction from its two flags.
    pub fn from_send_recv(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => MediaDirection::SendRecv,
            (true, false) => MediaDirection::SendOnly,
            (false, true) => MediaDirection::RecvOnly,
            (false, false) => MediaDirection::Inactive,
        }
    }
    /// Whether this side sends.
    pub fn has_send(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }
    /// Whether this side receives.
    pub fn has_recv(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::RecvOnly)
    }
    /// The same direction seen from the other side (`sendonly` ↔ `recvonly`).
    pub fn reverse(self) -> Self {
        MediaDirection::from_send_recv(self.has_recv(), self.has_send())
    }
    /// What both directions allow.
    pub fn intersect(self, other: MediaDirection) -> Self {
        MediaDirection::from_send_recv(self.has_send() && other.has_send(), self.has_recv() && other.has_recv())
    }
    /// The SDP attribute name (`sendrecv`, ...).
    pub fn as_attribute(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }
    /// Parses an SDP attribute name (`sendrecv`, ...).
    pub fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(MediaDirection::SendRecv),
            "sendonly" => Some(MediaDirection::SendOnly),
            "recvonly" => Some(MediaDirection::RecvOnly),
            "inactive" => Some(MediaDirection::Inactive),
            _ => None,
        }
    }
}

impl fmt::Display for MediaDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_attribute())
    }
}

/// SDP work for the media side of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaRequest {
    /// Make the call's first offer (our INVITE, or our 200 to an INVITE
    /// without SDP); creates the call's media.
    Offer {
        /// The call.
        call: CallKey,
        /// What we offer to do.
        direction: MediaDirection,
    },
    /// Make a new offer on the established session (hold, resume, a
    /// re-INVITE of ours): same ICE credentials and fingerprint.
    Reoffer {
        /// The call.
        call: CallKey,
        /// What we offer to do.
        direction: MediaDirection,
    },
    /// Answer the remote offer: the initial one (creates the call's media)
    /// or a re-offer on a running call (codec and direction changes apply).
    Answer {
        /// The call.
        call: CallKey,
        /// The remote offer.
        offer: Bytes,
        /// What we are willing to do; the answer is this intersected with
        /// the reverse of what was offered.
        direction: MediaDirection,
    },
    /// Apply the remote answer to our pending offer (from an 18x, a 2xx or
    /// an ACK; or to a re-offer): codec and direction changes apply.
    ApplyAnswer {
        /// The call.
        call: CallKey,
        /// The remote answer.
        answer: Bytes,
    },
    /// Release the call's media.
    Close {
        /// The call.
        call: CallKey,
    },
}

impl MediaRequest {
    /// The call the request is for.
    pub fn call(&self) -> CallKey {
        match self {
            MediaRequest::Offer { call, .. }
            | MediaRequest::Reoffer { call, .. }
            | MediaRequest::Answer { call, .. }
            | MediaRequest::ApplyAnswer { call, .. }
            | MediaRequest::Close { call } => *call,
        }
    }
}
