//! The demo on PostgreSQL, as a library call and as the `flight` binary: the same
//! outcome as on SQLite, in a schema of its own that is gone afterwards.
//!
//! Server from `CQRS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! skipped with a printed reason when the server is unreachable, failing instead when
//! `CI=true`. Each test probes the server with a store in a schema of its own, which it
//! drops.

use std::process::Command;

use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_testing::postgres::{fresh_schema, or_skip, test_url};
use flight::demo::{self, Backend};
use flight::{FlightError, FlightStatus};

/// A store in a fresh schema of its own, to ask the server questions with.
async fn probe() -> Option<PostgresEventStore> {
    let options = PostgresOptions::new(test_url())
        .schema(fresh_schema("flight_probe"))
        .pool_size(1);
    or_skip(options.connect().await)
}

async fn schema_exists(probe: &PostgresEventStore, schema: &str) -> bool {
    let client = probe.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) == 1
}

async fn drop_probe(probe: &PostgresEventStore) {
    probe.drop_schema().await.unwrap();
}

#[tokio::test]
async fn the_demo_runs_on_postgres_in_its_own_schema_and_drops_it() {
    let Some(probe) = probe().await else { return };
    let mut account = Vec::new();
    let outcome = demo::on_postgres(&test_url(), &mut account).await;
    let gone = match &outcome {
        Ok(o) => match &o.backend {
            Backend::Postgres { schema } => Some(!schema_exists(&probe, schema).await),
            _ => None,
        },
        Err(_) => None,
    };
    drop_probe(&probe).await;

    let outcome = outcome.unwrap();
    let Backend::Postgres { schema } = &outcome.backend else {
        panic!("not on PostgreSQL: {:?}", outcome.backend);
    };
    assert!(schema.starts_with("flight_demo_"), "{schema}");
    assert_eq!(gone, Some(true), "schema `{schema}` was left behind");

    assert_eq!(
        outcome.refused_diversion,
        FlightError::StarOfAnotherAirport {
            star: "SUGOL1A".into(),
            airport: "LFPG".into(),
            serves: "EHAM".into(),
        }
    );
    assert_eq!(
        outcome.invariant_refusal.name,
        "arrival_route_serves_destination"
    );
    assert_eq!(outcome.afr_position.at, demo::START + 50);
    assert_eq!(outcome.baw_late_reports, 400);
    assert_eq!(
        (outcome.snapshot_version, outcome.replayed_after_snapshot),
        (4_003, 1)
    );
    assert!(outcome.snapshot_matches_full_replay);
    let statuses: Vec<_> = outcome
        .board
        .iter()
        .map(|r| (r.callsign.as_str(), r.destination.as_str(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("AFR1234", "EGLL", FlightStatus::Airborne),
            ("BAW117", "LFPG", FlightStatus::Landed),
            ("KLM1001", "ENGM", FlightStatus::Filed),
        ]
    );
    let account = String::from_utf8(account).unwrap();
    assert!(
        account.starts_with(&format!("Air traffic on PostgreSQL, in schema `{schema}`.")),
        "{account}"
    );
}

#[tokio::test]
async fn the_binary_runs_on_postgres_when_database_url_says_so() {
    let Some(probe) = probe().await else { return };
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_flight"))
            .env("DATABASE_URL", test_url())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The schema the binary names in its first line must be gone.
    let schema = stdout.split('`').nth(1).map(str::to_owned);
    let left = match &schema {
        Some(schema) if schema.starts_with("flight_demo_") => {
            Some(schema_exists(&probe, schema).await)
        }
        _ => None,
    };
    drop_probe(&probe).await;

    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("Air traffic on PostgreSQL, in schema `flight_demo_"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  BAW117   EGLL  LFPG  LORNI4W  landed"),
        "{stdout}"
    );
    assert_eq!(
        left,
        Some(false),
        "the demo's schema was left behind:\n{stdout}"
    );
}
