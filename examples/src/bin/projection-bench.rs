//! Async projection catch-up throughput: how fast a [`ProjectionRunner`] builds the
//! `AccountSummary` read model from an existing log.
//!
//! ```text
//! cargo run --release -p cqrs-examples --bin projection-bench -- --rep 3
//! ```
//!
//! Per repetition and backend: a fresh store (`sqlite`: one database file in a fresh
//! directory under `$TMPDIR`, else `/tmp`, default options and durability, deleted
//! afterwards; `mem`: the in-memory store, a quick sanity run), `--events` bank events
//! pre-appended untimed over `--accounts` accounts (appends of `--append-batch` events),
//! then one timed `ProjectionRunner::catch_up` of `ViewProjection::<AccountSummary>` from
//! position 0 to the head in batches of `--batch` events, each committed with its
//! checkpoint in one transaction. Prints one JSON line per (backend, repetition) to stdout
//! (and appends it to `--out`); exits non-zero if the projection's documents do not add
//! up to the fold of the appended events or its checkpoint is not the head.
//!
//! [`ProjectionRunner`]: cqrs_core::projection::ProjectionRunner

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use cqrs_examples::harness::{self, CatchUpParams, run_catch_up};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Mem,
    Sqlite,
}

/// Measures an async projection catching up with a pre-appended log and prints one JSON
/// line per measurement.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Backends to run, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite")]
    backends: Vec<Backend>,
    /// Events pre-appended and then projected.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per projection batch (RunnerOptions::batch_size): one transaction each.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Accounts (streams, documents) the events are spread over.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Events per append of the (untimed) pre-append.
    #[arg(long, default_value_t = 100)]
    append_batch: usize,
    /// Concurrent tasks of the (untimed) pre-append.
    #[arg(long, default_value_t = 8)]
    append_tasks: usize,
    /// Seed of the event amounts.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Repetitions.
    #[arg(long, default_value_t = 1)]
    rep: u32,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("projection-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if cfg!(debug_assertions) {
        eprintln!("projection-bench: warning: debug build; measure with --release");
    }
    let params = CatchUpParams {
        events: args.events,
        accounts: args.accounts,
        batch: args.batch,
        append_batch: args.append_batch,
        append_tasks: args.append_tasks,
        seed: args.seed,
    };
    params.validate()?;
    let mut out = match &args.out {
        Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
        None => None,
    };
    let mut backends: Vec<harness::Backend> = args
        .backends
        .iter()
        .map(|b| match b {
            Backend::Mem => harness::Backend::Mem,
            Backend::Sqlite => harness::Backend::Sqlite,
        })
        .collect();
    backends.dedup();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for rep in 1..=args.rep {
        for &backend in &backends {
            let line = runtime.block_on(run_catch_up(backend, &params, rep))?;
            let line = serde_json::to_string(&line)?;
            println!("{line}");
            if let Some(out) = &mut out {
                writeln!(out, "{line}")?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
