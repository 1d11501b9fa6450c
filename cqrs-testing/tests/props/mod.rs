//! Test-only aggregates for the generated property tests: a correct wallet and three
//! deliberately broken ones (an `apply`, a handler, a close), a notebook whose event loses
//! a field to the codec, a stamp whose `apply` reads a clock, a fuse whose handler panics,
//! and a thermostat with services and a hand-written command strategy.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use cqrs_core::prelude::*;
use proptest::prelude::*;
use proptest_derive::Arbitrary;

// ---- wallets ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum WalletEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Command, Arbitrary)]
pub(crate) enum WalletCommand {
    Deposit {
        #[proptest(strategy = "1..=9i64")]
        amount: i64,
    },
    Withdraw {
        #[proptest(strategy = "1..=9i64")]
        amount: i64,
    },
    Close,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum WalletError {
    #[error("the wallet is closed")]
    Closed,
    #[error("the wallet holds {balance}, less than {requested}")]
    InsufficientFunds { balance: i64, requested: i64 },
}

fn deposit(closed: bool, amount: i64) -> Result<WalletEvent, WalletError> {
    if closed {
        return Err(WalletError::Closed);
    }
    Ok(WalletEvent::Deposited { amount })
}

fn checked_withdraw(balance: i64, closed: bool, amount: i64) -> Result<WalletEvent, WalletError> {
    if amount > balance {
        return Err(WalletError::InsufficientFunds {
            balance,
            requested: amount,
        });
    }
    unchecked_withdraw(balance, closed, amount)
}

/// A bug: nothing stops a withdrawal of more than the wallet holds.
fn unchecked_withdraw(
    _balance: i64,
    closed: bool,
    amount: i64,
) -> Result<WalletEvent, WalletError> {
    if closed {
        return Err(WalletError::Closed);
    }
    Ok(WalletEvent::Withdrawn { amount })
}

/// Empties the wallet before closing it: each event leaves it valid.
fn emptying_close(balance: i64, closed: bool) -> Result<Vec<WalletEvent>, WalletError> {
    if closed {
        return Err(WalletError::Closed);
    }
    let mut events = Vec::new();
    if balance > 0 {
        events.push(WalletEvent::Withdrawn { amount: balance });
    }
    events.push(WalletEvent::Closed);
    Ok(events)
}

/// A bug: closes a wallet that still holds money.
fn hasty_close(_balance: i64, closed: bool) -> Result<Vec<WalletEvent>, WalletError> {
    if closed {
        return Err(WalletError::Closed);
    }
    Ok(vec![WalletEvent::Closed])
}

fn subtract(balance: i64, amount: i64) -> i64 {
    balance - amount
}

/// A bug: applies a withdrawal twice.
fn subtract_twice(balance: i64, amount: i64) -> i64 {
    balance - 2 * amount
}

/// A wallet aggregate with two invariants, built from the pieces above.
macro_rules! wallet {
    ($(#[$doc:meta])* $name:ident {
        withdraw: $withdraw:path,
        close: $close:path,
        withdrawn: $withdrawn:path $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, PartialEq, Aggregate)]
        #[aggregate(command = WalletCommand, event = WalletEvent, error = WalletError)]
        #[invariant(never_overdrawn, "a wallet never holds less than nothing")]
        #[invariant(closed_is_empty, "a closed wallet holds nothing")]
        pub(crate) struct $name {
            pub(crate) balance: i64,
            pub(crate) closed: bool,
        }

        impl $name {
            fn never_overdrawn(&self) -> bool {
                self.balance >= 0
            }
            fn closed_is_empty(&self) -> bool {
                !self.closed || self.balance == 0
            }
        }

        #[aggregate_impl]
        impl $name {
            #[handle]
            fn deposit(&self, amount: i64) -> Result<WalletEvent, WalletError> {
                deposit(self.closed, amount)
            }
            #[handle]
            fn withdraw(&self, amount: i64) -> Result<WalletEvent, WalletError> {
                $withdraw(self.balance, self.closed, amount)
            }
            #[handle]
            fn close(&self) -> Result<Vec<WalletEvent>, WalletError> {
                $close(self.balance, self.closed)
            }
            #[apply]
            fn deposited(&mut self, amount: &i64) {
                self.balance += amount;
            }
            #[apply]
            fn withdrawn(&mut self, amount: &i64) {
                self.balance = $withdrawn(self.balance, *amount);
            }
            #[apply]
            fn closed(&mut self) {
                self.closed = true;
            }
        }
    };
}

wallet!(
    /// A correct wallet.
    Wallet {
        withdraw: checked_withdraw,
        close: emptying_close,
        withdrawn: subtract,
    }
);

wallet!(
    /// Its `apply` of a withdrawal subtracts the amount twice.
    DoubleWithdrawWallet {
        withdraw: checked_withdraw,
        close: emptying_close,
        withdrawn: subtract_twice,
    }
);

wallet!(
    /// Its withdrawal handler does not check the balance.
    OverdrawingWallet {
        withdraw: unchecked_withdraw,
        close: emptying_close,
        withdrawn: subtract,
    }
);

wallet!(
    /// Its close handler does not empty the wallet first.
    HastyWallet {
        withdraw: checked_withdraw,
        close: hasty_close,
        withdrawn: subtract,
    }
);

/// Withdrawals and closes only: from the empty state no command can break anything.
pub(crate) fn withdraw_or_close() -> impl Strategy<Value = WalletCommand> {
    prop_oneof![
        (1..=9i64).prop_map(|amount| WalletCommand::Withdraw { amount }),
        Just(WalletCommand::Close),
    ]
}

// ---- a notebook whose event loses a field to the codec -------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum NoteEvent {
    Noted {
        text: String,
        /// A bug: not stored, so a pinned note comes back unpinned.
        #[serde(skip)]
        pinned: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Command, Arbitrary)]
pub(crate) enum NoteCommand {
    Note {
        #[proptest(regex = "[a-z]{0,4}")]
        text: String,
        pinned: bool,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub(crate) struct Never;

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = NoteCommand, event = NoteEvent, error = Never)]
pub(crate) struct Notebook {
    pub(crate) notes: Vec<(String, bool)>,
}

#[aggregate_impl]
impl Notebook {
    #[handle]
    fn note(&self, text: String, pinned: bool) -> NoteEvent {
        NoteEvent::Noted { text, pinned }
    }
    #[apply]
    fn noted(&mut self, text: &str, pinned: &bool) {
        self.notes.push((text.to_owned(), *pinned));
    }
}

// ---- a stamp whose apply reads a clock -----------------------------------------------

static CLOCK: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum StampEvent {
    Stamped,
}

#[derive(Debug, Clone, PartialEq, Command, Arbitrary)]
pub(crate) enum StampCommand {
    Stamp,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = StampCommand, event = StampEvent, error = Never)]
pub(crate) struct Stamp {
    pub(crate) stamps: u32,
    pub(crate) last_tick: u64,
}

#[aggregate_impl]
impl Stamp {
    #[handle]
    fn stamp(&self) -> StampEvent {
        StampEvent::Stamped
    }
    /// A bug: reads a clock, so each fold of the same events differs.
    #[apply]
    fn stamped(&mut self) {
        self.stamps += 1;
        self.last_tick = CLOCK.fetch_add(1, Ordering::Relaxed);
    }
}

// ---- a fuse whose handler panics ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum FuseEvent {
    Blown,
}

#[derive(Debug, Clone, PartialEq, Command, Arbitrary)]
pub(crate) enum FuseCommand {
    Blow,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = FuseCommand, event = FuseEvent, error = Never)]
pub(crate) struct Fuse {
    pub(crate) blown: bool,
}

#[aggregate_impl]
impl Fuse {
    /// A bug: panics instead of rejecting.
    #[handle]
    fn blow(&self) -> FuseEvent {
        assert!(!self.blown, "a blown fuse cannot blow again");
        FuseEvent::Blown
    }
    #[apply]
    fn blown(&mut self) {
        self.blown = true;
    }
}

// ---- a thermostat with services and a hand-written strategy ----------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum ThermostatEvent {
    TargetSet { degrees: i32 },
    SwitchedOn,
    SwitchedOff,
}

#[derive(Debug, Clone, PartialEq, Command)]
pub(crate) enum ThermostatCommand {
    SetTarget { degrees: i32 },
    SwitchOn,
    SwitchOff,
}

/// The commands, written by hand: targets well beyond the allowed range too.
pub(crate) fn thermostat_commands() -> impl Strategy<Value = ThermostatCommand> {
    prop_oneof![
        (-10..50i32).prop_map(|degrees| ThermostatCommand::SetTarget { degrees }),
        Just(ThermostatCommand::SwitchOn),
        Just(ThermostatCommand::SwitchOff),
    ]
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ThermostatError {
    #[error("{degrees} degrees is outside {min}..={max}")]
    OutOfRange { degrees: i32, min: i32, max: i32 },
    #[error("already {0}")]
    Already(&'static str),
}

/// The range the handler allows; deliberately not `Default`.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) min: i32,
    pub(crate) max: i32,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(
    command = ThermostatCommand,
    event = ThermostatEvent,
    error = ThermostatError,
    services = Limits
)]
#[invariant(
    target_is_comfortable,
    "a thermostat's target stays between 5 and 30 degrees"
)]
pub(crate) struct Thermostat {
    pub(crate) on: bool,
    pub(crate) target: Option<i32>,
}

impl Thermostat {
    fn target_is_comfortable(&self) -> bool {
        self.target.is_none_or(|t| (5..=30).contains(&t))
    }
}

#[aggregate_impl]
impl Thermostat {
    #[handle]
    fn set_target(
        &self,
        degrees: i32,
        #[services] limits: &Limits,
    ) -> Result<ThermostatEvent, ThermostatError> {
        if !(limits.min..=limits.max).contains(&degrees) {
            return Err(ThermostatError::OutOfRange {
                degrees,
                min: limits.min,
                max: limits.max,
            });
        }
        Ok(ThermostatEvent::TargetSet { degrees })
    }
    #[handle]
    fn switch_on(&self) -> Result<ThermostatEvent, ThermostatError> {
        if self.on {
            return Err(ThermostatError::Already("on"));
        }
        Ok(ThermostatEvent::SwitchedOn)
    }
    #[handle]
    fn switch_off(&self) -> Result<ThermostatEvent, ThermostatError> {
        if !self.on {
            return Err(ThermostatError::Already("off"));
        }
        Ok(ThermostatEvent::SwitchedOff)
    }
    #[apply]
    fn target_set(&mut self, degrees: &i32) {
        self.target = Some(*degrees);
    }
    #[apply]
    fn switched_on(&mut self) {
        self.on = true;
    }
    #[apply]
    fn switched_off(&mut self) {
        self.on = false;
    }
}
