//! The lines policy, as a property: whatever alice (two lines) and the
//! people she talks to do, in any order, at most one of alice's calls is
//! ever up without her holding it. Placing, answering or resuming a call
//! holds the others first (Bizfly's `createLine2`).
//!
//! Sans-IO core, fake clock: alice, bob, carol and dave behind the
//! in-memory proxy (parties 0 to 3); bob and carol answer at once, dave
//! calls alice.

#[path = "support/sip_net.rs"]
mod sip_net;

use std::time::Duration;

use proptest::prelude::*;
use sip_net::{CallSettings, Net, Party};
use webphone::dialog::{CallEvent, CallKey};

const ALICE: Party = Party(0);
const DAVE: Party = Party(3);

#[derive(Clone, Debug)]
enum Step {
    /// Alice calls bob (false) or carol (true).
    AliceCalls(bool),
    /// Dave calls alice.
    DaveCalls,
    /// Alice answers the newest call ringing at her.
    AliceAnswers,
    /// Alice holds / resumes / hangs up her n-th live call.
    AliceHolds(usize),
    AliceResumes(usize),
    AliceHangsUp(usize),
    /// The far end of alice's n-th live call hangs up.
    FarHangsUp(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::AliceCalls),
        Just(Step::DaveCalls),
        Just(Step::AliceAnswers),
        (0usize..3).prop_map(Step::AliceHolds),
        (0usize..3).prop_map(Step::AliceResumes),
        (0usize..3).prop_map(Step::AliceHangsUp),
        (0usize..3).prop_map(Step::FarHangsUp),
    ]
}

fn net() -> Net {
    let alice = CallSettings { session_expires: None, ..Default::default() };
    let answering = CallSettings {
        session_expires: None,
        max_calls: 8,
        auto_answer: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let dave = CallSettings { session_expires: None, max_calls: 8, ..Default::default() };
    Net::new(vec![("alice", alice), ("bob", answering.clone()), ("carol", answering), ("dave", dave)])
}

/// Alice's calls that have not ended, oldest first.
fn live(net: &mut Net) -> Vec<CallKey> {
    let mut keys = net.ua(ALICE).call_keys();
    keys.sort();
    keys
}

/// Who is at the other end of alice's call `key`, and their key for it.
fn far_end(net: &Net, key: CallKey) -> Option<(Party, CallKey)> {
    let call_id = net.events.iter().find_map(|(p, e)| match e {
        CallEvent::Outgoing(c) | CallEvent::Incoming(c) if *p == ALICE && c.key == key => Some(c.call_id.clone()),
        _ => None,
    })?;
    net.events.iter().find_map(|(p, e)| match e {
        CallEvent::Outgoing(c) | CallEvent::Incoming(c) if *p != ALICE && c.call_id == call_id => Some((*p, c.key)),
        _ => None,
    })
}

fn apply(net: &mut Net, step: &Step) {
    let now = net.now;
    let keys = live(net);
    let pick = |n: usize| (!keys.is_empty()).then(|| keys[n % keys.len()]);
    match step {
        Step::AliceCalls(carol) => {
            let _ = net.ua(ALICE).call(
                webphone::dialog::CallRequest {
                    target: if *carol { "carol" } else { "bob" }.into(),
                    ..Default::default()
                },
                now,
            );
        }
        Step::DaveCalls => {
            let _ =
                net.ua(DAVE).call(webphone::dialog::CallRequest { target: "alice".into(), ..Default::default() }, now);
        }
        Step::AliceAnswers => {
            if let Some(k) = keys.iter().rev().find(|k| !net.confirmed_call(ALICE, **k)).copied() {
                let _ = net.ua(ALICE).answer(k, now);
            }
        }
        Step::AliceHolds(n) => {
            if let Some(k) = pick(*n) {
                let _ = net.ua(ALICE).hold(k, now);
            }
        }
        Step::AliceResumes(n) => {
            if let Some(k) = pick(*n) {
                let _ = net.ua(ALICE).resume(k, now);
            }
        }
        Step::AliceHangsUp(n) => {
            if let Some(k) = pick(*n) {
                let _ = net.ua(ALICE).hangup(k, now);
            }
        }
        Step::FarHangsUp(n) => {
            if let Some((p, k)) = pick(*n).and_then(|k| far_end(net, k)) {
                let _ = net.ua(p).hangup(k, now);
            }
        }
    }
    net.drive();
    net.run_for(Duration::from_millis(20));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_of_alices_calls_is_up_without_her_holding_it(steps in proptest::collection::vec(step(), 1..30)) {
        let mut net = net();
        for step in &steps {
            apply(&mut net, step);
            let keys = live(&mut net);
            let confirmed: Vec<CallKey> = keys.into_iter().filter(|k| net.confirmed_call(ALICE, *k)).collect();
            let unheld: Vec<CallKey> = confirmed
                .into_iter()
                .filter(|k| net.ua(ALICE).call_held(*k).is_some_and(|(local, _)| !local))
                .collect();
            prop_assert!(unheld.len() <= 1, "after {:?}: alice's unheld calls {:?}", step, unheld);
        }
    }
}
