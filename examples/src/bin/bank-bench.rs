//! The benchmark harness of the workload "bank" (WORKLOAD.md section 7).
//!
//! ```text
//! cargo run --release -p cqrs-examples --bin bank-bench -- --backends mem,sqlite --rep 3
//! ```
//!
//! Prints one JSON line per (workload, backend, cache mode, repetition) to stdout and,
//! with `--out FILE`, appends it to FILE. Exits non-zero if a check value is wrong or if
//! nothing could run. The `sqlite` backend puts each workload's database in a fresh
//! directory under `$TMPDIR` (else `/tmp`) and deletes it afterwards; `postgres` runs each
//! workload in a fresh schema `bench_…` of the server at `--pg-url` (pool of 10
//! connections), dropped afterwards, and once per repetition the plain-SQL limit
//! (`raw-insert`, `--pg-raw` single-event inserts). Within a repetition the backends run one after the other, each through
//! every requested workload.
//!
//! In W1/W2 the read model `AccountSummary` is the framework's: an inline projection
//! whose documents live in the store's views and change in each append's transaction;
//! the check values are read back from those views after the clock stops.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use cqrs_examples::harness::{self, BenchParams, DEFAULT_PG_URL, Workload, run_workload_with};
use cqrs_examples::pg_bench;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Mem,
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    W1,
    W2,
    W3,
    W3Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CacheArg {
    On,
    Off,
    Both,
}

/// Runs the workload "bank" and prints one JSON line per measurement.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Backends to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mem,sqlite,postgres"
    )]
    backends: Vec<Backend>,
    /// Workloads to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "w1,w2,w3,w3-snapshot"
    )]
    workloads: Vec<WorkloadArg>,
    /// Accounts (A) in W1/W2.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Commands per account (C) in W1/W2.
    #[arg(long, default_value_t = 50)]
    commands: usize,
    /// Tasks (T) in W2.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Events (N) of the W3 stream.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Snapshot interval of W3-snapshot.
    #[arg(long, default_value_t = 100)]
    snapshot_every: u64,
    /// Timed loads (L) in W3.
    #[arg(long, default_value_t = 100)]
    loads: usize,
    /// Seed of the command generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions of every measurement.
    #[arg(long, default_value_t = 1)]
    rep: u32,
    /// Number of the first repetition (for runs alternated with another framework).
    #[arg(long, default_value_t = 1)]
    first_rep: u32,
    /// Aggregate cache in W1/W2: on, off (every command replays its stream, as cqrs-es
    /// does) or both (one line each).
    #[arg(long, value_enum, default_value = "both")]
    cache: CacheArg,
    /// Same as `--cache off`.
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// PostgreSQL URL (default: $BENCH_PG_URL, else the cluster of bench/pg-up.sh).
    #[arg(long)]
    pg_url: Option<String>,
    /// Single-event inserts of the plain-SQL limit of `postgres` per repetition (0: skip).
    #[arg(long, default_value_t = 10_000)]
    pg_raw: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => {
            eprintln!("bank-bench: nothing ran (no requested backend/workload is built yet)");
            ExitCode::from(2)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bank-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every requested measurement; returns how many ran.
fn run(args: &Args) -> Result<usize, Box<dyn std::error::Error>> {
    if cfg!(debug_assertions) {
        eprintln!("bank-bench: warning: debug build; measure with --release");
    }
    let params = BenchParams {
        accounts: args.accounts,
        commands: args.commands,
        tasks: args.tasks,
        events: args.events,
        snapshot_every: args.snapshot_every,
        loads: args.loads,
        seed: args.seed,
    };
    params.validate()?;
    let caches: &[bool] = match (args.no_cache, args.cache) {
        (true, _) | (false, CacheArg::Off) => &[false],
        (false, CacheArg::On) => &[true],
        (false, CacheArg::Both) => &[true, false],
    };
    let mut out = match &args.out {
        Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
        None => None,
    };
    let pg_url = args
        .pg_url
        .clone()
        .or_else(|| std::env::var("BENCH_PG_URL").ok())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned());

    let mut backends = Vec::new();
    for backend in &args.backends {
        match backend {
            Backend::Mem => backends.push(harness::Backend::Mem),
            Backend::Sqlite => backends.push(harness::Backend::Sqlite),
            Backend::Postgres => backends.push(harness::Backend::Postgres),
        }
    }
    backends.dedup();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut ran = 0;
    let mut emit = |line: &serde_json::Value| -> Result<(), Box<dyn std::error::Error>> {
        let line = serde_json::to_string(line)?;
        println!("{line}");
        if let Some(out) = &mut out {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    };
    for rep in args.first_rep..args.first_rep + args.rep {
        for &backend in &backends {
            if backend == harness::Backend::Postgres && args.pg_raw > 0 {
                let run = runtime.block_on(pg_bench::raw_single_inserts(
                    &pg_url,
                    args.accounts,
                    args.pg_raw,
                ))?;
                emit(&pg_bench::raw_json(&pg_url, args.accounts, rep, &run))?;
                ran += 1;
            }
            for workload in &args.workloads {
                let (workload, modes): (Workload, &[bool]) = match workload {
                    WorkloadArg::W1 => (Workload::W1, caches),
                    WorkloadArg::W2 => (Workload::W2, caches),
                    // The load path bypasses the cache: one line per repetition.
                    WorkloadArg::W3 => (Workload::W3, &[true]),
                    WorkloadArg::W3Snapshot => (Workload::W3Snapshot, &[true]),
                };
                for &cache in modes {
                    let line = runtime.block_on(run_workload_with(
                        backend, &pg_url, workload, &params, cache, rep,
                    ))?;
                    emit(&line)?;
                    ran += 1;
                }
            }
        }
    }
    Ok(ran)
}
