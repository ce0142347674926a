//! Scenario: `webphone register` (the CLI, a process of its own) on a
//! hostile server that floods it with 50,000 junk frames after the phone
//! registered. The CLI's memory, its output and its report stay bounded
//! (they grew with every frame: 6.9 MB to 53 MB of RSS, an 8.9 MB report),
//! it still answers OPTIONS, and Ctrl-C still unregisters and exits 0.
//! Run with `--nocapture` to see the figures.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::ws_server::{WsServer, out_of_dialog, rss_kb};
use support::*;

const FRAMES: usize = 50_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_junk_frames_cost_bounded_memory_and_output() {
    require_loopback_only_netns();
    let mut server = WsServer::start(None).await;
    let report = std::env::temp_dir().join(format!("webphone-junk-report-{}.json", std::process::id()));
    let mut child = Command::new(cli())
        .args(["register", "--server", &server.url, "--user", "alice", "--domain", DOMAIN, "--json-events"])
        .arg("--report")
        .arg(&report)
        .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn webphone register");
    let pid = child.id();
    // Read the CLI's output as it comes (a full pipe would stall it).
    let stdout = child.stdout.take().expect("piped stdout");
    let lines = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());

    let mut conn = server.accept().await;
    let reg = conn.answer_register().await;
    let target = support::ws_server::ServerConn::target(&reg);
    let answers = conn.exchange(vec![out_of_dialog("OPTIONS", &target, "")], 1).await;
    assert_eq!(answers[0].status(), Some(200));
    let before = rss_kb(pid);

    for i in 0..FRAMES {
        conn.send(format!("junk{i:05}")).await;
    }
    // Frames are handled in order: the answer to this OPTIONS comes after
    // every junk frame was read.
    let answers = conn.exchange(vec![out_of_dialog("OPTIONS", &target, "")], 1).await;
    assert_eq!(answers[0].status(), Some(200));
    let after = rss_kb(pid);

    // Ctrl-C: the CLI unregisters (answered here) and exits.
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill -INT");
    assert!(status.success());
    let unreg = conn.answer_register().await;
    assert_eq!(unreg.header("Expires"), Some("0"));
    let exit = tokio::task::spawn_blocking(move || child.wait().expect("wait for the CLI"));
    let exit = tokio::time::timeout(TIMEOUT, exit).await.expect("the CLI exits").expect("waiter");
    assert!(exit.success(), "exit {exit:?}");
    let lines = lines.join().expect("stdout reader");
    let report_bytes = std::fs::metadata(&report).expect("the report was written").len();
    let _ = std::fs::remove_file(&report);

    let malformed = lines.iter().filter(|l| l.contains("\"event\":\"malformed_message\"")).count();
    println!(
        "CLI RSS {before} kB before {FRAMES} junk frames, {after} kB after (+{} kB); {} lines printed \
         ({malformed} malformed_message); report {report_bytes} bytes",
        after.saturating_sub(before),
        lines.len()
    );
    assert!(malformed <= 1 + 60, "{malformed} malformed_message lines: one per second at most");
    assert!(lines.len() < 200, "{} lines printed", lines.len());
    assert!(report_bytes < 200_000, "report of {report_bytes} bytes");
    // Generous: the flood used to add 46 MB; what it may add now is the
    // allocator's slack, not a copy per frame.
    assert!(after.saturating_sub(before) < 8 * 1024, "RSS grew from {before} kB to {after} kB");
}
