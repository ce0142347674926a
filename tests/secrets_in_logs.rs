//! The password never appears in logs (at trace level, which logs every
//! SIP message), Debug output or errors; digest responses are redacted.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::*;
use webphone::{Event, Phone};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Current-thread runtime: the subscriber set with `set_default` is
// thread-local, and the driver task must run on this thread to be captured.
#[tokio::test]
async fn password_and_digest_never_logged() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let kamailio = start_kamailio();
    let config = phone_config(&[kamailio.ws_url()], "alice", ALICE_PASSWORD).build().unwrap();
    let config_debug = format!("{config:?}");
    let phone = Phone::new(config);
    let mut log = EventLog::new(phone.events());
    phone.start().unwrap();
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    phone.stop().await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("REGISTER sip:example.com"), "trace logs should show SIP traffic:\n{logs}");
    assert!(logs.contains("Authorization: <redacted>"), "the credentialed REGISTER was logged redacted");
    for haystack in [&logs, &config_debug, &format!("{phone:?}"), &format!("{:?}", log.seen)] {
        assert!(!haystack.contains(ALICE_PASSWORD), "password leaked into:\n{haystack}");
        assert!(!haystack.contains("response=\""), "digest response leaked into:\n{haystack}");
    }
}
