//! Measurements of the SQLite store beyond the workload "bank" (the storage issue's
//! benchmark part), shared by the `append-bench` binary and the tests:
//!
//! - [`run_growth`]: the latency of single-event appends through the adapter while the
//!   store grows (windows of timed appends at, by default, 10,000, 100,000 and 1,000,000
//!   stored events). The target: p99 at 1M within 1.5× of p99 at 10k.
//! - [`run_snapshot_load`]: W3-snapshot loads (the newest snapshot plus the events after
//!   it) of a short and of a very long stream. The target: 1,000,000 events within 2× of
//!   1,000.
//! - [`run_raw_sql`] beside [`run_adapter_appends`]: the events W1 writes, appended one
//!   per transaction in one loop with plain SQL (rusqlite) on a fresh file with the
//!   adapter's schema and pragmas, and the same appends through the adapter, so that the
//!   framework's overhead shows as a ratio.
//!
//! Every measurement opens its own file in a fresh [`ScratchDir`] with the adapter's
//! default options (synchronous=FULL, WAL, group commit) and deletes it afterwards.
//!
//! ```
//! use cqrs_examples::sqlite_bench::{GrowthParams, run_growth};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let params = GrowthParams { sizes: vec![50, 200], window: 20, streams: 10, ..GrowthParams::default() };
//! let run = run_growth(&params).await.unwrap();
//! assert_eq!(run.windows.len(), 2);
//! assert!(run.windows[1].store_events >= 200);
//! assert_eq!(run.windows[0].latencies_ns.len(), 20);
//! # });
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cqrs_core::StoreError;
use cqrs_core::prelude::*;
use cqrs_core::snapshot::SnapshotPolicy;
use cqrs_core::store::sqlite::{SqliteEventStore, SqliteOptions, SqliteStats};
use serde_json::{Map, Value, json};

use crate::bank::{BankAccount, BankEvent};
use crate::harness::{
    self, BenchError, BenchParams, DB_FILE, FRAMEWORK, LoadRun, ScratchDir, StoreInfo,
    insert_percentiles, nearest_rank, open_scratch_sqlite, round1, timed_loads, us,
    w3_pre_append_batched, wait_closed,
};
use crate::workload::{self, W3_ACCOUNT, w3_event};

/// How long to wait for SQLite to close a file after its store is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(120);

/// The growth target: p99 at the largest size within this factor of the smallest's.
pub const GROWTH_TARGET: f64 = 1.5;

/// The snapshot-load target: the longest stream's load within this factor of the
/// shortest's.
pub const SNAPSHOT_TARGET: f64 = 2.0;

fn store_err(what: &'static str) -> impl FnOnce(StoreError) -> BenchError {
    move |source| BenchError::StoreOp { what, source }
}

fn sql(what: &str) -> impl FnOnce(rusqlite::Error) -> BenchError + '_ {
    move |source| BenchError::Sql {
        what: what.to_owned(),
        source,
    }
}

/// The bytes of the database file and its WAL.
fn db_bytes(dir: &ScratchDir) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|end| {
            let path = format!("{}{end}", dir.path().join(DB_FILE).display());
            std::fs::metadata(path).ok().map(|m| m.len())
        })
        .sum()
}

/// Drops `store` and waits until SQLite closed its file; `dir` is then deleted.
async fn close(store: SqliteEventStore, dir: ScratchDir) -> Result<(), BenchError> {
    drop(store);
    wait_closed(dir.path().join(DB_FILE), CLOSE_TIMEOUT).await?;
    drop(dir);
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The fields every line of this module carries.
fn common(bench: &str, info: &StoreInfo, rep: u32) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("bench".into(), bench.into());
    m.insert("framework".into(), FRAMEWORK.into());
    m.insert("versions".into(), info.versions.clone().into());
    m.insert("backend".into(), info.backend.name().into());
    m.insert("profile".into(), harness::profile().into());
    m.insert("rep".into(), rep.into());
    m.insert("cores".into(), harness::cores().into());
    m
}

/// A stream of the growth measurement and where it stands: its events follow the W3
/// pattern (opened, then deposits of 10 and every tenth a withdrawal of 50).
#[derive(Debug, Clone)]
struct StreamState {
    id: String,
    version: u64,
    balance: u64,
}

impl StreamState {
    fn new(k: usize) -> Self {
        Self {
            id: <BankAccount as Aggregate>::stream_id(&workload::account_id(k)),
            version: 0,
            balance: 0,
        }
    }

    fn expected(&self) -> ExpectedVersion {
        match self.version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        }
    }

    /// The stream's next `n` events, encoded, and the version they must follow.
    fn next_events(&mut self, n: u64) -> Result<(ExpectedVersion, Vec<NewEvent>), BenchError> {
        let expected = self.expected();
        let mut batch = Vec::with_capacity(n as usize);
        for _ in 0..n {
            self.version += 1;
            let event = w3_event(self.version, self.balance);
            if let BankEvent::Deposited { balance, .. } | BankEvent::Withdrew { balance, .. } =
                &event
            {
                self.balance = *balance;
            }
            batch.push(NewEvent::encode(&event, &JsonCodec, Metadata::default())?);
        }
        Ok((expected, batch))
    }
}

/// The parameters of [`run_growth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthParams {
    /// The store sizes (events) at which a window of timed appends starts, ascending.
    pub sizes: Vec<u64>,
    /// Single-event appends timed per window.
    pub window: usize,
    /// How many streams the events are spread over (evenly, round-robin).
    pub streams: usize,
    /// The most events one pre-fill append carries.
    pub prefill_batch: usize,
    /// Concurrent pre-fill tasks (their appends share transactions by group commit).
    pub prefill_tasks: usize,
    /// Checkpoint and truncate the WAL, untimed, after each pre-fill; off, a window starts
    /// while the adapter may still be checkpointing the pre-fill burst.
    pub settle: bool,
}

impl Default for GrowthParams {
    /// Windows of 10,000 appends at 10k, 100k and 1M events over 1,000 streams; pre-fill
    /// in appends of up to 1,000 events from 4 tasks.
    fn default() -> Self {
        Self {
            sizes: vec![10_000, 100_000, 1_000_000],
            window: 10_000,
            streams: 1_000,
            prefill_batch: 1_000,
            prefill_tasks: 4,
            settle: true,
        }
    }
}

/// One window of [`run_growth`].
#[derive(Debug, Clone, PartialEq)]
pub struct GrowthWindow {
    /// Events in the store when the window started.
    pub store_events: u64,
    /// Every timed append's latency in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// First append's start to last append's end.
    pub wall: Duration,
    /// How long the pre-fill before the window took.
    pub prefill: Duration,
    /// Size of the database file and its WAL after the window.
    pub db_bytes: u64,
}

impl GrowthWindow {
    /// Appends per second over the window.
    pub fn appends_per_s(&self) -> f64 {
        self.latencies_ns.len() as f64 / self.wall.as_secs_f64()
    }
}

/// What [`run_growth`] measured.
#[derive(Debug, Clone)]
pub struct GrowthRun {
    /// The store.
    pub info: StoreInfo,
    /// One window per size.
    pub windows: Vec<GrowthWindow>,
    /// The writer's counters at the end.
    pub stats: SqliteStats,
}

/// Appends to every stream until stream `k` holds its share of `size` events, from
/// `tasks` concurrent tasks, each in appends of at most `batch` events.
async fn prefill(
    store: &SqliteEventStore,
    streams: &mut [StreamState],
    size: u64,
    batch: usize,
    tasks: usize,
) -> Result<(), BenchError> {
    let k_count = streams.len() as u64;
    let (base, extra) = (size / k_count, size % k_count);
    let tasks = tasks.clamp(1, streams.len());
    let mut owned: Vec<Vec<(usize, StreamState, u64)>> = vec![Vec::new(); tasks];
    for (k, stream) in streams.iter().enumerate() {
        let target = base + u64::from((k as u64) < extra);
        let need = target.saturating_sub(stream.version);
        owned[k % tasks].push((k, stream.clone(), need));
    }
    let mut set = tokio::task::JoinSet::new();
    for mine in owned {
        let store = store.clone();
        set.spawn(async move {
            let mut mine = mine;
            for (_, stream, need) in &mut mine {
                while *need > 0 {
                    let n = (*need).min(batch.max(1) as u64);
                    let (expected, events) = stream.next_events(n)?;
                    store
                        .append(&stream.id, expected, events)
                        .await
                        .map_err(store_err("growth: pre-fill append"))?;
                    *need -= n;
                }
            }
            Ok::<_, BenchError>(mine)
        });
    }
    while let Some(done) = set.join_next().await {
        for (k, stream, _) in done?? {
            streams[k] = stream;
        }
    }
    Ok(())
}

/// Checkpoints the whole WAL into the database file and truncates it, from a separate
/// connection (untimed), so that a window does not pay for the checkpoint backlog of the
/// pre-fill burst before it: every window starts from an empty WAL.
async fn settle(db: std::path::PathBuf) -> Result<(), BenchError> {
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&db).map_err(sql("settle: opening the file"))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sql("settle: busy_timeout"))?;
        for _ in 0..100 {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                .map_err(sql("settle: checkpointing"))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(BenchError::Setup(
            "settle: the WAL could not be checkpointed".into(),
        ))
    })
    .await?
}

/// Single-event append latency as the store grows: on a fresh file (default options),
/// for each size in `params.sizes` the store is pre-filled (untimed, concurrent appends
/// of up to `prefill_batch` events) until it holds that many events spread evenly over
/// `params.streams` streams and its WAL is checkpointed (untimed, with `params.settle`), then
/// `params.window` single-event appends are timed, one at
/// a time from one task, round-robin over the streams with exact expected versions (the
/// runtime's append). The events are encoded before the clock starts.
pub async fn run_growth(params: &GrowthParams) -> Result<GrowthRun, BenchError> {
    if params.streams == 0 || params.window == 0 || params.sizes.is_empty() {
        return Err(BenchError::Params(
            "growth: --streams, --window and --sizes must not be empty or 0".into(),
        ));
    }
    let mut sizes = params.sizes.clone();
    sizes.sort_unstable();
    let (dir, store) = open_scratch_sqlite(SqliteOptions::default()).await?;
    let info = StoreInfo::sqlite(&store, dir.path()).await?;
    let mut streams: Vec<StreamState> = (0..params.streams).map(StreamState::new).collect();
    let mut cursor = 0;
    let mut windows = Vec::with_capacity(sizes.len());
    for size in sizes {
        let started = Instant::now();
        prefill(
            &store,
            &mut streams,
            size,
            params.prefill_batch,
            params.prefill_tasks,
        )
        .await?;
        let prefill_time = started.elapsed();
        if params.settle {
            settle(dir.path().join(DB_FILE)).await?;
        }
        let store_events: u64 = streams.iter().map(|s| s.version).sum();
        let mut planned = Vec::with_capacity(params.window);
        for j in 0..params.window {
            let k = (cursor + j) % streams.len();
            let (expected, events) = streams[k].next_events(1)?;
            planned.push((k, expected, events));
        }
        cursor = (cursor + params.window) % streams.len();
        let mut latencies_ns = Vec::with_capacity(params.window);
        let window_start = Instant::now();
        for (k, expected, events) in planned {
            let start = Instant::now();
            store
                .append(&streams[k].id, expected, events)
                .await
                .map_err(store_err("growth: timed append"))?;
            latencies_ns.push(start.elapsed().as_nanos() as u64);
        }
        let wall = window_start.elapsed();
        latencies_ns.sort_unstable();
        windows.push(GrowthWindow {
            store_events,
            latencies_ns,
            wall,
            prefill: prefill_time,
            db_bytes: db_bytes(&dir),
        });
    }
    let stats = store.stats();
    close(store, dir).await?;
    Ok(GrowthRun {
        info,
        windows,
        stats,
    })
}

/// The JSON lines of a growth run: one `append-growth` line per window, then one
/// `append-growth-summary` line comparing the largest size with the smallest.
pub fn growth_json(params: &GrowthParams, run: &GrowthRun, rep: u32) -> Vec<Value> {
    let mut lines = Vec::with_capacity(run.windows.len() + 1);
    let settled = if params.settle {
        "then the WAL is checkpointed and truncated from a separate connection \
         (PRAGMA wal_checkpoint(TRUNCATE), untimed) so that the window does not pay for the \
         pre-fill burst's checkpoint backlog"
    } else {
        "and the window starts right away (no checkpoint after the pre-fill: --no-settle)"
    };
    let notes = format!(
        "single-event appends through SqliteEventStore::append (EventStore trait), one at a \
         time from one tokio task, round-robin over {} streams with exact expected versions, \
         events encoded (JSON, the W3 pattern of BankAccount events) before the clock starts; \
         before each window the store is pre-filled, untimed, by {} concurrent tasks in \
         appends of up to {} events until it holds store_events events spread evenly over \
         the streams, {settled}; {}",
        params.streams, params.prefill_tasks, params.prefill_batch, run.info.description
    );
    for w in &run.windows {
        let mut m = common("append-growth", &run.info, rep);
        m.insert("store_events".into(), w.store_events.into());
        m.insert("window".into(), w.latencies_ns.len().into());
        m.insert("streams".into(), params.streams.into());
        m.insert("appends_per_s".into(), round1(w.appends_per_s()).into());
        insert_percentiles(&mut m, &w.latencies_ns);
        m.insert(
            "max_us".into(),
            us(*w.latencies_ns.last().unwrap_or(&0)).into(),
        );
        m.insert("wall_s".into(), w.wall.as_secs_f64().into());
        m.insert("prefill_s".into(), w.prefill.as_secs_f64().into());
        m.insert("db_bytes".into(), w.db_bytes.into());
        m.insert("notes".into(), notes.clone().into());
        lines.push(Value::Object(m));
    }
    if let (Some(first), Some(last)) = (run.windows.first(), run.windows.last()) {
        let ratio = |q| {
            nearest_rank(&last.latencies_ns, q, 100) as f64
                / nearest_rank(&first.latencies_ns, q, 100).max(1) as f64
        };
        let (p50_ratio, p99_ratio) = (ratio(50), ratio(99));
        let mut m = common("append-growth-summary", &run.info, rep);
        m.insert("from_events".into(), first.store_events.into());
        m.insert("to_events".into(), last.store_events.into());
        m.insert("p50_ratio".into(), round2(p50_ratio).into());
        m.insert("p99_ratio".into(), round2(p99_ratio).into());
        m.insert("target_p99_ratio".into(), GROWTH_TARGET.into());
        m.insert("flat".into(), (p99_ratio <= GROWTH_TARGET).into());
        m.insert("sqlite".into(), harness::stats_json(&run.stats));
        lines.push(Value::Object(m));
    }
    lines
}

/// The parameters of [`run_snapshot_load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLoadParams {
    /// Stream lengths to compare (each on its own fresh file).
    pub sizes: Vec<u64>,
    /// Snapshot interval of the runtime's policy.
    pub snapshot_every: u64,
    /// Timed loads per measurement.
    pub loads: usize,
    /// Events per pre-append (a snapshot is taken after each one that crosses a multiple
    /// of `snapshot_every`).
    pub prefill_batch: usize,
    /// Events appended after the newest snapshot for a second measurement (0: none).
    pub tail: u64,
}

impl Default for SnapshotLoadParams {
    /// 1,000 and 1,000,000 events, snapshots every 100, 100 loads, pre-append in
    /// batches of 10,000, then a tail of 50 events.
    fn default() -> Self {
        Self {
            sizes: vec![1_000, 1_000_000],
            snapshot_every: 100,
            loads: 100,
            prefill_batch: 10_000,
            tail: 50,
        }
    }
}

/// One measurement of [`run_snapshot_load`].
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotLoad {
    /// Events of the stream.
    pub events: u64,
    /// Of which after the newest snapshot.
    pub tail: u64,
    /// The stream version the newest snapshot reflects.
    pub snapshot_version: u64,
    /// The timed loads.
    pub run: LoadRun,
    /// How long the untimed pre-append (with its snapshots) took.
    pub prefill: Duration,
}

/// W3-snapshot loads of a stream of `size` events on a fresh file (default options): the
/// W3 events are appended in batches of `params.prefill_batch` through the adapter, with
/// a snapshot taken through a runtime with `SnapshotPolicy::every(snapshot_every)` after
/// each batch crossing a multiple of it; then `params.loads` timed [`Cqrs::load`]s (after
/// one untimed), each asserted to return the full state. With a tail, `params.tail` more
/// events are appended (no snapshot) and the loads measured again.
pub async fn run_snapshot_load(
    params: &SnapshotLoadParams,
    size: u64,
) -> Result<(StoreInfo, Vec<SnapshotLoad>), BenchError> {
    if size == 0 || params.loads == 0 || params.snapshot_every == 0 {
        return Err(BenchError::Params(
            "snapshot-load: sizes, --loads and --snapshot-every must be at least 1".into(),
        ));
    }
    let (dir, store) = open_scratch_sqlite(SqliteOptions::default()).await?;
    let info = StoreInfo::sqlite(&store, dir.path()).await?;
    let cqrs = Cqrs::<BankAccount>::builder(store.clone())
        .snapshots(SnapshotPolicy::every(params.snapshot_every))
        .build();
    let stream = <BankAccount as Aggregate>::stream_id(W3_ACCOUNT);
    let started = Instant::now();
    w3_pre_append_batched(
        &store,
        size,
        params.prefill_batch,
        Some((&cqrs, params.snapshot_every)),
    )
    .await?;
    let prefill = started.elapsed();
    let snapshot_version = store
        .load_snapshot(&stream)
        .await
        .map_err(store_err("snapshot-load: reading the snapshot"))?
        .map_or(0, |s| s.stream_version);
    let mut out = vec![SnapshotLoad {
        events: size,
        tail: size - snapshot_version,
        snapshot_version,
        run: timed_loads(&cqrs, size, params.loads).await?,
        prefill,
    }];
    if params.tail > 0 {
        let all = crate::workload::w3_events(size + params.tail);
        let batch = all[size as usize..]
            .iter()
            .map(|e| NewEvent::encode(e, &JsonCodec, Metadata::default()))
            .collect::<Result<Vec<_>, _>>()?;
        store
            .append(&stream, ExpectedVersion::Exact(size), batch)
            .await
            .map_err(store_err("snapshot-load: appending the tail"))?;
        let n = size + params.tail;
        out.push(SnapshotLoad {
            events: n,
            tail: n - snapshot_version,
            snapshot_version,
            run: timed_loads(&cqrs, n, params.loads).await?,
            prefill,
        });
    }
    drop(cqrs);
    close(store, dir).await?;
    Ok((info, out))
}

fn mean_ns(run: &LoadRun) -> f64 {
    run.total.as_nanos() as f64 / run.latencies_ns.len().max(1) as f64
}

/// One `snapshot-load` line per measurement of `loads` (all sizes, in order).
pub fn snapshot_load_json(
    params: &SnapshotLoadParams,
    info: &StoreInfo,
    loads: &[SnapshotLoad],
    rep: u32,
) -> Vec<Value> {
    let notes = format!(
        "Cqrs::load with SnapshotPolicy::every({}) (bypasses the aggregate cache: reads the \
         newest snapshot, JSON, then the events after it through read_stream_with, and \
         applies them); the W3 stream of w3-account pre-appended through \
         SqliteEventStore::append in batches of {}, a snapshot taken with Cqrs::snapshot \
         after each batch crossing a multiple of {} (the table keeps the newest only); \
         tail = events after the newest snapshot (appended after the first measurement); \
         events_per_s counts all events the state reflects; {}",
        params.snapshot_every, params.prefill_batch, params.snapshot_every, info.description
    );
    loads
        .iter()
        .map(|l| {
            let mut m = common("snapshot-load", info, rep);
            m.insert("events".into(), l.events.into());
            m.insert("tail".into(), l.tail.into());
            m.insert("snapshot_every".into(), params.snapshot_every.into());
            m.insert("snapshot_version".into(), l.snapshot_version.into());
            m.insert("loads".into(), l.run.latencies_ns.len().into());
            m.insert("events_per_s".into(), round1(l.run.events_per_s()).into());
            insert_percentiles(&mut m, &l.run.latencies_ns);
            m.insert("mean_us".into(), round1(mean_ns(&l.run) / 1000.0).into());
            m.insert("prefill_s".into(), l.prefill.as_secs_f64().into());
            m.insert("notes".into(), notes.clone().into());
            Value::Object(m)
        })
        .collect()
}

/// `snapshot-load-summary` lines: for each tail length, the longest stream's load time
/// over the shortest's (p50, p99, mean).
pub fn snapshot_summary_json(info: &StoreInfo, loads: &[SnapshotLoad], rep: u32) -> Vec<Value> {
    let mut tails: Vec<u64> = loads
        .iter()
        .map(|l| l.tail)
        .filter(|t| loads.iter().filter(|l| l.tail == *t).count() > 1)
        .collect();
    tails.sort_unstable();
    tails.dedup();
    tails
        .into_iter()
        .filter_map(|tail| {
            let same: Vec<&SnapshotLoad> = loads.iter().filter(|l| l.tail == tail).collect();
            let small = same.iter().min_by_key(|l| l.events)?;
            let large = same.iter().max_by_key(|l| l.events)?;
            let ratio = |q| {
                nearest_rank(&large.run.latencies_ns, q, 100) as f64
                    / nearest_rank(&small.run.latencies_ns, q, 100).max(1) as f64
            };
            let (p50, p99) = (ratio(50), ratio(99));
            let mean = mean_ns(&large.run) / mean_ns(&small.run).max(1.0);
            let r2 = round2;
            let mut m = common("snapshot-load-summary", info, rep);
            m.insert("tail".into(), tail.into());
            m.insert("small_events".into(), small.events.into());
            m.insert("large_events".into(), large.events.into());
            m.insert("p50_ratio".into(), r2(p50).into());
            m.insert("p99_ratio".into(), r2(p99).into());
            m.insert("mean_ratio".into(), r2(mean).into());
            m.insert("target_ratio".into(), SNAPSHOT_TARGET.into());
            m.insert("within_target".into(), (p50 <= SNAPSHOT_TARGET).into());
            Some(Value::Object(m))
        })
        .collect()
}

/// One append of a plan: one event, after `version - 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAppend {
    /// The stream.
    pub stream_id: Arc<str>,
    /// The event's version in it.
    pub version: u64,
    /// The event (id, type, schema version, metadata, payload).
    pub event: NewEvent,
}

impl PlannedAppend {
    /// The version the stream must be at.
    pub fn expected(&self) -> ExpectedVersion {
        match self.version {
            1 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v - 1),
        }
    }
}

/// The events W1 commits for `params` (accounts, commands, seed), in commit order, as
/// single-event appends: W1 is run on an in-memory store and its log read back, so the
/// payload bytes are exactly those the framework writes.
pub async fn w1_appends(params: &BenchParams) -> Result<Vec<PlannedAppend>, BenchError> {
    let cqrs = harness::mem_cqrs(true, params.accounts);
    let run = harness::run_w1(&cqrs, params).await?;
    let recorded = cqrs
        .store()
        .read_all(1, usize::MAX)
        .await
        .map_err(store_err("W1 plan: reading the in-memory log"))?;
    if recorded.len() as u64 != run.observed.accepted {
        return Err(BenchError::EventCount {
            workload: "W1",
            accepted: run.observed.accepted,
            events: recorded.len() as u64,
        });
    }
    Ok(recorded
        .into_iter()
        .map(|e| PlannedAppend {
            stream_id: e.stream_id,
            version: e.version,
            event: NewEvent {
                event_id: e.event_id,
                event_type: e.event_type.to_string().into(),
                schema_version: e.schema_version,
                metadata: e.metadata,
                payload: e.payload,
            },
        })
        .collect())
}

/// What one loop of appends measured.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRun {
    /// Every append's latency in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// First append's start to last append's end.
    pub wall: Duration,
}

impl AppendRun {
    /// Appends per second over the wall time.
    pub fn appends_per_s(&self) -> f64 {
        self.latencies_ns.len() as f64 / self.wall.as_secs_f64()
    }

    fn p(&self, q: u64) -> u64 {
        nearest_rank(&self.latencies_ns, q, 100)
    }
}

/// The `plan` through the adapter: a fresh file with default options, one
/// [`EventStore::append`] of one event per planned append, one at a time from one task.
pub async fn run_adapter_appends(
    plan: &[PlannedAppend],
) -> Result<(StoreInfo, AppendRun, SqliteStats), BenchError> {
    let (dir, store) = open_scratch_sqlite(SqliteOptions::default()).await?;
    let info = StoreInfo::sqlite(&store, dir.path()).await?;
    let batches: Vec<(&str, ExpectedVersion, Vec<NewEvent>)> = plan
        .iter()
        .map(|a| (&*a.stream_id, a.expected(), vec![a.event.clone()]))
        .collect();
    let mut latencies_ns = Vec::with_capacity(plan.len());
    let started = Instant::now();
    for (stream, expected, batch) in batches {
        let start = Instant::now();
        store
            .append(stream, expected, batch)
            .await
            .map_err(store_err("adapter appends"))?;
        latencies_ns.push(start.elapsed().as_nanos() as u64);
    }
    let wall = started.elapsed();
    latencies_ns.sort_unstable();
    let stats = store.stats();
    close(store, dir).await?;
    Ok((info, AppendRun { latencies_ns, wall }, stats))
}

/// The pragmas the baseline sets on its connection, from the adapter's report; the others
/// (`journal_mode`, `auto_vacuum`, `application_id`) persist in the file, which the
/// adapter created. `query_only` is off on a write connection either way.
const RAW_SETTABLE: &[&str] = &[
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
];

/// The statements of one append in the baseline, the adapter's own insert statements.
const RAW_INSERT_EVENT: &str = "INSERT INTO events (stream_id, version, event_id, event_type, \
     schema_version, metadata, payload, recorded_at, batch_size) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const RAW_UPSERT_STREAM: &str = "INSERT INTO streams (stream_id, version, first_version, deleted) \
     VALUES (?1, ?2, 1, 0) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version";

/// What [`run_raw_sql`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRun {
    /// The timed loop.
    pub run: AppendRun,
    /// The pragmas of the baseline's connection, as SQLite reports them (equal to the
    /// adapter's write connection's, checked).
    pub pragmas: Vec<(String, String)>,
}

fn nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The plain-SQL baseline: the same appends with rusqlite in one loop, on a fresh file
/// created by the adapter (so the schema and the persistent pragmas are the adapter's)
/// and then closed; the connection gets the adapter's per-connection pragmas, and all of
/// them are checked against the adapter's report. Each append is one `BEGIN IMMEDIATE`
/// transaction holding the adapter's two inserts (the event row, the stream's version),
/// committed before the next; nothing else (no version check, no duplicate probe, no
/// threads, SQLite's own inline WAL checkpoints).
pub async fn run_raw_sql(plan: Arc<[PlannedAppend]>) -> Result<RawRun, BenchError> {
    let (dir, store) = open_scratch_sqlite(SqliteOptions::default()).await?;
    let adapter: Vec<(String, String)> = store
        .pragmas()
        .await
        .map_err(store_err(
            "plain SQL baseline: reading the adapter's pragmas",
        ))?
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    drop(store);
    let path = dir.path().join(DB_FILE);
    wait_closed(path.clone(), CLOSE_TIMEOUT).await?;
    let result = tokio::task::spawn_blocking(move || raw_loop(&path, &adapter, &plan)).await?;
    drop(dir);
    result
}

fn raw_loop(
    path: &std::path::Path,
    adapter: &[(String, String)],
    plan: &[PlannedAppend],
) -> Result<RawRun, BenchError> {
    let conn = rusqlite::Connection::open(path).map_err(sql("opening the file"))?;
    for (name, value) in adapter {
        if RAW_SETTABLE.contains(&name.as_str()) {
            // Some pragmas answer with a row, others with none.
            let mut stmt = conn
                .prepare(&format!("PRAGMA {name} = {value}"))
                .map_err(sql("setting a pragma"))?;
            let mut rows = stmt.query([]).map_err(sql("setting a pragma"))?;
            while rows.next().map_err(sql("setting a pragma"))?.is_some() {}
        }
    }
    let mut pragmas = Vec::with_capacity(adapter.len());
    for (name, expected) in adapter {
        let value: String = conn
            .pragma_query_value(None, name, |row| {
                Ok(match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                })
            })
            .map_err(sql("reading a pragma"))?;
        if value != *expected {
            return Err(BenchError::Setup(format!(
                "plain SQL baseline: PRAGMA {name} is {value}, the adapter's is {expected}"
            )));
        }
        pragmas.push((name.clone(), value));
    }
    let mut begin = conn
        .prepare("BEGIN IMMEDIATE")
        .map_err(sql("preparing BEGIN"))?;
    let mut commit = conn.prepare("COMMIT").map_err(sql("preparing COMMIT"))?;
    let mut insert = conn
        .prepare(RAW_INSERT_EVENT)
        .map_err(sql("preparing the event insert"))?;
    let mut upsert = conn
        .prepare(RAW_UPSERT_STREAM)
        .map_err(sql("preparing the stream upsert"))?;
    let metadata: Vec<String> = plan
        .iter()
        .map(|a| match a.event.metadata.is_empty() {
            true => Ok("{}".to_owned()),
            false => serde_json::to_string(&a.event.metadata)
                .map_err(|e| BenchError::Setup(format!("cannot encode metadata: {e}"))),
        })
        .collect::<Result<_, _>>()?;
    let mut latencies_ns = Vec::with_capacity(plan.len());
    let started = Instant::now();
    for (a, metadata) in plan.iter().zip(&metadata) {
        let start = Instant::now();
        begin.execute([]).map_err(sql("BEGIN IMMEDIATE"))?;
        insert
            .execute(rusqlite::params![
                &*a.stream_id,
                a.version as i64,
                a.event.event_id.as_bytes().as_slice(),
                &*a.event.event_type,
                a.event.schema_version,
                metadata.as_str(),
                &a.event.payload[..],
                nanos_now(),
                1i64,
            ])
            .map_err(sql("inserting an event"))?;
        upsert
            .execute(rusqlite::params![&*a.stream_id, a.version as i64])
            .map_err(sql("updating a stream"))?;
        commit.execute([]).map_err(sql("COMMIT"))?;
        latencies_ns.push(start.elapsed().as_nanos() as u64);
    }
    let wall = started.elapsed();
    latencies_ns.sort_unstable();
    drop((begin, commit, insert, upsert));
    conn.close().map_err(|(_, e)| sql("closing")(e))?;
    Ok(RawRun {
        run: AppendRun { latencies_ns, wall },
        pragmas,
    })
}

fn append_run_fields(m: &mut Map<String, Value>, run: &AppendRun) {
    m.insert("appends".into(), run.latencies_ns.len().into());
    m.insert("appends_per_s".into(), round1(run.appends_per_s()).into());
    insert_percentiles(m, &run.latencies_ns);
    m.insert("wall_s".into(), run.wall.as_secs_f64().into());
}

fn plan_params(params: &BenchParams) -> Value {
    json!({
        "accounts": params.accounts,
        "commands_per_account": params.commands,
        "seed": params.seed,
    })
}

/// The `raw-sql` line.
pub fn raw_json(params: &BenchParams, info: &StoreInfo, raw: &RawRun, rep: u32) -> Value {
    let mut m = common("raw-sql", info, rep);
    m.insert("params".into(), plan_params(params));
    append_run_fields(&mut m, &raw.run);
    let pragmas: Map<String, Value> = raw
        .pragmas
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into()))
        .collect();
    m.insert("pragmas".into(), Value::Object(pragmas));
    m.insert(
        "notes".into(),
        "plain SQL (rusqlite, no framework, no async, no threads): the events W1 commits \
         (same ids, types, payload bytes, in commit order), one BEGIN IMMEDIATE transaction \
         per event holding the adapter's event INSERT and stream-version upsert, COMMIT \
         before the next, in one loop; a fresh file whose schema and persistent pragmas the \
         adapter created, connection pragmas copied from the adapter's write connection and \
         checked equal (see pragmas: WAL, synchronous=FULL); SQLite's inline \
         wal_autocheckpoint (the adapter checkpoints on a background thread)"
            .into(),
    );
    Value::Object(m)
}

/// The `adapter-appends` line.
pub fn adapter_json(
    params: &BenchParams,
    info: &StoreInfo,
    run: &AppendRun,
    stats: &SqliteStats,
    rep: u32,
) -> Value {
    let mut m = common("adapter-appends", info, rep);
    m.insert("params".into(), plan_params(params));
    append_run_fields(&mut m, run);
    m.insert("sqlite".into(), harness::stats_json(stats));
    m.insert(
        "notes".into(),
        format!(
            "the same events as raw-sql through SqliteEventStore::append (EventStore trait), \
             one single-event append with its exact expected version at a time from one \
             tokio task (single writer: one transaction per append); {}",
            info.description
        )
        .into(),
    );
    Value::Object(m)
}

/// The `raw-sql-ratio` line: the framework's time over the baseline's for the same
/// appends (`> 1`: the framework is slower by that factor), for the adapter's
/// single-writer appends and, if given, for W1 (its JSON line: `wall_s`, `p50_us`,
/// `p99_us`, `commands`).
pub fn ratio_json(
    info: &StoreInfo,
    raw: &AppendRun,
    adapter: &AppendRun,
    w1: Option<&Value>,
    rep: u32,
) -> Value {
    let r2 = round2;
    let mut m = common("raw-sql-ratio", info, rep);
    m.insert("appends".into(), raw.latencies_ns.len().into());
    m.insert(
        "adapter_over_raw".into(),
        json!({
            "time": r2(adapter.wall.as_secs_f64() / raw.wall.as_secs_f64()),
            "p50": r2(adapter.p(50) as f64 / raw.p(50).max(1) as f64),
            "p99": r2(adapter.p(99) as f64 / raw.p(99).max(1) as f64),
        }),
    );
    let w1_ratio = w1.map(|w1| {
        let f = |k: &str| w1[k].as_f64().unwrap_or(f64::NAN);
        json!({
            "time": r2(f("wall_s") / raw.wall.as_secs_f64()),
            "p50": r2(f("p50_us") / us(raw.p(50))),
            "p99": r2(f("p99_us") / us(raw.p(99))),
            "w1_commands": w1["commands"],
            "w1_commands_per_s": w1["commands_per_s"],
            "raw_appends_per_s": round1(raw.appends_per_s()),
        })
    });
    m.insert("w1_over_raw".into(), w1_ratio.unwrap_or(Value::Null));
    m.insert(
        "notes".into(),
        "framework time / plain-SQL time for the same events (> 1: slower by that factor). \
         adapter_over_raw: SqliteEventStore::append vs the raw loop, wall time and \
         per-append p50/p99. w1_over_raw: the whole W1 run through Cqrs::execute on SQLite \
         (aggregate cache on; its commands include the rejected ones, which append \
         nothing, and the harness's read-model update) vs the raw loop inserting the \
         events W1 commits; p50/p99 per command vs per raw append"
            .into(),
    );
    Value::Object(m)
}
