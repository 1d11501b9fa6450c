// Every mistake of a `#[projection]` block is reported at once.
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

#[projection(name = "summary", name = "again", order = 1)]
impl Summary {
    #[on(BankEvent::Opened, delete, delete)]
    async fn opened(&self) {}

    #[on(BankEvent::Deposited { balance })]
    fn deposited<T>(&mut self, (a, b): (u64, u64)) {
        self.balance = a + b;
    }

    #[on(BankEvent::Opened)]
    fn again(&mut self, owner: String) {
        drop(owner);
    }
}

fn main() {}
