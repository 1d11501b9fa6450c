//! PostgreSQL adapter specifics: the gap-free global log under out-of-order commits, the
//! refusal of a claim in a transaction that already holds an xid, the health check,
//! tenants, schema names and versions.
//!
//! Server from `CQRS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! skipped with a printed reason when the server is unreachable (refused, timed out,
//! unknown host), failing instead when `CI=true`; any other connect error (TLS,
//! authentication, a migration that fails) fails the test.
#![cfg(feature = "postgres")]

/// Only the PostgreSQL part of `tests/common` (`tests/common/postgres.rs`).
mod common {
    pub(crate) mod postgres;
}

use common::postgres::{kv_url, schema_name, store_or_skip, unreachable, url};

use std::time::Duration;

use cqrs_core::store::postgres::{
    PostgresConnectError, PostgresEventStore, PostgresOptions, TlsMode,
};
use cqrs_core::store::{EventStore, ExpectedVersion};
use cqrs_core::{Metadata, NewEvent, StoreError};

async fn open(schema: &str, tenant: &str) -> Option<PostgresEventStore> {
    store_or_skip(
        PostgresOptions::new(url())
            .schema(schema)
            .tenant(tenant)
            .read_wait(Duration::from_millis(100))
            .connect()
            .await,
    )
}

/// `url()` with one more connection parameter, in whichever form it is written.
fn url_with(param: &str) -> String {
    let base = url();
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{param}")
    } else {
        format!("{base} {param}")
    }
}

async fn drop_schema(store: &PostgresEventStore) {
    store.drop_schema().await.unwrap();
}

fn event(n: u32) -> NewEvent {
    NewEvent::new(
        "Ticked",
        1,
        format!("{{\"n\":{n}}}").into_bytes(),
        Metadata::default(),
    )
}

#[tokio::test]
async fn invalid_schema_names_are_refused_before_connecting() {
    for bad in ["", "Caps", "1abc", "a-b", "a\"b", &"x".repeat(64)] {
        let err = PostgresOptions::new("postgres://nowhere.invalid/x")
            .schema(bad)
            .connect()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid schema name"),
            "{bad}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_later_commits_back_and_nothing_is_skipped() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    let start = store.head_position().await.unwrap();

    // A writer claims its position (xid and position together), then stalls before
    // committing.
    let mut slow = store.pool().get().await.unwrap();
    let tx = slow.transaction().await.unwrap();
    let claimed: Vec<i64> = tx
        .query_one(&format!("SELECT \"{schema}\".claim_positions(1)"), &[])
        .await
        .unwrap()
        .get(0);
    let early = claimed[0] as u64;

    // A later writer commits a higher position meanwhile.
    let out = store
        .append("s-fast", ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert!(out.positions[0] > early);

    // The reader must not hand it out yet: it would skip `early` for ever.
    let page = store.read_all(start + 1, 100).await.unwrap();
    assert!(
        page.is_empty(),
        "handed out {page:?} while position {early} is in flight"
    );

    // The health check names the backend holding the horizon back.
    let pid: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let health = store.health().await.unwrap();
    assert!(health.oldest_transaction.is_some());
    let _ = pid; // Other backends of the cluster may be older; the field names one of them.

    // The slow writer commits its event at the claimed position.
    tx.execute(
        &format!(
            "INSERT INTO \"{schema}\".events (tenant, position, stream_id, version, event_id, \
             event_type, schema_version, metadata, payload, recorded_at) \
             VALUES ('', $1, 's-slow', 1, $2, 'Ticked', 1, '{{}}', '\\x00', now())"
        ),
        &[&(early as i64), &uuid::Uuid::now_v7()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    drop(slow);

    let page = store.read_all(start + 1, 100).await.unwrap();
    let positions: Vec<u64> = page.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![early, out.positions[0]]);
    drop_schema(&store).await;
}

#[tokio::test]
async fn a_claim_in_a_transaction_that_already_holds_an_xid_is_refused() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    {
        let mut client = store.pool().get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.query_one("SELECT pg_current_xact_id()", &[])
            .await
            .unwrap();
        let err = tx
            .query_one(&format!("SELECT \"{schema}\".claim_positions(1)"), &[])
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("CQ001"), "{err}");
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_read_or_overwrite_each_other() {
    let schema = schema_name("cqrs_test");
    let Some(a) = open(&schema, "a").await else {
        return;
    };
    let b = open(&schema, "b").await.unwrap();
    let ea = event(1);
    a.append("s", ExpectedVersion::NoStream, vec![ea.clone()])
        .await
        .unwrap();
    // Same stream id in the other tenant: its own stream, version 1 again.
    let out = b
        .append("s", ExpectedVersion::NoStream, vec![event(2)])
        .await
        .unwrap();
    assert_eq!(out.stream_version, 1);
    assert_eq!(b.read_stream("s", 1).await.unwrap().len(), 1);
    assert!(
        b.read_all(0, 100)
            .await
            .unwrap()
            .iter()
            .all(|e| e.event_id != ea.event_id)
    );
    b.delete_stream("s", ExpectedVersion::Any).await.unwrap();
    assert_eq!(a.stream_version("s").await.unwrap(), Some(1));
    assert!(matches!(
        b.stream_version("s").await,
        Err(StoreError::StreamDeleted { .. })
    ));
    drop_schema(&a).await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    {
        let client = store.pool().get().await.unwrap();
        client
            .batch_execute(&format!(
                "INSERT INTO \"{schema}\".cqrs_schema (version, description) VALUES (99, 'future')"
            ))
            .await
            .unwrap();
    }
    let err = PostgresOptions::new(url())
        .schema(&schema)
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    // Reconnecting at the current version is a no-op migration.
    drop_schema(&store).await;
    let again = open(&schema, "").await.unwrap();
    let again2 = open(&schema, "").await.unwrap();
    assert_eq!(again2.head_position().await.unwrap(), 0);
    drop_schema(&again).await;
}

#[tokio::test]
async fn an_unreachable_server_is_told_apart_from_other_failures() {
    for url in [
        "postgres://postgres@127.0.0.1:1/test?connect_timeout=5",
        "postgres://postgres@nowhere.invalid/test?connect_timeout=5",
    ] {
        let err = PostgresOptions::new(url)
            .schema("cqrs_unused")
            .connect()
            .await
            .unwrap_err();
        assert!(unreachable(&err).is_some(), "{url}: {err:?}");
    }
    // A server that answers but refuses the session is a failure, not a skip.
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    let role = format!("cqrs_nobody_{}", uuid::Uuid::now_v7().simple());
    let err = PostgresOptions::new(kv_url(&role, None))
        .schema(&schema)
        .connect()
        .await
        .unwrap_err();
    assert!(unreachable(&err).is_none(), "{err}");
    assert!(
        matches!(&err, StoreError::Backend(b)
            if matches!(b.downcast_ref::<PostgresConnectError>(),
                        Some(PostgresConnectError::Refused { .. }))),
        "{err:?}"
    );
    drop_schema(&store).await;
}

#[tokio::test]
async fn sslmode_disable_connects_and_require_fails_with_a_tls_error_without_server_tls() {
    let schema = schema_name("cqrs_test");
    let Some(store) = store_or_skip(
        PostgresOptions::new(url_with("sslmode=disable"))
            .schema(&schema)
            .connect()
            .await,
    ) else {
        return;
    };
    let ssl_on: String = store
        .pool()
        .get()
        .await
        .unwrap()
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    for (mode, param) in [
        (TlsMode::Require, "sslmode=require"),
        (TlsMode::VerifyFull, "sslmode=verify-full"),
    ] {
        let result = PostgresOptions::new(url_with(param))
            .schema(&schema)
            .connect()
            .await;
        if ssl_on == "on" {
            // A server with TLS: `require` connects (no verification); `verify-full`
            // depends on its certificate, so only `require` is asserted.
            if mode == TlsMode::Require {
                result.unwrap();
            }
            continue;
        }
        let err = result.unwrap_err();
        let StoreError::Backend(source) = &err else {
            panic!("{param}: {err:?}");
        };
        match source.downcast_ref::<PostgresConnectError>() {
            Some(PostgresConnectError::Tls { mode: m, .. }) => assert_eq!(*m, mode),
            other => panic!("{param}: expected a TLS error, got {other:?}"),
        }
        assert!(err.to_string().contains("TLS"), "{err}");
    }
    let err = PostgresOptions::new(url_with("sslmode=verify-ca"))
        .schema(&schema)
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sslmode"), "{err}");
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_role_can_append_and_read_but_never_update_or_delete_events() {
    let schema = schema_name("cqrs_test");
    let Some(owner) = open(&schema, "").await else {
        return;
    };
    let role = format!("cqrs_writer_{}", uuid::Uuid::now_v7().simple());
    let password = uuid::Uuid::now_v7().simple().to_string();
    owner
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"
        ))
        .await
        .unwrap();
    // The checks run in a task so that the role and schema are dropped even when one
    // fails (roles are cluster-wide and would otherwise pile up).
    let checks = tokio::spawn(writer_role_checks(
        owner.clone(),
        schema.clone(),
        role.clone(),
        password,
    ))
    .await;
    drop_schema(&owner).await;
    owner
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
        .await
        .unwrap();
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn writer_role_checks(
    owner: PostgresEventStore,
    schema: String,
    role: String,
    password: String,
) {
    owner.grant_writer(&role).await.unwrap();
    let writer = PostgresOptions::new(kv_url(&role, Some(&password)))
        .schema(&schema)
        .read_wait(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let out = writer
        .append("w", ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    assert_eq!(out.stream_version, 2);
    writer
        .append("w", ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    assert_eq!(writer.read_stream("w", 1).await.unwrap().len(), 3);
    assert_eq!(writer.read_all(0, 100).await.unwrap().len(), 3);
    assert_eq!(writer.head_position().await.unwrap(), out.positions[0] + 2);
    let snapshot = cqrs_core::snapshot::Snapshot {
        stream_id: "w".into(),
        stream_version: 3,
        snapshot_version: 1,
        codec: "json".into(),
        taken_at: std::time::SystemTime::now(),
        payload: bytes::Bytes::from_static(b"{}"),
    };
    writer.save_snapshot(&snapshot).await.unwrap();
    assert!(writer.load_snapshot("w").await.unwrap().is_some());

    {
        let client = writer.pool().get().await.unwrap();
        for sql in [
            format!("UPDATE \"{schema}\".events SET event_type = 'Forged'"),
            format!("DELETE FROM \"{schema}\".events"),
            format!("TRUNCATE \"{schema}\".events"),
            format!("DROP TABLE \"{schema}\".events"),
            format!("SELECT \"{schema}\".bump_epoch()"),
        ] {
            let err = client.batch_execute(&sql).await.unwrap_err();
            assert_eq!(
                err.code().map(|c| c.code()),
                Some("42501"),
                "{sql} was not refused for lack of privilege: {err}"
            );
        }
    }
    // Retention deletes events: the owner's job, refused to the writer.
    let err = writer
        .delete_stream("w", ExpectedVersion::Any)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert_eq!(owner.read_stream("w", 1).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_epoch_releases_rows_with_foreign_transaction_ids_and_nothing_else() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    let start = store.head_position().await.unwrap();
    let owner = store.pool().get().await.unwrap();
    // A "restored" row: committed, but its tx comes from another cluster, far ahead.
    let restored: i64 = owner
        .query_one(
            &format!(
                "INSERT INTO \"{schema}\".events (tenant, position, tx, stream_id, version, \
                 event_id, event_type, schema_version, metadata, payload, recorded_at) \
                 VALUES ('', nextval('\"{schema}\".event_positions'), \
                 (pg_current_xact_id()::text::bigint + 1000000000)::text::xid8, 'old', 1, $1, \
                 'Ticked', 1, '{{}}', '\\x00', now()) RETURNING position"
            ),
            &[&uuid::Uuid::now_v7()],
        )
        .await
        .unwrap()
        .get(0);
    owner
        .batch_execute(&format!(
            "INSERT INTO \"{schema}\".streams (tenant, stream_id, version) VALUES ('', 'old', 1)"
        ))
        .await
        .unwrap();
    assert!(store.read_all(start + 1, 100).await.unwrap().is_empty());

    // A writer that claimed a position before the bump and has not committed yet.
    let mut slow = store.pool().get().await.unwrap();
    let tx = slow.transaction().await.unwrap();
    let early: i64 = tx
        .query_one(&format!("SELECT \"{schema}\".claim_positions(1)"), &[])
        .await
        .unwrap()
        .get::<_, Vec<i64>>(0)[0];
    let epoch = store.bump_epoch().await.unwrap();
    assert_eq!(epoch, 1);
    // The floor is not sealed while a transaction older than the bump is open: nothing
    // is handed out that could later get an older neighbour.
    assert!(store.read_all(start + 1, 100).await.unwrap().is_empty());
    tx.execute(
        &format!(
            "INSERT INTO \"{schema}\".events (tenant, position, stream_id, version, event_id, \
             event_type, schema_version, metadata, payload, recorded_at) \
             VALUES ('', $1, 's-slow', 1, $2, 'Ticked', 1, '{{}}', '\\x00', now())"
        ),
        &[&early, &uuid::Uuid::now_v7()],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    drop(slow);
    let after = store
        .append("new", ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let positions: Vec<u64> = store
        .read_all(start + 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(
        positions,
        vec![restored as u64, early as u64, after.positions[0]]
    );
    assert_eq!(store.head_position().await.unwrap(), after.positions[0]);
    assert_eq!(store.bump_epoch().await.unwrap(), 2);
    drop(owner);
    drop_schema(&store).await;
}
