// A `key` function takes `&RecordedEvent` and returns `String` or `Result<String, ProjectionError>`.
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

fn by_owner(stream: &str) -> String {
    stream.to_owned()
}

fn by_version(event: &RecordedEvent) -> u64 {
    event.version
}

#[projection(name = "summary", key = by_owner)]
impl Summary {
    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Versions {
    seen: u64,
}

#[projection(name = "versions", key = by_version)]
impl Versions {
    #[on(BankEvent::Opened)]
    fn opened(&mut self) {
        self.seen += 1;
    }
}

fn main() {}
