//! A failure points at the line of the test that made it, not into cqrs-testing.
//!
//! In a file of its own because it installs a panic hook, which is process-wide.

mod common;

use std::sync::Mutex;

use common::{BankAccount, BankCommand, BankError, StampCommand, Stamped, opened, panic_message};
use cqrs_testing::golden::Mode::Verify;
use cqrs_testing::prelude::*;

static LOCATION: Mutex<Option<(String, u32)>> = Mutex::new(None);

#[track_caller]
fn assert_reported_at(line: u32) {
    let (file, reported) = LOCATION
        .lock()
        .unwrap()
        .take()
        .expect("the hook saw the panic");
    assert!(file.ends_with("caller_location.rs"), "reported in {file}");
    assert_eq!(reported, line, "reported at the wrong line");
}

#[test]
fn failures_are_reported_at_the_callers_line() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| (l.file().to_owned(), l.line()));
        *LOCATION.lock().unwrap() = location;
    }));

    // A failed then_* assertion points at the then_* line.
    let line = line!() + 4;
    panic_message(|| {
        let _ = BankAccount::given([opened()])
            .when(BankCommand::Deposit { amount: 1 })
            .then_error(BankError::NotOpen);
    });
    assert_reported_at(line);

    // A failed automatic check points at the when line.
    let line = line!() + 2;
    panic_message(|| {
        let _ = Stamped::given_no_events().when(StampCommand::Tick);
    });
    assert_reported_at(line);

    // A stored fixture that does not decode points at its own line.
    let line = line!() + 2;
    panic_message(|| {
        let _ = BankAccount::given_stored("Nope", 1, serde_json::json!({}));
    });
    assert_reported_at(line);

    let line = line!() + 2;
    panic_message(|| {
        let _ = BankAccount::given([opened()]).and_stored("Nope", 1, serde_json::json!({}));
    });
    assert_reported_at(line);

    let line = line!() + 2;
    panic_message(|| {
        let _ = BankAccount::given_no_events().and_stored_values([
            cqrs_core::upcast::StoredValue::new("Nope", 1, serde_json::json!({})),
        ]);
    });
    assert_reported_at(line);

    // So does a failed golden check.
    let line = line!() + 2;
    panic_message(|| {
        cqrs_testing::golden::check_with::<common::BankEvent>("no/such/dir", Verify);
    });
    assert_reported_at(line);

    drop(std::panic::take_hook());
}
