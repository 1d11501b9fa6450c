//! The README's demo command: the bank on SQLite, on a fresh file and on a kept one.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_demo_runs_on_a_fresh_sqlite_file() {
    let out = run(&[]);
    assert!(out.contains("A bank on the SQLite event store"), "{out}");
    assert!(out.contains("opened alice-1 for Alice"), "{out}");
    assert!(out.contains("withdrawing 500 is refused"), "{out}");
    assert!(
        out.contains("alice-1 reloaded from the store: opened=true, balance=70, version=3"),
        "{out}"
    );
}

#[test]
fn a_kept_file_continues_where_the_last_run_stopped() {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("cqrs-demo-test-{nanos}"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("bank.db");
    let db = db.to_str().unwrap();
    run(&["--db", db]);
    let second = run(&["--db", db]);
    assert!(
        second.contains("alice-1: command rejected: the account is already open"),
        "{second}"
    );
    assert!(second.contains("balance=140, version=5"), "{second}");
    std::fs::remove_dir_all(&dir).unwrap();
}
