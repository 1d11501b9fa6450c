//! Connection set-up: the pragmas of every connection, and the versioned schema.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Durability, SqliteOptions, sql_error};
use crate::store::StoreError;

/// The schema version this build creates and reads.
pub(super) const SCHEMA_VERSION: u32 = 2;

/// `PRAGMA application_id` of an event store file ("CQRS" in ASCII): lets the adapter
/// refuse a SQLite file that belongs to another program.
pub(super) const APPLICATION_ID: i32 = 0x4351_5253;

/// How many pages the WAL may grow to before a commit checkpoints it into the database
/// file (SQLite's default, stated explicitly).
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 1000;

/// What the WAL file is truncated to after a checkpoint, so that one burst does not leave
/// a huge file behind.
pub(super) const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Page cache per connection, in KiB (`cache_size` takes a negative number for KiB).
pub(super) const CACHE_SIZE_KIB: i64 = 16 * 1024;

/// One migration: the version it brings the schema to, what it does, its SQL.
struct Migration {
    version: u32,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. A new schema version appends one; released ones never change.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, streams and snapshots",
        sql: "
        -- The global log. AUTOINCREMENT: a position is never handed out twice, even after
        -- the newest events were removed by retention.
        CREATE TABLE events (
            position       INTEGER PRIMARY KEY AUTOINCREMENT,
            stream_id      TEXT    NOT NULL,
            version        INTEGER NOT NULL,
            event_id       BLOB    NOT NULL UNIQUE,
            event_type     TEXT    NOT NULL,
            schema_version INTEGER NOT NULL,
            metadata       TEXT    NOT NULL,
            payload        BLOB    NOT NULL,
            recorded_at    INTEGER NOT NULL, -- nanoseconds since the Unix epoch
            -- On the first event of a batch, how many events the batch holds; 0 on the
            -- others: the batch boundaries, for audits and tools.
            batch_size     INTEGER NOT NULL,
            UNIQUE (stream_id, version)
        ) STRICT;

        -- One row per stream: its version in O(1), its first remaining version after
        -- truncation, and the tombstone of a deleted stream.
        CREATE TABLE streams (
            stream_id     TEXT    PRIMARY KEY,
            version       INTEGER NOT NULL,
            first_version INTEGER NOT NULL,
            deleted       INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;

        -- The newest snapshot of each stream.
        CREATE TABLE snapshots (
            stream_id        TEXT    PRIMARY KEY,
            stream_version   INTEGER NOT NULL,
            snapshot_version INTEGER NOT NULL,
            codec            TEXT    NOT NULL,
            taken_at         INTEGER NOT NULL, -- nanoseconds since the Unix epoch
            payload          BLOB    NOT NULL
        ) STRICT;
    ",
    },
    Migration {
        version: 2,
        description: "views, projections and dead letters (the read side)",
        sql: "
        -- The documents of every projection: one JSON document per key and generation.
        -- Reads are served from the projection's active generation; a rebuild writes a
        -- new one beside it.
        CREATE TABLE views (
            projection TEXT    NOT NULL,
            generation INTEGER NOT NULL,
            key        TEXT    NOT NULL,
            doc        BLOB    NOT NULL, -- JSON
            PRIMARY KEY (projection, generation, key)
        ) STRICT, WITHOUT ROWID;

        -- One row per projection: its active generation and checkpoint (the last global
        -- position it processed), and the generation being rebuilt with its checkpoint.
        CREATE TABLE projections (
            projection            TEXT    PRIMARY KEY,
            active_generation     INTEGER NOT NULL DEFAULT 0,
            position              INTEGER NOT NULL DEFAULT 0,
            rebuilding_generation INTEGER,
            rebuilding_position   INTEGER,
            CHECK ((rebuilding_generation IS NULL) = (rebuilding_position IS NULL))
        ) STRICT, WITHOUT ROWID;

        -- Events a projection kept failing on (or that wait behind one of their stream),
        -- per generation.
        CREATE TABLE dead_letters (
            projection TEXT    NOT NULL,
            generation INTEGER NOT NULL,
            position   INTEGER NOT NULL,
            event_id   BLOB    NOT NULL, -- 16 bytes
            stream_id  TEXT    NOT NULL,
            version    INTEGER NOT NULL,
            reason     TEXT    NOT NULL,
            attempts   INTEGER NOT NULL,
            blocked_by INTEGER, -- the position of the failing event it waits behind
            PRIMARY KEY (projection, generation, event_id)
        ) STRICT, WITHOUT ROWID;
    ",
    },
];

/// Opens a connection to `path` (creating the file if `create`) and sets the pragmas
/// every connection shares.
pub(super) fn open_connection(
    path: &Path,
    options: &SqliteOptions,
    create: bool,
) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(sql_error(format!("opening `{}`", path.display())))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(options.busy_timeout)
        .map_err(sql_error("setting busy_timeout"))?;
    let sync = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    let fullfsync = matches!(options.durability, Durability::Full);
    let pragmas: [(&str, &dyn rusqlite::ToSql); 10] = [
        ("synchronous", &sync),
        ("fullfsync", &fullfsync),
        ("checkpoint_fullfsync", &fullfsync),
        ("foreign_keys", &true),
        ("cache_size", &-CACHE_SIZE_KIB),
        ("temp_store", &"MEMORY"),
        ("mmap_size", &0),
        ("secure_delete", &true),
        ("wal_autocheckpoint", &WAL_AUTOCHECKPOINT_PAGES),
        ("journal_size_limit", &JOURNAL_SIZE_LIMIT_BYTES),
    ];
    for (name, value) in pragmas {
        conn.pragma_update(None, name, value)
            .map_err(sql_error(format!("setting PRAGMA {name}")))?;
    }
    Ok(conn)
}

/// Sets the pragmas of the writer connection that persist in the file (WAL) and brings
/// the schema up to [`SCHEMA_VERSION`].
pub(super) fn prepare_writer(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "locking_mode", "NORMAL")
        .map_err(sql_error("setting PRAGMA locking_mode"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql_error("setting PRAGMA journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(
            format!(
                "`{}` cannot use write-ahead logging (journal_mode is `{mode}`)",
                path.display()
            )
            .into(),
        ));
    }
    migrate(conn, path)
}

/// Creates or upgrades the schema in one `BEGIN IMMEDIATE` transaction, so that two
/// processes opening a fresh file at once do not both create it.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error("starting the migration transaction"))?;
    let application_id: i32 = tx
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(sql_error("reading PRAGMA application_id"))?;
    let has_schema_table: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'cqrs_schema'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error("reading the schema"))?;
    let other_tables: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error("reading the schema"))?;
    let foreign = application_id != 0 && application_id != APPLICATION_ID;
    if foreign || (!has_schema_table && other_tables) {
        return Err(StoreError::Backend(
            format!(
                "`{}` is a SQLite database of another program, not a cqrs event store \
                 (application_id {application_id:#x}, no `cqrs_schema` table)",
                path.display()
            )
            .into(),
        ));
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS cqrs_schema (
            version     INTEGER PRIMARY KEY,
            description TEXT    NOT NULL,
            applied_at  INTEGER NOT NULL -- nanoseconds since the Unix epoch
        ) STRICT;",
    )
    .map_err(sql_error("creating the cqrs_schema table"))?;
    let current: i64 = tx
        .query_row(
            "SELECT coalesce(max(version), 0) FROM cqrs_schema",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error("reading the schema version"))?;
    if current > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::Backend(
            format!(
                "`{}` has event store schema version {current}, newer than version \
                 {SCHEMA_VERSION} that this build of cqrs-core knows: open it with a newer build",
                path.display()
            )
            .into(),
        ));
    }
    if current == 0 {
        // Only an empty file may change this; it must precede the first table.
        tx.pragma_update(None, "auto_vacuum", "NONE")
            .map_err(sql_error("setting PRAGMA auto_vacuum"))?;
    }
    for migration in MIGRATIONS.iter().filter(|m| i64::from(m.version) > current) {
        tx.execute_batch(migration.sql).map_err(sql_error(format!(
            "applying schema migration {}",
            migration.version
        )))?;
        tx.execute(
            "INSERT INTO cqrs_schema (version, description, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                migration.version,
                migration.description,
                super::nanos(std::time::SystemTime::now())
            ],
        )
        .map_err(sql_error("recording a schema migration"))?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sql_error("setting PRAGMA application_id"))?;
    tx.commit()
        .map_err(sql_error("committing the schema migration"))?;
    Ok(())
}

/// The schema version recorded in an open file (for `SqliteEventStore::schema_version`).
pub(super) fn recorded_version(conn: &Connection) -> Result<u32, StoreError> {
    let version: Option<i64> = conn
        .query_row("SELECT max(version) FROM cqrs_schema", [], |row| row.get(0))
        .optional()
        .map_err(sql_error("reading the schema version"))?
        .flatten();
    let version = version.unwrap_or(0);
    u32::try_from(version)
        .map_err(|_| StoreError::Backend(format!("corrupt schema version {version}").into()))
}
