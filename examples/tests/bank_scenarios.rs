//! The bank account's rules, stated Given/When/Then.

use cqrs_examples::bank::{BankAccount, BankCommand, BankError, BankEvent};
use cqrs_testing::prelude::*;

fn opened() -> BankEvent {
    BankEvent::AccountOpened {
        owner: "Ada".into(),
    }
}

fn deposited(amount: u64, balance: u64) -> BankEvent {
    BankEvent::Deposited { amount, balance }
}

#[test]
fn an_account_opens_once() {
    BankAccount::given_no_events()
        .when(BankCommand::OpenAccount {
            account_id: "a".into(),
            owner: "Ada".into(),
        })
        .then_events([opened()])
        .then_state(|a| assert!(a.opened && a.balance == 0));
    BankAccount::given([opened()])
        .when(BankCommand::OpenAccount {
            account_id: "a".into(),
            owner: "Bob".into(),
        })
        .then_error(BankError::AlreadyOpen);
}

#[test]
fn a_deposit_records_the_new_balance() {
    BankAccount::given([opened(), deposited(10, 10)])
        .when(BankCommand::Deposit { amount: 5 })
        .then_events([deposited(5, 15)])
        .then_state(|a| assert_eq!(a.balance, 15));
}

#[test]
fn nothing_moves_on_an_account_that_is_not_open() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 5 })
        .then_error(BankError::NotOpen);
    BankAccount::given_no_events()
        .when(BankCommand::Withdraw { amount: 5 })
        .then_error(BankError::NotOpen);
}

#[test]
fn a_withdrawal_may_empty_the_account_but_not_overdraw_it() {
    BankAccount::given([opened(), deposited(10, 10)])
        .when(BankCommand::Withdraw { amount: 10 })
        .then_events([BankEvent::Withdrew {
            amount: 10,
            balance: 0,
        }]);
    BankAccount::given([opened(), deposited(10, 10)])
        .when(BankCommand::Withdraw { amount: 11 })
        .then_error_matches(|e| {
            matches!(
                e,
                BankError::InsufficientFunds {
                    balance: 10,
                    requested: 11
                }
            )
        })
        .then_state(|a| assert_eq!(a.balance, 10));
}

#[test]
fn an_account_opened_under_version_1_still_works_today() {
    // Stored before `AccountOpened` went to version 2: the owner was the `holder`.
    let v1 = serde_json::json!({"holder": "Ada", "branch": "Oslo-3"});
    BankAccount::given_stored("AccountOpened", 1, v1.clone()).then_given_events([opened()]);
    BankAccount::given_stored("AccountOpened", 1, v1)
        .and_stored(
            "Deposited",
            1,
            serde_json::json!({"amount": 5, "balance": 5}),
        )
        .when(BankCommand::Withdraw { amount: 2 })
        .then_events([BankEvent::Withdrew {
            amount: 2,
            balance: 3,
        }]);
}
