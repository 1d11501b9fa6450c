// `#[projection]` goes on the view's impl block, not on the struct.
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
#[derive(Debug, Default, Serialize, Deserialize)]
struct Other {
    balance: u64,
}

fn main() {}
