//! The command stream, plan, check values and read model of the workload "bank"
//! (WORKLOAD.md sections 2 to 4), and the pre-appended log of `projection-bench`.
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

use cqrs_core::prelude::*;

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

/// The `AccountSummary` read model (WORKLOAD.md section 2): one document per account,
/// keyed by account id, kept by the framework in the store's views.
///
/// `AccountOpened` creates the document with balance 0; `Deposited` and `Withdrew` set
/// the balance the event carries and count one transaction. The benchmark runs it as an
/// *inline* projection ([`CqrsBuilder::inline_projection`](cqrs_core::CqrsBuilder::inline_projection)
/// with [`ViewProjection`](cqrs_core::projection::ViewProjection)), so a document changes in the same transaction as the
/// append of its event and is up to date when `execute` returns; `projection-bench`
/// runs it as an async projection ([`ProjectionRunner`](cqrs_core::projection::ProjectionRunner)).
///
/// Declared with `#[projection]`: each handler binds the fields it needs of the
/// [`BankEvent`] variants it names.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::projection::{ViewProjection, ViewStoreExt};
/// use cqrs_examples::bank::{BankAccount, BankCommand};
/// use cqrs_examples::workload::AccountSummary;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let accounts = Cqrs::<BankAccount>::builder(store.clone())
///     .inline_projection(ViewProjection::<AccountSummary>::new())
///     .build();
/// let open = BankCommand::OpenAccount { account_id: "a".into(), owner: "ann".into() };
/// accounts.execute("a", open).await.unwrap();
/// accounts.execute("a", BankCommand::Deposit { amount: 7 }).await.unwrap();
/// // Up to date as soon as `execute` returned.
/// let summary = store.get::<AccountSummary>("a").await.unwrap();
/// assert_eq!(summary, Some(AccountSummary { balance: 7, tx_count: 1 }));
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// The account's balance.
    pub balance: u64,
    /// How many deposits and withdrawals it has had.
    pub tx_count: u64,
}

#[projection(name = "account_summary")]
impl AccountSummary {
    #[on(BankEvent::AccountOpened)]
    fn opened(&mut self) {
        self.balance = 0;
    }

    #[on(BankEvent::Deposited)]
    #[on(BankEvent::Withdrew)]
    fn moved(&mut self, balance: &u64) {
        self.balance = *balance;
        self.tx_count += 1;
    }
}

/// What the `AccountSummary` documents add up to: the quantities the check values of
/// WORKLOAD.md section 3 compare against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryTotals {
    /// How many documents (accounts) there are.
    pub rows: usize,
    /// Σ `balance`.
    pub balance_sum: u64,
    /// Σ `tx_count`.
    pub tx_count_sum: u64,
}

impl SummaryTotals {
    /// The totals of `rows` (as [`ViewStoreExt::all`](cqrs_core::projection::ViewStoreExt::all)
    /// returns them).
    ///
    /// ```
    /// use cqrs_examples::workload::{AccountSummary, SummaryTotals};
    /// let rows = [
    ///     ("a".to_owned(), AccountSummary { balance: 5, tx_count: 2 }),
    ///     ("b".to_owned(), AccountSummary { balance: 1, tx_count: 1 }),
    /// ];
    /// let t = SummaryTotals::of(&rows);
    /// assert_eq!((t.rows, t.balance_sum, t.tx_count_sum), (2, 6, 3));
    /// ```
    pub fn of(rows: &[(String, AccountSummary)]) -> Self {
        rows.iter().fold(
            SummaryTotals {
                rows: rows.len(),
                ..SummaryTotals::default()
            },
            |t, (_, r)| SummaryTotals {
                balance_sum: t.balance_sum + r.balance,
                tx_count_sum: t.tx_count_sum + r.tx_count,
                ..t
            },
        )
    }
}

/// The events of account `i` in the pre-appended log of `projection-bench`: `events`
/// bank events, `AccountOpened` first, then deposits, with a withdrawal of
/// part of the balance at every fifth event. Deterministic in `(seed, i)`.
///
/// ```
/// use cqrs_examples::bank::BankEvent;
/// use cqrs_examples::workload::{catch_up_events, catch_up_summary};
/// let events = catch_up_events(42, 3, 10);
/// assert_eq!(events.len(), 10);
/// assert!(matches!(events[0], BankEvent::AccountOpened { .. }));
/// assert!(matches!(events[4], BankEvent::Withdrew { .. }));
/// assert_eq!(catch_up_summary(&events).tx_count, 9);
/// ```
pub fn catch_up_events(seed: u64, i: usize, events: u64) -> Vec<BankEvent> {
    let mut rng = SplitMix64(seed ^ i as u64);
    let mut balance = 0u64;
    let mut out = Vec::with_capacity(events as usize);
    for s in 1..=events {
        let r = rng.next_u64();
        let event = if s == 1 {
            BankEvent::AccountOpened { owner: owner(i) }
        } else if s.is_multiple_of(5) && balance > 0 {
            let amount = 1 + (r >> 32) % balance;
            balance -= amount;
            BankEvent::Withdrew { amount, balance }
        } else {
            let amount = 1 + (r >> 32) % 1000;
            balance += amount;
            BankEvent::Deposited { amount, balance }
        };
        out.push(event);
    }
    out
}

/// The `AccountSummary` a correct projection ends with for `events` (a plain fold, no
/// framework involved).
pub fn catch_up_summary(events: &[BankEvent]) -> AccountSummary {
    events.iter().fold(AccountSummary::default(), |mut row, e| {
        match e {
            BankEvent::AccountOpened { .. } => row.balance = 0,
            BankEvent::Deposited { balance, .. } | BankEvent::Withdrew { balance, .. } => {
                row.balance = *balance;
                row.tx_count += 1;
            }
        }
        row
    })
}

/// How many of `events` events account `i` of `accounts` gets in `projection-bench`:
/// an even share, the first `events % accounts` accounts one more.
///
/// ```
/// use cqrs_examples::workload::catch_up_share;
/// assert_eq!((0..3).map(|i| catch_up_share(10, 3, i)).collect::<Vec<_>>(), [4, 3, 3]);
/// ```
pub fn catch_up_share(events: u64, accounts: usize, i: usize) -> u64 {
    let accounts = accounts.max(1) as u64;
    events / accounts + u64::from((i as u64) < events % accounts)
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
