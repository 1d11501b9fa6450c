//! The read side on PostgreSQL: [`ViewStore`] (documents, checkpoints, dead letters,
//! rebuilds) and the inline projections of [`EventStore::append_projected`].
//!
//! Locking. An async batch, a rebuild and an activation lock the projection's
//! `projections` row (`SELECT ... FOR UPDATE`) before reading documents, so two of them
//! never write a projection's documents at once; a batch's documents are read in a
//! statement that starts after the lock is granted, so under READ COMMITTED they include
//! every write of the previous holder.
//!
//! An inline append locks documents, not the projection: inline projections keep no
//! checkpoint (they are consistent with the log by construction; `position` is the async
//! runners'), and the `projections` row is only read, without a lock, for the active
//! generation. The keys the events change are known before the append (`handles` and
//! `key` depend on the stream id, the event's type and payload, never on its version or
//! position, which the append assigns), so the documents are read `FOR UPDATE` in the
//! append's first round trip, after `append_events` (the transaction's first write,
//! `CQ001`), sorted by (projection, key) so that two appends lock common documents in the
//! same order. Appends to different documents (with the default key, different
//! aggregates) therefore never wait on each other. A document that did not exist is
//! not locked by anyone: two appends may both find it absent and both insert it; the
//! insert has no `ON CONFLICT`, so the second fails on the primary key (`23505`, after
//! waiting for the first to commit) before its pipelined `COMMIT`, which then rolls
//! back, and the whole append is retried (bounded, as a racing append is) and finds the
//! document, locked. That only happens with custom keys shared by several streams (or
//! with two appends racing on one stream, which the retry resolves as a conflict). A
//! deadlock (`40P01`) is retried the same way.
//!
//! A projection that writes its own SQL ([`Projection::sql`]) runs its statements on the
//! transaction's connection after the first round trip (its generation comes with the
//! documents' read), one round trip per statement, before the documents and `COMMIT`;
//! in an async batch, after the checkpoint check and before the checkpoint's write. Its
//! migration runs in the first transaction through a store object that applies it, and
//! again until one such transaction has committed.
//!
//! Rebuilding an inline projection is not supported: an inline append reads the active
//! generation without a lock, so an activation may race with it.
//!
//! Transactions are opened with a plain `BEGIN` sent in the same pipeline as their first
//! statement, and closed with a `COMMIT` pipelined after their last one ([`OpenTx`]).
//!
//! [`EventStore::append_projected`]: crate::store::EventStore::append_projected

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::future::{try_join, try_join3, try_join4};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

use super::{
    AppendArgs, AppendStatus, AttemptError, JsonbText, PostgresEventStore, pg_error,
    valid_identifier,
};
use crate::event::{NewEvent, RecordedEvent};
use crate::projection::{
    ApplyFailure, BatchError, DeadLetter, Projection, ProjectionBatch, ProjectionError,
    ProjectionState, SqlContext, SqlProjection, ViewStore, apply_events, panic_message,
};
use crate::store::{AppendOutcome, StoreError, recorded_from_new};

/// The read side's hot statements, prepared once per connection (`prepare_cached`).
pub(super) struct ViewSql {
    /// `$1` tenant, `$2` projection, `$3` key: the document of the active generation.
    load_doc: String,
    /// `$1` tenant, `$2` projection: every document of the active generation, by key.
    load_docs: String,
    /// `$1` tenant, `$2` projection: the projection's row.
    state: String,
    /// `$1` tenant, `$2` projection: the projection's row, locked.
    lock: String,
    /// `$1` tenant, `$2` projection: creates the row if absent.
    ensure: String,
    /// `$1` tenant, `$2` projection, `$3` generation, `$4` keys: the documents of a batch.
    batch_docs: String,
    /// A batch's documents, dead letters and checkpoint, in one statement.
    batch_write: String,
    /// `$1` tenant, `$2` projection: the dead letters, in position order.
    dead_letters: String,
    /// `$1` tenant, `$2` projections, `$3` projections and `$4` keys (pairwise): each
    /// projection's active generation (plain read, no lock), with the documents of the
    /// keys an inline append needs, locked (`FOR UPDATE`) in the order of the keys.
    inline_lock: String,
    /// The documents an inline append changed, every projection in one statement:
    /// documents the lock read found are updated or deleted, the others inserted (a
    /// document created concurrently fails the insert: `23505`, retried).
    inline_write: String,
}

impl ViewSql {
    pub(super) fn new(q: &str) -> Self {
        let active = format!(
            "coalesce((SELECT p.active_generation FROM {q}.projections p \
             WHERE p.tenant = $1 AND p.projection = $2), 0)"
        );
        let projection_columns =
            "active_generation, position, rebuilding_generation, rebuilding_position";
        Self {
            load_doc: format!(
                "SELECT v.doc FROM {q}.views v WHERE v.tenant = $1 AND v.projection = $2 \
                 AND v.key = $3 AND v.generation = {active}"
            ),
            // Byte order of the keys (as Rust sorts strings), whatever the collation.
            load_docs: format!(
                "SELECT v.key, v.doc FROM {q}.views v WHERE v.tenant = $1 \
                 AND v.projection = $2 AND v.generation = {active} ORDER BY v.key COLLATE \"C\""
            ),
            state: format!(
                "SELECT {projection_columns} FROM {q}.projections \
                 WHERE tenant = $1 AND projection = $2"
            ),
            lock: format!(
                "SELECT {projection_columns} FROM {q}.projections \
                 WHERE tenant = $1 AND projection = $2 FOR UPDATE"
            ),
            ensure: format!(
                "INSERT INTO {q}.projections (tenant, projection) VALUES ($1, $2) \
                 ON CONFLICT (tenant, projection) DO NOTHING"
            ),
            batch_docs: format!(
                "SELECT key, doc FROM {q}.views WHERE tenant = $1 AND projection = $2 \
                 AND generation = $3 AND key = ANY ($4)"
            ),
            // $4/$5 documents written, $6 keys deleted, $7..$13 dead letters parked, $14
            // dead letters resolved, $15 the new checkpoint of generation $3.
            batch_write: format!(
                "WITH put AS (
                     INSERT INTO {q}.views AS v (tenant, projection, generation, key, doc)
                     SELECT $1, $2, $3, u.key, u.doc
                     FROM unnest($4::text[], $5::jsonb[]) AS u(key, doc)
                     ON CONFLICT (tenant, projection, generation, key)
                     DO UPDATE SET doc = excluded.doc
                 ), gone AS (
                     DELETE FROM {q}.views WHERE tenant = $1 AND projection = $2
                     AND generation = $3 AND key = ANY ($6::text[])
                 ), parked AS (
                     INSERT INTO {q}.dead_letters AS d (tenant, projection, generation,
                         position, event_id, stream_id, version, reason, attempts, blocked_by)
                     SELECT $1, $2, $3, l.position, l.event_id, l.stream_id, l.version,
                            l.reason, l.attempts, l.blocked_by
                     FROM unnest($7::bigint[], $8::uuid[], $9::text[], $10::bigint[],
                                 $11::text[], $12::integer[], $13::bigint[])
                          AS l(position, event_id, stream_id, version, reason, attempts,
                               blocked_by)
                     ON CONFLICT (tenant, projection, generation, event_id) DO UPDATE SET
                         position = excluded.position, stream_id = excluded.stream_id,
                         version = excluded.version, reason = excluded.reason,
                         attempts = excluded.attempts, blocked_by = excluded.blocked_by
                 ), resolved AS (
                     DELETE FROM {q}.dead_letters WHERE tenant = $1 AND projection = $2
                     AND generation = $3 AND event_id = ANY ($14::uuid[])
                 )
                 UPDATE {q}.projections SET
                     position = CASE WHEN active_generation = $3::integer
                                     THEN $15::bigint ELSE position END,
                     rebuilding_position = CASE WHEN rebuilding_generation = $3::integer
                                                THEN $15::bigint ELSE rebuilding_position END
                 WHERE tenant = $1 AND projection = $2"
            ),
            dead_letters: format!(
                "SELECT generation, position, event_id, stream_id, version, reason, attempts, \
                 blocked_by FROM {q}.dead_letters WHERE tenant = $1 AND projection = $2 \
                 ORDER BY position, generation, event_id"
            ),
            // One row per projection of $2 (its key and document NULL when none of its
            // documents exists). The generations are read without a lock. Each document
            // is read by its key (an index lookup: the lateral sub-select, which holds a
            // locking clause, is never flattened into a join) and locked in the order of
            // $3/$4, which the caller sorts, so two appends lock common documents in the
            // same order.
            inline_lock: format!(
                "WITH g AS MATERIALIZED (
                     SELECT n.projection, coalesce(p.active_generation, 0) AS generation
                     FROM unnest($2::text[]) AS n(projection)
                     LEFT JOIN {q}.projections p
                         ON p.tenant = $1 AND p.projection = n.projection
                 ), d AS MATERIALIZED (
                     SELECT w.projection, x.key, x.doc
                     FROM unnest($3::text[], $4::text[]) AS w(projection, key)
                     CROSS JOIN LATERAL (
                         SELECT v.key, v.doc FROM {q}.views v
                         WHERE v.tenant = $1 AND v.projection = w.projection
                           AND v.generation = (SELECT g.generation FROM g
                                               WHERE g.projection = w.projection)
                           AND v.key = w.key
                         FOR UPDATE
                     ) AS x
                 )
                 SELECT g.projection, g.generation, d.key, d.doc
                 FROM g LEFT JOIN d ON d.projection = g.projection"
            ),
            // $2..$5 documents updated, $6..$8 deleted, $9..$12 inserted (no ON CONFLICT:
            // a concurrent creation must abort the transaction before the pipelined
            // COMMIT).
            inline_write: format!(
                "WITH put AS (
                     UPDATE {q}.views v SET doc = u.doc
                     FROM unnest($2::text[], $3::integer[], $4::text[], $5::jsonb[])
                          AS u(projection, generation, key, doc)
                     WHERE v.tenant = $1 AND v.projection = u.projection
                       AND v.generation = u.generation AND v.key = u.key
                 ), gone AS (
                     DELETE FROM {q}.views v
                     USING unnest($6::text[], $7::integer[], $8::text[])
                           AS d(projection, generation, key)
                     WHERE v.tenant = $1 AND v.projection = d.projection
                       AND v.generation = d.generation AND v.key = d.key
                 )
                 INSERT INTO {q}.views (tenant, projection, generation, key, doc)
                 SELECT $1, i.projection, i.generation, i.key, i.doc
                 FROM unnest($9::text[], $10::integer[], $11::text[], $12::jsonb[])
                      AS i(projection, generation, key, doc)"
            ),
        }
    }
}

/// An explicit transaction whose `BEGIN` and `COMMIT` are plain statements, so that they
/// travel in the same pipeline as the statements next to them (a round trip saved at each
/// end). A connection must never go back to the pool inside a transaction: the error
/// paths [`rollback`](Self::rollback), and a guard dropped while open (a cancelled
/// future) queues a `ROLLBACK` without waiting for it, as `tokio_postgres::Transaction`
/// does when dropped. A request is queued when its future is first polled, and the
/// connection runs requests in queue order, so the `ROLLBACK` runs before anything the
/// connection's next user sends. A `ROLLBACK` outside a transaction only warns.
struct OpenTx<'c> {
    client: &'c Client,
    open: bool,
}

impl<'c> OpenTx<'c> {
    /// The guard, open from the start (the caller sends [`begin`](Self::begin) first in
    /// its first pipeline).
    fn new(client: &'c Client) -> Self {
        Self { client, open: true }
    }

    fn begin(&self) -> impl Future<Output = Result<(), tokio_postgres::Error>> + 'c {
        self.client.batch_execute("BEGIN")
    }

    fn commit(&self) -> impl Future<Output = Result<(), tokio_postgres::Error>> + 'c {
        self.client.batch_execute("COMMIT")
    }

    /// The pipeline with the `COMMIT` succeeded: nothing is left to roll back.
    fn committed(mut self) {
        self.open = false;
    }

    /// Rolls back whatever state the pipeline left (an error or a cancelled request may
    /// have ended the transaction already, or not). A failure means the connection is
    /// gone, and the pool then discards it.
    async fn rollback(mut self) {
        self.open = false;
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

impl Drop for OpenTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Polled once: the request is queued; its answer is drained by the connection.
            let _ = self.client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}

/// A document as a `jsonb` (or `json`) parameter, sent as its text without parsing it
/// again (it was checked by [`jsonb_problem`]).
#[derive(Debug)]
struct JsonbParam<'a>(&'a [u8]);

impl ToSql for JsonbParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            // Binary jsonb: a version byte (1), then the JSON text.
            out.put_u8(1);
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSONB | Type::JSON)
    }

    to_sql_checked!();
}

/// The projections of an inline append, sorted by name (so their documents are locked in
/// (projection, key) order), names checked.
pub(super) struct Inline<'p> {
    /// The projections of documents.
    projections: Vec<&'p dyn Projection>,
    /// The projections writing their own SQL, with their names.
    sql: Vec<(&'p str, Arc<dyn SqlProjection>)>,
}

impl<'p> Inline<'p> {
    pub(super) fn new(projections: &'p [Arc<dyn Projection>]) -> Result<Self, StoreError> {
        let mut sorted: Vec<&'p dyn Projection> = projections.iter().map(|p| &**p).collect();
        sorted.sort_by(|a, b| a.name().cmp(b.name()));
        for p in &sorted {
            check_name(p.name())?;
        }
        if let Some(twice) = sorted.windows(2).find(|w| w[0].name() == w[1].name()) {
            return Err(StoreError::Backend(
                format!(
                    "inline projection `{}` is listed twice: names must be unique",
                    twice[0].name()
                )
                .into(),
            ));
        }
        let mut sql = Vec::new();
        sorted.retain(|p| match p.sql() {
            Some(own) => {
                sql.push((p.name(), own));
                false
            }
            None => true,
        });
        Ok(Self {
            projections: sorted,
            sql,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.projections.is_empty() && self.sql.is_empty()
    }
}

/// A projection name, as the trait requires it (it is a bind value, never an identifier).
fn check_name(name: &str) -> Result<(), StoreError> {
    if valid_identifier(name) {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!("invalid projection name `{name}`: it must match ^[a-z_][a-z0-9_]{{0,62}}$")
                .into(),
        ))
    }
}

fn backend(message: String) -> StoreError {
    StoreError::Backend(message.into())
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| backend(format!("{what} {value} is out of range")))
}

fn to_i32(value: u32, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| backend(format!("{what} {value} is out of range")))
}

/// The documents a batch needs, known from its events' keys before anything is read, and
/// the event where it must stop because its key cannot be stored (PostgreSQL `text`
/// holds no NUL).
struct DocPlan {
    keys: HashSet<String>,
    stop: Option<(usize, ProjectionError)>,
    /// Every handled event's key is known (no key failed): with no keys, the projection
    /// handles none of the events and changes nothing.
    complete: bool,
}

impl DocPlan {
    fn new(projection: &dyn Projection, events: &[RecordedEvent]) -> Self {
        let mut keys = HashSet::new();
        for (index, event) in events.iter().enumerate() {
            if !projection.handles(event) {
                continue;
            }
            match projection.key(event) {
                Ok(key) if key.contains('\0') => {
                    let error = ProjectionError::Document {
                        view: projection.name().to_owned(),
                        key: key.replace('\0', "\\0"),
                        message: "a document key cannot hold a NUL character".into(),
                    };
                    return Self {
                        keys,
                        stop: Some((index, error)),
                        complete: false,
                    };
                }
                Ok(key) => {
                    keys.insert(key);
                }
                // `apply_events` meets the same error at the same event and reports it.
                Err(_) => {
                    return Self {
                        keys,
                        stop: None,
                        complete: false,
                    };
                }
            }
        }
        Self {
            keys,
            stop: None,
            complete: true,
        }
    }

    /// No documents.
    fn empty() -> Self {
        Self {
            keys: HashSet::new(),
            stop: None,
            complete: true,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
}

/// Why a projection could not be applied to a batch.
enum ApplyError {
    /// The projection failed on `events[index]` (or produced a document that cannot be
    /// stored).
    Event {
        index: usize,
        error: Box<ProjectionError>,
    },
    Store(StoreError),
}

/// Applies `projection` to `events` with the documents `found` (read for `plan.keys`;
/// absent: no document) and returns the changed documents (`None`: deleted).
fn apply_planned(
    projection: &dyn Projection,
    events: &[RecordedEvent],
    plan: DocPlan,
    mut found: HashMap<String, Bytes>,
) -> Result<Vec<(String, Option<Bytes>)>, ApplyError> {
    let DocPlan { keys, stop, .. } = plan;
    let end = stop.as_ref().map_or(events.len(), |(index, _)| *index);
    let events = &events[..end];
    let mut docs = HashMap::new();
    let changed = apply_events(projection, events, &mut docs, |key| {
        if keys.contains(key) {
            Ok(found.remove(key))
        } else {
            Err(backend(format!(
                "projection `{}` gave key `{key}` for an event, and another one for the same \
                 event before: `Projection::key` must be deterministic, and depend only on \
                 the stream id and the event's type and payload (inline projections plan \
                 the keys before the append assigns versions and positions)",
                projection.name()
            )))
        }
    })
    .map_err(|failure| match failure {
        ApplyFailure::Load(e) => ApplyError::Store(e),
        ApplyFailure::Projection { index, error } => ApplyError::Event { index, error },
    })?;
    // A document PostgreSQL would refuse is the projection's failure, named by the last
    // event that changed its key, not a backend one (which would be retried for ever).
    let mut refused: Option<(usize, ProjectionError)> = None;
    for key in &changed {
        let Some(Some(doc)) = docs.get(key) else {
            continue;
        };
        let Some(message) = jsonb_problem(doc) else {
            continue;
        };
        let index = events
            .iter()
            .rposition(|e| projection.handles(e) && projection.key(e).is_ok_and(|k| k == *key))
            .unwrap_or(0);
        if refused.as_ref().is_none_or(|(i, _)| index < *i) {
            let error = ProjectionError::Document {
                view: projection.name().to_owned(),
                key: key.clone(),
                message,
            };
            refused = Some((index, error));
        }
    }
    if let Some((index, error)) = refused.or(stop) {
        return Err(ApplyError::Event {
            index,
            error: Box::new(error),
        });
    }
    Ok(changed
        .into_iter()
        .map(|key| {
            let doc = docs.remove(&key).flatten();
            (key, doc)
        })
        .collect())
}

/// Why `jsonb` would refuse `doc`, if it would: not JSON, or a string holding U+0000.
fn jsonb_problem(doc: &[u8]) -> Option<String> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(doc) {
        return Some(format!("the document is not valid JSON: {e}"));
    }
    fn has_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    // Only a document with the escape can hold one; parse those fully.
    let suspect = doc.windows(6).any(|w| w == b"\\u0000");
    match suspect.then(|| serde_json::from_slice::<serde_json::Value>(doc)) {
        Some(Ok(value)) if has_nul(&value) => {
            Some("a string of the document holds U+0000, which jsonb cannot store".into())
        }
        _ => None,
    }
}

/// A document column as bytes (the `jsonb` text).
fn doc_bytes(row: &Row, column: usize, projection: &str, key: &str) -> Result<Bytes, StoreError> {
    let JsonbText(text) = row.try_get(column).map_err(|e| {
        backend(format!(
            "document `{key}` of projection `{projection}`: {e}"
        ))
    })?;
    Ok(Bytes::copy_from_slice(text))
}

/// A `projections` row ([`ViewSql::state`]'s columns).
fn decode_state(projection: &str, row: &Row) -> Result<ProjectionState, StoreError> {
    let bad = |what: String| backend(format!("the row of projection `{projection}`: {what}"));
    let active: i32 = row.try_get(0).map_err(|e| bad(e.to_string()))?;
    let position: i64 = row.try_get(1).map_err(|e| bad(e.to_string()))?;
    let rebuilding_generation: Option<i32> = row.try_get(2).map_err(|e| bad(e.to_string()))?;
    let rebuilding_position: Option<i64> = row.try_get(3).map_err(|e| bad(e.to_string()))?;
    let generation = |g: i32| u32::try_from(g).map_err(|_| bad(format!("negative generation {g}")));
    let position_of = |p: i64| u64::try_from(p).map_err(|_| bad(format!("negative position {p}")));
    Ok(ProjectionState {
        active_generation: generation(active)?,
        position: position_of(position)?,
        rebuilding: match (rebuilding_generation, rebuilding_position) {
            (Some(g), Some(p)) => Some((generation(g)?, position_of(p)?)),
            (None, None) => None,
            (g, p) => {
                return Err(bad(format!(
                    "rebuilding generation {g:?} without a position, or position {p:?} \
                     without a generation"
                )));
            }
        },
    })
}

/// A `dead_letters` row ([`ViewSql::dead_letters`]' columns).
fn decode_dead_letter(projection: &str, row: &Row) -> Result<DeadLetter, StoreError> {
    let bad = |what: String| {
        backend(format!(
            "a dead letter of projection `{projection}`: {what}"
        ))
    };
    let generation: i32 = row.try_get(0).map_err(|e| bad(e.to_string()))?;
    let position: i64 = row.try_get(1).map_err(|e| bad(e.to_string()))?;
    let version: i64 = row.try_get(4).map_err(|e| bad(e.to_string()))?;
    let attempts: i32 = row.try_get(6).map_err(|e| bad(e.to_string()))?;
    let blocked_by: Option<i64> = row.try_get(7).map_err(|e| bad(e.to_string()))?;
    let unsigned =
        |v: i64, what: &str| u64::try_from(v).map_err(|_| bad(format!("negative {what}")));
    Ok(DeadLetter {
        projection: projection.to_owned(),
        generation: u32::try_from(generation).map_err(|_| bad("negative generation".into()))?,
        position: unsigned(position, "position")?,
        event_id: row.try_get(2).map_err(|e| bad(e.to_string()))?,
        stream_id: row.try_get(3).map_err(|e| bad(e.to_string()))?,
        version: unsigned(version, "version")?,
        reason: row.try_get(5).map_err(|e| bad(e.to_string()))?,
        attempts: u32::try_from(attempts).map_err(|_| bad("negative attempts".into()))?,
        blocked_by: blocked_by.map(|b| unsigned(b, "blocked_by")).transpose()?,
    })
}

/// The dead letters a batch parks and resolves, as the arrays of [`ViewSql::batch_write`]:
/// one entry per event id (the last one given wins), and a dead letter both parked and
/// resolved stays parked.
struct Parking<'a> {
    positions: Vec<i64>,
    ids: Vec<Uuid>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    reasons: Vec<String>,
    attempts: Vec<i32>,
    blocked_by: Vec<Option<i64>>,
    resolved: Vec<Uuid>,
}

impl<'a> Parking<'a> {
    fn new(park: &'a [DeadLetter], resolved: &[Uuid]) -> Result<Self, StoreError> {
        let mut last: HashMap<Uuid, usize> = HashMap::with_capacity(park.len());
        for (i, letter) in park.iter().enumerate() {
            last.insert(letter.event_id, i);
        }
        let mut parking = Self {
            positions: Vec::with_capacity(last.len()),
            ids: Vec::with_capacity(last.len()),
            streams: Vec::with_capacity(last.len()),
            versions: Vec::with_capacity(last.len()),
            reasons: Vec::with_capacity(last.len()),
            attempts: Vec::with_capacity(last.len()),
            blocked_by: Vec::with_capacity(last.len()),
            resolved: resolved
                .iter()
                .filter(|id| !last.contains_key(id))
                .copied()
                .collect(),
        };
        for (i, letter) in park.iter().enumerate() {
            if last.get(&letter.event_id) != Some(&i) {
                continue;
            }
            parking
                .positions
                .push(to_i64(letter.position, "dead letter position")?);
            parking.ids.push(letter.event_id);
            parking.streams.push(&letter.stream_id);
            parking
                .versions
                .push(to_i64(letter.version, "dead letter version")?);
            // PostgreSQL text holds no NUL; an error message might.
            parking
                .reasons
                .push(letter.reason.replace('\0', "\u{fffd}"));
            parking
                .attempts
                .push(i32::try_from(letter.attempts).unwrap_or(i32::MAX));
            parking.blocked_by.push(
                letter
                    .blocked_by
                    .map(|b| to_i64(b, "dead letter blocked_by"))
                    .transpose()?,
            );
        }
        Ok(parking)
    }
}

/// The documents a batch changed, split into the write's arrays.
#[derive(Default)]
struct DocWrites {
    put_keys: Vec<String>,
    put_docs: Vec<Bytes>,
    del_keys: Vec<String>,
}

impl DocWrites {
    fn add(&mut self, changes: Vec<(String, Option<Bytes>)>) {
        for (key, doc) in changes {
            match doc {
                Some(doc) => {
                    self.put_keys.push(key);
                    self.put_docs.push(doc);
                }
                None => self.del_keys.push(key),
            }
        }
    }

    fn docs(&self) -> Vec<JsonbParam<'_>> {
        self.put_docs.iter().map(|d| JsonbParam(d)).collect()
    }
}

/// One array of [`ViewSql::inline_write`]: documents of several projections.
#[derive(Default)]
struct DocRows<'p> {
    projections: Vec<&'p str>,
    generations: Vec<i32>,
    keys: Vec<String>,
    docs: Vec<Bytes>,
}

impl<'p> DocRows<'p> {
    fn push(&mut self, projection: &'p str, generation: i32, key: String, doc: Option<Bytes>) {
        self.projections.push(projection);
        self.generations.push(generation);
        self.keys.push(key);
        self.docs.extend(doc);
    }

    fn docs(&self) -> Vec<JsonbParam<'_>> {
        self.docs.iter().map(|d| JsonbParam(d)).collect()
    }
}

/// The documents an inline append changed: those the lock read found are updated or
/// deleted, the others inserted (a document that was absent and stays so is not written).
#[derive(Default)]
struct InlineWrites<'p> {
    update: DocRows<'p>,
    delete: DocRows<'p>,
    insert: DocRows<'p>,
}

impl<'p> InlineWrites<'p> {
    /// Adds a projection's changes, in key order (so that concurrent inserts of common
    /// documents meet in the same order).
    fn add(
        &mut self,
        projection: &'p str,
        generation: i32,
        mut changes: Vec<(String, Option<Bytes>)>,
        existing: &HashSet<String>,
    ) {
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, doc) in changes {
            let rows = match (existing.contains(&key), &doc) {
                (true, Some(_)) => &mut self.update,
                (true, None) => &mut self.delete,
                (false, Some(_)) => &mut self.insert,
                (false, None) => continue,
            };
            rows.push(projection, generation, key, doc);
        }
    }

    fn is_empty(&self) -> bool {
        self.update.keys.is_empty() && self.delete.keys.is_empty() && self.insert.keys.is_empty()
    }
}

impl PostgresEventStore {
    /// One attempt of an append with inline projections, in two round trips (see the
    /// module docs): `BEGIN`, `append_events` (the transaction's first write, `CQ001`)
    /// and the documents the events' keys need, locked; then the changed documents and
    /// `COMMIT`. When no projection handles any of the events, a plain append (one round
    /// trip). Anything but a written and projected batch rolls back.
    pub(super) async fn append_inline(
        &self,
        client: &deadpool_postgres::Object,
        append: &Statement,
        args: &AppendArgs<'_>,
        events: &[NewEvent],
        inline: &Inline<'_>,
    ) -> Result<AppendStatus, AttemptError> {
        let stream: Arc<str> = Arc::from(args.stream_id);
        // The keys, known before the append: `handles` and `key` look at the stream id,
        // the type and the payload, never at versions or positions, which are still
        // placeholders here (checked after the append: a key not planned is an error).
        let first_version = u64::try_from(args.expected).map_or(1, |v| v.saturating_add(1));
        let planned: Vec<RecordedEvent> = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                recorded_from_new(
                    &stream,
                    event,
                    first_version.saturating_add(i as u64),
                    0,
                    std::time::SystemTime::UNIX_EPOCH,
                )
            })
            .collect();
        let plans: Vec<DocPlan> = inline
            .projections
            .iter()
            .map(|p| DocPlan::new(*p, &planned))
            .collect();
        // The projections writing their own SQL that handle any of the events.
        let own_sql: Vec<(&str, &Arc<dyn SqlProjection>)> = inline
            .sql
            .iter()
            .filter(|(_, own)| planned.iter().any(|e| own.handles(e)))
            .map(|(name, own)| (*name, own))
            .collect();
        drop(planned);
        if own_sql.is_empty() && plans.iter().all(|p| p.complete && p.keys.is_empty()) {
            // No projection handles any of the events: nothing to read, nothing to write.
            return match client.query_one(append, &args.params()).await {
                Ok(row) => AppendStatus::parse(&row).map_err(AttemptError::Store),
                Err(e) => Err(AttemptError::Pg(e)),
            };
        }
        let (mut names, mut want_projections, mut want_keys) = (Vec::new(), Vec::new(), Vec::new());
        // In (projection, key) order: the documents' lock order.
        // The generations of the SQL projections come with the documents' read.
        names.extend(own_sql.iter().map(|(name, _)| *name));
        for (projection, plan) in inline.projections.iter().zip(&plans) {
            if plan.keys.is_empty() {
                continue;
            }
            names.push(projection.name());
            let mut keys = plan.keys();
            keys.sort_unstable();
            for key in keys {
                want_projections.push(projection.name());
                want_keys.push(key);
            }
        }
        let sql = &self.inner.views;
        let (lock, write) = try_join(
            client.prepare_cached(&sql.inline_lock),
            client.prepare_cached(&sql.inline_write),
        )
        .await
        .map_err(AttemptError::Pg)?;
        let tenant = &self.inner.tenant;
        let tx = OpenTx::new(client);
        // Round trip 1: the append, then the documents (locked) and the generations.
        let first = try_join3(
            tx.begin(),
            client.query_one(append, &args.params()),
            async {
                if names.is_empty() {
                    Ok(Vec::new())
                } else {
                    client
                        .query(&lock, &[tenant, &names, &want_projections, &want_keys])
                        .await
                }
            },
        )
        .await;
        let (written, rows) = match first {
            Ok(((), row, rows)) => (AppendStatus::parse(&row), rows),
            Err(e) => {
                tx.rollback().await;
                return Err(AttemptError::Pg(e));
            }
        };
        let outcome = match written {
            Ok(AppendStatus::Written(outcome)) => outcome,
            // Deleted, a conflict, a malformed result: nothing to project.
            other => {
                tx.rollback().await;
                return other.map_err(AttemptError::Store);
            }
        };
        let projected = self
            .project_inline(
                client, &tx, &write, &stream, events, &outcome, inline, plans, &own_sql, &rows,
            )
            .await;
        match projected {
            Ok(()) => {
                tx.committed();
                Ok(AppendStatus::Written(outcome))
            }
            Err(e) => {
                tx.rollback().await;
                Err(e)
            }
        }
    }

    /// The inline projections of a written batch, with the documents `rows` the lock read
    /// returned: round trip 2, the changed documents and `COMMIT`.
    #[allow(clippy::too_many_arguments)]
    async fn project_inline(
        &self,
        client: &deadpool_postgres::Object,
        tx: &OpenTx<'_>,
        write: &Statement,
        stream: &Arc<str>,
        events: &[NewEvent],
        outcome: &AppendOutcome,
        inline: &Inline<'_>,
        plans: Vec<DocPlan>,
        own_sql: &[(&str, &Arc<dyn SqlProjection>)],
        rows: &[Row],
    ) -> Result<(), AttemptError> {
        let store = AttemptError::Store;
        let malformed = || {
            store(backend(format!(
                "append_events returned {} positions for {} events",
                outcome.positions.len(),
                events.len()
            )))
        };
        if outcome.positions.len() != events.len() {
            return Err(malformed());
        }
        let first_version = (outcome.stream_version + 1)
            .checked_sub(events.len() as u64)
            .ok_or_else(malformed)?;
        let recorded: Vec<RecordedEvent> = events
            .iter()
            .zip(&outcome.positions)
            .enumerate()
            .map(|(i, (event, position))| {
                recorded_from_new(
                    stream,
                    event,
                    first_version + i as u64,
                    *position,
                    outcome.recorded_at,
                )
            })
            .collect();
        let mut generation_of: HashMap<String, i32> = HashMap::new();
        let mut found: HashMap<String, HashMap<String, Bytes>> = HashMap::new();
        for row in rows {
            let bad = |e: tokio_postgres::Error| store(backend(e.to_string()));
            let name: String = row.try_get(0).map_err(bad)?;
            let generation: i32 = row.try_get(1).map_err(bad)?;
            let key: Option<String> = row.try_get(2).map_err(bad)?;
            if let Some(key) = key {
                let doc = doc_bytes(row, 3, &name, &key).map_err(store)?;
                found.entry(name.clone()).or_default().insert(key, doc);
            }
            generation_of.insert(name, generation);
        }
        let mut writes = InlineWrites::default();
        for (projection, plan) in inline.projections.iter().zip(plans) {
            let name = projection.name();
            let docs = found.remove(name).unwrap_or_default();
            let existing: HashSet<String> = docs.keys().cloned().collect();
            let planned = !plan.keys.is_empty();
            let changes = match apply_planned(*projection, &recorded, plan, docs) {
                Ok(changes) => changes,
                Err(ApplyError::Event { index, error }) => {
                    return Err(store(StoreError::Projection {
                        projection: name.to_owned(),
                        stream_id: stream.to_string(),
                        event_id: recorded[index].event_id,
                        source: error,
                    }));
                }
                Err(ApplyError::Store(e)) => return Err(store(e)),
            };
            if changes.is_empty() {
                continue;
            }
            let generation = match generation_of.get(name) {
                Some(&generation) if planned => generation,
                _ => {
                    return Err(store(backend(format!(
                        "the generation of projection `{name}` was not read"
                    ))));
                }
            };
            writes.add(name, generation, changes, &existing);
        }
        let mut migrated = Vec::new();
        for (name, own) in own_sql {
            let generation = generation_of.get(*name).copied().ok_or_else(|| {
                store(backend(format!(
                    "the generation of projection `{name}` was not read"
                )))
            })?;
            let cx = SqlContext {
                projection: name,
                generation: u32::try_from(generation).unwrap_or_default(),
                inline: true,
                tenant: Some(&self.inner.tenant),
                schema: Some(&self.inner.schema),
            };
            match self.apply_sql(client, &***own, &recorded, &cx).await {
                Ok(true) => migrated.push(*name),
                Ok(false) => {}
                Err((index, error)) => {
                    return Err(store(StoreError::Projection {
                        projection: (*name).to_owned(),
                        stream_id: stream.to_string(),
                        event_id: recorded[index].event_id,
                        source: error,
                    }));
                }
            }
        }
        // Round trip 2: the documents, and COMMIT.
        if writes.is_empty() {
            tx.commit().await.map_err(AttemptError::Pg)?;
            self.sql_migrations_committed(&migrated);
            return Ok(());
        }
        let InlineWrites {
            update,
            delete,
            insert,
        } = &writes;
        let (update_docs, insert_docs) = (update.docs(), insert.docs());
        try_join(
            client.execute(
                write,
                &[
                    &self.inner.tenant,
                    &update.projections,
                    &update.generations,
                    &update.keys,
                    &update_docs,
                    &delete.projections,
                    &delete.generations,
                    &delete.keys,
                    &insert.projections,
                    &insert.generations,
                    &insert.keys,
                    &insert_docs,
                ],
            ),
            tx.commit(),
        )
        .await
        .map_err(AttemptError::Pg)?;
        self.sql_migrations_committed(&migrated);
        Ok(())
    }

    /// Runs a projection's own SQL on the `events` it handles, in the transaction
    /// `client` has open: first its migration, unless this store object has committed
    /// one. Returns whether it migrated (the caller records it once committed).
    async fn apply_sql(
        &self,
        client: &Client,
        own: &dyn SqlProjection,
        events: &[RecordedEvent],
        cx: &SqlContext<'_>,
    ) -> Result<bool, (usize, Box<ProjectionError>)> {
        let mut migrate = !self
            .inner
            .sql_migrated
            .lock()
            .is_ok_and(|done| done.contains(cx.projection));
        let migrating = migrate;
        for (index, event) in events.iter().enumerate() {
            let step = AssertUnwindSafe(async {
                if !own.handles(event) {
                    return Ok(());
                }
                if migrate {
                    own.migrate_postgres(client, cx).await?;
                    migrate = false;
                }
                own.apply_postgres(client, event, cx).await
            })
            .catch_unwind()
            .await;
            let error = match step {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error,
                Err(panic) => ProjectionError::Panicked(panic_message(&*panic)),
            };
            // The caller rolls the transaction back (a failed statement aborted it).
            return Err((index, Box::new(error)));
        }
        Ok(migrating && !migrate)
    }

    /// Records the migrations of projections writing their own SQL that just committed.
    fn sql_migrations_committed(&self, names: &[&str]) {
        if names.is_empty() {
            return;
        }
        if let Ok(mut done) = self.inner.sql_migrated.lock() {
            done.extend(names.iter().map(|name| (*name).to_owned()));
        }
    }

    /// A batch in two round trips: `BEGIN`, the row (created if absent, locked), the
    /// documents; then one statement writing documents, dead letters and the checkpoint,
    /// and `COMMIT`.
    async fn commit_batch_in(
        &self,
        client: &deadpool_postgres::Object,
        tx: &OpenTx<'_>,
        batch: &ProjectionBatch<'_>,
    ) -> Result<(), BatchError> {
        let name = batch.projection.name();
        let generation = to_i32(batch.generation, "generation")?;
        let checkpoint = to_i64(batch.checkpoint, "checkpoint")?;
        let parking = Parking::new(batch.park, batch.resolved)?;
        let own = batch.projection.sql();
        // A projection writing its own SQL has no documents to read.
        let plan = match own {
            Some(_) => DocPlan::empty(),
            None => DocPlan::new(batch.projection, batch.events),
        };
        let keys = plan.keys();
        let sql = &self.inner.views;
        let prepare = pg_error("preparing a statement");
        let (ensure, lock, load, write) = try_join4(
            client.prepare_cached(&sql.ensure),
            client.prepare_cached(&sql.lock),
            client.prepare_cached(&sql.batch_docs),
            client.prepare_cached(&sql.batch_write),
        )
        .await
        .map_err(&prepare)?;
        let tenant = &self.inner.tenant;
        // Round trip 1.
        let (_, _, row, rows) = try_join4(
            tx.begin(),
            client.execute(&ensure, &[tenant, &name]),
            client.query_one(&lock, &[tenant, &name]),
            async {
                if keys.is_empty() {
                    Ok(Vec::new())
                } else {
                    client
                        .query(&load, &[tenant, &name, &generation, &keys])
                        .await
                }
            },
        )
        .await
        .map_err(pg_error("reading a projection's documents"))?;
        let state = decode_state(name, &row)?;
        let stored = if state.active_generation == batch.generation {
            Some(state.position)
        } else {
            state
                .rebuilding
                .filter(|(g, _)| *g == batch.generation)
                .map(|(_, position)| position)
        };
        if stored != Some(batch.from) {
            return Err(BatchError::Stale {
                stored,
                from: batch.from,
            });
        }
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get(0).map_err(pg_error("reading a document key"))?;
            let doc = doc_bytes(row, 1, name, &key)?;
            found.insert(key, doc);
        }
        let mut writes = DocWrites::default();
        let mut migrated = false;
        if let Some(own) = &own {
            let cx = SqlContext {
                projection: name,
                generation: batch.generation,
                inline: false,
                tenant: Some(tenant),
                schema: Some(&self.inner.schema),
            };
            migrated = self
                .apply_sql(client, &**own, batch.events, &cx)
                .await
                .map_err(|(index, error)| BatchError::Apply {
                    index,
                    error: *error,
                })?;
        } else {
            match apply_planned(batch.projection, batch.events, plan, found) {
                Ok(changes) => writes.add(changes),
                Err(ApplyError::Event { index, error }) => {
                    return Err(BatchError::Apply {
                        index,
                        error: *error,
                    });
                }
                Err(ApplyError::Store(e)) => return Err(e.into()),
            }
        }
        let docs = writes.docs();
        // Round trip 2.
        try_join(
            client.execute(
                &write,
                &[
                    tenant,
                    &name,
                    &generation,
                    &writes.put_keys,
                    &docs,
                    &writes.del_keys,
                    &parking.positions,
                    &parking.ids,
                    &parking.streams,
                    &parking.versions,
                    &parking.reasons,
                    &parking.attempts,
                    &parking.blocked_by,
                    &parking.resolved,
                    &checkpoint,
                ],
            ),
            tx.commit(),
        )
        .await
        .map_err(pg_error("committing a projection batch"))?;
        if migrated {
            self.sql_migrations_committed(&[name]);
        }
        Ok(())
    }

    /// Removes the documents and dead letters of one generation of `projection`.
    async fn drop_generation(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        projection: &str,
        generation: i32,
    ) -> Result<(), StoreError> {
        let q = &self.inner.quoted;
        tx.execute(
            &format!(
                "WITH docs AS (DELETE FROM {q}.views WHERE tenant = $1 AND projection = $2 \
                 AND generation = $3) DELETE FROM {q}.dead_letters WHERE tenant = $1 \
                 AND projection = $2 AND generation = $3"
            ),
            &[&self.inner.tenant, &projection, &generation],
        )
        .await
        .map_err(pg_error("dropping a generation of a projection"))?;
        Ok(())
    }

    /// Starts a transaction and returns the projection's row, created if absent, locked.
    async fn lock_projection<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
        projection: &str,
    ) -> Result<(deadpool_postgres::Transaction<'c>, ProjectionState), StoreError> {
        let tx = client
            .transaction()
            .await
            .map_err(pg_error("starting a transaction"))?;
        let t = &self.inner.tenant;
        let sql = &self.inner.views;
        tx.execute(&sql.ensure, &[t, &projection])
            .await
            .map_err(pg_error("creating a projection's row"))?;
        let row = tx
            .query_one(&sql.lock, &[t, &projection])
            .await
            .map_err(pg_error("locking a projection's row"))?;
        let state = decode_state(projection, &row)?;
        Ok((tx, state))
    }
}

#[async_trait]
impl ViewStore for PostgresEventStore {
    async fn load_doc(&self, projection: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        check_name(projection)?;
        if key.contains('\0') {
            // No stored key holds one.
            return Ok(None);
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.views.load_doc)
            .await
            .map_err(pg_error("preparing a statement"))?;
        client
            .query_opt(&statement, &[&self.inner.tenant, &projection, &key])
            .await
            .map_err(pg_error("reading a document"))?
            .map(|row| doc_bytes(&row, 0, projection, key))
            .transpose()
    }

    async fn load_docs(&self, projection: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
        check_name(projection)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.views.load_docs)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let rows = client
            .query(&statement, &[&self.inner.tenant, &projection])
            .await
            .map_err(pg_error("reading documents"))?;
        rows.iter()
            .map(|row| {
                let key: String = row.try_get(0).map_err(pg_error("reading a document key"))?;
                let doc = doc_bytes(row, 1, projection, &key)?;
                Ok((key, doc))
            })
            .collect()
    }

    async fn projection_state(&self, projection: &str) -> Result<ProjectionState, StoreError> {
        check_name(projection)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.views.state)
            .await
            .map_err(pg_error("preparing a statement"))?;
        client
            .query_opt(&statement, &[&self.inner.tenant, &projection])
            .await
            .map_err(pg_error("reading a projection's state"))?
            .map_or(Ok(ProjectionState::default()), |row| {
                decode_state(projection, &row)
            })
    }

    /// Two round trips (see the [module docs](super)); the projection's row stays locked
    /// from the first to the commit, so a concurrent batch of the same projection waits,
    /// then finds the checkpoint moved ([`BatchError::Stale`]).
    async fn commit_batch(&self, batch: ProjectionBatch<'_>) -> Result<(), BatchError> {
        check_name(batch.projection.name())?;
        let client = self.client().await?;
        let tx = OpenTx::new(&client);
        let result = self.commit_batch_in(&client, &tx, &batch).await;
        match result {
            Ok(()) => tx.committed(),
            Err(_) => tx.rollback().await,
        }
        result
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        check_name(projection)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.views.dead_letters)
            .await
            .map_err(pg_error("preparing a statement"))?;
        client
            .query(&statement, &[&self.inner.tenant, &projection])
            .await
            .map_err(pg_error("reading dead letters"))?
            .iter()
            .map(|row| decode_dead_letter(projection, row))
            .collect()
    }

    async fn start_rebuild(&self, projection: &str) -> Result<u32, StoreError> {
        check_name(projection)?;
        let mut client = self.client().await?;
        let (tx, state) = self.lock_projection(&mut client, projection).await?;
        let previous = state.rebuilding.map(|(g, _)| g);
        let next = state
            .active_generation
            .max(previous.unwrap_or(0))
            .checked_add(1)
            .filter(|g| i32::try_from(*g).is_ok())
            .ok_or_else(|| {
                backend(format!(
                    "projection `{projection}` has no generation number left to rebuild into"
                ))
            })?;
        if let Some(previous) = previous {
            self.drop_generation(&tx, projection, to_i32(previous, "generation")?)
                .await?;
        }
        tx.execute(
            &format!(
                "UPDATE {}.projections SET rebuilding_generation = $3, rebuilding_position = 0 \
                 WHERE tenant = $1 AND projection = $2",
                self.inner.quoted
            ),
            &[
                &self.inner.tenant,
                &projection,
                &to_i32(next, "generation")?,
            ],
        )
        .await
        .map_err(pg_error("starting a rebuild"))?;
        tx.commit()
            .await
            .map_err(pg_error("committing the start of a rebuild"))?;
        Ok(next)
    }

    async fn activate(&self, projection: &str, generation: u32) -> Result<(), StoreError> {
        check_name(projection)?;
        let mut client = self.client().await?;
        let (tx, state) = self.lock_projection(&mut client, projection).await?;
        match state.rebuilding {
            Some((rebuilding, _)) if rebuilding == generation => {}
            other => {
                return Err(backend(format!(
                    "cannot activate generation {generation} of projection `{projection}`: \
                     the generation being rebuilt is {}",
                    other.map_or("none".to_owned(), |(g, _)| g.to_string())
                )));
            }
        }
        tx.execute(
            &format!(
                "UPDATE {}.projections SET active_generation = rebuilding_generation, \
                 position = rebuilding_position, rebuilding_generation = NULL, \
                 rebuilding_position = NULL WHERE tenant = $1 AND projection = $2",
                self.inner.quoted
            ),
            &[&self.inner.tenant, &projection],
        )
        .await
        .map_err(pg_error("activating a generation"))?;
        self.drop_generation(
            &tx,
            projection,
            to_i32(state.active_generation, "generation")?,
        )
        .await?;
        tx.commit()
            .await
            .map_err(pg_error("committing an activation"))?;
        Ok(())
    }
}
