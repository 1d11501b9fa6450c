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
