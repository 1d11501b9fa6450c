// The versioned account that cqrs-testing's doc examples include with
// `# include!("doctest_account.rs");` (followed by an explicit `fn main`). It is not a
// module of the crate: only the doctests compile it.

use cqrs_core::prelude::*;
use cqrs_core::upcast::{StoredValue, Upcast};
use serde_json::{Value, json};

/// Version 1 of `Opened` stored a single `name`; version 2 an owner and a currency.
#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

impl From<OpenedV1> for AccountEvent {
    fn from(v1: OpenedV1) -> Self {
        AccountEvent::Opened {
            owner: v1.name,
            currency: "EUR".into(),
        }
    }
}

/// Version 1 of `Deposited` stored cents as a string.
fn deposited_v1(v: Value) -> Result<Value, String> {
    let cents = v["cents"].as_str().ok_or("`cents` is a string")?;
    let amount: u64 = cents.parse().map_err(|e| format!("`cents`: {e}"))?;
    Ok(json!({ "amount": amount }))
}

/// `Transferred` (removed) stood for money that came in and went out again.
fn transferred(v: Value) -> Upcast {
    Upcast::Split(vec![
        StoredValue::new("Deposited", 2, json!({ "amount": v["amount"] })),
        StoredValue::new("Withdrew", 1, json!({ "amount": v["amount"] })),
    ])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "Audited")]
#[event(removed = "Transferred", upcast = transferred)]
enum AccountEvent {
    #[event(version = 2, alias = "AccountCreated")]
    #[upcast(1 -> 2, from = OpenedV1)]
    Opened { owner: String, currency: String },
    #[event(version = 2)]
    #[upcast(1 -> 2, json = deposited_v1)]
    Deposited { amount: u64 },
    #[event(alias = "Withdrawn")]
    Withdrew { amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum AccountCommand {
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum AccountError {
    #[error("the balance is too low")]
    InsufficientFunds,
}

#[derive(Debug, Default, PartialEq, Aggregate)]
#[aggregate(command = AccountCommand, event = AccountEvent, error = AccountError)]
struct Account {
    owner: Option<String>,
    balance: u64,
}

#[aggregate_impl]
impl Account {
    #[handle]
    fn deposit(&self, amount: u64) -> AccountEvent {
        AccountEvent::Deposited { amount }
    }

    #[handle]
    fn withdraw(&self, amount: u64) -> Result<AccountEvent, AccountError> {
        if amount > self.balance {
            return Err(AccountError::InsufficientFunds);
        }
        Ok(AccountEvent::Withdrew { amount })
    }

    #[apply]
    fn opened(&mut self, owner: &str) {
        self.owner = Some(owner.to_owned());
    }

    #[apply]
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    #[apply]
    fn withdrew(&mut self, amount: &u64) {
        self.balance -= amount;
    }
}
