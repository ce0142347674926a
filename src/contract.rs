//! What the SIP core and the media side share, so that neither imports the
//! other: the key that names a call, the media direction, the SDP work
//! the core asks of the media side ([`MediaRequest`]), and the first look
//! both take at a remote SDP (the core refuses an INVITE whose offer fails
//! [`check_remote_offer`] before it rings; the media side refuses any
//! offer or answer beyond [`check_sdp_limits`]).
//!
//! The core emits `MediaRequest`s; the driver hands them to the media
//! engine and feeds the engine's results (our SDP, or why there is none)
//! back to the core. Everything here is plain data or a pure function.

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

/// The most media sections a remote SDP may have. A phone uses one audio
/// section and browsers offer three at most (audio, video, data); beyond
/// that an offer only inflates our answer, which must answer every section
/// if only to refuse it (882 sections made a 63 KB INVITE's answer 227 KB).
pub(crate) const MAX_MEDIA_SECTIONS: usize = 8;

/// The longest `a=fingerprint` hash accepted: SHA-512's 64 bytes.
pub(crate) const MAX_FINGERPRINT_BYTES: usize = 64;

/// The audio encodings the media side can use (`a=rtpmap` names; PCMU and
/// PCMA also by their static payload types 0 and 8).
pub(crate) const AUDIO_ENCODINGS: [&str; 3] = ["opus", "PCMU", "PCMA"];

/// Why a remote SDP is refused (with 488 when it came in a request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SdpRefusal(pub(crate) &'static str);

/// Checks a remote SDP against the limits every offer and answer is held
/// to: UTF-8 text starting `v=`, at most [`MAX_MEDIA_SECTIONS`] `m=` lines,
/// fingerprints of at most [`MAX_FINGERPRINT_BYTES`] hex pairs. Lines are
/// read as the media side reads them (either line ending, blank lines
/// ignored).
pub(crate) fn check_sdp_limits(sdp: &[u8]) -> Result<(), SdpRefusal> {
    scan(sdp).map(|_| ())
}

/// Checks a remote offer that would make a call ring: the limits of
/// [`check_sdp_limits`], and an audio section with a port and an encoding
/// of [`AUDIO_ENCODINGS`], so that whatever the media side would refuse
/// is refused before the phone rings.
pub(crate) fn check_remote_offer(sdp: &[u8]) -> Result<(), SdpRefusal> {
    match scan(sdp)? {
        Scan { sections: 0, .. } => Err(SdpRefusal("no media section")),
        Scan { audio_usable: false, .. } => Err(SdpRefusal("no audio we can use")),
        _ => Ok(()),
    }
}

/// What one pass over an SDP within the limits found.
struct Scan {
    sections: usize,
    audio_usable: bool,
}

fn scan(sdp: &[u8]) -> Result<Scan, SdpRefusal> {
    let text = std::str::from_utf8(sdp).map_err(|_| SdpRefusal("SDP is not UTF-8"))?;
    let mut lines = text
        .split(['\n', '\r'])
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
        .filter(|l| !l.is_empty());
    if !lines.next().is_some_and(|l| l.starts_with("v=")) {
        return Err(SdpRefusal("not an SDP body"));
    }
    let mut found = Scan { sections: 0, audio_usable: false };
    // The current audio section's payload types, while in one.
    let mut audio: Option<Vec<&str>> = None;
    for line in lines {
        if let Some(m) = line.strip_prefix("m=") {
            found.sections += 1;
            if found.sections > MAX_MEDIA_SECTIONS {
                return Err(SdpRefusal("too many media sections"));
            }
            audio = usable_audio_formats(m);
            found.audio_usable |= audio.as_ref().is_some_and(|f| f.iter().any(|pt| matches!(*pt, "0" | "8")));
        } else if let Some(value) = line.strip_prefix("a=fingerprint:") {
            if !fingerprint_is_sane(value) {
                return Err(SdpRefusal("malformed fingerprint"));
            }
        } else if let (Some(formats), Some(rtpmap)) = (&audio, line.strip_prefix("a=rtpmap:")) {
            let (pt, encoding) = rtpmap.split_once(' ').unwrap_or((rtpmap, ""));
            let name = encoding.trim().split('/').next().unwrap_or("");
            found.audio_usable |= formats.contains(&pt) && AUDIO_ENCODINGS.iter().any(|e| e.eq_ignore_ascii_case(name));
        }
    }
    Ok(found)
}

/// The payload types of an `m=audio` line (after `m=`) that can carry
/// media: a port other than 0 and an RTP profile. `None` for any other line.
fn usable_audio_formats(mline: &str) -> Option<Vec<&str>> {
    let mut it = mline.split_whitespace();
    let (media, port, proto) = (it.next()?, it.next()?, it.next()?);
    let port = port.split('/').next().and_then(|p| p.parse::<u16>().ok())?;
    (media == "audio" && port != 0 && proto.contains("RTP")).then(|| it.collect())
}

/// `sha-256 AB:CD:...`: a token, then 1 to [`MAX_FINGERPRINT_BYTES`] pairs of
/// hex digits separated by colons.
fn fingerprint_is_sane(value: &str) -> bool {
    let mut it = value.split_whitespace();
    let (Some(alg), Some(hex), None) = (it.next(), it.next(), it.next()) else { return false };
    let pairs = hex.split(':');
    alg.len() <= 16
        && hex.len() <= MAX_FINGERPRINT_BYTES * 3
        && pairs.clone().count() <= MAX_FINGERPRINT_BYTES
        && pairs.into_iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0|o=- 1 1 IN IP4 127.0.0.1|s=-|t=0 0|a=fingerprint:sha-256 0A:1B:2C|\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0|a=rtpmap:111 opus/48000/2|a=sendrecv|";

    fn check(sdp: &str) -> Result<(), SdpRefusal> {
        check_remote_offer(sdp.replace('|', "\r\n").as_bytes())
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_an_offer_it_takes_is_within_the_limits(s in "\\PC{0,400}", crlf in proptest::bool::ANY) {
            let text = if crlf { s.replace('\n', "\r\n") } else { s };
            if check_remote_offer(text.as_bytes()).is_ok() {
                proptest::prop_assert!(check_sdp_limits(text.as_bytes()).is_ok());
            }
        }

        #[test]
        fn structured_offers_never_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("m=(audio|video) [0-9]{1,5} (RTP/AVP|UDP/TLS/RTP/SAVPF) [0-9 ]{0,12}").expect("regex"),
                    proptest::string::string_regex("a=rtpmap:[0-9]{1,3} (opus|PCMU|G729|x)/[0-9]{4,5}").expect("regex"),
                    proptest::string::string_regex("a=fingerprint:[a-z0-9-]{0,8} [0-9A-Fa-fZ:]{0,80}").expect("regex"),
                    proptest::string::string_regex("[a-z]=[ -~]{0,20}").expect("regex"),
                ],
                0..20,
            )
        ) {
            let sdp = format!("v=0\r\n{}", lines.join("\r\n"));
            let _ = check_remote_offer(sdp.as_bytes());
        }
    }

    #[test]
    fn a_browser_offer_passes() {
        assert_eq!(check(OFFER), Ok(()));
        assert_eq!(check(&OFFER.replace(" 111 0|", " 111|")), Ok(()), "opus by its rtpmap");
        assert_eq!(check(&OFFER.replace(" 111 0|", " 8|").replace("a=rtpmap:111 opus/48000/2|", "")), Ok(()));
        let three = format!("{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 96|m=application 9 UDP/DTLS/SCTP webrtc-datachannel|");
        assert_eq!(check(&three), Ok(()));
    }

    #[test]
    fn what_a_phone_cannot_use_is_refused() {
        let many = format!("{OFFER}{}", "m=video 0 RTP/AVP 96|".repeat(MAX_MEDIA_SECTIONS));
        assert_eq!(check(&many), Err(SdpRefusal("too many media sections")));
        let huge = OFFER.replace("0A:1B:2C", &vec!["ZZ"; 5000].join(":"));
        assert_eq!(check(&huge), Err(SdpRefusal("malformed fingerprint")));
        let long = OFFER.replace("0A:1B:2C", &vec!["AB"; 65].join(":"));
        assert_eq!(check(&long), Err(SdpRefusal("malformed fingerprint")));
        let sha512 = OFFER.replace("sha-256 0A:1B:2C", &format!("sha-512 {}", vec!["AB"; 64].join(":")));
        assert_eq!(check(&sha512), Ok(()));
        assert_eq!(check(&OFFER.replace("m=audio 9", "m=audio 0")), Err(SdpRefusal("no audio we can use")));
        assert_eq!(
            check(&OFFER.replace(" 111 0|", " 111 18|").replace("opus/", "G729/")),
            Err(SdpRefusal("no audio we can use"))
        );
        assert_eq!(check("v=0|s=-|"), Err(SdpRefusal("no media section")));
        assert_eq!(check("hello"), Err(SdpRefusal("not an SDP body")));
        assert_eq!(check_remote_offer(b"v=0\r\n\xff"), Err(SdpRefusal("SDP is not UTF-8")));
        // The limits alone let an answer that refuses audio through.
        assert_eq!(check_sdp_limits(b"v=0\r\nm=audio 0 RTP/AVP 0\r\n"), Ok(()));
        assert_eq!(check_sdp_limits(many.replace('|', "\n").as_bytes()), Err(SdpRefusal("too many media sections")));
    }

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
