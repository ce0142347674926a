//! Puts arbitrary bytes through the check an INVITE's offer passes before
//! the phone rings, then (as lossy UTF-8) through what the peer does to a
//! remote SDP before webrtc sees it: `normalize_remote_sdp`, the Opus fmtp
//! reconciliation, the telephone-event tagging, and the readers. A
//! normalized SDP must normalize again to itself, keep every `m=` line's
//! media, port and proto, and be readable line by line.
//!
//! Seed the corpus with `fuzz/seed-corpus.sh`, then run from the repository
//! root: `RUSTC_BOOTSTRAP=1 cargo fuzz run sdp -- -max_total_time=600`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webphone::media::rtc::sdp::fuzzing::{
    audio_section, check_remote_offer, check_sdp_limits, media_sections, reconcile_fmtp, strip_telephone_event_tags,
    tag_telephone_events,
};
use webphone::media::rtc::sdp::{MediaDirection as Direction, normalize_remote_sdp};

fuzz_target!(|data: &[u8]| {
    if check_remote_offer(data).is_ok() {
        assert_eq!(check_sdp_limits(data), Ok(()), "an offer that rings is within the limits");
    }
    let sdp = String::from_utf8_lossy(data);
    readers(&sdp);
    let Ok(out) = normalize_remote_sdp(&sdp) else { return };

    assert_eq!(normalize_remote_sdp(&out).as_ref(), Ok(&out), "not idempotent");
    assert!(out.ends_with("\r\n"));
    assert_eq!(m_heads(&out), m_heads(&sdp), "an m= line lost its media, port or proto");
    assert_eq!(media_sections(&out).len(), m_heads(&out).len(), "an m= line of the output does not read");
    readers(&out);

    // The peer's prepare_remote, with our Opus fmtp.
    let prepared = tag_telephone_events(&reconcile_fmtp(&out, "opus", 48_000, "minptime=10;useinbandfec=1"));
    assert_eq!(tag_telephone_events(&prepared), prepared, "tagging is not idempotent");
    let _ = strip_telephone_event_tags(&prepared);
    readers(&prepared);
});

fn readers(sdp: &str) {
    for m in media_sections(sdp) {
        assert_eq!(Direction::from_attribute(m.direction.as_attribute()), Some(m.direction));
        assert!(m.rtpmaps.len() <= m.formats.len());
    }
    let _ = audio_section(sdp);
    let _ = strip_telephone_event_tags(sdp);
}

/// Media, port and proto of each `m=` line, split as the module splits lines.
fn m_heads(sdp: &str) -> Vec<Vec<&str>> {
    sdp.split(['\n', '\r'])
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
        .filter_map(|l| l.strip_prefix("m="))
        .map(|l| l.split_whitespace().take(3).collect())
        .collect()
}
