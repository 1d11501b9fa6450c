//! Our own view of the macro inputs, borrowing the `syn` nodes for spans.

use syn::{Data, DeriveInput, Fields, Ident, Member, Type};

use crate::ctxt::Ctxt;

/// A command or event enum.
pub(crate) struct Enum<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) original: &'a DeriveInput,
    pub(crate) variants: Vec<Variant<'a>>,
}

pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) original: &'a syn::Variant,
    pub(crate) fields: Vec<Field<'a>>,
    /// Position among the variants, as serde counts them.
    pub(crate) index: u32,
}

pub(crate) struct Field<'a> {
    pub(crate) member: Member,
    pub(crate) ty: &'a Type,
    pub(crate) original: &'a syn::Field,
}

impl<'a> Enum<'a> {
    /// `what` is "an event" or "a command", for messages.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput, derive: &str) -> Option<Self> {
        let Data::Enum(data) = &input.data else {
            cx.error(
                &input.ident,
                format!(
                    "`#[derive({derive})]` applies to an enum, one variant per {}",
                    derive.to_lowercase()
                ),
            );
            return None;
        };
        if !input.generics.params.is_empty() {
            cx.error(
                &input.generics,
                format!("`#[derive({derive})]` does not support generic enums; use concrete types"),
            );
        }
        let variants = data
            .variants
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let fields = match &v.fields {
                    Fields::Named(named) => named
                        .named
                        .iter()
                        .map(|f| Field {
                            member: Member::Named(f.ident.clone().expect("named field")),
                            ty: &f.ty,
                            original: f,
                        })
                        .collect(),
                    Fields::Unnamed(unnamed) => unnamed
                        .unnamed
                        .iter()
                        .enumerate()
                        .map(|(i, f)| Field {
                            member: Member::Unnamed(i.into()),
                            ty: &f.ty,
                            original: f,
                        })
                        .collect(),
                    Fields::Unit => Vec::new(),
                };
                Variant {
                    ident: &v.ident,
                    original: v,
                    fields,
                    index: index as u32,
                }
            })
            .collect();
        Some(Self {
            ident: &input.ident,
            original: input,
            variants,
        })
    }
}

impl Field<'_> {
    /// The parameter name a handler uses for this field: its name, or `_0`, `_1`, ….
    pub(crate) fn param_name(&self) -> String {
        match &self.member {
            Member::Named(ident) => ident.to_string(),
            Member::Unnamed(index) => format!("_{}", index.index),
        }
    }
}

/// A method of an `#[aggregate_impl]` block marked `#[handle]` or `#[apply]`.
pub(crate) struct Method<'a> {
    pub(crate) kind: crate::attr::MethodKind,
    pub(crate) func: &'a syn::ImplItemFn,
    /// The variant it serves, by name or as named in the attribute.
    pub(crate) variant: Ident,
    /// Whether the attribute names the variant: `#[handle(Deposit)]`.
    pub(crate) named_explicitly: bool,
    /// The parameters bound to the variant's fields, in order.
    pub(crate) fields: Vec<Param>,
    /// The `#[services]` parameter, if any.
    pub(crate) services: Option<&'a syn::PatType>,
    pub(crate) is_async: bool,
}

pub(crate) struct Param {
    /// The binding name without `mut`.
    pub(crate) ident: Ident,
}

/// One `#[on(Enum::Variant)]` of a `#[projection]` block: a method and a variant it handles
/// (a method with several `#[on]` gives one of these per variant).
pub(crate) struct Handler<'a> {
    pub(crate) func: &'a syn::ImplItemFn,
    /// `BankEvent::Deposited`, as written in the attribute.
    pub(crate) path: syn::Path,
    /// `BankEvent`: the path without its last segment.
    pub(crate) enum_path: syn::Path,
    /// `Deposited`.
    pub(crate) variant: Ident,
    /// `#[on(.., delete)]`: the document is removed after the handler.
    pub(crate) delete: bool,
    /// The parameters bound to the variant's fields, in order.
    pub(crate) fields: Vec<Param>,
}
