//! The generated code. The catalogue's items are named by path, spanned on the user's tokens,
//! so the compiler reports an unknown span or metric, a missing attribute or a wrong label where
//! it was typed. Everything else goes through core's hidden `__private` module.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens as _, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{ItemFn, ReturnType, Type};

use crate::args::{self, Args, Field, MetricUse, SpanRef};
use crate::validate;

/// The whole macro: parse, validate, expand. On a mistake the function is still emitted
/// unchanged, so only the real mistake is reported.
pub(crate) fn instrument(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            // Pointed at the item's name when it has one.
            let at = match syn::parse2::<syn::Item>(item.clone()) {
                Ok(syn::Item::Struct(i)) => i.ident.span(),
                Ok(syn::Item::Enum(i)) => i.ident.span(),
                Ok(syn::Item::Union(i)) => i.ident.span(),
                Ok(syn::Item::Trait(i)) => i.ident.span(),
                Ok(syn::Item::Type(i)) => i.ident.span(),
                Ok(syn::Item::Const(i)) => i.ident.span(),
                Ok(syn::Item::Static(i)) => i.ident.span(),
                Ok(syn::Item::Mod(i)) => i.ident.span(),
                _ => item.span(),
            };
            let error = syn::Error::new(
                at,
                "`#[instrument]` goes on a function or a method with a body",
            );
            let mut out = error.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let args = match args::parse(args) {
        Ok(args) => args,
        Err(error) => return with_error(error, &function),
    };
    if let Some(error) = validate::check(&args, &function) {
        return with_error(error, &function);
    }
    expand(&args, function)
}

fn with_error(error: syn::Error, function: &ItemFn) -> TokenStream {
    let mut out = error.to_compile_error();
    function.to_tokens(&mut out);
    out
}

/// The return type to annotate the result with, unless it cannot be written in a `let`.
fn annotation(output: &ReturnType) -> Option<TokenStream> {
    fn has_impl(ty: &Type) -> bool {
        let mut found = false;
        // A token-level scan is enough: `impl` appears only as `impl Trait` in a type.
        for token in ty.to_token_stream() {
            found |= has_impl_token(&token);
        }
        found
    }
    fn has_impl_token(token: &proc_macro2::TokenTree) -> bool {
        match token {
            proc_macro2::TokenTree::Ident(i) => i == "impl",
            proc_macro2::TokenTree::Group(g) => g.stream().into_iter().any(|t| has_impl_token(&t)),
            _ => false,
        }
    }
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if !has_impl(ty) => Some(quote!(#ty)),
        ReturnType::Type(..) => None,
    }
}

/// `Labels { label: value, .. }` of a metric; `outcome` and `error_kind` stand for the call's
/// result.
fn labels(alias: &Ident, metric: &MetricUse, private: &TokenStream) -> TokenStream {
    let path_span = last_span(&metric.path);
    let fields = metric.labels.iter().map(|label| {
        let name = match &label.name {
            args::FieldName::Ident(i) => i.clone(),
            // `validate` rejects string-named labels.
            args::FieldName::Lit(l) => Ident::new("_", l.span()),
        };
        let value = match &label.value {
            None if name == "outcome" => quote!(#private::outcome_label(__stella_error)),
            None if name == "error_kind" => quote!(#private::error_kind_label(__stella_error)),
            Some(syn::Expr::Path(p)) if p.path.is_ident("outcome") => {
                quote_spanned!(p.span()=> #private::outcome_label(__stella_error))
            }
            Some(syn::Expr::Path(p)) if p.path.is_ident("error_kind") => {
                quote_spanned!(p.span()=> #private::error_kind_label(__stella_error))
            }
            _ => label.value_tokens(),
        };
        // In parentheses: `tenant = tenant` is not a redundant field name of the user's.
        quote!(#name: (#value))
    });
    // The whole literal on the metric's name, so the compiler's notes on a wrong label see a
    // literal written there.
    quote_spanned!(path_span=> #alias::Labels { #(#fields),* })
}

/// The span of a path's last segment (stable Rust cannot join spans): where a misspelled
/// name is reported.
fn last_span(path: &syn::Path) -> proc_macro2::Span {
    path.segments
        .last()
        .map(|s| s.ident.span())
        .unwrap_or_else(|| path.span())
}

/// A path as a `use` path: a single name is looked up in the enclosing module (`self::`), not
/// among crates.
fn use_path(path: &syn::Path) -> TokenStream {
    if path.leading_colon.is_none() && path.segments.len() == 1 {
        let span = last_span(path);
        quote_spanned!(span=> self::#path)
    } else {
        quote!(#path)
    }
}

fn record_fields(fields: &[Field], private: &TokenStream) -> TokenStream {
    let pushes = fields.iter().map(|field| {
        let key = field.name.key();
        let value = field.value_tokens();
        quote!(#private::record_field(__stella_record, #key, &(#value));)
    });
    quote!(#(#pushes)*)
}

fn expand(args: &Args, mut function: ItemFn) -> TokenStream {
    let core = args
        .krate
        .as_ref()
        .map(|path| quote!(#path))
        .unwrap_or_else(|| quote!(::stellaops_telemetry_core));
    let private = quote!(#core::__private);

    let mut prelude = TokenStream::new();
    // The span: the catalogue entry imported under one alias (its function, for nothing but
    // the check, and its module: name and attribute struct).
    let start = match &args.span {
        Some(span) => {
            let path = match span {
                SpanRef::Name(name) => {
                    let ident = Ident::new(&name.value().replace('.', "_"), name.span());
                    // Every token of the path on the name, so an unknown span is reported
                    // there (and not as a missing crate on the attribute).
                    let core = match &args.krate {
                        Some(path) => quote_spanned!(name.span()=> #path),
                        None => quote_spanned!(name.span()=> ::stellaops_telemetry_core),
                    };
                    quote_spanned!(name.span()=> #core::spans::catalogue::#ident)
                }
                SpanRef::Path(path) => use_path(path),
            };
            let span_token = match span {
                SpanRef::Name(name) => name.span(),
                SpanRef::Path(path) => last_span(path),
            };
            prelude.extend(quote_spanned!(span_token=>
                #[allow(unused_imports)]
                use #path as __stella_span;
            ));
            let attributes = args.attributes.iter().map(|field| {
                let name = match &field.name {
                    args::FieldName::Ident(i) => i.clone(),
                    args::FieldName::Lit(l) => Ident::new("_", l.span()),
                };
                let value = field.value_tokens();
                quote!(#name: &(#value))
            });
            let attributes_struct =
                quote_spanned!(span_token=> __stella_span::Attributes { #(#attributes),* });
            let fields = record_fields(&args.fields, &private);
            let tenant = args.tenant.as_ref().map(
                |tenant| quote!(#private::record_field(__stella_record, "tenant.id", &(#tenant));),
            );
            quote! {
                #private::Call::start(__stella_span::NAME, |__stella_record| {
                    #attributes_struct.record(__stella_record);
                    #fields
                    #tenant
                })
            }
        }
        None => quote!(#private::Call::untraced()),
    };

    // The metrics: each imported under an alias (its definition and its label module).
    let mut metrics = TokenStream::new();
    for (i, (metric, record)) in [
        (args.duration.as_ref(), quote!(record_duration)),
        (args.outcome.as_ref(), quote!(count_call)),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(metric) = metric else { continue };
        let name_span = last_span(&metric.path);
        let alias = format_ident!("__stella_metric_{}", i, span = name_span);
        let path = use_path(&metric.path);
        prelude.extend(quote_spanned!(name_span=>
            #[allow(unused_imports)]
            use #path as #alias;
        ));
        let labels = labels(&alias, metric, &private);
        let def = quote_spanned!(name_span=> &#alias);
        if i == 0 {
            // On the metric's name: a metric that is not in seconds is reported there.
            let assert = match &args.krate {
                Some(path) => quote_spanned!(name_span=> #path::__private::assert_seconds),
                None => {
                    quote_spanned!(name_span=> ::stellaops_telemetry_core::__private::assert_seconds)
                }
            };
            prelude.extend(quote_spanned!(name_span=>
                const _: () = #assert(#alias.descriptor());
            ));
            metrics.extend(quote! {
                #private::#record(__stella_metrics, #def, #labels, __stella_elapsed);
            });
        } else {
            metrics.extend(quote! {
                #private::#record(__stella_metrics, #def, #labels);
            });
        }
    }

    let block = &function.block;
    let return_type = annotation(&function.sig.output);
    let annotated = return_type.as_ref().map(|ty| quote!(: #ty));
    // The body runs in a closure or an async block typed as the function returns (so `?` and
    // `return` inside it convert as they would in the function itself).
    let run = match (function.sig.asyncness.is_some(), &return_type) {
        (true, Some(ty)) => quote! {
            __stella_call
                .in_context(async {
                    let __stella_value: #ty = #block;
                    #[allow(unreachable_code)]
                    return __stella_value;
                })
                .await
        },
        (true, None) => quote!(__stella_call.in_context(async #block).await),
        (false, Some(ty)) => quote! {{
            let __stella_guard = __stella_call.enter();
            (|| -> #ty #block)()
        }},
        (false, None) => quote! {{
            let __stella_guard = __stella_call.enter();
            (|| #block)()
        }},
    };
    let has_metrics = !metrics.is_empty();
    let elapsed = has_metrics.then(|| quote!(let __stella_elapsed = __stella_call.elapsed();));
    let record_metrics = has_metrics.then(|| {
        quote! {
            if let ::core::option::Option::Some(__stella_metrics) = __stella_call.metrics() {
                #metrics
            }
        }
    });
    let body = quote! {{
        #prelude
        let mut __stella_call = #start;
        #[allow(clippy::redundant_closure_call)]
        let __stella_result #annotated = #run;
        #elapsed
        // The borrows select the impl (autoref specialisation): `Err`s of `Result`s, by
        // `ErrorKind` when the error implements it.
        #[allow(clippy::needless_borrow)]
        let __stella_error: ::core::option::Option<&'static str> = {
            #[allow(unused_imports)]
            use #private::{KindByName as _, KindByTrait as _, ReturnedErr as _, ReturnedValue as _};
            (&#private::Returned(&__stella_result))
                .returned_err()
                .map(|__stella_e| (&#private::Kind(__stella_e)).kind())
        };
        __stella_call.finish(__stella_error);
        #record_metrics
        __stella_result
    }};
    let body: syn::Block = match syn::parse2(body) {
        Ok(block) => block,
        Err(error) => return with_error(error, &function),
    };
    function.block = Box::new(body);
    function.into_token_stream()
}
