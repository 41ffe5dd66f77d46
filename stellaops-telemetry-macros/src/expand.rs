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

/// The return type to annotate the body's value with: `impl Trait` parts become `_` (so a
/// `Result<impl Trait, E>` still tells `?` its error type). `None` for `-> !`.
fn annotation(output: &ReturnType) -> Option<TokenStream> {
    struct Infer;
    impl syn::visit_mut::VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(i) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](i.impl_token.span),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => None,
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            syn::visit_mut::VisitMut::visit_type_mut(&mut Infer, &mut ty);
            Some(quote!(#ty))
        }
    }
}

/// A label's field name; keywords (`type`) as raw identifiers.
fn label_ident(name: &args::FieldName) -> Ident {
    match name {
        args::FieldName::Ident(i) => {
            let text = i.to_string();
            if !text.starts_with("r#") && syn::parse_str::<Ident>(&text).is_err() {
                Ident::new_raw(&text, i.span())
            } else {
                i.clone()
            }
        }
        // `validate` rejects string-named labels.
        args::FieldName::Lit(l) => Ident::new("_", l.span()),
    }
}

/// Whether a label's value is the call's result (`outcome`, `error_kind`), and which.
fn result_word(label: &Field) -> Option<&'static str> {
    let word = match &label.value {
        None => label.name.key(),
        Some(syn::Expr::Path(p)) if p.qself.is_none() => p.path.get_ident()?.to_string(),
        Some(_) => return None,
    };
    match word.as_str() {
        "outcome" => Some("outcome_label"),
        "error_kind" => Some("error_kind_label"),
        _ => None,
    }
}

/// The statements evaluating a metric's labels before the body runs (arguments may be moved
/// or consumed by it), into owned strings and only when there is a pipeline; string literals
/// and the result words are left for after.
fn label_values(index: usize, metric: &MetricUse) -> TokenStream {
    let lets = metric.labels.iter().enumerate().filter_map(|(j, label)| {
        if result_word(label).is_some()
            || matches!(&label.value, Some(syn::Expr::Lit(l)) if matches!(l.lit, syn::Lit::Str(_)))
        {
            return None;
        }
        let local = format_ident!("__stella_label_{}_{}", index, j);
        let value = label.value_tokens();
        Some(quote! {
            let #local: ::core::option::Option<::std::string::String> = __stella_call
                .metrics()
                .map(|_| ::std::string::ToString::to_string(&(#value)));
        })
    });
    quote!(#(#lets)*)
}

/// `Labels { label: value, .. }` of a metric, from the values evaluated before the body;
/// `outcome` and `error_kind` stand for the call's result.
fn labels(index: usize, alias: &Ident, metric: &MetricUse, private: &TokenStream) -> TokenStream {
    let path_span = last_span(&metric.path);
    let fields = metric.labels.iter().enumerate().map(|(j, label)| {
        let name = label_ident(&label.name);
        let value = if let Some(function) = result_word(label) {
            let function = Ident::new(function, name.span());
            quote!(#private::#function(__stella_error))
        } else if let Some(syn::Expr::Lit(l)) = &label.value
            && matches!(l.lit, syn::Lit::Str(_))
        {
            quote!(#l)
        } else {
            let local = format_ident!("__stella_label_{}_{}", index, j);
            quote!(#local.as_deref().unwrap_or_default())
        };
        quote!(#name: #value)
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

fn record_fields(fields: &[Field], private: &TokenStream) -> TokenStream {
    let pushes = fields.iter().map(|field| {
        let key = field.name.key();
        let value = field.value_tokens();
        quote!(#private::record_field(__stella_record, #key, &(#value));)
    });
    quote!(#(#pushes)*)
}

/// `function` instrumented: the call started (traced or not), the metrics' labels evaluated,
/// the body run, its error kind found, the call finished and the metrics recorded.
fn expand(args: &Args, function: ItemFn) -> TokenStream {
    let core = args
        .krate
        .as_ref()
        .map(|path| quote!(#path))
        .unwrap_or_else(|| quote!(::stellaops_telemetry_core));
    let private = quote!(#core::__private);

    let mut prelude = TokenStream::new();
    let start = match &args.span {
        Some(span) => traced_start(args, span, &private, &mut prelude),
        None => quote!(#private::Call::untraced()),
    };
    let Metrics {
        records,
        label_lets,
    } = metrics(args, &private, &mut prelude);

    let block = &function.block;
    let Some(return_type) = annotation(&function.sig.output) else {
        // `-> !`: nothing comes back to record; the span ends as the call unwinds or exits.
        let body = quote! {{
            #prelude
            let mut __stella_call = #start;
            let __stella_guard = __stella_call.enter();
            #block
        }};
        return replace_body(function, body);
    };
    let run = run(&function, &return_type, &private);
    let has_metrics = !records.is_empty();
    let finish = if has_metrics {
        quote!(let __stella_elapsed = __stella_call.finish(__stella_error);)
    } else {
        quote!(__stella_call.finish(__stella_error);)
    };
    let record_metrics = has_metrics.then(|| {
        quote! {
            if let ::core::option::Option::Some(__stella_pipeline) = __stella_call.pipeline() {
                #records
            }
        }
    });
    let body = quote! {{
        #prelude
        let mut __stella_call = #start;
        #label_lets
        let __stella_result: #return_type = #run;
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
        #finish
        #record_metrics
        __stella_result
    }};
    replace_body(function, body)
}

/// The expression starting a traced call: the span's catalogue entry is imported under one
/// alias (its function, for nothing but the check, and its module: name and attribute struct)
/// into `prelude`, and its attributes, fields and tenant are recorded at the start.
fn traced_start(
    args: &Args,
    span: &SpanRef,
    private: &TokenStream,
    prelude: &mut TokenStream,
) -> TokenStream {
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
        SpanRef::Path(path) => quote!(#path),
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
    let fields = record_fields(&args.fields, private);
    let tenant = args
        .tenant
        .as_ref()
        .map(|tenant| quote!(#private::record_field(__stella_record, "tenant.id", &(#tenant));));
    quote! {
        #private::Call::start(__stella_span::NAME, |__stella_record| {
            #attributes_struct.record(__stella_record);
            #fields
            #tenant
        })
    }
}

/// The metric statements of a call.
struct Metrics {
    /// The recording calls, run after the body when there is a pipeline.
    records: TokenStream,
    /// The label values, evaluated before the body.
    label_lets: TokenStream,
}

/// The duration and outcome metrics: each imported under an alias (its definition and its
/// label module) into `prelude`, with its labels evaluated before the body and recorded after.
fn metrics(args: &Args, private: &TokenStream, prelude: &mut TokenStream) -> Metrics {
    let mut records = TokenStream::new();
    let mut label_lets = TokenStream::new();
    for (i, metric) in [args.duration.as_ref(), args.outcome.as_ref()]
        .into_iter()
        .enumerate()
    {
        let Some(metric) = metric else { continue };
        let name_span = last_span(&metric.path);
        let alias = format_ident!("__stella_metric_{}", i, span = name_span);
        let path = &metric.path;
        prelude.extend(quote_spanned!(name_span=>
            #[allow(unused_imports)]
            use #path as #alias;
        ));
        label_lets.extend(label_values(i, metric));
        let labels = labels(i, &alias, metric, private);
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
        }
        records.extend(record_metric(i == 0, metric, &def, &labels, private));
    }
    Metrics {
        records,
        label_lets,
    }
}

/// Whether a metric's labels are constant for the callsite (string literals), but for
/// `outcome`: the number of label sets it records into (1, or 2 with `outcome`), or `None`
/// when a label is known only at run time.
fn constant_label_sets(metric: &MetricUse) -> Option<usize> {
    let mut sets = 1;
    for label in &metric.labels {
        match result_word(label) {
            Some("outcome_label") => sets = 2,
            Some(_) => return None,
            None if matches!(&label.value, Some(syn::Expr::Lit(l)) if matches!(l.lit, syn::Lit::Str(_))) =>
                {}
            None => return None,
        }
    }
    Some(sets)
}

/// The statement recording one metric (the duration histogram, or the outcome counter)
/// after the body. Constant labels record through the callsite's series, bound once per
/// thread and pipeline; others look their series up.
fn record_metric(
    duration: bool,
    metric: &MetricUse,
    def: &TokenStream,
    labels: &TokenStream,
    private: &TokenStream,
) -> TokenStream {
    let Some(sets) = constant_label_sets(metric) else {
        return if duration {
            quote! {
                #private::record_duration(
                    __stella_pipeline.metrics(), #def, #labels, __stella_elapsed,
                );
            }
        } else {
            quote!(#private::count_call(__stella_pipeline.metrics(), #def, #labels);)
        };
    };
    let index = if sets == 2 {
        quote!(#private::outcome_index(__stella_error))
    } else {
        quote!(0)
    };
    let (bound, record, elapsed) = if duration {
        (
            quote!(BoundHistogram),
            quote!(record_duration_bound),
            quote!(, __stella_elapsed),
        )
    } else {
        (quote!(BoundCounter), quote!(count_call_bound), quote!())
    };
    quote! {{
        ::std::thread_local! {
            static __STELLA_BOUND: #private::BoundSlots<#private::#bound, #sets> =
                const { #private::BoundSlots::new() };
        }
        #private::#record(
            &__STELLA_BOUND, __stella_pipeline, #index, #def, #labels #elapsed,
        );
    }}
}

/// The expression running the body: in a closure or an `async move` block typed as the
/// function returns (so `?` and `return` inside it convert as they would in the function
/// itself). The async block owns the arguments, as the function's own future would: it is
/// `Send` whenever the uninstrumented function's future is.
fn run(function: &ItemFn, return_type: &TokenStream, private: &TokenStream) -> TokenStream {
    let block = &function.block;
    if function.sig.asyncness.is_some() {
        quote! {
            __stella_call
                .in_context(async move {
                    let __stella_value: #return_type = #block;
                    #[allow(unreachable_code)]
                    return __stella_value;
                })
                .await
        }
    } else {
        quote! {{
            let __stella_guard = __stella_call.enter();
            #private::call_once(|| -> #return_type #block)
        }}
    }
}

/// `function` with `body` as its block.
fn replace_body(mut function: ItemFn, body: TokenStream) -> TokenStream {
    let body: syn::Block = match syn::parse2(body) {
        Ok(block) => block,
        Err(error) => return with_error(error, &function),
    };
    function.block = Box::new(body);
    function.into_token_stream()
}
