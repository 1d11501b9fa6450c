//! Decode throughput of stored events: the current-version path (straight into the enum)
//! against the upcast paths (a typed step, a JSON step, a split), measured by the
//! `decode-bench` binary.
//!
//! Every path decodes payloads of the same size and content (an amount and a balance), so
//! the difference between them is what upcasting costs.

use std::hint::black_box;
use std::time::Instant;

use cqrs_core::prelude::*;
use cqrs_core::upcast::{StoredValue, Upcast};
use serde_json::{Value, json};

/// Version 1 of [`BenchEvent::Typed`]: the same numbers under older names.
#[derive(Debug, Deserialize)]
pub struct TypedV1 {
    amt: u64,
    bal: u64,
}

impl From<TypedV1> for BenchEvent {
    fn from(v1: TypedV1) -> Self {
        BenchEvent::Typed {
            amount: v1.amt,
            balance: v1.bal,
        }
    }
}

/// v1 → v2 of [`BenchEvent::Json`]: renames `amt` and `bal`.
fn json_v1(mut v: Value) -> Result<Value, &'static str> {
    let obj = v.as_object_mut().ok_or("not an object")?;
    let amount = obj.remove("amt").ok_or("no `amt`")?;
    let balance = obj.remove("bal").ok_or("no `bal`")?;
    obj.insert("amount".into(), amount);
    obj.insert("balance".into(), balance);
    Ok(v)
}

/// The removed `Pair` event stood for two `Typed` events.
fn pair(v: Value) -> Upcast {
    Upcast::Split(vec![
        StoredValue::new("Typed", 2, json!({"amount": v["amt"], "balance": v["bal"]})),
        StoredValue::new("Typed", 2, json!({"amount": 0, "balance": v["bal"]})),
    ])
}

/// The event type the benchmark decodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "Pair", upcast = pair)]
pub enum BenchEvent {
    /// Reaches version 2 through a typed step.
    #[event(version = 2)]
    #[upcast(1 -> 2, from = TypedV1)]
    Typed {
        /// An amount.
        amount: u64,
        /// A balance.
        balance: u64,
    },
    /// Reaches version 2 through a JSON step.
    #[event(version = 2)]
    #[upcast(1 -> 2, json = json_v1)]
    Json {
        /// An amount.
        amount: u64,
        /// A balance.
        balance: u64,
    },
}

/// A decode path the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodePath {
    /// An event at its current version: bytes straight into the enum.
    Current,
    /// Version 1 through a typed step (`From`), no JSON value in between.
    TypedUpcast,
    /// Version 1 through a JSON step (bytes → `Value` → step → enum).
    JsonUpcast,
    /// A removed type split into two current events by a JSON function.
    Split,
}

impl DecodePath {
    /// Every path, in report order.
    pub const ALL: [DecodePath; 4] = [
        DecodePath::Current,
        DecodePath::TypedUpcast,
        DecodePath::JsonUpcast,
        DecodePath::Split,
    ];

    /// The name used in the JSON field `path`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::TypedUpcast => "typed-upcast",
            Self::JsonUpcast => "json-upcast",
            Self::Split => "split",
        }
    }

    /// The stored type name, schema version and payload of stored event `i`.
    fn stored(self, i: u64) -> (&'static str, u32, Vec<u8>) {
        let (amount, balance) = (i % 1000, i * 7);
        let (ty, version, payload) = match self {
            Self::Current => (
                "Typed",
                2,
                format!(r#"{{"amount":{amount},"balance":{balance}}}"#),
            ),
            Self::TypedUpcast => ("Typed", 1, format!(r#"{{"amt":{amount},"bal":{balance}}}"#)),
            Self::JsonUpcast => ("Json", 1, format!(r#"{{"amt":{amount},"bal":{balance}}}"#)),
            Self::Split => ("Pair", 1, format!(r#"{{"amt":{amount},"bal":{balance}}}"#)),
        };
        (ty, version, payload.into_bytes())
    }
}

/// One measured path.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeRun {
    /// The path.
    pub path: DecodePath,
    /// Stored events decoded per round.
    pub events: u64,
    /// Rounds timed.
    pub rounds: u32,
    /// Stored events decoded per second, median over the rounds.
    pub events_per_s: f64,
    /// Current events produced per stored event (2 for a split).
    pub produced_per_event: u64,
}

/// Decodes `events` stored events of `path` `rounds` times (after one untimed round) and
/// returns the median throughput. Fails if a payload does not decode or decodes wrong.
pub fn run(path: DecodePath, events: u64, rounds: u32) -> Result<DecodeRun, String> {
    let stored: Vec<_> = (0..events).map(|i| path.stored(i)).collect();
    let mut produced = 0u64;
    let mut round = || -> Result<f64, String> {
        produced = 0;
        let mut checksum = 0u64;
        let start = Instant::now();
        for (ty, version, payload) in &stored {
            BenchEvent::decode_with(&JsonCodec, ty, *version, payload, &mut |e| {
                produced += 1;
                checksum += match black_box(e) {
                    BenchEvent::Typed { balance, .. } | BenchEvent::Json { balance, .. } => balance,
                };
            })
            .map_err(|e| format!("{}: {e}", path.name()))?;
        }
        let secs = start.elapsed().as_secs_f64();
        let per_event: u64 = if path == DecodePath::Split { 2 } else { 1 };
        let expected: u64 = (0..events).map(|i| i * 7 * per_event).sum();
        if checksum != expected || produced != events * per_event {
            return Err(format!(
                "{}: decoded {produced} events with balance sum {checksum}; expected {} and {expected}",
                path.name(),
                events * per_event
            ));
        }
        Ok(events as f64 / secs.max(1e-9))
    };
    round()?;
    let mut rates = (0..rounds.max(1))
        .map(|_| round())
        .collect::<Result<Vec<f64>, String>>()?;
    rates.sort_by(f64::total_cmp);
    Ok(DecodeRun {
        path,
        events,
        rounds: rounds.max(1),
        events_per_s: rates[rates.len() / 2],
        produced_per_event: produced / events.max(1),
    })
}

/// The JSON line of a run.
pub fn to_json(run: &DecodeRun) -> Value {
    json!({
        "framework": crate::harness::FRAMEWORK,
        "bench": "decode",
        "path": run.path.name(),
        "events": run.events,
        "rounds": run.rounds,
        "events_per_s": run.events_per_s.round(),
        "ns_per_event": (1e9 / run.events_per_s * 10.0).round() / 10.0,
        "produced_per_event": run.produced_per_event,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "notes": "DomainEvent::decode_with on payload bytes, JSON codec, one thread; \
                  the median of the rounds",
    })
}
