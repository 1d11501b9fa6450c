//! Tests against a real PostgreSQL server (feature `postgres`): where the server is, a
//! schema of the test's own, and the skip rule every PostgreSQL suite of this workspace
//! follows.
//!
//! The server comes from `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable (refused, timed
//! out, unknown host) a test prints why and returns early, as skipped, unless `CI=true`,
//! where it fails: in CI these suites never skip. Any other connect error (TLS,
//! authentication, a failing migration) fails everywhere.
//!
//! ```no_run
//! use cqrs_core::store::postgres::PostgresOptions;
//! use cqrs_testing::postgres::{fresh_schema, or_skip, test_url};
//!
//! # async fn run() {
//! let options = PostgresOptions::new(test_url()).schema(fresh_schema("my_test"));
//! let Some(store) = or_skip(options.connect().await) else { return };
//! // ... the test ...
//! store.drop_schema().await.unwrap();
//! # }
//! ```

use cqrs_core::StoreError;
use cqrs_core::store::postgres::{PostgresConnectError, PostgresEventStore};

/// The test server's URL: `CQRS_TEST_PG_URL`, or `postgres://postgres@127.0.0.1:5432/test`.
pub fn test_url() -> String {
    std::env::var("CQRS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test run uses: `<prefix>_<uuid v7>` (a valid identifier when
/// `prefix` is one of at most 30 characters).
pub fn fresh_schema(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The connected store, or `None` (the reason printed) when the server is unreachable
/// and `CI` is not `true`.
///
/// # Panics
/// On every other connect error, and on every error when `CI=true`.
pub fn or_skip(connected: Result<PostgresEventStore, StoreError>) -> Option<PostgresEventStore> {
    match connected {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {} failed and CI=true: {e}", test_url())
        }
        Err(StoreError::Backend(source))
            if source
                .downcast_ref::<PostgresConnectError>()
                .is_some_and(PostgresConnectError::is_unreachable) =>
        {
            eprintln!("skipped: {source}");
            None
        }
        Err(e) => panic!("connecting to PostgreSQL at {} failed: {e}", test_url()),
    }
}
