//! Event versioning: what upcast steps return, and the payload they read.
//!
//! Events are stored forever; their shapes change. Every stored event keeps its type name
//! and schema version, and `#[derive(Event)]` assembles, for each variant, a chain of
//! steps that lifts an old payload to the current shape:
//!
//! - **typed steps** (`#[upcast(1 -> 2, from = OpenedV1)]`): the stored payload of version
//!   1 deserialises as the plain struct `OpenedV1`, which becomes the next version through
//!   `From` (or a function named with `with = ..`);
//! - **JSON steps** (`#[upcast(1 -> 2, json = rename_owner)]`): a function over a
//!   [`serde_json::Value`] that returns the next version's payload, or an [`Upcast`] that
//!   splits the event into several or drops it.
//!
//! An event already at its current version is decoded straight into the enum, with no
//! intermediate `Value`; only old payloads pay for their steps.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::upcast::{StoredValue, Upcast};
//! use serde_json::{json, Value};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
//! enum ShopEvent {
//!     // v1 stored `{"name": ..}`; v2 calls it `owner`.
//!     #[event(version = 2)]
//!     #[upcast(1 -> 2, json = rename_name)]
//!     Opened { owner: String },
//!     #[event(alias = "PriceSet")] // stored under that name before a rename
//!     PriceChanged { cents: u64 },
//! }
//!
//! fn rename_name(mut v: Value) -> Value {
//!     if let Some(name) = v.as_object_mut().and_then(|o| o.remove("name")) {
//!         v["owner"] = name;
//!     }
//!     v
//! }
//!
//! let old = ShopEvent::decode_all(&JsonCodec, "Opened", 1, br#"{"name":"ann"}"#).unwrap();
//! assert_eq!(old, [ShopEvent::Opened { owner: "ann".into() }]);
//! let renamed = ShopEvent::decode_all(&JsonCodec, "PriceSet", 1, br#"{"cents":5}"#).unwrap();
//! assert_eq!(renamed, [ShopEvent::PriceChanged { cents: 5 }]);
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError, decode_variant};
use crate::event::DecodeReason;

pub use serde_json::Value;

/// How deeply splits may nest (a split event whose own chain splits again, …) before the
/// decoder gives up: a chain that splits into itself would otherwise never end.
pub const MAX_SPLIT_DEPTH: u8 = 8;

/// An event in stored form with a JSON payload: what a split produces, and what test
/// fixtures are written in.
///
/// ```
/// use cqrs_core::upcast::StoredValue;
/// use serde_json::json;
///
/// let e = StoredValue::new("Deposited", 1, json!({"amount": 5}));
/// assert_eq!(e.event_type, "Deposited");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    /// The stored type name; it may be a current name, an alias or a removed name.
    pub event_type: Cow<'static, str>,
    /// The schema version the payload is written in.
    pub schema_version: u32,
    /// The payload.
    pub payload: Value,
}

impl StoredValue {
    /// An event of `event_type` at `schema_version` with `payload`.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
        schema_version: u32,
        payload: Value,
    ) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version,
            payload,
        }
    }
}

/// What a JSON upcast step makes of one stored payload.
///
/// ```
/// use cqrs_core::upcast::{StoredValue, Upcast};
/// use serde_json::{json, Value};
///
/// // v1 `AddressChanged` held street and city together; today they are two events.
/// fn split_address(v: Value) -> Upcast {
///     Upcast::Split(vec![
///         StoredValue::new("StreetChanged", 1, json!({"street": v["street"]})),
///         StoredValue::new("CityChanged", 1, json!({"city": v["city"]})),
///     ])
/// }
/// let out = split_address(json!({"street": "Main St", "city": "Oslo"}));
/// assert!(matches!(out, Upcast::Split(ref events) if events.len() == 2));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Upcast {
    /// The payload of the same event type at the next schema version; the chain goes on
    /// from there.
    Next(Value),
    /// The stored event becomes these events (of any types, at any versions), in order;
    /// each goes through its own chain. An empty list drops the event.
    Split(Vec<StoredValue>),
    /// The stored event is dropped: it means nothing today.
    Drop,
}

/// What a JSON step may return: a [`Value`] (the next version's payload), an [`Upcast`],
/// an `Option<Value>` (`None` drops the event), or a `Result` of any of these whose error
/// explains why the payload cannot be lifted.
#[diagnostic::on_unimplemented(
    message = "a JSON upcast step cannot return `{Self}`",
    label = "this step's function returns `{Self}`",
    note = "a JSON step returns `serde_json::Value` (the next version's payload), `Option<Value>` (`None` drops the event), `cqrs_core::upcast::Upcast` (next, split or drop), or a `Result` of one of these whose error implements `Display`"
)]
pub trait IntoUpcast {
    /// The step's outcome, or the reason it failed.
    fn into_upcast(self) -> Result<Upcast, String>;
}

impl IntoUpcast for Value {
    fn into_upcast(self) -> Result<Upcast, String> {
        Ok(Upcast::Next(self))
    }
}

impl IntoUpcast for Upcast {
    fn into_upcast(self) -> Result<Upcast, String> {
        Ok(self)
    }
}

impl IntoUpcast for Option<Value> {
    fn into_upcast(self) -> Result<Upcast, String> {
        Ok(self.map_or(Upcast::Drop, Upcast::Next))
    }
}

impl<T: IntoUpcast, E: fmt::Display> IntoUpcast for Result<T, E> {
    fn into_upcast(self) -> Result<Upcast, String> {
        self.map_err(|e| e.to_string())?.into_upcast()
    }
}

/// A stored payload on its way through an upcast chain: the bytes as stored, or a JSON
/// value that a step (or a split) produced.
///
/// Generated decoders read it; a hand-written [`DomainEvent`](crate::DomainEvent) can too.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    inner: Inner<'a>,
    depth: u8,
}

#[derive(Debug, Clone)]
enum Inner<'a> {
    Bytes(&'a [u8]),
    Json(Value),
}

impl<'a> Payload<'a> {
    /// Payload bytes as a store holds them, in the codec's format.
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Self {
            inner: Inner::Bytes(bytes),
            depth: 0,
        }
    }

    /// A payload given as JSON (fixtures, split results).
    pub fn json(value: Value) -> Payload<'static> {
        Payload {
            inner: Inner::Json(value),
            depth: 0,
        }
    }

    /// How many splits led to this payload (0 for a stored one).
    #[doc(hidden)]
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The payload of an event a split produced from a payload at `depth`: one level
    /// deeper, or an error past [`MAX_SPLIT_DEPTH`].
    #[doc(hidden)]
    pub fn split(depth: u8, value: Value) -> Result<Payload<'static>, DecodeReason> {
        let depth = depth + 1;
        if depth > MAX_SPLIT_DEPTH {
            return Err(DecodeReason::SplitTooDeep {
                limit: MAX_SPLIT_DEPTH,
            });
        }
        Ok(Payload {
            inner: Inner::Json(value),
            depth,
        })
    }

    /// Deserialises the payload as the body of the variant at `variant_index` of the
    /// event enum `E` (declaration order): the current version's decode.
    pub fn read_variant<E: DeserializeOwned, C: Codec>(
        self,
        codec: &C,
        variant_index: u32,
    ) -> Result<E, DecodeReason> {
        match self.inner {
            Inner::Bytes(bytes) => codec
                .decode_event(variant_index, bytes)
                .map_err(DecodeReason::Payload),
            Inner::Json(value) => {
                decode_variant(variant_index, value).map_err(|e| DecodeReason::Payload(json_err(e)))
            }
        }
    }

    /// Deserialises the payload as an old shape `T` (a typed step's source).
    pub fn read<T: DeserializeOwned, C: Codec>(self, codec: &C) -> Result<T, CodecError> {
        match self.inner {
            Inner::Bytes(bytes) => codec.decode_value(bytes),
            Inner::Json(value) => serde_json::from_value(value).map_err(json_err),
        }
    }

    /// The payload as a JSON value (a JSON step's input).
    pub fn into_json<C: Codec>(self, codec: &C) -> Result<Value, CodecError> {
        match self.inner {
            Inner::Bytes(bytes) => codec.decode_value(bytes),
            Inner::Json(value) => Ok(value),
        }
    }
}

fn json_err(e: serde_json::Error) -> CodecError {
    CodecError {
        codec: "json",
        message: e.to_string(),
    }
}

/// Serialises a typed step's output to JSON for the JSON step that follows it.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, CodecError> {
    serde_json::to_value(value).map_err(json_err)
}

/// Deserialises a JSON value into a typed step's source shape.
pub fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, CodecError> {
    serde_json::from_value(value).map_err(json_err)
}
