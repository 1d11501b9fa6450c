//! The read side: a small pool of read-only connections used on tokio's blocking
//! threads, and the decoding of rows into events and snapshots.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::{SqliteOptions, from_nanos, sql_error};
use crate::event::{Metadata, RecordedEvent};
use crate::snapshot::Snapshot;
use crate::store::StoreError;

/// Read-only connections, opened on first use, at most `size` at once.
pub(super) struct Pool {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub(super) fn new(path: PathBuf, options: SqliteOptions) -> Self {
        let size = options.readers.max(1);
        Self {
            path,
            options,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Runs `work` with a read connection on a blocking thread: waits (asynchronously)
    /// for a free connection, never blocks the caller's runtime thread.
    pub(super) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the SQLite reader pool is closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.take()?;
            let out = work(&mut conn);
            pool.put(conn);
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a SQLite read task failed: {e}").into()))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .map_err(|_| StoreError::Backend("SQLite reader pool lock poisoned".into()))?
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = super::schema::open_connection(&self.path, &self.options, false)?;
                // Reads only: a bug that writes through a reader fails instead of racing
                // the writer thread.
                conn.pragma_update(None, "query_only", true)
                    .map_err(sql_error("setting PRAGMA query_only"))?;
                Ok(conn)
            }
        }
    }

    fn put(&self, conn: Connection) {
        // A connection left inside a transaction by a failed read is dropped, not reused.
        if conn.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
    }
}

/// What the `streams` table says about one stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamRow {
    pub(super) version: u64,
    pub(super) first_version: u64,
    pub(super) deleted: bool,
}

/// The `streams` row of `stream_id`, if any.
pub(super) fn stream_row(
    conn: &Connection,
    stream_id: &str,
) -> Result<Option<StreamRow>, StoreError> {
    let row = conn
        .prepare_cached("SELECT version, first_version, deleted FROM streams WHERE stream_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([stream_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .optional()
        })
        .map_err(sql_error("reading a stream's row"))?;
    row.map(|(version, first_version, deleted)| {
        let corrupt = || {
            StoreError::Backend(
                format!(
                    "corrupt `streams` row of stream `{stream_id}`: version {version}, \
                     first version {first_version}"
                )
                .into(),
            )
        };
        Ok(StreamRow {
            version: u64::try_from(version).map_err(|_| corrupt())?,
            first_version: u64::try_from(first_version).map_err(|_| corrupt())?,
            deleted: deleted != 0,
        })
    })
    .transpose()
}

/// Checks that `stream_id` can be read from `from_version`: not deleted, not truncated
/// past it. `Ok(None)`: the stream does not exist.
pub(super) fn check_readable(
    conn: &Connection,
    stream_id: &str,
    from_version: u64,
) -> Result<Option<StreamRow>, StoreError> {
    let Some(row) = stream_row(conn, stream_id)? else {
        return Ok(None);
    };
    if row.deleted {
        return Err(StoreError::StreamDeleted {
            stream_id: stream_id.to_owned(),
        });
    }
    if from_version.max(1) < row.first_version {
        return Err(StoreError::StreamTruncated {
            stream_id: stream_id.to_owned(),
            first_version: row.first_version,
        });
    }
    Ok(Some(row))
}

/// Turns event rows into [`RecordedEvent`]s, sharing one `Arc<str>` per stream id and
/// event type across the rows of one read. Every column is checked: a corrupt row is a
/// [`StoreError::Backend`] naming its position and stream, never a panic.
#[derive(Default)]
pub(super) struct RowDecoder {
    streams: Vec<Arc<str>>,
    types: Vec<Arc<str>>,
}

/// Returns the interned copy of `s`, adding it (most recent first) if new. Reads see few
/// distinct values (one stream, a handful of types), so a short list beats a map.
fn intern(cache: &mut Vec<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(found) = cache.iter().find(|c| ***c == *s) {
        return found.clone();
    }
    let new: Arc<str> = Arc::from(s);
    if cache.len() >= 32 {
        cache.pop();
    }
    cache.insert(0, new.clone());
    new
}

/// Decodes stored metadata JSON (`{}` without calling the parser).
pub(super) fn parse_metadata(json: &str) -> Result<Metadata, serde_json::Error> {
    if json == "{}" {
        Ok(Metadata::default())
    } else {
        serde_json::from_str(json)
    }
}

impl RowDecoder {
    /// Decodes one row selected with `event_columns!()`.
    pub(super) fn decode(&mut self, row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
        let position: i64 = row
            .get(0)
            .map_err(sql_error("reading an event's position"))?;
        let at = |what: &str, stream: &str| {
            StoreError::Backend(
                format!("corrupt event at position {position} of stream `{stream}`: {what}").into(),
            )
        };
        let stream = row
            .get_ref(1)
            .ok()
            .and_then(|v| v.as_str().ok())
            .ok_or_else(|| at("stream_id is not text", "?"))?;
        let stream_id = intern(&mut self.streams, stream);
        let err = |what: String| at(&what, &stream_id);
        let int = |i: usize, name: &str| -> Result<i64, StoreError> {
            row.get_ref(i)
                .ok()
                .and_then(|v| v.as_i64().ok())
                .ok_or_else(|| err(format!("{name} is not an integer")))
        };
        let version =
            u64::try_from(int(2, "version")?).map_err(|_| err("negative version".into()))?;
        let id_bytes = row
            .get_ref(3)
            .ok()
            .and_then(|v| v.as_blob().ok())
            .ok_or_else(|| err("event_id is not a blob".into()))?;
        let event_id = Uuid::from_slice(id_bytes).map_err(|_| {
            err(format!(
                "event_id is {} bytes long, not a 16-byte UUID",
                id_bytes.len()
            ))
        })?;
        let event_type = row
            .get_ref(4)
            .ok()
            .and_then(|v| v.as_str().ok())
            .ok_or_else(|| err("event_type is not UTF-8 text".into()))?;
        let event_type = intern(&mut self.types, event_type);
        let schema_version = u32::try_from(int(5, "schema_version")?)
            .map_err(|_| err("schema_version is out of range".into()))?;
        let metadata = row
            .get_ref(6)
            .ok()
            .and_then(|v| v.as_str().ok())
            .ok_or_else(|| err("metadata is not UTF-8 text".into()))?;
        let metadata = parse_metadata(metadata)
            .map_err(|e| err(format!("metadata is not valid JSON: {e}")))?;
        let payload = row
            .get_ref(7)
            .ok()
            .and_then(|v| v.as_blob().ok())
            .ok_or_else(|| err("payload is not a blob".into()))?;
        let payload = Bytes::copy_from_slice(payload);
        let recorded_at = from_nanos(int(8, "recorded_at")?);
        Ok(RecordedEvent {
            event_id,
            stream_id,
            version,
            position: position as u64,
            recorded_at,
            event_type,
            schema_version,
            metadata,
            payload,
        })
    }
}

/// Decodes a `snapshots` row (`stream_version, snapshot_version, codec, taken_at, payload`).
pub(super) fn decode_snapshot(stream_id: &str, row: &Row<'_>) -> Result<Snapshot, StoreError> {
    let err = |what: &str| {
        StoreError::Backend(format!("corrupt snapshot of stream `{stream_id}`: {what}").into())
    };
    let int = |i: usize| row.get_ref(i).ok().and_then(|v| v.as_i64().ok());
    let stream_version = int(0)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| err("stream_version is not a version"))?;
    let snapshot_version = int(1)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| err("snapshot_version is out of range"))?;
    let codec = row
        .get_ref(2)
        .ok()
        .and_then(|v| v.as_str().ok())
        .ok_or_else(|| err("codec is not UTF-8 text"))?;
    let taken_at: SystemTime = from_nanos(int(3).ok_or_else(|| err("taken_at is not an integer"))?);
    let payload = row
        .get_ref(4)
        .ok()
        .and_then(|v| v.as_blob().ok())
        .ok_or_else(|| err("payload is not a blob"))?;
    Ok(Snapshot {
        stream_id: Arc::from(stream_id),
        stream_version,
        snapshot_version,
        codec: Arc::from(codec),
        taken_at,
        payload: Bytes::copy_from_slice(payload),
    })
}
