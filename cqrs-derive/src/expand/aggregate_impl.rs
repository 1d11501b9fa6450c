//! `#[aggregate_impl]` → the user's impl block (our attributes removed), `impl Dispatch`
//! with one `match` per kind, and a compile-time check that every variant is served.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl};

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
        cx.error(path, "`#[aggregate_impl]` goes on an inherent `impl Aggregate { .. }` block, not a trait impl");
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
                        cx.error(a, "`#[services]` is only meaningful on a parameter of a `#[handle]` method");
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
    let coverage = coverage(self_ty, &methods);
    quote!(#stripped #dispatch #coverage)
}

/// The impl block without `#[handle]`, `#[apply]` and `#[services]`.
fn strip(item: &ItemImpl) -> ItemImpl {
    let mut item = item.clone();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(func) = impl_item {
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

/// The match arm of one method: a pattern binding the fields it takes by name, and the call.
fn arm(m: &Method<'_>, enum_alias: &syn::Ident) -> TokenStream {
    let span = m.func.sig.ident.span();
    let variant = &m.variant;
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
    let rest = (m.kind == MethodKind::Apply).then(|| quote!(..));
    let pattern = quote_spanned!(span=> #enum_alias::#variant { #(#binds,)* #rest });
    let func = &m.func.sig.ident;
    let args = m.func.sig.inputs.iter().skip(1).filter_map(|input| {
        let FnArg::Typed(p) = input else { return None };
        if m.services.is_some_and(|s| std::ptr::eq(s, p)) {
            Some(quote_spanned!(p.span()=> __services))
        } else {
            let ident = m
                .fields
                .iter()
                .find(|f| matches!(&*p.pat, syn::Pat::Ident(pi) if pi.ident == f.ident))?;
            Some(ident.ident.to_token_stream())
        }
    });
    let call = quote_spanned!(span=> Self::#func(self, #(#args),*));
    match m.kind {
        MethodKind::Handle => {
            let call = if m.is_async {
                quote_spanned!(span=> #call.await)
            } else {
                call
            };
            quote_spanned! {span=>
                #pattern => ::cqrs_core::__private::into_handled::<Self, _, _>(#call),
            }
        }
        MethodKind::Apply => quote_spanned!(span=> #pattern => #call,),
    }
}

fn dispatch(self_ty: &syn::Type, methods: &[Method<'_>]) -> TokenStream {
    let cmd = syn::Ident::new("__Command", Span::mixed_site());
    let evt = syn::Ident::new("__Event", Span::mixed_site());
    let handle_arms = methods
        .iter()
        .filter(|m| m.kind == MethodKind::Handle)
        .map(|m| arm(m, &cmd));
    let apply_arms = methods
        .iter()
        .filter(|m| m.kind == MethodKind::Apply)
        .map(|m| arm(m, &evt));
    quote! {
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
                #[allow(non_camel_case_types)]
                type #cmd = <#self_ty as ::cqrs_core::Aggregate>::Command;
                let _ = __services;
                async move {
                    // Every variant has an arm: the `const` check below proves it at compile
                    // time with a message naming the missing variant.
                    #[allow(unreachable_patterns)]
                    match __command {
                        #(#handle_arms)*
                        _ => ::core::unreachable!(),
                    }
                }
            }

            #[inline]
            fn dispatch_apply(&mut self, __event: &<Self as ::cqrs_core::Aggregate>::Event) {
                #[allow(non_camel_case_types)]
                type #evt = <#self_ty as ::cqrs_core::Aggregate>::Event;
                #[allow(unreachable_patterns)]
                match __event {
                    #(#apply_arms)*
                    _ => ::core::unreachable!(),
                }
            }
        }
    }
}

/// A `const` that fails compilation, with the derive's message, for any variant of the
/// command or event enum that no method serves.
fn coverage(self_ty: &syn::Type, methods: &[Method<'_>]) -> TokenStream {
    let check = |kind: MethodKind, assoc: TokenStream| {
        let served = methods
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.variant.to_string());
        quote_spanned! {self_ty.span()=>
            {
                let __variants = <<#self_ty as ::cqrs_core::Aggregate>::#assoc
                    as ::cqrs_core::__private::Variants>::VARIANTS;
                let __served: &[&str] = &[#(#served),*];
                let mut __i = 0usize;
                while __i < __variants.len() {
                    let mut __found = false;
                    let mut __j = 0usize;
                    while __j < __served.len() {
                        if ::cqrs_core::__private::str_eq(__variants[__i].name, __served[__j]) {
                            __found = true;
                        }
                        __j += 1;
                    }
                    if !__found {
                        ::core::panic!("{}", __variants[__i].missing);
                    }
                    __i += 1;
                }
            }
        }
    };
    let commands = check(MethodKind::Handle, quote!(Command));
    let events = check(MethodKind::Apply, quote!(Event));
    quote! {
        const _: () = {
            #commands
            #events
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
