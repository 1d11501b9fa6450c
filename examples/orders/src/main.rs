//! The order system's demo: `cargo run -p orders [-- --database-url postgres://…]`.
//!
//! Runs [`orders::run_demo`] and prints its account. The store is a fresh SQLite file in
//! a temporary directory (removed at the end), or, when `DATABASE_URL` (or
//! `--database-url`) is a `postgres://` URL, a fresh schema on that server (dropped at
//! the end), so that every run starts from an empty store.

use std::process::ExitCode;

use cqrs_core::store::sqlite::SqliteEventStore;
use orders::ShopError;

const USAGE: &str = "usage: orders [--database-url postgres://USER@HOST:PORT/DB]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orders: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), ShopError> {
    let mut args = std::env::args().skip(1);
    let url = match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => match std::env::var("DATABASE_URL") {
            Ok(url) if is_postgres(&url) => Some(url),
            Ok(_) => {
                eprintln!("orders: DATABASE_URL is not a postgres:// URL; using SQLite");
                None
            }
            Err(_) => None,
        },
        (Some("--database-url"), Some(url), None) if is_postgres(&url) => Some(url),
        _ => return Err(USAGE.into()),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    match url {
        Some(url) => runtime.block_on(on_postgres(&url)),
        None => on_sqlite(&runtime),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn on_sqlite(runtime: &tokio::runtime::Runtime) -> Result<(), ShopError> {
    let dir = std::env::temp_dir().join(orders::postgres::fresh_schema("orders-demo"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("orders.db");
    let result = SqliteEventStore::open(&path)
        .map_err(ShopError::from)
        .and_then(|store| {
            let backend = format!("SQLite, in {}", path.display());
            runtime.block_on(orders::run_demo(store, &backend, &mut std::io::stdout()))
        });
    std::fs::remove_dir_all(&dir)?;
    result.map(drop)
}

async fn on_postgres(url: &str) -> Result<(), ShopError> {
    let schema = orders::postgres::fresh_schema("orders_demo");
    let store = orders::postgres::connect(url, &schema).await?;
    let backend = format!("PostgreSQL, in schema `{schema}` (dropped at the end)");
    let result = orders::run_demo(store.clone(), &backend, &mut std::io::stdout()).await;
    orders::postgres::drop_schema(&store).await?;
    result.map(drop)
}
