//! The tenant override table: validated patterns, an exact-match map and the prefix patterns,
//! longest first. Built whole by a writer and read without a lock.

use std::collections::{BTreeMap, HashMap};

use super::{ControlError, TenantOverride, TenantSampling, level_code, shown};

/// The longest tenant id a pattern may name (the server layer's tenant header rule).
pub(crate) const MAX_TENANT_LEN: usize = 128;

/// Whether `b` may appear in a tenant id (the server layer's tenant header alphabet).
pub(crate) fn tenant_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':')
}

/// A checked tenant pattern: an exact tenant id, or a tenant id prefix ending in `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern<'a> {
    /// Matches this tenant id only.
    Exact(&'a str),
    /// Matches every tenant id starting with this prefix (the `*` removed).
    Prefix(&'a str),
}

impl<'a> Pattern<'a> {
    /// Checks `pattern`, in time bounded by the longest valid pattern whatever its length.
    pub(super) fn parse(pattern: &'a str) -> Result<Pattern<'a>, ControlError> {
        let invalid = |reason: &'static str| ControlError::InvalidTenantPattern {
            pattern: shown(pattern),
            reason,
        };
        if pattern.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (body, prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if body.len() > MAX_TENANT_LEN {
            return Err(invalid("a tenant id is at most 128 bytes"));
        }
        if body.is_empty() {
            return Err(invalid("`*` needs a tenant id prefix before it"));
        }
        if let Some(&bad) = body.as_bytes().iter().find(|&&b| !tenant_byte(b)) {
            return Err(invalid(if bad == b'*' {
                "`*` may only end the pattern, once"
            } else {
                "a tenant id is made of A-Z a-z 0-9 . _ - @ :"
            }));
        }
        Ok(if prefix {
            Pattern::Prefix(body)
        } else {
            Pattern::Exact(body)
        })
    }
}

/// The overrides in force, as swapped in whole by each change.
#[derive(Debug, Default)]
pub(super) struct OverrideTable {
    /// Every override by its pattern text, for snapshots and the next change.
    entries: BTreeMap<Box<str>, TenantOverride>,
    /// Exact tenant ids.
    exact: HashMap<Box<str>, TenantOverride>,
    /// Prefixes (without their `*`), longest first: the first match is the longest.
    prefixes: Vec<(Box<str>, TenantOverride)>,
    /// See [`Summary`].
    pub(super) summary: Summary,
}

/// What the hot paths need to know about a table, packed into one byte.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Summary(pub(super) u8);

impl Summary {
    /// Bits 0–2: the most verbose override log level's code + 1 (0: none).
    const LEVEL_MASK: u8 = 0b0000_0111;
    /// Some override changes sampling.
    const SAMPLING: u8 = 0b0000_1000;
    /// Some override exists.
    const ANY: u8 = 0b0001_0000;

    pub(super) fn any(self) -> bool {
        self.0 & Self::ANY != 0
    }

    pub(super) fn sampling(self) -> bool {
        self.0 & Self::SAMPLING != 0
    }

    /// The code (see `level_code`) of the most verbose override log level.
    pub(super) fn max_level_code(self) -> Option<u8> {
        (self.0 & Self::LEVEL_MASK).checked_sub(1)
    }

    fn of<'a>(overrides: impl Iterator<Item = &'a TenantOverride>) -> Summary {
        let mut bits = 0u8;
        let mut level = 0u8;
        for o in overrides {
            bits |= Self::ANY;
            if o.sampling != TenantSampling::Profile {
                bits |= Self::SAMPLING;
            }
            if let Some(l) = o.log_level {
                level = level.max(level_code(l) + 1);
            }
        }
        Summary(bits | level)
    }
}

impl OverrideTable {
    /// The table holding exactly `entries` (patterns already checked).
    pub(super) fn from_entries(entries: BTreeMap<Box<str>, TenantOverride>) -> OverrideTable {
        let mut exact = HashMap::new();
        let mut prefixes = Vec::new();
        for (pattern, o) in &entries {
            match pattern.strip_suffix('*') {
                Some(prefix) => prefixes.push((Box::from(prefix), *o)),
                None => {
                    exact.insert(pattern.clone(), *o);
                }
            }
        }
        prefixes.sort_by(|a: &(Box<str>, _), b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let summary = Summary::of(entries.values());
        OverrideTable {
            entries,
            exact,
            prefixes,
            summary,
        }
    }

    /// The entries, for the next change.
    pub(super) fn entries(&self) -> &BTreeMap<Box<str>, TenantOverride> {
        &self.entries
    }

    /// The override set under exactly `pattern`.
    pub(super) fn get(&self, pattern: &str) -> Option<TenantOverride> {
        self.entries.get(pattern).copied()
    }

    /// The override of `tenant`: its exact entry, else its longest matching prefix.
    pub(super) fn lookup(&self, tenant: &str) -> Option<TenantOverride> {
        if tenant.len() <= MAX_TENANT_LEN
            && let Some(o) = self.exact.get(tenant)
        {
            return Some(*o);
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| tenant.starts_with(&**prefix))
            .map(|(_, o)| *o)
    }

    /// A copy of every entry, by pattern.
    pub(super) fn snapshot(&self) -> Vec<(String, TenantOverride)> {
        self.entries
            .iter()
            .map(|(p, o)| (p.to_string(), *o))
            .collect()
    }
}
