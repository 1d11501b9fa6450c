// A misspelt key of `#[projection(..)]` is reported with the key it likely means.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum BankEvent {
    Opened { owner: String },
    Deposited { amount: u64, balance: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Summary {
    balance: u64,
}

#[projection(name = "summary", keys = by_owner)]
impl Summary {
    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

fn main() {}
