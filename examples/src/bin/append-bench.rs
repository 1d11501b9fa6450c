//! The SQLite store's own measurements (see `cqrs_examples::sqlite_bench`): append
//! latency as the store grows, snapshot loads of a very long stream, and the plain-SQL
//! baseline.
//!
//! ```text
//! cargo run --release -p cqrs-examples --bin append-bench -- --rep 3
//! cargo run --release -p cqrs-examples --bin append-bench -- --benches raw-sql --rep 3
//! ```
//!
//! Prints JSON lines (field `bench`: `append-growth`, `append-growth-summary`,
//! `snapshot-load`, `snapshot-load-summary`, `raw-sql`, `adapter-appends`, `w1`,
//! `raw-sql-ratio`) to stdout and, with `--out FILE`, appends them to FILE. Every
//! measurement uses a fresh database file in a fresh directory under `$TMPDIR` (else
//! `/tmp`), deleted afterwards.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use cqrs_examples::harness::{Backend, BenchParams, Workload, run_workload};
use cqrs_examples::sqlite_bench::{
    GrowthParams, SnapshotLoadParams, adapter_json, growth_json, ratio_json, raw_json,
    run_adapter_appends, run_growth, run_raw_sql, run_snapshot_load, snapshot_load_json,
    snapshot_summary_json, w1_appends,
};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    /// Single-append latency as the store grows.
    Growth,
    /// Snapshot loads of a short and a very long stream.
    SnapshotLoad,
    /// Plain SQL beside the adapter (and W1) for the events W1 writes.
    RawSql,
}

/// Measures the SQLite store and prints one JSON line per measurement.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Measurements to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "growth,snapshot-load,raw-sql"
    )]
    benches: Vec<Bench>,
    /// growth: store sizes (events) at which a window of timed appends starts.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// growth: single-event appends timed per window.
    #[arg(long, default_value_t = 10_000)]
    window: usize,
    /// growth: streams the events are spread over.
    #[arg(long, default_value_t = 1_000)]
    streams: usize,
    /// growth: the most events one pre-fill append carries.
    #[arg(long, default_value_t = 1_000)]
    prefill_batch: usize,
    /// growth: concurrent pre-fill tasks.
    #[arg(long, default_value_t = 4)]
    prefill_tasks: usize,
    /// growth: do not checkpoint the WAL after each pre-fill (a window may then pay for
    /// the pre-fill burst's checkpoints).
    #[arg(long)]
    no_settle: bool,
    /// snapshot-load: stream lengths compared (each on its own file).
    #[arg(long, value_delimiter = ',', default_value = "1000,1000000")]
    snapshot_sizes: Vec<u64>,
    /// snapshot-load: snapshot interval.
    #[arg(long, default_value_t = 100)]
    snapshot_every: u64,
    /// snapshot-load: events per pre-append (a snapshot after each).
    #[arg(long, default_value_t = 10_000)]
    snapshot_batch: usize,
    /// snapshot-load: events appended after the newest snapshot for a second measurement
    /// (0: none).
    #[arg(long, default_value_t = 50)]
    tail: u64,
    /// snapshot-load: timed loads per measurement.
    #[arg(long, default_value_t = 100)]
    loads: usize,
    /// raw-sql: accounts (A) of the W1 plan whose events are appended.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// raw-sql: commands per account (C) of the W1 plan.
    #[arg(long, default_value_t = 50)]
    commands: usize,
    /// raw-sql: seed of the W1 plan.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// raw-sql: do not run W1 itself on SQLite beside the baseline.
    #[arg(long)]
    no_w1: bool,
    /// Repetitions of every measurement.
    #[arg(long, default_value_t = 1)]
    rep: u32,
    /// Number of the first repetition.
    #[arg(long, default_value_t = 1)]
    first_rep: u32,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("append-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Out(Option<std::fs::File>);

impl Out {
    fn line(&mut self, line: &Value) -> std::io::Result<()> {
        let line = serde_json::to_string(line)?;
        println!("{line}");
        if let Some(out) = &mut self.0 {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if cfg!(debug_assertions) {
        eprintln!("append-bench: warning: debug build; measure with --release");
    }
    let mut out = Out(match &args.out {
        Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
        None => None,
    });
    let growth = GrowthParams {
        sizes: args.sizes.clone(),
        window: args.window,
        streams: args.streams,
        prefill_batch: args.prefill_batch,
        prefill_tasks: args.prefill_tasks,
        settle: !args.no_settle,
    };
    let snapshots = SnapshotLoadParams {
        sizes: args.snapshot_sizes.clone(),
        snapshot_every: args.snapshot_every,
        loads: args.loads,
        prefill_batch: args.snapshot_batch,
        tail: args.tail,
    };
    let plan_params = BenchParams {
        accounts: args.accounts,
        commands: args.commands,
        seed: args.seed,
        ..BenchParams::default()
    };
    plan_params.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let plan = if args.benches.contains(&Bench::RawSql) {
        Some(Arc::from(runtime.block_on(w1_appends(&plan_params))?))
    } else {
        None
    };
    for rep in args.first_rep..args.first_rep + args.rep {
        for bench in &args.benches {
            match bench {
                Bench::Growth => {
                    let run = runtime.block_on(run_growth(&growth))?;
                    for line in growth_json(&growth, &run, rep) {
                        out.line(&line)?;
                    }
                }
                Bench::SnapshotLoad => {
                    let mut all = Vec::new();
                    let mut info = None;
                    for &size in &snapshots.sizes {
                        let (i, loads) = runtime.block_on(run_snapshot_load(&snapshots, size))?;
                        for line in snapshot_load_json(&snapshots, &i, &loads, rep) {
                            out.line(&line)?;
                        }
                        all.extend(loads);
                        info = Some(i);
                    }
                    if let Some(info) = info {
                        for line in snapshot_summary_json(&info, &all, rep) {
                            out.line(&line)?;
                        }
                    }
                }
                Bench::RawSql => {
                    let Some(plan) = &plan else { continue };
                    let raw = runtime.block_on(run_raw_sql(Arc::clone(plan)))?;
                    let (info, adapter, stats) = runtime.block_on(run_adapter_appends(plan))?;
                    out.line(&raw_json(&plan_params, &info, &raw, rep))?;
                    out.line(&adapter_json(&plan_params, &info, &adapter, &stats, rep))?;
                    let w1 = if args.no_w1 {
                        None
                    } else {
                        let mut line = runtime.block_on(run_workload(
                            Backend::Sqlite,
                            Workload::W1,
                            &plan_params,
                            true,
                            rep,
                        ))?;
                        line["bench"] = "w1".into();
                        out.line(&line)?;
                        Some(line)
                    };
                    out.line(&ratio_json(&info, &raw.run, &adapter, w1.as_ref(), rep))?;
                }
            }
        }
    }
    Ok(())
}
