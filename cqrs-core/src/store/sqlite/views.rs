//! The read side in the same file as the events: the documents of projections
//! (`views`), their checkpoints and generations (`projections`) and their dead letters
//! (`dead_letters`); [`ViewStore`] for [`SqliteEventStore`], and the writer-thread half
//! of inline projections.
//!
//! Every write runs on the writer thread, in a savepoint of a group commit, like an
//! append. Inline projections reach the writer thread as `Arc<dyn Projection>`s and run
//! there, inside the append's savepoint. An async batch
//! ([`ViewStore::commit_batch`]) lends its projection only for the call, so it is applied
//! optimistically on the caller's thread: the generation's checkpoint and the documents
//! the batch touches are read in one read transaction, the projection computes the new
//! documents, and the writer commits them only if the checkpoint is still the batch's
//! `from` and every document read is unchanged (else the batch is stale, or is computed
//! again from the current documents).
//!
//! A projection that writes its own SQL ([`Projection::sql`]) runs on the writer thread
//! in both modes, in the same savepoint: its statements, the dead letters and the
//! checkpoint commit together or not at all.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::writer::{WriteOp, Written};
use super::{SqliteEventStore, mismatched_reply, sql_error, to_i64};
use crate::event::{NewEvent, RecordedEvent};
use crate::projection::{
    ApplyFailure, BatchError, DeadLetter, Projection, ProjectionBatch, ProjectionError,
    ProjectionState, SqlContext, SqlProjection, ViewStore, apply_events, panic_message,
};
use crate::store::{AppendOutcome, StoreError, recorded_from_new};

/// How often [`ViewStore::commit_batch`] computes a batch again when the documents it
/// read changed before its commit (with an unchanged checkpoint, which only a misuse of
/// checkpoints allows: a batch moving documents without moving the checkpoint).
const BATCH_ATTEMPTS: usize = 3;

/// Checks a projection name against `^[a-z_][a-z0-9_]{0,62}$`.
pub(super) fn check_name(name: &str) -> Result<(), StoreError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= 63
        && matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!(
                "invalid projection name `{name}`: a projection name must match \
                 ^[a-z_][a-z0-9_]{{0,62}}$"
            )
            .into(),
        ))
    }
}

/// What the `projections` table says about one projection.
#[derive(Debug, Clone, Copy)]
struct ProjectionRow {
    active: u32,
    position: u64,
    rebuilding: Option<(u32, u64)>,
}

impl ProjectionRow {
    fn state(row: Option<Self>) -> ProjectionState {
        row.map_or_else(ProjectionState::default, |r| ProjectionState {
            active_generation: r.active,
            position: r.position,
            rebuilding: r.rebuilding,
        })
    }
}

/// The `projections` row of `projection`, checked.
fn projection_row(
    conn: &Connection,
    projection: &str,
) -> Result<Option<ProjectionRow>, StoreError> {
    type Raw = (i64, i64, Option<i64>, Option<i64>);
    let raw: Option<Raw> = conn
        .prepare_cached(
            "SELECT active_generation, position, rebuilding_generation, rebuilding_position \
             FROM projections WHERE projection = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([projection], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()
        })
        .map_err(sql_error(format!(
            "reading the checkpoint of projection `{projection}`"
        )))?;
    let Some((active, position, rebuilding, rebuilding_position)) = raw else {
        return Ok(None);
    };
    let corrupt = |what: String| {
        StoreError::Backend(
            format!("corrupt `projections` row of projection `{projection}`: {what}").into(),
        )
    };
    let generation =
        |g: i64| u32::try_from(g).map_err(|_| corrupt(format!("generation {g} is out of range")));
    let position_of =
        |p: i64| u64::try_from(p).map_err(|_| corrupt(format!("negative position {p}")));
    let rebuilding = match (rebuilding, rebuilding_position) {
        (Some(g), Some(p)) => Some((generation(g)?, position_of(p)?)),
        (None, None) => None,
        (g, p) => {
            return Err(corrupt(format!(
                "rebuilding generation {g:?} with rebuilding position {p:?}"
            )));
        }
    };
    Ok(Some(ProjectionRow {
        active: generation(active)?,
        position: position_of(position)?,
        rebuilding,
    }))
}

/// The checkpoint of `generation` (a missing row is generation 0 at position 0), or
/// `None` if that generation is neither active nor being rebuilt.
fn stored_checkpoint(row: Option<ProjectionRow>, generation: u32) -> Option<u64> {
    match row {
        None => (generation == 0).then_some(0),
        Some(r) if r.active == generation => Some(r.position),
        Some(r) => r
            .rebuilding
            .filter(|(g, _)| *g == generation)
            .map(|(_, p)| p),
    }
}

/// The active generation of `projection` (0 if it has no row).
fn active_generation(conn: &Connection, projection: &str) -> Result<u32, StoreError> {
    Ok(projection_row(conn, projection)?.map_or(0, |r| r.active))
}

/// The document `key` of `projection`'s `generation`.
fn load_doc_at(
    conn: &Connection,
    projection: &str,
    generation: u32,
    key: &str,
) -> Result<Option<Bytes>, StoreError> {
    let context = || format!("reading document `{key}` of projection `{projection}`");
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM views WHERE projection = ?1 AND generation = ?2 AND key = ?3",
        )
        .map_err(sql_error(context()))?;
    let mut rows = stmt
        .query(rusqlite::params![projection, generation, key])
        .map_err(sql_error(context()))?;
    match rows.next().map_err(sql_error(context()))? {
        Some(row) => doc_of(row, 0, projection, generation, key).map(Some),
        None => Ok(None),
    }
}

/// The document in column `i` of `row`, checked.
fn doc_of(
    row: &Row<'_>,
    i: usize,
    projection: &str,
    generation: u32,
    key: &str,
) -> Result<Bytes, StoreError> {
    row.get_ref(i)
        .ok()
        .and_then(|v| v.as_blob().ok())
        .map(Bytes::copy_from_slice)
        .ok_or_else(|| {
            StoreError::Backend(
                format!(
                    "corrupt document `{key}` of projection `{projection}` (generation \
                     {generation}): the doc column is not a blob"
                )
                .into(),
            )
        })
}

/// Writes (`Some`) or deletes (`None`) the document `key`.
fn write_doc(
    conn: &Connection,
    projection: &str,
    generation: u32,
    key: &str,
    doc: Option<&Bytes>,
) -> Result<(), StoreError> {
    let context = || format!("writing document `{key}` of projection `{projection}`");
    match doc {
        Some(doc) => conn
            .prepare_cached(
                "INSERT INTO views (projection, generation, key, doc) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (projection, generation, key) DO UPDATE SET doc = excluded.doc",
            )
            .and_then(|mut stmt| {
                stmt.execute(rusqlite::params![projection, generation, key, &doc[..]])
            }),
        None => conn
            .prepare_cached(
                "DELETE FROM views WHERE projection = ?1 AND generation = ?2 AND key = ?3",
            )
            .and_then(|mut stmt| stmt.execute(rusqlite::params![projection, generation, key])),
    }
    .map(drop)
    .map_err(sql_error(context()))
}

/// Removes every document and dead letter of `projection`'s `generation`.
fn drop_generation(conn: &Connection, projection: &str, generation: u32) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM views WHERE projection = ?1 AND generation = ?2",
        "DELETE FROM dead_letters WHERE projection = ?1 AND generation = ?2",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(rusqlite::params![projection, generation]))
            .map_err(sql_error(format!(
                "dropping generation {generation} of projection `{projection}`"
            )))?;
    }
    Ok(())
}

/// [`apply_events`] one event at a time, so that a panic anywhere in the projection
/// (`handles` and `key` too, not only `apply`) is caught and names its event: on the
/// writer thread an uncaught panic would stop the store.
fn apply_guarded<E>(
    projection: &dyn Projection,
    events: &[RecordedEvent],
    docs: &mut HashMap<String, Option<Bytes>>,
    mut load: impl FnMut(&str) -> Result<Option<Bytes>, E>,
) -> Result<Vec<String>, ApplyFailure<E>> {
    let mut changed = Vec::new();
    let mut seen = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        let step = catch_unwind(AssertUnwindSafe(|| {
            apply_events(projection, std::slice::from_ref(event), docs, &mut load)
        }));
        match step {
            Ok(Ok(keys)) => {
                for key in keys {
                    if seen.insert(key.clone()) {
                        changed.push(key);
                    }
                }
            }
            Ok(Err(ApplyFailure::Projection { error, .. })) => {
                return Err(ApplyFailure::Projection { index, error });
            }
            Ok(Err(ApplyFailure::Load(e))) => return Err(ApplyFailure::Load(e)),
            Err(panic) => {
                return Err(ApplyFailure::Projection {
                    index,
                    error: Box::new(ProjectionError::Panicked(panic_message(&*panic))),
                });
            }
        }
    }
    Ok(changed)
}

/// The keys of the documents `events` concern, in first-use order. Stops at an event
/// whose key cannot be computed: applying the batch fails there anyway.
fn touched_keys(projection: &dyn Projection, events: &[RecordedEvent]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for event in events {
        let key = catch_unwind(AssertUnwindSafe(|| {
            projection
                .handles(event)
                .then(|| projection.key(event))
                .transpose()
        }));
        match key {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(key))) => {
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
            Ok(Err(_)) | Err(_) => break,
        }
    }
    keys
}

/// Runs the inline `projections` on the events `outcome` just appended, in the append's
/// savepoint on the writer thread: each against its active generation, its checkpoint
/// moved to the batch's last position if higher. A projection failure is
/// [`StoreError::Projection`], which rolls the savepoint (the append too) back.
pub(super) fn project_inline(
    conn: &Connection,
    stream_id: &str,
    events: &[NewEvent],
    outcome: &AppendOutcome,
    projections: &[(String, Arc<dyn Projection>)],
) -> Result<(), StoreError> {
    let stream: Arc<str> = Arc::from(stream_id);
    let first = outcome.first_version();
    let recorded: Vec<RecordedEvent> = events
        .iter()
        .zip(&outcome.positions)
        .enumerate()
        .map(|(k, (event, &position))| {
            recorded_from_new(
                &stream,
                event,
                first + k as u64,
                position,
                outcome.recorded_at,
            )
        })
        .collect();
    for (name, projection) in projections {
        let generation = active_generation(conn, name)?;
        if let Some(sql) = projection.sql() {
            let cx = SqlContext {
                projection: name,
                generation,
                inline: true,
                tenant: None,
                schema: None,
            };
            apply_sql(conn, &*sql, &recorded, &cx).map_err(|(index, error)| {
                StoreError::Projection {
                    projection: name.clone(),
                    stream_id: stream_id.to_owned(),
                    event_id: recorded[index].event_id,
                    source: error,
                }
            })?;
            continue;
        }
        let mut docs = HashMap::new();
        let changed = apply_guarded(&**projection, &recorded, &mut docs, |key| {
            load_doc_at(conn, name, generation, key)
        })
        .map_err(|failure| match failure {
            ApplyFailure::Load(e) => e,
            ApplyFailure::Projection { index, error } => StoreError::Projection {
                projection: name.clone(),
                stream_id: stream_id.to_owned(),
                event_id: recorded.get(index).map_or(Uuid::nil(), |e| e.event_id),
                source: error,
            },
        })?;
        for key in &changed {
            let doc = docs.get(key).and_then(Option::as_ref);
            write_doc(conn, name, generation, key, doc)?;
        }
    }
    Ok(())
}

/// Runs a projection's own SQL on `events` (those it handles), in the transaction `conn`
/// has open: its migration before its first statement, then each event. A failure or a
/// panic names the event's index; the caller rolls the savepoint back.
fn apply_sql(
    conn: &Connection,
    sql: &dyn SqlProjection,
    events: &[RecordedEvent],
    cx: &SqlContext<'_>,
) -> Result<(), (usize, Box<ProjectionError>)> {
    let mut migrated = false;
    for (index, event) in events.iter().enumerate() {
        let step = catch_unwind(AssertUnwindSafe(|| {
            if !sql.handles(event) {
                return Ok(());
            }
            if !migrated {
                sql.migrate_sqlite(conn)?;
                migrated = true;
            }
            sql.apply_sqlite(conn, event, cx)
        }));
        let error = match step {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error,
            Err(panic) => ProjectionError::Panicked(panic_message(&*panic)),
        };
        return Err((index, Box::new(error)));
    }
    Ok(())
}

/// An async batch, computed on the caller's thread, for the writer to commit.
pub(super) struct BatchWrite {
    projection: String,
    generation: u32,
    from: u64,
    /// The documents the batch was computed from (`None`: absent): it commits only if
    /// they are unchanged.
    read: Vec<(String, Option<Bytes>)>,
    /// The documents it changes (`None`: delete).
    writes: Vec<(String, Option<Bytes>)>,
    park: Vec<DeadLetter>,
    resolved: Vec<Uuid>,
    checkpoint: u64,
    /// A projection writing its own SQL, and the batch's events: applied on the writer
    /// thread (then `read` and `writes` are empty).
    sql: Option<(Arc<dyn SqlProjection>, Vec<RecordedEvent>)>,
}

/// What the writer did with a [`BatchWrite`].
pub(super) enum BatchOutcome {
    /// Committed (with the group).
    Committed,
    /// The generation's checkpoint is not the batch's `from` (or the generation is no
    /// longer written): nothing written.
    Stale(Option<u64>),
    /// A document the batch was computed from changed: nothing written, compute again.
    DocsMoved,
}

/// Commits a [`BatchWrite`] on the writer thread, if its preconditions still hold.
pub(super) fn write_batch(
    conn: &Connection,
    batch: &BatchWrite,
) -> Result<BatchOutcome, StoreError> {
    let name = &*batch.projection;
    let generation = batch.generation;
    let row = projection_row(conn, name)?;
    let stored = stored_checkpoint(row, generation);
    if stored != Some(batch.from) {
        return Ok(BatchOutcome::Stale(stored));
    }
    for (key, doc) in &batch.read {
        if load_doc_at(conn, name, generation, key)? != *doc {
            return Ok(BatchOutcome::DocsMoved);
        }
    }
    for (key, doc) in &batch.writes {
        write_doc(conn, name, generation, key, doc.as_ref())?;
    }
    if let Some((sql, events)) = &batch.sql {
        let cx = SqlContext {
            projection: name,
            generation,
            inline: false,
            tenant: None,
            schema: None,
        };
        apply_sql(conn, &**sql, events, &cx).map_err(|(index, error)| StoreError::Projection {
            projection: name.to_owned(),
            stream_id: events[index].stream_id.to_string(),
            event_id: events[index].event_id,
            source: error,
        })?;
    }
    for letter in &batch.park {
        conn.prepare_cached(
            "INSERT INTO dead_letters (projection, generation, position, event_id, stream_id, \
             version, reason, attempts, blocked_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (projection, generation, event_id) DO UPDATE SET \
             reason = excluded.reason, attempts = excluded.attempts, \
             blocked_by = excluded.blocked_by",
        )
        .and_then(|mut stmt| {
            stmt.execute(rusqlite::params![
                name,
                generation,
                to_i64(letter.position),
                letter.event_id.as_bytes().as_slice(),
                letter.stream_id,
                to_i64(letter.version),
                letter.reason,
                letter.attempts,
                letter.blocked_by.map(to_i64),
            ])
        })
        .map_err(sql_error(format!(
            "parking event {} for projection `{name}`",
            letter.event_id
        )))?;
    }
    for event_id in &batch.resolved {
        conn.prepare_cached(
            "DELETE FROM dead_letters WHERE projection = ?1 AND generation = ?2 AND event_id = ?3",
        )
        .and_then(|mut stmt| {
            stmt.execute(rusqlite::params![
                name,
                generation,
                event_id.as_bytes().as_slice()
            ])
        })
        .map_err(sql_error(format!(
            "resolving the dead letter of event {event_id} for projection `{name}`"
        )))?;
    }
    let checkpoint = to_i64(batch.checkpoint);
    let sql = match row {
        None => "INSERT INTO projections (projection, position) VALUES (?1, ?2)",
        Some(r) if r.active == generation => {
            "UPDATE projections SET position = ?2 WHERE projection = ?1"
        }
        Some(_) => "UPDATE projections SET rebuilding_position = ?2 WHERE projection = ?1",
    };
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(rusqlite::params![name, checkpoint]))
        .map_err(sql_error(format!(
            "moving the checkpoint of projection `{name}`"
        )))?;
    Ok(BatchOutcome::Committed)
}

/// Starts a rebuild on the writer thread; returns the new generation.
pub(super) fn start_rebuild(conn: &Connection, projection: &str) -> Result<u32, StoreError> {
    let row = projection_row(conn, projection)?;
    let active = row.map_or(0, |r| r.active);
    let rebuilding = row.and_then(|r| r.rebuilding).map(|(g, _)| g);
    let generation = active
        .max(rebuilding.unwrap_or(0))
        .checked_add(1)
        .ok_or_else(|| {
            StoreError::Backend(
                format!("projection `{projection}` has used up its generation numbers").into(),
            )
        })?;
    if let Some(old) = rebuilding {
        drop_generation(conn, projection, old)?;
    }
    // Nothing should be there; a new generation starts empty whatever is left behind.
    drop_generation(conn, projection, generation)?;
    conn.prepare_cached(
        "INSERT INTO projections (projection, rebuilding_generation, rebuilding_position) \
         VALUES (?1, ?2, 0) ON CONFLICT (projection) DO UPDATE SET \
         rebuilding_generation = excluded.rebuilding_generation, rebuilding_position = 0",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![projection, generation]))
    .map_err(sql_error(format!(
        "starting a rebuild of projection `{projection}`"
    )))?;
    Ok(generation)
}

/// Makes the rebuilt `generation` active on the writer thread and drops the old one.
pub(super) fn activate(
    conn: &Connection,
    projection: &str,
    generation: u32,
) -> Result<(), StoreError> {
    let row = projection_row(conn, projection)?;
    let (old, position) = match row.and_then(|r| r.rebuilding.map(|(g, p)| (r.active, g, p))) {
        Some((old, rebuilt, position)) if rebuilt == generation => (old, position),
        other => {
            let actual = match other {
                Some((_, rebuilt, _)) => format!("the generation being rebuilt is {rebuilt}"),
                None => "no generation is being rebuilt".to_owned(),
            };
            return Err(StoreError::Backend(
                format!(
                    "cannot activate generation {generation} of projection `{projection}`: {actual}"
                )
                .into(),
            ));
        }
    };
    conn.prepare_cached(
        "UPDATE projections SET active_generation = ?2, position = ?3, \
         rebuilding_generation = NULL, rebuilding_position = NULL WHERE projection = ?1",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![projection, generation, to_i64(position)]))
    .map_err(sql_error(format!(
        "activating generation {generation} of projection `{projection}`"
    )))?;
    drop_generation(conn, projection, old)
}

/// Decodes a `dead_letters` row (`generation, position, event_id, stream_id, version,
/// reason, attempts, blocked_by`).
fn decode_dead_letter(projection: &str, row: &Row<'_>) -> Result<DeadLetter, StoreError> {
    let int = |i: usize| row.get_ref(i).ok().and_then(|v| v.as_i64().ok());
    let position = int(1).and_then(|p| u64::try_from(p).ok());
    let err = |what: &str| {
        let at = position.map_or_else(|| "?".to_owned(), |p| p.to_string());
        StoreError::Backend(
            format!("corrupt dead letter of projection `{projection}` at position {at}: {what}")
                .into(),
        )
    };
    let position = position.ok_or_else(|| err("position is not a position"))?;
    let generation = int(0)
        .and_then(|g| u32::try_from(g).ok())
        .ok_or_else(|| err("generation is out of range"))?;
    let id = row
        .get_ref(2)
        .ok()
        .and_then(|v| v.as_blob().ok())
        .ok_or_else(|| err("event_id is not a blob"))?;
    let event_id = Uuid::from_slice(id).map_err(|_| err("event_id is not a 16-byte UUID"))?;
    let text = |i: usize, what: &str| {
        row.get_ref(i)
            .ok()
            .and_then(|v| v.as_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| err(what))
    };
    let stream_id = text(3, "stream_id is not UTF-8 text")?;
    let version = int(4)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| err("version is not a version"))?;
    let reason = text(5, "reason is not UTF-8 text")?;
    let attempts = int(6)
        .and_then(|a| u32::try_from(a).ok())
        .ok_or_else(|| err("attempts is out of range"))?;
    let blocked_by = match row.get_ref(7) {
        Ok(rusqlite::types::ValueRef::Null) => None,
        _ => Some(
            int(7)
                .and_then(|b| u64::try_from(b).ok())
                .ok_or_else(|| err("blocked_by is not a position"))?,
        ),
    };
    Ok(DeadLetter {
        projection: projection.to_owned(),
        generation,
        position,
        event_id,
        stream_id,
        version,
        reason,
        attempts,
        blocked_by,
    })
}

/// What [`SqliteEventStore::read_for_batch`] found.
struct BatchRead {
    stored: Option<u64>,
    docs: Vec<(String, Option<Bytes>)>,
}

impl SqliteEventStore {
    /// An async batch of a projection writing its own SQL: applied and committed on the
    /// writer thread, where its statements share the checkpoint's savepoint.
    async fn commit_sql_batch(
        &self,
        name: String,
        sql: Arc<dyn SqlProjection>,
        batch: &ProjectionBatch<'_>,
    ) -> Result<(), BatchError> {
        let write = BatchWrite {
            projection: name,
            generation: batch.generation,
            from: batch.from,
            read: Vec::new(),
            writes: Vec::new(),
            park: batch.park.to_vec(),
            resolved: batch.resolved.to_vec(),
            checkpoint: batch.checkpoint,
            sql: Some((sql, batch.events.to_vec())),
        };
        match self.write(WriteOp::CommitBatch(Box::new(write))).await {
            Ok(Written::Batch(BatchOutcome::Committed)) => Ok(()),
            Ok(Written::Batch(BatchOutcome::Stale(stored))) => Err(BatchError::Stale {
                stored,
                from: batch.from,
            }),
            Ok(_) => Err(mismatched_reply().into()),
            // The writer names the failing event by id; the runner wants its index.
            Err(StoreError::Projection {
                projection,
                stream_id,
                event_id,
                source,
            }) => match batch.events.iter().position(|e| e.event_id == event_id) {
                Some(index) => Err(BatchError::Apply {
                    index,
                    error: *source,
                }),
                None => Err(StoreError::Projection {
                    projection,
                    stream_id,
                    event_id,
                    source,
                }
                .into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Reads, in one read transaction, the checkpoint of `projection`'s `generation` and
    /// (if it is `from`) the documents `keys`.
    async fn read_for_batch(
        &self,
        projection: String,
        generation: u32,
        from: u64,
        keys: Vec<String>,
    ) -> Result<BatchRead, StoreError> {
        self.inner
            .readers
            .run(move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(sql_error("starting a read transaction"))?;
                let stored = stored_checkpoint(projection_row(&tx, &projection)?, generation);
                if stored != Some(from) {
                    return Ok(BatchRead {
                        stored,
                        docs: Vec::new(),
                    });
                }
                let docs = keys
                    .into_iter()
                    .map(|key| {
                        let doc = load_doc_at(&tx, &projection, generation, &key)?;
                        Ok((key, doc))
                    })
                    .collect::<Result<_, StoreError>>()?;
                Ok(BatchRead { stored, docs })
            })
            .await
    }
}

/// The documents, checkpoints and dead letters of projections, in the event store's
/// file: a batch of documents commits with its checkpoint, and inline projections with
/// their append. Reads use the reader pool, writes the writer thread (see the
/// [module docs](super#read-side-projections)).
#[async_trait]
impl ViewStore for SqliteEventStore {
    async fn load_doc(&self, projection: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_name(projection)?;
        let (projection, key) = (projection.to_owned(), key.to_owned());
        self.inner
            .readers
            .run(move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(sql_error("starting a read transaction"))?;
                let generation = active_generation(&tx, &projection)?;
                load_doc_at(&tx, &projection, generation, &key)
            })
            .await
    }

    async fn load_docs(&self, projection: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
        check_name(projection)?;
        let projection = projection.to_owned();
        self.inner
            .readers
            .run(move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(sql_error("starting a read transaction"))?;
                let generation = active_generation(&tx, &projection)?;
                let context = || format!("reading the documents of projection `{projection}`");
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT key, doc FROM views WHERE projection = ?1 AND generation = ?2 \
                         ORDER BY key",
                    )
                    .map_err(sql_error(context()))?;
                let mut rows = stmt
                    .query(rusqlite::params![projection, generation])
                    .map_err(sql_error(context()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(sql_error(context()))? {
                    let key = row
                        .get_ref(0)
                        .ok()
                        .and_then(|v| v.as_str().ok())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            StoreError::Backend(
                                format!(
                                    "corrupt document of projection `{projection}`: its key is \
                                     not UTF-8 text"
                                )
                                .into(),
                            )
                        })?;
                    let doc = doc_of(row, 1, &projection, generation, &key)?;
                    out.push((key, doc));
                }
                Ok(out)
            })
            .await
    }

    async fn projection_state(&self, projection: &str) -> Result<ProjectionState, StoreError> {
        check_name(projection)?;
        let projection = projection.to_owned();
        self.inner
            .readers
            .run(move |conn| projection_row(conn, &projection).map(ProjectionRow::state))
            .await
    }

    async fn commit_batch(&self, batch: ProjectionBatch<'_>) -> Result<(), BatchError> {
        let name = batch.projection.name().to_owned();
        check_name(&name)?;
        if let Some(letter) = batch
            .park
            .iter()
            .find(|l| l.projection != name || l.generation != batch.generation)
        {
            return Err(StoreError::Backend(
                format!(
                    "dead letter of event {} names projection `{}` generation {}, but the \
                     batch writes projection `{name}` generation {}",
                    letter.event_id, letter.projection, letter.generation, batch.generation
                )
                .into(),
            )
            .into());
        }
        if let Some(sql) = batch.projection.sql() {
            return self.commit_sql_batch(name, sql, &batch).await;
        }
        let keys = touched_keys(batch.projection, batch.events);
        for _ in 0..BATCH_ATTEMPTS {
            let read = self
                .read_for_batch(name.clone(), batch.generation, batch.from, keys.clone())
                .await?;
            if read.stored != Some(batch.from) {
                return Err(BatchError::Stale {
                    stored: read.stored,
                    from: batch.from,
                });
            }
            let mut docs: HashMap<String, Option<Bytes>> = read.docs.iter().cloned().collect();
            let changed = apply_guarded(batch.projection, batch.events, &mut docs, |key| {
                // Every key was read above; another one means `key` is not a function
                // of the event.
                Err(StoreError::Backend(
                    format!(
                        "projection `{name}` gave key `{key}` for an event that it keyed \
                         differently a moment before: its `key` must be deterministic"
                    )
                    .into(),
                ))
            })
            .map_err(|failure| match failure {
                ApplyFailure::Load(e) => BatchError::Store(e),
                ApplyFailure::Projection { index, error } => BatchError::Apply {
                    index,
                    error: *error,
                },
            })?;
            let writes = changed
                .into_iter()
                .map(|key| {
                    let doc = docs.remove(&key).flatten();
                    (key, doc)
                })
                .collect();
            let write = BatchWrite {
                projection: name.clone(),
                generation: batch.generation,
                from: batch.from,
                read: read.docs,
                writes,
                park: batch.park.to_vec(),
                resolved: batch.resolved.to_vec(),
                checkpoint: batch.checkpoint,
                sql: None,
            };
            match self.write(WriteOp::CommitBatch(Box::new(write))).await? {
                Written::Batch(BatchOutcome::Committed) => return Ok(()),
                Written::Batch(BatchOutcome::Stale(stored)) => {
                    return Err(BatchError::Stale {
                        stored,
                        from: batch.from,
                    });
                }
                Written::Batch(BatchOutcome::DocsMoved) => continue,
                _ => return Err(mismatched_reply().into()),
            }
        }
        Err(StoreError::Backend(
            format!(
                "the documents of projection `{name}` (generation {}) kept changing while a \
                 batch was applied to them, though its checkpoint stayed at {}: something \
                 else writes that generation without moving its checkpoint",
                batch.generation, batch.from
            )
            .into(),
        )
        .into())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        check_name(projection)?;
        let projection = projection.to_owned();
        self.inner
            .readers
            .run(move |conn| {
                let context = || format!("reading the dead letters of projection `{projection}`");
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT generation, position, event_id, stream_id, version, reason, \
                         attempts, blocked_by FROM dead_letters WHERE projection = ?1 \
                         ORDER BY position, generation",
                    )
                    .map_err(sql_error(context()))?;
                let mut rows = stmt.query([&projection]).map_err(sql_error(context()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(sql_error(context()))? {
                    out.push(decode_dead_letter(&projection, row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn start_rebuild(&self, projection: &str) -> Result<u32, StoreError> {
        check_name(projection)?;
        match self
            .write(WriteOp::StartRebuild {
                projection: projection.to_owned(),
            })
            .await?
        {
            Written::Generation(generation) => Ok(generation),
            _ => Err(mismatched_reply()),
        }
    }

    async fn activate(&self, projection: &str, generation: u32) -> Result<(), StoreError> {
        check_name(projection)?;
        match self
            .write(WriteOp::Activate {
                projection: projection.to_owned(),
                generation,
            })
            .await?
        {
            Written::Saved => Ok(()),
            _ => Err(mismatched_reply()),
        }
    }
}
