//! The demo, on SQLite: as a library call (what it saw, and that it cleans up) and as
//! the `flight` binary (`cargo run -p flight` with no database configured).

use std::process::Command;

use flight::demo::{self, Backend, DemoOutcome};
use flight::{FlightError, FlightStatus};

/// What every run of the demo must see, whatever the store.
fn check_outcome(outcome: &DemoOutcome) {
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
    assert_eq!(outcome.afr_late_reports, 1);
    assert!(
        outcome.invalid_report.contains("RadarTrack"),
        "{}",
        outcome.invalid_report
    );
    // Filed, departed, diverted, 4,000 reports, landed.
    assert_eq!(
        outcome.baw_version,
        3 + demo::LONG_STREAM_REPORTS as u64 + 1
    );
    assert_eq!(outcome.baw_late_reports, 400);
    assert_eq!(outcome.snapshot_version, 4_003);
    assert_eq!(outcome.replayed_after_snapshot, 1);
    assert!(outcome.snapshot_matches_full_replay);

    let rows: Vec<_> = outcome
        .board
        .iter()
        .map(|r| {
            (
                r.callsign.as_str(),
                r.origin.as_str(),
                r.destination.as_str(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("AFR1234", "LFPG", "EGLL", FlightStatus::Airborne),
            ("BAW117", "EGLL", "LFPG", FlightStatus::Landed),
            ("KLM1001", "EHAM", "ENGM", FlightStatus::Filed),
        ]
    );
    assert_eq!(outcome.board[1].diverted_from.as_deref(), Some("EHAM"));
    assert_eq!(
        outcome.board[1].last_position.map(|p| p.at),
        Some(demo::START + 60 + demo::LONG_STREAM_REPORTS as u64 - 1)
    );
    assert_eq!(outcome.board[0].last_position, Some(outcome.afr_position));
}

#[tokio::test]
async fn the_demo_runs_on_a_temporary_sqlite_file_and_removes_it() {
    let mut account = Vec::new();
    let outcome = demo::on_temp_sqlite(&mut account).await.unwrap();
    check_outcome(&outcome);
    let Backend::Sqlite { path } = &outcome.backend else {
        panic!("not on SQLite: {:?}", outcome.backend);
    };
    assert!(!path.exists(), "{} was left behind", path.display());
    assert!(!path.parent().unwrap().exists());

    let account = String::from_utf8(account).unwrap();
    assert!(account.starts_with("Air traffic on the SQLite event store in "));
    assert!(
        account.contains("via SUGOL1A: refused: STAR SUGOL1A leads to EHAM, not to LFPG"),
        "{account}"
    );
    assert!(account.contains("via LORNI4W: accepted"), "{account}");
}

#[tokio::test]
async fn the_demo_runs_on_the_in_memory_store_too() {
    let mut account = Vec::new();
    let outcome = demo::run(
        cqrs_core::InMemoryEventStore::new(),
        Backend::InMemory,
        &mut account,
    )
    .await
    .unwrap();
    check_outcome(&outcome);
}

#[test]
fn cargo_run_prints_the_account_on_sqlite() {
    let out = Command::new(env!("CARGO_BIN_EXE_flight"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "Air traffic on the SQLite event store in ",
        "  BAW117   EGLL -> EHAM, arrival route ARTIP1A: filed",
        "  via SUGOL1A: refused: STAR SUGOL1A leads to EHAM, not to LFPG",
        "    invariant `arrival_route_serves_destination`; nothing written, BAW117 stays at version 3",
        "  12:00:10Z 49.80N 1.60E FL320 -> older than the one kept: stored, ignored",
        "invalid external event `RadarTrack`",
        "  4,000 reports in 20 batches, 400 of them late: the stream is at version 4,003",
        "  snapshots every 1,000 events; the newest reflects version 4,003",
        "replaying only the 1 event after it",
        "the same state as replaying all 4,004",
        "  AFR1234  LFPG  EGLL  OCK1A    airborne  12:00:50Z 50.30N 0.95E FL350",
        "  BAW117   EGLL  LFPG  LORNI4W  landed    13:07:39Z 49.01N 2.55E FL000 (diverted from EHAM)",
        "  KLM1001  EHAM  ENGM  ADOPI3M  filed     -",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn a_wrong_database_url_argument_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_flight"))
        .args(["--database-url", "mysql://localhost/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a postgres:// URL"), "{stderr}");
    assert!(out.stdout.is_empty());
}
