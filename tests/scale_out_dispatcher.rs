//! Scenario: several `webphone` processes behind the call center's own SIP
//! layer. Two `webphone answer` processes, bot1 (600 Hz) and bot2 (700 Hz),
//! are the members of a pool in Kamailio's dispatcher (route POOL in
//! `support/kamailio.cfg.in`: round robin over the members' AoRs, the next
//! member when one is not registered, cannot be reached or fails).
//! Alice calls `pool`, one call after the other: both bots answer in turn
//! (the tone Alice hears tells which). Right after bot2 took a call, bot1
//! is killed (SIGKILL) and Alice calls four more times at once: every call
//! is answered, by bot2, the first one although round robin picked bot1. bot2's own report, written when it is interrupted at the end,
//! counts the calls it took and Alice's tone in each.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use webphone::{AudioSetup, CallOptions, Phone, SendAudio};

const BOT_PASSWORD: &str = "bot-Secret-5e0b";
const BOT1_HZ: f64 = 600.0;
const BOT2_HZ: f64 = 700.0;
const ALICE_HZ: f64 = 440.0;
const CALLS_PER_PHASE: usize = 4;

fn registered(kamailio: &Kamailio, user: &str) -> bool {
    kamailio.rpc("ul.lookup", &["location", &format!("{user}@{DOMAIN}")]).contains("transport=ws")
}

/// A bot process, killed on drop (when a test fails half-way).
struct Bot(Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `webphone answer` for `user`, sending a tone of `hz`, and waits
/// until it is registered.
fn bot(kamailio: &Kamailio, user: &str, hz: f64, report: &Path) -> Bot {
    let child = Command::new(cli())
        .arg("answer")
        .args(["--server", &kamailio.ws_url(), "--user", user, "--domain", DOMAIN, "--allow-loopback"])
        .args(["--tone", &hz.to_string(), "--report"])
        .arg(report)
        .env("WEBPHONE_PASSWORD", BOT_PASSWORD)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn webphone answer");
    let bot = Bot(child);
    let deadline = Instant::now() + TIMEOUT;
    while !registered(kamailio, user) {
        assert!(Instant::now() < deadline, "{user} never registered:\n{}", kamailio.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    bot
}

/// Alice calls the pool, hears the answering bot's tone for half a second
/// and hangs up; returns the tone heard.
async fn call_pool(alice: &Phone, log: &mut EventLog) -> f64 {
    let audio = AudioSetup {
        send: SendAudio::Tone { frequency_hz: ALICE_HZ, level_dbfs: -12.0 },
        track_frequencies: vec![BOT1_HZ, BOT2_HZ],
        ..Default::default()
    };
    let call = alice.call("pool", CallOptions { audio, ..Default::default() }).await.expect("call placed").key();
    log.wait_confirmed(call).await;
    let stats = wait_stats(alice, call, "a bot's tone at Alice", |s| {
        s.decoded_frames >= 25
            && s.rx_dominant_hz.is_some_and(|f| (f - BOT1_HZ).abs() < 5.0 || (f - BOT2_HZ).abs() < 5.0)
    })
    .await;
    alice.hangup(call).await.expect("hang up");
    log.wait_ended(call).await;
    let heard = stats.rx_dominant_hz.unwrap();
    if (heard - BOT1_HZ).abs() < 5.0 { BOT1_HZ } else { BOT2_HZ }
}

/// Kamailio with users alice, bot1 and bot2, and the pool `pool` of bot1
/// and bot2.
fn pool_kamailio() -> Kamailio {
    require_loopback_only_netns();
    let users = ["alice", "bot1", "bot2"]
        .map(|u| (u.to_string(), if u == "alice" { ALICE_PASSWORD } else { BOT_PASSWORD }.to_string()));
    Kamailio::start(&KamailioConfig {
        domain: DOMAIN.into(),
        users: users.to_vec(),
        tls: None,
        pool: Some(Pool { user: "pool".into(), members: vec!["bot1".into(), "bot2".into()] }),
    })
}

/// The lines of Kamailio's log where the pool moved a call on from bot1.
fn moved_on_from_bot1(kamailio: &Kamailio) -> Vec<String> {
    kamailio.log().lines().filter(|l| l.contains("pool: ") && l.contains("bot1@")).map(str::to_string).collect()
}

fn signal(bot: &Bot, sig: &str) {
    let status = Command::new("kill").args([sig, &bot.0.id().to_string()]).status().expect("kill");
    assert!(status.success(), "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_two_processes_and_survive_one_killed() {
    let kamailio = pool_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-scale-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bot2_report = dir.join("bot2.json");
    let (mut bot1, mut bot2) = tokio::task::block_in_place(|| {
        (bot(&kamailio, "bot1", BOT1_HZ, &dir.join("bot1.json")), bot(&kamailio, "bot2", BOT2_HZ, &bot2_report))
    });
    let (alice, mut log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    // Calls until both bots have answered and bot2 took the last one, so
    // that round robin picks bot1 for the first call after the kill.
    let mut before = Vec::new();
    while !(before.contains(&BOT1_HZ) && before.last() == Some(&BOT2_HZ)) {
        assert!(before.len() < 2 * CALLS_PER_PHASE, "calls not spread over both bots: {before:?}");
        before.push(call_pool(&alice, &mut log).await);
    }
    println!("answered before the kill (Hz): {before:?}");
    assert!(before.len() >= 3, "calls spread over both bots: {before:?}");

    // Kill bot1 and call at once: Kamailio may not have seen its connection
    // close yet (the call is relayed to a dead connection and moved on), or
    // it has, and bot1's binding is gone.
    bot1.0.kill().expect("SIGKILL bot1");
    tokio::task::block_in_place(|| bot1.0.wait()).expect("bot1 reaped");
    let mut after = Vec::new();
    for _ in 0..CALLS_PER_PHASE {
        after.push(call_pool(&alice, &mut log).await);
    }
    println!("answered after the kill (Hz): {after:?}");
    assert!(after.iter().all(|&hz| hz == BOT2_HZ), "the survivor answered every call: {after:?}");
    // Round robin still picked bot1 for half of those calls: Kamailio moved
    // them on to bot2 (bot1 not registered any more, its connection gone,
    // or no answer from it).
    let moved_on = moved_on_from_bot1(&kamailio);
    println!("moved on from bot1:\n{}", moved_on.join("\n"));
    assert!(moved_on.len() >= 2, "calls moved on from bot1:\n{}", kamailio.log());
    assert!(!registered(&kamailio, "bot1"), "bot1's binding went with its connection");
    alice.stop().await.expect("alice stops");

    // bot2's own account: every call it answered, with Alice's tone heard.
    signal(&bot2, "-INT");
    let exit = tokio::task::block_in_place(|| bot2.0.wait()).expect("bot2 exits");
    assert!(exit.success(), "bot2 exit {exit:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bot2_report).expect("bot2 report")).expect("JSON report");
    let calls = report["calls"].as_array().expect("calls");
    let expected = before.iter().chain(&after).filter(|&&hz| hz == BOT2_HZ).count();
    assert_eq!(calls.len(), expected, "bot2 took the calls Alice heard it on: {calls:#?}");
    for call in calls {
        assert_eq!(call["confirmed"], true, "{call:#}");
        let hz = call["audio"]["rx_dominant_hz"].as_f64().unwrap_or(0.0);
        assert!((hz - ALICE_HZ).abs() < 5.0, "bot2 heard {hz} Hz");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A member that hangs (frozen with SIGSTOP: its connection stays open and
/// its binding stays, but it answers nothing) is skipped once the pool's
/// no-answer time (5 s without even a 100 Trying) has passed: the call
/// picked for it is answered by the other member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_member_is_skipped_after_the_no_answer_time() {
    let kamailio = pool_kamailio();
    let dir = std::env::temp_dir().join(format!("webphone-scale-out-hung-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bot1, bot2) = tokio::task::block_in_place(|| {
        (
            bot(&kamailio, "bot1", BOT1_HZ, &dir.join("bot1.json")),
            bot(&kamailio, "bot2", BOT2_HZ, &dir.join("bot2.json")),
        )
    });
    let (alice, mut log) = registered_phone(&kamailio, "alice", ALICE_PASSWORD).await;

    signal(&bot1, "-STOP");
    // Round robin picks bot1 for one of two calls in a row.
    let mut answered = Vec::new();
    let mut took = Vec::new();
    for _ in 0..2 {
        let start = Instant::now();
        answered.push(call_pool(&alice, &mut log).await);
        took.push(start.elapsed());
    }
    println!("answered (Hz): {answered:?} in {took:?}");
    assert_eq!(answered, [BOT2_HZ; 2], "bot2 answered both calls");
    let moved_on = moved_on_from_bot1(&kamailio);
    println!("moved on from bot1:\n{}", moved_on.join("\n"));
    assert!(
        moved_on.len() == 1 && moved_on[0].contains("answered 408"),
        "one call moved on from bot1 after its time-out:\n{}",
        kamailio.log()
    );
    assert!(took.iter().any(|t| *t >= Duration::from_secs(5)), "one call waited for bot1's time-out: {took:?}");
    alice.stop().await.expect("alice stops");
    tokio::task::block_in_place(|| drop((bot1, bot2)));
    let _ = std::fs::remove_dir_all(&dir);
}
