//! What `suggest-acl` proposes, as pure functions: which logged requests an
//! ACL entry could allow, which hosts already are, and how sibling hosts
//! collapse into one `*.parent` glob. The public-suffix list is passed in
//! as a predicate, so the core carries no list of its own.

use std::collections::BTreeMap;

use crate::core::acl::{Acl, Reason};
use crate::core::decision::{ADDRESS_DENIED_REASON, ROLE_UNKNOWN_REASON};
use crate::core::log_read::LoggedDecision;

/// `Reason::GlobalDenyList` as logged.
const GLOBAL_DENY_REASON: &str = "host matched rule in global deny list";

/// What a logged decision tells the ACL author.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lesson {
    /// A role reached (or tried to reach) a host: an ACL entry can allow it.
    Host,
    /// The address rules denied it: no ACL entry can allow it.
    AddressDenied,
    /// The global deny list refused it: no service entry can allow it.
    GloballyDenied,
    /// No role could be determined: nothing to learn.
    NoRole,
}

/// Sort a logged decision by what an ACL could do about it.
pub fn lesson(d: &LoggedDecision<'_>) -> Lesson {
    if d.decision_reason == ADDRESS_DENIED_REASON {
        Lesson::AddressDenied
    } else if d.decision_reason == GLOBAL_DENY_REASON {
        Lesson::GloballyDenied
    } else if d.decision_reason == ROLE_UNKNOWN_REASON {
        Lesson::NoRole
    } else {
        Lesson::Host
    }
}

/// Whether `role` needs a new entry to reach `host` under `acl` in enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The ACL's own entries already allow it.
    Covered,
    /// An `allowed_domains` entry would allow it.
    Entry,
    /// The global deny list refuses it whatever the service allows.
    GloballyDenied,
}

/// Decide with the ACL the entry would be added to (`None`: an empty one).
pub fn need(acl: Option<&Acl>, role: &str, host: &str) -> Need {
    let Some(acl) = acl else {
        return Need::Entry;
    };
    let d = acl.decide(role, host);
    match d.reason {
        Reason::GlobalDenyList => Need::GloballyDenied,
        Reason::AllowedDomain | Reason::GlobalAllowList => Need::Covered,
        _ if !d.enforce_would_deny() => Need::Covered,
        _ => Need::Entry,
    }
}

/// How often a host (or glob) was requested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub requests: u64,
    /// The latest logged `time` (RFC 3339 in UTC sorts as text).
    pub last_seen: String,
}

impl Seen {
    pub fn add(&mut self, requests: u64, time: &str) {
        self.requests += requests;
        if time > self.last_seen.as_str() {
            self.last_seen.clear();
            self.last_seen.push_str(time);
        }
    }
}

/// One suggested `allowed_domains` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// A host, or `*.parent`.
    pub pattern: String,
    /// Distinct hosts the entry stands for (1 for a plain host).
    pub hosts: usize,
    pub seen: Seen,
}

/// Collapse hosts into `*.parent` globs where at least `threshold` distinct
/// names below one parent were seen (0 or 1: never), unless the parent is a
/// public suffix (`*.co.uk` would allow every company in the UK) or a
/// single label. A glob also absorbs deeper names below its parent.
/// Entries come out sorted by pattern.
pub fn collapse(
    hosts: &BTreeMap<String, Seen>,
    threshold: usize,
    is_public_suffix: &dyn Fn(&str) -> bool,
) -> Vec<Entry> {
    let mut children: BTreeMap<&str, usize> = BTreeMap::new();
    if threshold >= 2 {
        for host in hosts.keys() {
            if let Some((_, parent)) = host.split_once('.') {
                if parent.contains('.') && host.parse::<std::net::IpAddr>().is_err() {
                    *children.entry(parent).or_default() += 1;
                }
            }
        }
    }
    let globbed: Vec<&str> = children
        .iter()
        .filter(|(parent, n)| **n >= threshold && !is_public_suffix(parent))
        .map(|(parent, _)| *parent)
        .collect();
    // A parent nested in another globbed parent is covered by the outer glob.
    let outermost = |host: &str| {
        globbed
            .iter()
            .filter(|p| {
                host.len() > p.len() + 1
                    && host.ends_with(*p)
                    && host[..host.len() - p.len()].ends_with('.')
            })
            .min_by_key(|p| p.len())
            .copied()
    };
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    for (host, seen) in hosts {
        let pattern = match outermost(host) {
            Some(parent) => format!("*.{parent}"),
            None => host.clone(),
        };
        let e = out.entry(pattern.clone()).or_insert_with(|| Entry {
            pattern,
            hosts: 0,
            seen: Seen::default(),
        });
        e.hosts += 1;
        e.seen.add(seen.requests, &seen.last_seen);
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[(&str, u64)]) -> BTreeMap<String, Seen> {
        list.iter()
            .map(|(h, n)| {
                (
                    h.to_string(),
                    Seen {
                        requests: *n,
                        last_seen: format!("2026-11-30T12:00:0{n}Z"),
                    },
                )
            })
            .collect()
    }

    fn suffix(s: &str) -> bool {
        matches!(s, "com" | "co.uk" | "github.io")
    }

    fn patterns(e: &[Entry]) -> Vec<&str> {
        e.iter().map(|e| e.pattern.as_str()).collect()
    }

    #[test]
    fn siblings_collapse_at_the_threshold_and_absorb_deeper_names() {
        let h = hosts(&[
            ("a.s3.example.com", 1),
            ("b.s3.example.com", 2),
            ("c.s3.example.com", 3),
            ("x.y.s3.example.com", 1),
            ("api.example.com", 5),
        ]);
        let e = collapse(&h, 3, &suffix);
        assert_eq!(patterns(&e), ["*.s3.example.com", "api.example.com"]);
        assert_eq!(e[0].hosts, 4);
        assert_eq!(e[0].seen.requests, 7);
        assert_eq!(e[0].seen.last_seen, "2026-11-30T12:00:03Z");
        assert_eq!(patterns(&collapse(&h, 4, &suffix)).len(), 5);
        assert_eq!(patterns(&collapse(&h, 0, &suffix)).len(), 5);
    }

    #[test]
    fn never_a_glob_over_a_public_suffix_or_one_label() {
        let h = hosts(&[
            ("a.co.uk", 1),
            ("b.co.uk", 1),
            ("alice.github.io", 1),
            ("bob.github.io", 1),
            ("x.com", 1),
            ("y.com", 1),
        ]);
        let e = collapse(&h, 2, &suffix);
        assert_eq!(e.len(), 6, "{:?}", patterns(&e));
        let ips = hosts(&[("10.0.0.1", 1), ("10.0.0.2", 1)]);
        assert_eq!(collapse(&ips, 2, &|_| false).len(), 2);
    }

    #[test]
    fn lessons_follow_the_logged_reason() {
        let d = |reason: &'static str| LoggedDecision {
            decision_reason: reason.into(),
            ..LoggedDecision::default()
        };
        assert_eq!(lesson(&d(ADDRESS_DENIED_REASON)), Lesson::AddressDenied);
        assert_eq!(lesson(&d(ROLE_UNKNOWN_REASON)), Lesson::NoRole);
        assert_eq!(lesson(&d("rule has allow and report policy")), Lesson::Host);
        let global = Reason::GlobalDenyList.to_string();
        assert_eq!(GLOBAL_DENY_REASON, global);
        assert_eq!(lesson(&d(GLOBAL_DENY_REASON)), Lesson::GloballyDenied);
    }

    #[test]
    fn need_uses_the_acl_decision() {
        let (acl, _) = Acl::from_yaml(
            "version: v1\nservices:\n  - name: r\n    project: p\n    action: report\n    allowed_domains: [a.example]\nglobal_deny_list: [bad.example]\n",
            &[],
        )
        .expect("acl");
        assert_eq!(need(Some(&acl), "r", "a.example"), Need::Covered);
        assert_eq!(need(Some(&acl), "r", "b.example"), Need::Entry);
        assert_eq!(need(Some(&acl), "r", "bad.example"), Need::GloballyDenied);
        assert_eq!(need(None, "r", "a.example"), Need::Entry);
    }
}
