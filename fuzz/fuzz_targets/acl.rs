//! ACL YAML loading, then a decision for a fuzzed role and host.
//!
//! Input layout: `role \n host \n YAML` (see `AclInput`).
//!
//! Invariants:
//! - loading with a disabled action succeeds exactly when loading without it
//!   succeeds and no rule (nor the default) uses that action;
//! - a decision is consistent with the rule it came from: its project, and on
//!   a policy fall-through the verdict of the rule's action;
//! - the reason fixes the verdict (allowed domain → allow, deny list → deny, ...);
//! - spelling the host differently (ASCII case, one trailing dot, or the form
//!   `normalise_host` gives it) never changes the decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smokescreen::core::acl::{Acl, Action, Decision, Reason, Verdict};
use smokescreen::core::target::{normalise_host, Host};
use smokescreen_fuzz::AclInput;

const ACTIONS: [Action; 3] = [Action::Open, Action::Report, Action::Enforce];

fn check_decision(acl: &Acl, role: &str, d: &Decision) {
    let rule = acl.rule(role).or(acl.default_rule());
    let Some(rule) = rule else {
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.reason, Reason::NoRuleMatched);
        assert!(d.project.is_empty());
        return;
    };
    assert_eq!(d.project, rule.project(), "project of another rule");
    let is_default = acl.rule(role).is_none();
    let policy = match rule.action() {
        Action::Open => Verdict::Allow,
        Action::Report => Verdict::AllowAndReport,
        Action::Enforce => Verdict::Deny,
    };
    match d.reason {
        Reason::AllowedDomain | Reason::GlobalAllowList => assert_eq!(d.verdict, Verdict::Allow),
        Reason::GlobalDenyList => assert_eq!(d.verdict, Verdict::Deny),
        Reason::DefaultRulePolicy => {
            assert!(is_default);
            assert_eq!(d.verdict, policy);
        }
        Reason::OpenPolicy | Reason::ReportPolicy | Reason::EnforcePolicy => {
            assert!(!is_default, "a service reason for the default rule");
            assert_eq!(d.verdict, policy);
            let expected = match rule.action() {
                Action::Open => Reason::OpenPolicy,
                Action::Report => Reason::ReportPolicy,
                Action::Enforce => Reason::EnforcePolicy,
            };
            assert_eq!(d.reason, expected);
        }
        Reason::NoRuleMatched | Reason::NotConfigured => {
            panic!("{:?} although rule {:?} applies", d.reason, rule.name())
        }
        // Only `decide_with_proxy` judges a client-named proxy.
        Reason::ConnectProxyNotAllowed => panic!("no proxy was named, yet {:?}", d.reason),
    }
    assert_eq!(d.allows(), d.verdict != Verdict::Deny);
    assert_eq!(d.enforce_would_deny(), d.verdict != Verdict::Allow);
}

fn uses(acl: &Acl, action: Action) -> bool {
    acl.rule_names()
        .filter_map(|n| acl.rule(n))
        .chain(acl.default_rule())
        .any(|r| r.action() == action)
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = AclInput::parse(data) else {
        return;
    };
    let loaded = Acl::from_yaml(input.yaml, &[]);
    // Loading with each action disabled in turn.
    for action in ACTIONS {
        let with_disabled = Acl::from_yaml(input.yaml, &[action]);
        match &loaded {
            Ok((acl, _)) => assert_eq!(
                with_disabled.is_ok(),
                !uses(acl, action),
                "disabling {action} disagrees with the rules' actions"
            ),
            Err(_) => assert!(with_disabled.is_err(), "disabling {action} made it load"),
        }
    }
    let (acl, warnings) = match loaded {
        Ok(ok) => ok,
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            return;
        }
    };
    assert!(warnings.iter().all(|w| !w.is_empty()));
    for name in acl.rule_names() {
        let rule = acl.rule(name).expect("every listed rule can be looked up");
        assert_eq!(rule.name(), name);
    }

    let d = acl.decide(input.role, input.host);
    check_decision(&acl, input.role, &d);
    assert_eq!(acl.decide(input.role, input.host), d, "not deterministic");

    let upper = input.host.to_ascii_uppercase();
    assert_eq!(
        acl.decide(input.role, &upper),
        d,
        "ASCII case changed the decision"
    );
    if !input.host.is_empty() && !input.host.ends_with('.') {
        let dotted = format!("{}.", input.host);
        assert_eq!(
            acl.decide(input.role, &dotted),
            d,
            "a trailing dot changed it"
        );
    }
    if let Ok(Host::Name(n)) = normalise_host(input.host) {
        assert_eq!(
            acl.decide(input.role, &n),
            d,
            "the normalised host {n:?} decides differently"
        );
    }
});
