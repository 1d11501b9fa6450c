//! The demo on SQLite: as a library call on a fresh file, and as the binary, which
//! removes its temporary directory at the end.

mod common;

use std::path::PathBuf;
use std::process::Command;

use cqrs_core::store::sqlite::SqliteEventStore;

#[test]
fn the_demo_on_sqlite_tells_what_happened_and_ends_as_expected() {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("orders-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteEventStore::open(dir.join("orders.db")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut out = Vec::new();
    let report = runtime.block_on(orders::run_demo(store, "SQLite", &mut out));
    drop(runtime);
    std::fs::remove_dir_all(&dir).unwrap();
    let out = String::from_utf8(out).unwrap();
    common::check_demo(&report.unwrap(), &out);
}

#[test]
fn the_binary_runs_on_a_fresh_sqlite_file_and_removes_it() {
    let run = Command::new(env!("CARGO_BIN_EXE_orders"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let first = out.lines().next().unwrap_or_default();
    let path = first
        .strip_prefix("An online shop on SQLite, in ")
        .and_then(|rest| rest.strip_suffix('.'))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no database path in {first:?}"));
    assert!(path.ends_with("orders.db"), "{path:?}");
    let dir = path.parent().unwrap();
    assert!(!dir.exists(), "{dir:?} is still there");
    assert!(out.contains("Order summaries"), "{out}");
}

#[test]
fn the_binary_refuses_arguments_it_does_not_know() {
    let run = Command::new(env!("CARGO_BIN_EXE_orders"))
        .arg("--database-url")
        .arg("mysql://localhost/shop")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("usage: orders"), "{err}");
}
