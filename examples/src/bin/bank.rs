//! A walk through the `BankAccount` aggregate: `cargo run -p cqrs-examples`.
//!
//! Opens two accounts, moves money, has an overdraft refused with its typed error, lists
//! the events the store holds and rebuilds an account from them. It uses the in-memory
//! store; the SQLite store arrives with a later release.

use cqrs_core::prelude::*;
use cqrs_examples::bank::{BankAccount, BankCommand, BankError};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = InMemoryEventStore::new();
    let accounts = Cqrs::<BankAccount>::builder(store.clone()).build();
    println!("A bank on the in-memory event store.\n");

    for (id, owner) in [("alice-1", "Alice"), ("bob-1", "Bob")] {
        let open = BankCommand::OpenAccount {
            account_id: id.into(),
            owner: owner.into(),
        };
        // `OpenAccount` names its account (`#[command(id)]`), so it routes itself.
        let done = accounts.execute_routed(open).await?;
        println!(
            "opened {id} for {owner}: stream `{}` is at version {}",
            done.stream_id, done.stream_version
        );
    }

    let steps = [
        ("alice-1", BankCommand::Deposit { amount: 100 }),
        ("bob-1", BankCommand::Deposit { amount: 40 }),
        ("alice-1", BankCommand::Withdraw { amount: 30 }),
    ];
    for (id, command) in steps {
        let what = format!("{command:?}");
        let done = accounts.execute(id, command).await?;
        for e in &done.events {
            println!("{id}: {what} -> {:?} (version {})", e.event, e.version);
        }
    }

    // An overdraft is a domain rejection: a typed error, and nothing is written.
    let overdraft = BankCommand::Withdraw { amount: 500 };
    match accounts.execute("bob-1", overdraft).await {
        Err(e) => match e.rejection() {
            Some(BankError::InsufficientFunds { balance, requested }) => println!(
                "bob-1: withdrawing {requested} is refused: {e} (the balance stays {balance})"
            ),
            _ => return Err(e.into()),
        },
        Ok(done) => return Err(format!("the overdraft was accepted: {done:?}").into()),
    }

    // Depositing on an account that was never opened is refused too.
    if let Err(e) = accounts
        .execute("carol-1", BankCommand::Deposit { amount: 1 })
        .await
    {
        println!("carol-1: {e}");
    }

    println!("\nThe store's global log:");
    for event in store.read_all(1, 100).await? {
        println!(
            "  #{} {} v{} {} {}",
            event.position,
            event.stream_id,
            event.version,
            event.event_type,
            String::from_utf8_lossy(&event.payload)
        );
    }

    // Rebuild an account from its events, bypassing the runtime's cache.
    let alice = accounts.load("alice-1").await?;
    println!(
        "\nalice-1 reloaded from the store: opened={}, balance={}, version={}",
        alice.state.opened, alice.state.balance, alice.version
    );
    assert_eq!(alice.state.balance, 70);
    Ok(())
}
