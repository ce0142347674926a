//! Line-based fix-ups for remote SDP, applied before webrtc 0.21 sees it.
//!
//! webrtc 0.21 (over the sans-IO `rtc` crate) is strict in ways SIP peers
//! are not. Each rewrite below answers a concrete failure of
//! `set_remote_description` or of the call that follows it:
//!
//! | Remote SDP                                   | webrtc 0.21 without the fix                         | Rewrite |
//! |----------------------------------------------|-----------------------------------------------------|---------|
//! | `a=fingerprint:SHA-256 ...` (Asterisk)       | DTLS fails: the check is `alg == "sha-256"`          | algorithm lower-cased, hex upper-cased everywhere |
//! | several fingerprints, `sha-1` first          | only the first is used; conflicts are an error       | only `sha-256` lines kept when one exists |
//! | static payload type without `a=rtpmap`       | PT 0 silently ignored, PT 8/18/... is an error       | the RFC 3551 `a=rtpmap` is added |
//! | dynamic payload type without `a=rtpmap`      | the whole description is refused                     | the format is dropped from the `m=` line |
//! | no `a=group:BUNDLE` (Asterisk, FreeSWITCH)   | every answered `m=` line gets port 0                 | `a=group:BUNDLE <audio mid>` is added |
//! | no `a=mid`                                   | `ErrPeerConnRemoteDescriptionWithoutMidValue`        | `a=mid:<n>` is added |
//! | no direction attribute on the `m=` line      | the `m=` line is skipped and missing from the answer | the session-level one, else `a=sendrecv` |
//! | `a=setup` only at session level              | ignored: read at media level only                    | copied to each `m=` line |
//! | `a=fmtp:102 a=1; b=2` (FreeSWITCH)           | fmtp silently dropped (exactly two tokens expected)  | spaces removed |
//! | TCP, RTCP (component 2), mDNS `.local` or unparsable candidates | a parse error refuses the whole description; the others only waste checks | the candidate is dropped |
//!
//! Everything else is copied unchanged. Line endings become CRLF. The
//! rewriter never panics, whatever the input (checked by a proptest).
//!
//! The module also holds what only [`super::peer`] uses: small SDP readers
//! (codecs, direction, mid), the telephone-event tagging described at
//! `TE_RATE_KEY`, and `reconcile_fmtp`, which keeps webrtc from dropping a
//! remote Opus whose fmtp values differ from ours.

use std::collections::HashSet;

/// Why a remote SDP could not be normalized.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The text is empty or only white space.
    #[error("SDP is empty")]
    Empty,
    /// The first line is not `v=...`.
    #[error("not an SDP body: the first line is not `v=`")]
    NotSdp,
    /// There is no `m=` line at all.
    #[error("SDP has no m= line")]
    NoMedia,
    /// An `m=` line cannot be parsed.
    #[error("malformed m= line {line:?}")]
    MalformedMediaLine {
        /// The line as received.
        line: String,
    },
    /// The audio `m=` line offers no payload type we can describe.
    #[error("the audio m= line has no usable payload type")]
    NoUsableAudioFormat,
    /// Beyond what a phone can use (too many media sections, an absurd
    /// fingerprint, no audio it can play): see the limits of
    /// `crate::contract::check_sdp_limits`.
    #[error("SDP refused: {why}")]
    Refused {
        /// Which limit.
        why: &'static str,
    },
}

pub use crate::contract::MediaDirection;

/// Rewrites a remote offer or answer so that webrtc 0.21 accepts it and
/// negotiates what the remote meant; see the [module documentation](self)
/// for the list of rewrites.
///
/// # Errors
///
/// For input that is not SDP at all (empty, no `v=`, no `m=`, an
/// unparsable `m=` line), whose audio `m=` line keeps no payload type, or
/// that is beyond the limits every remote SDP is held to
/// ([`SdpError::Refused`]: too many media sections, a malformed fingerprint).
pub fn normalize_remote_sdp(sdp: &str) -> Result<String, SdpError> {
    let mut doc = Doc::parse(sdp)?;

    let session_direction =
        doc.session.iter().find_map(|l| attr(l).and_then(|(k, _)| MediaDirection::from_attribute(k)));
    let session_setup = doc
        .session
        .iter()
        .find_map(|l| match attr(l) {
            Some(("setup", Some(v))) => Some(v.trim().to_string()),
            _ => None,
        })
        .filter(|v| !v.is_empty());

    // Fingerprints: one algorithm spelling, one hex case, sha-256 only when present.
    let any_sha256 =
        doc.all_lines().any(|l| matches!(parse_fingerprint(l), Some((alg, _)) if alg.eq_ignore_ascii_case("sha-256")));
    fix_fingerprints(&mut doc.session, any_sha256);

    let mut used_mids: HashSet<String> = doc
        .media
        .iter()
        .flat_map(|s| s.attrs.iter())
        .filter_map(|l| match attr(l) {
            Some(("mid", Some(v))) if !v.trim().is_empty() => Some(v.trim().to_string()),
            _ => None,
        })
        .collect();

    for (index, section) in doc.media.iter_mut().enumerate() {
        let mline =
            MLine::parse(&section.mline).ok_or_else(|| SdpError::MalformedMediaLine { line: section.mline.clone() })?;
        if mline.is_rtp() && (mline.media == "audio" || mline.media == "video") {
            fix_formats(section, &mline)?;
        }
        fix_fmtp_spaces(&mut section.attrs);
        fix_fingerprints(&mut section.attrs, any_sha256);
        section.attrs.retain(|l| match attr(l) {
            Some(("candidate", Some(v))) => usable_candidate(v),
            _ => true,
        });

        let has_direction =
            section.attrs.iter().any(|l| attr(l).is_some_and(|(k, _)| MediaDirection::from_attribute(k).is_some()));
        if !has_direction {
            let dir = session_direction.unwrap_or(MediaDirection::SendRecv);
            section.attrs.push(format!("a={}", dir.as_attribute()));
        }

        let has_mid = section.attrs.iter().any(|l| matches!(attr(l), Some(("mid", Some(v))) if !v.trim().is_empty()));
        if !has_mid {
            // A mid that is not in use yet: the index, else "m<index>", else longer.
            let mut mid = index.to_string();
            while used_mids.contains(&mid) {
                mid = format!("m{mid}");
            }
            used_mids.insert(mid.clone());
            section.attrs.push(format!("a=mid:{mid}"));
        }

        if let Some(setup) = &session_setup {
            let has_setup = section.attrs.iter().any(|l| matches!(attr(l), Some(("setup", _))));
            if !has_setup {
                section.attrs.push(format!("a=setup:{setup}"));
            }
        }
    }

    crate::contract::check_sdp_limits(sdp.as_bytes()).map_err(|r| SdpError::Refused { why: r.0 })?;
    fix_bundle(&mut doc);
    Ok(doc.to_sdp())
}

// ---------------------------------------------------------------------------------------------
// Document model
// ---------------------------------------------------------------------------------------------

/// An SDP split into the session part and one part per `m=` line.
struct Doc {
    session: Vec<String>,
    media: Vec<Section>,
}

struct Section {
    mline: String,
    attrs: Vec<String>,
}

impl Doc {
    fn parse(sdp: &str) -> Result<Doc, SdpError> {
        let mut lines = sdp
            .split(['\n', '\r'])
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
            .filter(|l| !l.is_empty());
        let first = lines.next().ok_or(SdpError::Empty)?;
        if !first.starts_with("v=") {
            return Err(SdpError::NotSdp);
        }
        let mut doc = Doc { session: vec![first.to_string()], media: vec![] };
        for line in lines {
            if line.starts_with("m=") {
                doc.media.push(Section { mline: line.to_string(), attrs: vec![] });
            } else if let Some(section) = doc.media.last_mut() {
                section.attrs.push(line.to_string());
            } else {
                doc.session.push(line.to_string());
            }
        }
        if doc.media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        Ok(doc)
    }

    fn all_lines(&self) -> impl Iterator<Item = &String> {
        self.session.iter().chain(self.media.iter().flat_map(|s| std::iter::once(&s.mline).chain(s.attrs.iter())))
    }

    fn to_sdp(&self) -> String {
        let mut out = String::new();
        for line in self.all_lines() {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out
    }
}

/// `a=key:value` → `(key, Some(value))`, `a=key` → `(key, None)`.
fn attr(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix("a=")?;
    Some(match rest.split_once(':') {
        Some((k, v)) => (k, Some(v)),
        None => (rest, None),
    })
}

/// A parsed `m=` line.
struct MLine {
    media: String,
    port: u16,
    proto: String,
    formats: Vec<String>,
}

impl MLine {
    fn parse(line: &str) -> Option<MLine> {
        let mut it = line.strip_prefix("m=")?.split_whitespace();
        let media = it.next()?.to_ascii_lowercase();
        let port = it.next()?.split('/').next()?.parse::<u16>().ok()?;
        let proto = it.next()?.to_string();
        let formats: Vec<String> = it.map(str::to_string).collect();
        Some(MLine { media, port, proto, formats })
    }
    fn is_rtp(&self) -> bool {
        self.proto.to_ascii_uppercase().contains("RTP/")
    }
    fn with_formats(&self, original: &str, formats: &[String]) -> String {
        // Keep the original media/port/proto spelling; replace only the format list.
        let head: Vec<&str> = original.strip_prefix("m=").unwrap_or(original).split_whitespace().take(3).collect();
        let mut line = format!("m={}", head.join(" "));
        for f in formats {
            line.push(' ');
            line.push_str(f);
        }
        line
    }
}

// ---------------------------------------------------------------------------------------------
// Rewrites
// ---------------------------------------------------------------------------------------------

/// RFC 3551 static payload types: (pt, encoding, for `a=rtpmap`).
const STATIC_PAYLOAD_TYPES: &[(u8, &str)] = &[
    (0, "PCMU/8000"),
    (3, "GSM/8000"),
    (4, "G723/8000"),
    (5, "DVI4/8000"),
    (6, "DVI4/16000"),
    (7, "LPC/8000"),
    (8, "PCMA/8000"),
    (9, "G722/8000"),
    (10, "L16/44100/2"),
    (11, "L16/44100"),
    (12, "QCELP/8000"),
    (13, "CN/8000"),
    (14, "MPA/90000"),
    (15, "G728/8000"),
    (16, "DVI4/11025"),
    (17, "DVI4/22050"),
    (18, "G729/8000"),
    (25, "CelB/90000"),
    (26, "JPEG/90000"),
    (28, "nv/90000"),
    (31, "H261/90000"),
    (32, "MPV/90000"),
    (33, "MP2T/90000"),
    (34, "H263/90000"),
];

fn static_encoding(pt: u8) -> Option<&'static str> {
    STATIC_PAYLOAD_TYPES.iter().find(|(p, _)| *p == pt).map(|(_, e)| *e)
}

/// A parsed `a=rtpmap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RtpMap {
    pub(crate) pt: u8,
    pub(crate) name: String,
    pub(crate) clock_rate: u32,
    pub(crate) channels: u16,
}

/// Parses `a=rtpmap:<pt> <name>/<rate>[/<channels>]` the way rtc-sdp does
/// (exactly two white-space separated tokens, numeric pt and rate).
fn parse_rtpmap(line: &str) -> Option<RtpMap> {
    let ("rtpmap", Some(v)) = attr(line)? else {
        return None;
    };
    let mut tokens = v.split_whitespace();
    let pt = tokens.next()?.parse::<u8>().ok()?;
    let enc = tokens.next()?;
    if tokens.next().is_some() {
        return None;
    }
    let mut parts = enc.split('/');
    let name = parts.next()?.to_string();
    if name.is_empty() {
        return None;
    }
    let clock_rate = match parts.next() {
        Some(r) => r.parse::<u32>().ok()?,
        None => 0,
    };
    let channels = parts.next().and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
    Some(RtpMap { pt, name, clock_rate, channels })
}

fn fix_formats(section: &mut Section, mline: &MLine) -> Result<(), SdpError> {
    let mapped: HashSet<u8> = section.attrs.iter().filter_map(|l| parse_rtpmap(l)).map(|m| m.pt).collect();
    let mut kept: Vec<String> = vec![];
    let mut seen: HashSet<u8> = HashSet::new();
    let mut added: Vec<String> = vec![];
    for f in &mline.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        if pt > 127 || !seen.insert(pt) {
            continue;
        }
        if mapped.contains(&pt) {
            kept.push(pt.to_string());
        } else if let Some(enc) = static_encoding(pt) {
            kept.push(pt.to_string());
            added.push(format!("a=rtpmap:{pt} {enc}"));
        }
        // else: a dynamic (or unassigned) payload type without rtpmap: dropped.
    }
    if kept.is_empty() {
        if mline.media == "audio" && mline.port != 0 {
            return Err(SdpError::NoUsableAudioFormat);
        }
        // Nothing we can describe; leave the line as it was.
        return Ok(());
    }
    if kept != mline.formats {
        section.mline = mline.with_formats(&section.mline, &kept);
    }
    // Insert the added rtpmaps before the first existing rtpmap (or at the end).
    let at = section.attrs.iter().position(|l| l.starts_with("a=rtpmap:")).unwrap_or(section.attrs.len());
    for (i, line) in added.into_iter().enumerate() {
        section.attrs.insert(at + i, line);
    }
    Ok(())
}

/// `a=fmtp:102 useinbandfec=1; maxplaybackrate=48000` → `a=fmtp:102 useinbandfec=1;maxplaybackrate=48000`.
fn fix_fmtp_spaces(attrs: &mut Vec<String>) {
    attrs.retain_mut(|line| {
        let Some(("fmtp", Some(v))) = attr(line) else {
            return true;
        };
        let v = v.trim_start();
        let (pt, params) = match v.split_once(char::is_whitespace) {
            Some((pt, params)) => (pt, params),
            None => return true, // no parameters at all: leave it, rtc-sdp ignores it
        };
        let joined = params
            .split(';')
            .map(|p| p.split_whitespace().collect::<String>())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(";");
        if joined.is_empty() {
            return false;
        }
        *line = format!("a=fmtp:{pt} {joined}");
        true
    });
}

fn parse_fingerprint(line: &str) -> Option<(&str, &str)> {
    let Some(("fingerprint", Some(v))) = attr(line) else {
        return None;
    };
    let mut it = v.split_whitespace();
    let alg = it.next()?;
    let hex = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some((alg, hex))
}

fn fix_fingerprints(lines: &mut Vec<String>, keep_sha256_only: bool) {
    lines.retain_mut(|line| {
        let Some((alg, hex)) = parse_fingerprint(line) else {
            return true;
        };
        let alg = alg.to_ascii_lowercase();
        if keep_sha256_only && alg != "sha-256" {
            return false;
        }
        *line = format!("a=fingerprint:{alg} {}", hex.to_ascii_uppercase());
        true
    });
    // webrtc reads the first fingerprint of a scope: keep one sha-256.
    let mut seen = false;
    lines.retain(|line| match parse_fingerprint(line) {
        Some(("sha-256", _)) => !std::mem::replace(&mut seen, true),
        _ => true,
    });
}

/// Keeps the UDP, component-1, non-mDNS candidates that rtc-ice can parse.
fn usable_candidate(value: &str) -> bool {
    let t: Vec<&str> = value.split_whitespace().collect();
    if t.len() < 8 {
        return false;
    }
    t[1] == "1"
        && t[2].eq_ignore_ascii_case("udp")
        && t[3].parse::<u32>().is_ok()
        && !t[4].is_empty()
        && !t[4].to_ascii_lowercase().ends_with(".local")
        && t[5].parse::<u16>().is_ok()
        && t[6] == "typ"
        && matches!(t[7], "host" | "srflx" | "prflx" | "relay")
}

fn mid_of(section: &Section) -> Option<String> {
    section.attrs.iter().find_map(|l| match attr(l) {
        Some(("mid", Some(v))) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => None,
    })
}

/// Adds `a=group:BUNDLE <audio mid>` when the remote has no BUNDLE group,
/// and makes an existing BUNDLE group the first `a=group` (webrtc reads
/// only the first one).
fn fix_bundle(doc: &mut Doc) {
    let is_group = |l: &String| matches!(attr(l), Some(("group", Some(_))));
    let is_bundle =
        |l: &String| matches!(attr(l), Some(("group", Some(v))) if v.split_whitespace().next() == Some("BUNDLE"));
    if let Some(pos) = doc.session.iter().position(is_bundle) {
        if let Some(first_group) = doc.session.iter().position(is_group)
            && first_group < pos
        {
            let line = doc.session.remove(pos);
            doc.session.insert(first_group, line);
        }
        return;
    }
    // Only the audio m= line is bundled: anything else (video from a
    // FreeSWITCH, T.38) is left out of the group, which makes webrtc answer
    // it with port 0 -- the right answer for an audio-only phone.
    let audio_mid = doc.media.iter().find_map(|s| {
        let m = MLine::parse(&s.mline)?;
        (m.media == "audio" && m.port != 0 && m.is_rtp()).then(|| mid_of(s)).flatten()
    });
    if let Some(mid) = audio_mid {
        // First among the groups (`a=group:LS ...` may be there already).
        let at = doc.session.iter().position(is_group).unwrap_or(doc.session.len());
        doc.session.insert(at, format!("a=group:BUNDLE {mid}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Readers used by the peer
// ---------------------------------------------------------------------------------------------

/// What the peer needs to know about one `m=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MediaInfo {
    pub(crate) media: String,
    pub(crate) port: u16,
    pub(crate) formats: Vec<u8>,
    pub(crate) mid: Option<String>,
    /// Media level, else session level, else `sendrecv` (RFC 3264 §5.1).
    pub(crate) direction: MediaDirection,
    /// One entry per format that has an rtpmap or a static assignment, in format order.
    pub(crate) rtpmaps: Vec<RtpMap>,
}

/// Parses every `m=` line; unparsable ones are skipped.
pub(crate) fn media_sections(sdp: &str) -> Vec<MediaInfo> {
    let Ok(doc) = Doc::parse(sdp) else {
        return vec![];
    };
    let session_direction =
        doc.session.iter().find_map(|l| attr(l).and_then(|(k, _)| MediaDirection::from_attribute(k)));
    doc.media
        .iter()
        .filter_map(|s| {
            let m = MLine::parse(&s.mline)?;
            let maps: Vec<RtpMap> = s.attrs.iter().filter_map(|l| parse_rtpmap(l)).collect();
            let formats: Vec<u8> = m.formats.iter().filter_map(|f| f.parse::<u8>().ok()).collect();
            let rtpmaps = formats
                .iter()
                .filter_map(|pt| {
                    maps.iter()
                        .find(|r| r.pt == *pt)
                        .cloned()
                        .or_else(|| parse_rtpmap(&format!("a=rtpmap:{pt} {}", static_encoding(*pt)?)))
                })
                .collect();
            let direction = s
                .attrs
                .iter()
                .find_map(|l| attr(l).and_then(|(k, _)| MediaDirection::from_attribute(k)))
                .or(session_direction)
                .unwrap_or(MediaDirection::SendRecv);
            Some(MediaInfo { media: m.media, port: m.port, formats, mid: mid_of(s), direction, rtpmaps })
        })
        .collect()
}

/// The first audio `m=` line that is not rejected (port 0), else the first audio one.
pub(crate) fn audio_section(sdp: &str) -> Option<MediaInfo> {
    let all = media_sections(sdp);
    all.iter().find(|m| m.media == "audio" && m.port != 0).or_else(|| all.iter().find(|m| m.media == "audio")).cloned()
}

/// The ICE username fragment (media level of the first `m=` line, else session level).
#[cfg(test)]
pub(crate) fn ice_ufrag(sdp: &str) -> Option<String> {
    ice_attr(sdp, "ice-ufrag")
}

/// The ICE username fragment and password (media level of the first `m=`
/// line, else session level).
pub(crate) fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    Some((ice_attr(sdp, "ice-ufrag")?, ice_attr(sdp, "ice-pwd")?))
}

fn ice_attr(sdp: &str, name: &str) -> Option<String> {
    let doc = Doc::parse(sdp).ok()?;
    let find = |lines: &[String]| {
        lines.iter().find_map(|l| match attr(l) {
            Some((n, Some(v))) if n == name => Some(v.trim().to_string()),
            _ => None,
        })
    };
    doc.media.first().and_then(|s| find(&s.attrs)).or_else(|| find(&doc.session))
}

// ---------------------------------------------------------------------------------------------
// Telephone-event tagging (private to the peer)
// ---------------------------------------------------------------------------------------------

/// The private fmtp parameter that makes webrtc 0.21 tell telephone-event/8000
/// from telephone-event/48000.
///
/// webrtc matches codecs on mime type and on the fmtp keys both sides
/// share; clock rate and channels are ignored. Two telephone-event entries
/// therefore collapse onto the first (duplicate PT in the answer, or the
/// 8 kHz one answered with the 48 kHz PT). Registering each with
/// `<TE_RATE_KEY>=<rate>` in its fmtp, and adding the same parameter to the
/// remote SDP before webrtc parses it, gives the two a key whose values
/// differ, so each matches only its own clock rate. The parameter is removed
/// from every SDP that leaves the peer ([`strip_telephone_event_tags`]).
pub(crate) const TE_RATE_KEY: &str = "x-webphone-rate";

/// The clock rates we register telephone-event at.
const TE_RATES: [u32; 2] = [8000, 48000];

/// Prepares the telephone-event entries of a (normalized) remote SDP:
/// keeps the first one at 8000 Hz and the first at 48000 Hz, drops any
/// other (other rates, duplicates), and tags the kept ones with
/// [`TE_RATE_KEY`].
pub(crate) fn tag_telephone_events(sdp: &str) -> String {
    let Ok(mut doc) = Doc::parse(sdp) else {
        return sdp.to_string();
    };
    for section in &mut doc.media {
        let Some(mline) = MLine::parse(&section.mline) else { continue };
        if mline.media != "audio" {
            continue;
        }
        let te: Vec<RtpMap> = section
            .attrs
            .iter()
            .filter_map(|l| parse_rtpmap(l))
            .filter(|m| m.name.eq_ignore_ascii_case("telephone-event"))
            .collect();
        if te.is_empty() {
            continue;
        }
        let mut keep: Vec<(u8, u32)> = vec![];
        let mut drop: HashSet<u8> = HashSet::new();
        for m in &te {
            if TE_RATES.contains(&m.clock_rate) && !keep.iter().any(|(_, r)| *r == m.clock_rate) {
                keep.push((m.pt, m.clock_rate));
            } else {
                drop.insert(m.pt);
            }
        }
        let remaining: Vec<String> =
            mline.formats.iter().filter(|f| f.parse::<u8>().map_or(true, |pt| !drop.contains(&pt))).cloned().collect();
        if remaining.is_empty() {
            continue;
        }
        if remaining != mline.formats {
            section.mline = mline.with_formats(&section.mline, &remaining);
        }
        let pt_of = |l: &str, key: &str| -> Option<u8> {
            match attr(l) {
                Some((k, Some(v))) if k == key => v.split_whitespace().next()?.parse().ok(),
                _ => None,
            }
        };
        section.attrs.retain(|l| {
            !["rtpmap", "fmtp", "rtcp-fb"].iter().any(|k| pt_of(l, k).is_some_and(|pt| drop.contains(&pt)))
        });
        for (pt, rate) in keep {
            let tag = format!("{TE_RATE_KEY}={rate}");
            if let Some(line) = section.attrs.iter_mut().find(|l| pt_of(l, "fmtp") == Some(pt)) {
                let params: Vec<&str> = line
                    .split_once(char::is_whitespace)
                    .map(|(_, p)| p.trim())
                    .unwrap_or("")
                    .split(';')
                    .filter(|p| !p.is_empty() && !p.starts_with(TE_RATE_KEY))
                    .collect();
                let mut params = params.join(";");
                if !params.is_empty() {
                    params.push(';');
                }
                *line = format!("a=fmtp:{pt} {params}{tag}");
            } else {
                let at = section
                    .attrs
                    .iter()
                    .position(|l| pt_of(l, "rtpmap") == Some(pt))
                    .map_or(section.attrs.len(), |i| i + 1);
                section.attrs.insert(at, format!("a=fmtp:{pt} {tag}"));
            }
        }
    }
    doc.to_sdp()
}

/// Drops from the remote fmtp of codec `name`/`rate` every parameter whose
/// key our registration (`local`) also has, with another value.
///
/// webrtc 0.21 matches a remote codec "exactly" only if the fmtp keys both
/// sides share have equal values, and when any codec matches exactly it
/// silently drops the codecs that matched only by name. A remote
/// `opus ... useinbandfec=0` or `minptime=20` next to an exact PCMU would
/// remove Opus from the session (answer says Opus, sender refuses PT 111).
/// These parameters are receiver preferences, not matching criteria, and
/// our answer states our own values for them anyway.
pub(crate) fn reconcile_fmtp(sdp: &str, name: &str, rate: u32, local: &str) -> String {
    let Ok(mut doc) = Doc::parse(sdp) else {
        return sdp.to_string();
    };
    let split = |p: &str| -> (String, String) {
        match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.trim().to_ascii_lowercase(), String::new()),
        }
    };
    let local: Vec<(String, String)> = local.split(';').filter(|p| !p.trim().is_empty()).map(split).collect();
    for section in &mut doc.media {
        let pts: Vec<u8> = section
            .attrs
            .iter()
            .filter_map(|l| parse_rtpmap(l))
            .filter(|m| m.name.eq_ignore_ascii_case(name) && m.clock_rate == rate)
            .map(|m| m.pt)
            .collect();
        section.attrs.retain_mut(|line| {
            let Some(("fmtp", Some(v))) = attr(line) else {
                return true;
            };
            let Some((pt, params)) = v.trim_start().split_once(char::is_whitespace) else {
                return true;
            };
            if !pt.parse::<u8>().is_ok_and(|pt| pts.contains(&pt)) {
                return true;
            }
            let kept: Vec<&str> = params
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .filter(|p| {
                    let (k, v) = split(p);
                    !local.iter().any(|(lk, lv)| *lk == k && !lv.eq_ignore_ascii_case(&v))
                })
                .map(str::trim)
                .collect();
            if kept.is_empty() {
                return false;
            }
            *line = format!("a=fmtp:{pt} {}", kept.join(";"));
            true
        });
    }
    doc.to_sdp()
}

/// Removes [`TE_RATE_KEY`] from every `a=fmtp` line (and the line when
/// nothing else is left). Used on every SDP the peer hands out.
pub(crate) fn strip_telephone_event_tags(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if let Some(("fmtp", Some(v))) = attr(body)
            && v.contains(TE_RATE_KEY)
        {
            let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            let params: Vec<&str> =
                params.trim().split(';').filter(|p| !p.is_empty() && !p.starts_with(TE_RATE_KEY)).collect();
            if params.is_empty() {
                continue;
            }
            out.push_str(&format!("a=fmtp:{pt} {}", params.join(";")));
            out.push_str(&line[body.len()..]);
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The crate-private readers above, for the fuzz targets in `fuzz/` (feature `fuzzing`).
/// Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use super::{MediaDirection, SdpError};

    /// One `m=` line as the peer reads it (`MediaInfo`), rtpmaps as `(pt, name, rate, channels)`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Media {
        /// Media type, lower-cased.
        pub media: String,
        /// Port.
        pub port: u16,
        /// The numeric formats.
        pub formats: Vec<u8>,
        /// `a=mid`.
        pub mid: Option<String>,
        /// Effective direction.
        pub direction: MediaDirection,
        /// One per format with an rtpmap or a static assignment.
        pub rtpmaps: Vec<(u8, String, u32, u16)>,
    }

    impl From<super::MediaInfo> for Media {
        fn from(m: super::MediaInfo) -> Self {
            let rtpmaps = m.rtpmaps.into_iter().map(|r| (r.pt, r.name, r.clock_rate, r.channels)).collect();
            Media { media: m.media, port: m.port, formats: m.formats, mid: m.mid, direction: m.direction, rtpmaps }
        }
    }

    /// See `media_sections`.
    pub fn media_sections(sdp: &str) -> Vec<Media> {
        super::media_sections(sdp).into_iter().map(Media::from).collect()
    }

    /// See `audio_section`.
    pub fn audio_section(sdp: &str) -> Option<Media> {
        super::audio_section(sdp).map(Media::from)
    }

    /// See `tag_telephone_events`.
    pub fn tag_telephone_events(sdp: &str) -> String {
        super::tag_telephone_events(sdp)
    }

    /// See `strip_telephone_event_tags`.
    pub fn strip_telephone_event_tags(sdp: &str) -> String {
        super::strip_telephone_event_tags(sdp)
    }

    /// See `reconcile_fmtp`.
    pub fn reconcile_fmtp(sdp: &str, name: &str, rate: u32, local: &str) -> String {
        super::reconcile_fmtp(sdp, name, rate, local)
    }

    /// The check an INVITE's offer passes before the phone rings
    /// (`crate::contract::check_remote_offer`): why it is refused, if it is.
    pub fn check_remote_offer(sdp: &[u8]) -> Result<(), &'static str> {
        crate::contract::check_remote_offer(sdp).map_err(|r| r.0)
    }

    /// The limits every remote SDP is held to (`crate::contract::check_sdp_limits`).
    pub fn check_sdp_limits(sdp: &[u8]) -> Result<(), &'static str> {
        crate::contract::check_sdp_limits(sdp).map_err(|r| r.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Chrome 13x as sent by JsSIP (audio only, microphone allowed: real
    /// host candidates plus a TCP one and an mDNS one).
    pub(crate) const CHROME_JSSIP_OFFER: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS 5f2a8c1e-2b0e-4a8f-9a55-3f3f0b6b2d11\r
m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r
c=IN IP4 192.0.2.10\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=candidate:1467250027 1 udp 2122260223 192.0.2.10 54400 typ host generation 0 network-id 1\r
a=candidate:1467250027 2 udp 2122260222 192.0.2.10 54401 typ host generation 0 network-id 1\r
a=candidate:435653019 1 tcp 1845501695 192.0.2.10 9 typ host tcptype active generation 0 network-id 1\r
a=candidate:2999745851 1 udp 2122194687 7d1f4a5e-1b0c-4c8e-9f60-0a1d2c3b4e5f.local 54402 typ host generation 0\r
a=ice-ufrag:Wd3L\r
a=ice-pwd:8xkq3v7Ut2O5PZ2n0Jm4s1Qe\r
a=ice-options:trickle\r
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r
a=setup:actpass\r
a=mid:0\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=sendrecv\r
a=msid:5f2a8c1e-2b0e-4a8f-9a55-3f3f0b6b2d11 2d8f1c0b-7c6e-4f43-8d2e-6a9b0c1d2e3f\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:63 red/48000/2\r
a=fmtp:63 111/111\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:13 CN/8000\r
a=rtpmap:110 telephone-event/48000\r
a=rtpmap:126 telephone-event/8000\r
a=ssrc:1735462291 cname:R1LlhqWnbFm3Yc0H\r
a=ssrc:1735462291 msid:5f2a8c1e-2b0e-4a8f-9a55-3f3f0b6b2d11 2d8f1c0b-7c6e-4f43-8d2e-6a9b0c1d2e3f\r
";

    /// Asterisk 18 (chan_pjsip, webrtc=yes but bundle=no): RTP/SAVPF,
    /// upper-case SHA-256, PCMU listed without its rtpmap, no mid, no
    /// BUNDLE, an RTCP-component candidate.
    pub(crate) const ASTERISK_OFFER: &str = "v=0\r
o=- 1939371478 1939371480 IN IP4 198.51.100.7\r
s=Asterisk\r
c=IN IP4 198.51.100.7\r
t=0 0\r
m=audio 12786 RTP/SAVPF 0 8 111 101\r
a=connection:new\r
a=setup:actpass\r
a=fingerprint:SHA-256 0A:9C:3E:FF:21:4B:77:6D:90:12:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45\r
a=ice-ufrag:5d2c0b1f1a2b3c4d\r
a=ice-pwd:1f2e3d4c5b6a79880a1b2c3d4e\r
a=candidate:Hc6336407 1 UDP 2130706431 198.51.100.7 12786 typ host\r
a=candidate:Hc6336407 2 UDP 2130706430 198.51.100.7 12787 typ host\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:111 opus/48000/2\r
a=fmtp:111 useinbandfec=1\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-16\r
a=ptime:20\r
a=maxptime:150\r
a=sendrecv\r
a=rtcp-mux\r
";

    /// FreeSWITCH 1.10 style: session-level fingerprint and setup,
    /// fmtp with spaces, no mid/BUNDLE, a video m= line we do not handle,
    /// sha-1 listed before sha-256, a dynamic PT with no rtpmap.
    pub(crate) const FREESWITCH_OFFER: &str = "v=0\n\
o=FreeSWITCH 1690000000 1690000001 IN IP4 203.0.113.5\n\
s=FreeSWITCH\n\
c=IN IP4 203.0.113.5\n\
t=0 0\n\
a=msid-semantic: WMS e6a4b5c2\n\
a=setup:actpass\n\
a=fingerprint:sha-1 3B:2D:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22\n\
a=fingerprint:sha-256 a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90\n\
m=audio 23170 UDP/TLS/RTP/SAVPF 102 9 0 8 98 101 13\n\
a=rtpmap:102 opus/48000/2\n\
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40\n\
a=rtpmap:9 G722/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:8 PCMA/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n\
a=rtpmap:13 CN/8000\n\
a=ptime:20\n\
a=ssrc:2866546416 cname:vGk0Rk9VY3kVhg6b\n\
a=ice-ufrag:Q1sdN6lAHnLm9RMh\n\
a=ice-pwd:Dn9tQYj3bM0pZt4o8c2wWx1K\n\
a=candidate:0560693492 1 udp 659136 203.0.113.5 23170 typ host generation 0\n\
a=candidate:0560693492 2 udp 659135 203.0.113.5 23170 typ host generation 0\n\
a=rtcp-mux\n\
a=rtcp:23170 IN IP4 203.0.113.5\n\
m=video 23172 UDP/TLS/RTP/SAVPF 96\n\
a=rtpmap:96 VP8/90000\n\
a=sendrecv\n\
a=ice-ufrag:Q1sdN6lAHnLm9RMh\n\
a=ice-pwd:Dn9tQYj3bM0pZt4o8c2wWx1K\n\
a=candidate:0560693492 1 udp 659136 203.0.113.5 23172 typ host generation 0\n\
a=rtcp-mux\n";

    fn lines(s: &str) -> Vec<&str> {
        s.split("\r\n").filter(|l| !l.is_empty()).collect()
    }

    #[test]
    fn chrome_offer_keeps_its_structure() {
        let out = normalize_remote_sdp(CHROME_JSSIP_OFFER).unwrap();
        let l = lines(&out);
        // Already WebRTC-shaped: same mid, same group, same formats.
        assert!(l.contains(&"a=group:BUNDLE 0"));
        assert_eq!(l.iter().filter(|x| x.starts_with("a=group")).count(), 1);
        assert!(l.contains(&"m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126"));
        assert_eq!(l.iter().filter(|x| x.starts_with("a=mid:")).count(), 1);
        // Only the UDP component-1 IP candidate survives.
        let cands: Vec<_> = l.iter().filter(|x| x.starts_with("a=candidate:")).collect();
        assert_eq!(cands.len(), 1, "{cands:?}");
        assert!(cands[0].contains("192.0.2.10 54400 typ host"));
        assert!(l.iter().any(|x| x.starts_with("a=fingerprint:sha-256 7B:8B:")));
        assert!(out.ends_with("\r\n"));
        // Idempotent.
        assert_eq!(normalize_remote_sdp(&out).unwrap(), out);
    }

    #[test]
    fn asterisk_offer_is_fixed() {
        let out = normalize_remote_sdp(ASTERISK_OFFER).unwrap();
        let l = lines(&out);
        assert!(l.iter().any(|x| x.starts_with("a=fingerprint:sha-256 0A:9C:3E")));
        assert!(!out.contains("SHA-256"));
        assert!(l.contains(&"a=rtpmap:0 PCMU/8000"));
        assert!(l.contains(&"m=audio 12786 RTP/SAVPF 0 8 111 101"));
        assert!(l.contains(&"a=mid:0"));
        assert!(l.contains(&"a=group:BUNDLE 0"));
        // RTCP-component candidate dropped, RTP one kept (upper-case UDP is fine).
        let cands: Vec<_> = l.iter().filter(|x| x.starts_with("a=candidate:")).collect();
        assert_eq!(cands, vec![&"a=candidate:Hc6336407 1 UDP 2130706431 198.51.100.7 12786 typ host"]);
        // Session-level group is before the first m= line.
        let group = l.iter().position(|x| x.starts_with("a=group")).unwrap();
        let m = l.iter().position(|x| x.starts_with("m=")).unwrap();
        assert!(group < m);
        assert_eq!(normalize_remote_sdp(&out).unwrap(), out);
    }

    #[test]
    fn freeswitch_offer_is_fixed() {
        let out = normalize_remote_sdp(FREESWITCH_OFFER).unwrap();
        let l = lines(&out);
        assert!(!out.contains("sha-1"), "sha-1 must go when sha-256 exists");
        assert!(l.contains(
            &"a=fingerprint:sha-256 A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90"
        ));
        assert!(l.contains(
            &"a=fmtp:102 useinbandfec=1;maxaveragebitrate=30000;maxplaybackrate=48000;ptime=20;minptime=10;maxptime=40"
        ));
        // 98 has no rtpmap: dropped, the rest kept in order.
        assert!(l.contains(&"m=audio 23170 UDP/TLS/RTP/SAVPF 102 9 0 8 101 13"));
        assert!(l.contains(&"a=mid:0"));
        assert!(l.contains(&"a=mid:1"));
        // Only audio is bundled, so the video m= line will be answered with port 0.
        assert!(l.contains(&"a=group:BUNDLE 0"));
        // setup copied to both m= lines; direction added to audio.
        assert_eq!(l.iter().filter(|x| **x == "a=setup:actpass").count(), 3);
        assert_eq!(l.iter().filter(|x| **x == "a=sendrecv").count(), 2);
        assert_eq!(normalize_remote_sdp(&out).unwrap(), out);
    }

    #[test]
    fn session_direction_is_copied() {
        let sdp =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/SAVPF 0\r\na=mid:a\r\n";
        let out = normalize_remote_sdp(sdp).unwrap();
        let audio = audio_section(&out).unwrap();
        assert_eq!(audio.direction, MediaDirection::SendOnly);
        let media_part = &out[out.find("m=audio").unwrap()..];
        assert!(media_part.contains("a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"), "{out}");
        assert!(out.contains("a=group:BUNDLE a\r\n"));
    }

    #[test]
    fn mids_stay_unique() {
        let sdp = "v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 8\r\na=mid:0\r\n";
        let out = normalize_remote_sdp(sdp).unwrap();
        let mids: Vec<_> = media_sections(&out).into_iter().map(|m| m.mid.unwrap()).collect();
        assert_eq!(mids, vec!["m0".to_string(), "0".to_string()]);
    }

    #[test]
    fn added_bundle_goes_before_other_groups() {
        // Found by fuzz/fuzz_targets/sdp.rs: the BUNDLE group was appended after
        // an existing group, where webrtc does not look (and a second pass moved it).
        let sdp = "v=0\r\ns=-\r\nt=0 0\r\na=group:LS 0\r\nm=audio 4000 RTP/AVP 0\r\na=mid:0\r\n";
        let out = normalize_remote_sdp(sdp).unwrap();
        assert!(out.contains("a=group:BUNDLE 0\r\na=group:LS 0\r\n"), "{out}");
        assert_eq!(normalize_remote_sdp(&out).unwrap(), out);
    }

    #[test]
    fn rewritten_m_line_keeps_its_proto() {
        // Found with fuzz/fuzz_targets/sdp.rs: after "m= " the format list replaced the proto.
        let out = normalize_remote_sdp("v=0\r\nm= audio 5 RTP/AVP 0 96\r\n").unwrap();
        assert!(out.contains("\r\nm=audio 5 RTP/AVP 0\r\n"), "{out}");
        assert_eq!(normalize_remote_sdp(&out).unwrap(), out);
    }

    #[test]
    fn errors() {
        assert_eq!(normalize_remote_sdp(""), Err(SdpError::Empty));
        assert_eq!(normalize_remote_sdp(" \r\n\n"), Err(SdpError::Empty));
        assert_eq!(normalize_remote_sdp("hello"), Err(SdpError::NotSdp));
        assert_eq!(normalize_remote_sdp("v=0\r\ns=-\r\n"), Err(SdpError::NoMedia));
        assert!(matches!(
            normalize_remote_sdp("v=0\r\nm=audio x RTP/AVP 0\r\n"),
            Err(SdpError::MalformedMediaLine { .. })
        ));
        assert_eq!(normalize_remote_sdp("v=0\r\nm=audio 5 RTP/AVP 96 abc\r\n"), Err(SdpError::NoUsableAudioFormat));
        // A rejected audio line with nothing usable is left alone.
        assert!(normalize_remote_sdp("v=0\r\nm=audio 0 RTP/AVP 96\r\n").is_ok());
        let many = format!("v=0\r\nm=audio 5 RTP/AVP 0\r\n{}", "m=video 0 RTP/AVP 96\r\n".repeat(8));
        assert_eq!(normalize_remote_sdp(&many), Err(SdpError::Refused { why: "too many media sections" }));
        let zz = format!("v=0\r\na=fingerprint:sha-256 {}\r\nm=audio 5 RTP/AVP 0\r\n", vec!["ZZ"; 5000].join(":"));
        assert_eq!(normalize_remote_sdp(&zz), Err(SdpError::Refused { why: "malformed fingerprint" }));
    }

    #[test]
    fn reader_uses_static_payload_types() {
        let out = normalize_remote_sdp(ASTERISK_OFFER).unwrap();
        let a = audio_section(&out).unwrap();
        assert_eq!(a.formats, vec![0, 8, 111, 101]);
        let names: Vec<_> = a.rtpmaps.iter().map(|m| (m.pt, m.name.as_str(), m.clock_rate)).collect();
        assert_eq!(
            names,
            vec![(0, "PCMU", 8000), (8, "PCMA", 8000), (111, "opus", 48000), (101, "telephone-event", 8000)]
        );
        assert_eq!(a.direction, MediaDirection::SendRecv);
        assert_eq!(ice_ufrag(&out).as_deref(), Some("5d2c0b1f1a2b3c4d"));
    }

    #[test]
    fn telephone_events_are_tagged_and_stripped() {
        let sdp = normalize_remote_sdp(CHROME_JSSIP_OFFER).unwrap();
        let tagged = tag_telephone_events(&sdp);
        assert!(tagged.contains(&format!("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 {TE_RATE_KEY}=48000\r\n")));
        assert!(tagged.contains(&format!("a=rtpmap:126 telephone-event/8000\r\na=fmtp:126 {TE_RATE_KEY}=8000\r\n")));
        assert_eq!(strip_telephone_event_tags(&tagged), sdp);

        let ast = tag_telephone_events(&normalize_remote_sdp(ASTERISK_OFFER).unwrap());
        assert!(ast.contains(&format!("a=fmtp:101 0-16;{TE_RATE_KEY}=8000\r\n")));
        assert!(strip_telephone_event_tags(&ast).contains("a=fmtp:101 0-16\r\n"));
        // Idempotent.
        assert_eq!(tag_telephone_events(&ast), ast);

        // Odd rates and duplicates are dropped with their lines.
        let odd = "v=0\r\nm=audio 9 RTP/SAVPF 111 96 97 101\r\na=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:96 telephone-event/16000\r\na=fmtp:96 0-15\r\na=rtpmap:97 telephone-event/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let t = tag_telephone_events(odd);
        assert!(t.contains("m=audio 9 RTP/SAVPF 111 97\r\n"), "{t}");
        assert!(!t.contains(":96 ") && !t.contains(":101 "), "{t}");
    }

    #[test]
    fn conflicting_opus_fmtp_is_reconciled() {
        let sdp = "v=0\r\nm=audio 9 RTP/SAVPF 96 0\r\na=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 minptime=20;useinbandfec=0;stereo=1\r\na=rtpmap:0 PCMU/8000\r\na=fmtp:0 minptime=20\r\n";
        let out = reconcile_fmtp(sdp, "opus", 48000, "minptime=10;useinbandfec=1");
        assert!(out.contains("a=fmtp:96 stereo=1\r\n"), "{out}");
        assert!(out.contains("a=fmtp:0 minptime=20\r\n"), "other codecs untouched: {out}");
        let same = "v=0\r\nm=audio 9 RTP/SAVPF 96\r\na=rtpmap:96 OPUS/48000/2\r\na=fmtp:96 useinbandfec=1\r\n";
        assert_eq!(reconcile_fmtp(same, "opus", 48000, "minptime=10;useinbandfec=1"), same);
        let all = "v=0\r\nm=audio 9 RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=0\r\n";
        assert!(!reconcile_fmtp(all, "opus", 48000, "minptime=10;useinbandfec=1").contains("fmtp"));
    }

    #[test]
    fn direction_algebra() {
        use MediaDirection::*;
        assert_eq!(SendOnly.reverse(), RecvOnly);
        assert_eq!(SendRecv.intersect(SendOnly.reverse()), RecvOnly);
        assert_eq!(SendRecv.intersect(Inactive.reverse()), Inactive);
        assert_eq!(RecvOnly.intersect(SendRecv), RecvOnly);
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(MediaDirection::from_attribute(d.as_attribute()), Some(d));
            assert_eq!(d.reverse().reverse(), d);
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn sdp_line() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("v=0".to_string()),
                "m=(audio|video|image|application) [0-9x/]{0,6} (RTP/AVP|RTP/SAVPF|UDP/TLS/RTP/SAVPF|udptl)( [0-9a-z]{0,4}){0,5}",
                "a=(rtpmap|fmtp|fingerprint|candidate|mid|group|setup|sendonly|inactive|rtcp-fb):[ -~]{0,40}",
                "a=(sendrecv|recvonly|rtcp-mux)",
                "a=fingerprint:(SHA-256|sha-1|sha-256) [0-9A-Fa-f:]{0,20}( x)?",
                "a=candidate:[0-9]{1,3} [0-9] (udp|tcp|UDP) [0-9]{1,10} [a-z0-9.:]{0,12} [0-9]{1,6} typ (host|srflx|x)",
                "[ -~]{0,30}",
                "\\PC{0,20}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn never_panics_on_structured_input(lines in proptest::collection::vec(sdp_line(), 0..25), crlf in any::<bool>()) {
                let sdp = lines.join(if crlf { "\r\n" } else { "\n" });
                if let Ok(out) = normalize_remote_sdp(&sdp) {
                    // Output is stable under a second pass.
                    let again = normalize_remote_sdp(&out);
                    prop_assert_eq!(again.as_ref(), Ok(&out));
                    let _ = tag_telephone_events(&out);
                    let _ = strip_telephone_event_tags(&out);
                    let _ = reconcile_fmtp(&out, "opus", 48000, "minptime=10;useinbandfec=1");
                    let _ = media_sections(&out);
                }
                let _ = tag_telephone_events(&sdp);
                let _ = strip_telephone_event_tags(&sdp);
                let _ = audio_section(&sdp);
                let _ = ice_ufrag(&sdp);
            }

            #[test]
            fn never_panics_on_arbitrary_text(s in "\\PC{0,400}") {
                let _ = normalize_remote_sdp(&s);
                let _ = reconcile_fmtp(&s, "opus", 48000, "minptime=10;useinbandfec=1");
                let _ = tag_telephone_events(&s);
                let _ = strip_telephone_event_tags(&s);
                let _ = media_sections(&s);
            }
        }
    }
}
