// `#[on(..)]` names a variant the enum does not have (rustc reports it).
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
    #[on(BankEvent::Deposted)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

fn main() {}
