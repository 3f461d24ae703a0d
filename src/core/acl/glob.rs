//! Domain globs: validation of ACL entries and an indexed set for matching.
//!
//! A glob is either an exact name (`api.example.com`) or `*.` followed by a
//! name, meaning "any name strictly below it, at any depth" (never the name
//! itself). Entries must already be in the form hosts are matched in:
//! lowercase, punycode, no trailing dot; anything else is refused with the
//! form to write instead, so a typo can never silently widen or narrow a list.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use idna::AsciiDenyList;

/// Why one glob entry was refused. `Display` is the text after `<glob>: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobError {
    /// The entry is an empty string (or YAML null).
    Empty,
    /// `*` or `*.`: would match every host.
    MatchesEverything,
    /// `*bob.example.com`: a wildcard that is not a whole leading label.
    NotFullPrefix,
    /// `bob.*.example.com`, `*.*.example.com`: wildcards only lead.
    OnlyPrefix,
    /// Valid but not in matching form; carries the form to use.
    NotNormalised { suggestion: String },
    /// Not a usable host name at all; carries why.
    Invalid { why: &'static str },
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::Empty => f.write_str("glob cannot be empty"),
            GlobError::MatchesEverything => f.write_str("domain glob must not match everything"),
            GlobError::NotFullPrefix => {
                f.write_str("domain glob must represent a full prefix (sub)domain")
            }
            GlobError::OnlyPrefix => f.write_str("domain globs are only supported as prefix"),
            GlobError::NotNormalised { suggestion } => {
                write!(f, "incorrect ACL entry; use {suggestion:?}")
            }
            GlobError::Invalid { why } => write!(f, "incorrect ACL entry: {why}"),
        }
    }
}

/// A validated glob, split into its kind and the name it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Glob {
    /// Matches exactly this name.
    Exact(String),
    /// Matches any name ending in `.` + this suffix.
    Below(String),
}

impl Glob {
    /// Whether this one glob matches a canonical host, as a [`GlobSet`]
    /// holding only it would (a `*.` glob never matches its own suffix).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Glob::Exact(name) => host == name,
            Glob::Below(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        }
    }
}

/// Check one ACL entry and return what it matches.
pub fn parse_glob(entry: &str) -> Result<Glob, GlobError> {
    if entry.is_empty() {
        return Err(GlobError::Empty);
    }
    if entry == "*" || entry == "*." {
        return Err(GlobError::MatchesEverything);
    }
    let (wild, name) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None if entry.starts_with('*') => return Err(GlobError::NotFullPrefix),
        None => (false, entry),
    };
    if name.contains('*') {
        return Err(GlobError::OnlyPrefix);
    }
    let canonical = canonical_entry(name)?;
    if canonical != name {
        let suggestion = if wild {
            format!("*.{canonical}")
        } else {
            canonical
        };
        return Err(GlobError::NotNormalised { suggestion });
    }
    Ok(if wild {
        Glob::Below(canonical)
    } else {
        Glob::Exact(canonical)
    })
}

/// The matching form of a name: IP literals in their standard text,
/// DNS names lowercase punycode without trailing dots.
fn canonical_entry(name: &str) -> Result<String, GlobError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(GlobError::Invalid {
            why: "no name left after the trailing dots",
        });
    }
    let ascii =
        idna::domain_to_ascii_cow(trimmed.as_bytes(), AsciiDenyList::URL).map_err(|_| {
            GlobError::Invalid {
                why: "not a valid domain name (IDNA)",
            }
        })?;
    if ascii.split('.').any(str::is_empty) {
        return Err(GlobError::Invalid { why: "empty label" });
    }
    if looks_numeric(&ascii) && ascii.parse::<Ipv4Addr>().is_err() {
        // A URL parser reads `010.1` or `0x7f.1` as an IPv4 address, so such
        // an entry could never match the host as it will be normalised.
        return Err(GlobError::Invalid {
            why: "numeric name that is not a dotted-decimal IPv4 address",
        });
    }
    Ok(ascii.into_owned())
}

/// WHATWG's "ends in a number": the last label is all digits or `0x` hex.
fn looks_numeric(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    match last.strip_prefix("0x").or_else(|| last.strip_prefix("0X")) {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// An indexed set of validated globs. Matching costs a hash lookup for the
/// host and one per parent suffix that has the length of some wildcard
/// entry, independent of how many entries the set holds. Only the last
/// `max_below + 1` bytes of a host are scanned, so a very long host costs no
/// more than a short one.
#[derive(Clone, Debug, Default)]
pub struct GlobSet {
    exact: HashSet<Box<str>>,
    below: HashSet<Box<str>>,
    /// `below_lens[n]` is true when some wildcard suffix has `n` bytes.
    below_lens: Vec<bool>,
    max_exact: usize,
    /// Entries in the order they were added (for introspection).
    entries: Vec<Box<str>>,
}

impl GlobSet {
    /// Add a validated glob.
    pub fn insert(&mut self, glob: Glob) {
        match glob {
            Glob::Exact(name) => {
                self.max_exact = self.max_exact.max(name.len());
                self.entries.push(name.clone().into_boxed_str());
                self.exact.insert(name.into_boxed_str());
            }
            Glob::Below(suffix) => {
                let n = suffix.len();
                if self.below_lens.len() <= n {
                    self.below_lens.resize(n + 1, false);
                }
                if let Some(slot) = self.below_lens.get_mut(n) {
                    *slot = true;
                }
                self.entries.push(format!("*.{suffix}").into_boxed_str());
                self.below.insert(suffix.into_boxed_str());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as written in the ACL, in file order.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &**e)
    }

    /// Whether `host` (already canonical: lowercase, no trailing dot) matches.
    pub fn matches(&self, host: &str) -> bool {
        if host.len() <= self.max_exact && self.exact.contains(host) {
            return true;
        }
        if self.below.is_empty() {
            return false;
        }
        // A suffix of length n needs its dot at byte len - n - 1.
        let max_below = self.below_lens.len().saturating_sub(1);
        let start = host.len().saturating_sub(max_below + 1);
        let bytes = host.as_bytes();
        let Some(window) = bytes.get(start..) else {
            return false;
        };
        for (offset, &b) in window.iter().enumerate() {
            if b != b'.' {
                continue;
            }
            let from = start + offset + 1;
            let len = host.len() - from;
            if !self.below_lens.get(len).copied().unwrap_or(false) {
                continue;
            }
            if let Some(suffix) = host.get(from..) {
                if self.below.contains(suffix) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(globs: &[&str]) -> GlobSet {
        let mut s = GlobSet::default();
        for g in globs {
            s.insert(parse_glob(g).unwrap());
        }
        s
    }

    #[test]
    fn exact_and_wildcard() {
        let s = set(&["example.com", "*.internal"]);
        assert!(s.matches("example.com"));
        assert!(!s.matches("www.example.com"));
        assert!(s.matches("a.internal"));
        assert!(s.matches("a.b.c.internal"));
        assert!(!s.matches("internal"));
        assert!(!s.matches("xinternal"));
        assert!(!s.matches("a.internal.evil"));
        assert!(!s.matches(""));
    }

    #[test]
    fn several_suffix_lengths() {
        let s = set(&["*.b.example.com", "*.com"]);
        assert!(s.matches("x.com"));
        assert!(s.matches("a.b.example.com"));
        let t = set(&["*.b.example.com"]);
        assert!(!t.matches("b.example.com"));
        assert!(!t.matches("c.example.com"));
        assert!(t.matches("z.y.b.example.com"));
    }

    #[test]
    fn long_host_does_not_match_short_suffix_wrongly() {
        let s = set(&["*.io"]);
        let long = format!("{}fly.io", "a.".repeat(10_000));
        assert!(s.matches(&long));
        let long_miss = format!("{}fly.iox", "a.".repeat(10_000));
        assert!(!s.matches(&long_miss));
    }

    #[test]
    fn validation_errors() {
        assert_eq!(parse_glob(""), Err(GlobError::Empty));
        assert_eq!(parse_glob("*"), Err(GlobError::MatchesEverything));
        assert_eq!(parse_glob("*."), Err(GlobError::MatchesEverything));
        assert_eq!(
            parse_glob("*bob.example.com"),
            Err(GlobError::NotFullPrefix)
        );
        assert_eq!(parse_glob("bob.ex*ample.com"), Err(GlobError::OnlyPrefix));
        assert_eq!(parse_glob("*.*.x.com"), Err(GlobError::OnlyPrefix));
        assert_eq!(
            parse_glob("éxämple.com"),
            Err(GlobError::NotNormalised {
                suggestion: "xn--xmple-gra7a.com".into()
            })
        );
        assert_eq!(
            parse_glob("*.Example.COM."),
            Err(GlobError::NotNormalised {
                suggestion: "*.example.com".into()
            })
        );
        assert_eq!(
            parse_glob("2001:DB8::1"),
            Err(GlobError::NotNormalised {
                suggestion: "2001:db8::1".into()
            })
        );
        assert!(matches!(parse_glob("a..b"), Err(GlobError::Invalid { .. })));
        assert!(matches!(
            parse_glob(".example.com"),
            Err(GlobError::Invalid { .. })
        ));
        assert!(matches!(
            parse_glob("example.com:443"),
            Err(GlobError::Invalid { .. })
        ));
        assert!(matches!(
            parse_glob("0x7f.1"),
            Err(GlobError::Invalid { .. })
        ));
        assert!(matches!(
            parse_glob("010.0.0.1"),
            Err(GlobError::Invalid { .. })
        ));
        assert_eq!(parse_glob("10.0.0.1"), Ok(Glob::Exact("10.0.0.1".into())));
        assert_eq!(
            parse_glob("my_host.internal"),
            Ok(Glob::Exact("my_host.internal".into()))
        );
        assert_eq!(
            parse_glob("*.xn--xmple-gra7a.com"),
            Ok(Glob::Below("xn--xmple-gra7a.com".into()))
        );
    }
}
