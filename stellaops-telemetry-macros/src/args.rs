//! Parsing the attribute's arguments (no checks beyond syntax: see `validate.rs`).

use proc_macro2::{Span, TokenStream};
use syn::parse::discouraged::Speculative as _;
use syn::parse::{Parse, ParseStream, Parser as _};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token, parenthesized};

/// `#[instrument(...)]`'s arguments, in the order written.
pub(crate) struct Args {
    pub(crate) span: Option<SpanRef>,
    /// The span's required attributes (`name = expr` or `name`).
    pub(crate) attributes: Vec<Field>,
    /// `fields(...)`: more attributes.
    pub(crate) fields: Vec<Field>,
    /// `tenant = expr`.
    pub(crate) tenant: Option<Expr>,
    pub(crate) duration: Option<MetricUse>,
    pub(crate) outcome: Option<MetricUse>,
    /// `crate = path`.
    pub(crate) krate: Option<Path>,
    /// Keywords given twice, for `validate`.
    pub(crate) repeated: Vec<Ident>,
}

/// The span: a catalogue name (`"scan.image"`) or a path to a `declare_spans!` entry.
pub(crate) enum SpanRef {
    Name(LitStr),
    Path(Path),
}

/// A field's name: an identifier (raw ones allowed) or, in `fields(...)`, a string.
pub(crate) enum FieldName {
    Ident(Ident),
    Lit(LitStr),
}

impl FieldName {
    /// The name as recorded (`r#type` → `type`).
    pub(crate) fn key(&self) -> String {
        match self {
            FieldName::Ident(i) => {
                let s = i.to_string();
                s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
            }
            FieldName::Lit(l) => l.value(),
        }
    }

    pub(crate) fn span(&self) -> Span {
        match self {
            FieldName::Ident(i) => i.span(),
            FieldName::Lit(l) => l.span(),
        }
    }
}

/// `name = expr`, or `name` alone (the argument of that name).
pub(crate) struct Field {
    pub(crate) name: FieldName,
    pub(crate) value: Option<Expr>,
}

impl Field {
    /// The value: the expression, or the argument named like the field.
    pub(crate) fn value_tokens(&self) -> TokenStream {
        match (&self.value, &self.name) {
            (Some(e), _) => quote::quote!(#e),
            (None, FieldName::Ident(i)) => quote::quote!(#i),
            // `validate` rejects a string name without a value.
            (None, FieldName::Lit(l)) => quote::quote!(#l),
        }
    }
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = if input.peek(LitStr) {
            FieldName::Lit(input.parse()?)
        } else {
            FieldName::Ident(input.call(syn::ext::IdentExt::parse_any)?)
        };
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Field { name, value })
    }
}

/// `duration = PATH(label = expr, ...)` / `outcome = PATH(...)`.
pub(crate) struct MetricUse {
    pub(crate) path: Path,
    pub(crate) labels: Vec<Field>,
}

impl Parse for MetricUse {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let path: Path = input.parse()?;
        let labels = if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            Punctuated::<Field, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        Ok(MetricUse { path, labels })
    }
}

pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let mut args = Args {
        span: None,
        attributes: Vec::new(),
        fields: Vec::new(),
        tenant: None,
        duration: None,
        outcome: None,
        krate: None,
        repeated: Vec::new(),
    };
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            parse_one(input, &mut args)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    parser.parse2(tokens)?;
    Ok(args)
}

/// Keeps the first value of a keyword; a second one is remembered as repeated.
fn set_once<T>(slot: &mut Option<T>, value: T, keyword: Ident, repeated: &mut Vec<Ident>) {
    if slot.is_some() {
        repeated.push(keyword);
    } else {
        *slot = Some(value);
    }
}

fn parse_one(input: ParseStream<'_>, args: &mut Args) -> syn::Result<()> {
    if input.peek(Token![crate]) {
        let keyword: Token![crate] = input.parse()?;
        input.parse::<Token![=]>()?;
        let path = input.parse()?;
        set_once(
            &mut args.krate,
            path,
            Ident::new("crate", keyword.span),
            &mut args.repeated,
        );
        return Ok(());
    }
    let fork = input.fork();
    let name: Ident = fork.call(syn::ext::IdentExt::parse_any)?;
    let keyword = name.to_string();
    match keyword.as_str() {
        "span" if fork.peek(Token![=]) => {
            input.advance_to(&fork);
            input.parse::<Token![=]>()?;
            let span = if input.peek(LitStr) {
                SpanRef::Name(input.parse()?)
            } else {
                SpanRef::Path(input.parse()?)
            };
            set_once(&mut args.span, span, name, &mut args.repeated);
        }
        "fields" if fork.peek(syn::token::Paren) => {
            input.advance_to(&fork);
            let content;
            parenthesized!(content in input);
            args.fields
                .extend(Punctuated::<Field, Token![,]>::parse_terminated(&content)?);
        }
        "tenant" if fork.peek(Token![=]) => {
            input.advance_to(&fork);
            input.parse::<Token![=]>()?;
            let tenant = input.parse()?;
            set_once(&mut args.tenant, tenant, name, &mut args.repeated);
        }
        "duration" | "outcome" if fork.peek(Token![=]) => {
            input.advance_to(&fork);
            input.parse::<Token![=]>()?;
            let metric: MetricUse = input.parse()?;
            let slot = if keyword == "duration" {
                &mut args.duration
            } else {
                &mut args.outcome
            };
            set_once(slot, metric, name, &mut args.repeated);
        }
        _ => args.attributes.push(input.parse()?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn every_kind_of_argument_parses_in_any_order() {
        let args = parse(quote!(
            digest,
            span = "scan.image",
            imageRef = image.name(),
            fields(size = n, "image.layers" = layers.len(), r#type),
            tenant = Some("acme"),
            duration = catalogue::STELLAOPS_SCAN_DURATION_SECONDS(tenant = t),
            outcome = my::COUNTER(status = outcome),
            crate = ::core_crate,
        ))
        .unwrap();
        assert!(matches!(args.span, Some(SpanRef::Name(ref l)) if l.value() == "scan.image"));
        let names: Vec<_> = args.attributes.iter().map(|f| f.name.key()).collect();
        assert_eq!(names, ["digest", "imageRef"]);
        let fields: Vec<_> = args.fields.iter().map(|f| f.name.key()).collect();
        assert_eq!(fields, ["size", "image.layers", "type"]);
        assert!(args.tenant.is_some());
        assert_eq!(args.duration.as_ref().map(|m| m.labels.len()), Some(1));
        assert!(args.outcome.is_some());
        assert!(args.krate.is_some());
        assert!(args.repeated.is_empty());
    }

    #[test]
    fn a_keyword_given_twice_is_remembered() {
        let args = parse(quote!(span = "a.b", span = "c.d")).unwrap();
        assert_eq!(args.repeated.len(), 1);
    }

    #[test]
    fn a_path_names_a_declared_span() {
        let args = parse(quote!(span = crate::spans::vault_rotate)).unwrap();
        assert!(matches!(args.span, Some(SpanRef::Path(_))));
    }
}
