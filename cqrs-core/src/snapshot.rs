//! Snapshots: an aggregate's state at a stream version, so a load replays only the tail.
//!
//! A snapshot is a cache, never the truth: it carries the stream version it reflects, the
//! aggregate's [`SNAPSHOT_VERSION`](crate::Aggregate::SNAPSHOT_VERSION) and the codec that
//! wrote it. Reading one written under another snapshot version or codec, or one whose
//! payload no longer decodes, says so ([`SnapshotRead`]) so the caller ignores it and
//! rebuilds the state from events; it is never mis-read.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::snapshot::{Snapshot, SnapshotRead};
//! # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! # enum E { Happened }
//! # #[derive(Debug, Clone, PartialEq, Command)]
//! # enum C { Do }
//! # #[derive(Debug, thiserror::Error)]
//! # #[error("no")]
//! # struct Er;
//!
//! #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
//! #[aggregate(command = C, event = E, error = Er, snapshot_version = 2)]
//! struct Tally { count: u64 }
//! # #[aggregate_impl]
//! # impl Tally {
//! #     #[handle] fn r#do(&self) -> E { E::Happened }
//! #     #[apply] fn happened(&mut self) { self.count += 1 }
//! # }
//!
//! let snap = Snapshot::take("Tally-1", 7, &Tally { count: 7 }, &JsonCodec).unwrap();
//! assert_eq!(snap.snapshot_version, 2);
//! assert!(matches!(snap.read::<Tally, _>(&JsonCodec), SnapshotRead::Usable(t) if t.count == 7));
//!
//! // A snapshot written before the state's shape changed is ignored, not mis-read.
//! let old = Snapshot { snapshot_version: 1, ..snap };
//! assert!(matches!(
//!     old.read::<Tally, _>(&JsonCodec),
//!     SnapshotRead::OtherVersion { found: 1, current: 2 }
//! ));
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aggregate::Aggregate;
use crate::codec::{Codec, CodecError};

/// An aggregate's encoded state at a stream version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The stream it belongs to.
    pub stream_id: Arc<str>,
    /// The stream version the state reflects: events after it are replayed on load.
    pub stream_version: u64,
    /// The aggregate's [`SNAPSHOT_VERSION`](crate::Aggregate::SNAPSHOT_VERSION) when it
    /// was taken.
    pub snapshot_version: u32,
    /// The [`Codec::name`] of the codec that encoded it.
    pub codec: Arc<str>,
    /// When it was taken.
    pub taken_at: SystemTime,
    /// The encoded state.
    pub payload: Bytes,
}

/// What reading a [`Snapshot`] gave: the state, or why it must be ignored.
#[derive(Debug)]
pub enum SnapshotRead<A> {
    /// The state, to continue from with the events after the snapshot's version.
    Usable(A),
    /// Written under another snapshot schema version: ignore it and rebuild.
    OtherVersion {
        /// The snapshot's version.
        found: u32,
        /// The aggregate's current [`SNAPSHOT_VERSION`](crate::Aggregate::SNAPSHOT_VERSION).
        current: u32,
    },
    /// Written by another codec: ignore it and rebuild.
    OtherCodec {
        /// The codec that wrote it.
        found: Arc<str>,
        /// The codec asked to read it.
        current: &'static str,
    },
    /// Same version and codec, yet the payload does not decode: ignore it and rebuild
    /// (and look into why: a shape changed without bumping the snapshot version).
    Corrupt(CodecError),
}

impl Snapshot {
    /// Encodes `state` at `stream_version` with `codec`, under the aggregate's current
    /// snapshot version.
    pub fn take<A: Aggregate + Serialize, C: Codec>(
        stream_id: impl Into<Arc<str>>,
        stream_version: u64,
        state: &A,
        codec: &C,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            stream_id: stream_id.into(),
            stream_version,
            snapshot_version: A::SNAPSHOT_VERSION,
            codec: Arc::from(codec.name()),
            taken_at: SystemTime::now(),
            payload: Bytes::from(codec.encode_value(state)?),
        })
    }

    /// Reads the state back, or says why this snapshot must be ignored.
    pub fn read<A: Aggregate + DeserializeOwned, C: Codec>(&self, codec: &C) -> SnapshotRead<A> {
        if self.snapshot_version != A::SNAPSHOT_VERSION {
            return SnapshotRead::OtherVersion {
                found: self.snapshot_version,
                current: A::SNAPSHOT_VERSION,
            };
        }
        if *self.codec != *codec.name() {
            return SnapshotRead::OtherCodec {
                found: self.codec.clone(),
                current: codec.name(),
            };
        }
        match codec.decode_value(&self.payload) {
            Ok(state) => SnapshotRead::Usable(state),
            Err(e) => SnapshotRead::Corrupt(e),
        }
    }
}

/// When the runtime takes a snapshot of an aggregate: every N events, or when a predicate
/// says so. Set with [`CqrsBuilder::snapshots`](crate::CqrsBuilder::snapshots).
///
/// ```
/// use cqrs_core::snapshot::SnapshotPolicy;
/// # #[derive(Default)] struct Account { balance: u64 }
/// let every_100 = SnapshotPolicy::<Account>::every(100);
/// // A big account is worth snapshotting more often.
/// let custom = SnapshotPolicy::when(|a: &Account, _version, since_last| {
///     since_last >= 20 && a.balance > 1_000_000
/// });
/// # let _ = (every_100, custom);
/// ```
pub struct SnapshotPolicy<A> {
    rule: Rule<A>,
}

/// `(state, stream_version, events_since_last_snapshot) -> take one?`
type Predicate<A> = Box<dyn Fn(&A, u64, u64) -> bool + Send + Sync>;

enum Rule<A> {
    Every(u64),
    When(Predicate<A>),
}

impl<A> SnapshotPolicy<A> {
    /// A snapshot each time the stream version crosses a multiple of `n` (a command
    /// appending several events takes at most one).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn every(n: u64) -> Self {
        assert!(
            n > 0,
            "a snapshot every 0 events makes no sense: use n >= 1"
        );
        Self {
            rule: Rule::Every(n),
        }
    }

    /// A snapshot after a commit whenever `predicate(state, stream_version,
    /// events_since_last_snapshot)` is true.
    pub fn when(predicate: impl Fn(&A, u64, u64) -> bool + Send + Sync + 'static) -> Self {
        Self {
            rule: Rule::When(Box::new(predicate)),
        }
    }

    /// Whether to snapshot `state`, now at `version`, whose stream was at `before` before
    /// this commit and last snapshotted at `last`.
    pub fn due(&self, state: &A, before: u64, version: u64, last: u64) -> bool {
        match &self.rule {
            Rule::Every(n) => before / n != version / n,
            Rule::When(predicate) => predicate(state, version, version - last.min(version)),
        }
    }
}

impl<A> std::fmt::Debug for SnapshotPolicy<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Rule::Every(n) => write!(f, "SnapshotPolicy::every({n})"),
            Rule::When(_) => f.write_str("SnapshotPolicy::when(..)"),
        }
    }
}
