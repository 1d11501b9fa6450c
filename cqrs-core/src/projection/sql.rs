//! Projections that write their own SQL, in the transaction the store gives them: see
//! [`SqlProjection`].

use std::sync::Arc;

#[cfg(feature = "postgres")]
use async_trait::async_trait;

use super::{DocChange, Projection, ProjectionError};
use crate::event::RecordedEvent;

/// Where a [`SqlProjection`] is being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlContext<'a> {
    /// The projection's name.
    pub projection: &'a str,
    /// The generation being written: the active one, or during a rebuild
    /// ([`RunnerHandle::rebuild`](super::RunnerHandle::rebuild)) the new one, which starts
    /// from position 0 while the active one keeps following the log. A projection whose
    /// tables must stay readable during a rebuild keys its rows by generation (and reads
    /// the one [`ProjectionState::active_generation`](super::ProjectionState) names);
    /// one that ignores it must make every statement idempotent, since a rebuild applies
    /// the whole log again to the same rows.
    pub generation: u32,
    /// Whether this is an inline projection (the append's transaction) rather than an
    /// async batch.
    pub inline: bool,
    /// The PostgreSQL store's tenant (`None` on SQLite): a projection shared by tenants
    /// keys its rows by it.
    pub tenant: Option<&'a str>,
    /// The PostgreSQL store's schema (`None` on SQLite), a checked identifier
    /// (`^[a-z_][a-z0-9_]{0,62}$`), so it may be formatted into statements: a projection
    /// qualifies its tables with it to live beside the events.
    pub schema: Option<&'a str>,
}

/// A read model that writes its own SQL in the transaction it is given.
///
/// A [`View`](super::View) keeps one JSON document per key; some read models want real
/// tables instead: indexes, joins, aggregates computed by the database, columns another
/// service reads. A `SqlProjection` gets the backend's open transaction for each event it
/// handles and runs its own statements in it:
///
/// * **inline** (registered with
///   [`CqrsBuilder::inline_projection`](crate::CqrsBuilder::inline_projection)): in the
///   append's transaction, so a failing statement refuses the command and nothing is
///   written;
/// * **async** ([`ProjectionRunner`](super::ProjectionRunner)): in the batch's
///   transaction, which also moves the checkpoint: the tables change exactly once per
///   event, whatever crashes in between.
///
/// Wrap it in [`Sql`] to register or run it: `builder.inline_projection(Sql::new(p))`.
/// Retries, dead letters and lag work as for documents. The in-memory store has no SQL
/// and refuses SQL projections with
/// [`StoreError::Unsupported`](crate::store::StoreError::Unsupported).
///
/// Implement the backend methods for the stores you use; a backend whose method is not
/// implemented refuses the projection with a [`ProjectionError::NoSql`] naming it.
///
/// Methods run inside the store's transaction: never commit or roll back in them. A
/// returned error (or a panic) rolls back everything the transaction did, the append
/// included for an inline projection.
///
/// ```
/// use cqrs_core::projection::{ProjectionError, Sql, SqlContext, SqlProjection};
/// use cqrs_core::store::sqlite::rusqlite;
/// use cqrs_core::RecordedEvent;
///
/// /// One row per account with its balance, in a table of its own.
/// struct Balances;
///
/// impl SqlProjection for Balances {
///     fn name(&self) -> &str { "balances" }
///     fn handles(&self, event: &RecordedEvent) -> bool { &*event.event_type == "Deposited" }
///     fn migrate_sqlite(&self, conn: &rusqlite::Connection) -> Result<(), ProjectionError> {
///         conn.execute_batch(
///             "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, cents INTEGER)",
///         )
///         .map_err(|e| ProjectionError::Handler(e.to_string()))
///     }
///     fn apply_sqlite(
///         &self,
///         conn: &rusqlite::Connection,
///         event: &RecordedEvent,
///         _cx: &SqlContext<'_>,
///     ) -> Result<(), ProjectionError> {
///         # let amount = 0_i64;
///         conn.execute(
///             "INSERT INTO balances VALUES (?1, ?2) \
///              ON CONFLICT (account) DO UPDATE SET cents = cents + excluded.cents",
///             rusqlite::params![event.stream_id.as_ref(), amount],
///         )
///         .map(drop)
///         .map_err(|e| ProjectionError::Handler(e.to_string()))
///     }
/// }
///
/// let projection = Sql::new(Balances); // register with `inline_projection` or run async
/// # let _ = projection;
/// ```
#[cfg_attr(feature = "postgres", async_trait)]
pub trait SqlProjection: Send + Sync + 'static {
    /// Unique name: it names the projection's checkpoint and dead letters. Must match
    /// `^[a-z_][a-z0-9_]{0,62}$`.
    fn name(&self) -> &str;

    /// Whether `event` concerns this projection, decided on the envelope alone: events
    /// it answers `false` for are never given to it.
    fn handles(&self, event: &RecordedEvent) -> bool;

    /// Creates or migrates the projection's tables on SQLite. Runs in the transaction
    /// before the projection's statements, every time (SQLite checks an existing table
    /// in microseconds), so it must be idempotent (`CREATE TABLE IF NOT EXISTS`).
    #[cfg(feature = "sqlite")]
    fn migrate_sqlite(&self, conn: &rusqlite::Connection) -> Result<(), ProjectionError> {
        let _ = conn;
        Ok(())
    }

    /// Applies `event` on SQLite, in the transaction `conn` has open.
    #[cfg(feature = "sqlite")]
    fn apply_sqlite(
        &self,
        conn: &rusqlite::Connection,
        event: &RecordedEvent,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let _ = (conn, event);
        Err(ProjectionError::NoSql {
            projection: cx.projection.to_owned(),
            backend: "SQLite",
        })
    }

    /// Creates or migrates the projection's tables on PostgreSQL, in the transaction
    /// `client` has open (qualify them with [`SqlContext::schema`]). Runs
    /// before the projection's first statements through each store handle, and again
    /// after a failed transaction, so it must be idempotent
    /// (`CREATE TABLE IF NOT EXISTS`).
    #[cfg(feature = "postgres")]
    async fn migrate_postgres(
        &self,
        client: &tokio_postgres::Client,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let _ = (client, cx);
        Ok(())
    }

    /// Applies `event` on PostgreSQL, in the transaction `client` has open.
    #[cfg(feature = "postgres")]
    async fn apply_postgres(
        &self,
        client: &tokio_postgres::Client,
        event: &RecordedEvent,
        cx: &SqlContext<'_>,
    ) -> Result<(), ProjectionError> {
        let _ = (client, event);
        Err(ProjectionError::NoSql {
            projection: cx.projection.to_owned(),
            backend: "PostgreSQL",
        })
    }
}

/// Runs a [`SqlProjection`] as a [`Projection`], so it registers and runs like any other:
/// `CqrsBuilder::inline_projection(Sql::new(p))`, `ProjectionRunner::new(store, Sql::new(p))`.
pub struct Sql<P: SqlProjection>(Arc<P>);

impl<P: SqlProjection> Sql<P> {
    /// Wraps `projection`.
    pub fn new(projection: P) -> Self {
        Self(Arc::new(projection))
    }

    /// The wrapped projection.
    pub fn inner(&self) -> &P {
        &self.0
    }
}

impl<P: SqlProjection> Projection for Sql<P> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        self.0.handles(event)
    }

    /// Never called by a store that runs SQL (they call [`Projection::sql`]); a store
    /// that has no SQL gets this error.
    fn apply(
        &self,
        _current: Option<&[u8]>,
        _event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        Err(ProjectionError::NoSql {
            projection: self.0.name().to_owned(),
            backend: "this store",
        })
    }

    fn sql(&self) -> Option<Arc<dyn SqlProjection>> {
        Some(self.0.clone())
    }
}
