//! Checkpoints off the commit path. SQLite's own automatic checkpoint runs inside the
//! commit that crosses the threshold, so that one commit (and every append waiting in its
//! group) also pays for copying the WAL into the database file and fsyncing it. Instead,
//! the writer's WAL hook wakes a checkpointer thread with its own connection, which runs
//! `PASSIVE` checkpoints beside the writer; only if the WAL still grows past a backstop
//! (the background checkpoint cannot catch up) does the writer checkpoint inline.

use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::{SqliteOptions, sql_error};
use crate::store::StoreError;

/// WAL pages after which the checkpointer thread is woken (SQLite's default
/// `wal_autocheckpoint`, about 4 MiB).
pub(super) const CHECKPOINT_PAGES: c_int = 1000;

/// WAL pages after which the writer checkpoints itself, so the WAL stays bounded.
pub(super) const BACKSTOP_PAGES: c_int = 8000;

/// Starts the checkpointer thread for the database at `path` and installs the writer's
/// WAL hook. The thread stops when the writer connection (which owns the hook) closes.
pub(super) fn install(
    writer: &mut Connection,
    path: &Path,
    options: &SqliteOptions,
) -> Result<(), StoreError> {
    let checkpointer = super::schema::open_connection(path, options, false)?;
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("cqrs-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                // PASSIVE copies what it can without waiting for readers or the writer;
                // a failure is retried at the next wake-up (and the backstop remains).
                let _ = checkpointer.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
            }
        })
        .map_err(|e| {
            StoreError::Backend(format!("cannot start the SQLite checkpoint thread: {e}").into())
        })?;
    // The WAL is only reset once fully copied, which rarely happens while the writer keeps
    // committing: waking the thread on every commit past the threshold would checkpoint
    // continuously (each run with its fsyncs). Wake it once per further step instead.
    let mut woken_at_step = 0;
    writer
        .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            let step = pages / CHECKPOINT_PAGES;
            if pages >= BACKSTOP_PAGES {
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if step > woken_at_step {
                // Full: a wake-up is already pending.
                let _ = wake.try_send(());
            }
            woken_at_step = step;
            // Never an error: it would make the COMMIT that ran the hook report a
            // failure although the transaction is committed.
            Ok(())
        }))
        .map_err(sql_error("installing the WAL hook"))
}
