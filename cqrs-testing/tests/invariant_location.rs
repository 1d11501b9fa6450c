//! An invariant failure points at the line of the test that made it.
//!
//! In a file of its own because it installs a panic hook, which is process-wide.

mod common;
mod flight;

use std::sync::Mutex;

use common::panic_message;
use cqrs_testing::prelude::*;
use flight::{Flight, FlightCommand, FlightEvent};

static LOCATION: Mutex<Option<(String, u32)>> = Mutex::new(None);

#[track_caller]
fn assert_reported_at(line: u32) {
    let (file, reported) = LOCATION
        .lock()
        .unwrap()
        .take()
        .expect("the hook saw the panic");
    assert!(
        file.ends_with("invariant_location.rs"),
        "reported in {file}"
    );
    assert_eq!(reported, line, "reported at the wrong line");
}

#[test]
fn invariant_failures_are_reported_at_the_callers_line() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| (l.file().to_owned(), l.line()));
        *LOCATION.lock().unwrap() = location;
    }));

    // A given event breaking a rule points at the `given` that added it...
    let line = line!() + 2;
    panic_message(|| {
        let _ = Flight::given([FlightEvent::Landed]);
    });
    assert_reported_at(line);

    // ...or the `and`...
    let line = line!() + 3;
    panic_message(|| {
        let _ = Flight::given([FlightEvent::TookOff])
            .and([FlightEvent::Landed, FlightEvent::Landed])
            .when(FlightCommand::TakeOff);
    });
    assert_reported_at(line);

    // ...or the stored fixture.
    let line = line!() + 2;
    panic_message(|| {
        let _ = Flight::given_stored("Landed", 1, serde_json::json!(null));
    });
    assert_reported_at(line);

    // A new event breaking a rule points at the `when`.
    let line = line!() + 4;
    panic_message(|| {
        let _ = Flight::given([FlightEvent::TookOff])
            .and([FlightEvent::Landed])
            .when(FlightCommand::Land);
    });
    assert_reported_at(line);

    // So does an unmet expectation; an unknown rule points at `expect_violation`.
    let line = line!() + 4;
    panic_message(|| {
        let _ = Flight::given_no_events()
            .expect_violation("landings_follow_take_offs")
            .when(FlightCommand::TakeOff);
    });
    assert_reported_at(line);

    let line = line!() + 3;
    panic_message(|| {
        let _ = Flight::given_no_events()
            .expect_violation("nope")
            .when(FlightCommand::TakeOff);
    });
    assert_reported_at(line);

    drop(std::panic::take_hook());
}
