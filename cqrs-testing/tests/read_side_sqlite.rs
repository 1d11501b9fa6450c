//! The SQLite store passes the read-side conformance suite, each case on a file of its
//! own (removed afterwards) at the default durability.

use std::path::PathBuf;

use cqrs_core::store::sqlite::{SqliteEventStore, SqliteOptions};

/// Removes the database file and its WAL companions when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", self.0.display()));
        }
    }
}

async fn open() -> Option<(SqliteEventStore, Removed)> {
    let path = std::env::temp_dir().join(format!("cqrs-read-side-{}.db", uuid::Uuid::now_v7()));
    let store = SqliteOptions::new()
        .open(&path)
        .expect("a fresh SQLite file opens");
    Some((store, Removed(path)))
}

cqrs_testing::read_side_conformance!(sqlite, open);
