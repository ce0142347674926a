//! The `phone` verb: a registered phone driven by JSON lines.
//!
//! Each line on stdin is one [`webphone::Action`] (`{"action":"call",
//! "target":"sip:bob@example.com"}`), optionally with an `"id"`; each event
//! is printed as one JSON object per line, and each action's outcome as
//! `{"event":"action_result","id":...,"action":"call","ok":true,"call":1}` or
//! `{"event":"action_result","id":...,"ok":false,"error":{"kind":"...",
//! "message":"..."}}`. `{"action":"quit"}`, the end of stdin or Ctrl-C
//! hangs up, unregisters and exits. Call and answer actions without an
//! `"audio"` use the audio of the command line (`--tone`, `--play`,
//! `--record`).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use webphone::{Action, ActionOutcome, CallKey, Event, Phone};

use crate::report::Recorder;
use crate::{Output, PhoneArgs, config, finish, start_registered};

/// What one input line asks for.
enum Line {
    Action {
        id: Option<Value>,
        action: Action,
    },
    Quit {
        id: Option<Value>,
    },
    /// Not an action: answered with this error.
    Bad {
        id: Option<Value>,
        message: String,
    },
}

pub async fn run(args: PhoneArgs) -> Result<(), String> {
    let phone = Phone::new(config(&args.account, Some(&args.audio))?);
    let mut rec = Recorder::new(&phone, "phone", true, false);
    let output = Output { json_events: true, report: args.report.clone() };
    let result = async {
        start_registered(&phone, &mut rec, args.account.timeout).await?;
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let (answer_tx, mut answer_rx) = tokio::sync::mpsc::unbounded_channel::<CallKey>();
        let mut calls_audio = 0usize;
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let line = match line {
                        Ok(Some(line)) => line,
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(format!("reading stdin: {e}")),
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    match parse(&line) {
                        Line::Quit { id } => {
                            rec.print_json(json!({"event": "action_result", "id": id, "action": "quit", "ok": true}));
                            return Ok(());
                        }
                        Line::Bad { id, message } => rec.print_json(failure(id, None, "bad_request", &message)),
                        Line::Action { id, mut action } => {
                            if !has_audio(&line) {
                                default_audio(&mut action, &args, &mut calls_audio);
                            }
                            let name = action.name();
                            let result = match phone.execute(action).await {
                                Ok(outcome) => success(id, name, outcome),
                                Err(e) => failure(id, Some(name), e.kind(), &e.to_string()),
                            };
                            rec.print_json(result);
                        }
                    }
                }
                ev = rec.next() => match ev {
                    None => return Ok(()),
                    Some(Event::CallIncoming { call }) => {
                        if let Some(after) = args.answer_after {
                            let tx = answer_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs_f64(after.max(0.0))).await;
                                let _ = tx.send(call.key);
                            });
                        }
                    }
                    Some(_) => {}
                },
                Some(key) = answer_rx.recv() => {
                    let audio = args.audio.setup(calls_audio);
                    calls_audio += 1;
                    if let Err(e) = phone.answer_with(key, audio).await {
                        rec.print_json(failure(None, Some("answer"), e.kind(), &e.to_string()));
                    }
                }
                _ = crate::interrupted() => return Ok(()),
            }
        }
    }
    .await;
    finish(&phone, rec, &output, result).await
}

fn parse(line: &str) -> Line {
    let mut value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Line::Bad { id: None, message: format!("not JSON: {e}") },
    };
    let Some(map) = value.as_object_mut() else {
        return Line::Bad { id: None, message: "expected a JSON object".into() };
    };
    let id = map.remove("id");
    if map.get("action").and_then(Value::as_str) == Some("quit") {
        return Line::Quit { id };
    }
    match serde_json::from_value::<Action>(value) {
        Ok(action) => Line::Action { id, action },
        Err(e) => Line::Bad { id, message: e.to_string() },
    }
}

/// True when the line chose its own audio.
fn has_audio(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| v.get("audio").is_some())
}

/// Gives call and answer actions the command line's audio.
fn default_audio(action: &mut Action, args: &PhoneArgs, count: &mut usize) {
    if let Action::Call { audio, .. } | Action::Answer { audio, .. } = action {
        *audio = args.audio.setup(*count);
        *count += 1;
    }
}

fn success(id: Option<Value>, action: &str, outcome: ActionOutcome) -> Value {
    let mut v = json!({"event": "action_result", "id": id, "action": action, "ok": true});
    match outcome {
        ActionOutcome::Call(key) => v["call"] = json!(key),
        ActionOutcome::Stats(stats) => v["stats"] = json!(stats),
        ActionOutcome::Status(status) => v["status"] = json!(status),
        ActionOutcome::Lines(lines) => v["lines"] = json!(lines),
        _ => {}
    }
    v
}

fn failure(id: Option<Value>, action: Option<&str>, kind: &str, message: &str) -> Value {
    json!({
        "event": "action_result",
        "id": id,
        "action": action,
        "ok": false,
        "error": {"kind": kind, "message": message},
    })
}
