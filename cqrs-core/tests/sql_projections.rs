//! Projections that write their own SQL through the transaction they are given
//! (`SqlProjection`, run through `Sql`), on SQLite and PostgreSQL, inline and async:
//! read-your-writes, a failing statement rolling the append back, exactly-once effect
//! through panics and killed runners, poison events parked, rebuilds into a new
//! generation, and the in-memory store refusing them.
//!
//! The PostgreSQL half finds its server through `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); it is skipped with a printed reason when the
//! server is unreachable, and fails instead when `CI=true`. Each test works in a schema of
//! its own and drops it.
#![cfg(feature = "sqlite")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cqrs_core::ExpectedVersion::{Exact, NoStream};
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, RunnerOptions, Sql, SqlContext, SqlProjection,
    ViewStore, aggregate_id,
};
use cqrs_core::store::memory::InMemoryEventStore;
use cqrs_core::store::sqlite::SqliteEventStore;
use cqrs_core::{EventStore, Metadata, NewEvent, RecordedEvent, StoreError};
use uuid::Uuid;

/// The total deposited per account, as rows of a `ledger` table keyed by (generation,
/// account). Each row remembers the last version applied and refuses an event that is not
/// newer: an event applied twice, or out of order, fails the projection (so a test that
/// ends without dead letters proves every event was applied exactly once, in order).
/// `Boom` fails, `Panic` panics, a total above 1,000,000 breaks the table's `CHECK`.
#[derive(Default)]
struct Ledger {
    /// Panics on about one application in this many (0: never), at pseudo-random points
    /// (seeded: the same points on every run).
    chaos_one_in: u64,
    applied: AtomicU64,
    crashes: AtomicU64,
}

impl Ledger {
    fn chaotic(one_in: u64) -> Self {
        Self {
            chaos_one_in: one_in,
            ..Self::default()
        }
    }

    fn check(&self, event: &RecordedEvent) -> Result<i64, ProjectionError> {
        match &*event.event_type {
            "Boom" => return Err(ProjectionError::Handler("boom".into())),
            "Panic" => panic!("the ledger panicked"),
            _ => {}
        }
        let n = self.applied.fetch_add(1, Ordering::Relaxed) + 1;
        if self.chaos_one_in > 0 && splitmix(n).is_multiple_of(self.chaos_one_in) {
            self.crashes.fetch_add(1, Ordering::Relaxed);
            panic!("injected crash at application {n}");
        }
        amount(event)
    }
}

/// A well-mixed hash of `n` (SplitMix64's finaliser).
fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn amount(event: &RecordedEvent) -> Result<i64, ProjectionError> {
    let value: serde_json::Value = serde_json::from_slice(&event.payload)
        .map_err(|e| ProjectionError::Handler(e.to_string()))?;
    value["amount"]
        .as_i64()
        .ok_or_else(|| ProjectionError::Handler("no amount".into()))
}

fn handler(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Handler(e.to_string())
}

fn twice(event: &RecordedEvent) -> ProjectionError {
    ProjectionError::Handler(format!(
        "event {} of `{}` applied twice or out of order",
        event.version, event.stream_id
    ))
}

#[async_trait]
impl SqlProjection for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        &*event.event_type != "Ignored"
    }

    fn migrate_sqlite(&self, conn: &rusqlite::Connection) -> Result<(), ProjectionError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ledger (
                 generation INTEGER NOT NULL, account TEXT NOT NULL,
                 total INTEGER NOT NULL CHECK (total <= 1000000),
                 events INTEGER NOT NULL, last_version INTEGER NOT NULL,
                 PRIMARY KEY (generation, account))",
        )
        .map_err(handler)
    }

    fn apply_sqlite(
        &self,
        conn: &rusqlite::Connection,
        event: &RecordedEvent,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let amount = self.check(event)?;
        let account = aggregate_id(&event.stream_id);
        let version = event.version as i64;
        let updated = conn
            .execute(
                "UPDATE ledger SET total = total + ?3, events = events + 1, last_version = ?4 \
                 WHERE generation = ?1 AND account = ?2 AND last_version < ?4",
                rusqlite::params![cx.generation, account, amount, version],
            )
            .map_err(handler)?;
        if updated == 0 {
            let inserted = conn
                .execute(
                    "INSERT INTO ledger VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT DO NOTHING",
                    rusqlite::params![cx.generation, account, amount, version],
                )
                .map_err(handler)?;
            if inserted == 0 {
                return Err(twice(event));
            }
        }
        Ok(())
    }

    #[cfg(feature = "postgres")]
    async fn migrate_postgres(
        &self,
        client: &tokio_postgres::Client,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let schema = cx.schema.expect("PostgreSQL gives the schema");
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {schema}.ledger (
                     tenant text NOT NULL, generation integer NOT NULL, account text NOT NULL,
                     total bigint NOT NULL CHECK (total <= 1000000),
                     events bigint NOT NULL, last_version bigint NOT NULL,
                     PRIMARY KEY (tenant, generation, account))"
            ))
            .await
            .map_err(handler)
    }

    #[cfg(feature = "postgres")]
    async fn apply_postgres(
        &self,
        client: &tokio_postgres::Client,
        event: &RecordedEvent,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let amount = self.check(event)?;
        let schema = cx.schema.expect("PostgreSQL gives the schema");
        let tenant = cx.tenant.expect("PostgreSQL gives the tenant");
        let generation = cx.generation as i32;
        let account = aggregate_id(&event.stream_id);
        let version = event.version as i64;
        let updated = client
            .execute(
                &format!(
                    "UPDATE {schema}.ledger SET total = total + $4, events = events + 1, \
                     last_version = $5 WHERE tenant = $1 AND generation = $2 \
                     AND account = $3 AND last_version < $5"
                ),
                &[&tenant, &generation, &account, &amount, &version],
            )
            .await
            .map_err(handler)?;
        if updated == 0 {
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO {schema}.ledger VALUES ($1, $2, $3, $4, 1, $5) \
                         ON CONFLICT DO NOTHING"
                    ),
                    &[&tenant, &generation, &account, &amount, &version],
                )
                .await
                .map_err(handler)?;
            if inserted == 0 {
                return Err(twice(event));
            }
        }
        Ok(())
    }
}

/// What the ledger table holds for one account: (total, events).
type Row = (i64, i64);

/// A store that runs SQL projections, and a way to read the ledger table.
#[async_trait]
trait LedgerStore: EventStore + ViewStore + Clone {
    async fn ledger(&self, generation: u32) -> BTreeMap<String, Row>;
}

#[async_trait]
impl LedgerStore for SqliteEventStore {
    async fn ledger(&self, generation: u32) -> BTreeMap<String, Row> {
        self.query(move |conn| {
            let exists: i64 = conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'ledger'",
                [],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Ok(BTreeMap::new());
            }
            let mut stmt =
                conn.prepare("SELECT account, total, events FROM ledger WHERE generation = ?1")?;
            let rows = stmt.query_map([generation], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
            })?;
            rows.collect()
        })
        .await
        .unwrap()
    }
}

fn deposit(amount: i64) -> NewEvent {
    typed("Deposited", amount)
}

fn typed(event_type: &'static str, amount: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        metadata: Metadata::default(),
        payload: Bytes::from(serde_json::to_vec(&serde_json::json!({ "amount": amount })).unwrap()),
    }
}

fn ledger() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(Sql::new(Ledger::default()))]
}

/// Inline: the table changes in the append's transaction (read your own write); a
/// failing handler, a panic and a broken `CHECK` each refuse the append, which leaves
/// neither events nor rows behind, and the store goes on working.
async fn inline_reads_its_write_and_rolls_back_with_the_append<S: LedgerStore>(store: S) {
    let inline = ledger();
    store
        .append_projected("account-a", NoStream, vec![deposit(5), deposit(7)], &inline)
        .await
        .unwrap();
    store
        .append_projected("account-b", NoStream, vec![deposit(1)], &inline)
        .await
        .unwrap();
    let expected = BTreeMap::from([("a".to_owned(), (12, 2)), ("b".to_owned(), (1, 1))]);
    assert_eq!(store.ledger(0).await, expected);

    let boom = typed("Boom", 0);
    let boom_id = boom.event_id;
    let refused = [
        vec![deposit(3), boom],
        vec![deposit(3), typed("Panic", 0)],
        vec![deposit(3), deposit(2_000_000)],
    ];
    for (i, events) in refused.into_iter().enumerate() {
        let failing = events[1].event_id;
        match store
            .append_projected("account-a", Exact(2), events, &inline)
            .await
        {
            Err(StoreError::Projection {
                projection,
                stream_id,
                event_id,
                source,
            }) => {
                assert_eq!(projection, "ledger");
                assert_eq!(stream_id, "account-a");
                assert_eq!(event_id, failing, "case {i}: the failing event is named");
                if failing == boom_id {
                    assert_eq!(source.to_string(), "handler failed: boom");
                }
            }
            other => panic!("case {i}: the append must be refused, got {other:?}"),
        }
        assert_eq!(store.read_stream("account-a", 0).await.unwrap().len(), 2);
        assert_eq!(store.ledger(0).await, expected, "case {i}: no row changed");
    }

    // Events it does not handle are appended without touching it.
    store
        .append_projected(
            "account-a",
            Exact(2),
            vec![typed("Ignored", 0), deposit(1)],
            &inline,
        )
        .await
        .unwrap();
    assert_eq!(store.ledger(0).await["a"], (13, 3));
}

/// Async: 2,000 events over 20 streams, the projection panicking on about one
/// application in 300 and the runner killed three times part-way: the table ends at exactly the
/// fold (the ledger refuses a duplicate, so no dead letter means each event was applied
/// once). Then a rebuild fills a new generation that equals the live one.
async fn async_reaches_the_fold_through_crashes<S: LedgerStore>(store: S) {
    let mut fold: BTreeMap<String, Row> = BTreeMap::new();
    let mut head = 0;
    for round in 0..100u64 {
        for s in 0..20u64 {
            let events = vec![deposit(((round * 31 + s * 7) % 50) as i64 + 1)];
            for e in &events {
                let entry = fold.entry(format!("{s}")).or_default();
                entry.0 += amount_of(e);
                entry.1 += 1;
            }
            let out = store
                .append(
                    &format!("account-{s}"),
                    cqrs_core::ExpectedVersion::Any,
                    events,
                )
                .await
                .unwrap();
            head = *out.positions.last().unwrap();
        }
    }
    let options = RunnerOptions {
        batch_size: 64,
        max_attempts: 1_000,
        backoff: Duration::from_millis(1),
        ..RunnerOptions::default()
    };
    let projection = Arc::new(Sql::new(Ledger::chaotic(300)));
    let runner = || {
        ProjectionRunner::from_parts(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            projection.clone(),
        )
        .options(options.clone())
        .spawn()
    };
    for stop_at in [head / 4, head / 2, head * 3 / 4] {
        let handle = runner();
        handle
            .wait_for(stop_at, Duration::from_secs(60))
            .await
            .unwrap();
        handle.abort();
    }
    let handle = runner();
    handle
        .wait_for(head, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(handle.dead_letters().await.unwrap(), vec![]);
    let state = handle.state().await.unwrap();
    assert_eq!(state.position, head);
    assert_eq!(store.ledger(state.active_generation).await, fold);

    let rebuilt = handle.rebuild().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = handle.state().await.unwrap();
        if state.active_generation == rebuilt && state.rebuilding.is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rebuild stuck at {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.ledger(rebuilt).await,
        fold,
        "the rebuilt generation equals the fold"
    );
    assert_eq!(handle.dead_letters().await.unwrap(), vec![]);
    handle.stop().await.unwrap();
}

fn amount_of(event: &NewEvent) -> i64 {
    let value: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    value["amount"].as_i64().unwrap()
}

/// A poison event is parked with its reason, later events of its stream wait behind it,
/// other streams go on, and skipping it releases them.
async fn poison_is_parked_in_stream_order<S: LedgerStore>(store: S) {
    store
        .append(
            "account-a",
            NoStream,
            vec![deposit(1), typed("Boom", 0), deposit(2)],
        )
        .await
        .unwrap();
    let out = store
        .append("account-b", NoStream, vec![deposit(10)])
        .await
        .unwrap();
    let head = out.positions[0];
    let handle = ProjectionRunner::new(store.clone(), Sql::new(Ledger::default()))
        .options(RunnerOptions {
            max_attempts: 2,
            backoff: Duration::from_millis(1),
            ..RunnerOptions::default()
        })
        .spawn();
    handle
        .wait_for(head, Duration::from_secs(30))
        .await
        .unwrap();
    let parked = handle.dead_letters().await.unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert_eq!(parked[0].reason, "handler failed: boom");
    assert_eq!(parked[0].blocked_by, None);
    assert_eq!(parked[1].blocked_by, Some(parked[0].position));
    let generation = handle.state().await.unwrap().active_generation;
    assert_eq!(
        store.ledger(generation).await,
        BTreeMap::from([("a".to_owned(), (1, 1)), ("b".to_owned(), (10, 1))])
    );
    handle.skip(parked[0].event_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !handle.dead_letters().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parked events stayed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.ledger(generation).await["a"], (3, 2));
    handle.stop().await.unwrap();
}

mod sqlite {
    use super::*;

    struct TempDb(std::path::PathBuf);

    impl TempDb {
        fn new() -> (Self, SqliteEventStore) {
            let path = std::env::temp_dir().join(format!("cqrs-sqlproj-{}.db", Uuid::now_v7()));
            let store = SqliteEventStore::open(&path).unwrap();
            (Self(path), store)
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            for end in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{end}", self.0.display()));
            }
        }
    }

    #[tokio::test]
    async fn inline_reads_its_write_and_rolls_back_with_the_append() {
        let (_db, store) = TempDb::new();
        super::inline_reads_its_write_and_rolls_back_with_the_append(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_reaches_the_fold_through_crashes() {
        let (_db, store) = TempDb::new();
        super::async_reaches_the_fold_through_crashes(store).await;
    }

    #[tokio::test]
    async fn poison_is_parked_in_stream_order() {
        let (_db, store) = TempDb::new();
        super::poison_is_parked_in_stream_order(store).await;
    }

    /// The tables live in the store's file: a new store object on the file reads them.
    #[tokio::test]
    async fn the_tables_survive_reopening() {
        let (db, store) = TempDb::new();
        store
            .append_projected("account-a", NoStream, vec![deposit(4)], &ledger())
            .await
            .unwrap();
        drop(store);
        let reopened = SqliteEventStore::open(&db.0).unwrap();
        assert_eq!(reopened.ledger(0).await["a"], (4, 1));
    }
}

#[cfg(feature = "postgres")]
/// Only the PostgreSQL part of `tests/common` (`tests/common/postgres.rs`).
mod common {
    pub(crate) mod postgres;
}

#[cfg(feature = "postgres")]
mod postgres {
    use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};

    use super::*;
    use crate::common::postgres::{schema_name, url};

    async fn with_store<F, Fut>(test: F)
    where
        F: FnOnce(PostgresEventStore) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let options = PostgresOptions::new(url())
            .schema(schema_name("cqrs_sqlproj"))
            .read_wait(Duration::from_millis(200));
        common::postgres::with_store(options, test).await;
    }

    #[async_trait]
    impl LedgerStore for PostgresEventStore {
        async fn ledger(&self, generation: u32) -> BTreeMap<String, Row> {
            let client = self.pool().get().await.unwrap();
            let table = format!("{}.ledger", self.schema());
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await
                .unwrap()
                .get(0);
            if !exists {
                return BTreeMap::new();
            }
            client
                .query(
                    &format!(
                        "SELECT account, total, events FROM {table} \
                         WHERE tenant = $1 AND generation = $2"
                    ),
                    &[&self.tenant(), &(generation as i32)],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect()
        }
    }

    #[tokio::test]
    async fn inline_reads_its_write_and_rolls_back_with_the_append() {
        with_store(super::inline_reads_its_write_and_rolls_back_with_the_append).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_reaches_the_fold_through_crashes() {
        with_store(super::async_reaches_the_fold_through_crashes).await;
    }

    #[tokio::test]
    async fn poison_is_parked_in_stream_order() {
        with_store(super::poison_is_parked_in_stream_order).await;
    }
}

/// The in-memory store has no SQL: it refuses a SQL projection, inline or async, with a
/// typed error that says what to use instead, and writes nothing.
#[tokio::test]
async fn the_in_memory_store_refuses_sql_projections() {
    let store = InMemoryEventStore::new();
    let refused = store
        .append_projected("account-a", NoStream, vec![deposit(1)], &ledger())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Unsupported { operation } if operation.contains("SQL")),
        "{refused}"
    );
    assert!(store.read_stream("account-a", 0).await.unwrap().is_empty());
    store
        .append("account-a", NoStream, vec![deposit(1)])
        .await
        .unwrap();
    let runner = ProjectionRunner::new(store.clone(), Sql::new(Ledger::default()));
    let error = runner.catch_up().await.unwrap_err();
    assert!(matches!(error, StoreError::Unsupported { .. }), "{error}");
}
