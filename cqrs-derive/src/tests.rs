//! The expanders on `parse_quote!` inputs, without compiling their output: the mistakes
//! each finds, all of them at once, as `compile_error!` messages.
//!
//! The UI tests under `tests/ui` show what rustc then prints; these pin down the parsing
//! and checking logic, and run in milliseconds.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::parse_quote;

use crate::expand;

/// The message of every `compile_error!` in `tokens`, nested ones included (a failed
/// `#[derive(Aggregate)]` puts one inside a type), in order.
fn errors(tokens: &TokenStream) -> Vec<String> {
    let mut found = Vec::new();
    collect(tokens.clone(), &mut found);
    found
}

fn collect(tokens: TokenStream, found: &mut Vec<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in tokens.iter().enumerate() {
        match tt {
            TokenTree::Ident(ident) if ident == "compile_error" => {
                if let Some(TokenTree::Group(args)) = tokens.get(i + 2) {
                    let message: syn::LitStr =
                        syn::parse2(args.stream()).expect("compile_error! takes a string");
                    found.push(message.value());
                }
            }
            TokenTree::Group(group) => collect(group.stream(), found),
            _ => {}
        }
    }
}

/// Asserts that `tokens` holds exactly one error per expected fragment, each error
/// containing its fragment, in order.
#[track_caller]
fn assert_errors(tokens: &TokenStream, expected: &[&str]) {
    let found = errors(tokens);
    assert_eq!(
        found.len(),
        expected.len(),
        "expected {} errors, found {}:\n{}",
        expected.len(),
        found.len(),
        found.join("\n")
    );
    for (message, fragment) in found.iter().zip(expected) {
        assert!(
            message.contains(fragment),
            "expected an error containing {fragment:?}, found {message:?}"
        );
    }
}

fn aggregate_impl(args: TokenStream, item: syn::ItemImpl) -> TokenStream {
    expand::aggregate_impl::expand(args, item)
}

mod event {
    use super::*;

    #[test]
    fn a_well_formed_enum_has_no_errors() {
        let out = expand::event::derive(&parse_quote! {
            enum E {
                Placed { total: u64 },
                Noted(String, u8),
                #[event(name = "cancelled", version = 2)]
                Cancelled,
            }
        });
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(out.contains("impl :: cqrs_core :: DomainEvent for E"));
        assert!(out.contains("\"cancelled\""));
    }

    #[test]
    fn every_mistake_is_reported_together() {
        let out = expand::event::derive(&parse_quote! {
            #[serde(tag = "type")]
            enum E {
                #[event(version = 0)]
                A,
                #[event(rename = "b", version = 2, version = 3)]
                B,
                #[event(name = "A")]
                C,
                #[serde(skip)]
                D,
            }
        });
        assert_errors(
            &out,
            &[
                "`#[serde(tag ..)]` cannot be used with `#[derive(Event)]`",
                "`#[serde(skip)]` cannot be used on a variant",
                "`#[event(version = ..)]` must be a whole number from 1",
                "unknown key `rename` in `#[event(..)]`: did you mean `name`?",
                "duplicate `version` key in `#[event(..)]`",
                "two event variants are stored under the type name \"A\"",
            ],
        );
        // The impl is still emitted, so that the enum's users do not fail too.
        assert!(out.to_string().contains("DomainEvent for E"));
    }

    #[test]
    fn keys_after_an_unknown_one_are_still_read() {
        let out = expand::event::derive(&parse_quote! {
            enum E {
                #[event(label = "x", version = 0)]
                A,
            }
        });
        assert_errors(
            &out,
            &[
                "unknown key `label` in `#[event(..)]`; expected `name` or `version`",
                "must be a whole number from 1",
            ],
        );
    }

    #[test]
    fn only_an_enum_can_be_an_event() {
        let out = expand::event::derive(&parse_quote! {
            struct Placed { total: u64 }
        });
        assert_errors(&out, &["`#[derive(Event)]` applies to an enum"]);
    }

    #[test]
    fn misplaced_and_empty_attributes_are_rejected() {
        let out = expand::event::derive(&parse_quote! {
            #[event(version = 2)]
            enum E {
                A { #[event(name = "x")] x: u8 },
                #[event(name = "")]
                B,
            }
        });
        assert_errors(
            &out,
            &[
                "`#[event(..)]` is not accepted on the enum",
                "`#[event(..)]` is not accepted on a field",
                "`#[event(name = ..)]` must not be empty",
            ],
        );
    }
}

mod command {
    use super::*;

    #[test]
    fn every_mistake_is_reported_together() {
        let out = expand::command::derive(&parse_quote! {
            #[command(id)]
            enum C {
                Transfer {
                    #[command(id)]
                    from: String,
                    #[command(id)]
                    to: String,
                    #[command(key)]
                    amount: u64,
                },
                #[command(id)]
                Close,
            }
        });
        assert_errors(
            &out,
            &[
                "`#[command(..)]` is not accepted on the enum",
                "unknown key `key` in `#[command(..)]`; expected `id`",
                "variant `Transfer` marks two fields `#[command(id)]`",
                "`#[command(..)]` is not accepted on a variant",
            ],
        );
    }

    #[test]
    fn the_fields_table_says_what_a_handler_lacks() {
        let out = expand::command::derive(&parse_quote! {
            enum C {
                Place { order_id: String, lines: Vec<Line> },
                Note(String, u8),
                Cancel,
            }
        })
        .to_string();
        assert!(out.contains("__CQRS_HANDLER_FIELDS"));
        assert!(out.contains("\"lines\""));
        assert!(out.contains("add the parameter `lines: Vec<Line>`"));
        assert!(out.contains("add the parameter `_1: u8`"));
    }
}

mod aggregate {
    use super::*;

    #[test]
    fn a_complete_attribute_has_no_errors() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er, services = S, name = "Shop")]
            struct Order;
        });
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(out.contains("type Command = C"));
        assert!(out.contains("type Services = S"));
        assert!(out.contains("\"Shop\""));
    }

    #[test]
    fn every_mistake_is_reported_together() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, command = C, name = "", colour = "red")]
            struct Order;
        });
        assert_errors(
            &out,
            &[
                "duplicate `command` key in `#[aggregate(..)]`",
                "`#[aggregate(name = ..)]` must not be empty",
                "unknown key `colour` in `#[aggregate(..)]`; expected `command`, `event`, \
                 `error`, `services` or `name`",
                "`#[aggregate(..)]` is missing `event = ..`, `error = ..`",
            ],
        );
    }

    #[test]
    fn a_misspelled_key_is_not_also_missing() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(commands = C, event = E, errors = Er)]
            struct Order;
        });
        assert_errors(
            &out,
            &[
                "unknown key `commands` in `#[aggregate(..)]`: did you mean `command`?",
                "unknown key `errors` in `#[aggregate(..)]`: did you mean `error`?",
            ],
        );
    }

    #[test]
    fn an_incomplete_aggregate_still_gets_an_impl_with_error_types() {
        let out = expand::aggregate::derive(&parse_quote! {
            struct Order;
        });
        assert_errors(
            &out,
            &["`#[derive(Aggregate)]` needs `#[aggregate(command = .., event = .., error = ..)]`"],
        );
        // The one error is the command type, and the others refer to it: code using the
        // aggregate type-checks silently against error types instead of failing everywhere.
        let out = out.to_string();
        assert!(out.contains("impl :: cqrs_core :: Aggregate for Order"));
        assert!(out.contains("type Command = [() ; :: core :: compile_error !"));
        assert!(out.contains("type Event = < Self as :: cqrs_core :: Aggregate > :: Command"));
        assert!(out.contains("type Error = < Self as :: cqrs_core :: Aggregate > :: Command"));
    }
}

mod aggregate_impl {
    use super::*;

    #[test]
    fn a_well_formed_block_has_no_errors() {
        let out = aggregate_impl(
            quote!(),
            parse_quote! {
                impl Order {
                    #[handle]
                    fn place(&self, lines: Vec<Line>) -> Result<E, Er> { todo!() }
                    #[handle(Cancel)]
                    async fn stop(&self, #[services] clock: &Clock) -> Option<E> { None }
                    #[apply]
                    fn placed(&mut self, lines: &[Line]) {}
                    fn helper(&self) {}
                }
            },
        );
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(!out.contains("# [handle"), "our attributes are stripped");
        assert!(!out.contains("# [services]"));
        assert!(out.contains("impl :: cqrs_core :: __private :: Dispatch for Order"));
        // The check of each claimed variant, with a message naming the method.
        assert!(out.contains(
            "`#[handle]` method `place` serves the command variant `Place` (its name in CamelCase)"
        ));
        assert!(out.contains("`#[handle(Cancel)]` on `stop` names `Cancel`"));
        assert!(out.contains("__CQRS_HANDLER_FIELDS"));
    }

    #[test]
    fn every_mistake_is_reported_together() {
        let out = aggregate_impl(
            quote!(Order),
            parse_quote! {
                impl Order {
                    #[handle]
                    fn place(self, (a, b): (u8, u8)) -> E { todo!() }
                    #[handle]
                    fn note<T>(&mut self) {}
                    #[apply]
                    async fn placed(&self, total: u64, #[services] s: &S) -> u8 { 0 }
                    #[handle(A, B)]
                    fn twice(&self, #[services] a: &S, #[services] b: &S) -> E { todo!() }
                }
            },
        );
        assert_errors(
            &out,
            &[
                "`#[aggregate_impl]` takes no arguments",
                "`#[handle]` method `place` takes `&self`, found `self`",
                "`#[handle]` parameters are plain names",
                "`#[handle]` method `note` takes `&self`, found `&mut self`",
                "`#[handle]` method `note` cannot be generic",
                "`#[handle]` method `note` must return its events",
                "`#[apply]` method `placed` takes `&mut self`, found `&self`",
                "`#[apply]` method `placed` cannot be `async`",
                "`#[apply]` method `placed` returns nothing",
                "`#[apply]` parameters borrow the event's fields: write `total: &u64`",
                "`#[apply]` methods cannot take `#[services]`",
                "`#[handle(..)]` takes the name of one variant",
                "`#[handle]` method `twice` has two `#[services]` parameters",
            ],
        );
        // Beside the errors, a stub `Dispatch` so that nothing else fails, and no checks.
        let out = out.to_string();
        assert!(out.contains("the #[aggregate_impl] block has errors"));
        assert!(!out.contains("__CQRS_HANDLER_FIELDS"));
    }

    #[test]
    fn a_trait_impl_is_rejected() {
        let out = aggregate_impl(
            quote!(),
            parse_quote! {
                impl Reset for Counter {
                    #[handle]
                    fn clear(&self) -> E { todo!() }
                }
            },
        );
        assert_errors(
            &out,
            &["`#[aggregate_impl]` goes on the aggregate's own `impl Counter { .. }` block"],
        );
    }

    #[test]
    fn two_methods_for_one_variant() {
        let out = aggregate_impl(
            quote!(),
            parse_quote! {
                impl Order {
                    #[handle]
                    fn cancel(&self) -> E { todo!() }
                    #[handle(Cancel)]
                    fn stop(&self) -> E { todo!() }
                    #[apply(Cancelled)]
                    fn a(&mut self) {}
                    #[apply(Cancelled)]
                    fn b(&mut self) {}
                }
            },
        );
        assert_errors(
            &out,
            &[
                "command variant `Cancel` already has a `#[handle]` method, `cancel`",
                "event variant `Cancelled` already has a `#[apply]` method, `a`",
            ],
        );
    }

    #[test]
    fn handle_and_apply_on_one_method_is_one_error() {
        let out = aggregate_impl(
            quote!(),
            parse_quote! {
                impl Order {
                    #[handle]
                    #[apply]
                    fn cancelled(&mut self) {}
                }
            },
        );
        assert_errors(
            &out,
            &["a method is either `#[handle]` (decides on a command) or `#[apply]`"],
        );
    }

    #[test]
    fn services_outside_a_handler() {
        let out = aggregate_impl(
            quote!(),
            parse_quote! {
                impl Order {
                    fn log(&self, #[services] clock: &Clock) {}
                    #[handle]
                    fn cancel(&self, #[services] clock: Clock) -> E { todo!() }
                }
            },
        );
        assert_errors(
            &out,
            &[
                "`#[services]` marks a parameter of a `#[handle]` method; this method is not one",
                "the `#[services]` parameter borrows the aggregate's services: write \
                 `clock: &Clock`",
            ],
        );
    }
}
