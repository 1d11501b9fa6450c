//! A small run of every workload through the harness on every backend, checking the JSON
//! lines, and of the `bank-bench`, `projection-bench` and `append-bench` binaries.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use cqrs_examples::harness::{
    Backend, BenchParams, CatchUpParams, Workload, run_catch_up, run_mem, run_workload,
};
use cqrs_examples::sqlite_bench::{
    SnapshotLoadParams, ratio_json, run_adapter_appends, run_raw_sql, run_snapshot_load,
    snapshot_summary_json, w1_appends,
};
use cqrs_examples::workload::CheckValues;
use serde_json::Value;

fn small() -> BenchParams {
    BenchParams {
        accounts: 20,
        commands: 10,
        tasks: 3,
        events: 1_050,
        loads: 5,
        ..BenchParams::default()
    }
}

fn assert_common(line: &Value, workload: &str, rep: u64) {
    assert_backend_common(line, "mem", workload, rep);
}

fn assert_backend_common(line: &Value, backend: &str, workload: &str, rep: u64) {
    assert_eq!(line["framework"], "cqrs-core");
    assert_eq!(line["backend"], backend);
    assert_eq!(line["workload"], workload);
    assert_eq!(line["rep"], rep);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(line["profile"], profile);
    assert!(line["cores"].as_u64().unwrap() >= 1);
    assert!(line["runtime"].as_str().unwrap().contains("tokio"));
    assert!(line["notes"].as_str().unwrap().contains("snapshot"));
    let (p50, p99) = (
        line["p50_us"].as_f64().unwrap(),
        line["p99_us"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_and_w2_lines_carry_every_field() {
    let params = small();
    let expected = CheckValues::expected(params.seed, params.accounts, params.commands);
    for (workload, name) in [(Workload::W1, "W1"), (Workload::W2, "W2")] {
        for cache in [true, false] {
            let line = run_mem(workload, &params, cache, 2).await.unwrap();
            assert_common(&line, name, 2);
            let p = &line["params"];
            assert_eq!(p["accounts"], 20);
            assert_eq!(p["commands_per_account"], 10);
            assert_eq!(p["seed"], 42);
            assert_eq!(p["cache"], cache);
            assert_eq!(
                p["tasks"],
                if workload == Workload::W2 {
                    3.into()
                } else {
                    Value::Null
                }
            );
            assert!(line["commands_per_s"].as_f64().unwrap() > 0.0);
            assert!(line["wall_s"].as_f64().unwrap() > 0.0);
            assert_eq!(line["commands"], 200);
            assert_eq!(line["accepted"], expected.accepted);
            assert_eq!(line["rejected"], expected.rejected);
            assert_eq!(line["balance_sum"], expected.balance_sum);
            assert_eq!(line["tx_count_sum"], expected.tx_count_sum);
            let notes = line["notes"].as_str().unwrap();
            assert!(notes.contains(if cache { "cache on" } else { "cache off" }));
            assert!(
                notes.contains("inline projection in the append transaction"),
                "{notes}"
            );
            assert!(!notes.contains("Mutex<HashMap>"), "{notes}");
        }
    }
}

#[tokio::test]
async fn w3_line_carries_every_field() {
    let line = run_mem(Workload::W3, &small(), true, 1).await.unwrap();
    assert_common(&line, "W3", 1);
    assert_eq!(line["params"]["events"], 1_050);
    assert_eq!(line["params"]["loads"], 5);
    assert!(line["params"].get("snapshot_every").is_some());
    assert!(line["events_per_s"].as_f64().unwrap() > 0.0);
    // 105 blocks of ten events: +90 -50 each, less the first event's missing deposit.
    assert_eq!(line["final_balance"], 105 * 40 - 10);
}

#[tokio::test]
async fn w3_snapshot_loads_the_snapshot_plus_the_tail() {
    // 1,050 events, snapshots every 100: the newest covers 1,000, a load replays 50.
    let line = run_mem(Workload::W3Snapshot, &small(), true, 1)
        .await
        .unwrap();
    assert_common(&line, "W3-snapshot", 1);
    assert_eq!(line["params"]["snapshot_every"], 100);
    assert_eq!(line["final_balance"], 105 * 40 - 10);
    assert!(line["events_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        line["notes"]
            .as_str()
            .unwrap()
            .contains("SnapshotPolicy::every(100)")
    );
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bank-bench"))
        .args(args)
        .output()
        .unwrap()
}

/// A fresh directory for one test, removed by the test when it passes.
fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_binary_prints_one_line_per_measurement() {
    let dir = test_dir("bank-bench-smoke");
    let out_file = dir.join("out.jsonl");
    let scratch = dir.join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bank-bench"))
        .args([
            "--backends",
            "mem,sqlite",
            "--accounts",
            "20",
            "--commands",
            "10",
            "--events",
            "200",
            "--loads",
            "3",
            "--rep",
            "2",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .env("TMPDIR", &scratch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Per repetition and backend: W1 and W2 with the cache on and off, W3 and
    // W3-snapshot.
    assert_eq!(lines.len(), 2 * 2 * 6);
    let names: Vec<_> = lines[..12]
        .iter()
        .map(|l| {
            format!(
                "{}:{}:{}",
                l["backend"], l["workload"], l["params"]["cache"]
            )
        })
        .collect();
    let expected: Vec<String> = ["mem", "sqlite"]
        .iter()
        .flat_map(|b| {
            [
                r#""W1":true"#,
                r#""W1":false"#,
                r#""W2":true"#,
                r#""W2":false"#,
                r#""W3":null"#,
                r#""W3-snapshot":null"#,
            ]
            .map(|w| format!(r#""{b}":{w}"#))
        })
        .collect();
    assert_eq!(names, expected);
    assert_eq!(lines[23]["rep"], 2);
    for line in lines.iter().filter(|l| l["backend"] == "sqlite") {
        assert!(
            line["sqlite"]["transactions"].as_u64().unwrap() > 0,
            "{line}"
        );
        assert_eq!(line["tmp_dir"], scratch.to_str().unwrap());
    }
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written, stdout);
    // Every workload's database directory was deleted.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();

    let no_cache = bench(&[
        "--backends",
        "mem",
        "--workloads",
        "w1",
        "--accounts",
        "5",
        "--commands",
        "3",
        "--no-cache",
    ]);
    assert!(no_cache.status.success());
    let line: Value = serde_json::from_slice(&no_cache.stdout).unwrap();
    assert_eq!(line["params"]["cache"], false);
}

#[test]
fn the_binary_fails_when_the_server_is_unreachable() {
    let out = bench(&[
        "--backends",
        "postgres",
        "--pg-url",
        "postgres://bench@127.0.0.1:1/bench?connect_timeout=2",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn every_decode_path_decodes_right_and_reports_json() {
    use cqrs_examples::decode_bench::{DecodePath, run, to_json};
    for path in DecodePath::ALL {
        let r = run(path, 300, 2).unwrap();
        assert_eq!(r.events, 300);
        assert!(r.events_per_s > 0.0);
        let line = to_json(&r);
        assert_eq!(line["bench"], "decode");
        assert_eq!(line["path"], path.name());
        let produced = if path == DecodePath::Split { 2 } else { 1 };
        assert_eq!(line["produced_per_event"], produced);
    }
}

#[test]
fn the_decode_bench_binary_prints_one_line_per_path() {
    let out = Command::new(env!("CARGO_BIN_EXE_decode-bench"))
        .args(["--events", "200", "--rounds", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["current", "typed-upcast", "json-upcast", "split"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_on_sqlite_and_says_how() {
    let params = BenchParams {
        accounts: 10,
        commands: 6,
        tasks: 3,
        events: 250,
        loads: 3,
        ..BenchParams::default()
    };
    let expected = CheckValues::expected(params.seed, params.accounts, params.commands);
    for (workload, name) in [(Workload::W1, "W1"), (Workload::W2, "W2")] {
        for cache in [true, false] {
            let line = run_workload(Backend::Sqlite, workload, &params, cache, 1)
                .await
                .unwrap();
            assert_backend_common(&line, "sqlite", name, 1);
            assert_eq!(line["params"]["cache"], cache);
            assert_eq!(line["commands"], 60);
            assert_eq!(line["accepted"], expected.accepted);
            assert_eq!(line["balance_sum"], expected.balance_sum);
            assert_eq!(line["tx_count_sum"], expected.tx_count_sum);
            assert_eq!(line["sqlite"]["appended_events"], expected.accepted);
            let notes = line["notes"].as_str().unwrap();
            for said in [
                "synchronous=FULL",
                "journal_mode=wal",
                "group commit",
                "read model AccountSummary: inline projection, documents in the store's \
                 views, updated in the append's transaction",
                "inline projection in the append transaction",
                "the `views` table of the same SQLite file",
                "fresh temporary directory",
            ] {
                assert!(notes.contains(said), "{said}: {notes}");
            }
            assert!(line["versions"].as_str().unwrap().contains("SQLite 3."));
        }
    }
    let line = run_workload(Backend::Sqlite, Workload::W3, &params, true, 1)
        .await
        .unwrap();
    assert_backend_common(&line, "sqlite", "W3", 1);
    assert_eq!(line["final_balance"], 25 * 40 - 10);
    // 250 events in appends of 100: three transactions.
    assert_eq!(line["sqlite"]["transactions"], 3);
    let line = run_workload(Backend::Sqlite, Workload::W3Snapshot, &params, true, 1)
        .await
        .unwrap();
    assert_backend_common(&line, "sqlite", "W3-snapshot", 1);
    assert_eq!(line["final_balance"], 25 * 40 - 10);
    // Three appends and two snapshots (at 100 and 200).
    assert_eq!(line["sqlite"]["write_requests"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_loads_of_a_short_and_a_long_stream_are_compared() {
    let params = SnapshotLoadParams {
        sizes: vec![100, 1_000],
        snapshot_every: 100,
        loads: 3,
        prefill_batch: 300,
        tail: 7,
    };
    let mut all = Vec::new();
    let mut info = None;
    for &size in &params.sizes {
        let (i, loads) = run_snapshot_load(&params, size).await.unwrap();
        assert_eq!(loads.len(), 2);
        assert_eq!((loads[0].events, loads[0].tail), (size, 0));
        assert_eq!((loads[1].events, loads[1].tail), (size + 7, 7));
        assert_eq!(loads[1].snapshot_version, size);
        all.extend(loads);
        info = Some(i);
    }
    let summary = snapshot_summary_json(&info.unwrap(), &all, 1);
    assert_eq!(summary.len(), 2);
    assert_eq!(summary[0]["bench"], "snapshot-load-summary");
    assert_eq!(
        (
            summary[0]["small_events"].as_u64(),
            summary[0]["large_events"].as_u64()
        ),
        (Some(100), Some(1_000))
    );
    assert_eq!(summary[1]["tail"], 7);
    assert!(summary[0]["p50_ratio"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_baseline_writes_what_the_adapter_writes_with_its_pragmas() {
    let params = BenchParams {
        accounts: 6,
        commands: 5,
        ..BenchParams::default()
    };
    let plan: Arc<[_]> = w1_appends(&params).await.unwrap().into();
    let expected = CheckValues::expected(params.seed, params.accounts, params.commands);
    assert_eq!(plan.len() as u64, expected.accepted);
    let raw = run_raw_sql(plan.clone()).await.unwrap();
    assert_eq!(raw.run.latencies_ns.len(), plan.len());
    let get = |name: &str| {
        raw.pragmas
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("journal_mode"), Some("wal"));
    assert_eq!(get("synchronous"), Some("2"));
    let (info, adapter, stats) = run_adapter_appends(&plan).await.unwrap();
    assert_eq!(adapter.latencies_ns.len(), plan.len());
    assert_eq!(stats.appended_events, expected.accepted);
    assert_eq!(stats.largest_group, 1);
    let ratio = ratio_json(&info, &raw.run, &adapter, None, 1);
    assert_eq!(ratio["bench"], "raw-sql-ratio");
    assert!(ratio["adapter_over_raw"]["time"].as_f64().unwrap() > 0.0);
    assert_eq!(ratio["w1_over_raw"], Value::Null);
}

#[test]
fn the_append_bench_binary_prints_every_measurement() {
    let dir = test_dir("append-bench-smoke");
    let out = Command::new(env!("CARGO_BIN_EXE_append-bench"))
        .args([
            "--sizes",
            "100,300",
            "--window",
            "30",
            "--streams",
            "10",
            "--prefill-batch",
            "20",
            "--snapshot-sizes",
            "100,500",
            "--snapshot-batch",
            "200",
            "--tail",
            "5",
            "--loads",
            "3",
            "--accounts",
            "4",
            "--commands",
            "5",
        ])
        .env("TMPDIR", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let benches: Vec<&str> = lines.iter().map(|l| l["bench"].as_str().unwrap()).collect();
    assert_eq!(
        benches,
        [
            "append-growth",
            "append-growth",
            "append-growth-summary",
            "snapshot-load",
            "snapshot-load",
            "snapshot-load",
            "snapshot-load",
            "snapshot-load-summary",
            "snapshot-load-summary",
            "raw-sql",
            "adapter-appends",
            "w1",
            "raw-sql-ratio",
        ]
    );
    for line in &lines {
        assert_eq!(line["backend"], "sqlite", "{line}");
        assert_eq!(line["framework"], "cqrs-core");
    }
    assert_eq!(lines[0]["store_events"], 100);
    assert_eq!(lines[1]["store_events"], 300);
    assert_eq!(lines[1]["window"], 30);
    assert!(lines[2]["p99_ratio"].as_f64().unwrap() > 0.0);
    assert!(lines[2]["flat"].is_boolean());
    assert_eq!(lines[9]["appends"], lines[10]["appends"]);
    assert_eq!(lines[11]["workload"], "W1");
    assert!(lines[12]["w1_over_raw"]["time"].as_f64().unwrap() > 0.0);
    // Every measurement's directory was deleted.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The server of the `postgres` tests: `CQRS_TEST_PG_URL`, else the suites' default.
fn test_pg_url() -> String {
    std::env::var("CQRS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Every workload and the raw limit on PostgreSQL, small parameters, each in a fresh
/// schema that is dropped afterwards. Skipped (reason printed) when the server is
/// unreachable, unless `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_on_postgres_and_says_how() {
    use cqrs_core::StoreError;
    use cqrs_core::store::postgres::PostgresConnectError;
    use cqrs_examples::harness::{BenchError, run_workload_with};

    let url = test_pg_url();
    let params = small();
    let first = run_workload_with(Backend::Postgres, &url, Workload::W1, &params, true, 1).await;
    let first = match first {
        Ok(line) => line,
        Err(BenchError::Open {
            source: StoreError::Backend(source),
            ..
        }) if std::env::var("CI").as_deref() != Ok("true")
            && source
                .downcast_ref::<PostgresConnectError>()
                .is_some_and(PostgresConnectError::is_unreachable) =>
        {
            eprintln!("skipped: {source}");
            return;
        }
        Err(e) => panic!("postgres at {url}: {e}"),
    };
    assert_backend_common(&first, "postgres", "W1", 1);
    let notes = first["notes"].as_str().unwrap();
    assert!(notes.contains("pool of at most 10"), "{notes}");
    assert!(
        notes.contains("inline projection in the append transaction"),
        "{notes}"
    );
    let expected = CheckValues::expected(params.seed, params.accounts, params.commands);
    assert_eq!(first["balance_sum"], expected.balance_sum);
    assert_eq!(first["tx_count_sum"], expected.tx_count_sum);
    for (workload, cache) in [
        (Workload::W1, false),
        (Workload::W2, true),
        (Workload::W2, false),
    ] {
        let line = run_workload_with(Backend::Postgres, &url, workload, &params, cache, 1)
            .await
            .unwrap();
        assert_backend_common(&line, "postgres", workload.name(), 1);
        assert_eq!(line["params"]["cache"], cache);
    }
    for workload in [Workload::W3, Workload::W3Snapshot] {
        let line = run_workload_with(Backend::Postgres, &url, workload, &params, true, 1)
            .await
            .unwrap();
        assert_backend_common(&line, "postgres", workload.name(), 1);
        assert!(line["notes"].as_str().unwrap().contains("VACUUM ANALYZE"));
    }
    let raw = cqrs_examples::pg_bench::raw_single_inserts(&url, 5, 50)
        .await
        .unwrap();
    assert_eq!((raw.inserts, raw.latencies_ns.len()), (50, 50));
    let line = cqrs_examples::pg_bench::raw_json(&url, 5, 1, &raw);
    assert_eq!(line["workload"], "raw-insert");
    assert!(line["inserts_per_s"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_projects_the_whole_log_on_every_local_backend() {
    // 1,003 events over 10 accounts: shares of 101 and 100, appends of 30, batches of
    // 64 (the last one partial).
    let params = CatchUpParams {
        events: 1_003,
        accounts: 10,
        batch: 64,
        append_batch: 30,
        append_tasks: 3,
        ..CatchUpParams::default()
    };
    for (backend, name) in [(Backend::Mem, "mem"), (Backend::Sqlite, "sqlite")] {
        let line = run_catch_up(backend, &params, 4).await.unwrap();
        assert_eq!(line["framework"], "cqrs-core");
        assert_eq!(line["backend"], name);
        assert_eq!(line["workload"], "projection-catch-up");
        assert_eq!(line["rep"], 4);
        assert_eq!(line["params"]["events"], 1_003);
        assert_eq!(line["params"]["batch"], 64);
        assert_eq!(line["params"]["accounts"], 10);
        assert_eq!(line["rows"], 10);
        assert_eq!(line["position"], 1_003);
        assert_eq!(line["batches"], 16);
        // One open per account, every other event moves money.
        assert_eq!(line["tx_count_sum"], 1_003 - 10);
        assert!(line["events_per_s"].as_f64().unwrap() > 0.0);
        let notes = line["notes"].as_str().unwrap();
        assert!(notes.contains("batch_size: 64"), "{notes}");
        assert!(notes.contains("one transaction per batch"), "{notes}");
        if backend == Backend::Sqlite {
            // One writer transaction per batch (documents and checkpoint together).
            assert_eq!(line["sqlite"]["transactions"], 16, "{line}");
            assert!(notes.contains("Durability::Full"), "{notes}");
        }
    }
}

#[test]
fn the_projection_bench_binary_prints_one_line_per_backend() {
    let dir = test_dir("projection-bench-smoke");
    let out_file = dir.join("out.jsonl");
    let scratch = dir.join("tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_projection-bench"))
        .args([
            "--backends",
            "sqlite,mem",
            "--events",
            "20000",
            "--out",
            out_file.to_str().unwrap(),
        ])
        .env("TMPDIR", &scratch)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let backends: Vec<&str> = lines
        .iter()
        .map(|l| l["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["sqlite", "mem"]);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    for line in &lines {
        assert_eq!(line["framework"], "cqrs-core");
        assert_eq!(line["workload"], "projection-catch-up");
        assert_eq!(line["rep"], 1);
        assert_eq!(line["profile"], profile);
        assert!(line["cores"].as_u64().unwrap() >= 1);
        assert_eq!(line["params"]["events"], 20_000);
        assert_eq!(line["params"]["batch"], 1_000);
        assert_eq!(line["params"]["accounts"], 1_000);
        assert_eq!(line["position"], 20_000);
        assert_eq!(line["rows"], 1_000);
        assert_eq!(line["batches"], 20);
        assert_eq!(line["tx_count_sum"], 20_000 - 1_000);
        assert!(line["events_per_s"].as_f64().unwrap() > 0.0);
        assert!(line["wall_s"].as_f64().unwrap() > 0.0);
        assert!(line["notes"].as_str().unwrap().contains("ProjectionRunner"));
    }
    // Both lines describe the same log.
    assert_eq!(lines[0]["balance_sum"], lines[1]["balance_sum"]);
    assert_eq!(lines[0]["sqlite"]["transactions"], 20);
    assert_eq!(lines[0]["tmp_dir"], scratch.to_str().unwrap());
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), stdout);
    // The database directory was deleted.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
