//! Executes spec/decision.yaml: every case through the real core pipeline.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use smokescreen::core::acl::Acl;
use smokescreen::core::addr::{AddressPolicy, SelfEndpoints, UserRange};
use smokescreen::core::auth::{AuthMode, ClientCert, Password};
use smokescreen::core::decision::{self, Policy, Refusal, RequestFacts};
use smokescreen::core::head::{parse_request, HeadLimits, RequestForm};
use smokescreen::core::lookup::{LookupCause, LookupError};
use smokescreen::core::record::{Client, ProxyType};
use smokescreen::core::reply;
use smokescreen::core::time::Timestamp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    acls: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "fly")]
    acl: String,
    request: String,
    #[serde(default)]
    unauthenticated: bool,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    unsafe_allow_private_ranges: bool,
    #[serde(default)]
    allow_missing_role: bool,
    #[serde(default)]
    listen: Vec<SocketAddr>,
    extra: Option<String>,
    answers: Option<Vec<IpAddr>>,
    /// The resolver's failure: `no_such_host`, `server_misbehaving` or
    /// `timeout`, optionally `@SERVER` (the DNS server asked).
    dns_error: Option<String>,
    /// The names the answer's CNAME chain led through.
    #[serde(default)]
    aliases: Vec<String>,
    /// `cert` (the certificate alone) or `cert+password` (both required).
    mtls: Option<String>,
    /// The connection's verified client certificate.
    cert: Option<CertCase>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertCase {
    cn: Option<String>,
    ou: Option<String>,
}

fn fly() -> String {
    "fly".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    dial: Option<SocketAddr>,
    status: Option<u16>,
    reason: Option<String>,
    error: Option<String>,
    body: Option<String>,
    rejected: Option<Vec<String>>,
    role: Option<String>,
    project: Option<String>,
    allow: Option<bool>,
    enforce_would_deny: Option<bool>,
    spends_budget: Option<bool>,
}

/// What actually happened, normalised for comparison.
#[derive(Debug, Default)]
struct Got {
    dial: Option<SocketAddr>,
    status: Option<u16>,
    reason: Option<String>,
    error: Option<String>,
    body: Option<String>,
    rejected: Vec<String>,
    role: Option<String>,
    project: Option<String>,
    allow: Option<bool>,
    enforce_would_deny: Option<bool>,
    spends_budget: Option<bool>,
    /// The decision line's `status_code`, when there is a decision line.
    status_code: Option<Option<u16>>,
}

fn run(case: &Case, acls: &BTreeMap<String, String>) -> Result<Got, String> {
    let yaml = match acls.get(&case.acl).map(String::as_str) {
        Some("default") => smokescreen::core::DEFAULT_ACL_YAML,
        Some(y) => y,
        None => return Err(format!("unknown acl {}", case.acl)),
    };
    let (acl, _) = Acl::from_yaml(yaml, &[]).map_err(|e| e.to_string())?;
    let parse_ranges = |v: &[String]| {
        v.iter()
            .map(|s| s.parse::<UserRange>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
    };
    let policy = Policy {
        auth: match (case.mtls.as_deref(), case.unauthenticated) {
            (Some("cert"), _) => AuthMode::ClientCertificate { password: None },
            (Some("cert+password"), _) => AuthMode::ClientCertificate {
                password: Some(Password::new("pw")),
            },
            (Some(other), _) => return Err(format!("unknown mtls mode {other}")),
            (None, true) => AuthMode::Unauthenticated,
            (None, false) => AuthMode::Password(Password::new("pw")),
        },
        acl: Some(acl),
        addresses: AddressPolicy::new(
            parse_ranges(&case.allow)?,
            parse_ranges(&case.deny)?,
            case.unsafe_allow_private_ranges,
        ),
        deny_message_extra: case.extra.clone(),
        allow_missing_role: case.allow_missing_role,
    };
    let mut got = Got::default();
    let head = match parse_request(case.request.as_bytes(), &HeadLimits::default()) {
        Ok(Some(h)) => h,
        Ok(None) => return Err("incomplete request head in case".into()),
        Err(e) => {
            got.status = Some(e.status());
            got.body = Some(format!("{e}\n"));
            return Ok(got);
        }
    };
    let (target, proxy_type) = match &head.form {
        RequestForm::Connect(t) => (t, ProxyType::Connect),
        RequestForm::Absolute(u) => (&u.target, ProxyType::Http),
        RequestForm::Origin(_) => {
            let r = reply::non_proxy_request();
            got.status = Some(r.status);
            got.body = Some(r.body);
            return Ok(got);
        }
    };
    let me = SelfEndpoints {
        listen: case.listen.clone(),
        local_ip: None,
        ..SelfEndpoints::default()
    };
    let cert = case.cert.as_ref().map(|c| ClientCert {
        common_name: c.cn.clone(),
        organization_unit: c.ou.clone(),
    });
    let first = decision::before_dns_for(&policy, target, proxy_type, &head.headers, cert.as_ref());
    got.spends_budget = Some(decision::spends_request_budget(&first));
    let outcome = first.and_then(|pending| {
        let literal;
        let failure;
        let answers: Result<&[IpAddr], &LookupError> = match &pending.lookup {
            decision::Lookup::Literal(ip) => {
                literal = [*ip];
                Ok(&literal)
            }
            decision::Lookup::Name(name) => match (&case.answers, &case.dns_error) {
                (_, Some(e)) => {
                    failure = dns_failure(name, e);
                    Err(&failure)
                }
                (Some(a), None) => Ok(a.as_slice()),
                (None, None) => Ok(&[]),
            },
        };
        let pending = match (&pending.lookup, answers) {
            (decision::Lookup::Name(_), Ok(_)) => {
                decision::aliases_checked(&policy, pending.clone(), &case.aliases)?
            }
            _ => pending.clone(),
        };
        decision::after_dns(&policy, pending, answers, &me)
    });
    let facts = RequestFacts::from_headers(
        "id".into(),
        Client::plain("127.0.0.1:1".parse().unwrap()),
        Timestamp::new(0, 0),
        &head.headers,
    );
    let record = match &outcome {
        Ok(approved) => {
            got.dial = Some(approved.addr);
            decision::approved_record(&facts, approved)
        }
        Err(refusal) => {
            let refusal: &Refusal = refusal;
            let r = refusal.reply(&policy);
            got.status = Some(r.status);
            got.body = Some(r.body);
            decision::refusal_record(&facts, refusal)
        }
    };
    got.reason = Some(record.decision_reason.clone());
    got.error = record.error.clone();
    got.rejected = record
        .rejected
        .iter()
        .map(|(ip, rule)| format!("{ip} ({rule})"))
        .collect();
    got.role = Some(record.role.clone());
    got.project = Some(record.project.clone());
    got.allow = Some(record.allow);
    got.enforce_would_deny = Some(record.enforce_would_deny);
    got.status_code = Some(record.status_code);
    Ok(got)
}

fn check(case: &Case, got: &Got) -> Vec<String> {
    let e = &case.expect;
    let mut bad = Vec::new();
    macro_rules! cmp {
        ($field:ident) => {
            if let Some(want) = &e.$field {
                if got.$field.as_ref() != Some(want) {
                    bad.push(format!(
                        "{}: want {:?}, got {:?}",
                        stringify!($field),
                        want,
                        got.$field
                    ));
                }
            }
        };
    }
    if e.dial.is_some() && got.dial != e.dial {
        bad.push(format!(
            "dial: want {:?}, got {:?} (status {:?}, body {:?})",
            e.dial, got.dial, got.status, got.body
        ));
    }
    if e.dial.is_none() && e.status.is_none() {
        bad.push("case expects neither dial nor status".into());
    }
    if e.status.is_some() && got.dial.is_some() {
        bad.push(format!("expected refusal, got dial {:?}", got.dial));
    }
    cmp!(status);
    // Smokescreen HEAD logs the status of every refusal, and none on success.
    if let Some(logged) = got.status_code {
        if logged != got.status {
            bad.push(format!(
                "status_code on the decision line: want {:?}, got {logged:?}",
                got.status
            ));
        }
    }
    cmp!(reason);
    cmp!(error);
    cmp!(body);
    cmp!(role);
    cmp!(project);
    cmp!(allow);
    cmp!(enforce_would_deny);
    cmp!(spends_budget);
    if let Some(want) = &e.rejected {
        if &got.rejected != want {
            bad.push(format!("rejected: want {want:?}, got {:?}", got.rejected));
        }
    }
    bad
}

#[test]
fn every_decision_case_holds() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/decision.yaml"));
    let spec: Spec = serde_yaml::from_str(text).expect("spec/decision.yaml parses");
    assert!(spec.cases.len() >= 30, "spec shrank");
    let mut failures = Vec::new();
    for case in &spec.cases {
        match run(case, &spec.acls) {
            Ok(got) => {
                for b in check(case, &got) {
                    failures.push(format!("[{}] {b}", case.name));
                }
            }
            Err(e) => failures.push(format!("[{}] {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A structured resolver failure from its spec spelling (`cause[@server]`).
fn dns_failure(name: &str, spelled: &str) -> LookupError {
    let (cause, server) = match spelled.split_once('@') {
        Some((c, s)) => (c, Some(s.parse().expect("dns_error server"))),
        None => (spelled, None),
    };
    let cause = match cause {
        "no_such_host" => LookupCause::NoSuchHost,
        "server_misbehaving" => LookupCause::ServerMisbehaving,
        "timeout" => LookupCause::Timeout,
        other => panic!("unknown dns_error {other}"),
    };
    LookupError::new(name, server, cause)
}
