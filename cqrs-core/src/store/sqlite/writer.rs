//! The write side: one thread owns the write connection. Requests arrive on a channel;
//! the thread takes every request already waiting (up to the group cap), applies each in
//! its own savepoint of one `BEGIN IMMEDIATE` transaction, commits once, and only then
//! answers them all (group commit: one fsync for the whole group).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{oneshot, watch};

use super::read::{RowDecoder, stream_row};
use super::views::{self, BatchOutcome, BatchWrite};
use super::{SqliteFailure, from_nanos, nanos, sql_error};
use crate::event::{Metadata, NewEvent};
use crate::projection::Projection;
use crate::snapshot::Snapshot;
use crate::store::{
    ActualVersion, AppendOutcome, ExpectedVersion, RETENTION_STREAM, RetentionEvent,
    RetentionOutcome, StoreError, check_truncate,
};

/// A write the thread performs.
pub(super) enum WriteOp {
    Append {
        stream_id: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    },
    /// An append whose events the inline `projections` (with their names, taken on the
    /// caller's thread) apply in its savepoint.
    AppendProjected {
        stream_id: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: Vec<(String, Arc<dyn Projection>)>,
    },
    /// The writes of an async projection's batch, applied if its preconditions hold.
    CommitBatch(Box<BatchWrite>),
    /// Starts a rebuild of the projection into a new generation.
    StartRebuild {
        projection: String,
    },
    /// Makes the rebuilt generation the active one.
    Activate {
        projection: String,
        generation: u32,
    },
    Delete {
        stream_id: String,
        expected: ExpectedVersion,
    },
    Truncate {
        stream_id: String,
        before_version: u64,
    },
    Expire {
        recorded_before: SystemTime,
    },
    SaveSnapshot(Snapshot),
}

/// What a write gave.
pub(super) enum Written {
    Appended(AppendOutcome),
    Retention(RetentionOutcome),
    Saved,
    Batch(BatchOutcome),
    Generation(u32),
}

type Reply = oneshot::Sender<Result<Written, StoreError>>;

struct Request {
    op: WriteOp,
    reply: Reply,
}

/// What the writer thread receives: a write, or a question about its connection.
enum Message {
    Write(Request),
    Pragmas(oneshot::Sender<Result<Vec<(&'static str, String)>, StoreError>>),
}

/// Counters the writer thread keeps; read through `SqliteEventStore::stats`.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) transactions: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) largest_group: AtomicU64,
}

/// The handle the store keeps: dropping it (with the last store clone) ends the thread,
/// which closes the write connection once the requests already sent are done.
pub(super) struct Writer {
    sender: mpsc::Sender<Message>,
    pub(super) counters: Arc<Counters>,
    /// The head position, sent after every commit that added events to the global log.
    pub(super) head: Arc<watch::Sender<u64>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, committing up to `max_group` requests at once.
    pub(super) fn start(conn: Connection, max_group: usize) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let head = Arc::new(watch::Sender::new(head_position(&conn)?));
        let thread_head = Arc::clone(&head);
        std::thread::Builder::new()
            .name("cqrs-sqlite-writer".into())
            .spawn(move || {
                run(
                    conn,
                    receiver,
                    max_group.max(1),
                    &thread_counters,
                    &thread_head,
                )
            })
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the SQLite writer thread: {e}").into())
            })?;
        Ok(Self {
            sender,
            counters,
            head,
        })
    }

    /// Sends `op` to the thread and waits (asynchronously) for it to be committed. If the
    /// caller stops waiting, the write still happens: a retry with the same event ids is
    /// answered as a duplicate.
    pub(super) async fn submit(&self, op: WriteOp) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Write(Request { op, reply }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The value of each pragma in [`INSPECTED_PRAGMAS`] on the write connection.
    pub(super) async fn pragmas(&self) -> Result<Vec<(&'static str, String)>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Pragmas(reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The pragmas [`Writer::pragmas`] reports.
const INSPECTED_PRAGMAS: &[&str] = &[
    "journal_mode",
    "synchronous",
    "fullfsync",
    "checkpoint_fullfsync",
    "locking_mode",
    "busy_timeout",
    "foreign_keys",
    "wal_autocheckpoint",
    "journal_size_limit",
    "cache_size",
    "temp_store",
    "mmap_size",
    "secure_delete",
    "auto_vacuum",
    "application_id",
    "query_only",
];

fn inspect(conn: &Connection) -> Result<Vec<(&'static str, String)>, StoreError> {
    INSPECTED_PRAGMAS
        .iter()
        .map(|name| {
            conn.pragma_query_value(None, name, |row| {
                let value = match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                };
                Ok((*name, value))
            })
            .map_err(sql_error("reading a pragma"))
        })
        .collect()
}

/// The position of the last event ever appended (0 for an empty log).
fn head_position(conn: &Connection) -> Result<u64, StoreError> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error("reading the head position"))?;
    Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}

fn stopped() -> StoreError {
    StoreError::Backend("the SQLite writer thread has stopped".into())
}

fn run(
    conn: Connection,
    receiver: mpsc::Receiver<Message>,
    max_group: usize,
    counters: &Counters,
    head: &watch::Sender<u64>,
) {
    let mut group = Vec::with_capacity(max_group.min(1024));
    let take = |message, group: &mut Vec<Request>| match message {
        Message::Write(request) => group.push(request),
        Message::Pragmas(reply) => {
            let _ = reply.send(inspect(&conn));
        }
    };
    while let Ok(first) = receiver.recv() {
        take(first, &mut group);
        while group.len() < max_group {
            match receiver.try_recv() {
                Ok(message) => take(message, &mut group),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            commit_group(&conn, &mut group, counters, head);
        }
    }
}

/// Runs one of the fixed transaction-control statements.
fn control(conn: &Connection, sql: &'static str) -> Result<(), Arc<SqliteFailure>> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(|source| {
            Arc::new(SqliteFailure {
                context: Cow::Borrowed(sql),
                source,
            })
        })
}

/// Applies `group` in one transaction and answers every request after the commit: a
/// request is acknowledged only once it is durable. A request that fails (conflict,
/// duplicate) is rolled back to its savepoint alone; if the transaction itself fails,
/// every request of the group gets that error. After the commit, and before any answer,
/// `head` gets the highest position the group added to the global log (if any), so that
/// an append's caller already sees its own commit there.
fn commit_group(
    conn: &Connection,
    group: &mut Vec<Request>,
    counters: &Counters,
    head: &watch::Sender<u64>,
) {
    let fail_all = |group: &mut Vec<Request>, failure: Arc<SqliteFailure>| {
        for request in group.drain(..) {
            let _ = request
                .reply
                .send(Err(StoreError::Backend(Box::new(failure.clone()))));
        }
    };
    if let Err(failure) = control(conn, "BEGIN IMMEDIATE") {
        fail_all(group, failure);
        return;
    }
    let mut results = Vec::with_capacity(group.len());
    let mut appended = 0u64;
    let mut last_position = None::<u64>;
    for request in group.iter() {
        let step = control(conn, "SAVEPOINT cqrs_write").and_then(|()| {
            let result = apply(conn, &request.op);
            match &result {
                Ok(_) => control(conn, "RELEASE cqrs_write")?,
                Err(_) => {
                    control(conn, "ROLLBACK TO cqrs_write")?;
                    control(conn, "RELEASE cqrs_write")?;
                }
            }
            Ok(result)
        });
        // SQLite rolls a whole transaction back on some errors (disk full, I/O): then
        // nothing of the group is written, whatever the earlier requests returned.
        let rolled_back = conn.is_autocommit().then(|| {
            Arc::new(SqliteFailure {
                context: Cow::Borrowed("applying a group of writes (SQLite rolled it back)"),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    None,
                ),
            })
        });
        match (step, rolled_back) {
            (Ok(result), None) => {
                let added = match &result {
                    Ok(Written::Appended(out)) if !out.deduplicated => {
                        appended += out.positions.len() as u64;
                        out.positions.last().copied()
                    }
                    Ok(Written::Retention(out)) => out.marker_position,
                    _ => None,
                };
                last_position = last_position.max(added);
                results.push(result);
            }
            (Err(failure), _) | (Ok(_), Some(failure)) => {
                let _ = control(conn, "ROLLBACK");
                fail_all(group, failure);
                return;
            }
        }
    }
    if let Err(failure) = control(conn, "COMMIT") {
        let _ = control(conn, "ROLLBACK");
        fail_all(group, failure);
        return;
    }
    counters.transactions.fetch_add(1, Ordering::Relaxed);
    counters
        .requests
        .fetch_add(group.len() as u64, Ordering::Relaxed);
    counters.events.fetch_add(appended, Ordering::Relaxed);
    counters
        .largest_group
        .fetch_max(group.len() as u64, Ordering::Relaxed);
    if let Some(position) = last_position {
        // Never fails, receivers or not; never moves the head back.
        head.send_if_modified(|current| {
            let moved = position > *current;
            if moved {
                *current = position;
            }
            moved
        });
    }
    for (request, result) in group.drain(..).zip(results) {
        let _ = request.reply.send(result);
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<Written, StoreError> {
    match op {
        WriteOp::Append {
            stream_id,
            expected,
            events,
        } => append(conn, stream_id, *expected, events).map(Written::Appended),
        WriteOp::AppendProjected {
            stream_id,
            expected,
            events,
            projections,
        } => {
            let outcome = append(conn, stream_id, *expected, events)?;
            // A re-send was projected when it was first committed.
            if !outcome.deduplicated {
                views::project_inline(conn, stream_id, events, &outcome, projections)?;
            }
            Ok(Written::Appended(outcome))
        }
        WriteOp::CommitBatch(batch) => views::write_batch(conn, batch).map(Written::Batch),
        WriteOp::StartRebuild { projection } => {
            views::start_rebuild(conn, projection).map(Written::Generation)
        }
        WriteOp::Activate {
            projection,
            generation,
        } => views::activate(conn, projection, *generation).map(|()| Written::Saved),
        WriteOp::Delete {
            stream_id,
            expected,
        } => delete_stream(conn, stream_id, *expected).map(Written::Retention),
        WriteOp::Truncate {
            stream_id,
            before_version,
        } => truncate_stream(conn, stream_id, *before_version).map(Written::Retention),
        WriteOp::Expire { recorded_before } => {
            expire(conn, *recorded_before).map(Written::Retention)
        }
        WriteOp::SaveSnapshot(snapshot) => save_snapshot(conn, snapshot).map(|()| Written::Saved),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn reserved(stream_id: &str) -> Result<(), StoreError> {
    if stream_id.starts_with('$') {
        return Err(StoreError::InvalidBatch {
            stream_id: stream_id.to_owned(),
            reason: "stream ids starting with `$` are reserved for the store".into(),
        });
    }
    Ok(())
}

fn deleted(stream_id: &str) -> StoreError {
    StoreError::StreamDeleted {
        stream_id: stream_id.to_owned(),
    }
}

fn metadata_json(metadata: &Metadata, stream_id: &str) -> Result<Cow<'static, str>, StoreError> {
    if metadata.is_empty() {
        return Ok(Cow::Borrowed("{}"));
    }
    serde_json::to_string(metadata)
        .map(Cow::Owned)
        .map_err(|e| {
            StoreError::Backend(
                format!("cannot encode metadata for stream `{stream_id}`: {e}").into(),
            )
        })
}

/// Appends `events` after `version` (the stream's current version, 0 if none) without
/// any check, and records the stream's new version.
fn insert_events(
    conn: &Connection,
    stream_id: &str,
    version: u64,
    events: &[NewEvent],
) -> Result<(Vec<u64>, SystemTime), StoreError> {
    // Stored with the same precision it is read back with, so that the outcome of an
    // append and of its deduplicated re-send carry the same time.
    let recorded_nanos = nanos(SystemTime::now());
    let recorded_at = from_nanos(recorded_nanos);
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             metadata, payload, recorded_at, batch_size) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(sql_error("preparing the event insert"))?;
    let mut positions = Vec::with_capacity(events.len());
    for (k, event) in events.iter().enumerate() {
        let metadata = metadata_json(&event.metadata, stream_id)?;
        insert
            .execute(rusqlite::params![
                stream_id,
                to_i64(version + 1 + k as u64),
                event.event_id.as_bytes().as_slice(),
                &*event.event_type,
                event.schema_version,
                &*metadata,
                &event.payload[..],
                recorded_nanos,
                if k == 0 { events.len() as i64 } else { 0 },
            ])
            .map_err(sql_error("inserting an event"))?;
        positions.push(conn.last_insert_rowid() as u64);
    }
    conn.prepare_cached(
        "INSERT INTO streams (stream_id, version, first_version, deleted) VALUES (?1, ?2, 1, 0) \
         ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            stream_id,
            to_i64(version + events.len() as u64)
        ])
    })
    .map_err(sql_error("updating a stream's version"))?;
    Ok((positions, recorded_at))
}

fn append(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let row = stream_row(conn, stream_id)?;
    if row.is_some_and(|r| r.deleted) {
        return Err(deleted(stream_id));
    }
    if let Some(outcome) = replay_of(conn, stream_id, events)? {
        return Ok(outcome);
    }
    let current = row.map(|r| r.version).filter(|v| *v > 0);
    if !expected.matches(current) {
        return Err(StoreError::Concurrency {
            stream_id: stream_id.to_owned(),
            expected,
            actual: ActualVersion(current),
        });
    }
    let version = current.unwrap_or(0);
    let (positions, recorded_at) = insert_events(conn, stream_id, version, events)?;
    Ok(AppendOutcome {
        stream_version: version + events.len() as u64,
        positions,
        recorded_at,
        deduplicated: false,
    })
}

/// If an event of the batch is already stored, decides whether the batch is an exact
/// re-send (the original outcome) or a conflicting one (an error). Same rules as the
/// in-memory store.
fn replay_of(
    conn: &Connection,
    stream_id: &str,
    events: &[NewEvent],
) -> Result<Option<AppendOutcome>, StoreError> {
    let mut probe = conn
        .prepare_cached("SELECT stream_id, version FROM events WHERE event_id = ?1")
        .map_err(sql_error("preparing the event id probe"))?;
    let mut found = None;
    for (j, event) in events.iter().enumerate() {
        let hit = probe
            .query_row([event.event_id.as_bytes().as_slice()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .optional()
            .map_err(sql_error("looking up an event id"))?;
        if let Some((stored_stream, version)) = hit {
            found = Some((j, stored_stream, version));
            break;
        }
    }
    let Some((j, stored_stream, first)) = found else {
        return Ok(None);
    };
    super::super::check_resend_start(stream_id, events, j, &stored_stream)?;
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
        ))
        .map_err(sql_error("preparing the re-send check"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            stream_id,
            first,
            to_i64(events.len() as u64)
        ])
        .map_err(sql_error("reading the events of a re-sent batch"))?;
    let mut decoder = RowDecoder::default();
    super::super::match_resend(stream_id, events, |_| {
        let row = rows
            .next()
            .map_err(sql_error("reading the events of a re-sent batch"))?;
        row.map(|row| decoder.decode(row)).transpose()
    })
}

/// Appends a retention marker to [`RETENTION_STREAM`]; returns its position.
fn append_marker(conn: &Connection, marker: &RetentionEvent) -> Result<u64, StoreError> {
    let version = stream_row(conn, RETENTION_STREAM)?.map_or(0, |r| r.version);
    let (positions, _) = insert_events(conn, RETENTION_STREAM, version, &[marker.to_new_event()])?;
    Ok(positions[0])
}

fn outcome(
    conn: &Connection,
    removed: u64,
    marker: impl FnOnce() -> RetentionEvent,
) -> Result<RetentionOutcome, StoreError> {
    let marker_position = if removed > 0 {
        Some(append_marker(conn, &marker())?)
    } else {
        None
    };
    Ok(RetentionOutcome {
        removed,
        marker_position,
    })
}

/// Removes the events of `stream_id` before version `before` and moves the stream's first
/// version up to it (never down); returns how many were removed.
fn cut_prefix(conn: &Connection, stream_id: &str, before: i64) -> Result<u64, StoreError> {
    let removed = conn
        .prepare_cached("DELETE FROM events WHERE stream_id = ?1 AND version < ?2")
        .and_then(|mut stmt| stmt.execute(rusqlite::params![stream_id, before]))
        .map_err(sql_error("removing a stream's oldest events"))?;
    conn.prepare_cached(
        "UPDATE streams SET first_version = max(first_version, ?2) WHERE stream_id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![stream_id, before]))
    .map_err(sql_error("recording a stream's first version"))?;
    Ok(removed as u64)
}

fn delete_stream(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
) -> Result<RetentionOutcome, StoreError> {
    reserved(stream_id)?;
    let row = stream_row(conn, stream_id)?;
    if row.is_some_and(|r| r.deleted) {
        return Err(deleted(stream_id));
    }
    let current = row.map(|r| r.version).filter(|v| *v > 0);
    let missing = current.is_none() && expected != ExpectedVersion::Any;
    if missing || !expected.matches(current) {
        return Err(StoreError::Concurrency {
            stream_id: stream_id.to_owned(),
            expected,
            actual: ActualVersion(current),
        });
    }
    let removed = conn
        .prepare_cached("DELETE FROM events WHERE stream_id = ?1")
        .and_then(|mut stmt| stmt.execute([stream_id]))
        .map_err(sql_error("deleting a stream's events"))? as u64;
    conn.prepare_cached("DELETE FROM snapshots WHERE stream_id = ?1")
        .and_then(|mut stmt| stmt.execute([stream_id]))
        .map_err(sql_error("deleting a stream's snapshot"))?;
    conn.prepare_cached(
        "INSERT INTO streams (stream_id, version, first_version, deleted) VALUES (?1, 0, 1, 1) \
         ON CONFLICT (stream_id) DO UPDATE SET deleted = 1",
    )
    .and_then(|mut stmt| stmt.execute([stream_id]))
    .map_err(sql_error("tombstoning a stream"))?;
    // Always a marker, even when nothing was left to remove: log readers learn that the
    // id is gone for good.
    let marker = RetentionEvent::StreamDeleted {
        stream_id: stream_id.to_owned(),
        version: current.unwrap_or(0),
        removed,
    };
    Ok(RetentionOutcome {
        removed,
        marker_position: Some(append_marker(conn, &marker)?),
    })
}

fn truncate_stream(
    conn: &Connection,
    stream_id: &str,
    before_version: u64,
) -> Result<RetentionOutcome, StoreError> {
    let Some(row) = stream_row(conn, stream_id)? else {
        return Ok(RetentionOutcome {
            removed: 0,
            marker_position: None,
        });
    };
    if !check_truncate(
        stream_id,
        before_version,
        row.version,
        row.first_version,
        row.deleted,
    )? {
        return Ok(RetentionOutcome {
            removed: 0,
            marker_position: None,
        });
    }
    let removed = cut_prefix(conn, stream_id, to_i64(before_version))?;
    outcome(conn, removed, || RetentionEvent::StreamTruncated {
        stream_id: stream_id.to_owned(),
        before_version,
        removed,
    })
}

fn expire(conn: &Connection, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
    let cutoff = nanos(recorded_before);
    // A full scan: expiry is maintenance, and an index on recorded_at would cost every
    // append. Per stream, everything up to its newest expired event goes (a prefix, as a
    // truncation), so streams stay gapless even if the clock stepped back.
    let cuts: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT stream_id, max(version) FROM events \
             WHERE recorded_at < ?1 AND substr(stream_id, 1, 1) <> '$' GROUP BY stream_id",
        )
        .and_then(|mut stmt| {
            stmt.query_map([cutoff], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(sql_error("finding expired events"))?;
    let mut removed = 0u64;
    for (stream_id, last) in &cuts {
        removed += cut_prefix(conn, stream_id, last + 1)?;
    }
    let recorded_before_ms = recorded_before
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    outcome(conn, removed, || RetentionEvent::EventsExpired {
        recorded_before_ms,
        removed,
    })
}

fn save_snapshot(conn: &Connection, snapshot: &Snapshot) -> Result<(), StoreError> {
    let stream_id = &*snapshot.stream_id;
    if stream_row(conn, stream_id)?.is_some_and(|r| r.deleted) {
        return Err(deleted(stream_id));
    }
    conn.prepare_cached(
        "INSERT INTO snapshots (stream_id, stream_version, snapshot_version, codec, taken_at, \
         payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (stream_id) DO UPDATE SET stream_version = excluded.stream_version, \
         snapshot_version = excluded.snapshot_version, codec = excluded.codec, \
         taken_at = excluded.taken_at, payload = excluded.payload \
         WHERE excluded.stream_version >= snapshots.stream_version",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            stream_id,
            to_i64(snapshot.stream_version),
            snapshot.snapshot_version,
            &*snapshot.codec,
            nanos(snapshot.taken_at),
            &snapshot.payload[..],
        ])
    })
    .map_err(sql_error("saving a snapshot"))?;
    Ok(())
}
