//! The PostgreSQL event store: a shared server, a pool of connections, a gap-free global
//! log without a global lock.
//!
//! ```no_run
//! use cqrs_core::store::postgres::PostgresOptions;
//! # async fn demo() -> Result<(), cqrs_core::StoreError> {
//! let store = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/test")
//!     .schema("cqrs")
//!     .pool_size(16)
//!     .tenant("acme")
//!     .connect()
//!     .await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! Client and pool: `tokio-postgres` with a `deadpool-postgres` pool, chosen by
//! measurement against `sqlx` 0.8 (its own pool), same server (the benchmark cluster of
//! WORKLOAD.md), same statements, release build, medians of 3 rounds on the 2-core
//! machine: single-row autocommit INSERTs 3,548/s against 3,028/s (p50 267 µs against
//! 321 µs), and reading a 10,000-row result with typed column access 1.30 M rows/s
//! against 1.02 M. `tokio-postgres` also gives what the adapter relies on: statements
//! prepared once per connection (`prepare_cached`), rows streamed as they arrive
//! (`query_raw`), and the server's error fields (constraint name, SQLSTATE).
//!
//! # Schema
//!
//! The adapter creates its schema (default `cqrs`; any name matching
//! `^[a-z_][a-z0-9_]{0,62}$`, always quoted) and migrates it: `cqrs_schema` records each
//! migration applied; a schema newer than this build is refused with
//! [`StoreError::Backend`]. A schema already at this build's version is checked without
//! DDL or locks (so a role without CREATE rights can connect); otherwise the missing
//! migrations run in one transaction under an advisory lock. The SQL is in `schema.rs`
//! (migration 1: the tables below but `epochs` and the read side, the functions
//! `claim_positions` and `append_events`; migration 2: `epochs` and `bump_epoch()`;
//! migration 3: `views`, `projections`, `dead_letters`):
//!
//! | table | holds |
//! |---|---|
//! | `events` | `tenant`, `position` (from the sequence `event_positions`), `tx` (`xid8` of the writing transaction), `stream_id`, `version`, `event_id` (`uuid`), `event_type`, `schema_version`, `metadata` (`jsonb`), `payload` (`bytea`), `recorded_at`; primary key `(tenant, stream_id, version)`, unique `(tenant, event_id)`, index `(tenant, position)` |
//! | `streams` | per `(tenant, stream_id)`: `version`, `first_version` after truncation, `deleted` tombstone |
//! | `snapshots` | the newest snapshot per `(tenant, stream_id)` |
//! | `epochs` | restore epochs: `epoch`, `floor_position`, `bump_tx` (`xid8`), `bumped_at` |
//! | `views` | read-model documents: `doc` (`jsonb`) per `(tenant, projection, generation, key)` |
//! | `projections` | per `(tenant, projection)`: `active_generation`, its checkpoint `position`, and `rebuilding_generation`/`rebuilding_position` during a rebuild |
//! | `dead_letters` | events a projection parked, per `(tenant, projection, generation, event_id)` |
//! | `cqrs_schema` | the migrations applied |
//!
//! Every key and every query carries the tenant ([`PostgresOptions::tenant`], default
//! `""`); every value is a bind parameter.
//!
//! # Appends: one round trip
//!
//! An append is one statement, `SELECT append_events(...)` (a PL/pgSQL function,
//! so its own transaction): it checks the expected version against the stream row,
//! takes positions, and inserts the batch together with the stream's new version, in
//! two SQL statements (every other step is a plain expression). A racing append of the
//! same version fails on the primary key (`23505`) and is retried by the client, which
//! then sees the concurrency conflict. The re-send check is off the hot path: an event id
//! already stored fails the insert on the unique key `events_event_id_unique`, and a
//! version conflict may be a re-send too (a retry after an ambiguous commit); in both
//! cases the client compares the stored run with the batch (the idempotency rule of
//! [`EventStore::append`]) in a second query.
//!
//! Every statement the adapter runs often is prepared once per connection
//! (`prepare_cached`), so a call is one round trip.
//!
//! # Read models
//!
//! The store is also a [`ViewStore`](crate::projection::ViewStore): documents, checkpoints
//! and dead letters live in the tables `views`, `projections` and `dead_letters` (SQL and
//! round trips in `views.rs`). Documents are `jsonb`, so a document reads back as the
//! same JSON value, not necessarily the same bytes (key order, white space). The
//! `projections` row of a projection is the write lock of async batches, rebuilds and
//! activations (`FOR UPDATE` before reading documents), so two writers never read the
//! same document and both write it. Inline projections keep no checkpoint (they are
//! consistent with the log by construction) and lock only the documents they change, so
//! inline appends to different aggregates never wait on each other. Transactions with
//! several statements send `BEGIN` and `COMMIT` in the same pipeline as their first and
//! last statements, which is why:
//!
//! * [`EventStore::append_projected`] (inline projections) is two round trips: `BEGIN`,
//!   `append_events` (still the transaction's first write) and one statement reading the
//!   projections' active generations (no lock) and the documents the batch's keys need
//!   (`FOR UPDATE`, in key order); then one statement writing every changed document
//!   (updates and deletes of the documents read, inserts of the others) with `COMMIT`,
//!   or the `COMMIT` alone when nothing changed. The keys are computed before the append,
//!   so [`Projection::key`](crate::projection::Projection::key()) must depend only on the
//!   stream id and the event's type and payload (the default, the aggregate id, does),
//!   never on its version or position. A document created concurrently by another append
//!   (a custom key shared by several streams) fails the insert (`23505`) and the whole
//!   append is retried. When no projection handles the batch's events, it is a plain
//!   append, one round trip. A plain append stays one;
//! * [`ViewStore::commit_batch`](crate::projection::ViewStore::commit_batch) is two:
//!   `BEGIN`, the row lock and the documents; one statement writing documents, dead
//!   letters and the checkpoint, with `COMMIT`.
//!
//! A documents' write that PostgreSQL would refuse (a document that is not JSON or holds
//! U+0000 in a string, a key with a NUL character) is reported as the projection's
//! failure on the event that produced it, before anything is sent, so an async runner
//! parks the event instead of retrying a backend error for ever.
//!
//! [`EventStore::commit_notifier`] is a `tokio::sync::watch` of the highest position
//! committed through the store object (and its clones): appends, inline appends and
//! retention markers. Commits made by other processes are not seen; subscribers poll for
//! those.
//!
//! # The gap-free global log
//!
//! Positions come from a sequence, and transactions commit out of order: a reader that
//! hands out position 6 while the transaction holding position 5 is still open would skip
//! 5 forever. The rule used here:
//!
//! 1. **xid order = position order.** Every write transaction of the store takes its
//!    positions in `claim_positions(n)`, which, under a *session* advisory lock held only
//!    for those two calls (not until commit), assigns the transaction its xid
//!    (`pg_current_xact_id()`) and then takes `n` values of the sequence. Since xids are
//!    assigned in increasing order, for any two write transactions of the store the one
//!    with the smaller xid holds the smaller positions. Writers still run, insert and
//!    commit concurrently; only the (microsecond) claim is serialised.
//! 2. **Readers stop at the snapshot's xmin.** `read_all` reads rows in position order
//!    together with whether each is *final*: `tx < pg_snapshot_xmin(pg_current_snapshot())`
//!    (or at or below a sealed restore floor, below). Every transaction
//!    below xmin has finished, so the set of events with `tx < xmin` is final. Every
//!    store transaction still open (or yet to start) has an xid `>= xmin`, hence by (1)
//!    positions above every final event. So the final events are a *prefix* of the log
//!    in position order: the reader returns rows up to the first one that is not final
//!    and never skips or repeats one, whatever the interleaving of commits.
//! 3. **Read-your-writes.** A committed event that is not yet final (a transaction with a
//!    smaller xid is still open) is held back; the read then polls for up to
//!    [`PostgresOptions::read_wait`] (default 1 s) for the prefix to become final before
//!    returning the final part only.
//!
//! Hazards, and how they are handled:
//!
//! * *A transaction that already holds an xid* would get a position out of its xid
//!   order. The store owns every transaction it writes in, and `claim_positions` is
//!   always their first write; it refuses (SQLSTATE `CQ001`) to run in a transaction
//!   that already holds an xid.
//! * *A long transaction anywhere in the cluster* holds xmin back and stalls readers
//!   (not writers). [`PostgresEventStore::health`] names the backend holding the oldest
//!   xid or xmin (`pg_stat_activity`).
//! * *A restored dump resets transaction ids*: restored rows carry xids from the old
//!   cluster, which may be above the new cluster's xmin for a long time (readers stall at
//!   the first such row; nothing is skipped, but nothing moves). **After every restore,
//!   call [`PostgresEventStore::bump_epoch`]** (`SELECT "cqrs".bump_epoch()`, as the
//!   schema owner). It takes the position-claim lock, assigns itself an xid `B`, takes
//!   a position `F` from the sequence and records the epoch `(floor_position F,
//!   bump_tx B)`. A row is then final if `tx < xmin` **or** `position <= F` of an epoch
//!   whose `B < xmin` ("sealed"). Why that is safe: every row at or below `F` either
//!   came from the dump (only committed rows are dumped) or was claimed in this cluster
//!   before the bump under the same lock, hence by a transaction with an xid below `B`;
//!   once `B < xmin` all of those have ended, so none can still appear below a final
//!   row. Until the bump's own transaction is below the horizon the floor is ignored
//!   (readers stay conservative). The dump must include the sequence's value (pg_dump
//!   does), so new positions lie above restored ones. Bumping is idempotent in effect and
//!   safe while writers run. The rule costs one lookup in the tiny `epochs` table per
//!   read.
//!
//! # TLS
//!
//! The connection string's `sslmode` (URL query or key=value form) picks the mode
//! ([`TlsMode`]), on `rustls` with the `ring` provider through `tokio-postgres-rustls`
//! (no system OpenSSL; `aws-lc-rs` would need cmake):
//!
//! | `sslmode` | meaning |
//! |---|---|
//! | `disable` (default) | plain TCP |
//! | `prefer` | TLS if the server offers it, certificate not verified |
//! | `require` | TLS or fail; certificate **not** verified (libpq's meaning) |
//! | `verify-full` | TLS; chain verified against `sslrootcert=<PEM file>` if given, else Mozilla's roots (`webpki-roots`), and the host name checked |
//!
//! `verify-ca` and `allow` are refused with an error naming the supported values. A
//! failed handshake, or a server without TLS when TLS is required, is a
//! [`StoreError::Backend`] whose source is [`PostgresConnectError::Tls`]; an unanswered
//! connection is [`PostgresConnectError::Unreachable`], a refused session
//! [`PostgresConnectError::Refused`].
//!
//! # A least-privilege writer role
//!
//! The schema owner (who connects first and migrates) runs
//! [`PostgresEventStore::grant_writer`] for the application's role, which grants exactly:
//!
//! ```sql
//! GRANT USAGE ON SCHEMA "cqrs" TO app;
//! GRANT SELECT, INSERT ON "cqrs".events TO app;                    -- no UPDATE, DELETE, TRUNCATE
//! GRANT SELECT, INSERT, UPDATE ON "cqrs".streams, "cqrs".snapshots TO app;
//! GRANT SELECT ON "cqrs".cqrs_schema, "cqrs".epochs TO app;
//! GRANT USAGE ON SEQUENCE "cqrs".event_positions TO app;           -- nextval in the claim
//! GRANT EXECUTE ON FUNCTION "cqrs".append_events(text, text, bigint, uuid[], text[],
//!     integer[], jsonb[], bytea[]), "cqrs".claim_positions(integer) TO app;
//! GRANT SELECT, INSERT, UPDATE, DELETE                             -- the read side
//!     ON "cqrs".views, "cqrs".projections, "cqrs".dead_letters TO app;
//! ```
//!
//! The functions are `SECURITY INVOKER`: they run with the writer's rights, so the
//! events table is only ever inserted into and read. The `streams` table holds the
//! per-stream version counter (and the tombstone), hence its UPDATE; the writer role can
//! therefore move a counter or tombstone a stream, but never alter or remove a stored
//! event. The read-side tables are derived data (rebuilt from the events at will), so the
//! role may change them freely. Such a role can connect (the schema must already be at this build's version),
//! append, read and snapshot, run projections (inline and async, rebuilds included); the
//! retention calls (`delete_stream`, `truncate_stream`,
//! `expire`) and `bump_epoch` need the owner. A test proves that the role's UPDATE,
//! DELETE, TRUNCATE and DROP on `events` fail with SQLSTATE 42501.

mod schema;
mod tls;
mod views;

pub use tls::TlsMode;

/// The PostgreSQL client this store uses, for projections that write their own SQL
/// ([`SqlProjection::apply_postgres`](crate::projection::SqlProjection::apply_postgres))
/// and for queries through [`PostgresEventStore::pool`]: the same version, without a
/// dependency of your own.
pub use tokio_postgres;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::TryStreamExt;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::{
    ActualVersion, AppendOutcome, EventStore, EventVisitor, ExpectedVersion, RETENTION_STREAM,
    RetentionEvent, RetentionOutcome, StoreError, check_truncate, validate_batch,
};
use crate::event::{Metadata, NewEvent, RecordedEvent};
use crate::projection::Projection;
use crate::snapshot::Snapshot;

/// The columns every event query selects, in the order [`RowDecoder`] reads them.
const EVENT_COLUMNS: &str = "position, stream_id, version, event_id, event_type, \
     schema_version, metadata, payload, recorded_at";

/// [`EVENT_COLUMNS`] of the events table aliased `e`, for a query of one stream: the
/// stream id is known, so it is not sent (`NULL`).
const STREAM_EVENT_COLUMNS: &str = "e.position, NULL::text, e.version, e.event_id, \
     e.event_type, e.schema_version, e.metadata, e.payload, e.recorded_at";

/// How to connect a [`PostgresEventStore`]: URL, pool size, schema, tenant.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    url: String,
    pool_size: usize,
    schema: String,
    tenant: String,
    read_wait: Duration,
}

impl PostgresOptions {
    /// Options for the server at `url` (a libpq-style URL or key=value string).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            schema: "cqrs".into(),
            tenant: String::new(),
            read_wait: Duration::from_secs(1),
        }
    }

    /// How many connections the pool keeps at most (default 16, at least 1).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The schema the tables live in (default `cqrs`); validated at connect time against
    /// `^[a-z_][a-z0-9_]{0,62}$`.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The tenant every read and write is confined to (default `""`).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// How long `read_all` and `head_position` wait for committed events held back by an
    /// older open transaction (default 1 s); see the [module docs](self).
    #[must_use]
    pub fn read_wait(mut self, wait: Duration) -> Self {
        self.read_wait = wait;
        self
    }

    /// Connects, creates or migrates the schema, and returns the store.
    pub async fn connect(self) -> Result<PostgresEventStore, StoreError> {
        if !valid_identifier(&self.schema) {
            return Err(StoreError::Backend(
                format!(
                    "invalid schema name `{}`: it must match ^[a-z_][a-z0-9_]{{0,62}}$",
                    self.schema
                )
                .into(),
            ));
        }
        let (url, tls_mode, root_cert) = tls::split_url(&self.url)?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(pg_error("parsing the URL"))?;
        config.ssl_mode(tls_mode.ssl_mode());
        let target = describe_target(&config);
        let connector = tls::connector(tls_mode, root_cert.as_deref())?;
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .build()
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let lock_key = lock_key(&self.schema);
        {
            let mut client = pool.get().await.map_err(|e| match e {
                deadpool_postgres::PoolError::Backend(source) => StoreError::Backend(Box::new(
                    PostgresConnectError::classify(target.clone(), tls_mode, source),
                )),
                other => pool_error(other),
            })?;
            schema::migrate(&mut client, &self.schema, lock_key).await?;
        }
        let q = quote_ident(&self.schema);
        let sql = Sql {
            append: format!("SELECT {q}.append_events($1, $2, $3, $4, $5, $6, $7, $8)"),
            find_event: format!(
                "SELECT event_id, stream_id, version FROM {q}.events \
                 WHERE tenant = $1 AND event_id = ANY ($2)"
            ),
            stream_from: format!(
                "SELECT {EVENT_COLUMNS} FROM {q}.events WHERE tenant = $1 AND stream_id = $2 \
                 AND version >= $3 ORDER BY version LIMIT $4"
            ),
            stream_row: format!(
                "SELECT version, first_version, deleted FROM {q}.streams \
                 WHERE tenant = $1 AND stream_id = $2"
            ),
            stream_row_lock: format!(
                "SELECT version, first_version, deleted FROM {q}.streams \
                 WHERE tenant = $1 AND stream_id = $2 FOR UPDATE"
            ),
            // One statement, so one snapshot: the stream's first version (truncation)
            // and its events agree, without a transaction's extra round trips. The events
            // table drives the query, so the rows come in primary-key order (an index
            // scan, no sort); the stream row is a one-time subquery.
            read_stream: format!(
                "SELECT (SELECT s.first_version FROM {q}.streams s \
                 WHERE s.tenant = $1 AND s.stream_id = $2), {STREAM_EVENT_COLUMNS} \
                 FROM {q}.events e WHERE e.tenant = $1 AND e.stream_id = $2 \
                 AND e.version >= $3 ORDER BY e.version"
            ),
            load_snapshot: format!(
                "SELECT stream_version, snapshot_version, codec, taken_at, payload \
                 FROM {q}.snapshots WHERE tenant = $1 AND stream_id = $2"
            ),
            save_snapshot: format!(
                "INSERT INTO {q}.snapshots AS s (tenant, stream_id, stream_version, \
                 snapshot_version, codec, taken_at, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, stream_id) DO UPDATE SET \
                 stream_version = excluded.stream_version, \
                 snapshot_version = excluded.snapshot_version, codec = excluded.codec, \
                 taken_at = excluded.taken_at, payload = excluded.payload \
                 WHERE excluded.stream_version >= s.stream_version"
            ),
            read_all: format!(
                "SELECT {EVENT_COLUMNS}, {FINAL} FROM {q}.events {} \
                 WHERE tenant = $1 AND position >= $2 ORDER BY position LIMIT $3",
                horizon(&q)
            ),
            head: format!(
                "SELECT position, {FINAL} FROM {q}.events {} \
                 WHERE tenant = $1 ORDER BY position DESC LIMIT 1",
                horizon(&q)
            ),
            safe_head: format!(
                "SELECT coalesce(max(position), 0) FROM {q}.events {} \
                 WHERE tenant = $1 AND {FINAL}",
                horizon(&q)
            ),
        };
        let views = views::ViewSql::new(&q);
        Ok(PostgresEventStore {
            inner: Arc::new(Inner {
                pool,
                schema: self.schema,
                quoted: q,
                tenant: self.tenant,
                read_wait: self.read_wait,
                sql,
                views,
                commits: tokio::sync::watch::Sender::new(0),
                sql_migrated: std::sync::Mutex::default(),
            }),
        })
    }
}

/// Every hot statement, prepared once per connection (`prepare_cached`), so that each
/// call is one round trip (a SQL string would be parsed and described first: two).
struct Sql {
    append: String,
    find_event: String,
    stream_from: String,
    stream_row: String,
    stream_row_lock: String,
    read_stream: String,
    load_snapshot: String,
    save_snapshot: String,
    read_all: String,
    head: String,
    safe_head: String,
}

/// Whether an event row is final (see the module docs): its transaction is below the
/// snapshot's xmin, or it lies at or below the floor of a sealed restore epoch.
const FINAL: &str = "(tx < f.horizon OR position <= f.floor_pos)";

/// The join that gives [`FINAL`] its `f.horizon` (the snapshot's xmin) and `f.floor_pos`
/// (the highest floor of an epoch whose bump is below the horizon, else 0).
fn horizon(quoted_schema: &str) -> String {
    format!(
        "CROSS JOIN (SELECT h.horizon, coalesce((SELECT max(floor_position) FROM \
         {quoted_schema}.epochs WHERE bump_tx < h.horizon), 0) AS floor_pos \
         FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon) h) f"
    )
}

struct Inner {
    pool: Pool,
    schema: String,
    quoted: String,
    tenant: String,
    read_wait: Duration,
    sql: Sql,
    views: views::ViewSql,
    /// The highest position committed through this store object ([`EventStore::commit_notifier`]).
    commits: tokio::sync::watch::Sender<u64>,
    /// The projections writing their own SQL whose migration this store object has
    /// committed (see [`views`]).
    sql_migrated: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// An [`EventStore`] on PostgreSQL; cheap to clone (one shared pool).
#[derive(Clone)]
pub struct PostgresEventStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEventStore")
            .field("schema", &self.inner.schema)
            .field("tenant", &self.inner.tenant)
            .finish_non_exhaustive()
    }
}

/// What [`PostgresEventStore::health`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The backend whose transaction holds the xmin horizon back the longest, if any
    /// other backend has an open transaction with an xid or a snapshot: its pid, how long
    /// its transaction has run, its state and query.
    pub oldest_transaction: Option<BlockingBackend>,
}

/// A backend holding the global log's horizon back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingBackend {
    /// `pg_stat_activity.pid`.
    pub pid: i32,
    /// How long its transaction has been open.
    pub transaction_age: Duration,
    /// `pg_stat_activity.state`.
    pub state: String,
    /// `pg_stat_activity.query` (its last statement).
    pub query: String,
}

impl PostgresEventStore {
    /// Connects with default options ([`PostgresOptions::new`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PostgresOptions::new(url).connect().await
    }

    /// The schema version this build migrates to.
    pub const SCHEMA_VERSION: i32 = 3;

    /// The schema name (unquoted).
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The connection pool, for tools and tests.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Names the backend whose open transaction holds the readers' horizon back the
    /// longest (a long transaction anywhere in the cluster stalls `read_all`).
    pub async fn health(&self) -> Result<Health, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT pid, extract(epoch FROM now() - xact_start)::float8, \
                 coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity \
                 WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) \
                 AND pid <> pg_backend_pid() AND xact_start IS NOT NULL \
                 ORDER BY xact_start LIMIT 1",
                &[],
            )
            .await
            .map_err(pg_error("checking pg_stat_activity"))?;
        Ok(Health {
            oldest_transaction: row.map(|r| BlockingBackend {
                pid: r.get(0),
                transaction_age: Duration::from_secs_f64(r.get::<_, f64>(1).max(0.0)),
                state: r.get(2),
                query: r.get(3),
            }),
        })
    }

    /// Administrator call, **after restoring a dump**: starts a new restore epoch and
    /// returns its number. Every event stored so far (restored rows carry transaction ids
    /// of the old cluster, meaningless here) then counts as final for readers, as soon as
    /// every transaction that claimed positions before the bump has ended. Safe to call
    /// at any time and more than once; writers may be running. Needs EXECUTE on
    /// `bump_epoch()` and the owner's rights on `epochs` and the sequence (the schema
    /// owner, not the writer role).
    pub async fn bump_epoch(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_one(&format!("SELECT {}.bump_epoch()", self.inner.quoted), &[])
            .await
            .map_err(pg_error("bumping the restore epoch"))?
            .get(0))
    }

    /// Administrator call: grants `role` what an application writing and reading through
    /// the store needs, and nothing more; events can be inserted and read but never
    /// updated or deleted. The statements (see the [module docs](self)):
    ///
    /// ```sql
    /// GRANT USAGE ON SCHEMA s TO role;
    /// GRANT SELECT, INSERT ON s.events TO role;
    /// GRANT SELECT, INSERT, UPDATE ON s.streams, s.snapshots TO role;
    /// GRANT SELECT ON s.cqrs_schema, s.epochs TO role;
    /// GRANT USAGE ON SEQUENCE s.event_positions TO role;
    /// GRANT EXECUTE ON FUNCTION s.append_events(...), s.claim_positions(integer) TO role;
    /// GRANT SELECT, INSERT, UPDATE, DELETE ON s.views, s.projections, s.dead_letters TO role;
    /// ```
    ///
    /// `role` must match `^[a-z_][a-z0-9_]{0,62}$` and exist.
    pub async fn grant_writer(&self, role: &str) -> Result<(), StoreError> {
        if !valid_identifier(role) {
            return Err(StoreError::Backend(
                format!("invalid role name `{role}`: it must match ^[a-z_][a-z0-9_]{{0,62}}$")
                    .into(),
            ));
        }
        let s = &self.inner.quoted;
        let r = quote_ident(role);
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA {s} TO {r};
                 GRANT SELECT, INSERT ON {s}.events TO {r};
                 GRANT SELECT, INSERT, UPDATE ON {s}.streams, {s}.snapshots TO {r};
                 GRANT SELECT ON {s}.cqrs_schema, {s}.epochs TO {r};
                 GRANT USAGE ON SEQUENCE {s}.event_positions TO {r};
                 GRANT EXECUTE ON FUNCTION {s}.append_events(text, text, bigint, uuid[], \
                     text[], integer[], jsonb[], bytea[]), {s}.claim_positions(integer) TO {r};
                 GRANT SELECT, INSERT, UPDATE, DELETE \
                     ON {s}.views, {s}.projections, {s}.dead_letters TO {r};"
            ))
            .await
            .map_err(pg_error("granting the writer role"))?;
        Ok(())
    }

    /// Administrator call: drops the store's schema and everything in it (the events of
    /// every tenant, snapshots, views, the tables of projections that write their own SQL
    /// there). Irreversible; for tests and throwaway demos that work in a schema of their
    /// own. The store object is unusable afterwards.
    ///
    /// ```no_run
    /// use cqrs_core::store::postgres::PostgresOptions;
    /// # async fn run() -> Result<(), cqrs_core::StoreError> {
    /// let store = PostgresOptions::new("postgres://postgres@127.0.0.1/test")
    ///     .schema("demo_run_1")
    ///     .connect()
    ///     .await?;
    /// // ... the demo ...
    /// store.drop_schema().await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.inner.quoted))
            .await
            .map_err(pg_error("dropping the store's schema"))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.inner.quoted)
    }

    async fn stream_row(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        stream_id: &str,
        lock: bool,
    ) -> Result<Option<(u64, u64, bool)>, StoreError> {
        let sql = if lock {
            &self.inner.sql.stream_row_lock
        } else {
            &self.inner.sql.stream_row
        };
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let row = client
            .query_opt(&statement, &[&self.inner.tenant, &stream_id])
            .await
            .map_err(pg_error("reading a stream"))?;
        Ok(row.map(|r| {
            (
                r.get::<_, i64>(0).max(0) as u64,
                r.get::<_, i64>(1).max(1) as u64,
                r.get::<_, bool>(2),
            )
        }))
    }

    /// The re-send check: the batch's first event is stored; the stored run from there
    /// must equal the batch.
    async fn replay_of(
        &self,
        client: &deadpool_postgres::Object,
        stream_id: &str,
        events: &[NewEvent],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let find = client
            .prepare_cached(&self.inner.sql.find_event)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let stored = client
            .query(&find, &[&self.inner.tenant, &ids])
            .await
            .map_err(pg_error("looking up event ids"))?;
        // The first event of the batch (in batch order) that is stored.
        let found = stored
            .iter()
            .filter_map(|row| {
                let id: Uuid = row.get(0);
                let j = ids.iter().position(|x| *x == id)?;
                Some((j, row.get::<_, String>(1), row.get::<_, i64>(2)))
            })
            .min_by_key(|(j, _, _)| *j);
        let Some((j, stored_stream, first)) = found else {
            return Ok(None);
        };
        super::check_resend_start(stream_id, events, j, &stored_stream)?;
        let stream_from = client
            .prepare_cached(&self.inner.sql.stream_from)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let rows = client
            .query(
                &stream_from,
                &[
                    &self.inner.tenant,
                    &stream_id,
                    &first,
                    &(events.len() as i64),
                ],
            )
            .await
            .map_err(pg_error("reading the events of a re-sent batch"))?;
        let mut decoder = RowDecoder::default();
        super::match_resend(stream_id, events, |k| {
            rows.get(k).map(|r| decoder.decode(r, 0)).transpose()
        })
    }

    /// Reads rows in position order and keeps the final prefix (see the module docs),
    /// waiting up to `read_wait` for held-back events.
    async fn final_prefix(&self, from: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.read_all)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let deadline = Instant::now() + self.inner.read_wait;
        let mut pause = Duration::from_micros(500);
        loop {
            let rows = client
                .query(&statement, &[&self.inner.tenant, &from, &limit])
                .await
                .map_err(pg_error("reading the global log"))?;
            let final_len = rows.iter().take_while(|r| r.get::<_, bool>(9)).count();
            if final_len == rows.len() || Instant::now() >= deadline {
                let mut decoder = RowDecoder::default();
                return rows[..final_len]
                    .iter()
                    .map(|r| decoder.decode(r, 0))
                    .collect();
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The events of `stream_id` from `from_version` on, handed to `visit` one by one as
    /// the rows arrive, in one statement (one snapshot, one round trip).
    async fn stream_events(
        &self,
        stream_id: &str,
        from_version: u64,
        mut visit: impl FnMut(RecordedEvent) -> ControlFlow<()> + Send,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.read_stream)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let params: [&(dyn ToSql + Sync); 3] = [&self.inner.tenant, &stream_id, &from];
        let rows = client
            .query_raw(&statement, params)
            .await
            .map_err(pg_error("reading a stream"))?;
        futures_util::pin_mut!(rows);
        let mut decoder = RowDecoder {
            stream: Some(Arc::from(stream_id)),
            ..RowDecoder::default()
        };
        let mut first = true;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(pg_error("reading a stream"))?
        {
            if first {
                first = false;
                // The subquery is NULL only if the stream row is missing, which a stream
                // with events never is; 1 then is the safe reading.
                let first_version = row.get::<_, Option<i64>>(0).unwrap_or(1).max(1) as u64;
                if from_version.max(1) < first_version {
                    return Err(StoreError::StreamTruncated {
                        stream_id: stream_id.to_owned(),
                        first_version,
                    });
                }
            }
            if visit(decoder.decode(&row, 1)?).is_break() {
                // Dropping the stream discards the remaining rows.
                return Ok(());
            }
        }
        if !first {
            return Ok(());
        }
        // No event at or after `from_version`: an unknown stream, a deleted one (its
        // events are gone), one truncated past it, or simply nothing new.
        match self.stream_row(&client, stream_id, false).await? {
            Some((_, _, true)) => Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            }),
            Some((version, first_version, _))
                if from_version.max(1) < first_version && from_version.max(1) <= version =>
            {
                Err(StoreError::StreamTruncated {
                    stream_id: stream_id.to_owned(),
                    first_version,
                })
            }
            _ => Ok(()),
        }
    }

    /// Appends a retention marker in `tx` at `position` (claimed at its start).
    async fn append_marker(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        position: i64,
        marker: &RetentionEvent,
    ) -> Result<u64, StoreError> {
        let version = self
            .stream_row(tx, RETENTION_STREAM, true)
            .await?
            .map_or(0, |r| r.0)
            + 1;
        let event = marker.to_new_event();
        let metadata = Json(&event.metadata);
        tx.execute(
            &format!(
                "INSERT INTO {} (tenant, position, stream_id, version, event_id, event_type, \
                 schema_version, metadata, payload, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp())",
                self.table("events")
            ),
            &[
                &self.inner.tenant,
                &position,
                &RETENTION_STREAM,
                &(version as i64),
                &event.event_id,
                &&*event.event_type,
                &(event.schema_version as i32),
                &metadata,
                &&event.payload[..],
            ],
        )
        .await
        .map_err(pg_error("recording a retention marker"))?;
        tx.execute(
            &format!(
                "INSERT INTO {} (tenant, stream_id, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant, stream_id) DO UPDATE SET version = excluded.version",
                self.table("streams")
            ),
            &[&self.inner.tenant, &RETENTION_STREAM, &(version as i64)],
        )
        .await
        .map_err(pg_error("recording a retention marker"))?;
        Ok(position as u64)
    }

    /// Starts a write transaction and claims one position first (the claim must be the
    /// transaction's first write; see the module docs).
    /// Removes the events of `stream_id` before version `before` and moves the stream's
    /// first version up to it (never down), in `tx`; returns how many were removed.
    async fn cut_prefix(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        stream_id: &str,
        before: i64,
    ) -> Result<u64, StoreError> {
        let t = &self.inner.tenant;
        let removed = tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE tenant = $1 AND stream_id = $2 AND version < $3",
                    self.table("events")
                ),
                &[t, &stream_id, &before],
            )
            .await
            .map_err(pg_error("removing a stream's oldest events"))?;
        tx.execute(
            &format!(
                "UPDATE {} SET first_version = greatest(first_version, $3::bigint) \
                 WHERE tenant = $1 AND stream_id = $2",
                self.table("streams")
            ),
            &[t, &stream_id, &before],
        )
        .await
        .map_err(pg_error("recording a stream's first version"))?;
        Ok(removed)
    }

    /// Ends a retention operation: appends its `marker` to the log (at the claimed
    /// `position`), commits, and wakes the commit notifier.
    async fn commit_retention(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        position: i64,
        removed: u64,
        marker: Option<RetentionEvent>,
        doing: &'static str,
    ) -> Result<RetentionOutcome, StoreError> {
        let marker_position = match &marker {
            Some(marker) => Some(self.append_marker(&tx, position, marker).await?),
            None => None,
        };
        tx.commit().await.map_err(pg_error(doing))?;
        if let Some(position) = marker_position {
            self.notify_commit(position);
        }
        Ok(RetentionOutcome {
            removed,
            marker_position,
        })
    }

    async fn begin_claimed<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
    ) -> Result<(deadpool_postgres::Transaction<'c>, i64), StoreError> {
        let tx = client
            .transaction()
            .await
            .map_err(pg_error("starting a transaction"))?;
        let positions: Vec<i64> = tx
            .query_one(
                &format!("SELECT {}.claim_positions(1)", self.inner.quoted),
                &[],
            )
            .await
            .map_err(pg_error("claiming a position"))?
            .get(0);
        let position = positions
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend("claim_positions(1) returned no position".into()))?;
        Ok((tx, position))
    }

    /// Appends `events`, and with `projections` applies them in the same transaction. The
    /// retry loop, the re-send check and the conflict report are the same for both.
    async fn append_with(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: &[Arc<dyn Projection>],
    ) -> Result<AppendOutcome, StoreError> {
        validate_batch(stream_id, &events)?;
        let inline = views::Inline::new(projections)?;
        let args = AppendArgs::new(&self.inner.tenant, stream_id, expected, &events);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.append)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let run = if inline.is_empty() {
                match client.query_one(&statement, &args.params()).await {
                    Ok(row) => AppendStatus::parse(&row).map_err(AttemptError::Store),
                    Err(e) => Err(AttemptError::Pg(e)),
                }
            } else {
                self.append_inline(&client, &statement, &args, &events, &inline)
                    .await
            };
            let error = match run {
                Ok(AppendStatus::Written(outcome)) => {
                    if let Some(last) = outcome.positions.last() {
                        self.notify_commit(*last);
                    }
                    return Ok(outcome);
                }
                Ok(AppendStatus::Deleted) => {
                    return Err(StoreError::StreamDeleted {
                        stream_id: stream_id.to_owned(),
                    });
                }
                Ok(AppendStatus::Conflict(version)) => {
                    // The stream moved on: either someone else wrote, or this very batch
                    // was committed before (a retry after an ambiguous commit).
                    if let Some(outcome) = self.replay_of(&client, stream_id, &events).await? {
                        return Ok(outcome);
                    }
                    return Err(StoreError::Concurrency {
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual: ActualVersion((version > 0).then_some(version as u64)),
                    });
                }
                Err(AttemptError::Store(e)) => return Err(e),
                Err(AttemptError::Pg(e)) => e,
            };
            if is_event_id_violation(&error) {
                // An event id of the batch is stored: a re-send, or a clash.
                match self.replay_of(&client, stream_id, &events).await? {
                    Some(outcome) => return Ok(outcome),
                    // Removed meanwhile (retention), or committed by a racing
                    // transaction that then rolled back: try again.
                    None if attempt < MAX_APPEND_ATTEMPTS => continue,
                    None => {
                        return Err(StoreError::Backend(
                            "an event id kept appearing and disappearing".into(),
                        ));
                    }
                }
            }
            if retryable(&error) {
                if attempt < MAX_APPEND_ATTEMPTS {
                    // A racing append of the same versions (or, with inline projections,
                    // a deadlock, or a document another append created meanwhile): run
                    // again, and see the conflict (or the re-send, or the document).
                    continue;
                }
                let actual = self.stream_version(stream_id).await?;
                return Err(StoreError::Concurrency {
                    stream_id: stream_id.to_owned(),
                    expected,
                    actual: ActualVersion(actual),
                });
            }
            return Err(pg_error("appending")(error));
        }
    }

    /// Tells [`EventStore::commit_notifier`]'s receivers that `position` is committed.
    fn notify_commit(&self, position: u64) {
        self.inner.commits.send_if_modified(|head| {
            let higher = position > *head;
            if higher {
                *head = position;
            }
            higher
        });
    }
}

/// The parameters of `append_events`, encoded once for every attempt.
struct AppendArgs<'a> {
    tenant: &'a str,
    stream_id: &'a str,
    expected: i64,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    /// Serialised by the client straight into the `jsonb[]` parameter: no intermediate
    /// `serde_json::Value` per event.
    metadata: Vec<Json<&'a Metadata>>,
    payloads: Vec<&'a [u8]>,
}

impl<'a> AppendArgs<'a> {
    fn new(
        tenant: &'a str,
        stream_id: &'a str,
        expected: ExpectedVersion,
        events: &'a [NewEvent],
    ) -> Self {
        Self {
            tenant,
            stream_id,
            expected: match expected {
                ExpectedVersion::Any => -1,
                ExpectedVersion::NoStream => -2,
                ExpectedVersion::StreamExists => -3,
                ExpectedVersion::Exact(v) => i64::try_from(v).unwrap_or(i64::MAX),
            },
            ids: events.iter().map(|e| e.event_id).collect(),
            types: events.iter().map(|e| &*e.event_type).collect(),
            schema_versions: events.iter().map(|e| e.schema_version as i32).collect(),
            metadata: events.iter().map(|e| Json(&e.metadata)).collect(),
            payloads: events.iter().map(|e| &e.payload[..]).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.tenant,
            &self.stream_id,
            &self.expected,
            &self.ids,
            &self.types,
            &self.schema_versions,
            &self.metadata,
            &self.payloads,
        ]
    }
}

/// What one run of `append_events` did.
enum AppendStatus {
    /// The batch is written (committed, for a plain append).
    Written(AppendOutcome),
    /// The stream is deleted.
    Deleted,
    /// The stream is not at the expected version; it is at this one (0: no stream).
    Conflict(i64),
}

impl AppendStatus {
    /// Reads `append_events`' result: `[status, version, recorded_at µs, position...]`.
    fn parse(row: &Row) -> Result<Self, StoreError> {
        let result: Vec<i64> = row
            .try_get(0)
            .map_err(pg_error("reading the result of append_events"))?;
        let malformed = || {
            StoreError::Backend(
                format!("append_events returned a malformed result {result:?}").into(),
            )
        };
        let [status, version, micros, ref positions @ ..] = result[..] else {
            return Err(malformed());
        };
        match status {
            1 => {
                let recorded_at = u64::try_from(micros)
                    .ok()
                    .and_then(|us| SystemTime::UNIX_EPOCH.checked_add(Duration::from_micros(us)))
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                Ok(Self::Written(AppendOutcome {
                    stream_version: u64::try_from(version).map_err(|_| malformed())?,
                    positions: positions
                        .iter()
                        .map(|p| u64::try_from(*p).map_err(|_| malformed()))
                        .collect::<Result<_, _>>()?,
                    recorded_at,
                    deduplicated: false,
                }))
            }
            2 => Ok(Self::Deleted),
            3 => Ok(Self::Conflict(version)),
            other => Err(StoreError::Backend(
                format!("append_events returned an unknown status {other}").into(),
            )),
        }
    }
}

/// Why one attempt of an append failed: a PostgreSQL error the retry loop sorts (a race,
/// a re-send), or a final one.
enum AttemptError {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_with(stream_id, expected, events, &[]).await
    }

    /// The append and the inline projections' documents in one transaction, in two round
    /// trips, locking only the documents the events change (see the [module docs](self));
    /// one if no projection handles the events, and without projections, a plain
    /// [`append`](EventStore::append). Inline projections keep no checkpoint.
    async fn append_projected(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: &[Arc<dyn Projection>],
    ) -> Result<AppendOutcome, StoreError> {
        self.append_with(stream_id, expected, events, projections)
            .await
    }

    /// Updated after every append (plain or with inline projections) and retention marker
    /// committed through this store object or one of its clones.
    fn commit_notifier(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.inner.commits.subscribe())
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        self.stream_events(stream_id, from_version, |event| {
            events.push(event);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(events)
    }

    /// Decodes the rows as they arrive (the runtime's load path): the client decodes
    /// while the server still sends.
    async fn read_stream_with(
        &self,
        stream_id: &str,
        from_version: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.stream_events(stream_id, from_version, |event| visit(&event))
            .await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.final_prefix(
            i64::try_from(from_position).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        match self.stream_row(&client, stream_id, false).await? {
            Some((_, _, true)) => Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            }),
            Some((v, _, _)) => Ok(Some(v).filter(|v| *v > 0)),
            None => Ok(None),
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.head)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let deadline = Instant::now() + self.inner.read_wait;
        loop {
            let row = client
                .query_opt(&statement, &[&self.inner.tenant])
                .await
                .map_err(pg_error("reading the head position"))?;
            match row {
                None => return Ok(0),
                Some(r) if r.get::<_, bool>(1) => return Ok(r.get::<_, i64>(0) as u64),
                Some(r) if Instant::now() >= deadline => {
                    // Held back: the head is below the newest event; the final prefix's
                    // last position is a safe answer.
                    let _ = r;
                    let safe = client
                        .query_one(&self.inner.sql.safe_head, &[&self.inner.tenant])
                        .await
                        .map_err(pg_error("reading the head position"))?;
                    return Ok(safe.get::<_, i64>(0) as u64);
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    async fn delete_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        if stream_id.starts_with('$') {
            return Err(StoreError::InvalidBatch {
                stream_id: stream_id.to_owned(),
                reason: "stream ids starting with `$` are reserved for the store".into(),
            });
        }
        let mut client = self.client().await?;
        let (tx, position) = self.begin_claimed(&mut client).await?;
        let row = self.stream_row(&tx, stream_id, true).await?;
        if row.is_some_and(|r| r.2) {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        let current = row.map(|r| r.0).filter(|v| *v > 0);
        let missing = current.is_none() && expected != ExpectedVersion::Any;
        if missing || !expected.matches(current) {
            return Err(StoreError::Concurrency {
                stream_id: stream_id.to_owned(),
                expected,
                actual: ActualVersion(current),
            });
        }
        let t = &self.inner.tenant;
        let removed = tx
            .execute(
                &format!(
                    "DELETE FROM {} WHERE tenant = $1 AND stream_id = $2",
                    self.table("events")
                ),
                &[t, &stream_id],
            )
            .await
            .map_err(pg_error("deleting a stream's events"))?;
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE tenant = $1 AND stream_id = $2",
                self.table("snapshots")
            ),
            &[t, &stream_id],
        )
        .await
        .map_err(pg_error("deleting a stream's snapshot"))?;
        tx.execute(
            &format!(
                "INSERT INTO {} (tenant, stream_id, version, deleted) VALUES ($1, $2, 0, true) \
                 ON CONFLICT (tenant, stream_id) DO UPDATE SET deleted = true",
                self.table("streams")
            ),
            &[t, &stream_id],
        )
        .await
        .map_err(pg_error("tombstoning a stream"))?;
        let marker = RetentionEvent::StreamDeleted {
            stream_id: stream_id.to_owned(),
            version: current.unwrap_or(0),
            removed,
        };
        self.commit_retention(tx, position, removed, Some(marker), "committing a deletion")
            .await
    }

    async fn truncate_stream(
        &self,
        stream_id: &str,
        before_version: u64,
    ) -> Result<RetentionOutcome, StoreError> {
        let nothing = RetentionOutcome {
            removed: 0,
            marker_position: None,
        };
        let mut client = self.client().await?;
        let (tx, position) = self.begin_claimed(&mut client).await?;
        let Some((version, first_version, deleted)) = self.stream_row(&tx, stream_id, true).await?
        else {
            return Ok(nothing);
        };
        if !check_truncate(stream_id, before_version, version, first_version, deleted)? {
            return Ok(nothing);
        }
        let removed = self
            .cut_prefix(&tx, stream_id, before_version as i64)
            .await?;
        let marker = (removed > 0).then(|| RetentionEvent::StreamTruncated {
            stream_id: stream_id.to_owned(),
            before_version,
            removed,
        });
        self.commit_retention(tx, position, removed, marker, "committing a truncation")
            .await
    }

    async fn expire(&self, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        let mut client = self.client().await?;
        let (tx, position) = self.begin_claimed(&mut client).await?;
        let t = &self.inner.tenant;
        // Per stream, everything up to its newest expired event goes (a prefix, as a
        // truncation), so streams stay gapless even if the clock stepped back.
        let cuts = tx
            .query(
                &format!(
                    "SELECT stream_id, max(version) FROM {} WHERE tenant = $1 \
                     AND recorded_at < $2 AND left(stream_id, 1) <> '$' GROUP BY stream_id",
                    self.table("events")
                ),
                &[t, &recorded_before],
            )
            .await
            .map_err(pg_error("finding expired events"))?;
        let mut removed = 0u64;
        for cut in &cuts {
            let stream_id: String = cut.get(0);
            let last: i64 = cut.get(1);
            removed += self.cut_prefix(&tx, &stream_id, last + 1).await?;
        }
        let marker = (removed > 0).then(|| RetentionEvent::EventsExpired {
            recorded_before_ms: recorded_before
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            removed,
        });
        self.commit_retention(tx, position, removed, marker, "committing an expiry")
            .await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let stream_id = &*snapshot.stream_id;
        let client = self.client().await?;
        if self
            .stream_row(&client, stream_id, false)
            .await?
            .is_some_and(|r| r.2)
        {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        let statement = client
            .prepare_cached(&self.inner.sql.save_snapshot)
            .await
            .map_err(pg_error("preparing a statement"))?;
        client
            .execute(
                &statement,
                &[
                    &self.inner.tenant,
                    &stream_id,
                    &i64::try_from(snapshot.stream_version).unwrap_or(i64::MAX),
                    &(snapshot.snapshot_version as i32),
                    &&*snapshot.codec,
                    &snapshot.taken_at,
                    &&snapshot.payload[..],
                ],
            )
            .await
            .map_err(pg_error("saving a snapshot"))?;
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.load_snapshot)
            .await
            .map_err(pg_error("preparing a statement"))?;
        let row = client
            .query_opt(&statement, &[&self.inner.tenant, &stream_id])
            .await
            .map_err(pg_error("reading a snapshot"))?;
        row.map(|r| -> Result<Snapshot, StoreError> {
            let bad = |what: &str| {
                StoreError::Backend(format!("snapshot of `{stream_id}`: {what}").into())
            };
            Ok(Snapshot {
                stream_id: Arc::from(stream_id),
                stream_version: u64::try_from(
                    r.try_get::<_, i64>(0)
                        .map_err(|_| bad("bad stream_version"))?,
                )
                .map_err(|_| bad("negative stream_version"))?,
                snapshot_version: r
                    .try_get::<_, i32>(1)
                    .map_err(|_| bad("bad snapshot_version"))?
                    as u32,
                codec: Arc::from(r.try_get::<_, &str>(2).map_err(|_| bad("bad codec"))?),
                taken_at: r.try_get(3).map_err(|_| bad("bad taken_at"))?,
                payload: bytes::Bytes::copy_from_slice(
                    r.try_get::<_, &[u8]>(4).map_err(|_| bad("bad payload"))?,
                ),
            })
        })
        .transpose()
    }
}

/// Whether the schema name is acceptable: `^[a-z_][a-z0-9_]{0,62}$`.
pub fn valid_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// Quotes a validated identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisory-lock key of a schema's position claim (FNV-1a of the name).
fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"cqrs-positions:".iter().chain(schema.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// How often an append runs again after a race before giving up.
const MAX_APPEND_ATTEMPTS: u32 = 50;

/// Whether an append failed because an event id of the batch is already stored (the
/// unique key `events_event_id_unique`).
fn is_event_id_violation(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        db.code().code() == "23505" && db.constraint() == Some("events_event_id_unique")
    })
}

/// Whether an append failed in a way a re-run resolves: a unique violation (a racing
/// append, or a document an inline append inserts that another created meanwhile), the
/// stream moving under us (`CQ002`), a serialization failure or deadlock.
fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "23505" | "CQ002" | "40001" | "40P01"))
}

/// The text of a `jsonb` (or `json`) column, unparsed.
struct JsonbText<'a>(&'a [u8]);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonbText<'a> {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == tokio_postgres::types::Type::JSON {
            return Ok(Self(raw));
        }
        // Binary jsonb: a version byte (1), then the JSON text.
        match raw.split_first() {
            Some((1, text)) => Ok(Self(text)),
            _ => Err("unsupported jsonb format version".into()),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        matches!(
            *ty,
            tokio_postgres::types::Type::JSONB | tokio_postgres::types::Type::JSON
        )
    }
}

/// Decodes event rows (columns [`EVENT_COLUMNS`] from `base` on); a damaged column is a
/// [`StoreError::Backend`] naming the row, never a panic. Shares the stream id and the
/// event-type names between the rows of one read, so that a stream of 10,000 events does
/// not allocate 20,000 strings.
#[derive(Default)]
struct RowDecoder {
    /// The stream every row belongs to, when the query is for one stream.
    stream: Option<Arc<str>>,
    /// The event-type names seen so far (a handful per read).
    types: Vec<Arc<str>>,
}

impl RowDecoder {
    fn decode(&mut self, row: &Row, base: usize) -> Result<RecordedEvent, StoreError> {
        let position: i64 = row.try_get(base).map_err(pg_error("reading a position"))?;
        let stream_id = match &self.stream {
            Some(known) => known.clone(),
            None => Arc::from(
                row.try_get::<_, &str>(base + 1)
                    .map_err(pg_error("reading a stream id"))?,
            ),
        };
        let bad = |what: String| {
            StoreError::Backend(
                format!("event at position {position} in stream `{stream_id}`: {what}").into(),
            )
        };
        let version: i64 = row
            .try_get(base + 2)
            .map_err(|e| bad(format!("version: {e}")))?;
        let event_id: Uuid = row
            .try_get(base + 3)
            .map_err(|e| bad(format!("event id: {e}")))?;
        let type_name: &str = row
            .try_get(base + 4)
            .map_err(|e| bad(format!("event type: {e}")))?;
        let event_type = match self.types.iter().find(|t| ***t == *type_name) {
            Some(known) => known.clone(),
            None => {
                let new: Arc<str> = Arc::from(type_name);
                if self.types.len() < 64 {
                    self.types.push(new.clone());
                }
                new
            }
        };
        let schema_version: i32 = row
            .try_get(base + 5)
            .map_err(|e| bad(format!("schema version: {e}")))?;
        let JsonbText(metadata) = row
            .try_get(base + 6)
            .map_err(|e| bad(format!("metadata: {e}")))?;
        // Most events carry no metadata: skip the parser for `{}`.
        let metadata: Metadata = if metadata == b"{}" {
            Metadata::default()
        } else {
            serde_json::from_slice(metadata).map_err(|e| bad(format!("metadata: {e}")))?
        };
        let payload: &[u8] = row
            .try_get(base + 7)
            .map_err(|e| bad(format!("payload: {e}")))?;
        let recorded_at: SystemTime = row
            .try_get(base + 8)
            .map_err(|e| bad(format!("recorded_at: {e}")))?;
        Ok(RecordedEvent {
            event_id,
            version: u64::try_from(version)
                .map_err(|_| bad(format!("negative version {version}")))?,
            position: u64::try_from(position).map_err(|_| bad("negative position".into()))?,
            recorded_at,
            event_type,
            schema_version: u32::try_from(schema_version)
                .map_err(|_| bad(format!("negative schema version {schema_version}")))?,
            metadata,
            payload: bytes::Bytes::copy_from_slice(payload),
            stream_id,
        })
    }
}

/// Why [`PostgresOptions::connect`] could not open a connection; the source of the
/// [`StoreError::Backend`] it returns (`downcast_ref::<PostgresConnectError>()`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresConnectError {
    /// No server answered: connection refused, a timeout, or the host name does not
    /// resolve. Test suites skip on this one (outside CI) and only on this one.
    #[error("PostgreSQL at {target} is unreachable: {}", full_text(source))]
    Unreachable {
        /// `host:port` (no credentials).
        target: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The TLS handshake failed or the server does not offer TLS although `sslmode`
    /// requires it.
    #[error(
        "TLS to PostgreSQL at {target} failed (sslmode={}): {}",
        mode.as_str(),
        full_text(source)
    )]
    Tls {
        /// `host:port` (no credentials).
        target: String,
        /// The `sslmode` in force.
        mode: TlsMode,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The server answered but refused the session: authentication, an unknown database
    /// or role, too many connections, …
    #[error("PostgreSQL at {target} refused the connection: {}", full_text(source))]
    Refused {
        /// `host:port` (no credentials).
        target: String,
        /// The client's error (with the server's SQLSTATE, when it sent one).
        #[source]
        source: tokio_postgres::Error,
    },
}

impl PostgresConnectError {
    /// Whether no server answered (refused, timed out, unknown host).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PostgresConnectError::Unreachable { .. })
    }

    /// Sorts a connect failure. `tokio-postgres` keeps its error kinds private; its
    /// messages for them are stable (`error connecting to server`, `timeout waiting for
    /// server`, `error performing TLS handshake`).
    fn classify(target: String, mode: TlsMode, source: tokio_postgres::Error) -> Self {
        let text = source.to_string();
        if source.code().is_none()
            && (text.starts_with("error connecting to server")
                || text.starts_with("timeout waiting for server"))
        {
            PostgresConnectError::Unreachable { target, source }
        } else if source.code().is_none() && text.starts_with("error performing TLS handshake") {
            PostgresConnectError::Tls {
                target,
                mode,
                source,
            }
        } else {
            PostgresConnectError::Refused { target, source }
        }
    }
}

/// `host:port[,host:port…]` of a configuration, without credentials.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A PostgreSQL call that failed, and what the adapter was doing.
#[derive(Debug, thiserror::Error)]
#[error("PostgreSQL failed while {doing}: {source}{}", db_detail(source))]
struct PgFailure {
    doing: &'static str,
    #[source]
    source: tokio_postgres::Error,
}

/// A client error with what its display leaves out: the server's message and SQLSTATE,
/// or the underlying cause (`Connection refused`, `server does not support TLS`, …).
fn full_text(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(_), _) => format!("{e}{}", db_detail(e)),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// The server's message and SQLSTATE, which `tokio_postgres::Error` does not display.
fn db_detail(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|db| format!(": {} (SQLSTATE {})", db.message(), db.code().code()))
        .unwrap_or_default()
}

fn pg_error(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Backend(Box::new(PgFailure { doing, source }))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Backend(format!("cannot get a PostgreSQL connection: {e}").into())
}
