//! The history database's schema and its migrations: each version is one
//! batch of SQL, applied in order inside one transaction, and the version
//! reached is kept in SQLite's `user_version`. A database written by a newer
//! webphone (a version we do not know) is refused rather than guessed at.

use rusqlite::Connection;

/// The schema's versions, oldest first: `MIGRATIONS[n]` takes a database
/// from version `n` to `n + 1`.
const MIGRATIONS: [&str; 2] = [
    // 1: one row per call, written when it starts and completed as it goes.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        session INTEGER NOT NULL,
        call_key INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        local_uri TEXT NOT NULL,
        local_user TEXT,
        local_display TEXT,
        remote_uri TEXT NOT NULL,
        remote_user TEXT,
        remote_display TEXT,
        headers TEXT NOT NULL DEFAULT '[]',
        sent_headers TEXT NOT NULL DEFAULT '[]',
        started_ms INTEGER NOT NULL,
        answered_ms INTEGER,
        ended_ms INTEGER,
        end_by TEXT,
        end_status INTEGER,
        end_reason TEXT,
        end_bye_status INTEGER,
        stats TEXT,
        dtmf_sent TEXT NOT NULL DEFAULT '',
        dtmf_received TEXT NOT NULL DEFAULT '',
        UNIQUE (session, call_key)
    );
    CREATE INDEX calls_call_id ON calls (call_id);
    CREATE INDEX calls_started ON calls (started_ms);",
    // 2: notes and ratings (Bizfly `note`), the recording's path.
    "ALTER TABLE calls ADD COLUMN recording TEXT;
    ALTER TABLE calls ADD COLUMN note TEXT;
    ALTER TABLE calls ADD COLUMN rate INTEGER;
    ALTER TABLE calls ADD COLUMN report TEXT;
    ALTER TABLE calls ADD COLUMN noted_ms INTEGER;",
];

/// The version this build writes.
pub(super) const VERSION: u32 = MIGRATIONS.len() as u32;

/// Sets the connection up (WAL journal, so readers never wait for the
/// writer and a killed process loses no committed write; a busy timeout for
/// the moments another process holds the lock) and migrates it to
/// [`VERSION`].
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Returns the mode it got; an in-memory database stays `memory`.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    // In WAL mode NORMAL loses nothing when the process dies; only a power
    // cut may take the last commits.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    migrate(conn)
}

/// Applies the migrations from the database's version up to [`VERSION`].
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("the call history is at schema version {current}; this webphone knows up to {VERSION}")),
        ));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as u32 + 1)?;
    }
    tx.commit()
}

/// The database's schema version.
pub(super) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::TempDb;

    /// A database as the first schema wrote it, with one call, opens,
    /// migrates to the current version and keeps its call.
    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_calls() {
        let db = TempDb::new("v1");
        {
            let conn = Connection::open(&db.0).unwrap();
            conn.execute_batch(
                "CREATE TABLE calls (id INTEGER PRIMARY KEY, session INTEGER NOT NULL, call_key INTEGER NOT NULL,
                    call_id TEXT NOT NULL, direction TEXT NOT NULL, local_uri TEXT NOT NULL, local_user TEXT,
                    local_display TEXT, remote_uri TEXT NOT NULL, remote_user TEXT, remote_display TEXT,
                    headers TEXT NOT NULL DEFAULT '[]', sent_headers TEXT NOT NULL DEFAULT '[]',
                    started_ms INTEGER NOT NULL, answered_ms INTEGER, ended_ms INTEGER, end_by TEXT,
                    end_status INTEGER, end_reason TEXT, end_bye_status INTEGER, stats TEXT,
                    dtmf_sent TEXT NOT NULL DEFAULT '', dtmf_received TEXT NOT NULL DEFAULT '',
                    UNIQUE (session, call_key));
                CREATE INDEX calls_call_id ON calls (call_id);
                CREATE INDEX calls_started ON calls (started_ms);
                INSERT INTO calls (session, call_key, call_id, direction, local_uri, remote_uri, headers,
                    started_ms, answered_ms, ended_ms, end_by, end_status, end_reason)
                VALUES (7, 1, 'old-call@host', 'incoming', 'sip:1001@example.com', 'sip:1002@example.com',
                    '[[\"X-bizfly-call-center-call-id\",\"8842\"]]', 1000, 2000, 9000, 'remote', NULL, 'BYE');
                PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = crate::history::Store::open(&db.0).unwrap();
        assert_eq!(store.schema_version().unwrap(), VERSION);
        assert_eq!(VERSION, 2);
        let records = store.recent(10).unwrap();
        assert_eq!(records.len(), 1);
        let old = &records[0];
        assert_eq!(
            (old.call_id.as_str(), old.started_ms, old.answered_ms, old.ended_ms),
            ("old-call@host", 1000, Some(2000), Some(9000))
        );
        assert_eq!(old.note, None);
        // The columns version 2 added work on the old row.
        let which =
            crate::history::CallRef::Header { name: "x-bizfly-call-center-call-id".into(), value: "8842".into() };
        let note = crate::history::Note { note: Some("called back".into()), ..Default::default() };
        assert_eq!(store.note(&which, &note, 10_000).unwrap(), 1);
        assert_eq!(store.get(old.id).unwrap().unwrap().note.as_deref(), Some("called back"));
        // Opening again changes nothing.
        drop(store);
        let store = crate::history::Store::open(&db.0).unwrap();
        assert_eq!(store.schema_version().unwrap(), VERSION);
        assert_eq!(store.recent(10).unwrap().len(), 1);
    }

    #[test]
    fn a_database_from_a_newer_webphone_is_refused() {
        let db = TempDb::new("future");
        Connection::open(&db.0).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
        let err = crate::history::Store::open(&db.0).unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[test]
    fn the_journal_is_wal() {
        let db = TempDb::new("wal");
        let _store = crate::history::Store::open(&db.0).unwrap();
        let conn = Connection::open(&db.0).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }
}
