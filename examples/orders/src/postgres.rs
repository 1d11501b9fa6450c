//! Running the shop on PostgreSQL: a schema of its own per run, dropped at the end, so
//! that a rerun starts clean and never touches another application's tables.

use std::time::SystemTime;

use cqrs_core::StoreError;
use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};

use crate::shop::ShopError;

/// A fresh schema name for one run: `orders_demo_<pid>_<nanoseconds>`.
///
/// ```
/// let name = orders::postgres::fresh_schema("orders_demo");
/// assert!(name.starts_with("orders_demo_"));
/// assert!(name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
/// ```
pub fn fresh_schema(prefix: &str) -> String {
    let nanos = SystemTime::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Connects to the server at `url` and creates the store's tables in `schema`.
pub async fn connect(url: &str, schema: &str) -> Result<PostgresEventStore, StoreError> {
    PostgresOptions::new(url).schema(schema).connect().await
}

/// Drops the store's schema and everything in it.
pub async fn drop_schema(store: &PostgresEventStore) -> Result<(), ShopError> {
    store.drop_schema().await?;
    Ok(())
}
