// Two enums of one view store a type under the same name: their events could not be told apart.
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

mod order {
    use cqrs_core::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    pub enum OrderEvent {
        Placed { total: u64 },
        Opened,
    }
}

#[projection(name = "summary")]
impl Summary {
    #[on(BankEvent::Opened)]
    fn opened(&mut self) {}

    #[on(order::OrderEvent::Placed)]
    fn placed(&mut self) {}
}

fn main() {}
