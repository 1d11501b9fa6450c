//! What the PostgreSQL test files of cqrs-core share: the server, fresh schemas, and the
//! skip rule of every PostgreSQL suite. (`cqrs_testing::postgres` has the same for other
//! crates; a dev-dependency on cqrs-testing would give these tests a second cqrs-core.)
//!
//! The server comes from `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable (refused, timed
//! out, unknown host) a test prints why and returns early, unless `CI=true`, where it
//! fails; any other connect error (TLS, authentication, a failing migration) fails.
#![allow(dead_code)] // each test file uses a part

use std::future::Future;

use cqrs_core::StoreError;
use cqrs_core::store::postgres::{PostgresConnectError, PostgresEventStore, PostgresOptions};

/// The test server's URL.
pub(crate) fn url() -> String {
    std::env::var("CQRS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other run uses: `<prefix>_<uuid v7>`.
pub(crate) fn schema_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The connect error, if the server did not answer at all.
pub(crate) fn unreachable(e: &StoreError) -> Option<&PostgresConnectError> {
    match e {
        StoreError::Backend(source) => source
            .downcast_ref::<PostgresConnectError>()
            .filter(|c| c.is_unreachable()),
        _ => None,
    }
}

/// `Some(store)`, or `None` (skip, reason printed) when the server is unreachable outside
/// CI; panics on any other error, and on every error when `CI=true`.
pub(crate) fn store_or_skip(
    result: Result<PostgresEventStore, StoreError>,
) -> Option<PostgresEventStore> {
    match result {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {} failed and CI=true: {e}", url())
        }
        Err(e) => match unreachable(&e) {
            Some(reason) => {
                eprintln!("skipped: {reason}");
                None
            }
            None => panic!("connecting to PostgreSQL at {} failed: {e}", url()),
        },
    }
}

/// Connects with `options`, under the skip rule.
pub(crate) async fn connect(options: PostgresOptions) -> Option<PostgresEventStore> {
    store_or_skip(options.connect().await)
}

/// Runs `test` on the store `options` connect (in a schema of the test's own), and drops
/// the schema even if the test fails.
pub(crate) async fn with_store<F, Fut>(options: PostgresOptions, test: F)
where
    F: FnOnce(PostgresEventStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(store) = connect(options).await else {
        return;
    };
    let outcome = tokio::spawn(test(store.clone())).await;
    store.drop_schema().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The server of `url()` as a key=value string for `user` (and `password`).
pub(crate) fn kv_url(user: &str, password: Option<&str>) -> String {
    let config: tokio_postgres::Config = url().parse().unwrap();
    let mut parts = Vec::new();
    if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
        parts.push(format!("host={host}"));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={db}"));
    }
    parts.push(format!("user={user}"));
    if let Some(pw) = password {
        parts.push(format!("password={pw}"));
    }
    parts.join(" ")
}
