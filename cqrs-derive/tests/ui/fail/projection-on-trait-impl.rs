// `#[projection]` goes on the view's inherent impl block, not on a trait impl.
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

trait Update {
    fn deposited(&mut self, balance: &u64);
}

#[projection(name = "summary")]
impl Update for Summary {
    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

fn main() {}
