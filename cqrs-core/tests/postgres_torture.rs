//! Torture tests of the PostgreSQL adapter against a real server (issue 6, item 4):
//!
//! * out-of-order commits: 16 raw writers pausing inside their transactions (5% rolled
//!   back) beside `store.append` writers, and three readers paging the global log (cold,
//!   started mid-run, restarting every 2 s) that must each see exactly the committed set,
//!   in position order, once;
//! * an ambiguous commit: the connection dies right after COMMIT is sent; re-sending the
//!   same batch through `store.append` stores exactly one copy and reports success;
//! * same-stream contention at higher counts than the conformance suite.
//!
//! Each test creates its own schema and drops it. Server from `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); skipped with a printed reason when
//! unreachable, failing instead when `CI=true`.
#![cfg(feature = "postgres")]

/// Only the PostgreSQL part of `tests/common` (`tests/common/postgres.rs`).
mod common {
    pub(crate) mod postgres;
}

use common::postgres::{connect, schema_name, url};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_core::store::{EventStore, ExpectedVersion};
use cqrs_core::{Metadata, NewEvent, RecordedEvent, StoreError};
use tokio_postgres::types::Json;
use uuid::Uuid;

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions::new(url())
        .schema(schema)
        .pool_size(24)
        .read_wait(Duration::from_millis(200))
}

async fn open(schema: &str) -> Option<PostgresEventStore> {
    connect(options(schema)).await
}

async fn drop_schema(store: &PostgresEventStore) {
    store.drop_schema().await.unwrap();
}

/// A raw connection (no pool) whose connection task the caller can abort.
async fn raw_connect() -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("raw connection");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

/// A small deterministic PRNG (xorshift64*): no extra dev-dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn event(tag: &str) -> NewEvent {
    NewEvent::new(
        "Tortured",
        1,
        format!("{{\"tag\":\"{tag}\"}}").into_bytes(),
        Metadata::default(),
    )
}

/// The statement that calls the adapter's append function inside a caller's transaction.
fn append_sql(schema: &str) -> String {
    format!("SELECT \"{schema}\".append_events($1, $2, $3, $4, $5, $6, $7, $8)")
}

/// Runs `append_events` for `events` on `client` (inside whatever transaction is open).
/// Returns (status, version, positions), decoded from the function's result
/// `[status, version, recorded_at µs, position...]` (status 1 ok, 2 deleted, 3 conflict).
async fn raw_append(
    client: &tokio_postgres::Client,
    sql: &str,
    stream: &str,
    expected: i64,
    events: &[NewEvent],
) -> Result<(String, Option<i64>, Option<Vec<i64>>), tokio_postgres::Error> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| &*e.event_type).collect();
    let svs: Vec<i32> = events.iter().map(|e| e.schema_version as i32).collect();
    let metas: Vec<Json<serde_json::Value>> = events
        .iter()
        .map(|e| Json(serde_json::to_value(&e.metadata).unwrap()))
        .collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| &e.payload[..]).collect();
    let row = client
        .query_one(
            sql,
            &[
                &"", &stream, &expected, &ids, &types, &svs, &metas, &payloads,
            ],
        )
        .await?;
    let result: Vec<i64> = row.get(0);
    let status = match result[0] {
        1 => "ok",
        2 => "deleted",
        3 => "conflict",
        other => panic!("unknown append status {other}"),
    };
    let positions = (status == "ok").then(|| result[3..].to_vec());
    Ok((status.to_owned(), Some(result[1]), positions))
}

/// What the writers of the out-of-order test did: every event id committed (with its
/// stream and position) and every event id rolled back or failed.
#[derive(Default)]
struct Ledger {
    committed: HashMap<Uuid, (String, u64)>,
    not_committed: HashSet<Uuid>,
    raw_commits: u64,
    raw_rollbacks: u64,
    raw_errors: u64,
    store_appends: u64,
    store_errors: u64,
}

/// Pages the global log from `from` and appends what it gets to `got`, checking on the
/// way that positions strictly increase. Returns the next position to read.
async fn page_once(
    store: &PostgresEventStore,
    from: u64,
    limit: usize,
    got: &mut Vec<RecordedEvent>,
    who: &str,
) -> (u64, usize) {
    let page = store
        .read_all(from, limit)
        .await
        .unwrap_or_else(|e| panic!("{who}: read_all({from}, {limit}) failed: {e}"));
    assert!(page.len() <= limit, "{who}: page longer than the limit");
    let mut next = from;
    for e in &page {
        assert!(
            e.position >= next,
            "{who}: position {} after {} (asked from {from})",
            e.position,
            next.saturating_sub(1)
        );
        if let Some(last) = got.last() {
            assert!(
                e.position > last.position,
                "{who}: positions not increasing"
            );
        }
        next = e.position + 1;
    }
    let n = page.len();
    got.extend(page);
    (next, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn out_of_order_commits_never_make_a_reader_skip_or_repeat() {
    let schema = schema_name("cqrs_torture");
    let Some(store) = open(&schema).await else {
        return;
    };
    const RAW_WRITERS: u64 = 16;
    const STORE_WRITERS: u64 = 4;
    const STREAMS: u64 = 12;
    let run_for = Duration::from_secs(6);
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let sql = append_sql(&schema);

    // 16 raw writers: BEGIN; append_events; pause 0-3 ms inside; COMMIT (or 5% ROLLBACK).
    let mut writers = Vec::new();
    for w in 0..RAW_WRITERS {
        let ledger = ledger.clone();
        let sql = sql.clone();
        writers.push(tokio::spawn(async move {
            let (client, conn) = raw_connect().await;
            let mut rng = Rng::new(0xA11CE + w);
            while started.elapsed() < run_for {
                let stream = format!("s-{}", rng.below(STREAMS));
                let n = 1 + rng.below(3) as usize;
                let events: Vec<NewEvent> =
                    (0..n).map(|i| event(&format!("raw-{w}-{i}"))).collect();
                client.batch_execute("BEGIN").await.unwrap();
                let result = raw_append(&client, &sql, &stream, -1, &events).await;
                let pause = rng.below(3001);
                tokio::time::sleep(Duration::from_micros(pause)).await;
                let rollback = rng.below(100) < 5;
                let mut l = ledger.lock().unwrap();
                match result {
                    Ok((status, _, Some(positions))) if status == "ok" && !rollback => {
                        drop(l);
                        client.batch_execute("COMMIT").await.unwrap();
                        l = ledger.lock().unwrap();
                        l.raw_commits += 1;
                        for (e, p) in events.iter().zip(positions) {
                            l.committed.insert(e.event_id, (stream.clone(), p as u64));
                        }
                    }
                    Ok((status, ..)) => {
                        assert_eq!(status, "ok", "raw append with Any expected");
                        drop(l);
                        client.batch_execute("ROLLBACK").await.unwrap();
                        l = ledger.lock().unwrap();
                        l.raw_rollbacks += 1;
                        l.not_committed.extend(events.iter().map(|e| e.event_id));
                    }
                    Err(e) => {
                        // A racing append of the same stream version (23505) or the stream
                        // moving under us (CQ002): the transaction is aborted.
                        let code = e.code().map(|c| c.code().to_owned());
                        assert!(
                            matches!(code.as_deref(), Some("23505" | "CQ002" | "40P01")),
                            "raw append failed unexpectedly: {e:?}"
                        );
                        drop(l);
                        client.batch_execute("ROLLBACK").await.unwrap();
                        l = ledger.lock().unwrap();
                        l.raw_errors += 1;
                        l.not_committed.extend(events.iter().map(|e| e.event_id));
                    }
                }
                drop(l);
            }
            drop(client);
            let _ = conn.await;
        }));
    }
    // Normal writers through the store, on the same streams.
    for w in 0..STORE_WRITERS {
        let ledger = ledger.clone();
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Rng::new(0xB0B + w);
            while started.elapsed() < run_for {
                let stream = format!("s-{}", rng.below(STREAMS));
                let n = 1 + rng.below(3) as usize;
                let events: Vec<NewEvent> =
                    (0..n).map(|i| event(&format!("store-{w}-{i}"))).collect();
                match store
                    .append(&stream, ExpectedVersion::Any, events.clone())
                    .await
                {
                    Ok(out) => {
                        assert!(!out.deduplicated);
                        let mut l = ledger.lock().unwrap();
                        l.store_appends += 1;
                        for (e, p) in events.iter().zip(out.positions) {
                            l.committed.insert(e.event_id, (stream.clone(), p));
                        }
                    }
                    Err(StoreError::Concurrency { .. }) => {
                        let mut l = ledger.lock().unwrap();
                        l.store_errors += 1;
                        l.not_committed.extend(events.iter().map(|e| e.event_id));
                    }
                    Err(e) => panic!("store append failed: {e}"),
                }
            }
        }));
    }

    // Reader 1: cold, from the beginning, right away.
    // Reader 2: starts a third into the run (from the beginning of the log).
    // Reader 3: reconnects (a new store instance) every 2 s and resumes where it was.
    let final_count = Arc::new(AtomicU64::new(u64::MAX));
    let mut readers = Vec::new();
    for r in 0..3u64 {
        let schema = schema.clone();
        let store = store.clone();
        let done = done.clone();
        let final_count = final_count.clone();
        readers.push(tokio::spawn(async move {
            let who = ["cold reader", "mid-run reader", "restarting reader"][r as usize];
            if r == 1 {
                tokio::time::sleep(run_for / 3).await;
            }
            let mut rng = Rng::new(0xC0FFEE + r);
            let mut store = if r == 2 {
                options(&schema).connect().await.unwrap()
            } else {
                store
            };
            let mut restarted_at = Instant::now();
            let mut restarts = 0;
            let mut got: Vec<RecordedEvent> = Vec::new();
            let mut next = 0u64;
            let drain_deadline = Duration::from_secs(30);
            loop {
                if r == 2 && restarted_at.elapsed() >= Duration::from_secs(2) {
                    store = options(&schema).connect().await.unwrap();
                    restarted_at = Instant::now();
                    restarts += 1;
                }
                let limit = 1 + rng.below(40) as usize;
                let (n2, n) = page_once(&store, next, limit, &mut got, who).await;
                next = n2;
                if done.load(Ordering::SeqCst) {
                    let want = final_count.load(Ordering::SeqCst);
                    if got.len() as u64 >= want {
                        break;
                    }
                    assert!(
                        started.elapsed() < run_for + drain_deadline,
                        "{who}: still {} of {want} events after the writers finished",
                        got.len()
                    );
                }
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(rng.below(5))).await;
                }
            }
            // Nothing more comes after the committed set.
            let (_, n) = page_once(&store, next, 100, &mut got, who).await;
            assert_eq!(n, 0, "{who}: events beyond the committed set");
            (who, got, restarts)
        }));
    }

    // A naive reader (position order, no horizon) beside them, to show that commits do
    // land out of order here: it skips events the real readers must not skip.
    let naive = {
        let store = store.clone();
        let done = done.clone();
        let schema = schema.clone();
        tokio::spawn(async move {
            let client = store.pool().get().await.unwrap();
            let sql = format!(
                "SELECT position FROM \"{schema}\".events WHERE tenant = '' AND position >= $1 \
                 ORDER BY position LIMIT 50"
            );
            let mut seen = HashSet::new();
            let mut next = 0i64;
            while !done.load(Ordering::SeqCst) {
                for row in client.query(&sql, &[&next]).await.unwrap() {
                    let p: i64 = row.get(0);
                    seen.insert(p);
                    next = p + 1;
                }
                tokio::task::yield_now().await;
            }
            let all: Vec<i64> = client
                .query(&format!("SELECT position FROM \"{schema}\".events"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            all.iter()
                .filter(|p| **p < next && !seen.contains(p))
                .count()
        })
    };

    for w in writers {
        w.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    final_count.store(ledger.committed.len() as u64, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    eprintln!(
        "out-of-order: {} events committed ({} raw commits, {} rollbacks, {} raw conflicts, \
         {} store appends, {} store conflicts)",
        ledger.committed.len(),
        ledger.raw_commits,
        ledger.raw_rollbacks,
        ledger.raw_errors,
        ledger.store_appends,
        ledger.store_errors
    );
    let naive_skipped = naive.await.unwrap();
    eprintln!("a naive position-order reader skipped {naive_skipped} committed events");
    assert!(
        naive_skipped > 0,
        "no commit landed out of order: the test did not torture anything"
    );
    assert!(ledger.raw_rollbacks > 0, "no transaction was rolled back");
    assert!(
        ledger.committed.len() > 500,
        "too little traffic to torture anything"
    );

    for r in readers {
        let (who, got, restarts) = r.await.unwrap();
        if who == "restarting reader" {
            assert!(restarts >= 2, "{who} restarted only {restarts} times");
        }
        let mut seen = HashSet::new();
        let mut last_version: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &got {
            assert!(
                seen.insert(e.event_id),
                "{who}: {} delivered twice",
                e.event_id
            );
            assert!(
                !ledger.not_committed.contains(&e.event_id),
                "{who}: rolled-back event {} delivered at position {}",
                e.event_id,
                e.position
            );
            let (stream, position) = ledger
                .committed
                .get(&e.event_id)
                .unwrap_or_else(|| panic!("{who}: unknown event {} at {}", e.event_id, e.position));
            assert_eq!(&*e.stream_id, stream, "{who}: stream of {}", e.event_id);
            assert_eq!(e.position, *position, "{who}: position of {}", e.event_id);
            let last = last_version.entry(&e.stream_id).or_insert(0);
            assert_eq!(
                e.version,
                *last + 1,
                "{who}: stream {} version {} after {}",
                e.stream_id,
                e.version,
                last
            );
            *last = e.version;
        }
        assert_eq!(
            seen.len(),
            ledger.committed.len(),
            "{who}: received {} of {} committed events",
            seen.len(),
            ledger.committed.len()
        );
        assert!(got.windows(2).all(|w| w[0].position < w[1].position));
        eprintln!("{who}: {} events, in order, once each", got.len());
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ambiguous_commit_is_resolved_by_re_sending_the_batch() {
    let schema = schema_name("cqrs_torture");
    let Some(store) = open(&schema).await else {
        return;
    };
    let sql = append_sql(&schema);
    let (killer, killer_conn) = raw_connect().await;
    let mut rng = Rng::new(0xDEAD);
    // (client saw success, the batch was in fact committed) -> count
    let mut outcomes: BTreeMap<(bool, bool), u32> = BTreeMap::new();
    let rounds = 40u64;
    for round in 0..rounds {
        let stream = format!("amb-{round}");
        // A first event so that the re-send uses an exact expected version.
        store
            .append(&stream, ExpectedVersion::NoStream, vec![event("first")])
            .await
            .unwrap();
        let batch: Vec<NewEvent> = (0..3).map(|i| event(&format!("batch-{i}"))).collect();

        let (client, conn) = raw_connect().await;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        client.batch_execute("BEGIN").await.unwrap();
        let (status, ..) = raw_append(&client, &sql, &stream, 1, &batch).await.unwrap();
        assert_eq!(status, "ok");
        let client = Arc::new(client);
        let committer = {
            let client = client.clone();
            tokio::spawn(async move { client.batch_execute("COMMIT").await.is_ok() })
        };
        let delay = Duration::from_micros(rng.below(400));
        let client_saw_ok = if round % 2 == 0 {
            // The server kills the backend, racing the COMMIT.
            tokio::time::sleep(delay).await;
            let _ = killer
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
            committer.await.unwrap()
        } else {
            // The client drops the connection right after sending COMMIT.
            tokio::time::sleep(delay).await;
            conn.abort();
            tokio::time::timeout(Duration::from_secs(5), committer)
                .await
                .map(|r| r.unwrap_or(false))
                .unwrap_or(false)
        };
        drop(client);
        // Wait until the backend is gone, so the commit (if any) has happened.
        for _ in 0..500 {
            let alive: bool = killer
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let stored_before = store.stream_version(&stream).await.unwrap() == Some(4);

        // The caller doesn't know: it re-sends the same batch.
        let out = store
            .append(&stream, ExpectedVersion::Exact(1), batch.clone())
            .await
            .unwrap_or_else(|e| panic!("round {round}: the re-send failed: {e}"));
        assert_eq!(out.stream_version, 4, "round {round}");
        assert_eq!(out.positions.len(), 3, "round {round}");
        assert_eq!(out.deduplicated, stored_before, "round {round}");
        if client_saw_ok {
            assert!(
                stored_before,
                "round {round}: COMMIT succeeded but nothing stored"
            );
        }
        *outcomes.entry((client_saw_ok, stored_before)).or_default() += 1;

        let events = store.read_stream(&stream, 1).await.unwrap();
        assert_eq!(events.len(), 4, "round {round}: {events:?}");
        for (e, new) in events[1..].iter().zip(&batch) {
            assert_eq!(e.event_id, new.event_id);
            assert_eq!(e.payload, new.payload);
        }
        let copies: i64 = killer
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".events WHERE event_id = ANY($1)"),
                &[&batch.iter().map(|e| e.event_id).collect::<Vec<_>>()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(copies, 3, "round {round}: one copy of each event");
        // And a second re-send is a no-op too.
        let again = store
            .append(&stream, ExpectedVersion::Exact(1), batch.clone())
            .await
            .unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.positions, out.positions);
    }
    eprintln!("ambiguous commits (client saw ok, was stored) -> rounds: {outcomes:?}");
    assert!(
        outcomes.keys().any(|(client_saw_ok, _)| !client_saw_ok),
        "the client never lost its COMMIT's answer: nothing was ambiguous"
    );
    // The global log holds each event once, in order.
    let all = store.read_all(0, 10_000).await.unwrap();
    assert_eq!(all.len() as u64, rounds * 4);
    let ids: HashSet<Uuid> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len());
    drop(killer);
    let _ = killer_conn.await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn heavy_same_stream_contention_keeps_versions_gapless() {
    let schema = schema_name("cqrs_torture");
    let Some(store) = open(&schema).await else {
        return;
    };
    const TASKS: usize = 32;
    const APPENDS: usize = 100;
    const STREAMS: usize = 4;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("hot-{}", t % STREAMS);
            let mut ids = Vec::with_capacity(APPENDS);
            let mut lost = 0u64;
            let mut version = store.stream_version(&stream).await.unwrap().unwrap_or(0);
            for i in 0..APPENDS {
                let e = event(&format!("{t}-{i}"));
                loop {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "contention test is taking too long"
                    );
                    match store
                        .append(&stream, ExpectedVersion::Exact(version), vec![e.clone()])
                        .await
                    {
                        Ok(out) => {
                            assert!(!out.deduplicated);
                            assert_eq!(out.stream_version, version + 1);
                            version = out.stream_version;
                            ids.push((e.event_id, out.stream_version, out.positions[0]));
                            break;
                        }
                        Err(StoreError::Concurrency {
                            stream_id,
                            expected,
                            actual,
                        }) => {
                            assert_eq!(stream_id, stream);
                            assert_eq!(expected, ExpectedVersion::Exact(version));
                            let now = actual.0.expect("the stream exists or was raced into");
                            assert!(now > version, "lost to {now} while expecting {version}");
                            version = now;
                            lost += 1;
                        }
                        Err(e) => panic!("a lost race must be a concurrency error: {e}"),
                    }
                }
            }
            (stream, ids, lost)
        }));
    }
    let mut by_stream: HashMap<String, Vec<(Uuid, u64, u64)>> = HashMap::new();
    let mut lost = 0;
    for t in tasks {
        let (stream, ids, l) = t.await.unwrap();
        lost += l;
        by_stream.entry(stream).or_default().extend(ids);
    }
    eprintln!(
        "contention: {} appends, {lost} lost races, in {:?}",
        TASKS * APPENDS,
        started.elapsed()
    );
    assert!(lost > 0, "no race was lost: not much contention");
    let mut all_ids = HashSet::new();
    for (stream, acks) in &by_stream {
        let per_stream = TASKS / STREAMS * APPENDS;
        let events = store.read_stream(stream, 1).await.unwrap();
        assert_eq!(events.len(), per_stream, "{stream}");
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.version, i as u64 + 1, "{stream}: gapless versions");
            assert!(all_ids.insert(e.event_id), "duplicate id {}", e.event_id);
        }
        let stored: HashMap<Uuid, (u64, u64)> = events
            .iter()
            .map(|e| (e.event_id, (e.version, e.position)))
            .collect();
        assert_eq!(acks.len(), per_stream);
        for (id, version, position) in acks {
            assert_eq!(stored.get(id), Some(&(*version, *position)), "ack of {id}");
        }
    }
    let log = store.read_all(0, 100_000).await.unwrap();
    assert_eq!(log.len(), TASKS * APPENDS);
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));
    drop_schema(&store).await;
}
