//! The action vocabulary as JSON messages: what a program sends to a phone
//! (one [`Action`] per message, optionally with an `"id"` of its own
//! choosing) and what it gets back for it (`action_result`). The CLI's
//! `phone` verb (JSON lines on stdin and stdout) and the control server
//! (WebSocket text frames) both speak it, so a client written against one
//! works against the other.
//!
//! ```text
//! → {"id":7,"action":"call","target":"sip:bob@example.com"}
//! ← {"event":"action_result","id":7,"action":"call","ok":true,"call":1}
//! → {"action":"hangup","call":9}
//! ← {"event":"action_result","id":null,"action":"hangup","ok":false,
//!    "error":{"kind":"no_such_call","message":"..."}}
//! ```

use serde_json::{Value, json};

use crate::action::{Action, ActionOutcome};
use crate::error::Error;
use crate::media::AudioSetup;

/// One message of a client, read.
#[derive(Debug)]
pub enum Request {
    /// An action to carry out; `id` is echoed in its result.
    Action {
        /// The client's id for the request (any JSON value), if it gave one.
        id: Option<Value>,
        /// What to do.
        action: Box<Action>,
    },
    /// `{"action":"quit"}`: the client is done (the CLI exits; the control
    /// server closes that client's connection).
    Quit {
        /// The client's id for the request.
        id: Option<Value>,
    },
    /// Not a request: answered with [`bad_request`].
    Bad {
        /// The id, when the message was an object that had one.
        id: Option<Value>,
        /// What is wrong with it.
        message: String,
    },
}

/// Reads one message. Never fails: what is not an action is a
/// [`Request::Bad`] saying why.
pub fn parse_request(text: &str) -> Request {
    let mut value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Request::Bad { id: None, message: format!("not JSON: {e}") },
    };
    let Some(map) = value.as_object_mut() else {
        return Request::Bad { id: None, message: "expected a JSON object".into() };
    };
    let id = map.remove("id");
    if map.get("action").and_then(Value::as_str) == Some("quit") {
        return Request::Quit { id };
    }
    match serde_json::from_value::<Action>(value) {
        Ok(action) => Request::Action { id, action: Box::new(action) },
        Err(e) => Request::Bad { id, message: e.to_string() },
    }
}

/// True when the message chose its own audio (an `"audio"` field).
pub fn has_audio(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v.get("audio").is_some())
}

/// Gives a `call` or `answer` action `audio` (for messages that named none,
/// see [`has_audio`]); other actions are left alone.
pub fn give_audio(action: &mut Action, audio: AudioSetup) {
    if let Action::Call { audio: a, .. } | Action::Answer { audio: a, .. } = action {
        *a = audio;
    }
}

/// The result of an action: `ok` with what it produced (`call`, `stats`,
/// `status`, `lines`), or the error's kind and message.
pub fn action_result(id: Option<Value>, action: &str, outcome: Result<ActionOutcome, Error>) -> Value {
    match outcome {
        Ok(outcome) => {
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
        Err(e) => failure(id, Some(action), e.kind(), &e.to_string()),
    }
}

/// The answer to a message that is not a request.
pub fn bad_request(id: Option<Value>, message: &str) -> Value {
    failure(id, None, "bad_request", message)
}

/// A failed `action` (`None` when the request was not understood).
pub fn failure(id: Option<Value>, action: Option<&str>, kind: &str, message: &str) -> Value {
    json!({
        "event": "action_result",
        "id": id,
        "action": action,
        "ok": false,
        "error": {"kind": kind, "message": message},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_actions_quit_and_garbage() {
        match parse_request(r#"{"id":"a1","action":"hangup","call":3}"#) {
            Request::Action { id, action } => {
                assert_eq!(id, Some(json!("a1")));
                assert_eq!(action.name(), "hangup");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_request(r#"{"action":"quit","id":2}"#), Request::Quit { id: Some(_) }));
        assert!(matches!(parse_request("{nope"), Request::Bad { id: None, .. }));
        assert!(matches!(parse_request("[1,2]"), Request::Bad { id: None, .. }));
        match parse_request(r#"{"id":5,"action":"fly","to":"moon"}"#) {
            Request::Bad { id, message } => {
                assert_eq!(id, Some(json!(5)));
                assert!(message.contains("fly"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn results_carry_the_id_and_what_came_out() {
        let ok = action_result(Some(json!(1)), "call", Ok(ActionOutcome::Call(crate::CallKey(4))));
        assert_eq!(ok, json!({"event":"action_result","id":1,"action":"call","ok":true,"call":4}));
        let err = action_result(None, "hangup", Err(Error::NotRunning));
        assert_eq!(err["ok"], false);
        assert_eq!(err["error"]["kind"], Error::NotRunning.kind());
        assert_eq!(bad_request(None, "x")["error"]["kind"], "bad_request");
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking(text in ".{0,200}") {
            let _ = parse_request(&text);
            let _ = has_audio(&text);
        }

        #[test]
        fn any_object_is_read_without_panicking(
            action in "[a-z_]{0,12}",
            call in any::<i64>(),
            extra in "[a-z]{0,6}",
        ) {
            let text = json!({"action": action, "call": call, extra: [1, {"a": null}]}).to_string();
            let _ = parse_request(&text);
        }
    }
}
