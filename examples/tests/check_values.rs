//! The workload generator and the real runtime reproduce the published check values
//! (WORKLOAD.md section 3).

use cqrs_examples::harness::{BenchParams, Workload, check, mem_cqrs, run_w1, run_w2};
use cqrs_examples::workload::{CheckValues, account_commands, round_robin_plan};

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
        let cqrs = mem_cqrs(cache, params.accounts);
        let run = run_w1(&cqrs, &params).await.unwrap();
        assert_eq!(run.observed, CheckValues::DEFAULTS, "cache {cache}");
        assert_eq!(run.rows, 1000);
        assert_eq!(run.latencies_ns.len(), 50_000);
        check(Workload::W1, &params, &run).unwrap();
        // The store holds exactly the accepted events.
        assert_eq!(cqrs.store().head_position().await.unwrap(), 47_595);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w2_through_the_runtime_reproduces_the_check_values() {
    let params = BenchParams::default();
    let cqrs = mem_cqrs(true, params.accounts);
    let run = run_w2(&cqrs, &params).await.unwrap();
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
