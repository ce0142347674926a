//! [`HistoryWriter`]: records one phone's calls on a thread of its own.
//! The phone hands it every event as it is emitted (a channel send, never
//! a wait); the thread turns call events into writes, each committed on
//! its own. Queries (`recent`, `note`) travel the same channel, so they see
//! every event emitted before them. The channel is unbounded (the driver
//! must never wait on the disk); a call makes a handful of writes, so what
//! queues while a disk stalls stays small.

use std::collections::HashMap;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::store::{RecordKey, Store};
use super::{CallRecord, CallRef, Note};
use crate::{CallKey, Error, Event};

/// What the phone asks of the writer thread.
enum Op {
    /// A call event to record.
    Event(Box<Event>),
    /// The headers we put on an outgoing call's INVITE.
    Sent { key: CallKey, headers: Vec<(String, String)> },
    /// The newest records.
    Recent { limit: usize, reply: oneshot::Sender<Result<Vec<CallRecord>, Error>> },
    /// Note or rate calls.
    Note { which: CallRef, note: Note, reply: oneshot::Sender<Result<usize, Error>> },
}

/// A handle to a phone's history thread; the thread ends (after writing
/// what it was sent) when the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct HistoryWriter {
    ops: mpsc::Sender<Op>,
}

impl HistoryWriter {
    /// Opens the history at `path` and starts its thread.
    pub(crate) fn open(path: &std::path::Path) -> Result<HistoryWriter, Error> {
        let store = Store::open(path)?;
        let (ops, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("webphone-history".into())
            .spawn(move || run(store, rx, rand::random::<i64>()))
            .map_err(|e| Error::History(format!("cannot start the history thread: {e}")))?;
        Ok(HistoryWriter { ops })
    }

    /// Takes note of an event (only call events that change a record are
    /// sent to the thread).
    pub(crate) fn observe(&self, event: &Event) {
        let records = matches!(
            event,
            Event::CallOutgoing { .. }
                | Event::CallIncoming { .. }
                | Event::CallConfirmed { .. }
                | Event::CallReplaced { .. }
                | Event::CallEnded { .. }
                | Event::DtmfSent { .. }
                | Event::DtmfReceived { .. }
                | Event::RecordingStarted { .. }
        );
        if records {
            self.send(Op::Event(Box::new(event.clone())));
        }
    }

    /// Records the headers sent on an outgoing call's INVITE.
    pub(crate) fn sent_headers(&self, key: CallKey, headers: Vec<(String, String)>) {
        if !headers.is_empty() {
            self.send(Op::Sent { key, headers });
        }
    }

    /// The `limit` newest records, after every event observed so far is written.
    pub(crate) async fn recent(&self, limit: usize) -> Result<Vec<CallRecord>, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Recent { limit, reply });
        answer.await.map_err(|_| gone())?
    }

    /// Notes the calls `which` names; how many were.
    pub(crate) async fn note(&self, which: CallRef, note: Note) -> Result<usize, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Note { which, note, reply });
        answer.await.map_err(|_| gone())?
    }

    fn send(&self, op: Op) {
        // Fails only when the thread is gone, which its log says.
        let _ = self.ops.send(op);
    }
}

fn gone() -> Error {
    Error::History("the history thread has stopped".into())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The thread: writes until every handle is gone.
fn run(store: Store, ops: mpsc::Receiver<Op>, session: i64) {
    // Headers sent on calls whose first event is not written yet.
    let mut pending: HashMap<CallKey, Vec<(String, String)>> = HashMap::new();
    for op in ops {
        let written = match op {
            Op::Event(event) => record(&store, session, *event, &mut pending),
            Op::Sent { key, headers } => match store.set_sent_headers(&RecordKey { session, key }, &headers) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    pending.insert(key, headers);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Op::Recent { limit, reply } => {
                let _ = reply.send(store.recent(limit));
                Ok(())
            }
            Op::Note { which, note, reply } => {
                let _ = reply.send(store.note(&which, &note, now_ms()));
                Ok(())
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "call history: a write failed");
        }
    }
}

fn record(
    store: &Store,
    session: i64,
    event: Event,
    pending: &mut HashMap<CallKey, Vec<(String, String)>>,
) -> Result<(), Error> {
    let at = |key: CallKey| RecordKey { session, key };
    let mut upsert = |call: &crate::CallInfo| {
        let sent = pending.remove(&call.key);
        store.upsert(&at(call.key), call, sent.as_deref())
    };
    match event {
        Event::CallOutgoing { call } | Event::CallIncoming { call } | Event::CallConfirmed { call } => upsert(&call),
        Event::CallReplaced { old, new } => {
            upsert(&old)?;
            upsert(&new)
        }
        Event::CallEnded { call, stats } => {
            upsert(&call)?;
            match stats {
                Some(stats) => store.set_stats(&at(call.key), &stats),
                None => Ok(()),
            }
        }
        Event::DtmfSent { call, digit, .. } => store.add_dtmf(&at(call.key), digit, true),
        Event::DtmfReceived { call, digit, .. } => store.add_dtmf(&at(call.key), digit, false),
        Event::RecordingStarted { call, path, .. } => store.set_recording(&at(call.key), &path),
        _ => Ok(()),
    }
}
