//! The measurement logic of `bank-bench` (WORKLOAD.md sections 4, 6 and 7), shared by the
//! binary and the tests.
//!
//! Each `run_*` function executes one workload once on the store it is given and returns
//! what it measured; [`run_workload`] opens a fresh store of a [`Backend`] (`mem`: an
//! [`InMemoryEventStore`]; `sqlite`: a [`SqliteEventStore`] in one file in a fresh
//! temporary directory, deleted afterwards), runs one workload on it and turns the result
//! into the JSON line of section 6, after asserting the check values.
//!
//! In W1/W2 the read model [`AccountSummary`] is the framework's: an inline projection
//! ([`bank_runtime`]), whose documents live in the store's views and change in the
//! append's transaction; the check values are read back from those views
//! ([`ViewStoreExt::all`]) after the clock stops. [`run_catch_up`] measures the same
//! view as an async projection catching up with a pre-appended log (`projection-bench`).
//!
//! ```
//! use cqrs_examples::harness::{Backend, BenchParams, Workload, run_mem, run_workload};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let params = BenchParams { accounts: 5, commands: 4, ..BenchParams::default() };
//! let line = run_mem(Workload::W1, &params, true, 1).await.unwrap();
//! assert_eq!(line["workload"], "W1");
//! assert_eq!(line["commands"], 20);
//!
//! let line = run_workload(Backend::Sqlite, Workload::W1, &params, true, 1).await.unwrap();
//! assert_eq!((line["backend"].as_str(), line["commands"].as_u64()), (Some("sqlite"), Some(20)));
//! # });
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cqrs_core::prelude::*;
use cqrs_core::projection::{
    ProjectionRunner, RunnerOptions, ViewProjection, ViewStore, ViewStoreExt,
};
use cqrs_core::snapshot::SnapshotPolicy;
use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_core::store::sqlite::{Durability, SqliteEventStore, SqliteOptions, SqliteStats};
use cqrs_core::{CodecError, Loaded, StoreError};
use serde_json::{Value, json};

use crate::bank::{BankAccount, BankError};
use crate::workload::{
    self, AccountSummary, CheckValues, Planned, SummaryTotals, W3_ACCOUNT, catch_up_events,
    catch_up_share, catch_up_summary, round_robin_plan, task_accounts, w3_events, w3_final_balance,
};

/// The value of the JSON field `framework`.
pub const FRAMEWORK: &str = "cqrs-core";

/// How many events W3 appends per `EventStore::append` call before timing.
pub const W3_APPEND_BATCH: usize = 100;

/// The aggregate cache capacity used when the cache is on (at least the account count).
pub const CACHE_CAPACITY: usize = 10_000;

/// The runtime W2 runs on, as reported in the JSON field `runtime`.
pub const RUNTIME: &str = "tokio multi-thread, default worker count (= cores)";

/// A workload of WORKLOAD.md section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Sequential command throughput.
    W1,
    /// Concurrent command throughput, `tasks` tasks.
    W2,
    /// Rehydration of one long stream.
    W3,
    /// Rehydration from the newest snapshot plus the events after it.
    W3Snapshot,
}

impl Workload {
    /// The name used in the JSON field `workload`.
    pub fn name(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W3Snapshot => "W3-snapshot",
        }
    }
}

/// The parameters of a benchmark run (the flags of `bank-bench`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchParams {
    /// `A`: accounts in W1/W2.
    pub accounts: usize,
    /// `C`: commands per account in W1/W2.
    pub commands: usize,
    /// `T`: tasks in W2.
    pub tasks: usize,
    /// `N`: events of the W3 stream.
    pub events: u64,
    /// Snapshot interval of W3-snapshot.
    pub snapshot_every: u64,
    /// `L`: timed loads in W3.
    pub loads: usize,
    /// The command generator's seed.
    pub seed: u64,
}

impl Default for BenchParams {
    /// The defaults of WORKLOAD.md: A=1000, C=50, T=8, N=10,000, snapshots every 100,
    /// L=100, SEED=42.
    fn default() -> Self {
        Self {
            accounts: workload::DEFAULT_ACCOUNTS,
            commands: workload::DEFAULT_COMMANDS,
            tasks: 8,
            events: 10_000,
            snapshot_every: 100,
            loads: 100,
            seed: workload::DEFAULT_SEED,
        }
    }
}

impl BenchParams {
    /// Checks that every count is at least 1.
    pub fn validate(&self) -> Result<(), BenchError> {
        let zero = [
            ("accounts", self.accounts == 0),
            ("commands", self.commands == 0),
            ("tasks", self.tasks == 0),
            ("events", self.events == 0),
            ("loads", self.loads == 0),
        ];
        match zero.iter().find(|(_, z)| *z) {
            Some((name, _)) => Err(BenchError::Params(format!("--{name} must be at least 1"))),
            None => Ok(()),
        }
    }

    /// True for A=1000, C=50, SEED=42, whose check values are published.
    pub fn has_published_check_values(&self) -> bool {
        self.accounts == workload::DEFAULT_ACCOUNTS
            && self.commands == workload::DEFAULT_COMMANDS
            && self.seed == workload::DEFAULT_SEED
    }
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A command failed for another reason than a domain rejection.
    #[error("{workload}: command #{index} of its plan, on account `{account}`, failed: {source}")]
    Command {
        /// The workload.
        workload: &'static str,
        /// The account.
        account: String,
        /// The command's position in its task's plan.
        index: usize,
        /// The framework's error.
        #[source]
        source: Box<CommandError<BankError>>,
    },
    /// An accepted command wrote another number of events than one.
    #[error("{workload}: {accepted} accepted commands wrote {events} events; each must write one")]
    EventCount {
        /// The workload.
        workload: &'static str,
        /// Accepted commands.
        accepted: u64,
        /// Events they wrote.
        events: u64,
    },
    /// A W1/W2 run did not end with the check values.
    #[error("{workload}: check values wrong: expected {expected:?}, observed {observed:?}")]
    Check {
        /// The workload.
        workload: &'static str,
        /// What a correct run ends with.
        expected: CheckValues,
        /// What this run ended with.
        observed: CheckValues,
    },
    /// A W3 load did not return the fully applied state.
    #[error(
        "W3: load returned opened={opened}, balance={balance}, version={version}; expected \
         opened=true, balance={expected_balance}, version={expected_version}"
    )]
    W3State {
        /// Whether the loaded account is open.
        opened: bool,
        /// Its balance.
        balance: u64,
        /// Its version.
        version: u64,
        /// The balance it must have.
        expected_balance: u64,
        /// The version it must have.
        expected_version: u64,
    },
    /// Loading the W3 account failed.
    #[error("W3: load failed: {0}")]
    Load(#[source] Box<CommandError<BankError>>),
    /// The W3 pre-append failed.
    #[error("W3: pre-append failed: {0}")]
    Store(#[from] StoreError),
    /// A W3 event could not be encoded.
    #[error("W3: cannot encode an event: {0}")]
    Encode(#[from] CodecError),
    /// A W2 task panicked or was cancelled.
    #[error("W2: a task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The parameters are not usable.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// The workload or backend is not built yet.
    #[error("{0}")]
    Unsupported(String),
    /// The store of a workload could not be opened.
    #[error("cannot open the {backend} store: {source}")]
    Open {
        /// The backend.
        backend: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A file system operation of the set-up failed (the scratch directory).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A store operation of a measurement failed.
    #[error("{what}: {source}")]
    StoreOp {
        /// What was being done.
        what: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A statement of the plain-SQL baseline failed.
    #[error("plain SQL baseline: {what}: {source}")]
    Sql {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: rusqlite::Error,
    },
    /// The measurement's set-up is not what it must be (a store still in use when
    /// closed, pragmas that differ between the adapter and the baseline, …).
    #[error("{0}")]
    Setup(String),
    /// An async projection's catch-up did not end with the fold of the appended events.
    #[error(
        "projection catch-up: expected {expected:?} at position {head}, observed {observed:?} \
         at position {position}"
    )]
    CatchUp {
        /// The totals of the fold of the appended events.
        expected: SummaryTotals,
        /// The totals of the view's documents.
        observed: SummaryTotals,
        /// The head of the log.
        head: u64,
        /// The projection's checkpoint.
        position: u64,
    },
}

/// What a W1 or W2 run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRun {
    /// W1: first call start to last call end; W2: start of spawning to the last task's end.
    pub wall: Duration,
    /// Every command's latency in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// The check values observed: counts from the command results, sums from the
    /// `AccountSummary` documents in the store's views.
    pub observed: CheckValues,
    /// `AccountSummary` documents in the store's views.
    pub rows: usize,
}

impl CommandRun {
    /// Commands per second over the wall time.
    pub fn commands_per_s(&self) -> f64 {
        self.observed.commands as f64 / self.wall.as_secs_f64()
    }
}

/// What a W3 run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRun {
    /// Events in the stream.
    pub events: u64,
    /// Every timed load's duration in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Σ of the timed loads.
    pub total: Duration,
}

impl LoadRun {
    /// `N·L / Σ load times`.
    pub fn events_per_s(&self) -> f64 {
        (self.events * self.latencies_ns.len() as u64) as f64 / self.total.as_secs_f64()
    }
}

/// The nearest-rank percentile `num/den` of sorted values: `sorted[ceil(num/den·n) − 1]`
/// (0 for no values). Integer arithmetic, so `p99` of 50,000 values is exactly
/// `sorted[49_499]`.
///
/// ```
/// use cqrs_examples::harness::nearest_rank;
/// let v: Vec<u64> = (1..=100).collect();
/// assert_eq!(nearest_rank(&v, 50, 100), 50);
/// assert_eq!(nearest_rank(&v, 99, 100), 99);
/// assert_eq!(nearest_rank(&[7], 99, 100), 7);
/// ```
pub fn nearest_rank(sorted: &[u64], num: u64, den: u64) -> u64 {
    let n = sorted.len() as u64;
    if n == 0 {
        return 0;
    }
    let rank = (n * num).div_ceil(den).clamp(1, n);
    sorted[(rank - 1) as usize]
}

/// The bank's command runtime and the view store its read model lives in: what W1/W2
/// run on.
///
/// ```
/// use cqrs_core::projection::ViewStoreExt;
/// use cqrs_examples::bank::BankCommand;
/// use cqrs_examples::harness::mem_cqrs;
/// use cqrs_examples::workload::AccountSummary;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let bank = mem_cqrs(true, 1);
/// let open = BankCommand::OpenAccount { account_id: "a".into(), owner: "ann".into() };
/// bank.cqrs().execute("a", open).await.unwrap();
/// bank.cqrs().execute("a", BankCommand::Deposit { amount: 3 }).await.unwrap();
/// let row = bank.views().get::<AccountSummary>("a").await.unwrap();
/// assert_eq!(row, Some(AccountSummary { balance: 3, tx_count: 1 }));
/// # });
/// ```
#[derive(Clone)]
pub struct BankRuntime {
    cqrs: Cqrs<BankAccount>,
    views: Arc<dyn ViewStore>,
}

impl BankRuntime {
    /// The command runtime (with the inline `AccountSummary` projection).
    pub fn cqrs(&self) -> &Cqrs<BankAccount> {
        &self.cqrs
    }

    /// The store's views, where the `AccountSummary` documents are.
    pub fn views(&self) -> &Arc<dyn ViewStore> {
        &self.views
    }

    /// The event store (the same object as the views).
    pub fn store(&self) -> &Arc<dyn EventStore> {
        self.cqrs.store()
    }

    /// The totals of the `AccountSummary` documents.
    pub async fn summary_totals(&self) -> Result<SummaryTotals, BenchError> {
        summary_totals(self.views.as_ref()).await
    }
}

/// The totals of the `AccountSummary` documents in `views` (read with
/// [`ViewStoreExt::all`]).
pub async fn summary_totals(views: &dyn ViewStore) -> Result<SummaryTotals, BenchError> {
    let rows = views
        .all::<AccountSummary>()
        .await
        .map_err(|source| BenchError::StoreOp {
            what: "reading the AccountSummary documents",
            source,
        })?;
    Ok(SummaryTotals::of(&rows))
}

/// A fresh runtime over a fresh in-memory store, with the aggregate cache on (capacity
/// at least `accounts`) or off (`cache_capacity(0)`: every command replays its stream),
/// and the inline `AccountSummary` projection.
pub fn mem_cqrs(cache: bool, accounts: usize) -> BankRuntime {
    let store = InMemoryEventStore::new();
    bank_runtime(Arc::new(store.clone()), Arc::new(store), cache, accounts)
}

/// A runtime over `store` with the aggregate cache on (capacity at least `accounts`) or
/// off, and the read model [`AccountSummary`] as an inline projection
/// ([`CqrsBuilder::inline_projection`](cqrs_core::CqrsBuilder::inline_projection)): its
/// documents change in each append's transaction, in `views`, which must be the same
/// store object as `store`.
pub fn bank_runtime(
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    cache: bool,
    accounts: usize,
) -> BankRuntime {
    let capacity = if cache {
        CACHE_CAPACITY.max(accounts)
    } else {
        0
    };
    let cqrs = Cqrs::<BankAccount>::builder(store)
        .cache_capacity(capacity)
        .inline_projection(ViewProjection::<AccountSummary>::new())
        .build();
    BankRuntime { cqrs, views }
}

/// A plain runtime over `store` (no read model), with the aggregate cache on (capacity
/// at least `accounts`) or off: what W3 loads through.
pub fn cqrs_over(store: Arc<dyn EventStore>, cache: bool, accounts: usize) -> Cqrs<BankAccount> {
    let capacity = if cache {
        CACHE_CAPACITY.max(accounts)
    } else {
        0
    };
    Cqrs::<BankAccount>::builder(store)
        .cache_capacity(capacity)
        .build()
}

/// A backend of WORKLOAD.md section 5 that this harness runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// [`InMemoryEventStore`]: nothing persisted.
    Mem,
    /// [`SqliteEventStore`] with its default options, one file in a fresh temporary
    /// directory per workload.
    Sqlite,
    /// [`PostgresEventStore`] on the server of [`pg_url`], pool of [`PG_POOL_SIZE`]
    /// connections, one fresh schema `bench_…` per workload, dropped afterwards.
    Postgres,
}

/// The default URL of the `postgres` backend: the cluster of `bench/pg-up.sh`.
pub const DEFAULT_PG_URL: &str = "postgres://bench@localhost/bench?host=/tmp&port=55432";

/// The pool size of the `postgres` backend (postgres-es's `default_postgress_pool`: 10).
pub const PG_POOL_SIZE: usize = 10;

/// The URL of the `postgres` backend: `$BENCH_PG_URL`, else [`DEFAULT_PG_URL`].
pub fn pg_url() -> String {
    std::env::var("BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// A fresh schema name `bench_<pid>_<nanos>_<n>` (a valid adapter identifier).
pub fn fresh_schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "bench_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn pg_setup_error(what: &str) -> impl Fn(&dyn std::fmt::Display) -> BenchError + '_ {
    move |e| BenchError::Setup(format!("postgres: {what}: {e}"))
}

/// Runs `sql` (one statement, outside any transaction) on a connection of `store`'s pool.
pub async fn pg_exec(store: &PostgresEventStore, sql: &str) -> Result<(), BenchError> {
    let client = store
        .pool()
        .get()
        .await
        .map_err(|e| pg_setup_error("getting a connection")(&e))?;
    client
        .batch_execute(sql)
        .await
        .map_err(|e| pg_setup_error(sql)(&e))
}

/// `SHOW name` on a connection of `store`'s pool.
pub async fn pg_show(store: &PostgresEventStore, name: &str) -> Result<String, BenchError> {
    let client = store
        .pool()
        .get()
        .await
        .map_err(|e| pg_setup_error("getting a connection")(&e))?;
    let row = client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .map_err(|e| pg_setup_error("SHOW")(&e))?;
    Ok(row.get::<_, String>(0))
}

/// `VACUUM ANALYZE` on the event, stream and snapshot tables of `store`'s schema (the
/// untimed step after the W3 pre-append, WORKLOAD.md section 5).
pub async fn pg_vacuum_analyze(store: &PostgresEventStore) -> Result<(), BenchError> {
    for table in ["events", "streams", "snapshots"] {
        pg_exec(
            store,
            &format!("VACUUM ANALYZE \"{}\".{table}", store.schema()),
        )
        .await?;
    }
    Ok(())
}

impl Backend {
    /// The name used in the JSON field `backend`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mem => "mem",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// What the JSON lines say about the store a measurement ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreInfo {
    /// The backend.
    pub backend: Backend,
    /// The JSON field `versions`.
    pub versions: String,
    /// The store and its settings, as the `notes` describe it.
    pub description: String,
    /// Directory of the database file, if there is one.
    pub db_dir: Option<PathBuf>,
}

impl StoreInfo {
    /// The `mem` backend.
    pub fn mem() -> Self {
        Self {
            backend: Backend::Mem,
            versions: format!("cqrs-core {}", env!("CARGO_PKG_VERSION")),
            description: "in-memory store (InMemoryEventStore, nothing persisted)".into(),
            db_dir: None,
        }
    }

    /// The `sqlite` backend: `store`'s options and the pragmas its write connection
    /// reports, so that the notes state what was in effect, not what was intended.
    pub async fn sqlite(store: &SqliteEventStore, db_dir: &Path) -> Result<Self, BenchError> {
        let pragmas = store.pragmas().await.map_err(|source| BenchError::Open {
            backend: "sqlite",
            source,
        })?;
        let get = |name: &str| {
            pragmas
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("?", |(_, v)| v.as_str())
                .to_owned()
        };
        let synchronous = match get("synchronous").as_str() {
            "0" => "OFF".to_owned(),
            "1" => "NORMAL".to_owned(),
            "2" => "FULL".to_owned(),
            "3" => "EXTRA".to_owned(),
            other => other.to_owned(),
        };
        let options = store.options();
        let durability = match options.durability_level() {
            Durability::Full => {
                "Durability::Full, the default: every acknowledged append's \
                                 transaction is fsynced (WAL) before the append returns"
            }
            Durability::Normal => "Durability::Normal: an OS crash may lose the last commits",
        };
        let description = format!(
            "SQLite store (SqliteEventStore::open, default SqliteOptions: {durability}; \
             journal_mode={}, synchronous={synchronous}, wal_autocheckpoint={} pages with \
             checkpoints on the adapter's background thread, cache_size={}, \
             locking_mode={}; group commit on: up to {} queued writes share one BEGIN \
             IMMEDIATE transaction and one fsync; {} reader connections), one database \
             file in a fresh temporary directory under {}, deleted after the workload",
            get("journal_mode"),
            get("wal_autocheckpoint"),
            get("cache_size"),
            get("locking_mode"),
            options.max_group(),
            options.reader_count(),
            db_dir.parent().unwrap_or(db_dir).display(),
        );
        Ok(Self {
            backend: Backend::Sqlite,
            versions: format!(
                "cqrs-core {}, rusqlite 0.41 (bundled SQLite {})",
                env!("CARGO_PKG_VERSION"),
                rusqlite::version()
            ),
            description,
            db_dir: Some(db_dir.to_owned()),
        })
    }
}

impl StoreInfo {
    /// The `postgres` backend: the adapter's settings and the server's, as reported by
    /// the server.
    pub async fn postgres(store: &PostgresEventStore, url: &str) -> Result<Self, BenchError> {
        let version = pg_show(store, "server_version").await?;
        let fsync = pg_show(store, "fsync").await?;
        let sync = pg_show(store, "synchronous_commit").await?;
        let buffers = pg_show(store, "shared_buffers").await?;
        let description = format!(
            "PostgreSQL store (PostgresOptions::new(url).schema(fresh).pool_size({PG_POOL_SIZE})\
             .connect(): tokio-postgres client, deadpool-postgres pool of at most \
             {PG_POOL_SIZE} connections, recycling Fast, tenant \"\", default read_wait; \
             a plain append is one round trip, SELECT append_events(...) (prepared), its \
             own transaction committed before the append returns (an append with inline \
             projections: two, see the read model); no group commit; gap-free \
             global log bookkeeping (xid8 per event, position claim) on); server PostgreSQL \
             {version}, fsync={fsync}, synchronous_commit={sync}, shared_buffers={buffers}; \
             url {url}; one fresh schema `bench_<pid>_<nanos>_<n>` per workload (so empty \
             tables), CHECKPOINT before the workload (untimed), schema dropped after it"
        );
        Ok(Self {
            backend: Backend::Postgres,
            versions: format!(
                "cqrs-core {}, tokio-postgres 0.7, deadpool-postgres 0.14, PostgreSQL {version}",
                env!("CARGO_PKG_VERSION")
            ),
            description,
            db_dir: None,
        })
    }
}

/// A fresh directory under the system's temporary directory (`$TMPDIR`, else `/tmp`),
/// removed with everything in it when dropped.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `<temp>/cqrs-bench-<pid>-<nanos>-<n>`.
    pub fn new() -> Result<Self, BenchError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "cqrs-bench-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).map_err(|source| BenchError::Io {
            what: format!("creating `{}`", path.display()),
            source,
        })?;
        Ok(Self(path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file name of the database in a workload's scratch directory.
pub const DB_FILE: &str = "events.db";

/// Opens a [`SqliteEventStore`] with `options` on a fresh file in a new [`ScratchDir`]
/// (on a blocking thread: opening creates the schema).
pub async fn open_scratch_sqlite(
    options: SqliteOptions,
) -> Result<(ScratchDir, SqliteEventStore), BenchError> {
    let dir = ScratchDir::new()?;
    let path = dir.path().join(DB_FILE);
    let store = tokio::task::spawn_blocking(move || options.open(path))
        .await?
        .map_err(|source| BenchError::Open {
            backend: "sqlite",
            source,
        })?;
    Ok((dir, store))
}

/// Waits (on a blocking thread, at most `timeout`) until SQLite has closed the database
/// at `db`: the last connection to close checkpoints the WAL and deletes `<db>-wal`.
/// The adapter's writer and checkpointer threads close their connections after the
/// store is dropped, not during the drop.
pub async fn wait_closed(db: PathBuf, timeout: Duration) -> Result<(), BenchError> {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let closed = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        while wal.exists() {
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    })
    .await?;
    match closed {
        true => Ok(()),
        false => Err(BenchError::Setup(format!(
            "`{}` was still open {timeout:?} after its store was dropped",
            db.display()
        ))),
    }
}

/// The store one workload runs on, and what it takes to clean it up.
pub struct BenchStore {
    info: StoreInfo,
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    sqlite: Option<SqliteEventStore>,
    dir: Option<ScratchDir>,
    postgres: Option<PostgresEventStore>,
}

impl BenchStore {
    /// A fresh, empty store of `backend` (`postgres`: on the server of [`pg_url`]).
    pub async fn open(backend: Backend) -> Result<Self, BenchError> {
        Self::open_with(backend, &pg_url()).await
    }

    /// A fresh, empty store of `backend`; `postgres` connects to `url`, in a fresh
    /// schema, and runs `CHECKPOINT`.
    pub async fn open_with(backend: Backend, url: &str) -> Result<Self, BenchError> {
        match backend {
            Backend::Postgres => {
                let store = PostgresOptions::new(url)
                    .schema(fresh_schema_name())
                    .pool_size(PG_POOL_SIZE)
                    .connect()
                    .await
                    .map_err(|source| BenchError::Open {
                        backend: "postgres",
                        source,
                    })?;
                let info = StoreInfo::postgres(&store, url).await?;
                pg_exec(&store, "CHECKPOINT").await?;
                Ok(Self {
                    info,
                    store: Arc::new(store.clone()),
                    views: Arc::new(store.clone()),
                    sqlite: None,
                    dir: None,
                    postgres: Some(store),
                })
            }
            Backend::Mem => {
                let store = InMemoryEventStore::new();
                Ok(Self {
                    info: StoreInfo::mem(),
                    store: Arc::new(store.clone()),
                    views: Arc::new(store),
                    sqlite: None,
                    dir: None,
                    postgres: None,
                })
            }
            Backend::Sqlite => {
                let (dir, store) = open_scratch_sqlite(SqliteOptions::default()).await?;
                let info = StoreInfo::sqlite(&store, dir.path()).await?;
                Ok(Self {
                    info,
                    store: Arc::new(store.clone()),
                    views: Arc::new(store.clone()),
                    sqlite: Some(store),
                    dir: Some(dir),
                    postgres: None,
                })
            }
        }
    }

    /// The store, to build a runtime over.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// The same store as a [`ViewStore`]: where projections keep their documents.
    pub fn views(&self) -> Arc<dyn ViewStore> {
        self.views.clone()
    }

    /// A runtime over the store with the inline `AccountSummary` projection (see
    /// [`bank_runtime`]).
    pub fn bank_runtime(&self, cache: bool, accounts: usize) -> BankRuntime {
        bank_runtime(self.store(), self.views(), cache, accounts)
    }

    /// What the JSON lines say about it.
    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// The PostgreSQL store (`postgres` only).
    pub fn postgres(&self) -> Option<&PostgresEventStore> {
        self.postgres.as_ref()
    }

    /// The SQLite writer's counters (`sqlite` only).
    pub fn sqlite_stats(&self) -> Option<SqliteStats> {
        self.sqlite.as_ref().map(SqliteEventStore::stats)
    }

    /// Closes the store and deletes its directory. Every runtime built over
    /// [`store`](Self::store) must have been dropped.
    pub async fn close(self) -> Result<(), BenchError> {
        let Self {
            store,
            views,
            sqlite,
            dir,
            postgres,
            info: _,
        } = self;
        if let Some(pg) = &postgres {
            pg_exec(pg, &format!("DROP SCHEMA \"{}\" CASCADE", pg.schema())).await?;
        }
        if Arc::strong_count(&store) != 1 || Arc::strong_count(&views) != 1 {
            return Err(BenchError::Setup(
                "the store is closed while a runtime still uses it".into(),
            ));
        }
        drop(store);
        drop(views);
        drop(sqlite);
        if let Some(dir) = dir {
            wait_closed(dir.path().join(DB_FILE), Duration::from_secs(60)).await?;
        }
        Ok(())
    }
}

/// The JSON object of a SQLite writer's counters.
pub fn stats_json(stats: &SqliteStats) -> Value {
    json!({
        "transactions": stats.transactions,
        "write_requests": stats.write_requests,
        "appended_events": stats.appended_events,
        "largest_group": stats.largest_group,
    })
}

/// The ids of accounts `0..accounts`, built before any clock starts.
pub fn account_ids(accounts: usize) -> Arc<[String]> {
    (0..accounts).map(workload::account_id).collect()
}

/// One task's part of a W1/W2 run.
struct PlanRun {
    first_start: Option<Instant>,
    last_end: Option<Instant>,
    latencies_ns: Vec<u64>,
    accepted: u64,
    events: u64,
    rejected: u64,
}

/// Runs `plan` one command at a time. The timed call is `execute` alone: the read model
/// is an inline projection, updated inside it (in the append's transaction).
async fn run_plan(
    workload: &'static str,
    cqrs: &Cqrs<BankAccount>,
    ids: &[String],
    plan: Vec<Planned>,
) -> Result<PlanRun, BenchError> {
    let mut run = PlanRun {
        first_start: None,
        last_end: None,
        latencies_ns: Vec::with_capacity(plan.len()),
        accepted: 0,
        events: 0,
        rejected: 0,
    };
    for (index, Planned { account, command }) in plan.into_iter().enumerate() {
        let id = ids[account].as_str();
        let start = Instant::now();
        let result = cqrs.execute(id, command).await;
        let end = Instant::now();
        run.first_start.get_or_insert(start);
        run.last_end = Some(end);
        run.latencies_ns.push((end - start).as_nanos() as u64);
        match result {
            Ok(committed) => {
                run.accepted += 1;
                run.events += committed.events.len() as u64;
            }
            Err(e) if e.rejection().is_some() => run.rejected += 1,
            Err(source) => {
                return Err(BenchError::Command {
                    workload,
                    account: id.to_owned(),
                    index,
                    source: Box::new(source),
                });
            }
        }
    }
    Ok(run)
}

/// Merges the tasks' runs and reads the read model's totals from the store's views
/// (after the clock stopped).
async fn finish(
    workload: &'static str,
    wall: Duration,
    runs: Vec<PlanRun>,
    bank: &BankRuntime,
) -> Result<CommandRun, BenchError> {
    let total = runs.iter().map(|r| r.latencies_ns.len()).sum();
    let mut latencies_ns = Vec::with_capacity(total);
    let mut observed = CheckValues::default();
    let mut events = 0;
    for run in runs {
        latencies_ns.extend_from_slice(&run.latencies_ns);
        observed.accepted += run.accepted;
        observed.rejected += run.rejected;
        events += run.events;
    }
    latencies_ns.sort_unstable();
    observed.commands = latencies_ns.len() as u64;
    let totals = bank.summary_totals().await?;
    (observed.balance_sum, observed.tx_count_sum) = (totals.balance_sum, totals.tx_count_sum);
    if events != observed.accepted {
        return Err(BenchError::EventCount {
            workload,
            accepted: observed.accepted,
            events,
        });
    }
    Ok(CommandRun {
        wall,
        latencies_ns,
        observed,
        rows: totals.rows,
    })
}

/// W1: every command of `params` (round-robin over all accounts) from one task, each
/// awaited before the next. Commands are generated before the clock starts; the read
/// model's totals are read from the store's views after it stops.
pub async fn run_w1(bank: &BankRuntime, params: &BenchParams) -> Result<CommandRun, BenchError> {
    let ids = account_ids(params.accounts);
    let all: Vec<usize> = (0..params.accounts).collect();
    let plan = round_robin_plan(params.seed, &all, params.commands);
    let run = run_plan("W1", bank.cqrs(), &ids, plan).await?;
    let wall = match (run.first_start, run.last_end) {
        (Some(s), Some(e)) => e - s,
        _ => Duration::ZERO,
    };
    finish("W1", wall, vec![run], bank).await
}

/// W2: `params.tasks` tasks spawned together on the current (multi-thread) tokio
/// runtime; task `t` runs the round-robin plan of the accounts with `i % T == t`. The
/// read model's totals are read from the store's views after the last task ended. Must
/// be called inside a tokio runtime.
pub async fn run_w2(bank: &BankRuntime, params: &BenchParams) -> Result<CommandRun, BenchError> {
    let ids = account_ids(params.accounts);
    let plans: Vec<Vec<Planned>> = (0..params.tasks)
        .map(|t| {
            let accounts = task_accounts(params.accounts, params.tasks, t);
            round_robin_plan(params.seed, &accounts, params.commands)
        })
        .collect();
    let mut handles = Vec::with_capacity(plans.len());
    let start = Instant::now();
    for plan in plans {
        let (cqrs, ids) = (bank.cqrs().clone(), ids.clone());
        handles.push(tokio::spawn(async move {
            run_plan("W2", &cqrs, &ids, plan).await
        }));
    }
    let mut runs = Vec::with_capacity(handles.len());
    for handle in handles {
        runs.push(handle.await??);
    }
    let wall = start.elapsed();
    finish("W2", wall, runs, bank).await
}

/// Appends the `n` W3 events to the stream of `w3-account` with
/// [`EventStore::append`], [`W3_APPEND_BATCH`] events per call (untimed set-up). With
/// `snapshots = Some((cqrs, every))`, a snapshot is taken through `cqrs` after each batch
/// that reaches a multiple of `every` (as a snapshot policy writes one in the commit that
/// reaches it).
pub async fn w3_pre_append(
    store: &dyn EventStore,
    n: u64,
    snapshots: Option<(&Cqrs<BankAccount>, u64)>,
) -> Result<(), BenchError> {
    w3_pre_append_batched(store, n, W3_APPEND_BATCH, snapshots).await
}

/// [`w3_pre_append`] with `batch` events per append.
pub async fn w3_pre_append_batched(
    store: &dyn EventStore,
    n: u64,
    batch: usize,
    snapshots: Option<(&Cqrs<BankAccount>, u64)>,
) -> Result<(), BenchError> {
    let stream = <BankAccount as Aggregate>::stream_id(W3_ACCOUNT);
    let mut version = 0u64;
    for chunk in w3_events(n).chunks(batch.max(1)) {
        let before = version;
        let batch = chunk
            .iter()
            .map(|e| NewEvent::encode(e, &JsonCodec, Metadata::default()))
            .collect::<Result<Vec<_>, _>>()?;
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        version = store.append(&stream, expected, batch).await?.stream_version;
        if let Some((cqrs, every)) = snapshots
            && before / every != version / every
        {
            cqrs.snapshot(W3_ACCOUNT)
                .await
                .map_err(|e| BenchError::Load(Box::new(e)))?;
        }
    }
    Ok(())
}

/// W3: pre-appends `params.events` events, then loads the account once untimed and
/// `params.loads` times timed with [`Cqrs::load`], asserting the fully applied state
/// after each load.
/// With `snapshots`, `cqrs` must have been built with a snapshot policy: the pre-append
/// takes one every `params.snapshot_every` events and each load reads the newest plus
/// the events after it (W3-snapshot).
pub async fn run_w3(
    cqrs: &Cqrs<BankAccount>,
    params: &BenchParams,
    snapshots: bool,
) -> Result<LoadRun, BenchError> {
    let n = params.events;
    let every = snapshots.then_some((cqrs, params.snapshot_every));
    w3_pre_append(cqrs.store().as_ref(), n, every).await?;
    timed_loads(cqrs, n, params.loads).await
}

/// [`run_w3`] on `bench_store`: on `postgres`, `VACUUM ANALYZE` of the tables between
/// the pre-append and the loads (untimed).
pub async fn run_w3_on(
    bench_store: &BenchStore,
    cqrs: &Cqrs<BankAccount>,
    params: &BenchParams,
    snapshots: bool,
) -> Result<LoadRun, BenchError> {
    let n = params.events;
    let every = snapshots.then_some((cqrs, params.snapshot_every));
    w3_pre_append(cqrs.store().as_ref(), n, every).await?;
    if let Some(pg) = bench_store.postgres() {
        pg_vacuum_analyze(pg).await?;
    }
    timed_loads(cqrs, n, params.loads).await
}

/// The measured part of W3: one untimed load of `w3-account`, then `loads` timed
/// [`Cqrs::load`]s, each asserted (untimed) to return the state of the first `n` W3
/// events at version `n`.
pub async fn timed_loads(
    cqrs: &Cqrs<BankAccount>,
    n: u64,
    loads: usize,
) -> Result<LoadRun, BenchError> {
    let expected_balance = w3_final_balance(n);
    let verify = |loaded: Loaded<BankAccount>| {
        let ok =
            loaded.state.opened && loaded.state.balance == expected_balance && loaded.version == n;
        match ok {
            true => Ok(()),
            false => Err(BenchError::W3State {
                opened: loaded.state.opened,
                balance: loaded.state.balance,
                version: loaded.version,
                expected_balance,
                expected_version: n,
            }),
        }
    };
    verify(
        cqrs.load(W3_ACCOUNT)
            .await
            .map_err(|e| BenchError::Load(Box::new(e)))?,
    )?;
    let mut latencies_ns = Vec::with_capacity(loads);
    let mut total = Duration::ZERO;
    for _ in 0..loads {
        let start = Instant::now();
        let loaded = cqrs.load(W3_ACCOUNT).await;
        let took = start.elapsed();
        verify(loaded.map_err(|e| BenchError::Load(Box::new(e)))?)?;
        total += took;
        latencies_ns.push(took.as_nanos() as u64);
    }
    latencies_ns.sort_unstable();
    Ok(LoadRun {
        events: n,
        latencies_ns,
        total,
    })
}

/// Asserts a W1/W2 run's check values: those the reference model computes for the
/// parameters (and, for the default parameters, the published ones), and one read-model
/// row per account.
pub fn check(workload: Workload, params: &BenchParams, run: &CommandRun) -> Result<(), BenchError> {
    let expected = CheckValues::expected(params.seed, params.accounts, params.commands);
    let published_ok = !params.has_published_check_values() || expected == CheckValues::DEFAULTS;
    if run.observed != expected || run.rows != params.accounts || !published_ok {
        return Err(BenchError::Check {
            workload: workload.name(),
            expected: if published_ok {
                expected
            } else {
                CheckValues::DEFAULTS
            },
            observed: run.observed,
        });
    }
    Ok(())
}

pub(crate) fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// `x` rounded to one decimal.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `release` or `debug`.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The number of cores the process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The fields every JSON line of `store` has: framework, versions, backend, workload
/// (`workload`), profile, rep, cores, runtime.
fn common(store: &StoreInfo, workload: &str, rep: u32) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("framework".into(), FRAMEWORK.into());
    m.insert("versions".into(), store.versions.clone().into());
    m.insert("backend".into(), store.backend.name().into());
    m.insert("workload".into(), workload.into());
    m.insert("profile".into(), profile().into());
    m.insert("rep".into(), rep.into());
    m.insert("cores".into(), cores().into());
    m.insert("runtime".into(), RUNTIME.into());
    m
}

/// What the `notes` of a W1/W2 line say about the read model on `backend`.
pub fn read_model_notes(backend: Backend) -> String {
    let (where_, how) = match backend {
        Backend::Mem => (
            "the in-memory store's document map",
            "the events and the documents are written together under the store's write \
             lock, the projection run on the batch before anything is written",
        ),
        Backend::Sqlite => (
            "the `views` table of the same SQLite file (no checkpoint: inline)",
            "the writer thread applies it in the append's own savepoint of the group's \
             transaction, so events and documents commit (and are fsynced) together",
        ),
        Backend::Postgres => (
            "the `views` table (jsonb) of the same schema (no checkpoint: inline)",
            "two round trips per accepted command instead of one: BEGIN with \
             append_events and the document read (FOR UPDATE, only the documents it \
             changes); the document write with COMMIT",
        ),
    };
    format!(
        "read model AccountSummary: inline projection, documents in the store's views, \
         updated in the append's transaction (inline projection in the append transaction: \
         CqrsBuilder::inline_projection(ViewProjection::<AccountSummary>::new()), a \
         hand-written View, JSON documents in {where_}; {how}), so it is up to date when \
         execute returns, inside the timed call; the check values are read back from the \
         views with ViewStoreExt::all after the clock stops"
    )
}

fn command_notes(store: &StoreInfo, cache: bool) -> String {
    let cache = if cache {
        "aggregate cache on (capacity max(10000, accounts); an account is replayed from the \
         store only on its first command)"
    } else {
        "aggregate cache off (cache_capacity(0): every command replays the account's whole \
         stream from the store, as cqrs-es does)"
    };
    let description = &store.description;
    let read_model = read_model_notes(store.backend);
    match store.backend {
        Backend::Mem => format!(
            "{cache}; no snapshots; no group commit (one append per command); {description}, \
             JSON codec; {read_model}; default retry policy, no conflicts possible"
        ),
        Backend::Sqlite => format!(
            "{cache}; no snapshots; one append per accepted command, group commit in the \
             store (appends queued together share a transaction and its fsync: W1 has one \
             writer, so one transaction per append; W2 up to `tasks`, see \
             sqlite.largest_group); {description}; JSON codec; {read_model}; default retry \
             policy, no conflicts possible"
        ),
        Backend::Postgres => format!(
            "{cache}; no snapshots; one append transaction per accepted command, no group \
             commit, no batching of commands; {description}; JSON codec; {read_model}; \
             default retry policy, no conflicts possible"
        ),
    }
}

/// Adds `p50_us` and `p99_us` (nearest rank) of `latencies_ns`.
pub fn insert_percentiles(m: &mut serde_json::Map<String, Value>, latencies_ns: &[u64]) {
    m.insert(
        "p50_us".into(),
        us(nearest_rank(latencies_ns, 50, 100)).into(),
    );
    m.insert(
        "p99_us".into(),
        us(nearest_rank(latencies_ns, 99, 100)).into(),
    );
}

/// The JSON line of a W1/W2 run on `store`.
pub fn command_json(
    store: &StoreInfo,
    workload: Workload,
    params: &BenchParams,
    cache: bool,
    rep: u32,
    run: &CommandRun,
) -> Value {
    let mut m = common(store, workload.name(), rep);
    let mut p = json!({
        "accounts": params.accounts,
        "commands_per_account": params.commands,
        "seed": params.seed,
        "cache": cache,
    });
    if workload == Workload::W2 {
        p["tasks"] = params.tasks.into();
    }
    m.insert("params".into(), p);
    m.insert("commands_per_s".into(), round1(run.commands_per_s()).into());
    insert_percentiles(&mut m, &run.latencies_ns);
    m.insert("commands".into(), run.observed.commands.into());
    m.insert("accepted".into(), run.observed.accepted.into());
    m.insert("rejected".into(), run.observed.rejected.into());
    m.insert("balance_sum".into(), run.observed.balance_sum.into());
    m.insert("tx_count_sum".into(), run.observed.tx_count_sum.into());
    m.insert("wall_s".into(), run.wall.as_secs_f64().into());
    m.insert("notes".into(), command_notes(store, cache).into());
    Value::Object(m)
}

/// The JSON line of a W3 run on `store`.
pub fn load_json(
    store: &StoreInfo,
    params: &BenchParams,
    rep: u32,
    run: &LoadRun,
    snapshot_every: Option<u64>,
) -> Value {
    let workload = match snapshot_every {
        Some(_) => Workload::W3Snapshot,
        None => Workload::W3,
    };
    let mut m = common(store, workload.name(), rep);
    m.insert(
        "params".into(),
        json!({ "events": params.events, "loads": params.loads, "snapshot_every": snapshot_every }),
    );
    m.insert("events_per_s".into(), round1(run.events_per_s()).into());
    insert_percentiles(&mut m, &run.latencies_ns);
    m.insert(
        "final_balance".into(),
        w3_final_balance(params.events).into(),
    );
    m.insert("wall_s".into(), run.total.as_secs_f64().into());
    let description = &store.description;
    let vacuum = match store.backend {
        Backend::Postgres => {
            ", then VACUUM ANALYZE of the events, streams and snapshots tables (untimed)"
        }
        _ => "",
    };
    let notes = match snapshot_every {
        None => format!(
            "Cqrs::load (bypasses the aggregate cache: reads the whole stream from the \
             store and decodes and applies every event, JSON codec); no snapshots; \
             {description}; pre-append with EventStore::append in batches of 100{vacuum}; \
             wall_s is the sum of the timed loads"
        ),
        Some(every) => format!(
            "Cqrs::load with SnapshotPolicy::every({every}) (bypasses the aggregate cache: \
             reads the newest snapshot, JSON, and decodes and applies the events after it); \
             {description}; pre-append with EventStore::append in batches of 100, a snapshot \
             taken with Cqrs::snapshot after each batch reaching a multiple of {every}{vacuum}; \
             events_per_s counts all N events the state reflects; wall_s is the sum of the \
             timed loads"
        ),
    };
    m.insert("notes".into(), notes.into());
    Value::Object(m)
}

/// Runs one workload once on the `mem` backend (a fresh store) and returns its JSON
/// line, after asserting the check values (W1/W2) or the loaded state (W3). `cache`
/// applies to W1/W2; W3's load path bypasses the cache.
pub async fn run_mem(
    workload: Workload,
    params: &BenchParams,
    cache: bool,
    rep: u32,
) -> Result<Value, BenchError> {
    run_workload(Backend::Mem, workload, params, cache, rep).await
}

/// Runs one workload once on a fresh store of `backend` and returns its JSON line, after
/// asserting the check values (W1/W2) or the loaded state (W3); then closes the store
/// (`sqlite`: deletes its directory). `cache` applies to W1/W2; W3's load path bypasses
/// the cache. A `sqlite` line also carries `sqlite` (the writer's counters: transactions,
/// write requests, largest group) and `tmp_dir` (where its scratch directory was).
pub async fn run_workload(
    backend: Backend,
    workload: Workload,
    params: &BenchParams,
    cache: bool,
    rep: u32,
) -> Result<Value, BenchError> {
    run_workload_with(backend, &pg_url(), workload, params, cache, rep).await
}

/// [`run_workload`] with the `postgres` backend on the server at `pg_url`.
pub async fn run_workload_with(
    backend: Backend,
    pg_url: &str,
    workload: Workload,
    params: &BenchParams,
    cache: bool,
    rep: u32,
) -> Result<Value, BenchError> {
    params.validate()?;
    let bench_store = BenchStore::open_with(backend, pg_url).await?;
    let info = bench_store.info().clone();
    let mut line = match workload {
        Workload::W1 | Workload::W2 => {
            let bank = bench_store.bank_runtime(cache, params.accounts);
            let run = match workload {
                Workload::W1 => run_w1(&bank, params).await?,
                _ => run_w2(&bank, params).await?,
            };
            drop(bank);
            check(workload, params, &run)?;
            command_json(&info, workload, params, cache, rep, &run)
        }
        Workload::W3 => {
            let cqrs = cqrs_over(bench_store.store(), true, params.accounts);
            let run = run_w3_on(&bench_store, &cqrs, params, false).await?;
            load_json(&info, params, rep, &run, None)
        }
        Workload::W3Snapshot => {
            let cqrs = Cqrs::<BankAccount>::builder(bench_store.store())
                .snapshots(SnapshotPolicy::every(params.snapshot_every))
                .build();
            let run = run_w3_on(&bench_store, &cqrs, params, true).await?;
            load_json(&info, params, rep, &run, Some(params.snapshot_every))
        }
    };
    if let Some(stats) = bench_store.sqlite_stats() {
        line["sqlite"] = stats_json(&stats);
    }
    if let Some(dir) = info.db_dir.as_deref().and_then(Path::parent) {
        line["tmp_dir"] = dir.display().to_string().into();
    }
    bench_store.close().await?;
    Ok(line)
}

/// The parameters of `projection-bench`: an async projection catching up with a
/// pre-appended log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpParams {
    /// Events pre-appended (untimed) and then projected (timed).
    pub events: u64,
    /// Accounts the events are spread over (one stream and one document each).
    pub accounts: usize,
    /// [`RunnerOptions::batch_size`]: events read and committed per projection batch.
    pub batch: usize,
    /// Events per [`EventStore::append`] call of the pre-append.
    pub append_batch: usize,
    /// Tasks appending concurrently in the pre-append (each owns the accounts with
    /// `i % tasks == t`), so that the SQLite store's group commit shares fsyncs.
    pub append_tasks: usize,
    /// Seed of the event amounts.
    pub seed: u64,
}

impl Default for CatchUpParams {
    /// 1,000,000 events over 1,000 accounts, batches of 1,000, appends of 100 from 8
    /// tasks, seed 42.
    fn default() -> Self {
        Self {
            events: 1_000_000,
            accounts: 1000,
            batch: 1000,
            append_batch: 100,
            append_tasks: 8,
            seed: workload::DEFAULT_SEED,
        }
    }
}

impl CatchUpParams {
    /// Checks that every count is at least 1.
    pub fn validate(&self) -> Result<(), BenchError> {
        let zero = [
            ("events", self.events == 0),
            ("accounts", self.accounts == 0),
            ("batch", self.batch == 0),
            ("append-batch", self.append_batch == 0),
            ("append-tasks", self.append_tasks == 0),
        ];
        match zero.iter().find(|(_, z)| *z) {
            Some((name, _)) => Err(BenchError::Params(format!("--{name} must be at least 1"))),
            None => Ok(()),
        }
    }
}

/// What a projection catch-up measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchUpRun {
    /// Events the catch-up read (the whole log).
    pub events: u64,
    /// The `catch_up` call.
    pub wall: Duration,
    /// The untimed pre-append.
    pub pre_append: Duration,
    /// The head of the log.
    pub head: u64,
    /// The projection's checkpoint after the catch-up.
    pub position: u64,
    /// The totals of the view's documents after the catch-up.
    pub totals: SummaryTotals,
    /// The SQLite writer's counters during the catch-up alone (`sqlite` only).
    pub writer: Option<WriterCounts>,
}

/// What a SQLite store's writer thread did during a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterCounts {
    /// Write transactions committed.
    pub transactions: u64,
    /// Write requests committed in them.
    pub write_requests: u64,
}

impl CatchUpRun {
    /// Events projected per second of the catch-up.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64()
    }
}

/// Appends the `projection-bench` log (untimed set-up): account `i` gets
/// [`catch_up_share`] of `params.events` events ([`catch_up_events`]), appended in
/// chunks of `params.append_batch` with [`EventStore::append`], round-robin over the
/// accounts of each of `params.append_tasks` concurrent tasks. Returns the totals a
/// correct projection of the log ends with (the fold of the appended events).
pub async fn catch_up_pre_append(
    store: Arc<dyn EventStore>,
    params: &CatchUpParams,
) -> Result<SummaryTotals, BenchError> {
    let mut handles = Vec::with_capacity(params.append_tasks);
    for t in 0..params.append_tasks {
        let (store, params) = (store.clone(), params.clone());
        handles.push(tokio::spawn(async move {
            let mut expected = SummaryTotals::default();
            let mut streams = Vec::new();
            for i in task_accounts(params.accounts, params.append_tasks, t) {
                let events = catch_up_events(
                    params.seed,
                    i,
                    catch_up_share(params.events, params.accounts, i),
                );
                if events.is_empty() {
                    continue;
                }
                let row = catch_up_summary(&events);
                expected.rows += 1;
                expected.balance_sum += row.balance;
                expected.tx_count_sum += row.tx_count;
                let stream = <BankAccount as Aggregate>::stream_id(&workload::account_id(i));
                streams.push((stream, events, 0u64));
            }
            let mut pending = streams.len();
            while pending > 0 {
                pending = 0;
                for (stream, events, version) in &mut streams {
                    let from = *version as usize;
                    if from == events.len() {
                        continue;
                    }
                    let to = (from + params.append_batch).min(events.len());
                    let batch = events[from..to]
                        .iter()
                        .map(|e| NewEvent::encode(e, &JsonCodec, Metadata::default()))
                        .collect::<Result<Vec<_>, _>>()?;
                    let expected_version = match *version {
                        0 => ExpectedVersion::NoStream,
                        v => ExpectedVersion::Exact(v),
                    };
                    *version = store
                        .append(stream, expected_version, batch)
                        .await
                        .map_err(|source| BenchError::StoreOp {
                            what: "projection-bench pre-append",
                            source,
                        })?
                        .stream_version;
                    if to < events.len() {
                        pending += 1;
                    }
                }
            }
            Ok::<_, BenchError>(expected)
        }));
    }
    let mut expected = SummaryTotals::default();
    for handle in handles {
        let part = handle.await??;
        expected.rows += part.rows;
        expected.balance_sum += part.balance_sum;
        expected.tx_count_sum += part.tx_count_sum;
    }
    Ok(expected)
}

/// Times one [`ProjectionRunner::catch_up`] of `ViewProjection::<AccountSummary>` from
/// position 0 to the head of `store`'s log, batches of `params.batch` events, then
/// (untimed) reads the checkpoint and the documents' totals back.
pub async fn time_catch_up(
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    params: &CatchUpParams,
) -> Result<(u64, Duration, u64, SummaryTotals), BenchError> {
    let runner = ProjectionRunner::from_parts(
        store.clone(),
        views.clone(),
        Arc::new(ViewProjection::<AccountSummary>::new()),
    )
    .options(RunnerOptions {
        batch_size: params.batch,
        ..RunnerOptions::default()
    });
    let start = Instant::now();
    let read = runner
        .catch_up()
        .await
        .map_err(|source| BenchError::StoreOp {
            what: "projection catch-up",
            source,
        })?;
    let wall = start.elapsed();
    let state = views
        .projection_state(<AccountSummary as cqrs_core::projection::View>::NAME)
        .await
        .map_err(|source| BenchError::StoreOp {
            what: "reading the projection's checkpoint",
            source,
        })?;
    let totals = summary_totals(views.as_ref()).await?;
    Ok((read, wall, state.position, totals))
}

/// Pre-appends the log of `params` to the empty `bench_store` (untimed), times the
/// projection's catch-up, and asserts that it read the whole log, that its checkpoint is
/// the head and that its documents add up to the fold of the appended events.
pub async fn run_catch_up_on(
    bench_store: &BenchStore,
    params: &CatchUpParams,
) -> Result<CatchUpRun, BenchError> {
    params.validate()?;
    let start = Instant::now();
    let expected = catch_up_pre_append(bench_store.store(), params).await?;
    let pre_append = start.elapsed();
    let head = bench_store
        .store()
        .head_position()
        .await
        .map_err(|source| BenchError::StoreOp {
            what: "reading the head position",
            source,
        })?;
    let before = bench_store.sqlite_stats();
    let (events, wall, position, totals) =
        time_catch_up(bench_store.store(), bench_store.views(), params).await?;
    let writer = match (before, bench_store.sqlite_stats()) {
        (Some(b), Some(a)) => Some(WriterCounts {
            transactions: a.transactions - b.transactions,
            write_requests: a.write_requests - b.write_requests,
        }),
        _ => None,
    };
    if totals != expected || position != head || events != head || head != params.events {
        return Err(BenchError::CatchUp {
            expected,
            observed: totals,
            head,
            position,
        });
    }
    Ok(CatchUpRun {
        events,
        wall,
        pre_append,
        head,
        position,
        totals,
        writer,
    })
}

/// The JSON line of a projection catch-up on `store`.
pub fn catch_up_json(
    store: &StoreInfo,
    params: &CatchUpParams,
    rep: u32,
    run: &CatchUpRun,
) -> Value {
    let mut m = common(store, CATCH_UP_WORKLOAD, rep);
    m.insert(
        "params".into(),
        json!({
            "events": params.events,
            "batch": params.batch,
            "accounts": params.accounts,
            "append_batch": params.append_batch,
            "seed": params.seed,
        }),
    );
    m.insert("events_per_s".into(), round1(run.events_per_s()).into());
    m.insert("wall_s".into(), run.wall.as_secs_f64().into());
    m.insert(
        "batches".into(),
        run.events.div_ceil(params.batch as u64).into(),
    );
    m.insert("pre_append_s".into(), run.pre_append.as_secs_f64().into());
    m.insert("rows".into(), run.totals.rows.into());
    m.insert("balance_sum".into(), run.totals.balance_sum.into());
    m.insert("tx_count_sum".into(), run.totals.tx_count_sum.into());
    m.insert("position".into(), run.position.into());
    if let Some(w) = run.writer {
        m.insert(
            "sqlite".into(),
            json!({ "transactions": w.transactions, "write_requests": w.write_requests }),
        );
    }
    let description = &store.description;
    let (batch, append_batch, tasks) = (params.batch, params.append_batch, params.append_tasks);
    let transaction = match store.backend {
        Backend::Sqlite => {
            "SQLite: the batch's documents are read on a reader connection and the \
             projection applied in this task, then the writer thread commits the documents \
             and the checkpoint in one transaction if the checkpoint is unchanged; with the \
             default durability each batch's transaction is fsynced"
        }
        Backend::Mem => "in-memory: the documents and the checkpoint change under one lock",
        Backend::Postgres => {
            "PostgreSQL: two round trips per batch (BEGIN, the checkpoint's row lock and the \
             documents; the writes of documents and checkpoint with COMMIT)"
        }
    };
    m.insert(
        "notes".into(),
        format!(
            "async projection: ProjectionRunner::from_parts(store, views, \
             ViewProjection::<AccountSummary>::new()) with RunnerOptions {{ batch_size: \
             {batch}, .. }} and a hand-written View (JSON codec), timed ProjectionRunner::\
             catch_up from position 0 to the head, in this task; one transaction per batch \
             of {batch} events with the checkpoint (ViewStore::commit_batch: documents and \
             checkpoint commit together; {transaction}); {description}; pre-append \
             (untimed): {} events over {} accounts (AccountOpened, then deposits, a \
             withdrawal every fifth event), EventStore::append of {append_batch} events per \
             call from {tasks} concurrent tasks; after the catch-up (untimed) the \
             checkpoint is asserted to be the head and the documents' totals (rows, Σ \
             balance, Σ tx_count) the fold of the appended events; events_per_s = \
             events / wall_s",
            params.events, params.accounts
        )
        .into(),
    );
    Value::Object(m)
}

/// The value of the JSON field `workload` of `projection-bench`.
pub const CATCH_UP_WORKLOAD: &str = "projection-catch-up";

/// Runs one projection catch-up on a fresh store of `backend` (`postgres`: the server
/// of [`pg_url`]) and returns its JSON line, after asserting the result (see
/// [`run_catch_up_on`]); then closes the store (`sqlite`: deletes its directory). A
/// `sqlite` line also carries `sqlite` (the writer's counters during the catch-up alone)
/// and `tmp_dir`.
///
/// ```
/// use cqrs_examples::harness::{Backend, CatchUpParams, run_catch_up};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let params = CatchUpParams { events: 300, accounts: 7, batch: 50, ..CatchUpParams::default() };
/// let line = run_catch_up(Backend::Mem, &params, 1).await.unwrap();
/// assert_eq!((line["workload"].as_str(), line["rows"].as_u64()), (Some("projection-catch-up"), Some(7)));
/// assert_eq!(line["batches"], 6);
/// # });
/// ```
pub async fn run_catch_up(
    backend: Backend,
    params: &CatchUpParams,
    rep: u32,
) -> Result<Value, BenchError> {
    params.validate()?;
    let bench_store = BenchStore::open(backend).await?;
    let info = bench_store.info().clone();
    let run = match run_catch_up_on(&bench_store, params).await {
        Ok(run) => run,
        Err(e) => {
            let _ = bench_store.close().await;
            return Err(e);
        }
    };
    let mut line = catch_up_json(&info, params, rep, &run);
    if let Some(dir) = info.db_dir.as_deref().and_then(Path::parent) {
        line["tmp_dir"] = dir.display().to_string().into();
    }
    bench_store.close().await?;
    Ok(line)
}
