//! Runs every case of `spec/acl.yaml` against `core::acl`, failing with the
//! case's name, and snapshots every load-error text.

use std::collections::BTreeMap;

use serde::Deserialize;
use smokescreen::core::acl::{Acl, Action, Verdict};

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/acl.yaml"));

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    acls: BTreeMap<String, String>,
    decisions: Vec<DecisionCase>,
    loads: Vec<LoadCase>,
    load_errors: Vec<ErrorCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionCase {
    name: String,
    acl: String,
    role: String,
    host: String,
    /// The `X-Upstream-Https-Proxy` host, if the request named one.
    proxy: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    verdict: String,
    reason: String,
    project: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadCase {
    name: String,
    acl: Option<String>,
    yaml: Option<String>,
    disabled: Vec<String>,
    warnings: Vec<String>,
    rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorCase {
    name: String,
    yaml: String,
    disabled: Vec<String>,
    error: String,
}

fn spec() -> Spec {
    match serde_yaml::from_str(SPEC) {
        Ok(s) => s,
        Err(e) => panic!("spec/acl.yaml does not parse: {e}"),
    }
}

fn actions(case: &str, names: &[String]) -> Vec<Action> {
    names
        .iter()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|e| panic!("{case}: bad disabled action: {e}"))
        })
        .collect()
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::AllowAndReport => "allow_and_report",
        Verdict::Deny => "deny",
    }
}

#[test]
fn decisions() {
    let spec = spec();
    let mut loaded = BTreeMap::new();
    for (name, text) in &spec.acls {
        match Acl::from_yaml(text, &[]) {
            Ok((acl, _)) => {
                loaded.insert(name.clone(), acl);
            }
            Err(e) => panic!("acl {name:?} does not load: {e}"),
        }
    }
    assert!(spec.decisions.len() >= 40, "too few decision cases");
    let mut failures = Vec::new();
    for case in &spec.decisions {
        let Some(acl) = loaded.get(&case.acl) else {
            panic!("{}: no acl named {:?}", case.name, case.acl);
        };
        let d = acl.decide_with_proxy(&case.role, &case.host, case.proxy.as_deref());
        let got = (
            verdict_name(d.verdict),
            d.reason.to_string(),
            d.project.clone(),
        );
        let want = (
            case.expect.verdict.as_str(),
            case.expect.reason.clone(),
            case.expect.project.clone(),
        );
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", case.name));
        }
        // The derived helpers follow the verdict, as Smokescreen logs them.
        assert_eq!(d.allows(), d.verdict != Verdict::Deny, "{}", case.name);
        assert_eq!(
            d.enforce_would_deny(),
            d.verdict != Verdict::Allow,
            "{}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn loads() {
    let spec = spec();
    let mut failures = Vec::new();
    for case in &spec.loads {
        let text = match (&case.acl, &case.yaml) {
            (Some(name), None) => match spec.acls.get(name) {
                Some(t) => t.as_str(),
                None => panic!("{}: no acl named {name:?}", case.name),
            },
            (None, Some(yaml)) => yaml.as_str(),
            _ => panic!("{}: give exactly one of acl and yaml", case.name),
        };
        match Acl::from_yaml(text, &actions(&case.name, &case.disabled)) {
            Ok((acl, warnings)) => {
                let rules: Vec<String> = acl.rule_names().map(str::to_owned).collect();
                if warnings != case.warnings || rules != case.rules {
                    failures.push(format!(
                        "{}: got warnings {warnings:?} rules {rules:?}, want {:?} {:?}",
                        case.name, case.warnings, case.rules
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: unexpected error: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn load_errors() {
    let spec = spec();
    let mut failures = Vec::new();
    let mut listing = String::new();
    for case in &spec.load_errors {
        match Acl::from_yaml(&case.yaml, &actions(&case.name, &case.disabled)) {
            Ok(_) => failures.push(format!(
                "{}: loaded, want error {:?}",
                case.name, case.error
            )),
            Err(e) => {
                let text = e.to_string();
                if text != case.error {
                    failures.push(format!(
                        "{}: got {text:?}, want {:?}",
                        case.name, case.error
                    ));
                }
                listing.push_str(&format!("{}\n  {text}\n", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );

    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("acl_load_errors", listing));
}
