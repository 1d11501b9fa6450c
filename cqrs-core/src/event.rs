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

use crate::codec::{Codec, CodecError};

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
/// let back = LightEvent::decode(&JsonCodec, "SwitchedOn", 1, &payload).unwrap();
/// assert_eq!(back, on);
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static {
    /// Every event type name this enum stores, one per variant, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// The stored type name of this event.
    fn event_type(&self) -> &'static str;

    /// The schema version this event is written with (1 unless the variant says otherwise).
    fn schema_version(&self) -> u32;

    /// Decodes a stored payload of type `event_type` written with `schema_version`.
    ///
    /// Fails with a [`DecodeReason`] (never a panic) for an unknown type name, a version
    /// this build cannot read, or a payload that does not decode.
    fn decode<C: Codec>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Self, DecodeReason>;

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
    /// The stored schema version is newer than, or otherwise not readable by, this build.
    #[error("schema version {found} cannot be read; this build reads version {current}")]
    UnsupportedSchemaVersion {
        /// The version found in storage.
        found: u32,
        /// The version the current variant is written with.
        current: u32,
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
    /// Decodes the payload into the typed event, naming this event on failure.
    pub fn decode<E: DomainEvent, C: Codec>(&self, codec: &C) -> Result<E, EventDecodeError> {
        E::decode(codec, &self.event_type, self.schema_version, &self.payload)
            .map_err(|reason| EventDecodeError::new(self, reason))
    }

    /// Decodes into a typed [`EventEnvelope`].
    pub fn decode_envelope<E: DomainEvent, C: Codec>(
        &self,
        codec: &C,
    ) -> Result<EventEnvelope<E>, EventDecodeError> {
        let event = self.decode(codec)?;
        Ok(EventEnvelope {
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
