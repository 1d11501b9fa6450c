//! A walk through the `BankAccount` aggregate on the embedded SQLite store:
//! `cargo run -p cqrs-examples --bin bank [-- --db FILE]`.
//!
//! Opens two accounts, moves money, has an overdraft refused with its typed error, lists
//! the events the store holds and rebuilds an account from them. The events go to a
//! SQLite file: a fresh one in a temporary directory (removed at the end), or `--db FILE`,
//! which is kept, so that a second run continues the same accounts.

use std::path::PathBuf;

use cqrs_core::prelude::*;
use cqrs_core::store::sqlite::SqliteEventStore;
use cqrs_examples::bank::{BankAccount, BankCommand, BankError};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (path, temporary) = match (args.next().as_deref(), args.next()) {
        (Some("--db"), Some(file)) => (PathBuf::from(file), None),
        (None, _) => {
            let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed()?.as_nanos();
            let dir = std::env::temp_dir().join(format!("cqrs-bank-demo-{nanos}"));
            std::fs::create_dir_all(&dir)?;
            (dir.join("bank.db"), Some(dir))
        }
        _ => return Err("usage: bank [--db FILE]".into()),
    };
    // Opening creates or migrates the schema: blocking I/O, done before the runtime.
    let store = SqliteEventStore::open(&path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(demo(store, &path));
    drop(runtime);
    if let Some(dir) = temporary {
        std::fs::remove_dir_all(dir)?;
    }
    result
}

async fn demo(store: SqliteEventStore, path: &std::path::Path) -> Result<(), Error> {
    let accounts = Cqrs::<BankAccount>::builder(store.clone()).build();
    println!("A bank on the SQLite event store in {}.\n", path.display());

    for (id, owner) in [("alice-1", "Alice"), ("bob-1", "Bob")] {
        let open = BankCommand::OpenAccount {
            account_id: id.into(),
            owner: owner.into(),
        };
        // `OpenAccount` names its account (`#[command(id)]`), so it routes itself.
        match accounts.execute_routed(open).await {
            Ok(done) => println!(
                "opened {id} for {owner}: stream `{}` is at version {}",
                done.stream_id, done.stream_version
            ),
            // A second run on the same file finds the accounts open.
            Err(e) if e.rejection() == Some(&BankError::AlreadyOpen) => {
                println!("{id}: {e}");
            }
            Err(e) => return Err(e.into()),
        }
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

    println!("\nThe store's global log (the first 100 events):");
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
    Ok(())
}
