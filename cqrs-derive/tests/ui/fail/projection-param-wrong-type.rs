// A handler parameter borrows its field with the wrong type (rustc reports it).
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
    fn deposited(&mut self, balance: &u32) {
        self.balance = u64::from(*balance);
    }
}

fn main() {}
