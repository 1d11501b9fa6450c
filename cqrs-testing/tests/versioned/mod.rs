//! A versioned account, built with the derive macros, shared by the tests of stored
//! events (`given_stored`) and golden files: typed and JSON upcast steps, aliases, a
//! removed type that splits, a removed type and a step that drop.

#![allow(dead_code)]

use cqrs_core::prelude::*;
use cqrs_core::upcast::{StoredValue, Upcast};
use serde_json::{Value, json};

/// `Opened` v1 stored a single `name`.
#[derive(Debug, Deserialize)]
pub(crate) struct OpenedV1 {
    name: String,
}

/// `Opened` v2: an owner and an optional currency.
#[derive(Debug, Deserialize)]
pub(crate) struct OpenedV2 {
    owner: String,
    currency: Option<String>,
}

impl From<OpenedV1> for OpenedV2 {
    fn from(v1: OpenedV1) -> Self {
        Self {
            owner: v1.name,
            currency: None,
        }
    }
}

impl From<OpenedV2> for AccountEvent {
    fn from(v2: OpenedV2) -> Self {
        AccountEvent::Opened {
            owner: v2.owner,
            currency: v2.currency.unwrap_or_else(|| "EUR".into()),
        }
    }
}

/// `Deposited` v1 -> v2: cents were stored as a string.
fn deposited_v1(v: Value) -> Result<Value, String> {
    let cents = v["cents"]
        .as_str()
        .ok_or("`cents` must be a string of digits")?;
    let amount: u64 = cents
        .parse()
        .map_err(|e| format!("`cents` is not a number: {e}"))?;
    Ok(json!({ "amount": amount }))
}

/// `Noted` v1 -> v2: `note` became `text`; an empty v1 note meant nothing and is dropped.
fn noted_v1(v: Value) -> Option<Value> {
    let note = v["note"].as_str()?;
    (!note.is_empty()).then(|| json!({ "text": note }))
}

/// `Transferred` (removed) moved money out of the account and back in: two events today.
fn transferred(v: Value) -> Upcast {
    Upcast::Split(vec![
        StoredValue::new("Withdrawn", 1, json!({ "amount": v["amount"] })),
        StoredValue::new("Deposited", 1, json!({ "cents": v["amount"].to_string() })),
    ])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "Audited")]
#[event(removed = "Transferred", upcast = transferred)]
pub(crate) enum AccountEvent {
    #[event(version = 3, alias = "AccountCreated")]
    #[upcast(1 -> 2, from = OpenedV1)]
    #[upcast(2 -> 3, from = OpenedV2)]
    Opened {
        owner: String,
        currency: String,
    },
    #[event(version = 2)]
    #[upcast(1 -> 2, json = deposited_v1)]
    Deposited {
        amount: u64,
    },
    #[event(alias = "Withdrawn")]
    Withdrew {
        amount: u64,
    },
    #[event(version = 2)]
    #[upcast(1 -> 2, json = noted_v1)]
    Noted {
        text: String,
    },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Command)]
pub(crate) enum AccountCommand {
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
    Close,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AccountError {
    #[error("the account is not open")]
    NotOpen,
    #[error("the balance {balance} is lower than {requested}")]
    InsufficientFunds { balance: u64, requested: u64 },
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = AccountCommand, event = AccountEvent, error = AccountError)]
pub(crate) struct Account {
    pub(crate) owner: Option<String>,
    pub(crate) currency: String,
    pub(crate) balance: u64,
    pub(crate) notes: Vec<String>,
    pub(crate) closed: bool,
}

#[aggregate_impl]
impl Account {
    #[handle]
    fn deposit(&self, amount: u64) -> Result<AccountEvent, AccountError> {
        self.open()?;
        Ok(AccountEvent::Deposited { amount })
    }

    #[handle]
    fn withdraw(&self, amount: u64) -> Result<AccountEvent, AccountError> {
        self.open()?;
        if amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: amount,
            });
        }
        Ok(AccountEvent::Withdrew { amount })
    }

    #[handle]
    fn close(&self) -> Result<AccountEvent, AccountError> {
        self.open()?;
        Ok(AccountEvent::Closed)
    }

    #[apply]
    fn opened(&mut self, owner: &str, currency: &str) {
        self.owner = Some(owner.to_owned());
        self.currency = currency.to_owned();
    }

    #[apply]
    fn deposited(&mut self, amount: &u64) {
        self.balance += amount;
    }

    #[apply]
    fn withdrew(&mut self, amount: &u64) {
        self.balance -= amount;
    }

    #[apply]
    fn noted(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }

    #[apply]
    fn closed(&mut self) {
        self.closed = true;
    }

    fn open(&self) -> Result<(), AccountError> {
        match self.owner {
            Some(_) if !self.closed => Ok(()),
            _ => Err(AccountError::NotOpen),
        }
    }
}

pub(crate) fn opened(owner: &str, currency: &str) -> AccountEvent {
    AccountEvent::Opened {
        owner: owner.into(),
        currency: currency.into(),
    }
}
