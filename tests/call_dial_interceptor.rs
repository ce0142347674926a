//! Scenario: the dial interceptor (Aliyun's `onBeforeCallDialing`), with two
//! real phones through a real Kamailio. (a) An interceptor that vetoes
//! numbers starting with "9": `call("9123")` fails with
//! `Error::CallVetoed(reason)` carrying the interceptor's reason, and no
//! `CallOutgoing` is ever reported for it (the next call's `CallOutgoing`
//! is the first one on the stream). (b) A replacement interceptor rewrites
//! the target "reception" to "bob" and adds `X-Routed-By: interceptor`: bob
//! rings with that header (and the caller's own), rejects with 486, and
//! Alice sees the call ended by the remote side with 486.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use webphone::{CallDirection, CallOptions, Error, Event, Originator};

/// What the interceptor was given: target and headers.
type Seen = (String, Vec<(String, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interceptor_vetoes_and_rewrites_calls() {
    let kamailio = start_kamailio();
    let (alice, mut alice_log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;
    let (bob, mut bob_log) = registered_phone(&kamailio, "bob", BOB_PASSWORD).await;

    // --- (a) veto
    alice.set_dial_interceptor(|req| {
        if req.target.starts_with('9') { Err(format!("outside lines are barred ({})", req.target)) } else { Ok(()) }
    });
    let vetoed = alice.call("9123", CallOptions::default()).await;
    assert_eq!(vetoed, Err(Error::CallVetoed("outside lines are barred (9123)".to_string())));

    // --- (b) rewrite: the interceptor sees the request as the application made it
    let seen_by_hook: Arc<Mutex<Vec<Seen>>> = Arc::default();
    {
        let seen = seen_by_hook.clone();
        alice.set_dial_interceptor(move |req| {
            seen.lock().unwrap().push((req.target.clone(), req.headers.clone()));
            if req.target == "reception" {
                req.target = "bob".to_string();
                req.headers.push(("X-Routed-By".to_string(), "interceptor".to_string()));
            }
            Ok(())
        });
    }
    let call = alice
        .call("reception", CallOptions { headers: vec![("X-Order-Id".into(), "A-17".into())], ..Default::default() })
        .await
        .expect("rewritten call placed")
        .key();
    assert_eq!(
        *seen_by_hook.lock().unwrap(),
        vec![("reception".to_string(), vec![("X-Order-Id".to_string(), "A-17".to_string())])]
    );

    // The first CallOutgoing on Alice's stream is this call's: the vetoed
    // call never produced one (events are ordered, so no sleep is needed).
    let outgoing = alice_log.wait_for("CallOutgoing", |e| matches!(e, Event::CallOutgoing { .. })).await;
    let Event::CallOutgoing { call: out } = &outgoing else { unreachable!() };
    assert_eq!(out.key, call, "the vetoed call must not be reported: {:#?}", alice_log.seen);
    assert_eq!(out.remote.user.as_deref(), Some("bob"), "{out:#?}");

    // --- bob rings with the interceptor's header, and rejects
    let info = bob_log.wait_incoming().await;
    assert_eq!(info.direction, CallDirection::Incoming);
    assert_eq!(info.remote.user.as_deref(), Some("alice"));
    assert!(info.headers.contains(&("X-Routed-By".to_string(), "interceptor".to_string())), "{:?}", info.headers);
    assert!(info.headers.contains(&("X-Order-Id".to_string(), "A-17".to_string())), "{:?}", info.headers);
    assert_eq!(
        info.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("X-Routed-By")).count(),
        1,
        "{:?}",
        info.headers
    );
    bob.reject(info.key, 486).await.expect("rejected");

    let ended = alice_log.wait_ended(call).await;
    let end = ended.end.clone().expect("end cause");
    assert_eq!((end.by, end.status), (Originator::Remote, Some(486)), "{ended:#?}");
    assert!(ended.connected_ms.is_none(), "{ended:#?}");
    let ended = bob_log.wait_ended(info.key).await;
    assert_eq!(ended.end.as_ref().map(|e| e.by), Some(Originator::Local), "{ended:#?}");
    assert_eq!(
        alice_log.seen.iter().filter(|e| matches!(e, Event::CallOutgoing { .. })).count(),
        1,
        "{:#?}",
        alice_log.seen
    );

    alice.stop().await.unwrap();
    bob.stop().await.unwrap();
}
