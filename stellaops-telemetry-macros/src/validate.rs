//! Checks the macro makes itself, every mistake gathered into one error: the rest (unknown
//! spans and metrics, missing attributes, wrong labels) is left to the compiler, through the
//! paths the expansion names.

use syn::{Expr, ItemFn};

use crate::args::{Args, Field, FieldName, SpanRef};
use crate::sensitive::looks_sensitive;

/// Adds `error` to `errors`.
fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(all) => all.combine(error),
        None => *errors = Some(error),
    }
}

/// Whether `expr` is wrapped in the redaction marker: `Sensitive::new(..)` or `Sensitive(..)`.
fn is_marked(expr: &Expr) -> bool {
    let Expr::Call(call) = expr else {
        return false;
    };
    let Expr::Path(path) = &*call.func else {
        return false;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    matches!(
        segments.as_slice(),
        [.., last] if last == "Sensitive"
    ) || matches!(segments.as_slice(), [.., ty, new] if ty == "Sensitive" && new == "new")
}

/// The first identifier in `expr` that looks like a secret: a variable, a field
/// (`self.api_token`), a method receiver, or an argument inside a macro (`format!("{password}")`
/// names it in its string).
fn secret_in(expr: &Expr) -> Option<String> {
    fn walk(tokens: proc_macro2::TokenStream) -> Option<String> {
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(i) => {
                    let name = i.to_string();
                    if looks_sensitive(&name) {
                        return Some(name);
                    }
                }
                proc_macro2::TokenTree::Group(g) => {
                    if let Some(found) = walk(g.stream()) {
                        return Some(found);
                    }
                }
                proc_macro2::TokenTree::Literal(l) => {
                    // Inline format arguments: `"{password}"`.
                    let text = l.to_string();
                    if text.starts_with('"') {
                        for part in text.split('{').skip(1) {
                            let name: String = part
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            if !name.is_empty() && looks_sensitive(&name) {
                                return Some(name);
                            }
                        }
                    }
                }
                proc_macro2::TokenTree::Punct(_) => {}
            }
        }
        None
    }
    match expr {
        // A string literal is written in the source: nothing secret is read.
        Expr::Lit(l) if matches!(l.lit, syn::Lit::Str(_)) => None,
        _ => walk(quote::ToTokens::to_token_stream(expr)),
    }
}

/// The name of the argument `expr` reads, when it is a bare identifier.
fn bare_ident(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        Expr::Reference(r) => bare_ident(&r.expr),
        Expr::Paren(p) => bare_ident(&p.expr),
        _ => None,
    }
}

/// A recorded field whose name, or the argument it reads, looks like a secret must be marked.
fn check_secret(field: &Field, errors: &mut Option<syn::Error>) {
    let key = field.name.key();
    let marked = field.value.as_ref().is_some_and(is_marked);
    let literal = matches!(&field.value, Some(Expr::Lit(l)) if matches!(l.lit, syn::Lit::Str(_)));
    let suspect = if looks_sensitive(&key) && !literal {
        Some(key.clone())
    } else {
        field.value.as_ref().and_then(secret_in)
    };
    if let (Some(suspect), false) = (suspect, marked) {
        let value = field
            .value
            .as_ref()
            .and_then(bare_ident)
            .unwrap_or_else(|| key.clone());
        push(
            errors,
            syn::Error::new(
                field.name.span(),
                format!(
                    "`{suspect}` looks like a secret and would be recorded in clear\n\
                     help: wrap it in the redaction marker: `{key} = Sensitive::new({value})`, \
                     or do not record it"
                ),
            ),
        );
    }
}

/// A span name must become the catalogue function's name (`scan.image` → `scan_image`).
fn check_span_name(span: &SpanRef, errors: &mut Option<syn::Error>) {
    let SpanRef::Name(name) = span else { return };
    let value = name.value();
    let valid = !value.is_empty()
        && value.split('.').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if !valid {
        push(
            errors,
            syn::Error::new(
                name.span(),
                format!(
                    "`{value}` is not a span name: span names are lowercase dotted words \
                     (`scan.image`)"
                ),
            ),
        );
    }
}

fn check_duplicates<'a>(
    what: &str,
    fields: impl Iterator<Item = &'a Field>,
    errors: &mut Option<syn::Error>,
) {
    let mut seen = Vec::new();
    for field in fields {
        let key = field.name.key();
        if seen.contains(&key) {
            push(
                errors,
                syn::Error::new(field.name.span(), format!("{what} `{key}` is given twice")),
            );
        } else {
            seen.push(key);
        }
    }
}

/// Every mistake in `args` for `function`, combined; `None` when there is none.
pub(crate) fn check(args: &Args, function: &ItemFn) -> Option<syn::Error> {
    let mut errors = None;
    for keyword in &args.repeated {
        push(
            &mut errors,
            syn::Error::new(keyword.span(), format!("`{keyword}` is given twice")),
        );
    }
    if args.span.is_none() && args.duration.is_none() && args.outcome.is_none() {
        push(
            &mut errors,
            syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[instrument]` needs a span (`span = \"scan.image\"`), a `duration = METRIC(..)` \
                 or an `outcome = METRIC(..)`",
            ),
        );
    }
    if let Some(span) = &args.span {
        check_span_name(span, &mut errors);
    } else if let Some(first) = args.attributes.first() {
        push(
            &mut errors,
            syn::Error::new(
                first.name.span(),
                "span attributes need a span: add `span = \"...\"`",
            ),
        );
    }
    check_duplicates(
        "attribute",
        args.attributes.iter().chain(&args.fields),
        &mut errors,
    );
    for metric in args.duration.iter().chain(&args.outcome) {
        check_duplicates("label", metric.labels.iter(), &mut errors);
        for label in &metric.labels {
            if let FieldName::Lit(lit) = &label.name {
                push(
                    &mut errors,
                    syn::Error::new(lit.span(), "a label is named by an identifier"),
                );
            }
        }
    }
    for field in args.attributes.iter().chain(&args.fields) {
        if let (FieldName::Lit(lit), None) = (&field.name, &field.value) {
            push(
                &mut errors,
                syn::Error::new(
                    lit.span(),
                    "a field named by a string needs a value: `\"a.b\" = expr`",
                ),
            );
        }
        if let FieldName::Lit(lit) = &field.name
            && args.attributes.iter().any(|a| std::ptr::eq(a, field))
        {
            push(
                &mut errors,
                syn::Error::new(lit.span(), "a span attribute is named by an identifier"),
            );
        }
        check_secret(field, &mut errors);
    }
    if let Some(attr) = function
        .attrs
        .iter()
        .find(|a| a.path().is_ident("track_caller"))
    {
        push(
            &mut errors,
            syn::Error::new_spanned(
                attr,
                "`#[track_caller]` cannot be instrumented: the body runs in a closure, so the \
                 caller's location would be lost",
            ),
        );
    }
    if let Some(constness) = &function.sig.constness {
        push(
            &mut errors,
            syn::Error::new(constness.span, "a `const fn` cannot be instrumented"),
        );
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors(args: proc_macro2::TokenStream) -> Vec<String> {
        let args = crate::args::parse(args).unwrap();
        let function: ItemFn = syn::parse2(quote!(
            fn f() {}
        ))
        .unwrap();
        check(&args, &function)
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn secrets_must_be_marked_whether_named_or_read() {
        let found = errors(quote!(
            span = "a.b",
            fields(password, user = api_token, ok = name)
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("`password` looks like a secret"),
            "{found:?}"
        );
        assert!(
            found[0].contains("password = Sensitive::new(password)"),
            "{found:?}"
        );
        assert!(found[1].contains("`api_token`"), "{found:?}");
        assert!(
            errors(quote!(
                span = "a.b",
                fields(password = Sensitive::new(password))
            ))
            .is_empty()
        );
        assert!(errors(quote!(span = "a.b", fields(token = core::Sensitive(t)))).is_empty());
        // Secrets read through fields, methods and format strings; literals are not read.
        for hidden in [
            quote!(span = "a.b", fields(auth = self.api_token)),
            quote!(span = "a.b", fields(a = api_password.as_str())),
            quote!(span = "a.b", fields(b = format!("{api_password}"))),
            quote!(span = "a.b", task_type = client_secret.clone()),
        ] {
            assert_eq!(errors(hidden.clone()).len(), 1, "{hidden}");
        }
        assert!(errors(quote!(span = "a.b", fields(secret_name = "db"))).is_empty());
    }

    #[test]
    fn all_mistakes_are_reported_together() {
        let found = errors(quote!(span = "Scan-Image", a = 1, a = 2, span = "x.y"));
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn something_must_be_recorded() {
        assert_eq!(errors(quote!()).len(), 1);
        assert!(errors(quote!(duration = M(a = b))).is_empty());
    }
}
