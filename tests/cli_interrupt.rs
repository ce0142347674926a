//! Scenario: Ctrl-C ends the CLI cleanly, every time. `webphone register`
//! is sent SIGINT right as it prints an event (when its loop is between two
//! passes: a Ctrl-C listener created afresh per pass lost it there in 3 of
//! 12 trials); it must unregister and exit 0, five times in a row.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn sigint_always_unregisters_and_exits() {
    let kamailio = start_kamailio();
    for round in 0..5 {
        let mut child = Command::new(cli())
            .args(["register", "--server", &kamailio.ws_url(), "--user", "alice", "--domain", DOMAIN, "--json-events"])
            .env("WEBPHONE_PASSWORD", ALICE_PASSWORD)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn webphone register");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            let line =
                lines.recv_timeout(TIMEOUT).unwrap_or_else(|_| panic!("round {round}: not registered: {seen:#?}"));
            let registered = line.contains("\"event\":\"registered\"");
            seen.push(line);
            if registered {
                break;
            }
        }
        // Right after the event: the CLI's loop is between two passes.
        let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
        assert!(status.success());
        let deadline = Instant::now() + TIMEOUT;
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("round {round}: Ctrl-C was lost, the CLI is still running: {seen:#?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "round {round}: exit {exit:?}");
        seen.extend(lines.try_iter());
        assert!(
            seen.iter().any(|l| l.contains("\"event\":\"unregistered\"")),
            "round {round}: it unregistered before exiting: {seen:#?}"
        );
    }
}
