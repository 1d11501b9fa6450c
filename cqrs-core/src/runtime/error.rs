//! What a command can end in, besides success.

use crate::codec::CodecError;
use crate::event::EventDecodeError;
use crate::invariant::InvariantViolation;
use crate::store::{ActualVersion, BoxError, ExpectedVersion, StoreError};

/// Why a command did not commit. Each case asks for a different reaction: show a
/// rejection to the user, retry a conflict later, page someone for a store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate rejected the command: a domain decision. Nothing was written.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),

    /// An external event given to [`Cqrs::ingest_json`](crate::Cqrs::ingest_json) is not
    /// a valid event of the aggregate: nothing was written.
    #[error("invalid external event `{event_type}`: {reason}")]
    InvalidExternal {
        /// The type name it came with.
        event_type: String,
        /// Why it does not decode.
        #[source]
        reason: crate::event::DecodeReason,
    },

    /// Other writers kept appending to the stream; the retry policy gave up.
    #[error(
        "concurrency conflict on stream `{stream_id}`: expected {expected}, found {actual} \
         (gave up after {attempts} attempt(s))"
    )]
    Concurrency {
        /// The stream.
        stream_id: String,
        /// The version the last attempt expected.
        expected: ExpectedVersion,
        /// What the stream held.
        actual: ActualVersion,
        /// How many times the command was handled and appended.
        attempts: u32,
    },

    /// The event store failed.
    #[error(transparent)]
    Store(StoreError),

    /// A stored event of the aggregate could not be decoded while loading it.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),

    /// A new event could not be encoded.
    #[error("cannot encode event `{event_type}`: {source}")]
    Encode {
        /// Its type name.
        event_type: &'static str,
        /// The codec's error.
        #[source]
        source: CodecError,
    },

    /// The command's events would break an invariant of the aggregate, which enforces
    /// them (`#[aggregate(enforce_invariants)]`). Nothing was written: the handler
    /// decided something the aggregate's rules forbid.
    #[error("command refused: its events would break {violation}")]
    Invariant {
        /// The rule, and the event that broke it.
        violation: InvariantViolation,
    },

    /// A middleware refused the command.
    #[error("command refused: {0}")]
    Refused(#[source] BoxError),

    /// [`Cqrs::execute_routed`](crate::Cqrs::execute_routed) got a command that names no
    /// aggregate id (no field marked `#[command(id)]`).
    #[error(
        "command `{command}` names no aggregate id: mark a field `#[command(id)]` or use `execute`"
    )]
    Unrouted {
        /// The command's variant name.
        command: &'static str,
    },
}

impl<E: std::error::Error + 'static> CommandError<E> {
    /// The domain rejection, if that is what this is.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            Self::Rejected(e) => Some(e),
            _ => None,
        }
    }

    /// True for a concurrency conflict (worth retrying later).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Concurrency { .. })
    }
}

/// Why reading the global log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded (or upcast) into today's event type.
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
}
