//! `#[aggregate_impl]` → the user's impl block (our attributes removed), `impl Dispatch`
//! with one `match` per kind, and compile-time checks that every variant is served.
//!
//! The matches live in impls of local traits for `<Agg as Aggregate>::Command` and
//! `::Event`, where `Self::Variant { .. }` names a variant. Each trait also declares an
//! associated type per variant its methods claim, whose value is an array type whose length
//! is a `const` that panics, with our message, when the enum has no such variant (or the
//! handler misses a field). rustc resolves `Self::Variant` to that associated type only
//! when the variant does not exist, and then it is an error type: the one error reported is
//! ours, and nothing cascades. The same holds when the command or event type is itself an
//! error type (a failed `#[derive(Aggregate)]`).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, ReturnType};

use crate::ast::Method;
use crate::attr::{self, MethodKind};
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, item: ItemImpl) -> TokenStream {
    let cx = Ctxt::default();
    if !args.is_empty() {
        cx.error(
            &args,
            "`#[aggregate_impl]` takes no arguments: the command, event and error types are \
             given by `#[aggregate(..)]` on the aggregate type",
        );
    }
    if let Some((_, path, _)) = &item.trait_ {
        let self_ty = crate::util::type_to_string(&item.self_ty);
        cx.error(
            path,
            format!(
                "`#[aggregate_impl]` goes on the aggregate's own `impl {self_ty} {{ .. }}` \
                 block, not on a trait impl"
            ),
        );
    }
    if !item.generics.params.is_empty() {
        cx.error(
            &item.generics,
            "`#[aggregate_impl]` does not support generic impl blocks",
        );
    }

    let mut methods = Vec::new();
    for impl_item in &item.items {
        let ImplItem::Fn(func) = impl_item else {
            continue;
        };
        if let Some(found) = attr::method(&cx, &func.attrs) {
            if let Some(m) = check::method(&cx, func, found) {
                methods.push(m);
            }
        } else {
            for input in &func.sig.inputs {
                if let FnArg::Typed(p) = input {
                    for a in p.attrs.iter().filter(|a| a.path().is_ident(attr::SERVICES)) {
                        cx.error(
                            a,
                            "`#[services]` marks a parameter of a `#[handle]` method; this \
                             method is not one: remove `#[services]`, or mark the method \
                             `#[handle]`",
                        );
                    }
                }
            }
        }
    }
    check::one_method_per_variant(&cx, &methods);

    let stripped = strip(&item);
    let self_ty = &item.self_ty;
    if cx.has_errors() {
        let stub = stub(self_ty);
        let errors = cx.into_compile_errors();
        return quote!(#stripped #stub #errors);
    }
    let dispatch = dispatch(self_ty, &methods);
    quote!(#stripped #dispatch)
}

/// The impl block without `#[handle]`, `#[apply]` and `#[services]`.
fn strip(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(func) = impl_item {
            // Tuple fields bind as `_0`, `_1`, …: names the DSL asks for, so clippy's lint
            // against such names must not fire on the user's handler.
            if func.attrs.iter().any(attr::is_ours) {
                func.attrs
                    .push(syn::parse_quote!(#[allow(clippy::just_underscores_and_digits)]));
            }
            func.attrs.retain(|a| !attr::is_ours(a));
            for input in &mut func.sig.inputs {
                if let FnArg::Typed(p) = input {
                    p.attrs.retain(|a| !attr::is_ours(a));
                }
            }
        }
    }
    item
}

/// Our own names, invisible to (and unshadowable by) the user's code.
fn local(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// The parameter names a method binds from its variant, as the derives spell fields.
fn param_names(m: &Method<'_>) -> Vec<String> {
    m.fields.iter().map(|p| p.ident.to_string()).collect()
}

/// The match arm of one method: a pattern binding the fields it takes by name, and the call.
fn arm(m: &Method<'_>, self_ty: &syn::Type) -> TokenStream {
    let span = m.func.sig.ident.span();
    let variant = &m.variant;
    let agg = local("__agg");
    let services = local("__services");
    let binds = m.fields.iter().map(|p| {
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
    // `..` always: a handler missing a field is reported by the check in `claim`, with
    // a message naming the field, rather than by rustc's pattern error.
    let pattern = quote_spanned!(span=> Self::#variant { #(#binds,)* .. });
    let func = &m.func.sig.ident;
    let args = m.func.sig.inputs.iter().skip(1).filter_map(|input| {
        let FnArg::Typed(p) = input else { return None };
        if m.services.is_some_and(|s| std::ptr::eq(s, p)) {
            Some(quote_spanned!(p.span()=> #services))
        } else {
            let field = m
                .fields
                .iter()
                .find(|f| matches!(&*p.pat, syn::Pat::Ident(pi) if pi.ident == f.ident))?;
            Some(field.ident.to_token_stream())
        }
    });
    let call = quote_spanned!(span=> <#self_ty>::#func(#agg, #(#args),*));
    match m.kind {
        MethodKind::Handle => {
            let call = if m.is_async {
                quote_spanned!(span=> #call.await)
            } else {
                call
            };
            // `<_ as IntoHandled<..>>` with `_` at the return type: a return type that is not
            // events is reported there, with `IntoHandled`'s message.
            let ret_span = match &m.func.sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => span,
            };
            let ret = local("__ret");
            let infer = quote_spanned!(ret_span=> _);
            quote_spanned! {span=>
                #pattern => {
                    let #ret = #call;
                    <#infer as ::cqrs_core::__private::IntoHandled<
                        <#self_ty as ::cqrs_core::Aggregate>::Event,
                        <#self_ty as ::cqrs_core::Aggregate>::Error,
                        _,
                    >>::into_handled(#ret)
                }
            }
        }
        MethodKind::Apply => quote_spanned!(span=> #pattern => #call,),
    }
}

/// The associated type named after the variant a method serves (see the module docs), and
/// the checks its length runs: the variant exists, and a handler takes all its fields.
fn claim(m: &Method<'_>, self_ty: &syn::Type) -> TokenStream {
    let variant = &m.variant;
    let name = variant.to_string();
    let method = &m.func.sig.ident;
    let (assoc, noun, attr) = match m.kind {
        MethodKind::Handle => (quote!(Command), "command", "handle"),
        MethodKind::Apply => (quote!(Event), "event", "apply"),
    };
    let unknown = if m.named_explicitly {
        format!(
            "`#[{attr}({name})]` on `{method}` names `{name}`, which is not a variant of the \
             aggregate's {noun} enum: name one of its variants"
        )
    } else {
        format!(
            "`#[{attr}]` method `{method}` serves the {noun} variant `{name}` (its name in \
             CamelCase), which the aggregate's {noun} enum does not have: rename the method \
             after a variant, or name the variant with `#[{attr}(Variant)]`"
        )
    };
    let id = local("__Id");
    let exists = quote_spanned! {variant.span()=>
        if !::cqrs_core::__private::variant_known(
            <<#self_ty as ::cqrs_core::Aggregate>::#assoc as ::cqrs_core::__private::Variants>::VARIANTS,
            #name,
        ) {
            ::core::panic!("{}", #unknown);
        }
    };
    let fields = (m.kind == MethodKind::Handle).then(|| {
        let params = param_names(m);
        quote_spanned! {method.span()=>
            if let ::core::option::Option::Some(__message) = ::cqrs_core::__private::missing_field(
                <<#self_ty as ::cqrs_core::Aggregate>::Command>::__CQRS_HANDLER_FIELDS,
                #name,
                &[#(#params),*],
            ) {
                ::core::panic!("{}", __message);
            }
        }
    });
    // Inline rather than a named `const`: a named one adds an "erroneous constant
    // encountered" note pointing at `#[aggregate_impl]`.
    quote! {
        type #variant = <[(); { #exists #fields 0 }] as #id>::Out;
    }
}

fn dispatch(self_ty: &syn::Type, methods: &[Method<'_>]) -> TokenStream {
    let handle_trait = local("__Handle");
    let apply_trait = local("__Apply");
    let handle_fn = local("__handle");
    let apply_fn = local("__apply");
    let id = local("__Id");
    let agg = local("__agg");
    let services = local("__services");

    let handles: Vec<&Method<'_>> = methods
        .iter()
        .filter(|m| m.kind == MethodKind::Handle)
        .collect();
    let applies: Vec<&Method<'_>> = methods
        .iter()
        .filter(|m| m.kind == MethodKind::Apply)
        .collect();
    let handle_variants = handles.iter().map(|m| &m.variant);
    let apply_variants = applies.iter().map(|m| &m.variant);
    let handle_claims = handles.iter().map(|m| claim(m, self_ty));
    let apply_claims = applies.iter().map(|m| claim(m, self_ty));
    let handle_arms = handles.iter().map(|m| arm(m, self_ty));
    let apply_arms = applies.iter().map(|m| arm(m, self_ty));
    let coverage = |kind: MethodKind, served: &[&Method<'_>]| {
        let assoc = match kind {
            MethodKind::Handle => quote!(Command),
            MethodKind::Apply => quote!(Event),
        };
        let served = served.iter().map(|m| m.variant.to_string());
        quote_spanned! {self_ty.span()=>
            const _: () = if let ::core::option::Option::Some(__message) = ::cqrs_core::__private::uncovered(
                <<#self_ty as ::cqrs_core::Aggregate>::#assoc
                    as ::cqrs_core::__private::Variants>::VARIANTS,
                &[#(#served),*],
            ) {
                ::core::panic!("{}", __message);
            };
        }
    };
    let handle_coverage = coverage(MethodKind::Handle, &handles);
    let apply_coverage = coverage(MethodKind::Apply, &applies);

    quote! {
        const _: () = {
            #[allow(dead_code)]
            trait #id {
                type Out: ?::core::marker::Sized;
            }
            impl<__T: ?::core::marker::Sized> #id for __T {
                type Out = __T;
            }

            #[allow(dead_code, non_camel_case_types)]
            trait #handle_trait {
                #(type #handle_variants: ?::core::marker::Sized;)*
                fn #handle_fn<'__a>(
                    self,
                    #agg: &'__a #self_ty,
                    #services: &'__a <#self_ty as ::cqrs_core::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        ::std::vec::Vec<<#self_ty as ::cqrs_core::Aggregate>::Event>,
                        <#self_ty as ::cqrs_core::Aggregate>::Error,
                    >,
                > + ::core::marker::Send + '__a;
            }

            impl #handle_trait for <#self_ty as ::cqrs_core::Aggregate>::Command {
                #(#handle_claims)*

                #[inline]
                fn #handle_fn<'__a>(
                    self,
                    #agg: &'__a #self_ty,
                    #services: &'__a <#self_ty as ::cqrs_core::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        ::std::vec::Vec<<#self_ty as ::cqrs_core::Aggregate>::Event>,
                        <#self_ty as ::cqrs_core::Aggregate>::Error,
                    >,
                > + ::core::marker::Send + '__a {
                    let _ = (&#agg, &#services);
                    async move {
                        // Every variant has an arm: the `const` checks prove it at compile
                        // time with a message naming the missing variant.
                        #[allow(unreachable_patterns)]
                        match self {
                            #(#handle_arms)*
                            _ => ::core::unreachable!(),
                        }
                    }
                }
            }

            #[allow(dead_code, non_camel_case_types)]
            trait #apply_trait {
                #(type #apply_variants: ?::core::marker::Sized;)*
                fn #apply_fn(&self, #agg: &mut #self_ty);
            }

            impl #apply_trait for <#self_ty as ::cqrs_core::Aggregate>::Event {
                #(#apply_claims)*

                #[inline]
                fn #apply_fn(&self, #agg: &mut #self_ty) {
                    let _ = &#agg;
                    #[allow(unreachable_patterns)]
                    match self {
                        #(#apply_arms)*
                        _ => ::core::unreachable!(),
                    }
                }
            }

            #[automatically_derived]
            impl ::cqrs_core::__private::Dispatch for #self_ty {
                #[inline]
                fn dispatch_handle<'__a>(
                    &'__a self,
                    __command: <Self as ::cqrs_core::Aggregate>::Command,
                    __services: &'__a <Self as ::cqrs_core::Aggregate>::Services,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<
                        ::std::vec::Vec<<Self as ::cqrs_core::Aggregate>::Event>,
                        <Self as ::cqrs_core::Aggregate>::Error,
                    >,
                > + ::core::marker::Send + '__a {
                    <<Self as ::cqrs_core::Aggregate>::Command as #handle_trait>::#handle_fn(
                        __command, self, __services,
                    )
                }

                #[inline]
                fn dispatch_apply(&mut self, __event: &<Self as ::cqrs_core::Aggregate>::Event) {
                    <<Self as ::cqrs_core::Aggregate>::Event as #apply_trait>::#apply_fn(
                        __event, self,
                    )
                }
            }

            #handle_coverage
            #apply_coverage
        };
    }
}

/// An `impl Dispatch` that compiles, emitted beside the errors so they do not cascade.
fn stub(self_ty: &syn::Type) -> TokenStream {
    quote! {
        #[automatically_derived]
        #[allow(unreachable_code, unused_variables)]
        impl ::cqrs_core::__private::Dispatch for #self_ty {
            fn dispatch_handle<'__a>(
                &'__a self,
                __command: <Self as ::cqrs_core::Aggregate>::Command,
                __services: &'__a <Self as ::cqrs_core::Aggregate>::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<Self as ::cqrs_core::Aggregate>::Event>,
                    <Self as ::cqrs_core::Aggregate>::Error,
                >,
            > + ::core::marker::Send + '__a {
                async move { ::core::unimplemented!("the #[aggregate_impl] block has errors") }
            }

            fn dispatch_apply(&mut self, __event: &<Self as ::cqrs_core::Aggregate>::Event) {
                ::core::unimplemented!("the #[aggregate_impl] block has errors")
            }
        }
    }
}
