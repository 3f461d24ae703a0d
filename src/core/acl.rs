//! The Smokescreen `version: v1` egress ACL: loading, validation, glob
//! matching and the decision order.

use std::fmt;

/// What a rule does with hosts that are not in its allowed domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Open,
    Report,
    Enforce,
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
}

impl Decision {
    /// Decision used when no ACL file is configured at all.
    pub fn not_configured() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            reason: Reason::NotConfigured,
            project: String::new(),
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

/// A load error. `Display` is Smokescreen's text, prefixed with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclError {
    Todo,
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid ACL")
    }
}

impl std::error::Error for AclError {}

/// A loaded, validated ACL.
#[derive(Clone, Debug)]
pub struct Acl {}

impl Acl {
    /// Load from YAML text. `disabled` lists actions no rule may use
    /// (`--disable-acl-policy-action`). Warnings (e.g. no default rule) are
    /// returned for the shell to log.
    pub fn from_yaml(_text: &str, _disabled: &[Action]) -> Result<(Acl, Vec<String>), AclError> {
        todo!("helper: ACL load")
    }

    /// Decide for `role` and a normalised host (lowercase punycode, no
    /// trailing dot; an IP literal as its text).
    pub fn decide(&self, _role: &str, _host: &str) -> Decision {
        todo!("helper: ACL decide")
    }
}
