//! Payload codecs: how an event's body becomes bytes and back.
//!
//! A stored event keeps its type name beside the payload, so the payload is only the body
//! of the enum variant (`{"amount":10}`, not `{"Deposited":{"amount":10}}`). That lets a
//! variant be renamed, versioned and upcast on its own. serde has no way to serialise
//! "just the content of a variant" or to deserialise a variant whose name arrives out of
//! band, so this module adapts any serde `Serializer`/`Deserializer` to do exactly that;
//! a new codec only has to hand its own serializer to [`encode_variant_body`] and its
//! deserializer to [`decode_variant`].

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};

/// A codec failed to encode or decode a payload.
#[derive(Debug, thiserror::Error)]
#[error("{codec} codec: {message}")]
pub struct CodecError {
    /// The codec's name.
    pub codec: &'static str,
    /// What went wrong, as the codec reports it.
    pub message: String,
}

/// Turns event bodies and other values into bytes and back. JSON ([`JsonCodec`]) is the
/// default.
///
/// ```
/// use cqrs_core::codec::{Codec, JsonCodec};
///
/// let bytes = JsonCodec.encode_value(&vec![1, 2, 3]).unwrap();
/// let back: Vec<u32> = JsonCodec.decode_value(&bytes).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
pub trait Codec: Send + Sync + 'static {
    /// A short name used in errors and stored with snapshots.
    fn name(&self) -> &'static str;

    /// Appends the body of the enum variant `event` to `out`.
    fn encode_event<E: Serialize + ?Sized>(
        &self,
        event: &E,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError>;

    /// Decodes `payload` as the body of the variant of enum `E` at `variant_index`
    /// (declaration order, as serde counts it).
    fn decode_event<E: DeserializeOwned>(
        &self,
        variant_index: u32,
        payload: &[u8],
    ) -> Result<E, CodecError>;

    /// Encodes any value (snapshots, read models).
    fn encode_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes any value.
    fn decode_value<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// The JSON codec (serde_json), the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonCodec;

impl JsonCodec {
    fn err(e: serde_json::Error) -> CodecError {
        CodecError {
            codec: "json",
            message: e.to_string(),
        }
    }
}

impl Codec for JsonCodec {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode_event<E: Serialize + ?Sized>(
        &self,
        event: &E,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let mut ser = serde_json::Serializer::new(out);
        encode_variant_body(event, &mut ser)
            .map(|_| ())
            .map_err(Self::err)
    }

    fn decode_event<E: DeserializeOwned>(
        &self,
        variant_index: u32,
        payload: &[u8],
    ) -> Result<E, CodecError> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let value = decode_variant(variant_index, &mut de).map_err(Self::err)?;
        de.end().map_err(Self::err)?;
        Ok(value)
    }

    fn encode_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(Self::err)
    }

    fn decode_value<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(Self::err)
    }
}

const NOT_A_VARIANT: &str = "an event must be an enum in serde's default (externally tagged) \
                             representation; found something else";

/// Serialises only the body of the enum variant `value` with `serializer`: the fields of a
/// struct variant as a struct, a newtype variant's inner value, a tuple variant as a tuple,
/// a unit variant as unit.
pub fn encode_variant_body<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: ser::Serializer,
{
    value.serialize(VariantBody(serializer))
}

/// Deserialises enum `T` from `deserializer`, which holds only the body of the variant at
/// `variant_index`. The index (not the name) selects the variant, so serde renames of
/// variants make no difference.
pub fn decode_variant<'de, T, D>(variant_index: u32, deserializer: D) -> Result<T, D::Error>
where
    T: de::Deserialize<'de>,
    D: de::Deserializer<'de>,
{
    T::deserialize(VariantDeserializer {
        variant_index,
        inner: deserializer,
    })
}

struct VariantBody<S>(S);

macro_rules! reject {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Self::Error> {
            Err(ser::Error::custom(NOT_A_VARIANT))
        })*
    };
}

impl<S: ser::Serializer> ser::Serializer for VariantBody<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = TupleBody<S::SerializeTuple>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = StructBody<S::SerializeStruct>;

    reject! {
        serialize_bool(bool) -> S::Ok;
        serialize_i8(i8) -> S::Ok;
        serialize_i16(i16) -> S::Ok;
        serialize_i32(i32) -> S::Ok;
        serialize_i64(i64) -> S::Ok;
        serialize_u8(u8) -> S::Ok;
        serialize_u16(u16) -> S::Ok;
        serialize_u32(u32) -> S::Ok;
        serialize_u64(u64) -> S::Ok;
        serialize_f32(f32) -> S::Ok;
        serialize_f64(f64) -> S::Ok;
        serialize_char(char) -> S::Ok;
        serialize_str(&str) -> S::Ok;
        serialize_bytes(&[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(&'static str) -> S::Ok;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(ser::Error::custom(NOT_A_VARIANT))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(ser::Error::custom(NOT_A_VARIANT))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self.0)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple(len).map(TupleBody)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct(variant, len).map(StructBody)
    }
}

struct TupleBody<T>(T);

impl<T: ser::SerializeTuple> ser::SerializeTupleVariant for TupleBody<T> {
    type Ok = T::Ok;
    type Error = T::Error;
    fn serialize_field<F: Serialize + ?Sized>(&mut self, value: &F) -> Result<(), T::Error> {
        self.0.serialize_element(value)
    }
    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

struct StructBody<T>(T);

impl<T: ser::SerializeStruct> ser::SerializeStructVariant for StructBody<T> {
    type Ok = T::Ok;
    type Error = T::Error;
    fn serialize_field<F: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &F,
    ) -> Result<(), T::Error> {
        self.0.serialize_field(key, value)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), T::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

struct VariantDeserializer<D> {
    variant_index: u32,
    inner: D,
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for VariantDeserializer<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom(NOT_A_VARIANT))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, D: de::Deserializer<'de>> de::EnumAccess<'de> for VariantDeserializer<D> {
    type Error = D::Error;
    type Variant = Self;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), D::Error> {
        let index: de::value::U32Deserializer<D::Error> = self.variant_index.into_deserializer();
        Ok((seed.deserialize(index)?, self))
    }
}

impl<'de, D: de::Deserializer<'de>> de::VariantAccess<'de> for VariantDeserializer<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        de::IgnoredAny::deserialize(self.inner).map(|_| ())
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, D::Error> {
        seed.deserialize(self.inner)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct("", fields, visitor)
    }
}

use serde::Deserialize as _;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        x: i32,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum E {
        Named {
            a: u64,
            #[serde(rename = "bee")]
            b: String,
        },
        Tuple(u8, u8),
        Wrapped(Inner),
        Unit,
    }

    fn round_trip(e: &E, variant: u32, json: &str) {
        let mut out = Vec::new();
        JsonCodec.encode_event(e, &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), json);
        let back: E = JsonCodec.decode_event(variant, &out).unwrap();
        assert_eq!(&back, e);
    }

    #[test]
    fn bodies_of_every_variant_shape_round_trip() {
        round_trip(
            &E::Named {
                a: 1,
                b: "x".into(),
            },
            0,
            r#"{"a":1,"bee":"x"}"#,
        );
        round_trip(&E::Tuple(1, 2), 1, "[1,2]");
        round_trip(&E::Wrapped(Inner { x: -3 }), 2, r#"{"x":-3}"#);
        round_trip(&E::Unit, 3, "null");
    }

    #[test]
    fn a_body_under_the_wrong_variant_or_with_trailing_bytes_fails() {
        assert!(
            JsonCodec
                .decode_event::<E>(1, br#"{"a":1,"bee":"x"}"#)
                .is_err()
        );
        assert!(JsonCodec.decode_event::<E>(9, b"null").is_err());
        assert!(JsonCodec.decode_event::<E>(3, b"null x").is_err());
        let err = JsonCodec
            .decode_event::<E>(0, br#"{"a":"no"}"#)
            .unwrap_err();
        assert_eq!(err.codec, "json");
    }

    #[test]
    fn a_non_enum_is_refused_with_a_clear_message() {
        let err = JsonCodec.encode_event(&42u32, &mut Vec::new()).unwrap_err();
        assert!(err.message.contains("externally tagged"), "{err}");
    }
}
