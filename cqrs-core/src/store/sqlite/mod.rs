//! The SQLite event store: the embedded default, one database file, no server.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::store::sqlite::SqliteEventStore;
//!
//! #[derive(Debug, Serialize, Deserialize, Event)]
//! enum Ping { Pinged { n: u32 } }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
//! let store = SqliteEventStore::open(&path).unwrap();
//! let e = NewEvent::encode(&Ping::Pinged { n: 1 }, &JsonCodec, Metadata::default()).unwrap();
//! let out = store.append("Ping-1", ExpectedVersion::NoStream, vec![e]).await.unwrap();
//! assert_eq!((out.stream_version, out.positions.as_slice()), (1, &[1][..]));
//! drop(store);
//!
//! // The events are in the file.
//! let store = SqliteEventStore::open(&path).unwrap();
//! assert_eq!(store.stream_version("Ping-1").await.unwrap(), Some(1));
//! # drop(store);
//! # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
//! # });
//! ```
//!
//! It implements the whole [`EventStore`] contract, retention and snapshots included, and
//! passes the conformance suite of `cqrs-testing`. It also keeps the read side in the same
//! file: it is a [`ViewStore`](crate::projection::ViewStore), and runs inline projections
//! in the append's transaction (see [read side](#read-side-projections)).
//!
//! # Durability
//!
//! | [`Durability`] | `synchronous` | what an acknowledged append survives |
//! |---|---|---|
//! | [`Full`](Durability::Full) (default) | `FULL` | a process crash, an OS crash and a power loss: the WAL is fsynced before the append returns |
//! | [`Normal`](Durability::Normal) | `NORMAL` | a process crash; an OS crash or power loss may lose the transactions committed since the last [checkpoint](#checkpoints) (usually at most about 1000 pages of WAL, 4 MiB; 8000 at worst), never corrupts the file and never loses part of a batch |
//!
//! Power-loss durability assumes a disk that honours flushes. Either way a batch is atomic,
//! and an append is acknowledged only after its transaction committed.
//!
//! # Pragmas
//!
//! Every connection sets these explicitly, whatever SQLite's compile-time defaults are:
//!
//! | pragma | value | why |
//! |---|---|---|
//! | `journal_mode` | `WAL` | readers never block the writer nor the writer readers; one sequential log write per commit. Persistent in the file; the open fails if the file system cannot do WAL |
//! | `synchronous` | `FULL` / `NORMAL` | the [durability](#durability) level |
//! | `fullfsync`, `checkpoint_fullfsync` | `ON` with `Full`, else `OFF` | macOS only (`F_FULLFSYNC`): without it a Mac's fsync does not reach the platter; no effect elsewhere |
//! | `locking_mode` | `NORMAL` | other processes may open the file (a backup, the `sqlite3` shell); writes of several processes serialise on SQLite's lock |
//! | `busy_timeout` | [`SqliteOptions::busy_timeout`] (5 s) | how long a write waits for another process's lock before failing with [`StoreError::Backend`] |
//! | `foreign_keys` | `ON` | enforces any foreign key a later migration declares (the current schema has none) |
//! | `wal_autocheckpoint` | `1000` pages | SQLite's default, stated: the WAL is copied back into the file once it holds about 4 MiB. On the writer with [background checkpoints](#checkpoints) it reads `0`: a WAL hook takes its place |
//! | `journal_size_limit` | 64 MiB | the WAL file is truncated back to this after a checkpoint |
//! | `cache_size` | 16 MiB per connection | the page cache; a stream read from a warm cache does no I/O |
//! | `temp_store` | `MEMORY` | sorts and temporary tables never touch the disk |
//! | `mmap_size` | `0` | no memory-mapped I/O: an I/O error stays an error instead of a `SIGBUS` |
//! | `secure_delete` | `ON` | what retention removes is overwritten with zeros in the file (copies may stay in the WAL until its next checkpoint) |
//! | `auto_vacuum` | `NONE` (set when the file is created) | space freed by retention is reused by later events; the file does not shrink (run `VACUUM` offline for that) |
//! | `application_id` | `0x43515253` ("CQRS") | marks the file; opening another program's database is refused |
//! | `query_only` | `ON` on read connections | a read connection can never write |
//!
//! # Threads: never blocking the async runtime
//!
//! * **One writer thread** owns the only write connection. [`append`](EventStore::append)
//!   and the other writes send a request on a channel and await the reply; they never
//!   block a runtime thread.
//! * **Group commit.** The writer takes every request already waiting (up to
//!   [`SqliteOptions::group_commit`], 128 by default) and applies them in one
//!   `BEGIN IMMEDIATE` transaction, each in its own `SAVEPOINT`: a request that fails
//!   (a concurrency conflict, a duplicate) is rolled back alone and the others commit.
//!   One commit, so one fsync, serves the whole group, and every request is answered
//!   only after that commit: nothing is acknowledged that is not durable, and if the
//!   commit fails every request of the group gets the error. While one group commits
//!   the next one queues, so the group size follows the load: one writer waits for one
//!   fsync per append, many concurrent writers share them ([`SqliteStats`] counts both).
//! * **Reads** run on tokio's blocking threads with a small pool of read-only connections
//!   ([`SqliteOptions::readers`]). Each read is one read transaction, so it sees one
//!   consistent state. [`read_stream_with`](EventStore::read_stream_with), the load
//!   path of the runtime, decodes rows as SQLite returns them and hands them over in
//!   chunks of a few hundred events: the stream is never collected whole.
//!
//! * <a id="checkpoints"></a>**Checkpoints.** SQLite's automatic checkpoint (copying the WAL back into the
//!   database file and fsyncing it, every 1000 WAL pages) runs inside the commit that
//!   crosses the threshold, so that commit, and every append waiting in its group, pays
//!   for it. With [background checkpoints](SqliteOptions::background_checkpoints), a WAL
//!   hook on the writer wakes a checkpointer thread with its own connection at each
//!   further 1000 pages, which runs `PASSIVE` checkpoints beside the writer; the writer
//!   checkpoints itself only past 8000 pages, which bounds the WAL. They are on by
//!   default with [`Durability::Normal`], where commits do not fsync and the checkpoint
//!   is the only stall: measured on a 2-core VM, appends/s +45 % for one writer and
//!   +60 % for eight, and the eight writers' p99 from 13 ms to 1.5 ms. With
//!   [`Durability::Full`] the background fsyncs compete with the fsync of every commit
//!   and cost 10 to 15 % of appends/s, so the default there is SQLite's own.
//!
//! The store needs a tokio runtime (reads use `spawn_blocking`).
//! [`open`](SqliteEventStore::open) itself does blocking I/O (it creates or migrates the
//! schema); call it before starting the runtime or inside `spawn_blocking`.
//!
//! # Order and positions
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, which take SQLite's write lock before
//! reading anything, and a position is assigned inside the transaction: position order is
//! commit order, also with several processes writing to one file. A reader paging through
//! [`read_all`](EventStore::read_all) sees every committed event once, in order; positions
//! are never reused (`AUTOINCREMENT`), so retention leaves gaps, never repeats.
//!
//! # Schema
//!
//! The adapter creates and versions its schema: a `cqrs_schema` table records every
//! migration applied (version, description, time). Opening a file brings it up to the
//! version this build knows ([`SqliteEventStore::SCHEMA_VERSION`]) in one transaction;
//! a file with a newer schema is refused with a [`StoreError::Backend`] naming both
//! versions. Tables (all `STRICT`):
//!
//! | table | holds |
//! |---|---|
//! | `events` | the global log: `position` (`INTEGER PRIMARY KEY AUTOINCREMENT`), `stream_id`, `version`, `event_id` (16-byte blob, unique), `event_type`, `schema_version`, `metadata` (JSON text), `payload` (blob), `recorded_at` (ns since the Unix epoch), `batch_size` (on the first event of a batch, its length, else 0: the batch boundaries, for audits and tools); unique on `(stream_id, version)` |
//! | `streams` | one row per stream: its `version` (found in O(1)), its `first_version` after truncation, its `deleted` tombstone |
//! | `snapshots` | the newest snapshot of each stream |
//! | `views` | the documents of projections: `projection`, `generation`, `key`, `doc` (JSON, as a blob); primary key `(projection, generation, key)`, `WITHOUT ROWID` |
//! | `projections` | one row per projection: `active_generation` and its checkpoint `position`, `rebuilding_generation` and `rebuilding_position` while a rebuild runs (both `NULL` otherwise) |
//! | `dead_letters` | events a projection parked: `projection`, `generation`, `position`, `event_id`, `stream_id`, `version`, `reason`, `attempts`, `blocked_by` (`NULL`: it failed itself); primary key `(projection, generation, event_id)` |
//! | `cqrs_schema` | the migrations applied |
//!
//! | schema version | migration |
//! |---|---|
//! | 1 | `events`, `streams`, `snapshots` |
//! | 2 | `views`, `projections`, `dead_letters` (the read side) |
//!
//! Rows are checked when read back: a metadata column that is not JSON, an event id that
//! is not 16 bytes, a negative version is a [`StoreError::Backend`] naming the position
//! and the stream, never a panic. [`SqliteEventStore::path`] gives the file to tools
//! (and to tests that damage a row on purpose).
//!
//! # Read side (projections)
//!
//! Documents, checkpoints and dead letters live in the event file, and every write to
//! them goes through the writer thread like an append (one writer, group commit):
//!
//! * **Inline projections**
//!   ([`append_projected`](EventStore::append_projected)): the request carries the
//!   `Arc<dyn Projection>`s to the writer thread, which applies them in the append's own
//!   savepoint, to each projection's active generation, and moves its checkpoint to the
//!   batch's last position. A projection that fails (or panics: it is caught) rolls back
//!   that append alone, documents and events together, and the caller gets
//!   [`StoreError::Projection`]; the other appends of the group commit.
//! * **Async batches** ([`commit_batch`](crate::projection::ViewStore::commit_batch)):
//!   the batch lends its projection for the call only, so it is applied on the caller's
//!   thread, optimistically: one read transaction reads the generation's checkpoint and
//!   the documents the batch touches, the projection computes the new documents, and the
//!   writer thread commits them with the dead letters and the new checkpoint only if the
//!   checkpoint is still the batch's `from` and the documents read are unchanged.
//!   Otherwise nothing is written: a moved checkpoint is
//!   [`BatchError::Stale`](crate::projection::BatchError::Stale), changed documents under
//!   an unmoved checkpoint are read and applied again.
//! * **Reads** of documents use the reader pool and the active generation; a rebuild
//!   fills its own generation beside it until [`activate`](crate::projection::ViewStore::activate)
//!   swaps them in one transaction.
//! * **Commit notifications**: [`commit_notifier`](EventStore::commit_notifier) is a
//!   `watch` channel of the head position, sent after each commit that added events
//!   (the group's highest position), before the appends are answered: an append's caller
//!   already sees its own position there. Writes of other processes are not notified.
//!
//! Projection names must match `^[a-z_][a-z0-9_]{0,62}$`; another name is a
//! [`StoreError::Backend`] naming it.

/// The columns every event query selects, in the order `RowDecoder::decode` reads them.
macro_rules! event_columns {
    () => {
        "position, stream_id, version, event_id, event_type, schema_version, metadata, \
         payload, recorded_at"
    };
}
/// The SQLite bindings this store uses, for projections that write their own SQL
/// ([`SqlProjection::apply_sqlite`](crate::projection::SqlProjection::apply_sqlite)) and
/// for [`SqliteEventStore::query`]: the same version, without a dependency of your own.
pub use rusqlite;

mod checkpoint;
mod read;
mod schema;
mod views;
mod writer;

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::OptionalExtension;

use self::read::{Pool, RowDecoder, check_readable, decode_snapshot, stream_row};
use self::writer::{WriteOp, Writer, Written};
use super::{
    AppendOutcome, EventStore, EventVisitor, ExpectedVersion, RetentionOutcome, StoreError,
    validate_batch,
};
use crate::event::{NewEvent, RecordedEvent};
use crate::projection::Projection;
use crate::snapshot::Snapshot;

/// How much a power loss may cost; see the [durability table](self#durability).
///
/// ```
/// use cqrs_core::store::sqlite::{Durability, SqliteOptions};
///
/// assert_eq!(Durability::default(), Durability::Full);
/// let fast = SqliteOptions::new().durability(Durability::Normal);
/// # let _ = fast;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `synchronous = FULL`: an acknowledged append survives a power loss. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: an acknowledged append survives a crash of the process;
    /// a power loss or an OS crash may lose the last transactions (those since the last
    /// checkpoint), never corrupts the file.
    Normal,
}

/// How to open a [`SqliteEventStore`]: durability, reader pool, lock wait, group commit.
///
/// ```
/// use std::time::Duration;
/// use cqrs_core::store::sqlite::{Durability, SqliteOptions};
///
/// let options = SqliteOptions::new()
///     .durability(Durability::Normal)
///     .readers(8)
///     .busy_timeout(Duration::from_secs(1))
///     .group_commit(64);
/// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
/// let store = options.open(&path).unwrap();
/// assert_eq!(store.options().durability_level(), Durability::Normal);
/// # drop(store);
/// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    durability: Durability,
    readers: usize,
    busy_timeout: Duration,
    group_commit: usize,
    background_checkpoints: Option<bool>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            group_commit: 128,
            background_checkpoints: None,
        }
    }
}

impl SqliteOptions {
    /// The defaults: [`Durability::Full`], 4 readers, a 5 s busy timeout, groups of up to
    /// 128 writes.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert_eq!(SqliteOptions::new(), SqliteOptions::default());
    /// assert_eq!(SqliteOptions::new().max_group(), 128);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the [`Durability`] level.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::{Durability, SqliteOptions};
    /// let o = SqliteOptions::new().durability(Durability::Normal);
    /// assert_eq!(o.durability_level(), Durability::Normal);
    /// ```
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How many read connections may be open at once (default 4, at least 1): that many
    /// reads run in parallel, more wait for a free connection without blocking a thread.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert_eq!(SqliteOptions::new().readers(0).reader_count(), 1);
    /// ```
    #[must_use]
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How long a write (or the opening migration) waits for another process holding the
    /// file's write lock before failing (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// let o = SqliteOptions::new().busy_timeout(Duration::from_millis(250));
    /// # let _ = o;
    /// ```
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most writes committed in one transaction (default 128, at least 1; 1 turns
    /// group commit off: one transaction and one fsync per write).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert_eq!(SqliteOptions::new().group_commit(1).max_group(), 1);
    /// ```
    #[must_use]
    pub fn group_commit(mut self, max_writes: usize) -> Self {
        self.group_commit = max_writes.max(1);
        self
    }

    /// Whether WAL checkpoints run on a background thread instead of inside the commit
    /// that fills the WAL (default: yes with [`Durability::Normal`], no with
    /// [`Durability::Full`]; see [checkpoints](self#checkpoints) for why and the numbers).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::{Durability, SqliteOptions};
    /// let normal = SqliteOptions::new().durability(Durability::Normal);
    /// assert!(normal.uses_background_checkpoints());
    /// assert!(!normal.background_checkpoints(false).uses_background_checkpoints());
    /// assert!(!SqliteOptions::new().uses_background_checkpoints());
    /// ```
    #[must_use]
    pub fn background_checkpoints(mut self, on: bool) -> Self {
        self.background_checkpoints = Some(on);
        self
    }

    /// Whether checkpoints will run on a background thread (the choice made with
    /// [`background_checkpoints`](Self::background_checkpoints), else the durability
    /// level's default).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert!(SqliteOptions::new().background_checkpoints(true).uses_background_checkpoints());
    /// ```
    pub fn uses_background_checkpoints(&self) -> bool {
        self.background_checkpoints
            .unwrap_or(self.durability == Durability::Normal)
    }

    /// The durability level set.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::{Durability, SqliteOptions};
    /// assert_eq!(SqliteOptions::new().durability_level(), Durability::Full);
    /// ```
    pub fn durability_level(&self) -> Durability {
        self.durability
    }

    /// The reader pool size set.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert_eq!(SqliteOptions::new().reader_count(), 4);
    /// ```
    pub fn reader_count(&self) -> usize {
        self.readers
    }

    /// The group commit cap set.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// assert_eq!(SqliteOptions::new().group_commit(16).max_group(), 16);
    /// ```
    pub fn max_group(&self) -> usize {
        self.group_commit
    }

    /// Opens (or creates) the event store in the file at `path` with these options; see
    /// [`SqliteEventStore::open`].
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteOptions;
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteOptions::new().group_commit(1).open(&path).unwrap();
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteEventStore, StoreError> {
        SqliteEventStore::open_with(path, self)
    }
}

/// What the writer thread has done since the store was opened: how well group commit
/// groups (`write_requests / transactions`).
///
/// ```
/// use cqrs_core::store::sqlite::SqliteEventStore;
/// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
/// let store = SqliteEventStore::open(&path).unwrap();
/// let stats = store.stats();
/// assert_eq!((stats.transactions, stats.write_requests, stats.appended_events), (0, 0, 0));
/// # drop(store);
/// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Write requests (appends, retention operations, snapshot saves, projection batches,
    /// rebuild steps) committed in them, including those answered with a typed error such
    /// as a concurrency conflict.
    pub write_requests: u64,
    /// Events appended by [`append`](EventStore::append) and
    /// [`append_projected`](EventStore::append_projected) (deduplicated re-sends and
    /// retention markers not counted).
    pub appended_events: u64,
    /// The most write requests one transaction carried.
    pub largest_group: u64,
}

/// An [`EventStore`] in one SQLite file: WAL, group commit, a writer thread and a pool of
/// readers. Cloning it shares the same store; the file is closed when the last clone is
/// dropped. See the [module docs](self) for durability, pragmas, threads and schema.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::store::sqlite::SqliteEventStore;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum CounterEvent { Added { n: u64 } }
///
/// #[derive(Debug, Clone, PartialEq, Command)]
/// enum CounterCommand { Add { n: u64 } }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("never")]
/// struct Never;
///
/// #[derive(Debug, Default, Clone, PartialEq, Aggregate)]
/// #[aggregate(command = CounterCommand, event = CounterEvent, error = Never)]
/// struct Counter { total: u64 }
///
/// #[aggregate_impl]
/// impl Counter {
///     #[handle]
///     fn add(&self, n: u64) -> CounterEvent { CounterEvent::Added { n } }
///     #[apply]
///     fn added(&mut self, n: &u64) { self.total += n; }
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
/// let counters = Cqrs::<Counter>::builder(SqliteEventStore::open(&path).unwrap()).build();
/// counters.execute("c-1", CounterCommand::Add { n: 2 }).await.unwrap();
/// counters.execute("c-1", CounterCommand::Add { n: 3 }).await.unwrap();
/// # drop(counters);
///
/// let store = SqliteEventStore::open(&path).unwrap();
/// assert_eq!(store.read_stream("Counter-c-1", 1).await.unwrap().len(), 2);
/// # drop(store);
/// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
/// # });
/// ```
#[derive(Clone)]
pub struct SqliteEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: SqliteOptions,
    // Field order is drop order: the readers close before the writer thread is told to
    // stop, so the writer's connection is the last one and checkpoints the WAL.
    readers: Arc<Pool>,
    writer: Writer,
}

impl fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SqliteEventStore {
    /// The schema version this build creates and reads.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// assert_eq!(SqliteEventStore::SCHEMA_VERSION, 2);
    /// ```
    pub const SCHEMA_VERSION: u32 = schema::SCHEMA_VERSION;

    /// Opens the event store in the file at `path` with the default [`SqliteOptions`],
    /// creating the file and its schema if needed, migrating an older schema.
    ///
    /// Fails with [`StoreError::Backend`] if the file cannot be opened, is another
    /// program's database, or has a schema newer than this build knows. Blocks while it
    /// opens the file: call it before the runtime starts, or in `spawn_blocking`.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// assert_eq!(store.path(), path);
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the event store at `path` with `options`; see [`open`](Self::open).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::{Durability, SqliteEventStore, SqliteOptions};
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let options = SqliteOptions::new().durability(Durability::Normal);
    /// let store = SqliteEventStore::open_with(&path, options).unwrap();
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = schema::open_connection(&path, &options, true)?;
        schema::prepare_writer(&mut conn, &path)?;
        if options.uses_background_checkpoints() {
            checkpoint::install(&mut conn, &path, &options)?;
        }
        let writer = Writer::start(conn, options.group_commit)?;
        Ok(Self {
            inner: Arc::new(Inner {
                readers: Arc::new(Pool::new(path.clone(), options.clone())),
                path,
                options,
                writer,
            }),
        })
    }

    /// The database file. Tools (a backup, the `sqlite3` shell) may open it beside the
    /// store; the WAL lives next to it in `<path>-wal`.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// assert!(store.path().exists());
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options the store was opened with.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::{SqliteEventStore, SqliteOptions};
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// assert_eq!(store.options(), &SqliteOptions::default());
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn options(&self) -> &SqliteOptions {
        &self.inner.options
    }

    /// What the writer thread has committed so far (see [`SqliteStats`]).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// assert_eq!(store.stats().transactions, 0);
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// ```
    pub fn stats(&self) -> SqliteStats {
        let c = &self.inner.writer.counters;
        SqliteStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            write_requests: c.requests.load(Ordering::Relaxed),
            appended_events: c.events.load(Ordering::Relaxed),
            largest_group: c.largest_group.load(Ordering::Relaxed),
        }
    }

    /// The schema version recorded in the file (equal to
    /// [`SCHEMA_VERSION`](Self::SCHEMA_VERSION) once opened).
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// assert_eq!(store.schema_version().await.unwrap(), SqliteEventStore::SCHEMA_VERSION);
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// # });
    /// ```
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.inner
            .readers
            .run(|conn| schema::recorded_version(conn))
            .await
    }

    /// The pragmas in effect on the write connection, as SQLite reports them (numbers for
    /// enumerations: `synchronous` 2 is `FULL`, 1 is `NORMAL`): what the
    /// [pragma table](self#pragmas) promises, checked.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// let pragmas = store.pragmas().await.unwrap();
    /// let get = |name| pragmas.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    /// assert_eq!(get("journal_mode"), Some("wal"));
    /// assert_eq!(get("synchronous"), Some("2"));
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// # });
    /// ```
    pub async fn pragmas(&self) -> Result<Vec<(&'static str, String)>, StoreError> {
        self.inner.writer.pragmas().await
    }

    /// Runs `read` on a read connection of the pool, in a read transaction (one snapshot
    /// of the file), on a blocking thread: how the tables of a
    /// [`SqlProjection`](crate::projection::SqlProjection) are queried. The connection is
    /// `query_only`: a statement that writes fails.
    ///
    /// ```
    /// use cqrs_core::store::sqlite::SqliteEventStore;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let path = std::env::temp_dir().join(format!("cqrs-doc-{}.db", uuid::Uuid::now_v7()));
    /// let store = SqliteEventStore::open(&path).unwrap();
    /// let tables: i64 = store
    ///     .query(|conn| conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)))
    ///     .await
    ///     .unwrap();
    /// assert!(tables > 0);
    /// # drop(store);
    /// # for end in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{end}", path.display())); }
    /// # });
    /// ```
    pub async fn query<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.inner
            .readers
            .run(move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(sql_error("starting a read transaction"))?;
                read(&tx).map_err(sql_error("running a query"))
            })
            .await
    }

    async fn write(&self, op: WriteOp) -> Result<Written, StoreError> {
        self.inner.writer.submit(op).await
    }
}

fn mismatched_reply() -> StoreError {
    StoreError::Backend("the SQLite writer answered a request with another kind of result".into())
}

/// How many events (or payload bytes) [`EventStore::read_stream_with`] hands from the
/// reading thread to the visitor at once.
const CHUNK_EVENTS: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        validate_batch(stream_id, &events)?;
        match self
            .write(WriteOp::Append {
                stream_id: stream_id.to_owned(),
                expected,
                events,
            })
            .await?
        {
            Written::Appended(outcome) => Ok(outcome),
            _ => Err(mismatched_reply()),
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stream_id = stream_id.to_owned();
        self.inner
            .readers
            .run(move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(sql_error("starting a read transaction"))?;
                let Some(row) = check_readable(&tx, &stream_id, from_version)? else {
                    return Ok(Vec::new());
                };
                let expected = row.version.saturating_sub(from_version.max(1)) + 1;
                let mut out = Vec::with_capacity(expected.min(4096) as usize);
                let mut stmt = tx
                    .prepare_cached(concat!(
                        "SELECT ",
                        event_columns!(),
                        " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version"
                    ))
                    .map_err(sql_error("preparing a stream read"))?;
                let mut rows = stmt
                    .query(rusqlite::params![stream_id, to_i64(from_version)])
                    .map_err(sql_error("reading a stream"))?;
                let mut decoder = RowDecoder::default();
                while let Some(row) = rows.next().map_err(sql_error("reading a stream"))? {
                    out.push(decoder.decode(row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn read_stream_with(
        &self,
        stream_id: &str,
        from_version: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        let (chunks, mut received) = tokio::sync::mpsc::channel::<Vec<RecordedEvent>>(2);
        let stream_id = stream_id.to_owned();
        let reading = self.inner.readers.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(sql_error("starting a read transaction"))?;
            if check_readable(&tx, &stream_id, from_version)?.is_none() {
                return Ok(());
            }
            let mut stmt = tx
                .prepare_cached(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version"
                ))
                .map_err(sql_error("preparing a stream read"))?;
            let mut rows = stmt
                .query(rusqlite::params![stream_id, to_i64(from_version)])
                .map_err(sql_error("reading a stream"))?;
            let mut decoder = RowDecoder::default();
            let mut chunk = Vec::with_capacity(CHUNK_EVENTS);
            let mut bytes = 0;
            while let Some(row) = rows.next().map_err(sql_error("reading a stream"))? {
                let event = match decoder.decode(row) {
                    Ok(event) => event,
                    Err(e) => {
                        // The events before a corrupt row are visited first, as if they
                        // were read one by one: a visitor that stops early never sees it.
                        if !chunk.is_empty() {
                            let _ = chunks.blocking_send(chunk);
                        }
                        return Err(e);
                    }
                };
                bytes += event.payload.len();
                chunk.push(event);
                if chunk.len() >= CHUNK_EVENTS || bytes >= CHUNK_BYTES {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_EVENTS));
                    bytes = 0;
                    if chunks.blocking_send(full).is_err() {
                        // The visitor stopped: nothing more to read.
                        return Ok(());
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = chunks.blocking_send(chunk);
            }
            Ok(())
        });
        let visiting = async move {
            while let Some(chunk) = received.recv().await {
                for event in &chunk {
                    if visit(event).is_break() {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        };
        let (read, visited) = tokio::join!(reading, visiting);
        match visited {
            ControlFlow::Break(()) => Ok(()),
            ControlFlow::Continue(()) => read,
        }
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .readers
            .run(move |conn| {
                let mut stmt = conn
                    .prepare_cached(concat!(
                        "SELECT ",
                        event_columns!(),
                        " FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2"
                    ))
                    .map_err(sql_error("preparing a read of the global log"))?;
                let mut rows = stmt
                    .query(rusqlite::params![
                        to_i64(from_position),
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ])
                    .map_err(sql_error("reading the global log"))?;
                let mut decoder = RowDecoder::default();
                let mut out = Vec::with_capacity(limit.min(4096));
                while let Some(row) = rows.next().map_err(sql_error("reading the global log"))? {
                    out.push(decoder.decode(row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        let stream_id = stream_id.to_owned();
        self.inner
            .readers
            .run(move |conn| match stream_row(conn, &stream_id)? {
                Some(row) if row.deleted => Err(StoreError::StreamDeleted { stream_id }),
                Some(row) => Ok(Some(row.version).filter(|v| *v > 0)),
                None => Ok(None),
            })
            .await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner
            .readers
            .run(|conn| {
                let seq: Option<i64> = conn
                    .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
                    .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
                    .map_err(sql_error("reading the head position"))?;
                Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
            })
            .await
    }

    async fn delete_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        match self
            .write(WriteOp::Delete {
                stream_id: stream_id.to_owned(),
                expected,
            })
            .await?
        {
            Written::Retention(outcome) => Ok(outcome),
            _ => Err(mismatched_reply()),
        }
    }

    async fn truncate_stream(
        &self,
        stream_id: &str,
        before_version: u64,
    ) -> Result<RetentionOutcome, StoreError> {
        match self
            .write(WriteOp::Truncate {
                stream_id: stream_id.to_owned(),
                before_version,
            })
            .await?
        {
            Written::Retention(outcome) => Ok(outcome),
            _ => Err(mismatched_reply()),
        }
    }

    async fn expire(&self, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        match self.write(WriteOp::Expire { recorded_before }).await? {
            Written::Retention(outcome) => Ok(outcome),
            _ => Err(mismatched_reply()),
        }
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        match self.write(WriteOp::SaveSnapshot(snapshot.clone())).await? {
            Written::Saved => Ok(()),
            _ => Err(mismatched_reply()),
        }
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let stream_id = stream_id.to_owned();
        self.inner
            .readers
            .run(move |conn| {
                // A deleted stream's snapshot went with it: `None`, as for a stream
                // never snapshotted.
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT stream_version, snapshot_version, codec, taken_at, payload \
                         FROM snapshots WHERE stream_id = ?1",
                    )
                    .map_err(sql_error("preparing a snapshot read"))?;
                let mut rows = stmt
                    .query([&stream_id])
                    .map_err(sql_error("reading a snapshot"))?;
                match rows.next().map_err(sql_error("reading a snapshot"))? {
                    Some(row) => decode_snapshot(&stream_id, row).map(Some),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn append_projected(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: &[Arc<dyn Projection>],
    ) -> Result<AppendOutcome, StoreError> {
        if projections.is_empty() {
            return self.append(stream_id, expected, events).await;
        }
        validate_batch(stream_id, &events)?;
        // Named here, so that the writer thread never calls into user code outside its
        // panic guard.
        let projections = projections
            .iter()
            .map(|p| {
                let name = p.name().to_owned();
                views::check_name(&name)?;
                Ok((name, Arc::clone(p)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        match self
            .write(WriteOp::AppendProjected {
                stream_id: stream_id.to_owned(),
                expected,
                events,
                projections,
            })
            .await?
        {
            Written::Appended(outcome) => Ok(outcome),
            _ => Err(mismatched_reply()),
        }
    }

    fn commit_notifier(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.inner.writer.head.subscribe())
    }
}

/// A SQLite call that failed, and what the adapter was doing.
#[derive(Debug, thiserror::Error)]
#[error("SQLite failed {context}: {source}")]
struct SqliteFailure {
    context: Cow<'static, str>,
    #[source]
    source: rusqlite::Error,
}

/// Wraps a rusqlite error as a [`StoreError::Backend`] saying what was being done.
fn sql_error(context: impl Into<Cow<'static, str>>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| {
        StoreError::Backend(Box::new(SqliteFailure {
            context: context.into(),
            source,
        }))
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Nanoseconds since the Unix epoch, as stored (saturating; negative before 1970).
fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The time `nanos` stands for.
fn from_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}
