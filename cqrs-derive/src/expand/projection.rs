//! `#[projection]` → the view's impl block (our attributes removed) and `impl View`.
//!
//! The macro never sees the event enums: `#[on(BankEvent::Deposited)]` is a path. The
//! generated code names each enum through a type alias spanned at that path (a wrong path
//! is one rustc error, there) and uses it only through a local trait bounded on what
//! `#[derive(Event)]` implements (a type that is not an event enum is one error, there). It
//! matches `Alias::Deposited { balance, .. }` with the handler's parameters as the field
//! bindings (a wrong field name is rustc's error at the parameter).
//!
//! The stored type names a view handles are found once, at run time, from what the derive
//! generates: `Variants::VARIANTS` and `DomainEvent::EVENT_TYPES` list the variants in the
//! same (declaration) order, `aliases_of` gives a current name's earlier ones, and the
//! names of `STORED_TYPES` that are neither are removed types. A `const` check per handled
//! variant rejects a view whose event enums share a stored type name: the store routes
//! events to a view by type name alone.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ImplItem, Item, ItemImpl, ReturnType};

use crate::ast::Handler;
use crate::attr::{self, ProjectionArgs};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, item: Item) -> TokenStream {
    let cx = Ctxt::default();
    let args = attr::projection_args(&cx, args);
    let item = match item {
        Item::Impl(item) => item,
        other => {
            not_an_impl(&cx, &other);
            let errors = cx.into_compile_errors();
            return quote!(#other #errors);
        }
    };
    let inherent = item.trait_.is_none() && item.generics.params.is_empty();
    if let Some((_, path, _)) = &item.trait_ {
        let self_ty = crate::util::type_to_string(&item.self_ty);
        cx.error(
            path,
            format!(
                "`#[projection]` goes on the view's own `impl {self_ty} {{ .. }}` block, not on \
                 a trait impl: it implements `View` itself"
            ),
        );
    }
    if !item.generics.params.is_empty() {
        cx.error(
            &item.generics,
            "`#[projection]` does not support generic impl blocks: a view is one concrete type, \
             stored under one name",
        );
    }

    let mut handlers = Vec::new();
    let mut marked = false;
    for impl_item in &item.items {
        let ImplItem::Fn(func) = impl_item else {
            for a in impl_item_attrs(impl_item).iter().filter(|a| attr::is_on(a)) {
                marked = true;
                cx.error(
                    a,
                    "`#[on(..)]` marks a method that handles an event: put it on a `fn`",
                );
            }
            continue;
        };
        if !func.attrs.iter().any(attr::is_on) {
            continue;
        }
        marked = true;
        let ons = attr::on(&cx, &func.attrs);
        let Some(fields) = check::on_method(&cx, func) else {
            continue;
        };
        for on in ons {
            let mut enum_path = on.path.clone();
            let variant = enum_path
                .segments
                .pop()
                .expect("a path has a segment")
                .into_value()
                .ident;
            // `::a::b::` from the pop: drop the trailing `::`.
            enum_path.segments.pop_punct();
            handlers.push(Handler {
                func,
                path: on.path,
                enum_path,
                variant,
                delete: on.delete,
                fields: fields
                    .iter()
                    .map(|p| crate::ast::Param {
                        ident: p.ident.clone(),
                    })
                    .collect(),
            });
        }
    }
    if !marked {
        cx.error(
            &item.self_ty,
            "this view handles no event: mark each method that updates it with \
             `#[on(EventEnum::Variant)]`",
        );
    }
    check::one_handler_per_variant(&cx, &handlers);

    let stripped = strip(&item);
    if cx.has_errors() {
        let stub = inherent.then(|| stub(&item.self_ty, &args));
        let errors = cx.into_compile_errors();
        return quote!(#stripped #stub #errors);
    }
    let view = view_impl(&item.self_ty, &args, &handlers);
    quote!(#stripped #view)
}

/// The error for `#[projection]` on anything but an `impl` block, at the item's keyword
/// and name.
fn not_an_impl(cx: &Ctxt, item: &Item) {
    let (head, what, ty) = match item {
        Item::Struct(s) => {
            let (kw, ident) = (&s.struct_token, &s.ident);
            (quote!(#kw #ident), "a struct", Some(ident))
        }
        Item::Enum(e) => {
            let (kw, ident) = (&e.enum_token, &e.ident);
            (quote!(#kw #ident), "an enum", Some(ident))
        }
        Item::Fn(f) => {
            let (kw, ident) = (&f.sig.fn_token, &f.sig.ident);
            (quote!(#kw #ident), "a function", None)
        }
        Item::Trait(t) => {
            let (kw, ident) = (&t.trait_token, &t.ident);
            (quote!(#kw #ident), "a trait", None)
        }
        Item::Mod(m) => {
            let (kw, ident) = (&m.mod_token, &m.ident);
            (quote!(#kw #ident), "a module", None)
        }
        other => (other.to_token_stream(), "this item", None),
    };
    let fix = match ty {
        Some(ty) => format!(
            "put `#[projection(..)]` on an `impl {ty} {{ .. }}` block holding the \
             `#[on(EventEnum::Variant)]` methods (and derive `Default`, `Serialize` and \
             `Deserialize` on `{ty}`)"
        ),
        None => "put it on the `impl ViewType { .. }` block of the view, holding its \
                 `#[on(EventEnum::Variant)]` methods"
            .to_owned(),
    };
    cx.error(
        head,
        format!("`#[projection]` goes on a view type's `impl` block, not on {what}: {fix}"),
    );
}

fn impl_item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(c) => &c.attrs,
        ImplItem::Fn(f) => &f.attrs,
        ImplItem::Type(t) => &t.attrs,
        ImplItem::Macro(m) => &m.attrs,
        _ => &[],
    }
}

/// The impl block without `#[on]`.
fn strip(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for impl_item in &mut item.items {
        let attrs = match impl_item {
            ImplItem::Const(c) => &mut c.attrs,
            ImplItem::Fn(f) => {
                // Tuple fields bind as `_0`, `_1`, …: names the DSL asks for.
                if f.attrs.iter().any(attr::is_on) {
                    f.attrs
                        .push(syn::parse_quote!(#[allow(clippy::just_underscores_and_digits)]));
                }
                &mut f.attrs
            }
            ImplItem::Type(t) => &mut t.attrs,
            ImplItem::Macro(m) => &mut m.attrs,
            _ => continue,
        };
        attrs.retain(|a| !attr::is_on(a));
    }
    item
}

/// Our own names, invisible to (and unshadowable by) the user's code.
fn local(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// [`local`], reported at `at`.
fn local_at(name: &str, at: Span) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site().located_at(at))
}

/// The handlers of one event enum, in the order first met.
struct Group<'h, 'a> {
    enum_path: &'h syn::Path,
    /// The type alias the generated code names the enum by.
    alias: syn::Ident,
    handlers: Vec<&'h Handler<'a>>,
}

fn groups<'h, 'a>(handlers: &'h [Handler<'a>]) -> Vec<Group<'h, 'a>> {
    let mut groups: Vec<Group<'h, 'a>> = Vec::new();
    let key = |p: &syn::Path| p.to_token_stream().to_string();
    for h in handlers {
        match groups
            .iter_mut()
            .find(|g| key(g.enum_path) == key(&h.enum_path))
        {
            Some(g) => g.handlers.push(h),
            None => {
                let alias = local_at(&format!("__CqrsEvents{}", groups.len()), h.enum_path.span());
                groups.push(Group {
                    enum_path: &h.enum_path,
                    alias,
                    handlers: vec![h],
                });
            }
        }
    }
    groups
}

/// The match arm of one handler: a pattern binding the fields it takes by name (by
/// reference), the call on the document (created from `Default` if absent), and for
/// `delete`, the removal after a successful call.
fn arm(h: &Handler<'_>, alias: &syn::Ident, self_ty: &syn::Type) -> TokenStream {
    let span = h.func.sig.ident.span();
    let variant = &h.variant;
    let view = local("__view");
    let doc = local("__doc");
    let outcome = local("__outcome");
    let result_trait = local("__CqrsHandlerResult");
    let create = local("__cqrs_doc");
    let binds = h.fields.iter().map(|p| {
        let ident = &p.ident;
        let name = ident.to_string();
        match name.strip_prefix('_').and_then(|n| n.parse::<u32>().ok()) {
            Some(index) => {
                let member = syn::Index {
                    index,
                    span: ident.span(),
                };
                quote!(#member: #ident)
            }
            None => quote!(#ident),
        }
    });
    let args = h.fields.iter().map(|p| &p.ident);
    let pattern = quote_spanned!(variant.span()=> #alias::#variant { #(#binds,)* .. });
    let func = &h.func.sig.ident;
    let call = quote_spanned!(span=> <#self_ty>::#func(#doc, #(#args),*));
    // `<_ as Trait>` with `_` at the return type: a return type that is neither `()` nor a
    // `Result<(), impl Display>` is reported there, with the trait's message.
    let ret_span = match &h.func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => span,
    };
    let infer = quote_spanned!(ret_span=> _);
    let delete = h.delete.then(|| {
        quote! {
            if #outcome.is_ok() {
                *#view = ::core::option::Option::None;
            }
        }
    });
    quote! {
        #pattern => {
            let #doc: &mut #self_ty = #create::<#self_ty>(#view);
            let #outcome = <#infer as #result_trait>::__into_result(#call);
            #delete
            #outcome
        }
    }
}

/// `<Alias as __CqrsEventEnum>`, spanned at the enum's path: every use of an event enum
/// goes through this one bound, so a type that is not an event enum is one error, there.
fn event_enum(g: &Group<'_, '_>) -> TokenStream {
    let (alias, events_trait) = (&g.alias, local("__CqrsEventEnum"));
    quote_spanned!(g.enum_path.span()=> <#alias as #events_trait>)
}

/// Compile-time check that the current name of `h`'s variant (of `group`) is no stored name
/// of another enum of the view (`others`).
fn collision_checks(
    h: &Handler<'_>,
    group: &Group<'_, '_>,
    others: &[&Group<'_, '_>],
) -> TokenStream {
    let current = local("__cqrs_current_name");
    let name = h.variant.to_string();
    let events = event_enum(group);
    let checks = others.iter().map(|other| {
        let other_events = event_enum(other);
        let message = format!(
            "this view handles `{}`, whose stored type name is also one of `{}`'s: events reach \
             a view by their stored type name alone, so their events could not be told apart; \
             rename one with `#[event(name = \"..\")]`",
            h.path.to_token_stream().to_string().replace(' ', ""),
            other
                .enum_path
                .to_token_stream()
                .to_string()
                .replace(' ', ""),
        );
        let found = quote! {
            #current(#events::__VARIANTS, #events::__CURRENT, #name)
        };
        quote_spanned! {h.path.span()=>
            const _: () = if let ::core::option::Option::Some(__name) = #found {
                if ::cqrs_core::__private::contains(#other_events::__STORED, __name) {
                    ::core::panic!("{}", #message);
                }
            };
        }
    });
    quote!(#(#checks)*)
}

fn view_impl(self_ty: &syn::Type, args: &ProjectionArgs, handlers: &[Handler<'_>]) -> TokenStream {
    let groups = groups(handlers);
    let name = args.name.as_ref().map(|n| n.value()).unwrap_or_default();
    let view = local("__view");
    let event = local("__event");
    let codec = local("__codec");
    let event_type = local("__event_type");
    let result = local("__result");
    let decoded = local("__decoded");
    let codec_ty = local("__C");
    let current = local("__cqrs_current_name");
    let events_trait = local("__CqrsEventEnum");
    let result_trait = local("__CqrsHandlerResult");
    let key_trait = local("__CqrsKey");
    let create = local("__cqrs_doc");

    let aliases = groups.iter().map(|g| {
        let (alias, path) = (&g.alias, g.enum_path);
        quote_spanned!(path.span()=> type #alias = #path;)
    });
    // Per enum, its handled stored names, computed once.
    let names_fns: Vec<syn::Ident> = (0..groups.len())
        .map(|i| local(&format!("__cqrs_names_{i}")))
        .collect();
    let name_lists = groups.iter().zip(&names_fns).map(|(g, names_fn)| {
        let events = event_enum(g);
        let variants = g.handlers.iter().map(|h| h.variant.to_string());
        let collect = quote!(#events::__stored_names(&[#(#variants),*]));
        quote! {
            fn #names_fn() -> &'static [&'static str] {
                static NAMES: ::std::sync::OnceLock<::std::vec::Vec<&'static str>> =
                    ::std::sync::OnceLock::new();
                NAMES.get_or_init(|| #collect)
            }
        }
    });
    let handled = |i: usize| {
        let names_fn = &names_fns[i];
        quote!(#names_fn().contains(&#event_type))
    };
    let handles_any = (0..groups.len()).map(handled);
    let decode_groups = groups.iter().enumerate().map(|(i, g)| {
        let alias = &g.alias;
        let events = event_enum(g);
        let test = handled(i);
        let arms = g.handlers.iter().map(|h| arm(h, alias, self_ty));
        quote! {
            if #test {
                let mut #result: ::core::result::Result<(), ::cqrs_core::projection::ProjectionError> =
                    ::core::result::Result::Ok(());
                #events::__decode(#event, #codec, &mut |#decoded: #alias| {
                    if #result.is_ok() {
                        #result = match &#decoded {
                            #(#arms)*
                            #[allow(unreachable_patterns)]
                            _ => ::core::result::Result::Ok(()),
                        };
                    }
                })?;
                return #result;
            }
        }
    });
    let checks = groups.iter().flat_map(|g| {
        let others: Vec<&Group<'_, '_>> = groups.iter().filter(|o| !std::ptr::eq(*o, g)).collect();
        g.handlers
            .iter()
            .map(move |h| collision_checks(h, g, &others))
            .collect::<Vec<_>>()
    });
    let key = args.key.as_ref().map(|path| {
        let at = path.span();
        let infer = quote_spanned!(at=> _);
        let key_fn = quote_spanned! {at=>
            {
                let __key_fn: fn(&::cqrs_core::RecordedEvent) -> _ = #path;
                __key_fn
            }
        };
        quote! {
            fn key(
                #event: &::cqrs_core::RecordedEvent,
            ) -> ::core::result::Result<::std::string::String, ::cqrs_core::projection::ProjectionError> {
                <#infer as #key_trait>::__into_key((#key_fn)(#event))
            }
        }
    });
    let key_support = args.key.is_some().then(|| {
        quote! {
            #[diagnostic::on_unimplemented(
                message = "a projection's `key` function cannot return `{Self}`",
                label = "this function returns `{Self}`",
                note = "`key = function` takes `fn(&RecordedEvent) -> String` or `fn(&RecordedEvent) -> Result<String, ProjectionError>`"
            )]
            trait #key_trait {
                fn __into_key(
                    self,
                ) -> ::core::result::Result<::std::string::String, ::cqrs_core::projection::ProjectionError>;
            }

            #[diagnostic::do_not_recommend]
            impl #key_trait for ::std::string::String {
                #[inline]
                fn __into_key(
                    self,
                ) -> ::core::result::Result<::std::string::String, ::cqrs_core::projection::ProjectionError> {
                    ::core::result::Result::Ok(self)
                }
            }

            #[diagnostic::do_not_recommend]
            impl #key_trait
                for ::core::result::Result<::std::string::String, ::cqrs_core::projection::ProjectionError>
            {
                #[inline]
                fn __into_key(
                    self,
                ) -> ::core::result::Result<::std::string::String, ::cqrs_core::projection::ProjectionError> {
                    self
                }
            }
        }
    });

    quote! {
        const _: () = {
            #(#[allow(non_camel_case_types)] #aliases)*

            #[diagnostic::on_unimplemented(
                message = "an `#[on]` handler cannot return `{Self}`",
                label = "this handler returns `{Self}`",
                note = "a handler returns nothing, or `Result<(), E>` where `E: Display` (an `Err` fails the projection with `ProjectionError::Handler`)"
            )]
            trait #result_trait {
                fn __into_result(
                    self,
                ) -> ::core::result::Result<(), ::cqrs_core::projection::ProjectionError>;
            }

            #[diagnostic::do_not_recommend]
            impl #result_trait for () {
                #[inline]
                fn __into_result(
                    self,
                ) -> ::core::result::Result<(), ::cqrs_core::projection::ProjectionError> {
                    ::core::result::Result::Ok(())
                }
            }

            #[diagnostic::do_not_recommend]
            impl<__E: ::core::fmt::Display> #result_trait for ::core::result::Result<(), __E> {
                #[inline]
                fn __into_result(
                    self,
                ) -> ::core::result::Result<(), ::cqrs_core::projection::ProjectionError> {
                    self.map_err(|__e| {
                        ::cqrs_core::projection::ProjectionError::Handler(
                            ::std::string::ToString::to_string(&__e),
                        )
                    })
                }
            }

            #key_support

            /// The document, created from `Default` if absent. Generic over the view so
            /// that a view without `Default` is reported once, at its `impl View`.
            #[inline]
            fn #create<__V: ::cqrs_core::projection::View>(
                __view: &mut ::core::option::Option<__V>,
            ) -> &mut __V {
                __view.get_or_insert_with(<__V as ::core::default::Default>::default)
            }

            /// An event enum, as `#[derive(Event)]` makes one: every use of one goes through
            /// this trait, so that a type that is not one is a single error.
            #[diagnostic::on_unimplemented(
                message = "`{Self}` is not an event enum",
                label = "`#[on(..)]` names a variant of `{Self}`, which does not derive `Event`",
                note = "a view handles the variants of event enums: `#[derive(Event)]` on the enum"
            )]
            trait #events_trait: ::core::marker::Sized {
                const __VARIANTS: &'static [::cqrs_core::__private::VariantInfo];
                const __CURRENT: &'static [&'static str];
                const __STORED: &'static [&'static str];

                /// The stored names of `variants` (current names and aliases), and the
                /// removed types (which may upcast to them).
                fn __stored_names(__variants: &[&str]) -> ::std::vec::Vec<&'static str>;

                fn __decode<__C: ::cqrs_core::Codec, __F: ::core::ops::FnMut(Self)>(
                    __event: &::cqrs_core::RecordedEvent,
                    __codec: &__C,
                    __sink: &mut __F,
                ) -> ::core::result::Result<(), ::cqrs_core::EventDecodeError>;
            }

            // No supertraits and this blanket impl hidden from diagnostics: a type that is
            // not an event enum is reported as not implementing the trait above, once,
            // with its message.
            #[diagnostic::do_not_recommend]
            impl<__E: ::cqrs_core::DomainEvent + ::cqrs_core::__private::Variants> #events_trait
                for __E
            {
                const __VARIANTS: &'static [::cqrs_core::__private::VariantInfo] =
                    <__E as ::cqrs_core::__private::Variants>::VARIANTS;
                const __CURRENT: &'static [&'static str] =
                    <__E as ::cqrs_core::DomainEvent>::EVENT_TYPES;
                const __STORED: &'static [&'static str] =
                    <__E as ::cqrs_core::DomainEvent>::STORED_TYPES;

                // `VARIANTS` and `EVENT_TYPES` list the variants in the same order; a name of
                // `STORED_TYPES` that is neither a current name nor an alias is a removed type.
                fn __stored_names(__variants: &[&str]) -> ::std::vec::Vec<&'static str> {
                    let __aliases = <__E as ::cqrs_core::DomainEvent>::aliases_of;
                    let mut __names = ::std::vec::Vec::new();
                    for (__variant, __name) in Self::__VARIANTS.iter().zip(Self::__CURRENT) {
                        if __variants.contains(&__variant.name) {
                            __names.push(*__name);
                            __names.extend_from_slice(__aliases(__name));
                        }
                    }
                    for __stored in Self::__STORED {
                        if !Self::__CURRENT.contains(__stored)
                            && !Self::__CURRENT.iter().any(|__n| __aliases(__n).contains(__stored))
                        {
                            __names.push(*__stored);
                        }
                    }
                    __names
                }

                #[inline]
                fn __decode<__C: ::cqrs_core::Codec, __F: ::core::ops::FnMut(Self)>(
                    __event: &::cqrs_core::RecordedEvent,
                    __codec: &__C,
                    __sink: &mut __F,
                ) -> ::core::result::Result<(), ::cqrs_core::EventDecodeError> {
                    __event.decode_with::<Self, __C, __F>(__codec, __sink)
                }
            }

            /// The current stored name of `variant`, if there is such a variant.
            #[allow(dead_code)]
            const fn #current(
                __variants: &[::cqrs_core::__private::VariantInfo],
                __names: &'static [&'static str],
                __variant: &str,
            ) -> ::core::option::Option<&'static str> {
                let mut __i = 0;
                while __i < __variants.len() && __i < __names.len() {
                    if ::cqrs_core::__private::str_eq(__variants[__i].name, __variant) {
                        return ::core::option::Option::Some(__names[__i]);
                    }
                    __i += 1;
                }
                ::core::option::Option::None
            }

            #(#name_lists)*

            #(#checks)*

            #[automatically_derived]
            impl ::cqrs_core::projection::View for #self_ty {
                const NAME: &'static str = #name;

                fn handles_type(#event_type: &str) -> bool {
                    #(#handles_any)||*
                }

                #key

                #[allow(clippy::unit_arg, clippy::let_unit_value, clippy::needless_return)]
                fn apply_event<#codec_ty: ::cqrs_core::Codec>(
                    #view: &mut ::core::option::Option<Self>,
                    #event: &::cqrs_core::RecordedEvent,
                    #codec: &#codec_ty,
                ) -> ::core::result::Result<(), ::cqrs_core::projection::ProjectionError> {
                    let #event_type: &str = &#event.event_type;
                    #(#decode_groups)*
                    ::core::result::Result::Ok(())
                }
            }
        };
    }
}

/// An `impl View` that compiles, emitted beside the errors so they do not cascade.
fn stub(self_ty: &syn::Type, args: &ProjectionArgs) -> TokenStream {
    let name = args.name.as_ref().map(|n| n.value()).unwrap_or_default();
    quote! {
        #[automatically_derived]
        #[allow(unreachable_code, unused_variables)]
        impl ::cqrs_core::projection::View for #self_ty {
            const NAME: &'static str = #name;

            fn handles_type(__event_type: &str) -> bool {
                false
            }

            fn apply_event<__C: ::cqrs_core::Codec>(
                __view: &mut ::core::option::Option<Self>,
                __event: &::cqrs_core::RecordedEvent,
                __codec: &__C,
            ) -> ::core::result::Result<(), ::cqrs_core::projection::ProjectionError> {
                ::core::unimplemented!("the #[projection] block has errors")
            }
        }
    }
}
