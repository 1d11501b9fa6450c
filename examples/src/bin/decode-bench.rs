//! Decode throughput of stored events: current version against upcast paths.
//!
//! ```text
//! cargo run --release -p cqrs-examples --bin decode-bench -- --events 200000 --rounds 5
//! ```
//!
//! Prints one JSON line per path (`current`, `typed-upcast`, `json-upcast`, `split`).

use std::process::ExitCode;

use clap::Parser;
use cqrs_examples::decode_bench::{DecodePath, run, to_json};

/// Measures how fast stored events decode, at their current version and through upcasts.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Stored events decoded per round.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Timed rounds per path (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("decode-bench: warning: debug build; measure with --release");
    }
    for path in DecodePath::ALL {
        match run(path, args.events, args.rounds) {
            Ok(r) => println!("{}", to_json(&r)),
            Err(e) => {
                eprintln!("decode-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
