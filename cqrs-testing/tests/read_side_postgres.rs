//! The PostgreSQL store passes the read-side conformance suite, each case in a schema of
//! its own (dropped afterwards) on the server of `CQRS_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Skipped, with the reason printed, when no
//! server answers, unless `CI=true`.

use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_testing::postgres::{fresh_schema, or_skip, test_url};

/// Drops the case's schema when dropped (on a runtime of its own: the test's runtime
/// is shutting down by then).
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn open() -> Option<(PostgresEventStore, DropSchema)> {
    let (url, schema) = (test_url(), fresh_schema("read_side"));
    let options = PostgresOptions::new(&url)
        .schema(&schema)
        .pool_size(8)
        .read_wait(std::time::Duration::from_millis(200));
    let store = or_skip(options.connect().await)?;
    Some((store, DropSchema { url, schema }))
}

cqrs_testing::read_side_conformance!(postgres, open);
