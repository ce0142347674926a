//! Scenario: register over `wss://` to a real Kamailio (its tls module) whose
//! certificate the test generates and passes as the only trusted root; the
//! same server is refused with the default (webpki) roots.

mod support;

use support::*;
use webphone::{Event, FailureKind, Phone, TlsConfig};

fn kamailio_with_tls() -> (Kamailio, Vec<u8>) {
    require_loopback_only_netns();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().self_signed(&key).unwrap();
    let kamailio = Kamailio::start(&KamailioConfig {
        domain: DOMAIN.into(),
        users: vec![("alice".into(), ALICE_PASSWORD.into())],
        tls: Some(TlsFiles { cert_pem: cert.pem(), key_pem: key.serialize_pem() }),
        pool: None,
    });
    (kamailio, cert.der().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_wss_with_a_custom_root() {
    let (kamailio, root) = kamailio_with_tls();
    let url = kamailio.wss_url();
    let config = phone_config(std::slice::from_ref(&url), "alice", ALICE_PASSWORD)
        .tls(TlsConfig::with_root_certificates([root]))
        .build()
        .unwrap();
    let phone = Phone::new(config);
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    let ev = log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    assert_eq!(ev, Event::Registered { server: url, expires: 600 });
    let binding = kamailio.rpc("ul.lookup", &["location", "alice@example.com"]);
    assert!(binding.contains("transport=wss") || binding.contains("transport=ws"), "{binding}");
    phone.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_roots_refuse_an_unknown_certificate() {
    let (kamailio, _) = kamailio_with_tls();
    let phone = Phone::new(phone_config(&[kamailio.wss_url()], "alice", ALICE_PASSWORD).build().unwrap());
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    let ev = log.wait_for("ConnectFailed", |e| matches!(e, Event::ConnectFailed { .. })).await;
    assert!(
        matches!(&ev, Event::ConnectFailed { reason, kind: FailureKind::Certificate, retry_in_ms: None, next_server: None, .. }
            if reason.contains("certificate")),
        "not retried: {ev:?}"
    );
    phone.stop().await.unwrap();
}
