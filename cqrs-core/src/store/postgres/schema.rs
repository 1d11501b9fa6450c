//! The schema and its migrations: readable SQL, applied in order, each recorded in
//! `cqrs_schema`; a schema newer than this build is refused.

use tokio_postgres::Client;

use super::{StoreError, pg_error};

/// One migration: its version, what it does, and the SQL (`{schema}` is replaced by the
/// quoted schema name, `{lock_key}` by the advisory-lock key of the position claim).
pub(super) struct Migration {
    pub(super) version: i32,
    pub(super) description: &'static str,
    pub(super) sql: &'static str,
}

/// Every migration, oldest first. Never edit one that shipped: add another.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, streams, snapshots, the position claim and the append function",
        sql: r#"
CREATE SEQUENCE {schema}.event_positions AS bigint START 1;

CREATE TABLE {schema}.events (
    tenant         text        NOT NULL,
    position       bigint      NOT NULL,
    -- The writing transaction (top-level xid8): readers of the global log only hand out
    -- events whose transaction is below their snapshot's xmin (see the module docs).
    tx             xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    metadata       jsonb       NOT NULL,
    payload        bytea       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant, stream_id, version),
    -- Named: the client tells a re-sent event (this key) from a racing append (the
    -- primary key) by the constraint in the error.
    CONSTRAINT events_event_id_unique UNIQUE (tenant, event_id)
);
CREATE INDEX events_by_position ON {schema}.events (tenant, position);

CREATE TABLE {schema}.streams (
    tenant        text    NOT NULL,
    stream_id     text    NOT NULL,
    version       bigint  NOT NULL,
    first_version bigint  NOT NULL DEFAULT 1,
    deleted       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant, stream_id)
);

CREATE TABLE {schema}.snapshots (
    tenant           text        NOT NULL,
    stream_id        text        NOT NULL,
    stream_version   bigint      NOT NULL,
    snapshot_version integer     NOT NULL,
    codec            text        NOT NULL,
    taken_at         timestamptz NOT NULL,
    payload          bytea       NOT NULL,
    PRIMARY KEY (tenant, stream_id)
);

-- Takes `n` positions and the transaction's xid inside one short critical section, so
-- that among the store's writers xid order equals position order. The lock is held for
-- the two calls only, never until commit. Refuses a transaction that already holds an
-- xid: its xid would be older than positions taken by others meanwhile.
CREATE FUNCTION {schema}.claim_positions(n integer) RETURNS bigint[]
LANGUAGE plpgsql AS $fn$
DECLARE
    positions bigint[];
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs: an append must be the first write of its transaction'
            USING ERRCODE = 'CQ001';
    END IF;
    PERFORM pg_advisory_lock({lock_key});
    BEGIN
        PERFORM pg_current_xact_id();
        SELECT array_agg(nextval('{schema}.event_positions') ORDER BY g)
            INTO positions FROM generate_series(1, n) AS g;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock({lock_key});
        RAISE;
    END;
    PERFORM pg_advisory_unlock({lock_key});
    RETURN positions;
END
$fn$;

-- One append, one statement (so one round trip, its own transaction). Written for the
-- hot path: two SQL statements (the stream row; the insert of the events together with
-- the stream's new version), everything else plain expressions. It returns a bigint
-- array, so that it is called as `SELECT append_events(...)` (a plain value; a
-- composite result needs a function scan, measurably slower):
--   [status, version, recorded_at (microseconds since 1970), position...]
-- status 1: written (version: the stream's new version); 2: the stream is deleted;
-- 3: conflict (version: the stream's version, 0 if none; the client then checks
-- whether the batch is a re-send). An event id already
-- stored fails the insert on the unique (tenant, event_id) key: the client checks the
-- re-send. A racing append of the same versions fails on the primary key (23505): the
-- client runs the append again and sees the conflict.
-- p_expected: -1 any, -2 no stream, -3 stream exists, n >= 0 exactly n.
CREATE FUNCTION {schema}.append_events(
    p_tenant text, p_stream text, p_expected bigint,
    p_ids uuid[], p_types text[], p_schema_versions integer[], p_metadata jsonb[],
    p_payloads bytea[]
) RETURNS bigint[]
LANGUAGE plpgsql AS $fn$
DECLARE
    cur bigint;
    del boolean;
    n integer := cardinality(p_ids);
    touched integer;
    ignored text;
    positions bigint[];
    recorded_at timestamptz;
BEGIN
    SELECT s.version, s.deleted INTO cur, del
        FROM {schema}.streams s WHERE s.tenant = p_tenant AND s.stream_id = p_stream;
    IF del THEN
        RETURN ARRAY[2, 0, 0]::bigint[];
    END IF;
    IF cur = 0 THEN cur := NULL; END IF;
    IF NOT (p_expected = -1
            OR (p_expected = -2 AND cur IS NULL)
            OR (p_expected = -3 AND cur IS NOT NULL)
            OR (p_expected >= 0 AND coalesce(cur, 0) = p_expected)) THEN
        RETURN ARRAY[3, coalesce(cur, 0), 0]::bigint[];
    END IF;
    -- The position claim (as claim_positions, inlined): xid and positions under the
    -- session advisory lock, released before the insert.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs: an append must be the first write of its transaction'
            USING ERRCODE = 'CQ001';
    END IF;
    ignored := pg_advisory_lock({lock_key});
    BEGIN
        ignored := pg_current_xact_id();
        positions := array_fill(0::bigint, ARRAY[n]);
        FOR i IN 1..n LOOP
            positions[i] := nextval('{schema}.event_positions');
        END LOOP;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        ignored := pg_advisory_unlock({lock_key});
        RAISE;
    END;
    ignored := pg_advisory_unlock({lock_key});
    recorded_at := clock_timestamp();
    WITH written AS (
        INSERT INTO {schema}.events (tenant, position, stream_id, version, event_id,
                                     event_type, schema_version, metadata, payload,
                                     recorded_at)
        SELECT p_tenant, positions[i], p_stream, coalesce(cur, 0) + i, p_ids[i], p_types[i],
               p_schema_versions[i], p_metadata[i], p_payloads[i], recorded_at
        FROM generate_subscripts(p_ids, 1) AS i
    )
    INSERT INTO {schema}.streams AS s (tenant, stream_id, version)
        VALUES (p_tenant, p_stream, coalesce(cur, 0) + n)
    ON CONFLICT (tenant, stream_id) DO UPDATE SET version = excluded.version
        WHERE s.version = coalesce(cur, 0) AND NOT s.deleted;
    GET DIAGNOSTICS touched = ROW_COUNT;
    IF touched <> 1 THEN
        -- The stream changed under us (deleted, or moved on): roll back and retry.
        RAISE EXCEPTION 'cqrs: stream changed during the append' USING ERRCODE = 'CQ002';
    END IF;
    RETURN ARRAY[1, coalesce(cur, 0) + n,
                 (extract(epoch FROM recorded_at) * 1000000)::bigint] || positions;
END
$fn$;
"#,
    },
    Migration {
        version: 2,
        description: "restore epochs: a floor below which every event is final",
        sql: r#"
-- A restored dump brings rows whose `tx` comes from the old cluster: such an xid can lie
-- above the new cluster's horizon for a long time and hold readers back. After a restore
-- the administrator calls `bump_epoch()`: every event at or below `floor_position` then
-- counts as final once `bump_tx` is below the reader's xmin (see the module docs).
CREATE TABLE {schema}.epochs (
    epoch          bigint      PRIMARY KEY,
    floor_position bigint      NOT NULL,
    bump_tx        xid8        NOT NULL,
    bumped_at      timestamptz NOT NULL DEFAULT now()
);

-- Takes the position-claim lock, so that every event at or below the floor was claimed
-- by a transaction with an xid below this one's (or comes from the dump, committed).
CREATE FUNCTION {schema}.bump_epoch() RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    next_epoch bigint;
    floor_pos bigint;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs: bump_epoch must be the first write of its transaction'
            USING ERRCODE = 'CQ001';
    END IF;
    PERFORM pg_advisory_lock({lock_key});
    BEGIN
        PERFORM pg_current_xact_id();
        floor_pos := nextval('{schema}.event_positions');
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock({lock_key});
        RAISE;
    END;
    PERFORM pg_advisory_unlock({lock_key});
    SELECT coalesce(max(epoch), 0) + 1 INTO next_epoch FROM {schema}.epochs;
    INSERT INTO {schema}.epochs (epoch, floor_position, bump_tx)
        VALUES (next_epoch, floor_pos, pg_current_xact_id());
    RETURN next_epoch;
END
$fn$;
"#,
    },
    Migration {
        version: 3,
        description: "read models: views, projection checkpoints and generations, dead letters",
        sql: r#"
-- One JSON document per (projection, generation, key). Reads are served from the
-- projection's active generation; a rebuild writes a new one beside it.
CREATE TABLE {schema}.views (
    tenant     text    NOT NULL,
    projection text    NOT NULL,
    generation integer NOT NULL,
    key        text    NOT NULL,
    doc        jsonb   NOT NULL,
    PRIMARY KEY (tenant, projection, generation, key)
);

-- Where each async projection stands. The row is also its write lock: a batch, a rebuild
-- start and an activation lock it first. Inline appends never touch it (they lock only
-- the documents they change, `FOR UPDATE`), so they do not wait on each other.
CREATE TABLE {schema}.projections (
    tenant                text    NOT NULL,
    projection            text    NOT NULL,
    active_generation     integer NOT NULL DEFAULT 0,
    position              bigint  NOT NULL DEFAULT 0,
    rebuilding_generation integer NULL,
    rebuilding_position   bigint  NULL,
    PRIMARY KEY (tenant, projection),
    CHECK ((rebuilding_generation IS NULL) = (rebuilding_position IS NULL))
);

-- Events a projection kept failing on (or that wait behind one of their stream).
CREATE TABLE {schema}.dead_letters (
    tenant     text    NOT NULL,
    projection text    NOT NULL,
    generation integer NOT NULL,
    position   bigint  NOT NULL,
    event_id   uuid    NOT NULL,
    stream_id  text    NOT NULL,
    version    bigint  NOT NULL,
    reason     text    NOT NULL,
    attempts   integer NOT NULL,
    blocked_by bigint  NULL,
    PRIMARY KEY (tenant, projection, generation, event_id)
);
CREATE INDEX dead_letters_by_position ON {schema}.dead_letters (tenant, projection, position);
"#,
    },
];

/// Creates the schema if needed and applies every migration it lacks, in one
/// transaction under an advisory lock (two processes starting at once do not race).
pub(super) async fn migrate(
    client: &mut Client,
    schema: &str,
    lock_key: i64,
) -> Result<i32, StoreError> {
    let quoted = super::quote_ident(schema);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    // Fast path, without DDL or locks: a schema already at this build's version needs
    // nothing, so a least-privilege role (no CREATE) can connect to it.
    let at: Option<i32> = client
        .query_one(
            "SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL::int ELSE -1 END",
            &[&format!("{quoted}.cqrs_schema")],
        )
        .await
        .map_err(pg_error("looking for the schema"))?
        .get(0);
    if at.is_some() {
        let current: i32 = client
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {quoted}.cqrs_schema"),
                &[],
            )
            .await
            .map_err(pg_error("reading the schema version"))?
            .get(0);
        if current == known {
            return Ok(known);
        }
        if current > known {
            return Err(newer(schema, current, known));
        }
    }
    let tx = client
        .transaction()
        .await
        .map_err(pg_error("starting the migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(lock_key ^ 0x5eed)])
        .await
        .map_err(pg_error("locking the migration"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.cqrs_schema (
             version     integer     PRIMARY KEY,
             description text        NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(pg_error("creating the schema"))?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {quoted}.cqrs_schema"),
            &[],
        )
        .await
        .map_err(pg_error("reading the schema version"))?
        .get(0);
    if current > known {
        return Err(newer(schema, current, known));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let sql = m
            .sql
            .replace("{schema}", &quoted)
            .replace("{lock_key}", &lock_key.to_string());
        tx.batch_execute(&sql)
            .await
            .map_err(pg_error("applying a migration"))?;
        tx.execute(
            &format!("INSERT INTO {quoted}.cqrs_schema (version, description) VALUES ($1, $2)"),
            &[&m.version, &m.description],
        )
        .await
        .map_err(pg_error("recording a migration"))?;
    }
    tx.commit()
        .await
        .map_err(pg_error("committing the migration"))?;
    Ok(known)
}

fn newer(schema: &str, current: i32, known: i32) -> StoreError {
    StoreError::Backend(
        format!(
            "schema `{schema}` is at version {current}, newer than this build knows \
             ({known}): upgrade the application"
        )
        .into(),
    )
}
