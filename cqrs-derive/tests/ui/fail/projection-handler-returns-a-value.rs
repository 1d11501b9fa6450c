// A handler returns nothing or `Result<(), E>` with `E: Display`.
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

#[projection(name = "summary")]
impl Summary {
    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) -> u64 {
        self.balance = *balance;
        self.balance
    }

    #[on(BankEvent::Opened)]
    fn opened(&mut self) -> Result<(), NotDisplay> {
        Err(NotDisplay)
    }
}

#[derive(Debug)]
struct NotDisplay;

fn main() {}
