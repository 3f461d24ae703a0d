//! Executes every case of `spec/target.yaml` against the target parsers.

use serde::Deserialize;
use smokescreen::core::target::{
    normalise_host, parse_absolute_uri, parse_connect_target, Host, TargetError,
};

#[derive(Deserialize)]
struct Spec {
    cases: Vec<Case>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Host,
    Connect,
    Absolute,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    kind: Kind,
    input: String,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Expect {
    host: String,
    ip: bool,
    port: Option<u16>,
    requested: Option<String>,
    path: Option<String>,
}

/// What a parse produced, flattened for comparison.
#[derive(Debug, PartialEq)]
struct Got {
    host: String,
    ip: bool,
    port: Option<u16>,
    requested: Option<String>,
    path: Option<String>,
}

fn host_fields(h: &Host) -> (String, bool) {
    (h.to_string(), matches!(h, Host::Ip(_)))
}

fn run(kind: Kind, input: &str) -> Result<Got, TargetError> {
    Ok(match kind {
        Kind::Host => {
            let (host, ip) = host_fields(&normalise_host(input)?);
            Got {
                host,
                ip,
                port: None,
                requested: None,
                path: None,
            }
        }
        Kind::Connect => {
            let t = parse_connect_target(input)?;
            let (host, ip) = host_fields(&t.host);
            Got {
                host,
                ip,
                port: Some(t.port),
                requested: Some(t.requested),
                path: None,
            }
        }
        Kind::Absolute => {
            let u = parse_absolute_uri(input)?;
            let (host, ip) = host_fields(&u.target.host);
            Got {
                host,
                ip,
                port: Some(u.target.port),
                requested: Some(u.target.requested),
                path: Some(u.path_and_query),
            }
        }
    })
}

fn check(case: &Case) -> Result<(), String> {
    let got = run(case.kind, &case.input);
    match (&case.expect, &case.error, got) {
        (Some(e), None, Ok(got)) => {
            // Fields a case leaves out are not checked.
            let mut diffs = Vec::new();
            if got.host != e.host || got.ip != e.ip {
                diffs.push(format!(
                    "host {:?} ip {} (want {:?} ip {})",
                    got.host, got.ip, e.host, e.ip
                ));
            }
            if e.port.is_some() && got.port != e.port {
                diffs.push(format!("port {:?} (want {:?})", got.port, e.port));
            }
            if e.requested.is_some() && got.requested != e.requested {
                diffs.push(format!(
                    "requested {:?} (want {:?})",
                    got.requested, e.requested
                ));
            }
            if e.path.is_some() && got.path != e.path {
                diffs.push(format!("path {:?} (want {:?})", got.path, e.path));
            }
            if diffs.is_empty() {
                Ok(())
            } else {
                Err(diffs.join("; "))
            }
        }
        (None, Some(want), Err(err)) if err.to_string() == *want => Ok(()),
        (None, Some(want), got) => Err(format!("expected error {want:?}, got {got:?}")),
        (Some(_), None, Err(err)) => Err(format!(
            "expected success, got error {:?} ({err:?})",
            err.to_string()
        )),
        _ => Err("case must have exactly one of expect and error".to_string()),
    }
}

#[test]
fn spec_target() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/target.yaml"));
    let spec: Spec = serde_yaml::from_str(text).expect("spec/target.yaml parses");
    assert!(
        spec.cases.len() >= 60,
        "spec/target.yaml has only {} cases",
        spec.cases.len()
    );
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &spec.cases {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate case name {}",
            case.name
        );
        if let Err(why) = check(case) {
            failures.push(format!(
                "{} ({:?} {:?}): {why}",
                case.name, case.kind, case.input
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every client-facing text in one reviewed place: a change to any of them
/// shows up as a snapshot diff.
#[test]
fn target_error_texts() {
    let all = [
        TargetError::EmptyHost,
        TargetError::PercentEncoded,
        TargetError::Userinfo,
        TargetError::Backslash,
        TargetError::InvalidHostChar,
        TargetError::BracketedName,
        TargetError::InvalidIpv6,
        TargetError::ZoneId,
        TargetError::UnbracketedIpv6,
        TargetError::InvalidIpv4,
        TargetError::InvalidIdna,
        TargetError::EmptyLabel,
        TargetError::LabelTooLong,
        TargetError::NameTooLong,
        TargetError::MissingPort,
        TargetError::EmptyPort,
        TargetError::InvalidPort,
        TargetError::Https,
        TargetError::UnsupportedScheme("gopher".to_string()),
        TargetError::NotAbsoluteUri,
        TargetError::Fragment,
        TargetError::InvalidPath,
    ];
    let texts: Vec<String> = all.iter().map(|e| format!("{e:?} => {e}")).collect();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_yaml_snapshot!("target_error_texts", texts));
}
