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
    /// Forget our re-offer that the peer refused (a failed hold or
    /// resume): the session stays as last agreed.
    RollbackOffer {
        /// The call.
        call: CallKey,
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
            | MediaRequest::RollbackOffer { call }
            | MediaRequest::Close { call } => *call,
        }
    }
}

/// The direction of the audio in an SDP offer, from the offerer's side: the
/// first `m=audio` section's `a=sendrecv|sendonly|recvonly|inactive`, else
/// the session-level one, else `sendrecv`. A connection address of
/// `0.0.0.0` (the RFC 2543 way to hold) counts as not receiving, unless the
/// offer uses ICE (`a=ice-ufrag`): there it is only the placeholder that
/// WebRTC stacks always write (RFC 8839 §4.2.1.1). Enough to tell a hold
/// from a resume; the media side reads the SDP in full.
pub(crate) fn offered_direction(sdp: &[u8]) -> MediaDirection {
    let text = String::from_utf8_lossy(sdp);
    let mut session = None;
    let mut audio = None;
    let mut zero_address = false;
    let mut ice = false;
    let mut in_audio = false;
    let mut seen_media = false;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            seen_media = true;
            in_audio = m.starts_with("audio");
            continue;
        }
        if seen_media && !in_audio {
            continue;
        }
        if let Some(c) = line.strip_prefix("c=") {
            zero_address = c.split_whitespace().nth(2).is_some_and(|a| a == "0.0.0.0");
        } else if line.starts_with("a=ice-ufrag:") {
            ice = true;
        } else if let Some(a) = line.strip_prefix("a=")
            && let Some(d) = MediaDirection::from_attribute(a)
        {
            if in_audio { audio = Some(d) } else { session = Some(d) }
        }
    }
    let d = audio.or(session).unwrap_or(MediaDirection::SendRecv);
    if zero_address && !ice { MediaDirection::from_send_recv(d.has_send(), false) } else { d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_direction_reads_the_audio_section_then_the_session() {
        let sdp = |body: &str| offered_direction(body.replace('|', "\r\n").as_bytes());
        assert_eq!(sdp("v=0|c=IN IP4 1.2.3.4|m=audio 9 UDP/TLS/RTP/SAVPF 111|a=sendonly|"), MediaDirection::SendOnly);
        assert_eq!(sdp("v=0|a=inactive|m=audio 9 RTP/AVP 0|"), MediaDirection::Inactive);
        assert_eq!(sdp("v=0|a=inactive|m=audio 9 RTP/AVP 0|a=recvonly|"), MediaDirection::RecvOnly);
        assert_eq!(sdp("v=0|m=audio 9 RTP/AVP 0|"), MediaDirection::SendRecv);
        assert_eq!(sdp("v=0|c=IN IP4 0.0.0.0|m=audio 9 RTP/AVP 0|"), MediaDirection::SendOnly, "RFC 2543 hold");
        let webrtc = "v=0|a=ice-ufrag:Ab12|m=audio 9 UDP/TLS/RTP/SAVPF 111|c=IN IP4 0.0.0.0|a=sendrecv|";
        assert_eq!(sdp(webrtc), MediaDirection::SendRecv, "ICE's placeholder address is no hold");
        assert_eq!(
            sdp("v=0|m=video 9 RTP/AVP 96|a=inactive|m=audio 9 RTP/AVP 0|a=sendrecv|"),
            MediaDirection::SendRecv
        );
        assert_eq!(sdp("garbage"), MediaDirection::SendRecv);
    }
}
