//! Event printing, per-call records, the live status line and the JSON
//! report of the `webphone` CLI.
//!
//! The report stays bounded however long the run or hostile the server:
//! it keeps the first [`KEEP_FIRST`] and the last [`KEEP_LAST`] events
//! with a count of those in between, and at most [`MAX_CALLS`] call
//! records (the oldest ended calls that the outcome does not depend on
//! give way first).

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use webphone::media::CallStats;
use webphone::media::receive::quality::{QualityAlert, QualityMetric};
use webphone::{CallInfo, CallKey, Event, Events, Phone};

/// Events kept from the start of the run.
const KEEP_FIRST: usize = 1000;
/// Events kept from the end of the run.
const KEEP_LAST: usize = 1000;
/// Call records kept.
const MAX_CALLS: usize = 1000;

/// The events the report lists: the first and the latest, and how many
/// in between were left out.
#[derive(Default)]
struct KeptEvents {
    first: Vec<Value>,
    last: VecDeque<Value>,
    omitted: u64,
}

impl KeptEvents {
    fn push(&mut self, value: Value) {
        if self.first.len() < KEEP_FIRST {
            self.first.push(value);
            return;
        }
        self.last.push_back(value);
        if self.last.len() > KEEP_LAST {
            self.last.pop_front();
            self.omitted += 1;
        }
    }

    fn to_json(&self) -> Value {
        let mut all: Vec<Value> = self.first.clone();
        if self.omitted > 0 {
            all.push(json!({ "event": "omitted", "count": self.omitted }));
        }
        all.extend(self.last.iter().cloned());
        Value::Array(all)
    }
}

/// What one call did, from its events and its last stats.
#[derive(Default)]
struct CallRecord {
    info: Option<CallInfo>,
    confirmed: bool,
    ended: bool,
    stats: Option<CallStats>,
    /// Quality alerts raised or cleared during the call.
    alerts: Vec<QualityAlert>,
    /// DTMF digits received and sent, with their method.
    dtmf_received: Vec<Value>,
    dtmf_sent: Vec<Value>,
    /// A transfer gave us this call (placed on a REFER, or replacing one of ours).
    from_transfer: bool,
    /// Our transfer of this call: the progress statuses and the outcome.
    transfer: Option<TransferRecord>,
}

/// What became of our transfer of a call.
#[derive(Default)]
struct TransferRecord {
    progress: Vec<u16>,
    /// `Some(Ok)` accepted, `Some(Err((status, reason)))` failed, `None` pending.
    outcome: Option<Result<(), (Option<u16>, String)>>,
}

/// Whether the run did what was asked.
pub enum Outcome {
    Ok,
    Failed(String),
}

/// Follows one phone's events and calls.
pub struct Recorder {
    phone: Phone,
    events: Events,
    label: String,
    json: bool,
    status_line: bool,
    started: Instant,
    pub registered: bool,
    log: KeptEvents,
    calls: BTreeMap<CallKey, CallRecord>,
    /// Call records left out to keep the report bounded.
    calls_omitted: u64,
    expected: Vec<CallKey>,
    calls_matter: bool,
    status_shown: bool,
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    /// Subscribes to `phone`'s events. `calls_matter`: the outcome requires
    /// every expected call to be confirmed with audio received.
    pub fn new(phone: &Phone, label: &str, json: bool, calls_matter: bool) -> Recorder {
        Recorder {
            phone: phone.clone(),
            events: phone.events(),
            label: label.to_string(),
            json,
            status_line: !json && std::io::stdout().is_terminal(),
            started: Instant::now(),
            registered: false,
            log: KeptEvents::default(),
            calls: BTreeMap::new(),
            calls_omitted: 0,
            expected: Vec::new(),
            calls_matter,
            status_shown: false,
        }
    }

    /// The next event (printed and recorded).
    pub async fn next(&mut self) -> Option<Event> {
        let ev = self.events.recv().await?;
        self.record(&ev);
        Some(ev)
    }

    fn record(&mut self, ev: &Event) {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        let mut value =
            serde_json::to_value(ev).unwrap_or_else(|e| json!({ "event": "unprintable", "error": e.to_string() }));
        if let Value::Object(map) = &mut value {
            map.insert("phone".into(), json!(self.label));
            map.insert("at_ms".into(), json!(epoch_ms()));
            map.insert("elapsed_ms".into(), json!(elapsed_ms));
        }
        self.clear_status();
        if self.json {
            println!("{value}");
        } else {
            println!("[{:>8.3}s] {:<8} {}", elapsed_ms as f64 / 1000.0, self.label, describe(ev));
        }
        let _ = std::io::stdout().flush();
        self.log.push(value);
        match ev {
            Event::Registered { .. } => self.registered = true,
            Event::CallOutgoing { call } | Event::CallIncoming { call } | Event::CallProgress { call, .. } => {
                let r = self.call(call.key);
                r.from_transfer |= call.transferred_from.is_some();
                r.info = Some(call.clone());
            }
            Event::CallConfirmed { call } => {
                let r = self.call(call.key);
                r.info = Some(call.clone());
                r.confirmed = true;
            }
            Event::CallEnded { call, stats } => {
                let r = self.call(call.key);
                r.info = Some(call.clone());
                r.ended = true;
                if let Some(stats) = stats {
                    // The final figures: the call's stats are gone after this.
                    r.stats = Some((**stats).clone());
                }
            }
            Event::CallQuality { call, alert } => self.call(call.key).alerts.push(*alert),
            Event::TransferProgress { call, status, .. } => {
                let r = self.call(call.key);
                r.transfer.get_or_insert_with(Default::default).progress.push(*status);
            }
            Event::TransferAccepted { call } => {
                let r = self.call(call.key);
                r.transfer.get_or_insert_with(Default::default).outcome = Some(Ok(()));
            }
            Event::TransferFailed { call, status, reason } => {
                let r = self.call(call.key);
                r.transfer.get_or_insert_with(Default::default).outcome = Some(Err((*status, reason.clone())));
            }
            Event::CallReplaced { new, .. } => {
                let r = self.call(new.key);
                r.info = Some(new.clone());
                r.from_transfer = true;
            }
            Event::DtmfReceived { call, digit, duration_ms, method } => {
                let d = json!({ "digit": digit.to_string(), "duration_ms": duration_ms, "method": method });
                self.call(call.key).dtmf_received.push(d);
            }
            Event::DtmfSent { call, digit, method } => {
                let d = json!({ "digit": digit.to_string(), "method": method });
                self.call(call.key).dtmf_sent.push(d);
            }
            _ => {}
        }
    }

    /// The record of call `key`, made room for when it is new.
    fn call(&mut self, key: CallKey) -> &mut CallRecord {
        if !self.calls.contains_key(&key) && self.calls.len() >= MAX_CALLS {
            let oldest = self.calls.iter().find(|(k, c)| c.ended && !self.expected.contains(k)).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.calls.remove(&oldest);
                self.calls_omitted += 1;
            }
        }
        self.calls.entry(key).or_default()
    }

    /// Prints a JSON line in the event stream (and keeps it for the report).
    pub fn print_json(&mut self, mut value: Value) {
        if let Value::Object(map) = &mut value {
            map.insert("phone".into(), json!(self.label));
            map.insert("at_ms".into(), json!(epoch_ms()));
        }
        self.clear_status();
        println!("{value}");
        let _ = std::io::stdout().flush();
        self.log.push(value);
    }

    /// A line of text in the event stream.
    pub fn note(&mut self, text: &str) {
        self.clear_status();
        eprintln!("{}: {text}", self.label);
    }

    /// This call counts for the outcome.
    pub fn expect_call(&mut self, key: CallKey) {
        if !self.expected.contains(&key) {
            self.expected.push(key);
        }
        self.call(key);
    }

    /// Whether a transfer gave us this call.
    pub fn is_consequence_of_transfer(&self, key: CallKey) -> bool {
        self.calls.get(&key).is_some_and(|c| c.from_transfer)
    }

    /// How many calls have ended.
    pub fn ended_calls(&self) -> usize {
        self.calls.values().filter(|c| c.ended).count()
    }

    /// Calls that have not ended.
    pub fn active_calls(&self) -> Vec<CallKey> {
        self.calls.iter().filter(|(_, c)| !c.ended).map(|(k, _)| *k).collect()
    }

    /// Fetches a call's stats (kept: they vanish with the call's media).
    pub async fn refresh_stats(&mut self, key: CallKey) {
        if let Ok(stats) = self.phone.call_stats(key).await {
            self.call(key).stats = Some(stats);
        }
    }

    /// Refreshes every live call and redraws the status line.
    pub async fn refresh_all_stats(&mut self) {
        for key in self.active_calls() {
            self.refresh_stats(key).await;
        }
        self.draw_status();
    }

    fn draw_status(&mut self) {
        if !self.status_line {
            return;
        }
        let Some((_, call)) = self.calls.iter().rev().find(|(_, c)| !c.ended) else { return };
        let state = if call.confirmed { "in call" } else { "ringing" };
        let since = call.info.as_ref().map(|i| i.connected_ms.unwrap_or(i.started_ms)).unwrap_or_else(epoch_ms);
        let secs = epoch_ms().saturating_sub(since) / 1000;
        let (level, hz, loss) = match &call.stats {
            Some(s) => (
                format!("{:.0} dBFS", s.rx_level_dbfs.max(-99.0)),
                s.rx_dominant_hz.map_or("-".to_string(), |f| format!("{f:.0} Hz")),
                format!("{:.1}%", s.loss * 100.0),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        print!("\r\x1b[2K{} {state} {:02}:{:02}  rx {level} {hz}  loss {loss}", self.label, secs / 60, secs % 60);
        let _ = std::io::stdout().flush();
        self.status_shown = true;
    }

    fn clear_status(&mut self) {
        if self.status_shown {
            print!("\r\x1b[2K");
            self.status_shown = false;
        }
    }

    /// Milliseconds from `placed` to the first audio heard on `key`.
    pub fn first_audio_after(&self, key: CallKey, placed: Instant) -> Option<f64> {
        let first = self.calls.get(&key)?.stats.as_ref()?.first_audio_ms?;
        let placed_ms = epoch_ms().saturating_sub(placed.elapsed().as_millis() as u64);
        Some(first.saturating_sub(placed_ms) as f64)
    }

    /// True when `hz` dominated at least 80 % of the non-silent frames heard.
    pub fn heard(&self, key: CallKey, hz: f64) -> bool {
        self.tracked_ratio(key, hz) >= 0.8
    }

    fn tracked_ratio(&self, key: CallKey, hz: f64) -> f64 {
        let stats = self.calls.get(&key).and_then(|c| c.stats.as_ref());
        stats.and_then(|s| s.tracked.iter().find(|(f, _)| (*f - hz).abs() < 0.5).map(|(_, r)| *r)).unwrap_or(0.0)
    }

    /// One line about a call for the demo summary.
    pub fn summary_line(&self, key: CallKey, want_hz: f64) -> String {
        let Some(s) = self.calls.get(&key).and_then(|c| c.stats.as_ref()) else {
            return "no media figures".into();
        };
        format!(
            "heard {} (tone {want_hz:.0} Hz in {:.0}% of frames), {} packets in / {} out, loss {:.1}%, jitter {:.1} ms, codec {}",
            s.rx_dominant_hz.map_or("nothing".to_string(), |f| format!("{f:.0} Hz")),
            self.tracked_ratio(key, want_hz) * 100.0,
            s.rx_packets,
            s.tx_packets,
            s.loss * 100.0,
            s.jitter_ms,
            s.codec.as_deref().unwrap_or("-"),
        )
    }

    /// Did the run do what was asked?
    pub fn outcome(&self) -> Outcome {
        if !self.registered {
            return Outcome::Failed("not registered".into());
        }
        if !self.calls_matter {
            return Outcome::Ok;
        }
        if self.expected.is_empty() {
            return Outcome::Failed("no call took place".into());
        }
        for key in &self.expected {
            let Some(call) = self.calls.get(key) else { continue };
            if !call.confirmed {
                let why = call.info.as_ref().and_then(|i| i.end.as_ref()).map_or("not answered".to_string(), |e| {
                    format!("{} {}", e.status.map_or(String::new(), |s| s.to_string()), e.reason)
                });
                return Outcome::Failed(format!("call {key} was not confirmed: {}", why.trim()));
            }
            let heard = call.stats.as_ref().is_some_and(|s| s.rx_packets > 0 && s.first_audio_ms.is_some());
            if !heard {
                return Outcome::Failed(format!("call {key}: no audio received"));
            }
            match call.transfer.as_ref().map(|t| &t.outcome) {
                Some(Some(Err((status, reason)))) => {
                    let status = status.map_or(String::new(), |s| format!("{s} "));
                    return Outcome::Failed(format!("call {key}: transfer failed: {status}{reason}"));
                }
                Some(None) => return Outcome::Failed(format!("call {key}: transfer did not finish")),
                _ => {}
            }
        }
        Outcome::Ok
    }

    /// Writes the JSON report.
    pub fn write_report(&self, path: &Path, error: Option<&str>) -> Result<(), String> {
        let calls: Vec<Value> = self.calls.iter().filter_map(|(key, c)| call_json(*key, c)).collect();
        let report = json!({
            "registered": self.registered,
            "events": self.log.to_json(),
            "calls": calls,
            "calls_omitted": self.calls_omitted,
            "error": error,
        });
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("cannot write report {}: {e}", path.display()))
    }
}

fn call_json(key: CallKey, c: &CallRecord) -> Option<Value> {
    let info = c.info.as_ref()?;
    let audio = c.stats.as_ref().map(|s| {
        json!({
            "codec": s.codec,
            "tx_packets": s.tx_packets,
            "rx_packets": s.rx_packets,
            "rx_dominant_hz": s.rx_dominant_hz,
            "loss": s.loss,
            "jitter_ms": s.jitter_ms,
            "jitter_buffer_ms": s.jitter_buffer_ms,
            "concealed_frames": s.concealed_frames,
            "fec_frames": s.fec_frames,
            "late_ticks": s.late_ticks,
            "rtt_ms": s.rtt_ms,
        })
    });
    Some(json!({
        "key": key,
        "call_id": info.call_id,
        "direction": info.direction,
        "remote": info.remote.uri,
        "confirmed": c.confirmed,
        "started_ms": info.started_ms,
        "connected_ms": info.connected_ms,
        "first_rtp_ms": c.stats.as_ref().and_then(|s| s.first_rtp_ms),
        "first_audio_ms": c.stats.as_ref().and_then(|s| s.first_audio_ms),
        "ended_ms": info.ended_ms,
        "end": info.end,
        "headers": info.headers,
        "audio": audio,
        "quality_alerts": c.alerts,
        "dtmf_received": c.dtmf_received,
        "dtmf_sent": c.dtmf_sent,
        "transferred_from": info.transferred_from,
        "transfer": c.transfer.as_ref().map(|t| json!({
            "progress": t.progress,
            "outcome": match &t.outcome {
                None => json!("pending"),
                Some(Ok(())) => json!("accepted"),
                Some(Err((status, reason))) => json!({ "failed": { "status": status, "reason": reason } }),
            },
        })),
    }))
}

fn describe(event: &Event) -> String {
    match event {
        Event::Connected { server } => format!("connected to {server}"),
        Event::Disconnected { server, reason, retry_in_ms } => match retry_in_ms {
            Some(ms) => format!("disconnected from {server}: {reason} (reconnecting in {ms} ms)"),
            None => format!("disconnected from {server}: {reason}"),
        },
        Event::ConnectFailed { server, reason, kind, retry_in_ms, next_server } => match (retry_in_ms, next_server) {
            (Some(ms), Some(next)) => format!("cannot connect to {server}: {reason} ({kind}; next: {next} in {ms} ms)"),
            _ => format!("cannot connect to {server}: {reason} ({kind}; not retrying)"),
        },
        Event::Registered { server, expires } => format!("registered via {server} for {expires} s"),
        Event::Unregistered { reason, .. } => format!("unregistered ({reason})"),
        Event::RegistrationFailed { status, reason, kind, retry_in_ms, .. } => {
            let status = status.map_or("-".to_string(), |s| s.to_string());
            match retry_in_ms {
                Some(ms) => format!("registration failed: {status} {reason} ({kind}; retrying in {ms} ms)"),
                None => format!("registration failed: {status} {reason} ({kind}; not retrying)"),
            }
        }
        Event::CallOutgoing { call } => format!("{} calling {}", call.key, call.remote.uri),
        Event::CallIncoming { call } => format!("{} incoming call from {}", call.key, call.remote.uri),
        Event::CallProgress { call, status, reason, early_media } => {
            format!("{} {status} {reason}{}", call.key, if *early_media { " (early media)" } else { "" })
        }
        Event::CallConfirmed { call } => format!("{} confirmed", call.key),
        Event::CallEnded { call, .. } => match &call.end {
            Some(end) => format!(
                "{} ended by {:?}: {}{}{}",
                call.key,
                end.by,
                end.status.map_or(String::new(), |s| format!("{s} ")),
                end.reason,
                end.bye_status.map_or(String::new(), |s| format!(" (our BYE got {s}: the far end may not know)"))
            ),
            None => format!("{} ended", call.key),
        },
        Event::CallQuality { call, alert } => {
            let what = match alert.metric {
                QualityMetric::PacketLoss => format!("packet loss {:.1} %", alert.value * 100.0),
                QualityMetric::Jitter => format!("jitter {:.0} ms", alert.value),
                QualityMetric::NoAudio => format!("no audio for {:.0} s", alert.value),
            };
            format!("{} quality: {what} ({})", call.key, if alert.active { "alert" } else { "back to normal" })
        }
        Event::DtmfReceived { call, digit, duration_ms, method } => {
            format!("{} DTMF {digit} received ({} ms, {})", call.key, duration_ms, method.name())
        }
        Event::DtmfSent { call, digit, method } => format!("{} DTMF {digit} sent ({})", call.key, method.name()),
        Event::CallHeld { call, by } => format!("{} held by {by:?}", call.key),
        Event::CallResumed { call, by } => format!("{} resumed by {by:?}", call.key),
        Event::HoldFailed { call, status, reason } => {
            format!("{} hold failed: {}{reason}", call.key, status.map_or(String::new(), |s| format!("{s} ")))
        }
        Event::SendAudioEnded { call } => format!("{} what it sends ran out", call.key),
        Event::TransferProgress { call, status, reason } => format!("{} transfer: target {status} {reason}", call.key),
        Event::TransferAccepted { call } => format!("{} transfer succeeded", call.key),
        Event::TransferFailed { call, status, reason } => {
            format!("{} transfer failed: {}{reason}", call.key, status.map_or(String::new(), |s| format!("{s} ")))
        }
        Event::TransferRequested { call, target, referred_by, replaces } => format!(
            "{} asked to transfer to {target}{}{}",
            call.key,
            referred_by.as_ref().map_or(String::new(), |b| format!(" by {b}")),
            if *replaces { " (attended)" } else { "" }
        ),
        Event::CallReplaced { old, new } => format!("{} replaced by {}", old.key, new.key),
        Event::TargetRefreshed { call } => format!("{} reachable again after reconnecting", call.key),
        Event::TargetRefreshFailed { call, status, reason, retry_in_ms } => format!(
            "{} could not refresh its target after reconnecting: {}{reason} (again in {retry_in_ms} ms)",
            call.key,
            status.map_or(String::new(), |s| format!("{s} "))
        ),
        Event::StatusChanged { state, code, last } => format!("status {code} ({state:?}, was {last})"),
        Event::MalformedMessage { why, count: 1 } => format!("malformed message: {why}"),
        Event::MalformedMessage { why, count } => format!("{count} malformed messages (the last: {why})"),
        Event::Lagged { missed } => format!("fell behind: {missed} events lost"),
        Event::Stopped => "stopped".to_string(),
        other => format!("{other:?}"),
    }
}
