//! The bank account's rules as a scenario table (the one in the book's testing chapter).

use cqrs_examples::bank::{BankAccount, BankCommand, BankError, BankEvent};
use cqrs_testing::prelude::*;

fn opened() -> BankEvent {
    BankEvent::AccountOpened {
        owner: "ann".into(),
    }
}

scenarios! {
    BankAccount;

    a_deposit_adds_up {
        given: [opened()],
        when: BankCommand::Deposit { amount: 5 },
        then: [BankEvent::Deposited { amount: 5, balance: 5 }],
    }

    an_overdraft_is_refused {
        given: [opened()],
        when: BankCommand::Withdraw { amount: 5 },
        then_error: BankError::InsufficientFunds { balance: 0, requested: 5 },
    }

    an_old_account_still_opens_once {
        given_stored: [("AccountOpened", 1, serde_json::json!({"holder": "ann", "branch": "x"}))],
        when: BankCommand::OpenAccount { account_id: "a".into(), owner: "bob".into() },
        then_error: BankError::AlreadyOpen,
    }
}
