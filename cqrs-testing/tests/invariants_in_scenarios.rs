//! Every Given/When/Then scenario checks the aggregate's invariants after each given and
//! each new event; `expect_violation` tests that a rule catches what it should.

mod common;
mod flight;

use common::panic_message;
use cqrs_testing::prelude::*;
use flight::{Flight, FlightCommand, FlightError, FlightEvent, divert, route};
use serde_json::json;

// ---- scenarios whose invariants hold -----------------------------------------------

#[test]
fn a_scenario_whose_events_keep_every_rule_passes() {
    Flight::given([FlightEvent::TookOff, route("OSL-STAR2")])
        .and([divert("OSL")])
        .when(FlightCommand::Land)
        .then_events([FlightEvent::Landed])
        .then_state(|f| assert_eq!((f.destination.as_str(), f.landings), ("OSL", 1)));
    Flight::given([FlightEvent::TookOff])
        .when(FlightCommand::Divert {
            airport: "BGO".into(),
            with_route: true,
        })
        .then_events([route("BGO-STAR1"), divert("BGO")]);
}

#[test]
fn a_given_when_shall_rule_is_not_checked_when_its_precondition_fails() {
    // On the ground, a destination may change without a route.
    Flight::given([divert("OSL")])
        .when(FlightCommand::Divert {
            airport: "BGO".into(),
            with_route: false,
        })
        .then_events([divert("BGO")]);
}

#[test]
fn rules_are_checked_without_a_command_too() {
    Flight::given([FlightEvent::TookOff, FlightEvent::Landed])
        .then_state(|f| assert_eq!((f.take_offs, f.landings), (1, 1)));
}

// ---- a given event that breaks a rule fails at given time --------------------------

#[test]
fn a_given_event_breaking_a_rule_fails_with_the_rule_the_event_and_the_state() {
    let message = panic_message(|| {
        let _ = Flight::given([
            FlightEvent::TookOff,
            FlightEvent::Landed,
            FlightEvent::Landed,
        ]);
    });
    assert!(
        message.starts_with(
            "invariant check: the given event at index 2 (`Landed`) breaks invariant \
             `landings_follow_take_offs`: a flight never lands more often than it took off\n\n"
        ),
        "{message}"
    );
    assert!(message.contains("\n\nevent:\nLanded\n\n"), "{message}");
    assert!(
        message.contains("state after it:\nFlight {\n    take_offs: 1,\n    landings: 2,\n"),
        "{message}"
    );
    assert!(
        message.contains(
            "what it changed (- before it, + after it):\n  \
             Flight {\n      take_offs: 1,\n-     landings: 1,\n+     landings: 2,\n"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("\n\nscenario: Flight given 3 events, no command"),
        "{message}"
    );
}

#[test]
fn a_violation_added_by_and_fails_there_before_any_command() {
    let message = panic_message(|| {
        let _ = Flight::given([FlightEvent::TookOff])
            .and([divert("OSL")])
            .when(FlightCommand::Land);
    });
    assert!(
        message.starts_with(
            "invariant check: the given event at index 1 (`DestinationChanged`) breaks \
             invariant `route_matches_destination`: given an airborne flight, when its \
             destination changes, its arrival route leads there"
        ),
        "{message}"
    );
    assert!(
        message.contains("-     destination: \"\",\n+     destination: \"OSL\",\n"),
        "{message}"
    );
    assert!(message.ends_with("no command"), "{message}");
}

#[test]
fn a_stored_event_breaking_a_rule_names_the_stored_fixture() {
    let message = panic_message(|| {
        let _ = Flight::given_stored("TookOff", 1, json!(null))
            .and_stored("Landed", 1, json!(null))
            .and_stored("Landed", 1, json!(null));
    });
    assert!(
        message.starts_with(
            "invariant check: the given event at index 2 (`Landed`, decoded from the stored \
             event given at index 2, `Landed` schema v1) breaks invariant \
             `landings_follow_take_offs`"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "scenario: Flight given 3 events (3 of them decoded from 3 stored events), no command"
        ),
        "{message}"
    );
}

// ---- a new event that breaks a rule fails at when time -----------------------------

#[test]
fn a_new_event_breaking_a_rule_fails_the_scenario() {
    let message = panic_message(|| {
        let _ = Flight::given_no_events().when(FlightCommand::Land);
    });
    assert!(
        message.starts_with(
            "invariant check: the new event at index 0 (`Landed`) breaks invariant \
             `landings_follow_take_offs`: a flight never lands more often than it took off"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("scenario: Flight given 0 events, when `Land`"),
        "{message}"
    );
}

#[test]
fn each_new_event_must_keep_the_rules_not_only_the_last() {
    // After all three events the counts agree again; the second one broke the rule.
    let message = panic_message(|| {
        let _ = Flight::given([FlightEvent::TookOff]).when(FlightCommand::Bounce);
    });
    assert!(
        message.starts_with("invariant check: the new event at index 1 (`Landed`)"),
        "{message}"
    );
    assert!(
        message.contains("state after it:\nFlight {\n    take_offs: 1,\n    landings: 2,"),
        "{message}"
    );
}

#[test]
fn a_violation_fails_even_when_no_then_follows_and_with_services() {
    let message = panic_message(|| {
        let _ = Flight::given([FlightEvent::TookOff])
            .with_services(())
            .when(FlightCommand::Divert {
                airport: "BGO".into(),
                with_route: false,
            });
    });
    assert!(
        message.contains("breaks invariant `route_matches_destination`"),
        "{message}"
    );
}

// ---- expect_violation --------------------------------------------------------------

#[test]
fn expect_violation_passes_when_the_rule_breaks_and_keeps_the_outcome() {
    let then = Flight::given([FlightEvent::TookOff])
        .expect_violation("landings_follow_take_offs")
        .when(FlightCommand::Bounce)
        .then_events([
            FlightEvent::Landed,
            FlightEvent::Landed,
            FlightEvent::TookOff,
        ])
        // The state has every new event applied.
        .then_state(|f| assert_eq!((f.take_offs, f.landings), (2, 2)));
    let violation = then.violation().expect("the violation is kept");
    assert_eq!(violation.name, "landings_follow_take_offs");
    assert_eq!(violation.event_type, Some("Landed"));
}

#[test]
fn expect_violation_works_with_services_and_metadata() {
    let then = Flight::given([FlightEvent::TookOff])
        .with_services(())
        .expect_violation("route_matches_destination")
        .when_with(
            FlightCommand::Divert {
                airport: "BGO".into(),
                with_route: false,
            },
            cqrs_core::Metadata::default().with_actor("atc"),
        );
    assert_eq!(
        then.violation().map(|v| v.name),
        Some("route_matches_destination")
    );
}

#[test]
fn without_expect_violation_there_is_no_violation_to_read() {
    let then = Flight::given_no_events().when(FlightCommand::TakeOff);
    assert!(then.violation().is_none());
}

#[test]
fn expect_violation_fails_when_every_rule_holds() {
    let message = panic_message(|| {
        let _ = Flight::given_no_events()
            .expect_violation("landings_follow_take_offs")
            .when(FlightCommand::TakeOff);
    });
    assert!(
        message.starts_with(
            "expect_violation: expected the new events to break invariant \
             `landings_follow_take_offs` (a flight never lands more often than it took off), \
             but it held after each of the new event:\n[\n    TookOff,\n]"
        ),
        "{message}"
    );
    assert!(message.ends_with("when `TakeOff`"), "{message}");
}

#[test]
fn expect_violation_fails_when_another_rule_breaks_first() {
    let message = panic_message(|| {
        let _ = Flight::given_no_events()
            .expect_violation("route_matches_destination")
            .when(FlightCommand::Land);
    });
    assert!(
        message.starts_with(
            "invariant check: the new event at index 0 (`Landed`) breaks invariant \
             `landings_follow_take_offs`"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "expect_violation: the scenario expected invariant `route_matches_destination` \
             to be the first one broken"
        ),
        "{message}"
    );
}

#[test]
fn expect_violation_fails_when_the_command_is_rejected() {
    let message = panic_message(|| {
        let _ = Flight::given_no_events()
            .expect_violation("landings_follow_take_offs")
            .when(FlightCommand::Hold);
    });
    assert!(
        message.starts_with(
            "expect_violation: expected the new events to break invariant \
             `landings_follow_take_offs` (a flight never lands more often than it took off), \
             but the command was rejected\n\nerror:\nNotAirborne\n(displays as: the flight \
             is not airborne)"
        ),
        "{message}"
    );
}

#[test]
fn expect_violation_of_an_unknown_rule_lists_the_declared_ones() {
    let message = panic_message(|| {
        let _ = Flight::given_no_events().expect_violation("no_such_rule");
    });
    assert_eq!(
        message,
        "expect_violation: `Flight` declares no invariant named `no_such_rule`; it declares: \
         `landings_follow_take_offs`, `route_matches_destination`"
    );
}

#[test]
fn expect_violation_on_an_aggregate_without_rules_says_so() {
    let message = panic_message(|| {
        let _ = common::BankAccount::given_no_events().expect_violation("anything");
    });
    assert!(
        message.starts_with(
            "expect_violation: `BankAccount` declares no invariants, so none named `anything`"
        ),
        "{message}"
    );
}

#[test]
fn a_rejected_command_breaks_nothing() {
    Flight::given_no_events()
        .when(FlightCommand::Hold)
        .then_error(FlightError::NotAirborne);
}
