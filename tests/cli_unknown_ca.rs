//! Scenario: `webphone register` against a `wss://` server whose certificate
//! was issued by a lab CA the phone does not know. A certificate that fails
//! verification will not heal by retrying: the CLI tries once, reports the
//! certificate and exits non-zero at once (not after its `--timeout`).
//! Given that CA with `--ca-file`, it registers and exits 0.
//! The server is in-process (`support/ws_server.rs`), with certificates made
//! by the test.

mod support;

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::ws_server::WsServer;
use support::*;

/// A lab CA (its PEM) and a server configuration whose certificate for
/// 127.0.0.1 that CA issued.
fn lab_ca() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "webphone test lab CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("server TLS config");
    (ca.as_ref().pem(), Arc::new(config))
}

/// Runs the CLI's `register` verb against `url` with `extra` arguments.
async fn register(url: &str, extra: &[&str]) -> (Output, Duration) {
    let mut cmd = Command::new(cli());
    cmd.args(["register", "--server", url, "--user", "alice", "--domain", DOMAIN, "--json-events"])
        .args(["--timeout", "60", "--duration", "1"])
        .args(extra)
        .env("WEBPHONE_PASSWORD", ALICE_PASSWORD);
    let started = Instant::now();
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("run webphone register"));
    // Generous: far more than a run needs, less than the CLI's own --timeout.
    let output = tokio::time::timeout(Duration::from_secs(50), run)
        .await
        .expect("the CLI did not exit before its --timeout")
        .expect("the CLI's runner");
    (output, started.elapsed())
}

fn events(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_fails_at_once_and_ca_file_fixes_it() {
    require_loopback_only_netns();
    let (ca_pem, server_tls) = lab_ca();
    let mut server = WsServer::start(Some(server_tls)).await;

    let (output, took) = register(&server.url, &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit {:?}; stderr: {stderr}", output.status);
    assert!(stderr.contains("(certificate)") && stderr.contains("UnknownIssuer"), "the reason says so: {stderr}");
    let failures: Vec<_> = events(&output).into_iter().filter(|e| e["event"] == "connect_failed").collect();
    assert_eq!(failures.len(), 1, "one attempt, no retry: {failures:#?}");
    assert_eq!(failures[0]["kind"], "certificate");
    assert!(failures[0]["retry_in_ms"].is_null(), "{:#?}", failures[0]);
    assert!(took < Duration::from_secs(30), "exited at once, not after its 60 s --timeout: {took:?}");
    assert!(server.try_accept().is_none(), "no WebSocket was opened");

    let ca_file = std::env::temp_dir().join(format!("webphone-lab-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca_pem).expect("write the CA file");
    let url = server.url.clone();
    let registrar = tokio::spawn(async move {
        let mut conn = server.accept().await;
        conn.answer_register().await;
        // The unregistration when --duration is over.
        let unreg = conn.answer_register().await;
        assert_eq!(unreg.header("Expires"), Some("0"), "{}", unreg.start);
    });
    let (output, _) = register(&url, &["--ca-file", ca_file.to_str().expect("a UTF-8 temp path")]).await;
    let _ = std::fs::remove_file(&ca_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}; stderr: {stderr}", output.status);
    let events = events(&output);
    assert!(events.iter().any(|e| e["event"] == "registered"), "{events:#?}");
    assert!(!events.iter().any(|e| e["event"] == "connect_failed"), "{events:#?}");
    registrar.await.expect("the server saw a registration and an unregistration");
}
