//! Append throughput of the SQLite store: one writer, and 8 concurrent writers with group
//! commit on and off, under both durability levels, beside the same inserts done with
//! plain SQL (one autocommit `INSERT` per event), and the load path. Run with
//!
//! ```text
//! cargo bench -p cqrs-core --bench sqlite_throughput
//! ```
//!
//! `CQRS_BENCH_SECS` sets how long each case runs (default 2 s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cqrs_core::ExpectedVersion;
use cqrs_core::prelude::*;
use cqrs_core::store::sqlite::{Durability, SqliteOptions};

struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("cqrs-bench-{}.db", uuid::Uuid::now_v7())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", self.0.display()));
        }
    }
}

fn event() -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "Deposited".into(),
        schema_version: 1,
        metadata: Metadata::default(),
        payload: Bytes::from_static(br#"{"amount":903,"balance":1903}"#),
    }
}

fn seconds() -> Duration {
    let secs = std::env::var("CQRS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `writers` tasks append one event at a time, each to its own 100 streams in turn
/// (exact expected versions, as the runtime does), for `run_for`.
async fn measure(options: SqliteOptions, writers: usize, run_for: Duration) -> String {
    let db = TempDb::new();
    let store = options.open(&db.0).unwrap();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            let mut versions = [0u64; 100];
            let mut latencies = Vec::new();
            let mut i = 0;
            while start.elapsed() < run_for {
                let s = i % versions.len();
                let t = Instant::now();
                store
                    .append(
                        &format!("acct-{w}-{s}"),
                        ExpectedVersion::Exact(versions[s]),
                        vec![event()],
                    )
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
                versions[s] += 1;
                i += 1;
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    let wall = start.elapsed();
    latencies.sort();
    let stats = store.stats();
    format!(
        "{:>9.0} appends/s  p50 {:>7.0} µs  p99 {:>7.0} µs  ({} appends, {} transactions, {:.1} appends/transaction, largest group {})",
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        latencies.len(),
        stats.transactions,
        stats.write_requests as f64 / stats.transactions.max(1) as f64,
        stats.largest_group,
    )
}

/// The floor to compare with: one autocommit `INSERT` per event on one connection, same
/// journal mode and synchronous level, no store logic.
fn plain_sql(synchronous: &str, run_for: Duration) -> String {
    let db = TempDb::new();
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, \
         version INTEGER NOT NULL, event_id BLOB NOT NULL UNIQUE, payload BLOB NOT NULL, \
         UNIQUE (stream_id, version))",
    )
    .unwrap();
    let mut insert = conn
        .prepare(
            "INSERT INTO events (stream_id, version, event_id, payload) VALUES (?1, ?2, ?3, ?4)",
        )
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        let e = event();
        insert
            .execute(rusqlite::params![
                format!("acct-{}", n % 100),
                (n / 100 + 1) as i64,
                e.event_id.as_bytes().as_slice(),
                &e.payload[..]
            ])
            .unwrap();
        n += 1;
    }
    format!(
        "{:>9.0} inserts/s",
        n as f64 / start.elapsed().as_secs_f64()
    )
}

/// The load path: `read_stream_with` over one stream of `events` events (appended in
/// batches of 100, as W3 does), `loads` times after one warm-up.
async fn measure_load(events: usize, loads: usize) -> String {
    let db = TempDb::new();
    let store = SqliteOptions::new()
        .durability(Durability::Normal)
        .open(&db.0)
        .unwrap();
    for chunk in 0..events / 100 {
        let batch = (0..100).map(|_| event()).collect();
        store
            .append(
                "w3-account",
                ExpectedVersion::Exact(chunk as u64 * 100),
                batch,
            )
            .await
            .unwrap();
    }
    let mut times = Vec::with_capacity(loads);
    for i in 0..=loads {
        let t = Instant::now();
        let mut seen = 0usize;
        store
            .read_stream_with("w3-account", 1, &mut |_| {
                seen += 1;
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(seen, events);
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    let total: Duration = times.iter().sum();
    times.sort();
    format!(
        "{:>9.0} events/s  p50 {:>7.0} µs  p99 {:>7.0} µs  ({events} events, {loads} loads)",
        (events * loads) as f64 / total.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run_for = seconds();
    for (durability, sync) in [(Durability::Full, "FULL"), (Durability::Normal, "NORMAL")] {
        println!(
            "durability {durability:?} (background checkpoints by default: {}):",
            SqliteOptions::new()
                .durability(durability)
                .uses_background_checkpoints()
        );
        println!(
            "  plain SQL, autocommit INSERT                {}",
            plain_sql(sync, run_for)
        );
        let base = SqliteOptions::new().durability(durability);
        // The other checkpoint mode, for comparison.
        let other = !base.uses_background_checkpoints();
        let other_name = if other {
            "8 writers, grouped, background checkpoints"
        } else {
            "8 writers, grouped, inline checkpoints    "
        };
        let cases = [
            (
                "1 writer                                  ",
                base.clone(),
                1,
            ),
            (
                "8 writers, group commit (128)             ",
                base.clone(),
                8,
            ),
            (
                "8 writers, group cap 1                    ",
                base.clone().group_commit(1),
                8,
            ),
            (other_name, base.clone().background_checkpoints(other), 8),
        ];
        for (name, options, writers) in cases {
            let line = runtime.block_on(measure(options, writers, run_for));
            println!("  {name}  {line}");
        }
    }
    println!(
        "load path, read_stream_with     {}",
        runtime.block_on(measure_load(10_000, 100))
    );
}
