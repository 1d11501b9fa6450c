//! `scenarios!`: tables of Given/When/Then cases, one `#[test]` each.

mod common;
mod flight;

use common::{Bank, BankAccount, BankCommand, BankError, BankEvent, opened};
use cqrs_core::Metadata;
use cqrs_testing::scenarios;
use flight::{Flight, FlightCommand, FlightEvent, divert};
use serde_json::json;

fn deposited(amount: u64, balance: u64) -> BankEvent {
    BankEvent::Deposited { amount, balance }
}

scenarios! {
    BankAccount;

    a_deposit_adds_up {
        given: [opened()],
        when: BankCommand::Deposit { amount: 5 },
        then: [deposited(5, 5)],
    }

    /// Doc comments are forwarded to the test.
    an_overdraft_is_refused {
        given: [opened()],
        when: BankCommand::Withdraw { amount: 5 },
        then_error: BankError::InsufficientFunds { balance: 0, requested: 5 },
    }

    an_empty_then_means_no_events {
        given: [opened()],
        when: BankCommand::Deposit { amount: 0 },
        then: [],
    }

    then_no_events_reads_the_same {
        given: [opened()],
        when: BankCommand::Deposit { amount: 0 },
        then_no_events,
    }

    an_empty_history_is_allowed {
        given: [],
        when: BankCommand::Deposit { amount: 1 },
        then_error: BankError::NotOpen,
    }

    the_given_clause_is_optional {
        when: BankCommand::Open { owner: "ann".into() },
        then: [opened()],
        then_state: |account| assert_eq!(account.owner.as_deref(), Some("ann")),
    }

    several_given_clauses_and_events_add_up {
        given: [opened(), deposited(5, 5),],
        given: [deposited(2, 7)],
        when: BankCommand::Close,
        then: [
            BankEvent::Withdrawn { amount: 7, fee: 0, balance: 0 },
            BankEvent::Closed,
        ],
        then_state: |account| assert!(account.closed),
        then_state: |account| assert_eq!(account.balance, 0),
    }

    stored_events_mix_with_typed_ones {
        given_stored: [
            ("AccountOpened", 1, json!({"owner": "bo"})),
            ("Deposited", 1, json!({"amount": 3, "balance": 3})),
        ],
        given: [deposited(1, 4)],
        when: BankCommand::Withdraw { amount: 4 },
        then: [BankEvent::Withdrawn { amount: 4, fee: 0, balance: 0 }],
    }

    services_reach_the_handler {
        given: [opened(), deposited(10, 10)],
        with_services: Bank { withdrawal_fee: 1, blocked: vec![] },
        when: BankCommand::Withdraw { amount: 4 },
        then: [BankEvent::Withdrawn { amount: 4, fee: 1, balance: 5 }],
    }

    blocked_owners_cannot_open {
        with_services: Bank { withdrawal_fee: 0, blocked: vec!["eve".into()] },
        when: BankCommand::Open { owner: "eve".into() },
        then_error_matches: |e| matches!(e, BankError::Blocked(owner) if owner == "eve"),
    }

    metadata_is_carried_into_the_events {
        given: [opened()],
        metadata: Metadata::default().with_actor("ann"),
        when: BankCommand::Deposit { amount: 2 },
        then_events_match: |events| events.len() == 1,
    }

    a_case_without_when_checks_its_history {
        given_stored: [("AccountOpened", 1, json!({"owner": "bo"}))],
        then_given: [BankEvent::AccountOpened { owner: "bo".into() }],
    }

    a_case_without_when_may_look_at_the_state {
        given: [opened(), deposited(3, 3)],
        then_state: |account| assert_eq!(account.balance, 3),
    }

    #[should_panic(expected = "then_events: the events differ (- expected, + actual)")]
    a_wrong_expectation_fails {
        given: [opened()],
        when: BankCommand::Deposit { amount: 5 },
        then: [deposited(5, 6)],
    }

    #[should_panic(expected = "then_error: expected the command to be rejected with NotOpen")]
    an_unexpected_acceptance_fails {
        given: [opened()],
        when: BankCommand::Deposit { amount: 5 },
        then_error: BankError::NotOpen,
    }

    #[should_panic(expected = "given_stored: the stored event given at index 1")]
    an_undecodable_stored_event_fails {
        given: [opened()],
        given_stored: [("Nope", 1, json!({}))],
        when: BankCommand::Deposit { amount: 5 },
    }

    // Cases may be separated by commas too.
    #[should_panic(expected = "then_no_events: expected no events")]
    a_failing_later_then_fails {
        given: [opened()],
        when: BankCommand::Deposit { amount: 5 },
        then: [deposited(5, 5)],
        then_no_events
    },
}

// A second table in the same file, for another aggregate, with invariants.
mod flights {
    use super::*;

    scenarios! {
        Flight;

        a_valid_flight_passes {
            given: [FlightEvent::TookOff],
            when: FlightCommand::Land,
            then: [FlightEvent::Landed],
        }

        a_rule_can_be_expected_to_break {
            given: [FlightEvent::TookOff],
            expect_violation: "landings_follow_take_offs",
            when: FlightCommand::Bounce,
            then: [FlightEvent::Landed, FlightEvent::Landed, FlightEvent::TookOff],
        }

        #[should_panic(expected = "invariant check: the new event at index 0 (`Landed`) breaks \
                                   invariant `landings_follow_take_offs`")]
        a_broken_rule_fails_the_case {
            when: FlightCommand::Land,
            then: [FlightEvent::Landed],
        }

        #[should_panic(expected = "invariant check: the given event at index 1 \
                                   (`DestinationChanged`) breaks invariant \
                                   `route_matches_destination`")]
        a_broken_history_fails_the_case {
            given: [FlightEvent::TookOff, divert("OSL")],
            when: FlightCommand::Land,
        }
    }
}

mod empty_table {
    cqrs_testing::scenarios! {
        super::BankAccount;
    }
}
