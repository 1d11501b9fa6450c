//! Domain events and the envelope they travel in.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{Codec, CodecError, JsonCodec};
use crate::upcast::Payload;

/// An event enum of an aggregate: what happened, in the past tense.
///
/// Implemented by `#[derive(Event)]`, which takes each variant's name as its stored event
/// type name (override with `#[event(name = "...")]`) and checks that no two variants share
/// one. The payload stored for an event is the *body* of its variant (its fields), encoded
/// by the [`Codec`]; the type name and schema version travel beside it in the envelope.
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum LightEvent {
///     SwitchedOn { watts: u32 },
///     #[event(name = "light-off")]
///     SwitchedOff,
/// }
///
/// let on = LightEvent::SwitchedOn { watts: 60 };
/// assert_eq!(on.event_type(), "SwitchedOn");
/// assert_eq!(LightEvent::SwitchedOff.event_type(), "light-off");
/// assert_eq!(on.schema_version(), 1);
///
/// // The payload is the variant's body; decoding needs the type name beside it.
/// let payload = on.encode(&JsonCodec).unwrap();
/// assert_eq!(payload, br#"{"watts":60}"#);
/// let back = LightEvent::decode_all(&JsonCodec, "SwitchedOn", 1, &payload).unwrap();
/// assert_eq!(back, [on]);
/// ```
///
/// # Versioning
///
/// Every stored event keeps its type name and schema version; reading lifts old ones to
/// today's shape (see [`upcast`](crate::upcast) for the whole story):
///
/// | attribute | where | meaning |
/// |---|---|---|
/// | `#[event(version = N)]` | variant | the schema version new events are written with (default 1) |
/// | `#[event(alias = "Old")]` | variant | a name the variant was stored under before a rename; repeatable |
/// | `#[upcast(1 -> 2, from = V1)]` | variant | stored v1 deserialises as `V1`, which becomes v2 through `From` |
/// | `#[upcast(1 -> 2, from = V1, with = f)]` | variant | … through `fn f(V1) -> Next` instead |
/// | `#[upcast(1 -> 2, from = V1, into = V2)]` | variant | a typed step followed by a JSON step names what it hands over |
/// | `#[upcast(1 -> 2, json = f)]` | variant | `fn f(serde_json::Value) -> R` where `R` is a `Value`, an `Option<Value>`, an [`Upcast`](crate::upcast::Upcast) (split, drop) or a `Result` of these |
/// | `#[event(removed = "Gone")]` | enum | events stored under a type that no longer exists are dropped |
/// | `#[event(removed = "Gone", upcast = f)]` | enum | … or mapped by a JSON function to today's events |
///
/// The derive checks each chain at compile time: every step leads to the next version,
/// the chain has no gap and no cycle, and ends at the variant's current version.
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Deserialize)]
/// struct SwitchedOnV1 { power: u32 }
///
/// impl From<SwitchedOnV1> for LightEvent {
///     fn from(v1: SwitchedOnV1) -> Self { LightEvent::SwitchedOn { watts: v1.power } }
/// }
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
/// enum LightEvent {
///     #[event(version = 2)]
///     #[upcast(1 -> 2, from = SwitchedOnV1)]
///     SwitchedOn { watts: u32 },
/// }
///
/// let lifted = LightEvent::decode_all(&JsonCodec, "SwitchedOn", 1, br#"{"power":40}"#).unwrap();
/// assert_eq!(lifted, [LightEvent::SwitchedOn { watts: 40 }]);
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static {
    /// Every event type name this enum stores, one per variant, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// The stored type name of this event.
    fn event_type(&self) -> &'static str;

    /// The schema version this event is written with (1 unless the variant says otherwise).
    fn schema_version(&self) -> u32;

    /// Every name this enum reads from storage: the current names, the names variants
    /// were stored under before a rename (`#[event(alias = "..")]`) and the names of
    /// removed types (`#[event(removed = "..")]` on the enum). A store that filters the
    /// global log by type name asks for these, not only [`EVENT_TYPES`](Self::EVENT_TYPES).
    const STORED_TYPES: &'static [&'static str] = Self::EVENT_TYPES;

    /// The earlier names the current type `event_type` was stored under (its aliases);
    /// empty for a name that has none or that this enum does not know.
    fn aliases_of(event_type: &str) -> &'static [&'static str] {
        let _ = event_type;
        &[]
    }

    /// Decodes one stored event, lifting an old schema version or a renamed or removed
    /// type through its upcast chain, and hands each resulting event to `sink`: one for
    /// most events, several for a split, none for a drop.
    ///
    /// Fails with a [`DecodeReason`] (never a panic) for an unknown type name, a version
    /// with no way up to the current one, a step that fails, or a payload that does not
    /// decode. This is the method `#[derive(Event)]` generates; the others call it.
    fn decode_payload<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: Payload<'_>,
        sink: &mut F,
    ) -> Result<(), DecodeReason>;

    /// [`decode_payload`](Self::decode_payload) of payload bytes as a store holds them.
    fn decode_with<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
        sink: &mut F,
    ) -> Result<(), DecodeReason> {
        Self::decode_payload(
            codec,
            event_type,
            schema_version,
            Payload::bytes(payload),
            sink,
        )
    }

    /// Decodes one stored event into the events it means today (usually exactly one).
    fn decode_all<C: Codec>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Vec<Self>, DecodeReason> {
        let mut out = Vec::with_capacity(1);
        Self::decode_with(codec, event_type, schema_version, payload, &mut |e| {
            out.push(e)
        })?;
        Ok(out)
    }

    /// Decodes a stored event whose payload is given as JSON (fixtures, golden files),
    /// whatever the codec the events are normally stored with.
    fn decode_json(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Vec<Self>, DecodeReason> {
        let mut out = Vec::with_capacity(1);
        Self::decode_payload(
            &JsonCodec,
            event_type,
            schema_version,
            Payload::json(payload),
            &mut |e| out.push(e),
        )?;
        Ok(out)
    }

    /// Encodes this event's payload (the body of its variant) with `codec`.
    fn encode<C: Codec>(&self, codec: &C) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(64);
        codec.encode_event(self, &mut out)?;
        Ok(out)
    }
}

/// Why a stored event could not be decoded into the current event type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeReason {
    /// No variant of the event enum is stored under this type name.
    #[error("no variant of `{enum_name}` is stored under this type name (known: {known})")]
    UnknownEventType {
        /// The event enum that was asked to decode.
        enum_name: &'static str,
        /// The type names it knows, comma separated.
        known: String,
    },
    /// No chain of upcast steps leads from the stored schema version to the current one
    /// (a version newer than this build, or older than its oldest step).
    #[error(
        "schema version {found} cannot be read: this build reads versions {oldest} to {current} \
         (an older version needs an `#[upcast(..)]` step, a newer one a newer build)"
    )]
    UnsupportedSchemaVersion {
        /// The version found in storage.
        found: u32,
        /// The oldest version an upcast chain starts from (the current one if none).
        oldest: u32,
        /// The version the current variant is written with.
        current: u32,
    },
    /// An upcast step could not lift the payload.
    #[error("upcast step v{from} -> v{to} ({step}) failed: {message}")]
    Upcast {
        /// The version the step starts from.
        from: u32,
        /// The version it leads to.
        to: u32,
        /// The step: `typed OpenedV1`, `json rename_owner`, or a removed type's function.
        step: &'static str,
        /// What went wrong: the old shape does not deserialise, or the step's own error.
        message: String,
    },
    /// The function mapping a removed type (`#[event(removed = "..", upcast = f)]`) failed.
    #[error("{step} failed: {message}")]
    Removed {
        /// The function and the removed type, e.g. ``function `legacy` of removed type `Fee` ``.
        step: &'static str,
        /// What went wrong.
        message: String,
    },
    /// An event a split produced could not be decoded.
    #[error("event `{event_type}` (schema v{schema_version}) produced by a split: {reason}")]
    Split {
        /// The type the split produced.
        event_type: String,
        /// Its schema version.
        schema_version: u32,
        /// Why it did not decode.
        #[source]
        reason: Box<DecodeReason>,
    },
    /// Splits nested deeper than the limit: a chain most likely splits into itself.
    #[error("splits nest deeper than {limit} levels: does an upcast chain split into itself?")]
    SplitTooDeep {
        /// The limit ([`MAX_SPLIT_DEPTH`](crate::upcast::MAX_SPLIT_DEPTH)).
        limit: u8,
    },
    /// The payload bytes do not decode into the variant.
    #[error("payload does not decode: {0}")]
    Payload(#[from] CodecError),
}

/// A stored event that could not be decoded, with everything needed to find it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode event `{event_type}` (schema v{schema_version}) at stream `{stream_id}` \
     version {version}, position {position}: {reason}"
)]
pub struct EventDecodeError {
    /// The stream the event belongs to.
    pub stream_id: String,
    /// Its version within the stream.
    pub version: u64,
    /// Its position in the global log.
    pub position: u64,
    /// The stored type name.
    pub event_type: String,
    /// The stored schema version.
    pub schema_version: u32,
    /// What went wrong.
    #[source]
    pub reason: DecodeReason,
}

impl EventDecodeError {
    /// Builds the error for `event` from the `reason` the decoder gave.
    pub fn new(event: &RecordedEvent, reason: DecodeReason) -> Self {
        Self {
            stream_id: event.stream_id.to_string(),
            version: event.version,
            position: event.position,
            event_type: event.event_type.to_string(),
            schema_version: event.schema_version,
            reason,
        }
    }
}

/// Who and what caused an event: carried from a command to every event it produces.
///
/// ```
/// use cqrs_core::Metadata;
/// use uuid::Uuid;
///
/// let meta = Metadata::default()
///     .with_correlation_id(Uuid::now_v7())
///     .with_actor("alice")
///     .with("tenant", "acme");
/// assert_eq!(meta.actor.as_deref(), Some("alice"));
/// assert_eq!(meta.custom["tenant"], "acme");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Groups every command and event of one business transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The id of the message (command or event) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who asked for it: a user, a service, a process manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Anything else the application wants to keep with the event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

impl Metadata {
    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }
    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }
    /// Sets the actor.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    /// Adds a user-defined entry.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.actor.is_none()
            && self.custom.is_empty()
    }
}

/// An event about to be appended: its id, type, schema version, metadata and encoded payload.
///
/// The runtime builds these from typed events; an application appending facts directly
/// builds them with [`NewEvent::encode`].
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// enum Ping { Pinged { n: u32 } }
///
/// let new = NewEvent::encode(&Ping::Pinged { n: 1 }, &JsonCodec, Metadata::default()).unwrap();
/// assert_eq!(new.event_type, "Pinged");
/// assert_eq!(&new.payload[..], br#"{"n":1}"#);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id (UUID v7). Re-sending an event with the same id is idempotent.
    pub event_id: Uuid,
    /// Stored type name.
    pub event_type: Cow<'static, str>,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// Correlation, causation, actor, custom entries.
    pub metadata: Metadata,
    /// Encoded payload.
    pub payload: Bytes,
}

impl NewEvent {
    /// An event of `event_type` at `schema_version` with an already-encoded `payload` and
    /// a fresh UUID v7 id: for facts that do not come from a typed event (imports,
    /// fixtures, other systems).
    ///
    /// ```
    /// use cqrs_core::{Metadata, NewEvent};
    /// let e = NewEvent::new("Opened", 1, br#"{"owner":"ann"}"#.to_vec(), Metadata::default());
    /// assert_eq!(e.event_type, "Opened");
    /// ```
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: impl Into<Bytes>,
        metadata: Metadata,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            metadata,
            payload: payload.into(),
        }
    }

    /// Encodes a typed event with a fresh UUID v7 id.
    pub fn encode<E: DomainEvent, C: Codec>(
        event: &E,
        codec: &C,
        metadata: Metadata,
    ) -> Result<Self, CodecError> {
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            metadata,
            payload: Bytes::from(event.encode(codec)?),
        })
    }

    /// True if `recorded` holds the same event (same id, type, version, metadata, payload).
    pub fn same_content_as(&self, recorded: &RecordedEvent) -> bool {
        self.event_id == recorded.event_id
            && *self.event_type == *recorded.event_type
            && self.schema_version == recorded.schema_version
            && self.metadata == recorded.metadata
            && self.payload == recorded.payload
    }
}

/// An event as stored: the envelope every store returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The stream (`<aggregate type>-<id>`) it belongs to.
    pub stream_id: Arc<str>,
    /// Its version within the stream: 1, 2, 3, … without gaps.
    pub version: u64,
    /// Its position in the global log: increasing in commit order, starting at 1.
    pub position: u64,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
    /// Stored type name.
    pub event_type: Arc<str>,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// Correlation, causation, actor, custom entries.
    pub metadata: Metadata,
    /// Encoded payload.
    pub payload: Bytes,
}

impl RecordedEvent {
    /// Decodes the payload (through its upcast chain) and hands each resulting event to
    /// `sink`, naming this event on failure.
    pub fn decode_with<E: DomainEvent, C: Codec, F: FnMut(E)>(
        &self,
        codec: &C,
        sink: &mut F,
    ) -> Result<(), EventDecodeError> {
        E::decode_with(
            codec,
            &self.event_type,
            self.schema_version,
            &self.payload,
            sink,
        )
        .map_err(|reason| EventDecodeError::new(self, reason))
    }

    /// Decodes the payload into the events it means today: one for most events, several
    /// if an upcast splits it, none if one drops it.
    pub fn decode<E: DomainEvent, C: Codec>(&self, codec: &C) -> Result<Vec<E>, EventDecodeError> {
        let mut out = Vec::with_capacity(1);
        self.decode_with(codec, &mut |e| out.push(e))?;
        Ok(out)
    }

    /// Decodes into typed [`EventEnvelope`]s, one per resulting event; each keeps this
    /// event's id, stream, version, position, stored type name and schema version.
    pub fn decode_envelopes<E: DomainEvent, C: Codec>(
        &self,
        codec: &C,
    ) -> Result<Vec<EventEnvelope<E>>, EventDecodeError> {
        let mut out = Vec::with_capacity(1);
        self.decode_with(codec, &mut |event| {
            out.push(EventEnvelope {
                event_id: self.event_id,
                stream_id: self.stream_id.clone(),
                version: self.version,
                position: self.position,
                recorded_at: self.recorded_at,
                event_type: Cow::Owned(self.event_type.to_string()),
                schema_version: self.schema_version,
                metadata: self.metadata.clone(),
                event,
            })
        })?;
        Ok(out)
    }
}

/// A committed event with its typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope<E> {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: Arc<str>,
    /// Its version within the stream.
    pub version: u64,
    /// Its position in the global log.
    pub position: u64,
    /// When the store recorded it.
    pub recorded_at: SystemTime,
    /// Stored type name.
    pub event_type: Cow<'static, str>,
    /// Schema version it was written with.
    pub schema_version: u32,
    /// Correlation, causation, actor, custom entries.
    pub metadata: Metadata,
    /// The event.
    pub event: E,
}
