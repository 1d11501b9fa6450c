//! The bank account's generated property test: random command sequences (opening,
//! deposits, withdrawals, some refused) from the empty state and from an account already
//! in use, with every invariant, the refold, the codec round trip and the golden files
//! checked after every command.

use cqrs_examples::bank::{BankAccount, BankCommand, BankEvent};
use cqrs_testing::properties::Properties;
use proptest::prelude::*;

/// Commands as a teller would send them: small amounts, so that withdrawals are refused
/// as often as accepted, and the occasional second opening.
fn commands() -> impl Strategy<Value = BankCommand> {
    prop_oneof![
        1 => Just(BankCommand::OpenAccount {
            account_id: "acct".into(),
            owner: "ann".into(),
        }),
        4 => (1..=50u64).prop_map(|amount| BankCommand::Deposit { amount }),
        4 => (1..=80u64).prop_map(|amount| BankCommand::Withdraw { amount }),
    ]
}

#[test]
fn the_bank_account_keeps_its_rules_under_random_commands() {
    let stats = Properties::<BankAccount>::new(commands())
        .given_history([
            BankEvent::AccountOpened {
                owner: "bob".into(),
            },
            BankEvent::Deposited {
                amount: 40,
                balance: 40,
            },
        ])
        .golden(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/bank"))
        .cases(200)
        .run();
    assert_eq!(stats.cases, 200);
    assert!(stats.accepted > 0 && stats.rejected > 0, "{stats:?}");
    assert_eq!(stats.golden_cases, 4);
}
