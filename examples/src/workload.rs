//! The command stream, plan, check values and read model of the workload "bank"
//! (WORKLOAD.md sections 2 to 4).
//!
//! Everything here is deterministic: the same seed gives the same commands on every
//! machine, so any framework running them must end with the same [`CheckValues`].
//!
//! ```
//! use cqrs_examples::workload::{CheckValues, account_commands};
//! use cqrs_examples::bank::BankCommand;
//!
//! let cmds = account_commands(42, 7, 50);
//! assert_eq!(cmds.len(), 50);
//! assert!(matches!(&cmds[0], BankCommand::OpenAccount { account_id, .. } if account_id == "acct-000007"));
//! assert_eq!(CheckValues::expected(42, 1000, 50), CheckValues::DEFAULTS);
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use cqrs_core::EventEnvelope;

use crate::bank::{BankCommand, BankEvent};

/// Default number of accounts (`A`).
pub const DEFAULT_ACCOUNTS: usize = 1000;
/// Default number of commands per account (`C`).
pub const DEFAULT_COMMANDS: usize = 50;
/// Default seed.
pub const DEFAULT_SEED: u64 = 42;
/// The id of the single account of W3.
pub const W3_ACCOUNT: &str = "w3-account";
/// The owner of the W3 account.
pub const W3_OWNER: &str = "owner-w3";

/// The SplitMix64 generator, exactly as WORKLOAD.md section 3 defines it.
///
/// ```
/// use cqrs_examples::workload::SplitMix64;
/// let mut a = SplitMix64(42);
/// let mut b = SplitMix64(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The id of account `i`: `acct-000000`, `acct-000001`, …
///
/// ```
/// assert_eq!(cqrs_examples::workload::account_id(42), "acct-000042");
/// ```
pub fn account_id(i: usize) -> String {
    format!("acct-{i:06}")
}

/// The owner of account `i`: `owner-0`, `owner-1`, …
pub fn owner(i: usize) -> String {
    format!("owner-{i}")
}

/// The `c` commands of account `i` (normative generator of WORKLOAD.md section 3): an
/// `OpenAccount`, then deposits and withdrawals, about one withdrawal in ten of which
/// overdraws and must be rejected.
pub fn account_commands(seed: u64, i: usize, c: usize) -> Vec<BankCommand> {
    let mut rng = SplitMix64(seed ^ i as u64);
    let mut cmds = Vec::with_capacity(c.max(1));
    cmds.push(BankCommand::OpenAccount {
        account_id: account_id(i),
        owner: owner(i),
    });
    // The balance a correct framework will hold.
    let mut balance = 0u64;
    for _ in 1..c {
        let r = rng.next_u64();
        let amount = 1 + (r >> 32) % 1000;
        if balance == 0 || r.is_multiple_of(2) {
            cmds.push(BankCommand::Deposit { amount });
            balance += amount;
        } else if (r >> 8).is_multiple_of(10) {
            // Overdraws: rejected.
            cmds.push(BankCommand::Withdraw {
                amount: balance + amount,
            });
        } else {
            let amount = 1 + (r >> 32) % balance;
            cmds.push(BankCommand::Withdraw { amount });
            balance -= amount;
        }
    }
    cmds
}

/// One command of a plan, addressed to an account by its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The index `i` of the account (its id is [`account_id`]`(i)`).
    pub account: usize,
    /// The command.
    pub command: BankCommand,
}

/// The round-robin plan over `accounts` (increasing indices): for `k` in `0..c`, for each
/// account, its command `k`. Every account is opened in round 0.
///
/// ```
/// use cqrs_examples::workload::round_robin_plan;
/// let plan = round_robin_plan(42, &[0, 1], 3);
/// let order: Vec<_> = plan.iter().map(|p| p.account).collect();
/// assert_eq!(order, [0, 1, 0, 1, 0, 1]);
/// ```
pub fn round_robin_plan(seed: u64, accounts: &[usize], c: usize) -> Vec<Planned> {
    let mut streams: Vec<_> = accounts
        .iter()
        .map(|&i| (i, account_commands(seed, i, c).into_iter()))
        .collect();
    let mut plan = Vec::with_capacity(accounts.len() * c);
    for _ in 0..c {
        for (account, commands) in &mut streams {
            if let Some(command) = commands.next() {
                plan.push(Planned {
                    account: *account,
                    command,
                });
            }
        }
    }
    plan
}

/// The accounts task `task` of `tasks` owns in W2: those with `i % tasks == task`.
///
/// ```
/// assert_eq!(cqrs_examples::workload::task_accounts(10, 4, 1), [1, 5, 9]);
/// ```
pub fn task_accounts(accounts: usize, tasks: usize, task: usize) -> Vec<usize> {
    (0..accounts).filter(|i| i % tasks == task).collect()
}

/// The quantities a run must reproduce (WORKLOAD.md section 3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckValues {
    /// Commands sent.
    pub commands: u64,
    /// Commands accepted (= events written).
    pub accepted: u64,
    /// Commands rejected.
    pub rejected: u64,
    /// Σ `AccountSummary.balance` over all accounts.
    pub balance_sum: u64,
    /// Σ `AccountSummary.tx_count` over all accounts.
    pub tx_count_sum: u64,
}

impl CheckValues {
    /// The published values for A=1000, C=50, SEED=42.
    pub const DEFAULTS: CheckValues = CheckValues {
        commands: 50_000,
        accepted: 47_595,
        rejected: 2_405,
        balance_sum: 1_098_465,
        tx_count_sum: 46_595,
    };

    /// The values a correct framework ends with for `accounts` accounts of `c` commands,
    /// computed by running the generated commands through a plain reference model of the
    /// domain rules (no framework involved).
    pub fn expected(seed: u64, accounts: usize, c: usize) -> CheckValues {
        let mut v = CheckValues::default();
        for i in 0..accounts {
            let (mut opened, mut balance, mut tx) = (false, 0u64, 0u64);
            for command in account_commands(seed, i, c) {
                v.commands += 1;
                let ok = match command {
                    BankCommand::OpenAccount { .. } => {
                        !opened && {
                            opened = true;
                            true
                        }
                    }
                    BankCommand::Deposit { amount } => {
                        opened && {
                            balance += amount;
                            tx += 1;
                            true
                        }
                    }
                    BankCommand::Withdraw { amount } => {
                        opened && amount <= balance && {
                            balance -= amount;
                            tx += 1;
                            true
                        }
                    }
                };
                if ok {
                    v.accepted += 1;
                } else {
                    v.rejected += 1;
                }
            }
            v.balance_sum += balance;
            v.tx_count_sum += tx;
        }
        v
    }
}

/// One row of the `AccountSummary` read model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account's balance.
    pub balance: u64,
    /// How many deposits and withdrawals it has had.
    pub tx_count: u64,
}

/// The `AccountSummary` read model: one row per account, keyed by account id, in an
/// in-process map.
///
/// For now the caller updates it from the events a command committed (see
/// [`AccountSummaries::apply`]); the framework's own projections come later.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_examples::bank::{BankAccount, BankCommand};
/// use cqrs_examples::workload::{AccountSummaries, AccountSummary};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let accounts = Cqrs::<BankAccount>::builder(InMemoryEventStore::new()).build();
/// let summaries = AccountSummaries::default();
/// let open = BankCommand::OpenAccount { account_id: "a".into(), owner: "ann".into() };
/// let done = accounts.execute("a", open).await.unwrap();
/// summaries.apply("a", &done.events);
/// let done = accounts.execute("a", BankCommand::Deposit { amount: 7 }).await.unwrap();
/// summaries.apply("a", &done.events);
/// assert_eq!(summaries.get("a"), Some(AccountSummary { balance: 7, tx_count: 1 }));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct AccountSummaries {
    rows: Mutex<HashMap<String, AccountSummary>>,
}

impl AccountSummaries {
    /// An empty read model with room for `accounts` rows.
    pub fn with_capacity(accounts: usize) -> Self {
        Self {
            rows: Mutex::new(HashMap::with_capacity(accounts)),
        }
    }

    /// Applies the committed events of account `account_id`: `AccountOpened` creates the
    /// row with balance 0; `Deposited` and `Withdrew` set the balance and count one
    /// transaction.
    pub fn apply(&self, account_id: &str, events: &[EventEnvelope<BankEvent>]) {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        for envelope in events {
            match &envelope.event {
                BankEvent::AccountOpened { .. } => {
                    rows.insert(account_id.to_owned(), AccountSummary::default());
                }
                BankEvent::Deposited { balance, .. } | BankEvent::Withdrew { balance, .. } => {
                    let row = match rows.get_mut(account_id) {
                        Some(row) => row,
                        None => rows.entry(account_id.to_owned()).or_default(),
                    };
                    row.balance = *balance;
                    row.tx_count += 1;
                }
            }
        }
    }

    /// The row of `account_id`, if the account was opened.
    pub fn get(&self, account_id: &str) -> Option<AccountSummary> {
        let rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        rows.get(account_id).copied()
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no account has been opened.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Σ balance and Σ tx_count over all rows.
    pub fn totals(&self) -> (u64, u64) {
        let rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        rows.values()
            .fold((0, 0), |(b, t), r| (b + r.balance, t + r.tx_count))
    }
}

/// Event `s` (1-based) of the W3 stream: `AccountOpened` first, then a `Withdrew` of 50
/// at every multiple of 10 and a `Deposited` of 10 otherwise; `balance` is the balance
/// before the event, and the event carries the balance after it.
pub fn w3_event(s: u64, balance: u64) -> BankEvent {
    if s == 1 {
        BankEvent::AccountOpened {
            owner: W3_OWNER.to_owned(),
        }
    } else if s.is_multiple_of(10) {
        BankEvent::Withdrew {
            amount: 50,
            balance: balance - 50,
        }
    } else {
        BankEvent::Deposited {
            amount: 10,
            balance: balance + 10,
        }
    }
}

/// The `n` events of the W3 stream, in order.
///
/// ```
/// use cqrs_examples::workload::{w3_events, w3_final_balance};
/// assert_eq!(w3_events(10_000).len(), 10_000);
/// assert_eq!(w3_final_balance(10_000), 39_990);
/// ```
pub fn w3_events(n: u64) -> Vec<BankEvent> {
    let mut balance = 0;
    (1..=n)
        .map(|s| {
            let e = w3_event(s, balance);
            if let BankEvent::Deposited { balance: b, .. }
            | BankEvent::Withdrew { balance: b, .. } = &e
            {
                balance = *b;
            }
            e
        })
        .collect()
}

/// The balance of the W3 account after its `n` events.
pub fn w3_final_balance(n: u64) -> u64 {
    match w3_events(n).last() {
        Some(BankEvent::Deposited { balance, .. } | BankEvent::Withdrew { balance, .. }) => {
            *balance
        }
        _ => 0,
    }
}
