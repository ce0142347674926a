//! A real browser on the far end: JsSIP 3.13 in Debian's headless Chromium,
//! driven by `tests/browser/jssip-peer.mjs` (playwright-core) over JSON
//! lines. One [`Browser`] is one Chromium; each JsSIP user agent in it is a
//! page, named by the test (`ua`). Chromium's fake microphone sends a sine
//! of the frequency given to [`Browser::start`]; a meter on each call's
//! remote audio measures tones and hears DTMF (see the script's docs for the
//! commands and events). [`Browser::start_crm`] runs CRM pages that embed
//! webphone's iframe widget pages instead (`tests/browser/crm-parent.mjs`).
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser`
//! (`scripts/install-deps.sh --tests` sees to all three); without them the test fails
//! saying so. The browser reaches only the Kamailio URI it is given.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::{DOMAIN, Kamailio, TIMEOUT, kamailio::kill_process_group};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium's start, generous for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// One tone measurement's window.
const MEASURE_MS: u64 = 500;

/// The peer's directory: `tests/browser`.
fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser")
}

/// One headless Chromium running JsSIP user agents. Killed on drop (with
/// everything it started); when the test panics, its last events and
/// console lines are printed.
pub struct Browser {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: UnboundedReceiver<Value>,
    /// Events received but not yet taken by a wait.
    pending: VecDeque<Value>,
    /// Every event, for failure messages.
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
    next_id: u64,
}

/// What [`Browser::measure_tone`] found over one window.
#[derive(Clone, Copy, Debug)]
pub struct ToneMeasure {
    /// Share of 40 ms blocks in which the frequency held most of the power.
    pub present: f64,
    /// Median block level, dBFS.
    pub level_db: f64,
}

impl Browser {
    /// Starts Chromium; its fake microphone plays `tone_hz`. Panics with
    /// what to install when node, Chromium or the node modules are missing.
    pub async fn start(tone_hz: u32) -> Browser {
        Browser::spawn("jssip-peer.mjs", &["--tone-hz", &tone_hz.to_string()]).await
    }

    /// Starts Chromium with the CRM pages of `tests/browser/crm` instead of
    /// JsSIP (`tests/browser/crm-parent.mjs`: open, post, click; `message`
    /// events carry what a CRM page received from its widget).
    pub async fn start_crm() -> Browser {
        Browser::spawn("crm-parent.mjs", &[]).await
    }

    async fn spawn(script: &str, args: &[&str]) -> Browser {
        let dir = peer_dir();
        require_prerequisites(&dir);
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning node for the browser peer: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, events) = unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or_else(|_| json!({"event": "unparsed", "text": line}));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let mut browser = Browser {
            child: Some(child),
            stdin,
            events,
            pending: VecDeque::new(),
            seen: Vec::new(),
            stderr,
            next_id: 0,
        };
        let ready = browser.wait_within(START_TIMEOUT, "the browser peer's ready", |e| {
            matches!(e["event"].as_str(), Some("ready" | "fatal"))
        });
        let ready = ready.await;
        if ready["event"] == "fatal" {
            panic!("the browser peer cannot run: {}", ready["error"]);
        }
        browser
    }

    /// Opens a page for `ua` whose JsSIP registers `user` at `kamailio` and
    /// waits until it is registered.
    pub async fn register(&mut self, ua: &str, kamailio: &Kamailio, user: &str, password: &str) {
        self.command(
            ua,
            "register",
            json!({"ws": kamailio.ws_url(), "user": user, "password": password, "domain": DOMAIN}),
        )
        .await;
        self.wait(ua, "registered", None).await;
    }

    /// Runs `cmd` with `args` on `ua` and returns its value; panics when it
    /// fails.
    pub async fn command(&mut self, ua: &str, cmd: &str, args: Value) -> Value {
        match self.try_command(ua, cmd, args).await {
            Ok(v) => v,
            Err(e) => panic!("browser command {cmd} on {ua} failed: {e}\n{}", self.summary()),
        }
    }

    /// Runs `cmd` with `args` on `ua`: its value, or the peer's error.
    pub async fn try_command(&mut self, ua: &str, cmd: &str, args: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = args;
        msg["id"] = json!(id);
        msg["cmd"] = json!(cmd);
        msg["ua"] = json!(ua);
        let stdin = self.stdin.as_mut().expect("browser peer's stdin is open");
        writeln!(stdin, "{msg}").and_then(|_| stdin.flush()).expect("writing to the browser peer");
        let what = format!("the result of {cmd} on {ua}");
        let result = self.wait_within(TIMEOUT, &what, |e| e["event"] == "result" && e["id"] == json!(id)).await;
        if result["ok"] == json!(true) { Ok(result["value"].clone()) } else { Err(result["error"].to_string()) }
    }

    /// Waits for event `event` of `ua` (and of `call`, when given).
    pub async fn wait(&mut self, ua: &str, event: &str, call: Option<&str>) -> Value {
        let what = format!("{event} at {ua}{}", call.map(|c| format!(" in {c}")).unwrap_or_default());
        self.wait_for(&what, |e| e["ua"] == ua && e["event"] == event && call.is_none_or(|c| e["call"] == c)).await
    }

    /// Waits (up to [`TIMEOUT`]) for an event matching `pred` and takes it;
    /// other events stay for later waits.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_within(TIMEOUT, what, pred).await
    }

    /// Like [`Browser::wait_for`], for things that come late by design
    /// (a session refresh), with their own timeout.
    pub async fn wait_within(&mut self, timeout: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("position is in range");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if ev["event"] == "fatal" || ev["event"] == "page_error" {
                        panic!("the browser peer failed while waiting for {what}: {ev}\n{}", self.summary());
                    }
                    if pred(&ev) {
                        return ev;
                    }
                    self.pending.push_back(ev);
                }
                Ok(None) => panic!("the browser peer exited while waiting for {what}\n{}", self.summary()),
                Err(_) => panic!("timed out waiting for {what}\n{}", self.summary()),
            }
        }
    }

    /// Waits until `n` events (counted from the start, taken or not) have
    /// matched `pred`, and returns the `n`th (1-based) without taking it.
    pub async fn wait_nth(&mut self, what: &str, n: usize, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            self.drain();
            if let Some(e) = self.seen.iter().filter(|e| pred(e)).nth(n - 1) {
                return e.clone();
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    self.pending.push_back(ev);
                }
                Ok(None) => panic!("the browser peer exited while waiting for {what}\n{}", self.summary()),
                Err(_) => panic!("timed out waiting for {what}\n{}", self.summary()),
            }
        }
    }

    /// How many SIP messages with an SDP body `ua` has sent (`dir` "out")
    /// or received ("in") so far: what it offered and answered, as on the wire.
    pub fn sdp_count(&mut self, ua: &str, dir: &str) -> usize {
        self.drain();
        self.seen.iter().filter(|e| carries_sdp(e, ua, dir)).count()
    }

    /// The SDP body of the `n`th (1-based) SIP message with SDP that `ua`
    /// sent (`dir` "out") or received ("in"), once it came.
    pub async fn wire_sdp(&mut self, ua: &str, dir: &str, n: usize) -> String {
        let what = format!("SDP #{n} {dir} at {ua}");
        let e = self.wait_nth(&what, n, |e| carries_sdp(e, ua, dir)).await;
        let text = e["text"].as_str().expect("SIP text");
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).expect("a body")
    }

    /// Every event received so far without waiting, kept for later waits.
    pub fn drain(&mut self) -> &[Value] {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev.clone());
            self.pending.push_back(ev);
        }
        &self.seen
    }

    /// Measures `freq` in what `call` of `ua` receives over the next half second.
    pub async fn measure_tone(&mut self, ua: &str, call: &str, freq: f64) -> ToneMeasure {
        let v = self.command(ua, "measure_tone", json!({"call": call, "freq": freq, "ms": MEASURE_MS})).await;
        ToneMeasure {
            present: v["present"].as_f64().expect("present"),
            level_db: v["median_level_db"].as_f64().expect("median_level_db"),
        }
    }

    /// Measures until `freq` is heard in at least 80 % of a window's blocks
    /// (`heard`) or in none of them (`!heard`); panics after [`TIMEOUT`].
    pub async fn wait_tone(&mut self, ua: &str, call: &str, freq: f64, heard: bool) -> ToneMeasure {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self.measure_tone(ua, call, freq).await;
            if (heard && m.present >= 0.8) || (!heard && m.present == 0.0) {
                return m;
            }
            if Instant::now() > deadline {
                let state = if heard { "heard" } else { "gone" };
                panic!("{freq} Hz never {state} at {ua} in {call}; last {m:?}\n{}", self.summary());
            }
        }
    }

    /// The call's WebRTC statistics (inbound/outbound packets, codecs).
    pub async fn stats(&mut self, ua: &str, call: &str) -> Value {
        self.command(ua, "stats", json!({"call": call})).await
    }

    /// Polls the call's statistics until its `way` ("inbound"/"outbound")
    /// packet count reaches `at_least`; returns the statistics.
    pub async fn wait_packets(&mut self, ua: &str, call: &str, way: &str, at_least: u64) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            interval.tick().await;
            let stats = self.stats(ua, call).await;
            if packets(&stats, way) >= at_least {
                return stats;
            }
            if Instant::now() > deadline {
                panic!("{ua} in {call}: {way} packets never reached {at_least}: {stats}\n{}", self.summary());
            }
        }
    }

    /// Polls the call's `way` ("inbound"/"outbound") packet count until two
    /// samples 200 ms apart agree (at 50 packets a second a flowing stream
    /// moves by about ten); returns the count.
    pub async fn wait_still(&mut self, ua: &str, call: &str, way: &str) -> u64 {
        let deadline = Instant::now() + TIMEOUT;
        let mut interval = tokio::time::interval(Duration::from_millis(200));
        let mut last = None;
        loop {
            interval.tick().await;
            let stats = self.stats(ua, call).await;
            let now = packets(&stats, way);
            if last == Some(now) {
                return now;
            }
            if Instant::now() > deadline {
                panic!("{ua} in {call}: {way} packets never stood still: {stats}\n{}", self.summary());
            }
            last = Some(now);
        }
    }

    /// The SIP messages `ua` sent (`dir` "out") or received ("in") whose
    /// first line starts with `start`, in order.
    pub fn sip(&mut self, ua: &str, dir: &str, start: &str) -> Vec<String> {
        self.drain();
        self.seen
            .iter()
            .filter(|e| e["event"] == "sip" && e["ua"] == ua && e["dir"] == dir)
            .filter_map(|e| e["text"].as_str())
            .filter(|t| t.starts_with(start))
            .map(str::to_string)
            .collect()
    }

    /// The last events and console lines, for failure messages (SIP
    /// messages by their first line).
    pub fn summary(&self) -> String {
        let mut out = String::from("---- browser peer events (last 60) ----\n");
        let shown: Vec<String> = self
            .seen
            .iter()
            .map(|e| match e["event"].as_str() {
                Some("sip") => format!(
                    "{} sip {} {}",
                    e["ua"].as_str().unwrap_or("?"),
                    e["dir"].as_str().unwrap_or("?"),
                    e["text"].as_str().and_then(|t| t.lines().next()).unwrap_or("")
                ),
                _ => e.to_string(),
            })
            .collect();
        for line in &shown[shown.len().saturating_sub(60)..] {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("---- browser console (last 40 lines) ----\n");
        let stderr = self.stderr.lock().unwrap();
        for line in &stderr[stderr.len().saturating_sub(40)..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.summary());
        }
        // End of input: the peer closes Chromium and exits; then anything
        // left of its process group is killed.
        self.stdin.take();
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            kill_process_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The packets of every `way` ("inbound"/"outbound") stream in `stats`
/// (from [`Browser::stats`]).
pub fn packets(stats: &Value, way: &str) -> u64 {
    let streams = stats[way].as_array().unwrap_or_else(|| panic!("no {way} streams in {stats}"));
    streams.iter().map(|s| s["packets"].as_u64().unwrap_or(0)).sum()
}

fn carries_sdp(e: &Value, ua: &str, dir: &str) -> bool {
    e["event"] == "sip"
        && e["ua"] == ua
        && e["dir"] == dir
        && e["text"].as_str().is_some_and(|t| t.contains("\r\n\r\nv=0"))
}

fn require_prerequisites(dir: &Path) {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        panic!("the browser peer needs node (Node.js 20 or later) on PATH: scripts/install-deps.sh --tests checks it");
    }
    if !Path::new(CHROMIUM).exists() {
        panic!("the browser peer needs {CHROMIUM}: apt-get install chromium (scripts/install-deps.sh --tests does)");
    }
    for module in ["jssip", "playwright-core", "esbuild"] {
        if !dir.join("node_modules").join(module).exists() {
            panic!(
                "the browser peer needs its node modules ({module} is missing): run `npm ci` in {} \
                 (scripts/install-deps.sh --tests does)",
                dir.display()
            );
        }
    }
}
