//! What a decision counts towards: the ACL outcome and the address rule of
//! a request, and each rule's metric name. Shared by the Prometheus
//! registry (`metrics`) and the statsd sender (`statsd`), so both count
//! the same events under the same names.

use crate::core::addr::{Rule, SelfEndpoints};
use crate::core::decision::{Approved, Pending, Policy, Refusal, RefusalKind};

/// Every address rule, so each counter exists (at 0) from the start.
pub const ALL_RULES: [Rule; 10] = [
    Rule::AllowDefault,
    Rule::AllowUserConfigured,
    Rule::DenyNotGlobalUnicast,
    Rule::DenyPrivateRange,
    Rule::DenyUserConfigured,
    Rule::DenyCgnat,
    Rule::DenyIpv6Embedding,
    Rule::DenySelfConnection,
    Rule::DenyReserved,
    Rule::DenyMetadata,
];

/// The counter name (before the `_total` suffix) for an address rule.
/// Exhaustive, so a new rule cannot ship without its counter.
pub fn rule_metric_name(rule: Rule) -> &'static str {
    match rule {
        Rule::AllowDefault => "resolver_allow_default",
        Rule::AllowUserConfigured => "resolver_allow_user_configured",
        Rule::DenyNotGlobalUnicast => "resolver_deny_not_global_unicast",
        Rule::DenyPrivateRange => "resolver_deny_private_range",
        Rule::DenyUserConfigured => "resolver_deny_user_configured",
        Rule::DenyCgnat => "resolver_deny_cgnat_range",
        Rule::DenyIpv6Embedding => "resolver_deny_ipv6_embedding",
        Rule::DenySelfConnection => "resolver_deny_self_connection",
        Rule::DenyReserved => "resolver_deny_reserved_range",
        Rule::DenyMetadata => "resolver_deny_cloud_metadata",
    }
}

/// Which ACL counter a first-step outcome counts towards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclOutcome {
    Allow,
    Report,
    Deny,
    RoleNotDetermined,
}

/// Classify the result of `decision::before_dns` for the ACL counters.
/// `None`: the outcome is not an ACL decision (no such case today, kept
/// so a new refusal kind is not miscounted).
pub fn acl_outcome(result: &Result<Pending, Box<Refusal>>) -> Option<AclOutcome> {
    match result {
        Ok(p) if p.verdicts.enforce_would_deny => Some(AclOutcome::Report),
        Ok(_) => Some(AclOutcome::Allow),
        Err(r) => match r.kind {
            RefusalKind::Role(_) => Some(AclOutcome::RoleNotDetermined),
            RefusalKind::Acl => Some(AclOutcome::Deny),
            _ => None,
        },
    }
}

/// The address rule a second-step outcome counts towards: the rule that let
/// the chosen address through, or the rule that refused the first answer
/// (the one the deny message names). DNS failures decide no address.
pub fn address_outcome(
    result: &Result<Approved, Box<Refusal>>,
    policy: &Policy,
    me: &SelfEndpoints,
) -> Option<Rule> {
    match result {
        Ok(approved) => Some(policy.addresses.classify(approved.addr, me)),
        Err(r) if r.kind == RefusalKind::Address => r.rejected.first().map(|(_, rule)| *rule),
        Err(_) => None,
    }
}
