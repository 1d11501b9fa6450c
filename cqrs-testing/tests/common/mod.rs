//! A hand-written bank account aggregate shared by the integration tests.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use cqrs_core::{Aggregate, Codec, Command, DecodeReason, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum BankEvent {
    AccountOpened { owner: String },
    Deposited { amount: u64, balance: u64 },
    Withdrawn { amount: u64, fee: u64, balance: u64 },
    Closed,
}

/// Decodes `payload` as variant `event_type` of `E`, the way `#[derive(Event)]` does.
pub(crate) fn decode_by_name<E: DomainEvent, C: Codec>(
    enum_name: &'static str,
    codec: &C,
    event_type: &str,
    payload: cqrs_core::upcast::Payload<'_>,
) -> Result<E, DecodeReason> {
    let index = E::EVENT_TYPES
        .iter()
        .position(|t| *t == event_type)
        .ok_or_else(|| DecodeReason::UnknownEventType {
            enum_name,
            known: E::EVENT_TYPES.join(", "),
        })?;
    payload.read_variant(codec, index as u32)
}

impl DomainEvent for BankEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["AccountOpened", "Deposited", "Withdrawn", "Closed"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::AccountOpened { .. } => "AccountOpened",
            Self::Deposited { .. } => "Deposited",
            Self::Withdrawn { .. } => "Withdrawn",
            Self::Closed => "Closed",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn decode_payload<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        _schema_version: u32,
        payload: cqrs_core::upcast::Payload<'_>,
        sink: &mut F,
    ) -> Result<(), DecodeReason> {
        sink(decode_by_name("BankEvent", codec, event_type, payload)?);
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BankCommand {
    Open { owner: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
    Close,
}

impl Command for BankCommand {
    fn command_name(&self) -> &'static str {
        match self {
            Self::Open { .. } => "Open",
            Self::Deposit { .. } => "Deposit",
            Self::Withdraw { .. } => "Withdraw",
            Self::Close => "Close",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum BankError {
    #[error("the account is not open")]
    NotOpen,
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the owner `{0}` may not open an account")]
    Blocked(String),
    #[error("cannot withdraw {requested} (with fees) from a balance of {balance}")]
    InsufficientFunds { balance: u64, requested: u64 },
}

/// What the bank's handlers use besides the state: a withdrawal fee and an (async)
/// screening of new owners.
#[derive(Debug, Default)]
pub(crate) struct Bank {
    pub(crate) withdrawal_fee: u64,
    pub(crate) blocked: Vec<String>,
}

impl Bank {
    /// Pretends to ask a remote service; sleeps so that it needs a runtime with timers.
    async fn may_open(&self, owner: &str) -> bool {
        tokio::time::sleep(Duration::from_millis(1)).await;
        !self.blocked.iter().any(|b| b == owner)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct BankAccount {
    pub(crate) owner: Option<String>,
    pub(crate) balance: u64,
    pub(crate) closed: bool,
}

impl Aggregate for BankAccount {
    const TYPE_NAME: &'static str = "BankAccount";
    type Command = BankCommand;
    type Event = BankEvent;
    type Error = BankError;
    type Services = Bank;

    async fn handle<'a>(
        &'a self,
        command: BankCommand,
        bank: &'a Bank,
    ) -> Result<Vec<BankEvent>, BankError> {
        let open = self.owner.is_some() && !self.closed;
        match command {
            BankCommand::Open { owner } => {
                if self.owner.is_some() {
                    return Err(BankError::AlreadyOpen);
                }
                if !bank.may_open(&owner).await {
                    return Err(BankError::Blocked(owner));
                }
                Ok(vec![BankEvent::AccountOpened { owner }])
            }
            _ if !open => Err(BankError::NotOpen),
            BankCommand::Deposit { amount: 0 } => Ok(vec![]),
            BankCommand::Deposit { amount } => Ok(vec![BankEvent::Deposited {
                amount,
                balance: self.balance + amount,
            }]),
            BankCommand::Withdraw { amount } => {
                let fee = bank.withdrawal_fee;
                let requested = amount + fee;
                if requested > self.balance {
                    return Err(BankError::InsufficientFunds {
                        balance: self.balance,
                        requested,
                    });
                }
                Ok(vec![BankEvent::Withdrawn {
                    amount,
                    fee,
                    balance: self.balance - requested,
                }])
            }
            BankCommand::Close if self.balance > 0 => Ok(vec![
                BankEvent::Withdrawn {
                    amount: self.balance,
                    fee: 0,
                    balance: 0,
                },
                BankEvent::Closed,
            ]),
            BankCommand::Close => Ok(vec![BankEvent::Closed]),
        }
    }

    fn apply(&mut self, event: &BankEvent) {
        match event {
            BankEvent::AccountOpened { owner } => self.owner = Some(owner.clone()),
            BankEvent::Deposited { balance, .. } | BankEvent::Withdrawn { balance, .. } => {
                self.balance = *balance
            }
            BankEvent::Closed => self.closed = true,
        }
    }
}

pub(crate) fn opened() -> BankEvent {
    BankEvent::AccountOpened {
        owner: "ann".into(),
    }
}

/// Runs `f`, which must panic, and returns its panic message.
#[track_caller]
pub(crate) fn panic_message(f: impl FnOnce()) -> String {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic, but there was none"),
        Err(payload) => payload,
    };
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        panic!("the panic payload is not a string")
    }
}

/// Counts every `apply` of [`Stamped`] in this process.
static NEXT_STAMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StampEvent {
    Ticked,
}

impl DomainEvent for StampEvent {
    const EVENT_TYPES: &'static [&'static str] = &["Ticked"];

    fn event_type(&self) -> &'static str {
        "Ticked"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn decode_payload<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        _schema_version: u32,
        payload: cqrs_core::upcast::Payload<'_>,
        sink: &mut F,
    ) -> Result<(), DecodeReason> {
        sink(decode_by_name("StampEvent", codec, event_type, payload)?);
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum StampCommand {
    Tick,
    Refuse,
    Explode,
}

impl Command for StampCommand {
    fn command_name(&self) -> &'static str {
        match self {
            Self::Tick => "Tick",
            Self::Refuse => "Refuse",
            Self::Explode => "Explode",
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("refused")]
pub(crate) struct Refused;

/// An aggregate whose `apply` is impure: it stamps the state with a process-wide counter.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Stamped {
    pub(crate) ticks: u64,
    pub(crate) stamp: u64,
}

impl Aggregate for Stamped {
    const TYPE_NAME: &'static str = "Stamped";
    type Command = StampCommand;
    type Event = StampEvent;
    type Error = Refused;
    type Services = ();

    async fn handle<'a>(
        &'a self,
        command: StampCommand,
        _: &'a (),
    ) -> Result<Vec<StampEvent>, Refused> {
        match command {
            StampCommand::Tick => Ok(vec![StampEvent::Ticked]),
            StampCommand::Refuse => Err(Refused),
            StampCommand::Explode => panic!("boom: the handler panicked"),
        }
    }

    fn apply(&mut self, StampEvent::Ticked: &StampEvent) {
        self.ticks += 1;
        self.stamp = NEXT_STAMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A fresh directory under Cargo's temporary directory for integration tests, removed
/// when dropped.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cqrs-testing-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Writes `text` to the file `name` inside, creating subdirectories; returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
