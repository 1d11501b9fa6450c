//! The workload generator and the real runtime reproduce the published check values
//! (WORKLOAD.md section 3), read from the inline `AccountSummary` projection's documents.

use cqrs_core::projection::{View, ViewStoreExt};
use cqrs_examples::harness::{BenchParams, Workload, check, mem_cqrs, run_w1, run_w2};
use cqrs_examples::workload::{AccountSummary, CheckValues, account_commands, round_robin_plan};

#[test]
fn the_reference_model_gives_the_published_values() {
    assert_eq!(CheckValues::expected(42, 1000, 50), CheckValues::DEFAULTS);
    // 23,865 withdrawals, 10.1 % of which overdraw.
    let withdrawals = (0..1000)
        .flat_map(|i| account_commands(42, i, 50))
        .filter(|c| matches!(c, cqrs_examples::bank::BankCommand::Withdraw { .. }))
        .count();
    assert_eq!(withdrawals, 23_865);
}

#[test]
fn the_plan_is_round_robin_and_opens_every_account_first() {
    let all: Vec<usize> = (0..1000).collect();
    let plan = round_robin_plan(42, &all, 50);
    assert_eq!(plan.len(), 50_000);
    for (n, p) in plan.iter().enumerate() {
        assert_eq!(p.account, n % 1000);
    }
    assert!(plan[..1000].iter().all(|p| matches!(
        p.command,
        cqrs_examples::bank::BankCommand::OpenAccount { .. }
    )));
}

#[tokio::test]
async fn w1_through_the_runtime_reproduces_the_check_values() {
    let params = BenchParams::default();
    for cache in [true, false] {
        let bank = mem_cqrs(cache, params.accounts);
        let run = run_w1(&bank, &params).await.unwrap();
        assert_eq!(run.observed, CheckValues::DEFAULTS, "cache {cache}");
        assert_eq!(run.rows, 1000);
        assert_eq!(run.latencies_ns.len(), 50_000);
        check(Workload::W1, &params, &run).unwrap();
        // The store holds exactly the accepted events.
        assert_eq!(bank.store().head_position().await.unwrap(), 47_595);
        // The read model is the inline projection's (which keeps no checkpoint).
        let state = bank
            .views()
            .projection_state(AccountSummary::NAME)
            .await
            .unwrap();
        assert_eq!(state.position, 0);
        let row = bank
            .views()
            .get::<AccountSummary>("acct-000000")
            .await
            .unwrap();
        assert!(row.is_some_and(|r| r.tx_count > 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w2_through_the_runtime_reproduces_the_check_values() {
    let params = BenchParams::default();
    let bank = mem_cqrs(true, params.accounts);
    let run = run_w2(&bank, &params).await.unwrap();
    assert_eq!(run.observed, CheckValues::DEFAULTS);
    check(Workload::W2, &params, &run).unwrap();
}

#[test]
fn a_wrong_result_fails_the_check() {
    let params = BenchParams {
        accounts: 3,
        commands: 5,
        ..BenchParams::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut run = rt.block_on(run_w1(&mem_cqrs(true, 3), &params)).unwrap();
    check(Workload::W1, &params, &run).unwrap();
    run.observed.balance_sum += 1;
    let err = check(Workload::W1, &params, &run).unwrap_err();
    assert!(err.to_string().contains("check values wrong"), "{err}");
}

#[tokio::test]
async fn a_read_model_without_its_projection_fails_the_check() {
    // Commands sent through a runtime without the inline projection leave the views
    // empty: the harness reads the totals from the store, not from the command results.
    use cqrs_core::prelude::*;
    use cqrs_examples::bank::{BankAccount, BankCommand};
    use cqrs_examples::harness::summary_totals;

    let store = InMemoryEventStore::new();
    let plain = Cqrs::<BankAccount>::builder(store.clone()).build();
    let open = BankCommand::OpenAccount {
        account_id: "a".into(),
        owner: "ann".into(),
    };
    plain.execute("a", open).await.unwrap();
    let totals = summary_totals(&store).await.unwrap();
    assert_eq!(totals.rows, 0);
}

/// The same read model written with `#[projection]` instead of the hand-written
/// [`View`] of `AccountSummary`, under another name.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DerivedSummary {
    balance: u64,
    tx_count: u64,
}

#[cqrs_core::projection(name = "account_summary_derived")]
impl DerivedSummary {
    #[on(cqrs_examples::bank::BankEvent::AccountOpened)]
    fn opened(&mut self) {
        self.balance = 0;
    }

    #[on(cqrs_examples::bank::BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
        self.tx_count += 1;
    }

    #[on(cqrs_examples::bank::BankEvent::Withdrew)]
    fn withdrew(&mut self, balance: &u64) {
        self.balance = *balance;
        self.tx_count += 1;
    }
}

#[tokio::test]
async fn the_inline_view_matches_an_async_derived_twin() {
    use cqrs_core::projection::{ProjectionRunner, ViewProjection};

    let params = BenchParams {
        accounts: 40,
        commands: 20,
        ..BenchParams::default()
    };
    let bank = mem_cqrs(false, params.accounts);
    let run = run_w1(&bank, &params).await.unwrap();
    check(Workload::W1, &params, &run).unwrap();
    let runner = ProjectionRunner::from_parts(
        bank.store().clone(),
        bank.views().clone(),
        std::sync::Arc::new(ViewProjection::<DerivedSummary>::new()),
    );
    assert_eq!(runner.catch_up().await.unwrap(), run.observed.accepted);
    let inline = bank.views().all::<AccountSummary>().await.unwrap();
    let derived = bank.views().all::<DerivedSummary>().await.unwrap();
    assert_eq!(inline.len(), 40);
    let derived: Vec<_> = derived
        .into_iter()
        .map(|(k, d)| {
            let row = AccountSummary {
                balance: d.balance,
                tx_count: d.tx_count,
            };
            (k, row)
        })
        .collect();
    assert_eq!(inline, derived);
}
