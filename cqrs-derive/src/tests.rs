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
                "\"A\" is already the stored type name of variant `A`",
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
                "unknown key `label` in `#[event(..)]`; expected `name`, `version` or `alias`",
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
                "`version` describes one event: put `#[event(version = ..)]` on a variant",
                "`#[event(..)]` is not accepted on a field",
                "`#[event(name = ..)]` must not be empty",
            ],
        );
    }
}

mod versioning {
    use super::*;

    /// The errors of `#[derive(Event)]` on `input`.
    #[track_caller]
    fn event_errors(input: syn::DeriveInput, expected: &[&str]) -> String {
        let out = expand::event::derive(&input);
        assert_errors(&out, expected);
        out.to_string()
    }

    #[test]
    fn an_unreadable_version_is_one_error_not_a_cascade_of_chain_errors() {
        event_errors(
            parse_quote! {
                enum E {
                    #[event(version = 0)]
                    #[upcast(1 -> 2, from = OpenedV1)]
                    Opened,
                }
            },
            &["`#[event(version = ..)]` must be a whole number from 1"],
        );
    }

    #[test]
    fn a_suffixed_snapshot_version_still_makes_a_u32() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er, snapshot_version = 2u8)]
            struct A;
        });
        assert_errors(&out, &[]);
        let text = out.to_string();
        assert!(
            text.contains("const SNAPSHOT_VERSION : u32 = 2u32"),
            "{text}"
        );
    }

    #[test]
    fn every_accepted_form_has_no_errors() {
        let out = event_errors(
            parse_quote! {
                #[event(removed = "Audited")]
                #[event(removed = "Refunded", upcast = legacy::refund)]
                #[event(upcast = legacy::archive, removed = "Archived")]
                enum E {
                    #[event(version = 3, alias = "Created", alias = "AccountOpened")]
                    #[upcast(1 -> 2, from = old::OpenedV1)]
                    #[upcast(2 -> 3, from = OpenedV2)]
                    Opened { owner: String },
                    #[upcast(3 -> 4, json = paid_v3,)]
                    #[upcast(1 -> 2, from = PaidV1, with = paid_v1, into = PaidV2)]
                    #[upcast(2 -> 3, json = paid_v2)]
                    #[event(version = 4)]
                    Paid { cents: u64 },
                    #[event(name = "note-added", version = 3)]
                    #[upcast(1 -> 2, json = noted_v1)]
                    #[upcast(2 -> 3, from = NotedV2, with = noted_v2)]
                    Noted(String),
                    // A chain need not reach back to version 1.
                    #[event(version = 3)]
                    #[upcast(2 -> 3, json = moved_v2)]
                    Moved,
                    #[event(alias = "Shut")]
                    Closed,
                }
            },
            &[],
        );
        for name in [
            "\"Created\"",
            "\"AccountOpened\"",
            "\"note-added\"",
            "\"Shut\"",
            "\"Audited\"",
            "\"Refunded\"",
            "\"Archived\"",
        ] {
            assert!(out.contains(name), "{name} is not read");
        }
        assert!(out.contains("paid_v1"));
        assert!(out.contains("legacy :: archive"));
    }

    #[test]
    fn every_versioning_mistake_is_reported_together() {
        event_errors(
            parse_quote! {
                #[event(removed = "Closed", removed = "Gone")]
                #[event(upcast = legacy)]
                #[event(version = 2)]
                #[upcast(1 -> 2, json = f)]
                enum E {
                    #[event(version = 3, alias = "")]
                    #[upcast(1 -> 3, json = f)]
                    Opened { #[upcast(1 -> 2, json = f)] owner: String },
                    #[event(alias = "Old", removed = "X")]
                    #[upcast(1 -> 2, from = A, json = f)]
                    Moved,
                    #[event(version = 2, alias = "Old")]
                    #[upcast(1 -> 2, from = A)]
                    #[upcast(1 -> 2, from = B)]
                    Renamed,
                    #[upcast(1 -> 2, json = f)]
                    Closed,
                }
            },
            &[
                "duplicate `removed` key in `#[event(..)]`: write one `#[event(removed = \"..\")]` \
                 per removed type",
                "`upcast = ..` on the enum maps a removed type",
                "`version` describes one event",
                "`#[upcast(..)]` is not accepted on the enum",
                "`#[upcast(..)]` is not accepted on a field",
                "`#[event(alias = ..)]` must not be empty",
                "an upcast step leads to the next version: write `1 -> 2`",
                "`removed` names a type no variant is stored under any more",
                "a step is either typed (`from = OldShape`) or JSON (`json = function`), not both",
                "two upcast steps start from version 1 of `Renamed`",
                "this step leads to version 2, but `Closed` is written at version 1",
                "\"Old\" is given twice among this enum's stored type names",
                "\"Closed\" is already the stored type name of variant `Closed`",
            ],
        );
    }

    #[test]
    fn each_chain_mistake_says_which_step_to_write() {
        let cases: Vec<(syn::DeriveInput, &str)> = vec![
            (
                parse_quote! { enum E { #[event(version = 3)] #[upcast(1 -> 3, json = f)] A } },
                "an upcast step leads to the next version: write `1 -> 2`, and one step from \
                 each version after it",
            ),
            (
                parse_quote! { enum E { #[event(version = 2)] #[upcast(2 -> 1, json = f)] A } },
                "`2 -> 1` goes back down, which would make the chain a cycle",
            ),
            (
                parse_quote! { enum E { #[event(version = 2)] #[upcast(2 -> 2, json = f)] A } },
                "`2 -> 2` goes nowhere, which would make the chain a cycle",
            ),
            (
                parse_quote! { enum E { #[upcast(1 -> 2, json = f)] A } },
                "this step leads to version 2, but `A` is written at version 1: set \
                 `#[event(version = 2)]` on the variant, or drop the step",
            ),
            (
                parse_quote! {
                    enum E {
                        #[event(version = 4)]
                        #[upcast(1 -> 2, json = f)]
                        #[upcast(3 -> 4, json = f)]
                        A
                    }
                },
                "the upcast chain of `A` has a gap: this step leads to version 2, and nothing \
                 lifts version 2 to 3: add `#[upcast(2 -> 3, ..)]`",
            ),
            (
                // A chain that stops short of the current version has a gap at its end.
                parse_quote! { enum E { #[event(version = 3)] #[upcast(1 -> 2, json = f)] A } },
                "nothing lifts version 2 to 3",
            ),
            (
                parse_quote! {
                    enum E {
                        #[event(version = 2)]
                        #[upcast(1 -> 2, json = f)]
                        #[upcast(1 -> 2, json = g)]
                        A
                    }
                },
                "two upcast steps start from version 1 of `A`: keep one",
            ),
            (
                parse_quote! {
                    enum E {
                        #[event(version = 3)]
                        #[upcast(1 -> 2, from = V1)]
                        #[upcast(2 -> 3, json = f)]
                        A
                    }
                },
                "the step from version 2 is a JSON step, so this typed step must say what it \
                 hands over: add `into = <the shape of version 2>`",
            ),
            (
                parse_quote! {
                    enum E {
                        #[event(version = 3)]
                        #[upcast(1 -> 2, from = V1, into = V2)]
                        #[upcast(2 -> 3, from = V2)]
                        A
                    }
                },
                "`into` is for a typed step followed by a JSON step; the step from version 2 \
                 is typed",
            ),
            (
                parse_quote! {
                    enum E { #[event(version = 2)] #[upcast(1 -> 2, from = V1, into = V2)] A }
                },
                "version 2 is the current one, so this step produces the event enum",
            ),
        ];
        for (input, expected) in cases {
            event_errors(input, &[expected]);
        }
    }

    #[test]
    fn each_malformed_step_is_one_error() {
        let cases: Vec<(syn::Attribute, &str)> = vec![
            (
                parse_quote!(#[upcast(1 -> 2)]),
                "this upcast step says neither how to read the old payload nor how to lift it",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, json = f, with = g)]),
                "`with` belongs to a typed step (`from = OldShape`)",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, json = f, into = T)]),
                "`into` belongs to a typed step (`from = OldShape`)",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, from = A, form = B)]),
                "unknown key `form` in `#[upcast(..)]`: did you mean `from`?",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, json = f, colour = 1)]),
                "unknown key `colour` in `#[upcast(..)]`; expected `from`, `json`, `with` or \
                 `into`",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, json = f, json = g)]),
                "duplicate `json` key in `#[upcast(..)]`: give it once",
            ),
            (
                parse_quote!(#[upcast(from 1 to 2, from = V1)]),
                "`#[upcast(..)]` starts with the two versions it lifts between, written \
                 `FROM -> TO`",
            ),
            (
                parse_quote!(#[upcast(1 => 2, from = V1)]),
                "`#[upcast(..)]` starts with the two versions it lifts between",
            ),
            (
                parse_quote!(#[upcast(0 -> 1, from = V0)]),
                "an upcast step's first version must be a whole number from 1",
            ),
            (
                parse_quote!(#[upcast]),
                "`#[upcast]` describes one step of an upcast chain",
            ),
            (
                parse_quote!(#[upcast = "1 -> 2"]),
                "`#[upcast]` describes one step of an upcast chain",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, json = "f")]),
                "`json` in `#[upcast(..)]` takes a function path written as Rust, not a string: \
                 write `json = f`",
            ),
            (
                parse_quote!(#[upcast(1 -> 2, from = "V1")]),
                "`from` in `#[upcast(..)]` takes a type written as Rust",
            ),
        ];
        for (step, expected) in cases {
            event_errors(
                parse_quote! { enum E { #[event(version = 2)] #step A } },
                &[expected],
            );
        }
    }

    #[test]
    fn a_misspelt_step_key_is_not_also_missing() {
        event_errors(
            parse_quote! { enum E { #[event(version = 2)] #[upcast(1 -> 2, jsn = f)] A } },
            &["unknown key `jsn` in `#[upcast(..)]`: did you mean `json`?"],
        );
    }

    #[test]
    fn a_step_that_cannot_be_read_leaves_its_chain_unchecked() {
        // Without the second step the chain would have a gap; with a misspelt `with` the
        // first would need a `From`. Only the mistakes themselves are reported.
        event_errors(
            parse_quote! {
                enum E {
                    #[event(version = 3)]
                    #[upcast(1 -> 2, from = V1, wiht = f, into = V2)]
                    #[upcast(2 -> 3 json = g)]
                    A
                }
            },
            &[
                "unknown key `wiht` in `#[upcast(..)]`: did you mean `with`?",
                "expected `,`",
            ],
        );
    }

    #[test]
    fn the_enum_attribute_takes_removed_types_only() {
        event_errors(
            parse_quote! {
                #[event(name = "E", remove = "X", upcast = "f")]
                enum E { A }
            },
            &[
                "`name` describes one event: put `#[event(name = ..)]` on a variant",
                "unknown key `remove` in `#[event(..)]`: did you mean `removed`?",
                "`upcast` in `#[event(..)]` takes a function path written as Rust, not a string",
            ],
        );
    }

    #[test]
    fn names_aliases_and_removed_types_are_all_distinct() {
        event_errors(
            parse_quote! {
                #[event(removed = "B")]
                enum E {
                    #[event(alias = "A")]
                    A,
                    #[event(alias = "C")]
                    B,
                    #[event(name = "c-renamed", alias = "D")]
                    C,
                    #[event(alias = "D")]
                    D2,
                }
            },
            &[
                "\"A\" is already the stored type name of variant `A`",
                // The alias "C" comes first, the variant `C` is renamed: no collision.
                "\"D\" is given twice among this enum's stored type names",
                "\"B\" is already the stored type name of variant `B`",
            ],
        );
    }

    #[test]
    fn a_snapshot_version_is_a_whole_number_given_once() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er, snapshot_version = 2)]
            struct Order;
        });
        assert_errors(&out, &[]);
        assert!(out.to_string().contains("const SNAPSHOT_VERSION : u32 = 2"));
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er, snapshot_version = 0)]
            #[aggregate(snapshot_version = 2, snapshot_version = 3, snapshot_versions = 4)]
            struct Order;
        });
        assert_errors(
            &out,
            &[
                "`#[aggregate(snapshot_version = ..)]` must be a whole number from 1: snapshot \
                 versions start at 1",
                "duplicate `snapshot_version` key in `#[aggregate(..)]`: give it once",
                "unknown key `snapshot_versions` in `#[aggregate(..)]`: did you mean \
                 `snapshot_version`?",
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
                 `error`, `services`, `name`, `snapshot_version` or `enforce_invariants`",
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

mod invariant {
    use super::*;

    /// The errors of an aggregate whose `#[aggregate(..)]` is complete, with `attrs` after
    /// it.
    fn invariant_errors(attrs: TokenStream) -> Vec<String> {
        let input: syn::DeriveInput = parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #attrs
            struct Tank;
        };
        errors(&expand::aggregate::derive(&input))
    }

    #[track_caller]
    fn assert_invariant_errors(attrs: TokenStream, expected: &[&str]) {
        let input: syn::DeriveInput = parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #attrs
            struct Tank;
        };
        assert_errors(&expand::aggregate::derive(&input), expected);
    }

    #[test]
    fn misplaced_repeated_and_unmatchable_rules_are_errors() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = <M as HasEvent>::Ev, error = Er)]
            #[invariant(given = open, when = Filled | Filled, shall = full, "..")]
            struct Tank {
                #[invariant(level_ok, "the level is fine")]
                level: u32,
            }
        });
        assert_errors(
            &out,
            &[
                "`#[invariant(..)]` is not accepted on a field",
                "the Given/When/Shall invariant `full` matches the event's variants",
                "`Filled` is named twice in `when`",
            ],
        );
    }

    #[test]
    fn raw_identifiers_are_named_without_their_prefix() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #[invariant(given = r#if, when = A, shall = r#match, "..")]
            struct Tank;
        });
        assert_errors(&out, &[]);
        let text = out.to_string();
        assert!(text.contains(r#"name : "match""#), "{text}");
        assert!(text.contains(r#"Some ("if")"#), "{text}");
    }

    #[test]
    fn every_accepted_form_has_no_errors() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[invariant(never_negative, "a tank never holds less than nothing")]
            #[aggregate(command = C, event = E, error = Er, enforce_invariants)]
            #[invariant(given = is_sealed, when = Filled | Drained, shall = unchanged,
                "given a sealed tank, when it is filled or drained, it does not change")]
            #[invariant(when = [Sealed, Labelled,], shall = has_label, "a sealed tank is labelled")]
            #[invariant(r"opened means unsealed", shall = not_sealed, when = Opened,)]
            #[invariant(when = [Sealed], shall = r#sealed, "sealed")]
            struct Tank;
        });
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(out.contains("const ENFORCE_INVARIANTS : bool = true"));
        assert!(out.contains("const INVARIANTS"));
        assert!(out.contains("fn invariant_gate"));
        assert!(out.contains("fn check_invariants"));
        for name in ["never_negative", "unchanged", "has_label", "not_sealed"] {
            assert!(out.contains(&format!("name : \"{name}\"")), "{name}");
        }
        assert!(out.contains("given : :: core :: option :: Option :: Some (\"is_sealed\")"));
        assert!(out.contains("when : & [\"Filled\" , \"Drained\"]"));
        assert!(out.contains("when : & [\"Sealed\" , \"Labelled\"]"));
        // The predicates are called through a `fn(&Self) -> bool`, and the variants are
        // matched on the event enum, so that rustc reports a wrong one at its name.
        assert!(out.contains("fn (& Self) -> bool = Self :: never_negative"));
        assert!(out.contains("E :: Filled { .. } | E :: Drained { .. }"));
    }

    #[test]
    fn no_invariant_generates_no_items_but_the_flag() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            struct Tank;
        })
        .to_string();
        assert!(!out.contains("INVARIANTS"));
        assert!(!out.contains("fn check_invariants"));
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er, enforce_invariants)]
            struct Tank;
        })
        .to_string();
        assert!(out.contains("const ENFORCE_INVARIANTS : bool = true"));
        assert!(!out.contains("const INVARIANTS"));
    }

    #[test]
    fn an_always_rule_without_given_when_shall_has_no_gate() {
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #[invariant(never_negative, "a tank never holds less than nothing")]
            struct Tank;
        });
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(out.contains("InvariantKind :: Always"));
        assert!(!out.contains("fn invariant_gate"));
    }

    #[test]
    fn each_mistake_says_what_to_write() {
        let cases: Vec<(TokenStream, &[&str])> = vec![
            (
                quote!(#[invariant]),
                &["`#[invariant]` names the rule's method and states the rule: write"],
            ),
            (
                quote!(#[invariant = "x"]),
                &["`#[invariant]` names the rule's method and states the rule"],
            ),
            (
                quote!(#[invariant()]),
                &["`#[invariant]` names the rule's method and states the rule"],
            ),
            (
                quote!(#[invariant(never_negative)]),
                &[
                    "this invariant does not state its rule in words: add the sentence a failure \
                   will quote, e.g. `#[invariant(never_negative, \"..\")]`",
                ],
            ),
            (
                quote!(#[invariant(when = A, shall = ok)]),
                &["e.g. `#[invariant(.., shall = ok, \"given .., when .., ..\")]`"],
            ),
            (
                quote!(#[invariant(ok, " ")]),
                &["an invariant's sentence must say something"],
            ),
            (
                quote!(#[invariant(ok, "one", "two")]),
                &["an invariant states its rule in one sentence: join the two"],
            ),
            (
                quote!(#[invariant(ok, also_ok, "one")]),
                &[
                    "an always-rule checks one method, and this one names `ok` already: state the \
                   rule of `also_ok` in an `#[invariant(also_ok, \"..\")]` of its own",
                ],
            ),
            (
                quote!(#[invariant(ok, when = A, shall = fine, "x")]),
                &[
                    "not both: `shall = fine` is this rule's method, so state `ok` in an \
                   `#[invariant(ok, \"..\")]` of its own",
                ],
            ),
            (
                quote!(#[invariant(ok, given = pre, "x")]),
                &["not both: for a Given/When/Shall rule, name its method with `shall = ok`"],
            ),
            (
                quote!(#[invariant(when = A, "x")]),
                &["a Given/When/Shall rule needs `shall = method`"],
            ),
            (
                quote!(#[invariant(given = pre, shall = ok, "x")]),
                &["a Given/When/Shall rule needs `when = Variant`"],
            ),
            (
                quote!(#[invariant(given = pre, "x")]),
                &[
                    "a Given/When/Shall rule needs `when = Variant` and `shall = method` besides \
                   `given`",
                ],
            ),
            (
                quote!(#[invariant("x")]),
                &["this invariant names no method to check"],
            ),
            (
                quote!(#[invariant(when = A, shal = ok, "x")]),
                &["unknown key `shal` in `#[invariant(..)]`: did you mean `shall`?"],
            ),
            (
                quote!(#[invariant(ok, colour = red, "x")]),
                &[
                    "unknown key `colour` in `#[invariant(..)]`; expected `given`, `when` or \
                   `shall`",
                ],
            ),
            (
                quote!(#[invariant(when = [], shall = ok, "x")]),
                &["`when = []` names no event, so the rule would never be checked"],
            ),
            (
                quote!(#[invariant(when = E::A | E::B, shall = ok, "x")]),
                &[
                    "`when` names variants of the aggregate's event enum by their name alone, \
                   without the enum's path: write `when = A | B`",
                ],
            ),
            (
                quote!(#[invariant(when = [A { .. }, B], shall = ok, "x")]),
                &["without fields: write `when = [A, B]`"],
            ),
            (
                quote!(#[invariant(when = "A", shall = ok, "x")]),
                &[
                    "`when` in `#[invariant(..)]` takes event variants written as Rust, not a \
                   string: write `when = A`",
                ],
            ),
            (
                quote!(#[invariant(when = A, shall = "ok", "x")]),
                &[
                    "`shall` in `#[invariant(..)]` takes a method name written as Rust, not a \
                   string: write `shall = ok`",
                ],
            ),
            (
                quote!(#[invariant(when = A, given = Self::pre, shall = ok, "x")]),
                &[
                    "`given` in `#[invariant(..)]` names a method of the aggregate by its name \
                   alone: write `given = pre`",
                ],
            ),
            (
                quote!(#[invariant(Tank::ok, "x")]),
                &[
                    "an always-rule names a method of the aggregate by its name alone: write \
                   `#[invariant(ok, \"..\")]`",
                ],
            ),
            (
                quote!(#[invariant(ok(), "x")]),
                &[
                    "an always-rule names the method, without calling it: write \
                   `#[invariant(ok, \"..\")]`",
                ],
            ),
            (
                quote!(#[invariant(when(A, B), shall = ok, "x")]),
                &["`when` takes a value: write `when = [A, B]`"],
            ),
            (
                quote!(#[invariant(when = A, when = B, shall = ok, "x")]),
                &[
                    "duplicate `when` key in `#[invariant(..)]`: name every event the rule \
                   concerns in one `when = A | B`",
                ],
            ),
            (
                quote!(#[invariant(when = A, shall = ok, shall = fine, "x")]),
                &["duplicate `shall` key in `#[invariant(..)]`: give it once"],
            ),
            (quote!(#[invariant(ok "x")]), &["expected `,`"]),
            (
                quote! {
                    #[invariant(ok, "x")]
                    #[invariant(when = A, shall = ok, "y")]
                },
                &["two invariants are named `ok`: the name identifies the rule in failures"],
            ),
        ];
        for (attrs, expected) in cases {
            let found = invariant_errors(attrs.clone());
            assert_eq!(
                found.len(),
                expected.len(),
                "{attrs}: expected {expected:?}, found {found:?}"
            );
            for (message, fragment) in found.iter().zip(expected) {
                assert!(
                    message.contains(fragment),
                    "{attrs}: expected an error containing {fragment:?}, found {message:?}"
                );
            }
        }
    }

    #[test]
    fn every_mistake_is_reported_together() {
        assert_invariant_errors(
            quote! {
                #[aggregate(enforce_invariants = yes, enforce_invariants, enforce_invariants)]
                #[invariant(never_negative)]
                #[invariant(given = is_empty, when = Drained, shal = still_empty, "x")]
                #[invariant(when = [], shall = still_empty, "")]
                #[invariant(is_empty, shall = still_empty, "a tank is empty")]
                #[invariant(never_negative, "a tank never holds less than nothing", "twice")]
                #[invariant(given = "is_empty", when = E::A, shall = ok(), "y")]
                #[invariant]
                #[invariant(ok, "a fine rule")]
            },
            &[
                "`enforce_invariants` is a flag and takes no value",
                "duplicate `enforce_invariants` key in `#[aggregate(..)]`: give it once",
                "this invariant does not state its rule in words",
                "unknown key `shal` in `#[invariant(..)]`: did you mean `shall`?",
                "`when = []` names no event",
                "an invariant's sentence must say something",
                "an invariant is either an always-rule",
                "an invariant states its rule in one sentence",
                "`given` in `#[invariant(..)]` takes a method name written as Rust",
                "`when` names variants of the aggregate's event enum by their name alone",
                "`shall` in `#[invariant(..)]` names the method, without calling it",
                "`#[invariant]` names the rule's method and states the rule",
            ],
        );
    }

    #[test]
    fn a_misspelt_or_malformed_key_is_not_also_missing() {
        assert_invariant_errors(
            quote!(#[invariant(given = pre, whn = A, shall = ok, "x")]),
            &["unknown key `whn` in `#[invariant(..)]`: did you mean `when`?"],
        );
        assert_invariant_errors(
            quote!(#[invariant(given = pre, when = A, shal = ok, "x")]),
            &["unknown key `shal` in `#[invariant(..)]`: did you mean `shall`?"],
        );
        assert_invariant_errors(
            quote!(#[invariant(given = pre, when(A), shall = ok, "x")]),
            &["`when` takes a value: write `when = A`"],
        );
        assert_invariant_errors(
            quote!(#[invariant(colour = red, "x")]),
            &["unknown key `colour` in `#[invariant(..)]`"],
        );
    }

    #[test]
    fn at_most_64_given_when_shall_rules_the_65th_reported() {
        let rules = (0..65).map(|i| {
            let shall = quote::format_ident!("rule_{i}");
            quote!(#[invariant(when = A, shall = #shall, "x")])
        });
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #[invariant(always, "an always-rule does not count")]
            #(#rules)*
            struct Tank;
        });
        assert_errors(
            &out,
            &[
                "an aggregate declares at most 64 Given/When/Shall invariants, and this is one \
               more: fold rules with the same `given` and `when` into one `shall` method",
            ],
        );
        let rules = (0..64).map(|i| {
            let shall = quote::format_ident!("rule_{i}");
            quote!(#[invariant(when = A, shall = #shall, "x")])
        });
        let out = expand::aggregate::derive(&parse_quote! {
            #[aggregate(command = C, event = E, error = Er)]
            #(#rules)*
            struct Tank;
        });
        assert_errors(&out, &[]);
    }
}

mod projection {
    use super::*;

    fn projection(args: TokenStream, item: syn::Item) -> TokenStream {
        expand::projection::expand(args, item)
    }

    #[test]
    fn a_well_formed_block_has_no_errors() {
        let out = projection(
            quote!(name = "account_summary", key = keys::by_owner),
            parse_quote! {
                impl AccountSummary {
                    #[on(BankEvent::Opened)]
                    fn opened(&mut self) {}
                    #[on(BankEvent::Deposited)]
                    fn deposited(&mut self, balance: &u64) -> Result<(), String> { Ok(()) }
                    #[on(events::OrderEvent::Shipped)]
                    #[on(events::OrderEvent::Closed, delete)]
                    fn touched(&mut self, _0: &str) {}
                    fn helper(&self) -> u64 { 0 }
                }
            },
        );
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(!out.contains("# [on"), "our attributes are stripped");
        assert!(out.contains("fn helper (& self) -> u64"));
        assert!(out.contains("impl :: cqrs_core :: projection :: View for AccountSummary"));
        assert!(out.contains("const NAME : & 'static str = \"account_summary\""));
        // One alias per enum, in the order first met.
        assert!(out.contains("type __CqrsEvents0 = BankEvent ;"));
        assert!(out.contains("type __CqrsEvents1 = events :: OrderEvent ;"));
        assert!(!out.contains("__CqrsEvents2"));
        assert!(
            out.contains(
                "< __CqrsEvents0 as __CqrsEventEnum > :: __stored_names (& [\"Opened\" , \"Deposited\"])"
            )
        );
        assert!(out.contains(
            "< __CqrsEvents1 as __CqrsEventEnum > :: __stored_names (& [\"Shipped\" , \"Closed\"])"
        ));
        // Fields bound by name; tuple fields by index.
        assert!(out.contains("__CqrsEvents0 :: Deposited { balance , .. }"));
        assert!(out.contains("__CqrsEvents1 :: Shipped { 0 : _0 , .. }"));
        // `delete` only on the arm that asks for it.
        assert_eq!(
            out.matches("= :: core :: option :: Option :: None").count(),
            1
        );
        // The key function, and the check that the enums share no stored name.
        assert!(out.contains("fn key"));
        assert!(out.contains("keys :: by_owner"));
        assert!(out.contains("this view handles `BankEvent::Opened`, whose stored type name is also one of `events::OrderEvent`'s"));
    }

    #[test]
    fn without_a_key_function_the_trait_default_is_kept() {
        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                impl V {
                    #[on(E::A)]
                    fn a(&mut self) {}
                }
            },
        );
        assert_errors(&out, &[]);
        let out = out.to_string();
        assert!(!out.contains("fn key"));
        // One enum: nothing to collide with.
        assert!(!out.contains("whose stored type name"));
    }

    #[test]
    fn names_are_checked() {
        for ok in ["a", "_", "account_summary", "v2", &"x".repeat(63)] {
            assert!(crate::attr::valid_view_name(ok), "{ok}");
        }
        for bad in ["", "2fast", "Account", "a-b", "a b", "é", &"x".repeat(64)] {
            assert!(!crate::attr::valid_view_name(bad), "{bad}");
        }
        let item: syn::Item = parse_quote! {
            impl V {
                #[on(E::A)]
                fn a(&mut self) {}
            }
        };
        assert_errors(
            &projection(quote!(name = "AccountSummary"), item.clone()),
            &["\"AccountSummary\" is not a valid projection name"],
        );
        // The error suggests a valid name close to the one written.
        for (bad, fix) in [
            ("AccountSummary", "account_summary"),
            ("Order-Lines 2", "order_lines_2"),
            ("2fast", "_2fast"),
        ] {
            let out = projection(quote!(name = #bad), item.clone());
            let message = &errors(&out)[0];
            assert!(
                message.contains(&format!("e.g. `name = \"{fix}\"`")),
                "{message}"
            );
        }
        let out = projection(quote!(name = "--"), item.clone());
        assert!(!errors(&out)[0].contains("e.g."));
        assert_errors(
            &projection(quote!(name = account_summary), item.clone()),
            &["`name` takes a string literal: write `name = \"account_summary\"`"],
        );
        assert_errors(
            &projection(quote!(), item.clone()),
            &["a projection needs a name"],
        );
        assert_errors(
            &projection(quote!(key = k), item.clone()),
            &["a projection needs a name"],
        );
        // A misspelt `name` is reported once, not also as missing.
        assert_errors(
            &projection(quote!(nam = "v"), item.clone()),
            &["unknown key `nam` in `#[projection(..)]`: did you mean `name`?"],
        );
        assert_errors(
            &projection(quote!(name = "v", key = "by_owner"), item),
            &[
                "`key` in `#[projection(..)]` takes a function path written as Rust, not a string: \
               write `key = by_owner`",
            ],
        );
    }

    #[test]
    fn every_mistake_is_reported_together() {
        let out = projection(
            quote!(name = "v", name = "w", order = 1),
            parse_quote! {
                impl V {
                    #[on]
                    fn a(&mut self) {}
                    #[on()]
                    fn b(&mut self) {}
                    #[on = "E::C"]
                    fn c(&mut self) {}
                    #[on(D)]
                    fn d(&mut self) {}
                    #[on(E::F { x })]
                    fn f(&mut self, x: &u8) {}
                    #[on(E::G, delete, delete)]
                    fn g(&self) {}
                    #[on(E::H, delet)]
                    fn h() {}
                    #[on(E::I, delete = true)]
                    async fn i<T>(self, (x, y): (u8, u8), z: u8) {}
                    #[on(E::J)]
                    const J: u8 = 0;
                }
            },
        );
        assert_errors(
            &out,
            &[
                "duplicate `name` key in `#[projection(..)]`",
                "unknown key `order` in `#[projection(..)]`; expected `name` or `key`",
                "`#[on]` names the event variant the method handles, with its enum",
                "`#[on(..)]` names the event variant the method handles, with its enum",
                "`#[on]` names the event variant the method handles, with its enum",
                "`#[on(D)]` names a variant without its enum",
                "`#[on(..)]` names the variant alone, without fields: write `#[on(E::F)]`",
                "duplicate `delete` key in `#[on(..)]`",
                "`#[on]` method `g` takes `&mut self`, found `&self`",
                "unknown flag `delet` in `#[on(..)]`: did you mean `delete`?",
                "`#[on]` method `h` must take `&mut self` first",
                "`#[on(..)]` takes flags, not keys with values: write `delete` alone",
                "`#[on]` method `i` takes `&mut self`, found `self`",
                "`#[on]` method `i` cannot be generic",
                "`#[on]` method `i` cannot be `async`",
                "`#[on]` parameters are plain names",
                "`#[on]` parameters borrow the event's fields: write `z: &u8`",
                "`#[on(..)]` marks a method that handles an event: put it on a `fn`",
            ],
        );
        // Beside the errors, a stub `View` (named as far as it could be read) so that
        // nothing else fails, and none of the generated checks.
        let out = out.to_string();
        assert!(out.contains("the #[projection] block has errors"));
        assert!(out.contains("const NAME : & 'static str = \"v\""));
        assert!(!out.contains("# [on"), "our attributes are stripped");
        assert!(!out.contains("__stored_names"));
    }

    #[test]
    fn a_variant_is_handled_once() {
        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                impl V {
                    #[on(E::A)]
                    fn a(&mut self) {}
                    #[on(E::B)]
                    #[on(E :: A, delete)]
                    fn b(&mut self) {}
                    // Another enum's variant of the same name is another variant.
                    #[on(F::A)]
                    fn c(&mut self) {}
                }
            },
        );
        assert_errors(
            &out,
            &["`E::A` is already handled by `a`: a view has one handler per variant"],
        );
    }

    #[test]
    fn a_block_without_handlers_is_rejected() {
        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                impl V {
                    fn helper(&self) {}
                }
            },
        );
        assert_errors(&out, &["this view handles no event"]);
    }

    #[test]
    fn only_an_inherent_impl_takes_the_attribute() {
        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                struct Summary { balance: u64 }
            },
        );
        assert_errors(
            &out,
            &[
                "`#[projection]` goes on a view type's `impl` block, not on a struct: put \
               `#[projection(..)]` on an `impl Summary { .. }` block",
            ],
        );
        // The struct itself is kept.
        assert!(out.to_string().contains("struct Summary"));

        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                fn summary() {}
            },
        );
        assert_errors(&out, &["not on a function"]);

        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                impl Update for Summary {
                    #[on(E::A)]
                    fn a(&mut self) {}
                }
            },
        );
        assert_errors(
            &out,
            &[
                "`#[projection]` goes on the view's own `impl Summary { .. }` block, not on a \
               trait impl",
            ],
        );
        // No stub: it could clash with the trait impl (`impl View for Summary`).
        assert!(!out.to_string().contains("block has errors"));

        let out = projection(
            quote!(name = "v"),
            parse_quote! {
                impl<T> Summary<T> {
                    #[on(E::A)]
                    fn a(&mut self) {}
                }
            },
        );
        assert_errors(&out, &["does not support generic impl blocks"]);
    }
}
