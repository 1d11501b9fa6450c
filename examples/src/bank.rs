//! The `BankAccount` aggregate of the benchmark workload (WORKLOAD.md section 1), written
//! with the derive macros.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_examples::bank::{BankAccount, BankCommand, BankError, BankEvent};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let accounts = Cqrs::<BankAccount>::builder(InMemoryEventStore::new()).build();
//! let open = BankCommand::OpenAccount { account_id: "a-1".into(), owner: "ann".into() };
//! accounts.execute_routed(open).await.unwrap();
//! let done = accounts.execute("a-1", BankCommand::Deposit { amount: 5 }).await.unwrap();
//! assert_eq!(done.events[0].event, BankEvent::Deposited { amount: 5, balance: 5 });
//!
//! let err = accounts.execute("a-1", BankCommand::Withdraw { amount: 9 }).await.unwrap_err();
//! assert_eq!(err.rejection(), Some(&BankError::InsufficientFunds { balance: 5, requested: 9 }));
//! # });
//! ```

use cqrs_core::prelude::*;

/// What happened to a bank account. Stored under the variant names `AccountOpened`
/// (schema version 2), `Deposited` and `Withdrew` (version 1).
///
/// `AccountOpened` evolved: version 1 called the owner the account's `holder` and
/// recorded the branch that opened it, which the bank no longer tracks. Stored version-1
/// events still load: the typed step reads them as [`AccountOpenedV1`] and lifts them
/// with `From` (the golden files under `examples/tests/golden/bank` pin what they become).
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_examples::bank::BankEvent;
///
/// let v1 = br#"{"holder":"ann","branch":"Oslo-3"}"#;
/// let today = BankEvent::decode_all(&JsonCodec, "AccountOpened", 1, v1).unwrap();
/// assert_eq!(today, [BankEvent::AccountOpened { owner: "ann".into() }]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum BankEvent {
    /// The account was opened.
    #[event(version = 2)]
    #[upcast(1 -> 2, from = AccountOpenedV1)]
    AccountOpened {
        /// Who owns it.
        owner: String,
    },
    /// Money was paid in.
    Deposited {
        /// How much.
        amount: u64,
        /// The balance after the deposit.
        balance: u64,
    },
    /// Money was taken out.
    Withdrew {
        /// How much.
        amount: u64,
        /// The balance after the withdrawal.
        balance: u64,
    },
}

/// Version 1 of [`BankEvent::AccountOpened`], as it was stored until the bank stopped
/// tracking branches: the owner was the `holder`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountOpenedV1 {
    /// Who owned the account (today's `owner`).
    pub holder: String,
    /// The branch that opened it; no longer recorded.
    pub branch: String,
}

impl From<AccountOpenedV1> for BankEvent {
    fn from(v1: AccountOpenedV1) -> Self {
        BankEvent::AccountOpened { owner: v1.holder }
    }
}

/// What a bank account can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Command)]
pub enum BankCommand {
    /// Opens the account; names it, so it can be sent with
    /// [`Cqrs::execute_routed`](cqrs_core::Cqrs::execute_routed).
    OpenAccount {
        /// The id of the account (the aggregate id).
        #[command(id)]
        account_id: String,
        /// Who owns it.
        owner: String,
    },
    /// Pays money in.
    Deposit {
        /// How much.
        amount: u64,
    },
    /// Takes money out; refused if the balance does not cover it.
    Withdraw {
        /// How much.
        amount: u64,
    },
}

/// Why a bank account refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// `OpenAccount` on an account that is already open.
    #[error("the account is already open")]
    AlreadyOpen,
    /// A deposit or withdrawal on an account that was never opened.
    #[error("the account is not open")]
    NotOpen,
    /// A withdrawal larger than the balance.
    #[error("insufficient funds: the balance is {balance}, {requested} was requested")]
    InsufficientFunds {
        /// The balance at the time of the request.
        balance: u64,
        /// The amount asked for.
        requested: u64,
    },
}

/// A bank account: the fold of its events. Its aggregate type name (the prefix of its
/// stream ids) is `BankAccount`.
///
/// Its rules are declared as invariants, checked after every event by its scenarios and
/// property tests (the runtime does not enforce them: the handlers already refuse what
/// would break them, and the benchmark measures the plain command path).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize, Aggregate)]
#[aggregate(command = BankCommand, event = BankEvent, error = BankError)]
#[invariant(
    no_money_without_an_account,
    "an account that is not open holds no money"
)]
#[invariant(
    given = is_open,
    when = [Deposited, Withdrew],
    shall = is_open,
    "given an open account, when money moves, the account stays open"
)]
pub struct BankAccount {
    /// Whether the account has been opened.
    pub opened: bool,
    /// The current balance.
    pub balance: u64,
}

impl BankAccount {
    /// Invariant: an account that is not open holds no money.
    pub fn no_money_without_an_account(&self) -> bool {
        self.opened || self.balance == 0
    }

    /// Whether the account is open.
    pub fn is_open(&self) -> bool {
        self.opened
    }
}

#[aggregate_impl]
impl BankAccount {
    #[handle]
    fn open_account(&self, account_id: String, owner: String) -> Result<BankEvent, BankError> {
        // The id routes the command; the stream already names the account.
        let _ = account_id;
        if self.opened {
            return Err(BankError::AlreadyOpen);
        }
        Ok(BankEvent::AccountOpened { owner })
    }

    #[handle]
    fn deposit(&self, amount: u64) -> Result<BankEvent, BankError> {
        if !self.opened {
            return Err(BankError::NotOpen);
        }
        Ok(BankEvent::Deposited {
            amount,
            balance: self.balance + amount,
        })
    }

    #[handle]
    fn withdraw(&self, amount: u64) -> Result<BankEvent, BankError> {
        if !self.opened {
            return Err(BankError::NotOpen);
        }
        if amount > self.balance {
            return Err(BankError::InsufficientFunds {
                balance: self.balance,
                requested: amount,
            });
        }
        Ok(BankEvent::Withdrew {
            amount,
            balance: self.balance - amount,
        })
    }

    #[apply]
    fn account_opened(&mut self) {
        self.opened = true;
    }

    #[apply]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
    }

    #[apply]
    fn withdrew(&mut self, balance: &u64) {
        self.balance = *balance;
    }
}
