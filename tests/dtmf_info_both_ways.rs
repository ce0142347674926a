//! DTMF by SIP INFO between two cores, both ways: each digit handed to the
//! core leaves at once as one INFO (`application/dtmf-relay`, duration
//! clamped), is answered 200 and reported on both sides (`DtmfSent` on the
//! 2xx); symbols are read case-insensitively, anything else is refused, and
//! nothing is sent once the call ended. (When each digit goes is the call's
//! DTMF queue's business, in the call's audio: see `call_audio`'s tests and
//! `tests/call_dtmf_mixed.rs`.)
//!
//! Sans-IO core, fake clock, alice and bob behind the in-memory proxy.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Party};
use webphone::CallError;
use webphone::dialog::CallEvent;
use webphone::sip::{HeaderName, Method};

const ALICE: Party = Party(0);
const BOB: Party = Party(1);

fn received(net: &Net, p: Party) -> Vec<(char, u32)> {
    net.events
        .iter()
        .filter_map(|(s, e)| match e {
            CallEvent::DtmfReceived { digit, duration_ms, .. } if *s == p => Some((*digit, *duration_ms)),
            _ => None,
        })
        .collect()
}

fn sent(net: &Net, p: Party) -> String {
    net.events
        .iter()
        .filter_map(|(s, e)| match e {
            CallEvent::DtmfSent { digit, .. } if *s == p => Some(*digit),
            _ => None,
        })
        .collect()
}

#[test]
fn info_digits_both_ways_one_info_each_none_after_hangup() {
    let mut net = Net::new(vec![("alice", CallSettings::default()), ("bob", CallSettings::default())]);
    let a_key = net.call(ALICE, "bob");
    let b_key = net.incoming(BOB);
    net.answer(BOB, b_key);
    assert!(net.confirmed(ALICE) && net.confirmed(BOB));

    // Alice: all 16 symbols (lower-case letters read as upper case), one INFO each, at once.
    for d in "0123456789*#abcd".chars() {
        let now = net.now;
        net.ua(ALICE).send_dtmf_info(a_key, d, 120, now).unwrap();
        net.drive();
    }
    let infos = net.requests(ALICE, Method::Info);
    assert_eq!(infos.len(), 16);
    assert!(infos.iter().all(|r| r.headers.get(&HeaderName::ContentType) == Some("application/dtmf-relay")));
    assert_eq!(std::str::from_utf8(&infos[11].body).unwrap(), "Signal=#\r\nDuration=120\r\n");
    assert_eq!(std::str::from_utf8(&infos[12].body).unwrap(), "Signal=A\r\nDuration=120\r\n");
    let got = received(&net, BOB);
    assert_eq!(got.iter().map(|g| g.0).collect::<String>(), "0123456789*#ABCD");
    assert!(got.iter().all(|g| g.1 == 120));
    assert_eq!(sent(&net, ALICE), "0123456789*#ABCD");
    assert!(net.statuses(BOB).iter().filter(|s| **s == 200).count() >= 16);

    // Bob answers with one digit; a duration out of range is clamped (40–6000 ms).
    let now = net.now;
    net.ua(BOB).send_dtmf_info(b_key, '5', 10, now).unwrap();
    net.ua(BOB).send_dtmf_info(b_key, '6', 60_000, now).unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(received(&net, ALICE), [('5', 40), ('6', 6000)]);
    assert_eq!(sent(&net, BOB), "56");

    // Not a symbol: refused, nothing sent.
    let now = net.now;
    assert!(matches!(net.ua(BOB).send_dtmf_info(b_key, 'x', 100, now), Err(CallError::InvalidDigits(_))));
    assert!(matches!(net.ua(BOB).send_dtmf_info(b_key, ',', 100, now), Err(CallError::InvalidDigits(_))));
    net.drive();
    assert_eq!(net.requests(BOB, Method::Info).len(), 2);

    // After the hang-up: refused, no INFO after the BYE.
    net.hangup(ALICE, a_key);
    net.run_for(Duration::from_secs(1));
    assert!(net.ended(BOB).is_some());
    let now = net.now;
    assert!(net.ua(ALICE).send_dtmf_info(a_key, '9', 100, now).is_err());
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.requests(ALICE, Method::Info).len(), 16);
}
