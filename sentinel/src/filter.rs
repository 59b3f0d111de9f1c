//! Result-name filter: which osquery result lines to ship.

use keychain_access_tables::wildcard::wildcard;

/// A list of glob patterns matched against a result line's `name` field,
/// with the project's one wildcard matcher (`keychain_access_tables::wildcard`):
/// `*` matches any run of characters (including `/`), `?` one character,
/// everything else itself (case-sensitive). An empty filter matches every
/// line, including lines without a `name`.
///
/// Pack query names come in two shapes, so a pattern that should catch both
/// starts with `*`: `*keychain_credential_access` matches
/// `pack_keychain-access_keychain_credential_access` (osquery packs) and
/// `pack/Global/keychain_credential_access` (Fleet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    patterns: Vec<String>,
}

/// A `name_filter` entry that is the empty string (it would match only a
/// line named "", which is never what was meant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`name_filter`[{index}] is an empty pattern")]
pub struct EmptyPattern {
    /// Its position in the list.
    pub index: usize,
}

impl NameFilter {
    /// Build a filter; refuses empty patterns.
    pub fn new(patterns: &[String]) -> Result<Self, EmptyPattern> {
        let mut out = Vec::with_capacity(patterns.len());
        for (i, p) in patterns.iter().enumerate() {
            if p.is_empty() {
                return Err(EmptyPattern { index: i });
            }
            out.push(p.clone());
        }
        Ok(NameFilter { patterns: out })
    }

    /// True when every line passes.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a line with this `name` (None: no `name` field) is shipped.
    pub fn matches(&self, name: Option<&str>) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        let Some(name) = name else { return false };
        self.patterns.iter().any(|p| wildcard(p, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &[&str]) -> NameFilter {
        NameFilter::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn empty_matches_all() {
        assert!(f(&[]).matches(Some("x")));
        assert!(f(&[]).matches(None));
    }

    #[test]
    fn pack_names_both_shapes() {
        let filt = f(&["*keychain_credential_access"]);
        assert!(filt.matches(Some("pack_keychain-access_keychain_credential_access")));
        assert!(filt.matches(Some("pack/Global/keychain_credential_access")));
        assert!(!filt.matches(Some("pack/Global/keychain_credential_access_extra")));
        assert!(!filt.matches(None));
        let filt = f(&["pack_keychain-access_*", "pack/*/keychain_*"]);
        assert!(filt.matches(Some("pack_keychain-access_anything")));
        assert!(filt.matches(Some("pack/Global/keychain_x")));
        assert!(!filt.matches(Some("pack_other_keychain_x")));
    }

    #[test]
    fn glob_semantics() {
        let filt = f(&["a?c"]);
        assert!(filt.matches(Some("abc")));
        assert!(!filt.matches(Some("abbc")));
        assert!(f(&["exact"]).matches(Some("exact")));
        assert!(!f(&["exact"]).matches(Some("exactly")));
        assert!(f(&["*a*b*c*"]).matches(Some("xxaxxbxxcxx")));
        assert!(f(&["**"]).matches(Some("")));
        let err = NameFilter::new(&["a*".to_string(), String::new()]).unwrap_err();
        assert_eq!(err, EmptyPattern { index: 1 });
        assert_eq!(err.to_string(), "`name_filter`[1] is an empty pattern");
    }
}
