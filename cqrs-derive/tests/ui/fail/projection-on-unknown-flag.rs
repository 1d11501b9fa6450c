// The only flag of `#[on(..)]` is `delete`.
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
    #[on(BankEvent::Opened, remove)]
    fn opened(&mut self) {}
}

fn main() {}
