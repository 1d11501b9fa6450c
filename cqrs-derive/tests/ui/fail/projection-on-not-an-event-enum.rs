// `#[on(..)]` names a variant of an enum that is not an event enum (no `#[derive(Event)]`).
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Notice {
    Deposited { balance: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Summary {
    balance: u64,
}

#[projection(name = "summary")]
impl Summary {
    #[on(Notice::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

fn main() {}
