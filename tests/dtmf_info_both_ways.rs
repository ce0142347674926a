//! DTMF by SIP INFO between two cores, both ways: one INFO per digit
//! (`application/dtmf-relay`), paced by duration and gap, `,` a 2 s pause,
//! each answered 200 and reported on both sides; the queue is dropped when
//! the call ends.
//!
//! Sans-IO core, fake clock, alice and bob behind the in-memory proxy.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use sip_net::{CallSettings, Net, Party};
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
fn info_digits_both_ways_paced_and_dropped_at_hangup() {
    let mut net = Net::new(vec![("alice", CallSettings::default()), ("bob", CallSettings::default())]);
    let a_key = net.call(ALICE, "bob");
    let b_key = net.incoming(BOB);
    net.answer(BOB, b_key);
    assert!(net.confirmed(ALICE) && net.confirmed(BOB));

    // Alice: all 16 symbols and a pause.
    let now = net.now;
    net.ua(ALICE).send_dtmf_info(a_key, "0123456789*#,abcd", Some(120), Some(80), now).unwrap();
    net.run_for(Duration::from_secs(10));
    let infos = net.requests(ALICE, Method::Info);
    assert_eq!(infos.len(), 16);
    assert!(infos.iter().all(|r| r.headers.get(&HeaderName::ContentType) == Some("application/dtmf-relay")));
    assert_eq!(std::str::from_utf8(&infos[11].body).unwrap(), "Signal=#\r\nDuration=120\r\n");
    let got = received(&net, BOB);
    assert_eq!(got.iter().map(|g| g.0).collect::<String>(), "0123456789*#ABCD");
    assert!(got.iter().all(|g| g.1 == 120));
    assert_eq!(sent(&net, ALICE), "0123456789*#ABCD");
    assert!(net.statuses(BOB).iter().filter(|s| **s == 200).count() >= 16);

    // Bob answers with one digit, default duration and gap.
    let now = net.now;
    net.ua(BOB).send_dtmf_info(b_key, "5", None, None, now).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(received(&net, ALICE), [('5', 100)]);
    assert_eq!(sent(&net, BOB), "5");

    // Bad digits are refused before anything is queued.
    let now = net.now;
    assert!(net.ua(BOB).send_dtmf_info(b_key, "12x", None, None, now).is_err());

    // Alice queues three digits and hangs up after the first: no INFO after the BYE.
    let now = net.now;
    net.ua(ALICE).send_dtmf_info(a_key, "999", None, None, now).unwrap();
    net.drive();
    net.hangup(ALICE, a_key);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.requests(ALICE, Method::Info).len(), 17);
    assert!(net.ended(BOB).is_some());
}
