// `#[projection]` in its forms: several enums (one behind a module path), tuple fields,
// `delete`, a handler returning `Result`, a key function, several `#[on]` on one method,
// and a view declared inside a function body, as in a doctest.
#![deny(warnings, clippy::all)]

use cqrs_core::prelude::*;
use cqrs_core::projection::{ProjectionError, View};

mod orders {
    use cqrs_core::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    pub enum OrderEvent {
        Placed { total: u64 },
        Shipped(String, u32),
        Closed,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum BankEvent {
    Opened { owner: String },
    Deposited { amount: u64, balance: u64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    owner: String,
    balance: u64,
    shipped: Vec<(String, u32)>,
    touched: u64,
}

fn by_owner(event: &RecordedEvent) -> Result<String, ProjectionError> {
    Ok(event.stream_id.to_string())
}

#[projection(name = "summary", key = by_owner)]
impl Summary {
    #[on(BankEvent::Opened)]
    fn opened(&mut self, owner: &str) {
        self.owner = owner.to_owned();
    }

    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, amount: &u64, balance: &u64) -> Result<(), String> {
        if *amount == 0 {
            return Err("an empty deposit".to_owned());
        }
        self.balance = *balance;
        Ok(())
    }

    #[on(orders::OrderEvent::Shipped)]
    fn shipped(&mut self, _0: &String, _1: &u32) {
        self.shipped.push((_0.clone(), *_1));
    }

    #[on(orders::OrderEvent::Placed)]
    #[on(orders::OrderEvent::Closed, delete)]
    fn touched(&mut self) {
        self.touched += 1;
    }

    pub fn helper(&self) -> u64 {
        self.balance
    }
}

fn main() {
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Local {
        count: u64,
    }

    #[projection(name = "local")]
    impl Local {
        #[on(BankEvent::Opened)]
        fn opened(&mut self) {
            self.count += 1;
        }
    }

    assert_eq!(<Summary as View>::NAME, "summary");
    assert_eq!(<Local as View>::NAME, "local");
    assert!(Local::handles_type("Opened"));
    assert_eq!(Summary::default().helper(), 0);
}
