//! The generated code uses only absolute paths: a module that shadows the prelude's
//! `Result`, `Ok`, `Err`, `Vec`, `String`, `Option`, `Some`, `None`, `Box` still compiles
//! and behaves.
#![allow(dead_code, non_camel_case_types, unreachable_pub)]
#![no_implicit_prelude]

mod shadowed {
    use ::cqrs_core::{Aggregate, Command, Event, aggregate_impl};
    use ::serde::{Deserialize, Serialize};

    pub struct Result;
    pub struct Ok;
    pub struct Err;
    pub struct Vec;
    pub struct String;
    pub struct Option;
    pub struct Some;
    pub struct None;
    pub struct Box;
    pub trait Send {}
    pub trait Future {}
    pub trait Default {}
    pub trait ToString {}

    #[derive(
        ::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, Serialize, Deserialize, Event,
    )]
    pub enum Ev {
        Bumped { by: u32 },
        Named(::std::string::String),
        Reset,
    }

    #[derive(::std::fmt::Debug, ::std::clone::Clone, Command)]
    pub enum Cmd {
        Bump {
            #[command(id)]
            id: ::std::string::String,
            by: u32,
        },
        Name(::std::string::String),
        Reset,
    }

    #[derive(::std::fmt::Debug, ::thiserror::Error)]
    #[error("never")]
    pub struct Never;

    #[derive(Deserialize)]
    pub struct TickedV1 {
        pub n: u32,
    }

    #[derive(Deserialize, Serialize)]
    pub struct TickedV2 {
        pub n: u32,
    }

    impl ::std::convert::From<TickedV1> for TickedV2 {
        fn from(v: TickedV1) -> Self {
            TickedV2 { n: v.n + 1 }
        }
    }

    pub fn ticked_v2(v: ::serde_json::Value) -> ::std::result::Result<::serde_json::Value, Never> {
        ::std::result::Result::Ok(v)
    }

    pub fn gone(v: ::serde_json::Value) -> ::cqrs_core::upcast::Upcast {
        ::cqrs_core::upcast::Upcast::Split(::std::vec![::cqrs_core::upcast::StoredValue::new(
            "Ticked", 3, v,
        )])
    }

    /// Every versioning form: typed and JSON steps, an alias, removed types.
    #[derive(::std::fmt::Debug, ::std::cmp::PartialEq, Serialize, Deserialize, Event)]
    #[event(removed = "Gone", upcast = gone)]
    #[event(removed = "Dropped")]
    pub enum Versioned {
        #[event(version = 3, alias = "Tock")]
        #[upcast(1 -> 2, from = TickedV1, into = TickedV2)]
        #[upcast(2 -> 3, json = ticked_v2)]
        Ticked { n: u32 },
    }

    #[derive(::std::fmt::Debug, ::std::default::Default, Aggregate)]
    #[aggregate(command = Cmd, event = Ev, error = Never)]
    pub struct Counter {
        pub value: u32,
    }

    #[aggregate_impl]
    impl Counter {
        #[handle]
        fn bump(&self, id: ::std::string::String, by: u32) -> ::std::result::Result<Ev, Never> {
            let _ = id;
            ::std::result::Result::Ok(Ev::Bumped { by })
        }
        #[handle]
        fn name(&self, _0: ::std::string::String) -> ::std::option::Option<Ev> {
            ::std::option::Option::Some(Ev::Named(_0))
        }
        #[handle]
        async fn reset(&self) -> ::std::vec::Vec<Ev> {
            ::std::vec![Ev::Reset]
        }
        #[apply]
        fn bumped(&mut self, by: &u32) {
            self.value += *by;
        }
        #[apply]
        fn named(&mut self) {}
        #[apply(Reset)]
        fn was_reset(&mut self) {
            self.value = 0;
        }
    }
}

#[test]
fn generated_code_ignores_shadowed_prelude_names() {
    use ::cqrs_core::{Aggregate, Command};
    let cmd = shadowed::Cmd::Bump {
        id: ::std::convert::From::from("c"),
        by: 3,
    };
    ::std::assert_eq!(
        cmd.aggregate_id().as_deref(),
        ::std::option::Option::Some("c")
    );
    let mut counter = <shadowed::Counter as ::std::default::Default>::default();
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let events = rt.block_on(counter.handle(cmd, &())).unwrap();
    for e in &events {
        counter.apply(e);
    }
    ::std::assert_eq!(counter.value, 3);
}

#[test]
fn generated_upcasts_ignore_shadowed_prelude_names() {
    use ::cqrs_core::DomainEvent;
    let decode = |ty: &str, v: u32, json: &[u8]| {
        shadowed::Versioned::decode_all(&::cqrs_core::JsonCodec, ty, v, json).unwrap()
    };
    let ticked = |n| shadowed::Versioned::Ticked { n };
    ::std::assert_eq!(decode("Ticked", 1, b"{\"n\":1}"), [ticked(2)]);
    ::std::assert_eq!(decode("Tock", 2, b"{\"n\":1}"), [ticked(1)]);
    ::std::assert_eq!(decode("Ticked", 3, b"{\"n\":1}"), [ticked(1)]);
    ::std::assert_eq!(decode("Gone", 1, b"{\"n\":5}"), [ticked(5)]);
    ::std::assert!(decode("Dropped", 1, b"{}").is_empty());
}
