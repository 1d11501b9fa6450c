//! The raw limit of the `postgres` backend (issue 6, item 6): the single-event inserts of
//! W1 done in plain SQL with the adapter's client (`tokio-postgres`), one transaction per
//! insert (autocommit, one round trip each), on the same server, so that the framework's
//! overhead shows as the ratio W1 / raw.
//!
//! The table has the adapter's `events` columns, keys and indexes (primary key
//! `(tenant, stream_id, version)`, unique `(tenant, event_id)`, index
//! `(tenant, position)`), in a fresh schema dropped afterwards. The statement is
//! prepared once; each insert binds the stream, version, event type and JSON payload; the
//! position comes from a sequence and the event id from `gen_random_uuid()` in the same
//! statement. It does not do what the adapter's `append_events` also does (expected
//! version check against `streams`, the stream row update, the duplicate-event-id probe,
//! the position claim under an advisory lock, the `xid8` column): that is the overhead the
//! ratio shows.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_postgres::NoTls;

use crate::harness::{
    BenchError, FRAMEWORK, cores, fresh_schema_name, insert_percentiles, profile, round1,
};

/// What the raw baseline measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRun {
    /// Inserts done.
    pub inserts: u64,
    /// First insert start to last insert end.
    pub wall: Duration,
    /// Every insert's latency in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// The server's version.
    pub server_version: String,
}

impl RawRun {
    /// Inserts per second over the wall time.
    pub fn inserts_per_s(&self) -> f64 {
        self.inserts as f64 / self.wall.as_secs_f64()
    }
}

fn sql_err(what: &'static str) -> impl Fn(tokio_postgres::Error) -> BenchError {
    move |e| BenchError::Setup(format!("postgres raw baseline: {what}: {e}"))
}

/// Does `inserts` single-event inserts, round-robin over `accounts` streams (version
/// `k + 1` in round `k`, like W1's plan), one autocommit transaction each.
pub async fn raw_single_inserts(
    url: &str,
    accounts: usize,
    inserts: u64,
) -> Result<RawRun, BenchError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(sql_err("connecting"))?;
    let conn = tokio::spawn(async move {
        let _ = connection.await;
    });
    let schema = fresh_schema_name();
    let q = format!("\"{schema}\"");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {q};
             CREATE SEQUENCE {q}.event_positions AS bigint START 1;
             CREATE TABLE {q}.events (
                 tenant text NOT NULL, position bigint NOT NULL, stream_id text NOT NULL,
                 version bigint NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,
                 schema_version integer NOT NULL, metadata jsonb NOT NULL,
                 payload bytea NOT NULL, recorded_at timestamptz NOT NULL,
                 PRIMARY KEY (tenant, stream_id, version), UNIQUE (tenant, event_id));
             CREATE INDEX events_by_position ON {q}.events (tenant, position);"
        ))
        .await
        .map_err(sql_err("creating the schema"))?;
    let result: Result<RawRun, BenchError> = async {
        client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(sql_err("CHECKPOINT"))?;
        let server_version: String = client
            .query_one("SHOW server_version", &[])
            .await
            .map_err(sql_err("SHOW"))?
            .get(0);
        let insert = client
            .prepare(&format!(
                "INSERT INTO {q}.events (tenant, position, stream_id, version, event_id, \
                 event_type, schema_version, metadata, payload, recorded_at) VALUES \
                 ('', nextval('{schema}.event_positions'), $1, $2, gen_random_uuid(), $3, 1, \
                 '{{}}'::jsonb, $4, now())"
            ))
            .await
            .map_err(sql_err("preparing"))?;
        let accounts = accounts.max(1) as u64;
        let rows: Vec<(String, i64, Vec<u8>)> = (0..inserts)
            .map(|i| {
                let (account, round) = (i % accounts, i / accounts);
                let payload = serde_json::to_vec(
                    &json!({"Deposited": {"amount": 1 + i % 1000, "balance": 1000 + i}}),
                )
                .unwrap_or_default();
                (
                    format!("bank_account-acct-{account:06}"),
                    round as i64 + 1,
                    payload,
                )
            })
            .collect();
        let mut latencies_ns = Vec::with_capacity(rows.len());
        let mut first = None;
        let mut last = None;
        for (stream, version, payload) in &rows {
            let start = Instant::now();
            client
                .execute(&insert, &[stream, version, &"Deposited", payload])
                .await
                .map_err(sql_err("inserting"))?;
            let end = Instant::now();
            first.get_or_insert(start);
            last = Some(end);
            latencies_ns.push((end - start).as_nanos() as u64);
        }
        latencies_ns.sort_unstable();
        Ok(RawRun {
            inserts,
            wall: match (first, last) {
                (Some(s), Some(e)) => e - s,
                _ => Duration::ZERO,
            },
            latencies_ns,
            server_version,
        })
    }
    .await;
    let dropped = client
        .batch_execute(&format!("DROP SCHEMA {q} CASCADE"))
        .await
        .map_err(sql_err("dropping the schema"));
    drop(client);
    let _ = conn.await;
    let run = result?;
    dropped?;
    Ok(run)
}

/// The JSON line of a raw baseline run (`workload` = `raw-insert`).
pub fn raw_json(url: &str, accounts: usize, rep: u32, run: &RawRun) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("framework".into(), FRAMEWORK.into());
    m.insert(
        "versions".into(),
        format!(
            "plain SQL, tokio-postgres 0.7, PostgreSQL {}",
            run.server_version
        )
        .into(),
    );
    m.insert("backend".into(), "postgres".into());
    m.insert("workload".into(), "raw-insert".into());
    m.insert("profile".into(), profile().into());
    m.insert("rep".into(), rep.into());
    m.insert("cores".into(), cores().into());
    m.insert(
        "params".into(),
        json!({ "inserts": run.inserts, "accounts": accounts }),
    );
    m.insert("inserts_per_s".into(), round1(run.inserts_per_s()).into());
    insert_percentiles(&mut m, &run.latencies_ns);
    m.insert("wall_s".into(), run.wall.as_secs_f64().into());
    m.insert(
        "notes".into(),
        format!(
            "raw limit of W1: single-event INSERTs in plain SQL through one tokio-postgres \
             connection (prepared statement, autocommit: one transaction and one round trip \
             per insert), into a table with the adapter's events columns, keys and indexes \
             in a fresh schema (dropped afterwards), CHECKPOINT before; round-robin over \
             {accounts} streams; no version check, no stream row, no read model; url {url}"
        )
        .into(),
    );
    Value::Object(m)
}
