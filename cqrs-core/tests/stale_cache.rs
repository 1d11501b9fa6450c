//! A rejection decided on a cached state is confirmed against the store: another
//! process's appends are taken into account before refusing.

use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum WalletEvent {
    Paid { amount: u64 },
    Spent { amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum WalletCommand {
    Pay { amount: u64 },
    Spend { amount: u64 },
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("only {0} left")]
struct Short(u64);

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = WalletCommand, event = WalletEvent, error = Short, name = "Wallet")]
struct Wallet {
    balance: u64,
}

#[aggregate_impl]
impl Wallet {
    #[handle]
    fn pay(&self, amount: u64) -> WalletEvent {
        WalletEvent::Paid { amount }
    }
    #[handle]
    fn spend(&self, amount: u64) -> Result<WalletEvent, Short> {
        if amount > self.balance {
            return Err(Short(self.balance));
        }
        Ok(WalletEvent::Spent { amount })
    }
    #[apply]
    fn paid(&mut self, amount: &u64) {
        self.balance += amount;
    }
    #[apply]
    fn spent(&mut self, amount: &u64) {
        self.balance -= amount;
    }
}

#[test]
fn a_rejection_on_a_stale_cached_state_is_decided_again_on_the_stored_one() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = InMemoryEventStore::new();
            // Two processes on one store, each with its own cache.
            let here = Cqrs::<Wallet>::builder(store.clone()).build();
            let there = Cqrs::<Wallet>::builder(store.clone()).build();
            here.execute("w", WalletCommand::Pay { amount: 5 })
                .await
                .unwrap();
            there
                .execute("w", WalletCommand::Pay { amount: 10 })
                .await
                .unwrap();
            // `here` caches a balance of 5, the store holds 15.
            let done = here
                .execute("w", WalletCommand::Spend { amount: 12 })
                .await
                .unwrap();
            assert_eq!(done.stream_version, 3);
            // A rejection that holds on the stored state stays a rejection.
            let err = here
                .execute("w", WalletCommand::Spend { amount: 4 })
                .await
                .unwrap_err();
            assert_eq!(err.rejection(), Some(&Short(3)));
            // Without retries the cached rejection is returned as decided.
            let never = Cqrs::<Wallet>::builder(store.clone())
                .retry(RetryPolicy::never())
                .build();
            never
                .execute("w", WalletCommand::Pay { amount: 1 })
                .await
                .unwrap();
            there
                .execute("w", WalletCommand::Pay { amount: 100 })
                .await
                .unwrap();
            let err = never
                .execute("w", WalletCommand::Spend { amount: 50 })
                .await
                .unwrap_err();
            assert_eq!(err.rejection(), Some(&Short(4)));
        });
}
