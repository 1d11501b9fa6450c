//! A small run of every workload through the harness, checking the JSON lines, and of the
//! `bank-bench` binary.

use std::process::Command;

use cqrs_examples::harness::{BenchParams, Workload, run_mem};
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
    assert_eq!(line["framework"], "cqrs-core");
    assert_eq!(line["backend"], "mem");
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

#[test]
fn the_binary_prints_one_line_per_measurement_and_skips_what_is_not_built() {
    let dir = std::env::temp_dir().join(format!("bank-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("out.jsonl");
    let out = bench(&[
        "--backends",
        "mem,postgres",
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
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("`postgres` is not built yet"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Per repetition: W1 and W2 with the cache on and off, W3 and W3-snapshot.
    assert_eq!(lines.len(), 2 * 6);
    let names: Vec<_> = lines[..6]
        .iter()
        .map(|l| format!("{}:{}", l["workload"], l["params"]["cache"]))
        .collect();
    assert_eq!(
        names,
        [
            r#""W1":true"#,
            r#""W1":false"#,
            r#""W2":true"#,
            r#""W2":false"#,
            r#""W3":null"#,
            r#""W3-snapshot":null"#
        ]
    );
    assert_eq!(lines[11]["rep"], 2);
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written, stdout);
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
fn the_binary_fails_when_nothing_can_run() {
    let out = bench(&["--backends", "postgres,sqlite"]);
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
