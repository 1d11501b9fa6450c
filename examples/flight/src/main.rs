//! The flight demo: `cargo run -p flight [-- --database-url postgres://...]`.
//!
//! Prints a short account of an afternoon of air traffic (see [`flight::demo`]). By
//! default the events go to a fresh SQLite file in a temporary directory, removed at the
//! end: nothing to set up. With a `postgres://` URL, from `--database-url` or the
//! `DATABASE_URL` environment variable, they go to PostgreSQL, in a schema of the run's
//! own that is dropped at the end.

use std::process::ExitCode;

/// Where to run, from the command line and the environment.
enum Target {
    Sqlite,
    Postgres(String),
    Help,
}

const USAGE: &str = "usage: flight [--database-url postgres://USER@HOST:PORT/DB]\n\
    Without a URL (and without DATABASE_URL=postgres://...), runs on a temporary SQLite file.";

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn target() -> Result<Target, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, ..) => {}
        (Some("--database-url"), Some(url), None) if is_postgres(&url) => {
            return Ok(Target::Postgres(url));
        }
        (Some("--database-url"), Some(url), None) => {
            return Err(format!("`{url}` is not a postgres:// URL\n{USAGE}"));
        }
        (Some("-h" | "--help"), None, None) => return Ok(Target::Help),
        _ => return Err(USAGE.to_owned()),
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if is_postgres(&url) => Ok(Target::Postgres(url)),
        Ok(_) => {
            eprintln!("DATABASE_URL is not a postgres:// URL: ignored, running on SQLite");
            Ok(Target::Sqlite)
        }
        Err(_) => Ok(Target::Sqlite),
    }
}

fn main() -> ExitCode {
    let target = match target() {
        Ok(target) => target,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let postgres_url = match target {
        Target::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Target::Sqlite => None,
        Target::Postgres(url) => Some(url),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flight: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    let result = runtime.block_on(async {
        match &postgres_url {
            None => flight::demo::on_temp_sqlite(&mut out).await,
            Some(url) => flight::demo::on_postgres(url, &mut out).await,
        }
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flight: {e}");
            ExitCode::FAILURE
        }
    }
}
