//! The PostgreSQL adapter against the whole conformance suite, every case at its default
//! size, each case in a freshly created schema (dropped afterwards), with a hook that
//! damages stored rows.
//!
//! The server comes from `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable (refused, timed out,
//! unknown host) the tests print the reason and pass as skipped, unless `CI=true`, where
//! they fail; any other connect error (TLS, authentication, a failing migration) fails.

use cqrs_core::store::BoxError;
use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_testing::conformance::{self, BoxFuture, Config};
use cqrs_testing::postgres::{fresh_schema, or_skip, test_url};

/// Connects a store on a schema of its own, or `None` (skip, reason printed) when the
/// server is unreachable outside CI.
async fn fresh() -> Option<PostgresEventStore> {
    let options = PostgresOptions::new(test_url())
        .schema(fresh_schema("cqrs_conf"))
        .pool_size(24);
    or_skip(options.connect().await)
}

async fn drop_schema(store: &PostgresEventStore) {
    store.drop_schema().await.expect("the test schema drops");
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

cqrs_testing::conformance_case_names!([cases]);
