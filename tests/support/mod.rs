//! Shared support for integration tests: a real Kamailio (see `kamailio`),
//! phone configurations for it, and waiting on events with generous
//! timeouts (never fixed sleeps).
//!
//! The sans-IO scenarios (N user agents behind an in-memory proxy on a fake
//! clock) use `sip_net.rs` instead, included by path so they do not pull in
//! these socket helpers: `#[path = "support/sip_net.rs"] mod sip_net;`.
#![allow(dead_code)]

pub mod browser;
pub mod kamailio;
pub mod raw_ws;
pub mod tone_peer;
pub mod ws_server;

use std::time::Duration;

use webphone::{CallInfo, CallKey, Event, Events, PhoneConfig, PhoneConfigBuilder};

#[allow(unused_imports)]
pub use kamailio::{Kamailio, KamailioConfig, Pool, TlsFiles, require_loopback_only_netns, unused_port};

/// The test domain and digest realm.
pub const DOMAIN: &str = "example.com";
/// Alice's password (the secret the log tests look for).
pub const ALICE_PASSWORD: &str = "alice-Secret-7f3a9";
/// Bob's password.
pub const BOB_PASSWORD: &str = "bob-Secret-22c1";
/// Generous wait for anything that should happen in well under a second.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Kamailio with users alice and bob.
pub fn start_kamailio() -> Kamailio {
    start_kamailio_with_users(&[])
}

/// Kamailio with users alice and bob plus `extra` (user, password).
pub fn start_kamailio_with_users(extra: &[(&str, &str)]) -> Kamailio {
    require_loopback_only_netns();
    let mut users = vec![("alice".into(), ALICE_PASSWORD.into()), ("bob".into(), BOB_PASSWORD.into())];
    users.extend(extra.iter().map(|(u, p)| (u.to_string(), p.to_string())));
    Kamailio::start(&KamailioConfig { domain: DOMAIN.into(), users, tls: None, pool: None })
}

/// A configuration for `user` with fast reconnection, for tests.
pub fn phone_config(servers: &[String], user: &str, password: &str) -> PhoneConfigBuilder {
    let mut b = PhoneConfig::builder()
        .user(user)
        .password(password)
        .domain(DOMAIN)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(5));
    for s in servers {
        b = b.server(s.clone());
    }
    b
}

/// A phone for `user` through `kamailio` with loopback media, started and
/// registered.
pub async fn registered_phone(kamailio: &Kamailio, user: &str, password: &str) -> (webphone::Phone, EventLog) {
    registered_phone_with(kamailio, user, password, |b| b).await
}

/// Like [`registered_phone`], with the configuration adjusted by `customize`.
pub async fn registered_phone_with(
    kamailio: &Kamailio,
    user: &str,
    password: &str,
    customize: impl FnOnce(PhoneConfigBuilder) -> PhoneConfigBuilder,
) -> (webphone::Phone, EventLog) {
    let config = customize(phone_config(&[kamailio.ws_url()], user, password).allow_loopback(true))
        .build()
        .expect("valid config");
    let phone = webphone::Phone::new(config);
    let mut log = EventLog::new(phone.events());
    phone.start().expect("started");
    log.wait_for("Registered", |e| matches!(e, Event::Registered { .. })).await;
    (phone, log)
}

/// Polls a call's stats until `done` holds (generous timeout), returning them.
pub async fn wait_stats(
    phone: &webphone::Phone,
    call: webphone::CallKey,
    what: &str,
    done: impl Fn(&webphone::media::CallStats) -> bool,
) -> webphone::media::CallStats {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let stats = phone.call_stats(call).await.expect("call has stats");
        if done(&stats) {
            return stats;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; last stats: {stats:#?}");
        }
    }
}

/// Polls Kamailio's log until it contains `needle`; panics with the log
/// after [`TIMEOUT`]. Needs a multi-thread runtime (`block_in_place`).
pub async fn wait_for_kamailio_log(kamailio: &Kamailio, needle: &str) {
    let found = tokio::task::block_in_place(|| kamailio.wait_for_log(needle, TIMEOUT));
    assert!(found, "Kamailio's log never showed {needle:?}:\n{}", kamailio.log());
}

/// Events of one phone, remembered so failures can show what happened.
pub struct EventLog {
    events: Events,
    pub seen: Vec<Event>,
}

impl EventLog {
    pub fn new(events: Events) -> EventLog {
        EventLog { events, seen: Vec::new() }
    }

    /// Waits until an event matches `pred` and returns it; panics after
    /// [`TIMEOUT`] with every event seen so far.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                Ok(None) => panic!("event stream ended while waiting for {what}; seen: {:#?}", self.seen),
                Err(_) => panic!("timed out waiting for {what}; seen: {:#?}", self.seen),
            }
        }
    }

    /// Like [`Self::wait_for`], but an event already seen counts too: for
    /// events whose order against the ones waited for before is not fixed.
    pub async fn seen_or_wait(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        match self.seen.iter().find(|e| pred(e)) {
            Some(ev) => ev.clone(),
            None => self.wait_for(what, pred).await,
        }
    }

    /// Waits for `CallIncoming` and returns its call.
    pub async fn wait_incoming(&mut self) -> CallInfo {
        match self.wait_for("CallIncoming", |e| matches!(e, Event::CallIncoming { .. })).await {
            Event::CallIncoming { call } => call,
            _ => unreachable!(),
        }
    }

    /// Waits for `CallConfirmed` of `key` and returns its call.
    pub async fn wait_confirmed(&mut self, key: CallKey) -> CallInfo {
        let what = format!("CallConfirmed of {key}");
        match self.wait_for(&what, |e| matches!(e, Event::CallConfirmed { call } if call.key == key)).await {
            Event::CallConfirmed { call } => call,
            _ => unreachable!(),
        }
    }

    /// Waits for `CallEnded` of `key` and returns its call.
    pub async fn wait_ended(&mut self, key: CallKey) -> CallInfo {
        let what = format!("CallEnded of {key}");
        match self.wait_for(&what, |e| matches!(e, Event::CallEnded { call, .. } if call.key == key)).await {
            Event::CallEnded { call, .. } => call,
            _ => unreachable!(),
        }
    }

    /// Every event still queued, without waiting.
    pub fn drain(&mut self) -> &[Event] {
        while let Some(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
        &self.seen
    }
}

/// The CLI example's binary (`cargo test` builds examples beside the tests).
pub fn cli() -> std::path::PathBuf {
    // target/debug/deps/TEST-HASH → target/debug/examples/webphone
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let cli = dir.join("examples").join("webphone");
    assert!(cli.exists(), "{} not built (cargo test builds examples)", cli.display());
    cli
}

/// A raw webrtc peer on loopback, for tests that play the far end's media
/// themselves (editing offers, checking packets).
pub async fn loopback_peer() -> std::sync::Arc<webphone::media::rtc::peer::Peer> {
    use webphone::media::rtc::peer::{IceConfig, Peer, PeerConfig};
    let config = PeerConfig { ice: IceConfig { allow_loopback: true, ..Default::default() }, ..Default::default() };
    std::sync::Arc::new(Peer::new(&config).await.expect("test peer"))
}
