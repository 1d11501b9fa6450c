// A view is created from `Default` and stored as JSON: it derives all three.
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

#[derive(Debug, Serialize, Deserialize)]
struct Totals {
    balance: u64,
}

#[projection(name = "totals")]
impl Totals {
    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

fn main() {}
