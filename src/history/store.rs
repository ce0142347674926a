//! [`Store`]: the call history database itself, synchronous. The phone's
//! writer thread (`super::writer`) owns one; a program may open another on
//! the same file to read or export it (WAL: readers never wait for the
//! writer).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::schema;
use super::{CallRecord, CallRef, Note};
use crate::dialog::call::{EndCause, Party};
use crate::media::CallStats;
use crate::{CallInfo, CallKey, Error};

/// A call history database.
pub struct Store {
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.conn.path()).finish()
    }
}

/// Which record a phone's call writes to: a phone's calls are told apart
/// by their [`CallKey`] within its `session` (one phone's life).
pub(super) struct RecordKey {
    pub(super) session: i64,
    pub(super) key: CallKey,
}

fn error(e: rusqlite::Error) -> Error {
    Error::History(e.to_string())
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A serde enum's name (`"outgoing"`), for a text column.
fn name<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string))
}

/// Reads back a [`name`] from column `i`.
fn from_name<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    let Some(text) = row.get::<_, Option<String>>(i)? else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(text))
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

/// Reads back a [`json`] value from column `i`.
fn from_json<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    let Some(text) = row.get::<_, Option<String>>(i)? else { return Ok(None) };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

const COLUMNS: &str = "id, call_key, call_id, direction, local_uri, local_user, local_display, remote_uri, \
    remote_user, remote_display, headers, sent_headers, started_ms, answered_ms, ended_ms, end_by, end_status, \
    end_reason, end_bye_status, stats, dtmf_sent, dtmf_received, recording, note, rate, report, noted_ms";

impl Store {
    /// Opens (or creates) the history at `path`, migrating it to this
    /// build's schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, Error> {
        let path = path.as_ref();
        let mut conn = Connection::open(path).map_err(|e| Error::History(format!("{}: {e}", path.display())))?;
        schema::prepare(&mut conn).map_err(|e| Error::History(format!("{}: {e}", path.display())))?;
        Ok(Store { conn })
    }

    /// The schema version of the database (after [`Store::open`], always
    /// this build's).
    pub fn schema_version(&self) -> Result<u32, Error> {
        schema::version(&self.conn).map_err(error)
    }

    /// Writes what is known of a call now: its first write inserts the
    /// record, later ones complete it. `sent` are the headers we put on
    /// our INVITE, when known.
    pub(super) fn upsert(
        &self,
        at: &RecordKey,
        call: &CallInfo,
        sent: Option<&[(String, String)]>,
    ) -> Result<(), Error> {
        let end = call.end.as_ref();
        self.conn
            .execute(
                "INSERT INTO calls (session, call_key, call_id, direction, local_uri, local_user, local_display,
                    remote_uri, remote_user, remote_display, headers, sent_headers, started_ms, answered_ms,
                    ended_ms, end_by, end_status, end_reason, end_bye_status)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, coalesce(?12, '[]'), ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19)
                ON CONFLICT (session, call_key) DO UPDATE SET
                    headers = excluded.headers,
                    sent_headers = coalesce(?12, sent_headers),
                    remote_uri = excluded.remote_uri,
                    remote_user = excluded.remote_user,
                    remote_display = excluded.remote_display,
                    answered_ms = excluded.answered_ms,
                    ended_ms = excluded.ended_ms,
                    end_by = excluded.end_by,
                    end_status = excluded.end_status,
                    end_reason = excluded.end_reason,
                    end_bye_status = excluded.end_bye_status",
                params![
                    at.session,
                    at.key.0 as i64,
                    call.call_id,
                    name(&call.direction),
                    call.local.uri,
                    call.local.user,
                    call.local.display_name,
                    call.remote.uri,
                    call.remote.user,
                    call.remote.display_name,
                    json(&call.headers),
                    sent.map(json),
                    call.started_ms as i64,
                    call.connected_ms.map(|t| t as i64),
                    call.ended_ms.map(|t| t as i64),
                    end.and_then(|e| name(&e.by)),
                    end.and_then(|e| e.status),
                    end.map(|e| e.reason.as_str()),
                    end.and_then(|e| e.bye_status),
                ],
            )
            .map(|_| ())
            .map_err(error)
    }

    /// Sets the headers we sent on a call's INVITE; false when the call
    /// has no record yet.
    pub(super) fn set_sent_headers(&self, at: &RecordKey, headers: &[(String, String)]) -> Result<bool, Error> {
        self.conn
            .execute(
                "UPDATE calls SET sent_headers = ?3 WHERE session = ?1 AND call_key = ?2",
                params![at.session, at.key.0 as i64, json(&headers)],
            )
            .map(|n| n > 0)
            .map_err(error)
    }

    /// Keeps a call's last media figures.
    pub(super) fn set_stats(&self, at: &RecordKey, stats: &CallStats) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE calls SET stats = ?3 WHERE session = ?1 AND call_key = ?2",
                params![at.session, at.key.0 as i64, json(stats)],
            )
            .map(|_| ())
            .map_err(error)
    }

    /// Adds a DTMF digit sent (or received) to a call's.
    pub(super) fn add_dtmf(&self, at: &RecordKey, digit: char, sent: bool) -> Result<(), Error> {
        let sql = if sent {
            "UPDATE calls SET dtmf_sent = dtmf_sent || ?3 WHERE session = ?1 AND call_key = ?2"
        } else {
            "UPDATE calls SET dtmf_received = dtmf_received || ?3 WHERE session = ?1 AND call_key = ?2"
        };
        self.conn.execute(sql, params![at.session, at.key.0 as i64, digit.to_string()]).map(|_| ()).map_err(error)
    }

    /// Keeps where a call is recorded (its latest recording's file).
    pub(super) fn set_recording(&self, at: &RecordKey, path: &Path) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE calls SET recording = ?3 WHERE session = ?1 AND call_key = ?2",
                params![at.session, at.key.0 as i64, path.to_string_lossy()],
            )
            .map(|_| ())
            .map_err(error)
    }

    /// Notes or rates the calls `which` names (Bizfly `note`) at `now_ms`
    /// (ms since the epoch): the fields `note` gives replace the record's,
    /// the others stay. Fails when no record matches; returns how many did
    /// (a Call-ID names both legs of a call between two phones sharing one
    /// history).
    pub fn note(&self, which: &CallRef, note: &Note, now_ms: u64) -> Result<usize, Error> {
        let ids = self.matching(which)?;
        if ids.is_empty() {
            return Err(Error::History(format!("no call record matches {which}")));
        }
        for id in &ids {
            self.conn
                .execute(
                    "UPDATE calls SET note = coalesce(?2, note), rate = coalesce(?3, rate),
                        report = coalesce(?4, report), noted_ms = ?5 WHERE id = ?1",
                    params![id, note.note, note.rate, note.report, now_ms as i64],
                )
                .map_err(error)?;
        }
        Ok(ids.len())
    }

    /// The ids of the records `which` names.
    fn matching(&self, which: &CallRef) -> Result<Vec<i64>, Error> {
        let ids = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<Vec<i64>, Error> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(error)?;
            let rows = stmt.query_map(params, |r| r.get(0)).map_err(error)?;
            rows.collect::<Result<Vec<i64>, _>>().map_err(error)
        };
        match which {
            CallRef::Record(id) => ids("SELECT id FROM calls WHERE id = ?1", &[id]),
            CallRef::CallId(call_id) => ids("SELECT id FROM calls WHERE call_id = ?1", &[call_id]),
            CallRef::Header { name, value } => ids(
                "SELECT id FROM calls WHERE EXISTS (
                    SELECT 1 FROM json_each(calls.headers) AS h
                    WHERE lower(json_extract(h.value, '$[0]')) = lower(?1) AND json_extract(h.value, '$[1]') = ?2
                    UNION ALL
                    SELECT 1 FROM json_each(calls.sent_headers) AS h
                    WHERE lower(json_extract(h.value, '$[0]')) = lower(?1) AND json_extract(h.value, '$[1]') = ?2)",
                &[name, value],
            ),
        }
    }

    /// The `limit` newest records, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<CallRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM calls ORDER BY started_ms DESC, id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(error)?;
        let rows = stmt.query_map(params![limit.min(i64::MAX as usize) as i64], record).map_err(error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(error)
    }

    /// One record by its id.
    pub fn get(&self, id: i64) -> Result<Option<CallRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE id = ?1");
        self.conn.query_row(&sql, params![id], record).optional().map_err(error)
    }
}

/// Reads a row selected with [`COLUMNS`].
fn record(row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    let party = |i: usize| -> rusqlite::Result<Party> {
        Ok(Party { uri: row.get(i)?, user: row.get(i + 1)?, display_name: row.get(i + 2)? })
    };
    let ms = |i: usize| -> rusqlite::Result<Option<u64>> { Ok(row.get::<_, Option<i64>>(i)?.map(|t| t as u64)) };
    let end = match from_name(row, 15)? {
        Some(by) => Some(EndCause {
            by,
            status: row.get(16)?,
            reason: row.get::<_, Option<String>>(17)?.unwrap_or_default(),
            bye_status: row.get(18)?,
        }),
        None => None,
    };
    let missing = |i: usize| rusqlite::Error::InvalidColumnType(i, "NULL".into(), rusqlite::types::Type::Null);
    Ok(CallRecord {
        id: row.get(0)?,
        call_key: CallKey(row.get::<_, i64>(1)? as u64),
        call_id: row.get(2)?,
        direction: from_name(row, 3)?.ok_or_else(|| missing(3))?,
        local: party(4)?,
        remote: party(7)?,
        headers: from_json(row, 10)?.unwrap_or_default(),
        sent_headers: from_json(row, 11)?.unwrap_or_default(),
        started_ms: row.get::<_, i64>(12)? as u64,
        answered_ms: ms(13)?,
        ended_ms: ms(14)?,
        end,
        stats: from_json(row, 19)?,
        dtmf_sent: row.get(20)?,
        dtmf_received: row.get(21)?,
        recording: row.get(22)?,
        note: row.get(23)?,
        rate: row.get(24)?,
        report: row.get(25)?,
        noted_ms: ms(26)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::TempDb;
    use crate::{CallDirection, Originator};

    fn party(user: &str) -> Party {
        Party { uri: format!("sip:{user}@example.com"), user: Some(user.into()), display_name: None }
    }

    fn call(key: u64, call_id: &str, started_ms: u64) -> CallInfo {
        CallInfo {
            key: CallKey(key),
            call_id: call_id.into(),
            direction: CallDirection::Incoming,
            local: party("1001"),
            remote: Party { display_name: Some("Ana \"the caller\"".into()), ..party("1002") },
            headers: vec![("X-bizfly-call-center-call-id".into(), format!("cc-{key}"))],
            started_ms,
            connected_ms: None,
            ended_ms: None,
            end: None,
            transferred_from: None,
        }
    }

    #[test]
    fn a_call_is_inserted_when_it_starts_and_completed_as_it_goes() {
        let db = TempDb::new("lifecycle");
        let store = Store::open(&db.0).unwrap();
        let at = RecordKey { session: 1, key: CallKey(4) };
        let mut info = call(4, "abc@host", 1_000);
        store.upsert(&at, &info, None).unwrap();
        let started = store.recent(1).unwrap().remove(0);
        assert_eq!(
            (started.call_key, started.started_ms, started.answered_ms, started.ended_ms),
            (CallKey(4), 1_000, None, None)
        );
        assert_eq!(started.remote.display_name.as_deref(), Some("Ana \"the caller\""));
        assert_eq!(started.headers, info.headers);

        info.connected_ms = Some(1_500);
        store.upsert(&at, &info, None).unwrap();
        store.add_dtmf(&at, '1', false).unwrap();
        store.add_dtmf(&at, '#', false).unwrap();
        store.add_dtmf(&at, '9', true).unwrap();
        info.ended_ms = Some(9_000);
        info.end = Some(EndCause { by: Originator::Remote, status: None, reason: "BYE".into(), bye_status: None });
        store.upsert(&at, &info, None).unwrap();
        let stats = CallStats { codec: Some("opus".into()), rx_packets: 400, loss: 0.01, ..Default::default() };
        store.set_stats(&at, &stats).unwrap();

        let records = store.recent(10).unwrap();
        assert_eq!(records.len(), 1, "one call, one record: {records:?}");
        let r = &records[0];
        assert_eq!(r.id, started.id);
        assert_eq!((r.answered_ms, r.ended_ms), (Some(1_500), Some(9_000)));
        assert_eq!(r.end, info.end);
        assert_eq!((r.dtmf_received.as_str(), r.dtmf_sent.as_str()), ("1#", "9"));
        let s = r.stats.as_ref().unwrap();
        assert_eq!((s["codec"].as_str(), s["rx_packets"].as_u64()), (Some("opus"), Some(400)));
        assert_eq!(r.recording, None);
        store.set_recording(&at, Path::new("/var/calls/4.wav")).unwrap();
        assert_eq!(store.get(r.id).unwrap().unwrap().recording.as_deref(), Some("/var/calls/4.wav"));
    }

    #[test]
    fn headers_sent_are_kept_whether_they_come_before_or_after_the_first_write() {
        let db = TempDb::new("sent");
        let store = Store::open(&db.0).unwrap();
        let at = RecordKey { session: 1, key: CallKey(1) };
        let order =
            vec![("X-Order-Id".to_string(), "66493f1afaa3".to_string()), ("X-Params".into(), "{\"a\":1}".into())];
        assert!(!store.set_sent_headers(&at, &order).unwrap(), "no record yet");
        store.upsert(&at, &call(1, "a@h", 1), Some(&order)).unwrap();
        // A later write without them keeps them.
        store.upsert(&at, &call(1, "a@h", 1), None).unwrap();
        assert_eq!(store.recent(1).unwrap()[0].sent_headers, order);
        let other = RecordKey { session: 1, key: CallKey(2) };
        store.upsert(&other, &call(2, "b@h", 2), None).unwrap();
        assert!(store.set_sent_headers(&other, &order).unwrap());
        assert_eq!(store.recent(1).unwrap()[0].sent_headers, order);
    }

    #[test]
    fn two_phones_sessions_keep_apart_calls_with_the_same_key() {
        let db = TempDb::new("sessions");
        let store = Store::open(&db.0).unwrap();
        store.upsert(&RecordKey { session: 1, key: CallKey(1) }, &call(1, "same@h", 10), None).unwrap();
        store.upsert(&RecordKey { session: 2, key: CallKey(1) }, &call(1, "same@h", 11), None).unwrap();
        assert_eq!(store.recent(10).unwrap().len(), 2);
        // A Call-ID names both legs.
        let note = Note { rate: Some(5), ..Default::default() };
        assert_eq!(store.note(&CallRef::CallId("same@h".into()), &note, 0).unwrap(), 2);
    }

    #[test]
    fn notes_and_ratings_update_only_what_they_give() {
        let db = TempDb::new("notes");
        let store = Store::open(&db.0).unwrap();
        let at = RecordKey { session: 1, key: CallKey(3) };
        store.upsert(&at, &call(3, "n@h", 5), None).unwrap();
        let id = store.recent(1).unwrap()[0].id;
        let cc = CallRef::Header { name: "X-BIZFLY-CALL-CENTER-CALL-ID".into(), value: "cc-3".into() };
        store.note(&cc, &Note { note: Some("Note".into()), ..Default::default() }, 1).unwrap();
        store.note(&CallRef::Record(id), &Note { rate: Some(1), report: Some("Good".into()), note: None }, 2).unwrap();
        let r = store.get(id).unwrap().unwrap();
        assert_eq!((r.note.as_deref(), r.rate, r.report.as_deref()), (Some("Note"), Some(1), Some("Good")));
        assert_eq!(r.noted_ms, Some(2));
        store
            .note(&CallRef::CallId("n@h".into()), &Note { note: Some("edited".into()), ..Default::default() }, 3)
            .unwrap();
        let r = store.get(id).unwrap().unwrap();
        assert_eq!((r.note.as_deref(), r.rate), (Some("edited"), Some(1)));

        for missing in [
            CallRef::Record(id + 1),
            CallRef::CallId("nobody@h".into()),
            CallRef::Header { name: "X-bizfly-call-center-call-id".into(), value: "cc-4".into() },
            // The value of another header is not a call-center id.
            CallRef::Header { name: "X-Other".into(), value: "cc-3".into() },
        ] {
            let err = store.note(&missing, &Note { note: Some("x".into()), ..Default::default() }, 4).unwrap_err();
            assert!(err.to_string().contains("no call record matches"), "{missing}: {err}");
        }
    }

    #[test]
    fn recent_is_newest_first_and_limited() {
        let db = TempDb::new("recent");
        let store = Store::open(&db.0).unwrap();
        for (key, started) in [(1, 300), (2, 100), (3, 200), (4, 400)] {
            store
                .upsert(&RecordKey { session: 9, key: CallKey(key) }, &call(key, &format!("{key}@h"), started), None)
                .unwrap();
        }
        let started: Vec<u64> = store.recent(3).unwrap().iter().map(|r| r.started_ms).collect();
        assert_eq!(started, [400, 300, 200]);
        assert_eq!(store.recent(0).unwrap().len(), 0);
        assert_eq!(store.recent(usize::MAX).unwrap().len(), 4);
    }

    #[test]
    fn a_second_connection_reads_what_the_first_wrote() {
        let db = TempDb::new("readers");
        let writer = Store::open(&db.0).unwrap();
        let reader = Store::open(&db.0).unwrap();
        writer.upsert(&RecordKey { session: 1, key: CallKey(1) }, &call(1, "r@h", 1), None).unwrap();
        assert_eq!(reader.recent(5).unwrap().len(), 1);
    }
}
