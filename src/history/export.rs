//! The history's exports: [`to_json`] (an array of records, as
//! [`super::CallRecord`] serializes) and [`to_csv`] (one row per call, RFC
//! 4180 quoting; text that a spreadsheet would run as a formula is
//! defused).

use super::CallRecord;

/// The records as a JSON array.
pub fn to_json(records: &[CallRecord]) -> String {
    serde_json::to_string_pretty(records).unwrap_or_else(|_| "[]".into())
}

/// The CSV header row's columns.
const CSV_COLUMNS: [&str; 24] = [
    "id",
    "call_id",
    "direction",
    "local_uri",
    "local_name",
    "remote_uri",
    "remote_name",
    "started_ms",
    "answered_ms",
    "ended_ms",
    "end_by",
    "end_status",
    "end_reason",
    "headers",
    "sent_headers",
    "dtmf_sent",
    "dtmf_received",
    "codec",
    "rx_packets",
    "loss",
    "recording",
    "note",
    "rate",
    "report",
];

/// The records as CSV: a header row, then one row per record, CRLF line
/// ends. Headers are `Name: value` pairs joined by `; `; the media figures
/// kept are the codec, packets received and loss.
pub fn to_csv(records: &[CallRecord]) -> String {
    let mut out = String::new();
    out.push_str(&CSV_COLUMNS.join(","));
    out.push_str("\r\n");
    for r in records {
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let headers =
            |h: &[(String, String)]| h.iter().map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>().join("; ");
        let stat = |name: &str| r.stats.as_ref().and_then(|s| s.get(name)).filter(|v| !v.is_null());
        let end = r.end.as_ref();
        let fields = [
            Field::Number(r.id.to_string()),
            Field::Text(r.call_id.clone()),
            Field::Text(if r.direction == crate::CallDirection::Outgoing { "outgoing" } else { "incoming" }.into()),
            Field::Text(r.local.uri.clone()),
            Field::Text(r.local.display_name.clone().unwrap_or_default()),
            Field::Text(r.remote.uri.clone()),
            Field::Text(r.remote.display_name.clone().unwrap_or_default()),
            Field::Number(r.started_ms.to_string()),
            Field::Number(number(r.answered_ms)),
            Field::Number(number(r.ended_ms)),
            Field::Text(
                end.map(|e| if e.by == crate::Originator::Local { "local" } else { "remote" })
                    .unwrap_or_default()
                    .into(),
            ),
            Field::Number(number(end.and_then(|e| e.status).map(u64::from))),
            Field::Text(end.map(|e| e.reason.clone()).unwrap_or_default()),
            Field::Text(headers(&r.headers)),
            Field::Text(headers(&r.sent_headers)),
            Field::Text(r.dtmf_sent.clone()),
            Field::Text(r.dtmf_received.clone()),
            Field::Text(stat("codec").and_then(|v| v.as_str()).unwrap_or_default().into()),
            Field::Number(stat("rx_packets").map(|v| v.to_string()).unwrap_or_default()),
            Field::Number(stat("loss").map(|v| v.to_string()).unwrap_or_default()),
            Field::Text(r.recording.clone().unwrap_or_default()),
            Field::Text(r.note.clone().unwrap_or_default()),
            Field::Number(r.rate.map(|n| n.to_string()).unwrap_or_default()),
            Field::Text(r.report.clone().unwrap_or_default()),
        ];
        let row: Vec<String> = fields.into_iter().map(Field::into_csv).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A CSV cell: numbers are written as they are, text is defused and quoted.
enum Field {
    Number(String),
    Text(String),
}

impl Field {
    fn into_csv(self) -> String {
        match self {
            Field::Number(n) => n,
            Field::Text(mut text) => {
                // A cell starting with one of these is a formula to a
                // spreadsheet: a caller's display name must not run as one.
                if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    text.insert(0, '\'');
                }
                if text.contains([',', '"', '\r', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallDirection, CallKey, EndCause, Originator, Party};

    fn record() -> CallRecord {
        CallRecord {
            id: 7,
            call_key: CallKey(2),
            call_id: "a84b4c76e66710@pc33".into(),
            direction: CallDirection::Outgoing,
            local: Party { uri: "sip:1001@example.com".into(), user: Some("1001".into()), display_name: None },
            remote: Party {
                uri: "sip:1002@example.com".into(),
                user: Some("1002".into()),
                display_name: Some("=HYPERLINK(\"http://x\")".into()),
            },
            headers: vec![],
            sent_headers: vec![
                ("X-Order-Id".into(), "66493f1afaa3".into()),
                ("X-Params".into(), "{\"a\":1,\"b\":2}".into()),
            ],
            started_ms: 1_700_000_000_000,
            answered_ms: Some(1_700_000_001_000),
            ended_ms: Some(1_700_000_009_000),
            end: Some(EndCause { by: Originator::Local, status: None, reason: "BYE".into(), bye_status: None }),
            stats: Some(serde_json::json!({"codec": "opus", "rx_packets": 400, "loss": 0.0})),
            dtmf_sent: "12#".into(),
            dtmf_received: String::new(),
            recording: None,
            note: Some("line one\nline two, with a comma".into()),
            rate: Some(-1),
            report: Some("said \"fine\"".into()),
            noted_ms: Some(1_700_000_100_000),
        }
    }

    #[test]
    fn json_is_an_array_of_records() {
        let json: serde_json::Value = serde_json::from_str(&to_json(&[record()])).unwrap();
        let r = &json[0];
        assert_eq!(r["id"], 7);
        assert_eq!(r["call_key"], 2);
        assert_eq!(r["direction"], "outgoing");
        assert_eq!(r["sent_headers"][0], serde_json::json!(["X-Order-Id", "66493f1afaa3"]));
        assert_eq!(r["answered_ms"], 1_700_000_001_000u64);
        assert_eq!(r["end"]["by"], "local");
        assert_eq!(r["stats"]["codec"], "opus");
        assert_eq!(r["note"], "line one\nline two, with a comma");
        assert_eq!(to_json(&[]), "[]");
    }

    /// Splits CSV text per RFC 4180 (quoted fields, doubled quotes, line
    /// ends inside quotes), to read back what `to_csv` wrote.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let (mut rows, mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                ('"', true) => quoted = false,
                ('"', false) if field.is_empty() => quoted = true,
                (',', false) => row.push(std::mem::take(&mut field)),
                ('\r', false) if chars.peek() == Some(&'\n') => {}
                ('\n', false) => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (c, _) => field.push(c),
            }
        }
        assert!(!quoted && field.is_empty() && row.is_empty(), "the text ends with a complete row");
        rows
    }

    #[test]
    fn csv_quotes_what_needs_it_and_reads_back() {
        let text = to_csv(&[record()]);
        let rows = parse_csv(&text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], CSV_COLUMNS);
        let row: std::collections::HashMap<&str, &str> =
            CSV_COLUMNS.iter().copied().zip(rows[1].iter().map(String::as_str)).collect();
        assert_eq!(row["id"], "7");
        assert_eq!(row["direction"], "outgoing");
        assert_eq!(row["note"], "line one\nline two, with a comma");
        assert_eq!(row["report"], "said \"fine\"");
        assert_eq!(row["sent_headers"], "X-Order-Id: 66493f1afaa3; X-Params: {\"a\":1,\"b\":2}");
        assert_eq!((row["answered_ms"], row["end_status"], row["end_by"]), ("1700000001000", "", "local"));
        assert_eq!((row["codec"], row["rx_packets"], row["rate"]), ("opus", "400", "-1"));
        // A display name that a spreadsheet would run as a formula is defused.
        assert_eq!(row["remote_name"], "'=HYPERLINK(\"http://x\")");
        // The quoting as written: quotes doubled, the field in quotes.
        assert!(text.contains(",\"said \"\"fine\"\"\"\r\n"), "{text}");
        assert!(text.ends_with("\r\n"));
    }

    #[test]
    fn csv_of_nothing_is_the_header_row() {
        assert_eq!(to_csv(&[]), CSV_COLUMNS.join(",") + "\r\n");
    }
}
