//! The demo on PostgreSQL, each run in a schema of its own that is dropped afterwards.
//!
//! Server from `CQRS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! skipped with a printed reason when the server is unreachable, failing instead when
//! `CI=true`.

mod common;

use std::process::Command;

use cqrs_core::store::postgres::PostgresEventStore;
use cqrs_testing::postgres::{or_skip, test_url};

async fn open() -> Option<PostgresEventStore> {
    let schema = orders::postgres::fresh_schema("orders_test");
    or_skip(orders::postgres::connect(&test_url(), &schema).await)
}

async fn schema_exists(store: &PostgresEventStore, schema: &str) -> bool {
    let client = store.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_postgresql_tells_what_happened_and_ends_as_expected() {
    let Some(store) = open().await else {
        return;
    };
    let demo = tokio::spawn({
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            let report = orders::run_demo(store, "PostgreSQL", &mut out).await;
            (report.map_err(|e| e.to_string()), out)
        }
    })
    .await;
    let schema = store.schema().to_owned();
    orders::postgres::drop_schema(&store).await.unwrap();
    assert!(!schema_exists(&store, &schema).await);
    let (report, out) = demo.unwrap();
    let out = String::from_utf8(out).unwrap();
    common::check_demo(&report.unwrap(), &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_on_postgresql_and_drops_its_schema() {
    // A store of our own: proves the server is there, and looks for the demo's schema.
    let Some(probe) = open().await else {
        return;
    };
    let run = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_orders"))
            .arg("--database-url")
            .arg(test_url())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let out = String::from_utf8(run.stdout).unwrap();
    let schema = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("An online shop on PostgreSQL, in schema `"))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let gone = match &schema {
        Some(schema) => !schema_exists(&probe, schema).await,
        None => false,
    };
    orders::postgres::drop_schema(&probe).await.unwrap();
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let schema = schema.unwrap_or_else(|| panic!("no schema named in\n{out}"));
    assert!(schema.starts_with("orders_demo_"), "{schema}");
    assert!(gone, "schema {schema} is still there");
    assert!(out.contains("Order summaries"), "{out}");
}
