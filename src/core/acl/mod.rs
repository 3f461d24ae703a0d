//! The Smokescreen `version: v1` egress ACL: loading, validation, glob
//! matching and the decision order.
//!
//! The rules, the order and every text are specified in `spec/acl.md`.
//! Loading does all the work (validation, indexing) so that [`Acl::decide`]
//! is a handful of hash lookups with no allocation for a canonical host.

mod error;
pub mod glob;
pub mod load;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use idna::AsciiDenyList;

use crate::core::mitm::{self, Interception, MitmError, Secret, ValueSource};

pub use error::AclError;
pub use glob::{parse_glob, Glob, GlobError, GlobSet};

/// What a rule does with hosts that are not in its allowed domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Open,
    Report,
    Enforce,
}

impl Action {
    /// The capitalised policy name Smokescreen prints in the
    /// disabled-policy error (`Open`, `Report`, `Enforce`).
    pub fn policy_name(self) -> &'static str {
        match self {
            Action::Open => "Open",
            Action::Report => "Report",
            Action::Enforce => "Enforce",
        }
    }

    /// The YAML spelling (`open`, `report`, `enforce`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Report => "report",
            Action::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not `open`, `report` or `enforce` (exact case,
/// as in Smokescreen). `Display`: `unknown action <a>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseActionError(pub String);

impl fmt::Display for ParseActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown action {}", self.0)
    }
}

impl std::error::Error for ParseActionError {}

impl FromStr for Action {
    type Err = ParseActionError;
    fn from_str(s: &str) -> Result<Action, ParseActionError> {
        match s {
            "open" => Ok(Action::Open),
            "report" => Ok(Action::Report),
            "enforce" => Ok(Action::Enforce),
            other => Err(ParseActionError(other.to_owned())),
        }
    }
}

/// The outcome class of an ACL decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed, but enforce would have denied: logged with `enforce_would_deny=true`.
    AllowAndReport,
    Deny,
}

/// Why the ACL decided as it did. `Display` is Smokescreen's exact text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    NoRuleMatched,
    AllowedDomain,
    GlobalDenyList,
    GlobalAllowList,
    ReportPolicy,
    EnforcePolicy,
    OpenPolicy,
    DefaultRulePolicy,
    NotConfigured,
    /// The request's `X-Upstream-Https-Proxy` is not in the rule's
    /// `allowed_external_proxies`.
    ConnectProxyNotAllowed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NoRuleMatched => "no rule matched",
            Reason::AllowedDomain => "host matched allowed domain in rule",
            Reason::GlobalDenyList => "host matched rule in global deny list",
            Reason::GlobalAllowList => "host matched rule in global allow list",
            Reason::ReportPolicy => "rule has allow and report policy",
            Reason::EnforcePolicy => "rule has enforce policy",
            Reason::OpenPolicy => "rule has open enforcement policy",
            Reason::DefaultRulePolicy => "default rule policy used",
            Reason::NotConfigured => "Egress ACL is not configured",
            Reason::ConnectProxyNotAllowed => "connect proxy host not allowed in rule",
        })
    }
}

/// One ACL decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The matched rule's project (empty when no rule matched).
    pub project: String,
    /// The role had no rule of its own and the default rule decided
    /// (Smokescreen's `def_rule` metric tag).
    pub default_rule: bool,
    /// The rule's `mitm_domains` entry for the host, when the host matched
    /// one of its allowed domains (as in Smokescreen).
    pub intercept: Option<Arc<Interception>>,
}

impl Decision {
    /// Decision used when no ACL file is configured at all.
    pub fn not_configured() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            reason: Reason::NotConfigured,
            project: String::new(),
            default_rule: false,
            intercept: None,
        }
    }
    pub fn allows(&self) -> bool {
        self.verdict != Verdict::Deny
    }
    /// `enforce_would_deny` as Smokescreen logs it.
    pub fn enforce_would_deny(&self) -> bool {
        self.verdict != Verdict::Allow
    }
}

// Where in the file a rule-level error is: a service's name, or one of
// these fixed names (Smokescreen's).
/// The place name of the `default` rule in errors.
pub const DEFAULT_RULE: &str = "default_rule";
/// The place name of `global_deny_list` in errors.
pub const GLOBAL_DENY_LIST: &str = "global_deny_list";
/// The place name of `global_allow_list` in errors.
pub const GLOBAL_ALLOW_LIST: &str = "global_allow_list";

/// The warning logged when the file has no `default` rule.
pub const NO_DEFAULT_WARNING: &str =
    "no default rule set. any services without a rule will be denied.";

/// Keys of later Smokescreen versions that change behaviour we do not have;
/// refusing them beats silently ignoring them.
const UNSUPPORTED_RULE_KEYS: [&str; 0] = [];

/// One validated rule (a service or the default).
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    project: String,
    action: Action,
    allowed: GlobSet,
    /// `allowed_external_proxies`: hosts the client may name as the next proxy.
    external_proxies: GlobSet,
    /// `mitm_domains`, in file order.
    mitm: Vec<Arc<Interception>>,
}

impl Rule {
    /// The service name (`default_rule` for the default rule).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn project(&self) -> &str {
        &self.project
    }
    pub fn action(&self) -> Action {
        self.action
    }
    /// The `allowed_domains` entries, in file order.
    pub fn allowed_domains(&self) -> impl Iterator<Item = &str> {
        self.allowed.entries()
    }
    /// The `mitm_domains` entries, in file order.
    pub fn mitm_domains(&self) -> impl Iterator<Item = &Interception> {
        self.mitm.iter().map(|m| m.as_ref())
    }
}

/// A loaded, validated ACL.
#[derive(Clone, Debug)]
pub struct Acl {
    /// Services in file order.
    rules: Vec<Rule>,
    by_name: HashMap<Box<str>, usize>,
    default: Option<Rule>,
    global_deny: GlobSet,
    global_allow: GlobSet,
}

impl Acl {
    /// Load from YAML text. `disabled` lists actions no rule may use
    /// (`--disable-acl-policy-action`). Warnings (e.g. no default rule) are
    /// returned for the shell to log.
    ///
    /// Errors are reported one at a time, the first in file order: services,
    /// then `default`, then `global_deny_list`, then `global_allow_list`.
    pub fn from_yaml(text: &str, disabled: &[Action]) -> Result<(Acl, Vec<String>), AclError> {
        let raw = load::parse(text).map_err(|e| AclError::Yaml(e.to_string()))?;
        let version = raw.version.map(|t| t.0).unwrap_or_default();
        if version != "v1" {
            return Err(AclError::Version(version));
        }
        let services = raw.services.ok_or(AclError::ServicesMissing)?;

        let mut rules = Vec::with_capacity(services.len());
        let mut by_name = HashMap::with_capacity(services.len());
        for (index, raw_rule) in services.into_iter().enumerate() {
            let name = raw_rule
                .name
                .as_ref()
                .map(|t| t.0.clone())
                .unwrap_or_default();
            let place = if name.is_empty() {
                format!("services[{index}]")
            } else {
                name.clone()
            };
            check_keys(&place, &raw_rule.other)?;
            if name.is_empty() {
                return Err(AclError::MissingName { index });
            }
            let rule = build_rule(&place, raw_rule, disabled)?;
            if by_name.contains_key(name.as_str()) {
                return Err(AclError::DuplicateRule { name });
            }
            by_name.insert(name.into_boxed_str(), rules.len());
            rules.push(rule);
        }

        let default = match raw.default {
            Some(raw_rule) => {
                check_keys(DEFAULT_RULE, &raw_rule.other)?;
                Some(build_rule(DEFAULT_RULE, raw_rule, disabled)?)
            }
            None => None,
        };
        let global_deny = build_set(GLOBAL_DENY_LIST, raw.global_deny_list)?;
        let global_allow = build_set(GLOBAL_ALLOW_LIST, raw.global_allow_list)?;

        let mut warnings: Vec<String> = raw
            .other
            .keys()
            .map(|k| {
                format!(
                    "ignoring unknown top-level key '{}' in the ACL",
                    load::key_text(k)
                )
            })
            .collect();
        if default.is_none() {
            warnings.push(NO_DEFAULT_WARNING.to_owned());
        }
        Ok((
            Acl {
                rules,
                by_name,
                default,
                global_deny,
                global_allow,
            },
            warnings,
        ))
    }

    /// Decide for `role` and a normalised host (lowercase punycode, no
    /// trailing dot; an IP literal as its text). A host that is not
    /// normalised is made so first (case, trailing dots, Unicode), so
    /// `FOO.INTERNAL.` cannot slip past `*.internal`.
    pub fn decide(&self, role: &str, host: &str) -> Decision {
        self.decide_with_proxy(role, host, None)
    }

    /// [`Acl::decide`] for a request that names the next proxy
    /// (`X-Upstream-Https-Proxy`): as in Smokescreen HEAD, a proxy host the
    /// rule's `allowed_external_proxies` does not match is denied before
    /// anything else, whatever the rule's action.
    pub fn decide_with_proxy(&self, role: &str, host: &str, proxy: Option<&str>) -> Decision {
        let (rule, is_default) = match self.by_name.get(role).and_then(|&i| self.rules.get(i)) {
            Some(rule) => (rule, false),
            None => match &self.default {
                Some(rule) => (rule, true),
                None => {
                    return Decision {
                        verdict: Verdict::Deny,
                        reason: Reason::NoRuleMatched,
                        project: String::new(),
                        default_rule: false,
                        intercept: None,
                    }
                }
            },
        };
        let proxy_allowed =
            |p: &str| canonical_host(p).is_some_and(|p| rule.external_proxies.matches(&p));
        if proxy.is_some_and(|p| !proxy_allowed(p)) {
            return Decision {
                verdict: Verdict::Deny,
                reason: Reason::ConnectProxyNotAllowed,
                project: rule.project.clone(),
                default_rule: is_default,
                intercept: None,
            };
        }
        let host = canonical_host(host);
        let (verdict, reason) = self.judge(rule, is_default, host.as_deref());
        let intercept = match (reason, host.as_deref()) {
            (Reason::AllowedDomain, Some(host)) => rule.intercept(host),
            _ => None,
        };
        Decision {
            verdict,
            reason,
            project: rule.project.clone(),
            default_rule: is_default,
            intercept,
        }
    }

    /// Steps 2 to 6 of the decision order. A host that cannot be made
    /// canonical matches no glob (as in Smokescreen) and falls to the policy.
    fn judge(&self, rule: &Rule, is_default: bool, host: Option<&str>) -> (Verdict, Reason) {
        if let Some(host) = host {
            if rule.allowed.matches(host) {
                return (Verdict::Allow, Reason::AllowedDomain);
            }
            if self.global_deny.matches(host) {
                return (Verdict::Deny, Reason::GlobalDenyList);
            }
            if self.global_allow.matches(host) {
                return (Verdict::Allow, Reason::GlobalAllowList);
            }
        }
        let (verdict, reason) = match rule.action {
            Action::Report => (Verdict::AllowAndReport, Reason::ReportPolicy),
            Action::Enforce => (Verdict::Deny, Reason::EnforcePolicy),
            Action::Open => (Verdict::Allow, Reason::OpenPolicy),
        };
        (
            verdict,
            if is_default {
                Reason::DefaultRulePolicy
            } else {
                reason
            },
        )
    }

    /// Service names in file order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// The service rule named exactly `name` (the default is not consulted).
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.by_name.get(name).and_then(|&i| self.rules.get(i))
    }

    pub fn default_rule(&self) -> Option<&Rule> {
        self.default.as_ref()
    }

    /// The rule a decision for `role` came from, as the policy tools name
    /// it: a service name, `default_rule`, `global_deny_list`,
    /// `global_allow_list`, or empty when none applied.
    pub fn rule_applied(&self, role: &str, reason: Reason) -> &str {
        match reason {
            Reason::GlobalDenyList => GLOBAL_DENY_LIST,
            Reason::GlobalAllowList => GLOBAL_ALLOW_LIST,
            Reason::NoRuleMatched | Reason::NotConfigured => "",
            _ => match self.rule(role) {
                Some(r) => r.name(),
                None => DEFAULT_RULE,
            },
        }
    }

    /// Whether `host` (normalised as in [`Acl::decide`]) matches the global
    /// deny list: used for every name a CNAME chain leads through, which
    /// must not reach what the list keeps out by asking under another name.
    pub fn globally_denied(&self, host: &str) -> bool {
        canonical_host(host).is_some_and(|h| self.global_deny.matches(&h))
    }

    pub fn global_deny_list(&self) -> impl Iterator<Item = &str> {
        self.global_deny.entries()
    }

    pub fn global_allow_list(&self) -> impl Iterator<Item = &str> {
        self.global_allow.entries()
    }

    /// Whether any rule intercepts (then a MITM CA must be configured).
    pub fn uses_mitm(&self) -> bool {
        self.rules
            .iter()
            .chain(&self.default)
            .any(|r| !r.mitm.is_empty())
    }

    /// Fill in every `${env:..}` / `${file:..}` header value with what
    /// `read` returns for it (config reads; the core does not). The first
    /// failure is returned, naming where it is but never a value.
    pub fn resolve_secrets(
        &mut self,
        mut read: impl FnMut(&ValueSource) -> Result<String, String>,
    ) -> Result<(), AclError> {
        for rule in self.rules.iter_mut().chain(self.default.as_mut()) {
            for entry in rule.mitm.iter_mut() {
                let entry = Arc::make_mut(entry);
                for h in entry.add_headers.iter_mut() {
                    if h.source == ValueSource::Literal {
                        continue;
                    }
                    let fail = |why: String| AclError::Secret {
                        rule: rule.name.clone(),
                        problem: format!(
                            "mitm_domains: {}: add_headers: {}: {}: {why}",
                            entry.domain, h.name, h.source
                        ),
                    };
                    let value = read(&h.source).map_err(fail)?;
                    if !mitm::value_ok(&value) {
                        return Err(fail(
                            "the value has a control character (CR, LF or NUL)".to_owned(),
                        ));
                    }
                    h.value = Secret::new(value);
                }
            }
        }
        Ok(())
    }
}

impl Rule {
    /// The first `mitm_domains` entry matching a canonical host.
    fn intercept(&self, host: &str) -> Option<Arc<Interception>> {
        let position = mitm::position(self.mitm.iter().map(|m| m.as_ref()), host)?;
        self.mitm.get(position).cloned()
    }
}

/// Refuse keys a rule does not have. `name` is accepted (and ignored) in
/// the default rule, as Smokescreen reads both with one type.
fn check_keys(place: &str, other: &serde_yaml::Mapping) -> Result<(), AclError> {
    match other.keys().next() {
        None => Ok(()),
        Some(key) => {
            let key = load::key_text(key);
            if UNSUPPORTED_RULE_KEYS.contains(&key.as_str()) {
                Err(AclError::UnsupportedKey {
                    rule: place.to_owned(),
                    key,
                })
            } else {
                Err(AclError::UnknownKey {
                    rule: place.to_owned(),
                    key,
                })
            }
        }
    }
}

/// Validate one rule: action, then its globs, then the disabled actions.
fn build_rule(place: &str, raw: load::RawRule, disabled: &[Action]) -> Result<Rule, AclError> {
    let action_text = raw.action.map(|t| t.0).unwrap_or_default();
    if action_text.is_empty() {
        return Err(AclError::MissingAction {
            rule: place.to_owned(),
        });
    }
    let action = action_text
        .parse::<Action>()
        .map_err(|e| AclError::UnknownAction {
            rule: place.to_owned(),
            action: e.0,
        })?;
    let written = load::texts(raw.allowed_domains.as_deref());
    let allowed = build_set(place, raw.allowed_domains)?;
    let external_proxies = build_set(place, raw.allowed_external_proxies)?;
    let mitm =
        mitm::from_entries(&written, raw.mitm_domains.unwrap_or_default()).map_err(|error| {
            AclError::Mitm {
                rule: place.to_owned(),
                error,
            }
        })?;
    if disabled.contains(&action) {
        return Err(AclError::DisabledPolicy {
            rule: place.to_owned(),
            action,
        });
    }
    Ok(Rule {
        name: place.to_owned(),
        project: raw.project.map(|t| t.0).unwrap_or_default(),
        action,
        allowed,
        external_proxies,
        mitm,
    })
}

fn build_set(place: &str, entries: Option<Vec<load::Text>>) -> Result<GlobSet, AclError> {
    let mut set = GlobSet::default();
    for load::Text(entry) in entries.unwrap_or_default() {
        match parse_glob(&entry) {
            Ok(glob) => set.insert(glob),
            Err(error) => {
                return Err(AclError::Glob {
                    rule: place.to_owned(),
                    glob: entry,
                    error,
                })
            }
        }
    }
    Ok(set)
}

/// The host as globs are written: lowercase, punycode, no trailing dots.
/// Borrowed (no allocation) when the caller already normalised it; `None`
/// when it cannot be made canonical (then it matches no glob).
fn canonical_host(raw: &str) -> Option<Cow<'_, str>> {
    let trimmed = raw.trim_end_matches('.');
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.is_ascii() {
        if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            return Some(Cow::Owned(trimmed.to_ascii_lowercase()));
        }
        return Some(Cow::Borrowed(trimmed));
    }
    let ascii = idna::domain_to_ascii_cow(trimmed.as_bytes(), AsciiDenyList::URL).ok()?;
    let ascii = ascii.trim_end_matches('.');
    if ascii.is_empty() {
        return None;
    }
    Some(Cow::Owned(ascii.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLY: &str = "version: v1
services:
  - name: authed
    project: users
    action: report
default:
    project: other
    action: enforce
global_deny_list:
  - \"*.internal\"
";

    #[test]
    fn fly_example() {
        let (acl, warnings) = Acl::from_yaml(FLY, &[]).unwrap();
        assert!(warnings.is_empty());
        let d = acl.decide("authed", "fly.io");
        assert_eq!(
            (d.verdict, d.reason, d.project.as_str()),
            (Verdict::AllowAndReport, Reason::ReportPolicy, "users")
        );
        let d = acl.decide("authed", "FOO.INTERNAL.");
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Deny, Reason::GlobalDenyList)
        );
        let d = acl.decide("nobody", "fly.io");
        assert_eq!(
            (d.verdict, d.reason, d.project.as_str()),
            (Verdict::Deny, Reason::DefaultRulePolicy, "other")
        );
    }

    #[test]
    fn canonical_host_borrows_when_already_canonical() {
        assert!(matches!(
            canonical_host("fly.io"),
            Some(Cow::Borrowed("fly.io"))
        ));
        assert!(matches!(
            canonical_host("fly.io."),
            Some(Cow::Borrowed("fly.io"))
        ));
        assert_eq!(canonical_host("FLY.io").as_deref(), Some("fly.io"));
        assert_eq!(
            canonical_host("bücher.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(canonical_host("..."), None);
        assert_eq!(canonical_host(""), None);
    }

    #[test]
    fn action_round_trip() {
        for a in [Action::Open, Action::Report, Action::Enforce] {
            assert_eq!(a.to_string().parse::<Action>(), Ok(a));
        }
        assert_eq!(
            "Open".parse::<Action>().unwrap_err().to_string(),
            "unknown action Open"
        );
    }

    #[test]
    fn introspection() {
        let (acl, _) = Acl::from_yaml(FLY, &[]).unwrap();
        assert_eq!(acl.rule_names().collect::<Vec<_>>(), ["authed"]);
        assert_eq!(acl.rule("authed").map(Rule::action), Some(Action::Report));
        assert_eq!(acl.default_rule().map(Rule::project), Some("other"));
        assert_eq!(acl.global_deny_list().collect::<Vec<_>>(), ["*.internal"]);
        assert_eq!(acl.global_allow_list().count(), 0);
    }
}
