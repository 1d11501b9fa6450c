// A handler parameter names a field the variant does not have (rustc reports it).
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
    fn deposited(&mut self, total: &u64) {
        self.balance = *total;
    }
}

fn main() {}
