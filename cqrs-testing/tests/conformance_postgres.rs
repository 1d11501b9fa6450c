//! The PostgreSQL adapter against the whole conformance suite, every case at its default
//! size, each case in a freshly created schema (dropped afterwards), with a hook that
//! damages stored rows.
//!
//! The server comes from `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable (refused, timed out,
//! unknown host) the tests print the reason and pass as skipped, unless `CI=true`, where
//! they fail; any other connect error (TLS, authentication, a failing migration) fails.

use cqrs_core::StoreError;
use cqrs_core::store::BoxError;
use cqrs_core::store::postgres::{PostgresConnectError, PostgresEventStore, PostgresOptions};
use cqrs_testing::conformance::{self, BoxFuture, Config};

fn url() -> String {
    std::env::var("CQRS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Connects a store on a schema of its own, or `None` (skip, reason printed) when the
/// server is unreachable outside CI; panics on any other error, and on every error when
/// `CI=true`.
async fn fresh() -> Option<PostgresEventStore> {
    let schema = format!("cqrs_conf_{}", uuid::Uuid::now_v7().simple());
    let result = PostgresOptions::new(url())
        .schema(&schema)
        .pool_size(24)
        .connect()
        .await;
    match result {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {} failed and CI=true: {e}", url())
        }
        Err(StoreError::Backend(source))
            if source
                .downcast_ref::<PostgresConnectError>()
                .is_some_and(PostgresConnectError::is_unreachable) =>
        {
            eprintln!("skipped: {source}");
            None
        }
        Err(e) => panic!("connecting to PostgreSQL at {} failed: {e}", url()),
    }
}

async fn drop_schema(store: &PostgresEventStore) {
    let client = store
        .pool()
        .get()
        .await
        .expect("a connection to drop the schema");
    client
        .batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", store.schema()))
        .await
        .expect("the test schema drops");
}

/// Overwrites the metadata of one stored event with JSON that is not a metadata object.
fn corrupt<'a>(
    store: &'a PostgresEventStore,
    stream_id: &'a str,
    version: u64,
) -> BoxFuture<'a, Result<(), BoxError>> {
    Box::pin(async move {
        let client = store.pool().get().await?;
        let changed = client
            .execute(
                &format!(
                    "UPDATE \"{}\".events SET metadata = '\"not an object\"'::jsonb \
                     WHERE tenant = $1 AND stream_id = $2 AND version = $3",
                    store.schema()
                ),
                &[&store.tenant(), &stream_id, &(version as i64)],
            )
            .await?;
        if changed != 1 {
            return Err(format!("no event {stream_id} v{version} to damage").into());
        }
        Ok(())
    })
}

macro_rules! cases {
    ($($case:ident)*) => {$(
        #[test]
        fn $case() {
            conformance::__block_on(async {
                let Some(store) = fresh().await else { return Ok(()) };
                let config = Config::default().corrupt(corrupt);
                let result = conformance::$case(store.clone(), &config).await;
                drop_schema(&store).await;
                result
            });
        }
    )*};
}

cases!(
    expected_versions
    invalid_batches
    atomic_batches
    idempotent_appends
    conflicting_resends
    partial_resends
    stream_reads
    global_log
    model_based
    concurrent_writers
    global_log_under_writes
    undecodable_events
    corrupt_rows
    snapshots
    delete_stream
    truncate_stream
    expire
);
