//! Runs every case of `spec/mitm.yaml` against `core::mitm` and the
//! interception part of `core::acl` / `core::decision`, failing with the
//! case's name.

use serde::Deserialize;
use smokescreen::core::acl::Acl;
use smokescreen::core::addr::AddressPolicy;
use smokescreen::core::auth::{AuthMode, Role};
use smokescreen::core::decision::{self, Policy};
use smokescreen::core::head::{parse_request, HeadLimits, RequestHead};
use smokescreen::core::mitm::{self, ValueSource};
use smokescreen::core::record::ProxyType;
use smokescreen::core::target::parse_connect_target;

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/mitm.yaml"));
/// What `${env:API_TOKEN}` reads as in these cases.
const TOKEN: &str = "<API_TOKEN>";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    acl: String,
    intercepts: Vec<InterceptCase>,
    values: Vec<ValueCase>,
    inner: Vec<InnerCase>,
    added: Vec<HeadCase<Vec<String>>>,
    logged: Vec<HeadCase<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterceptCase {
    name: String,
    role: String,
    host: String,
    connect: bool,
    expect: Option<Intercepted>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Intercepted {
    domain: String,
    headers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueCase {
    text: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InnerCase {
    name: String,
    head: String,
    tunnel: String,
    port: u16,
    allowed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadCase<T> {
    name: String,
    head: String,
    expect: T,
}

fn spec() -> Spec {
    serde_yaml::from_str(SPEC).unwrap_or_else(|e| panic!("spec/mitm.yaml does not parse: {e}"))
}

fn acl(text: &str) -> Acl {
    let (mut acl, _) = Acl::from_yaml(text, &[]).unwrap_or_else(|e| panic!("acl: {e}"));
    acl.resolve_secrets(|source| match source {
        ValueSource::Env(name) if name == "API_TOKEN" => Ok(TOKEN.to_string()),
        other => Err(format!("unexpected reference {other}")),
    })
    .unwrap_or_else(|e| panic!("secrets: {e}"));
    acl
}

fn head(case: &str, text: &str) -> RequestHead {
    match parse_request(text.as_bytes(), &HeadLimits::default()) {
        Ok(Some(h)) => h,
        other => panic!("{case}: head does not parse: {other:?}"),
    }
}

#[test]
fn intercepts() {
    let spec = spec();
    let policy = Policy {
        auth: AuthMode::Unauthenticated,
        acl: Some(acl(&spec.acl)),
        addresses: AddressPolicy::new(Vec::new(), Vec::new(), false),
        deny_message_extra: None,
        allow_missing_role: false,
    };
    let mut failures = Vec::new();
    for case in &spec.intercepts {
        let target = parse_connect_target(&format!("{}:443", case.host))
            .unwrap_or_else(|e| panic!("{}: target: {e}", case.name));
        let kind = if case.connect {
            ProxyType::Connect
        } else {
            ProxyType::Http
        };
        let pending = decision::before_dns_as(&policy, &target, kind, Role(case.role.clone()))
            .unwrap_or_else(|r| panic!("{}: refused: {}", case.name, r.message));
        let got = pending.verdicts.intercept.as_ref().map(|i| Intercepted {
            domain: i.domain.clone(),
            headers: i.add_headers.iter().map(|h| h.name.clone()).collect(),
        });
        if got != case.expect {
            failures.push(format!(
                "{}: got {got:?}, want {:?}",
                case.name, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn values() {
    for case in spec().values {
        let got = ValueSource::of(&case.text).to_string();
        assert_eq!(got, case.source, "{}", case.text);
    }
}

#[test]
fn inner_requests() {
    let mut failures = Vec::new();
    for case in spec().inner {
        let h = head(&case.name, &case.head);
        let got = mitm::inner_request_allowed(&h, &case.tunnel, case.port);
        if got.is_ok() != case.allowed {
            failures.push(format!("{}: got {got:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn api_interception(spec: &Spec) -> mitm::Interception {
    let acl = acl(&spec.acl);
    let rule = acl.rule("api").expect("rule api");
    let first = rule.mitm_domains().next().expect("an entry");
    first.clone()
}

#[test]
fn added_headers() {
    let spec = spec();
    let intercept = api_interception(&spec);
    for case in &spec.added {
        let h = head(&case.name, &case.head);
        let got: Vec<String> = mitm::with_added_headers(&h.headers, &intercept)
            .0
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(got, case.expect, "{}", case.name);
    }
}

#[test]
fn logged_headers() {
    let spec = spec();
    let intercept = api_interception(&spec);
    for case in &spec.logged {
        let h = head(&case.name, &case.head);
        assert_eq!(
            mitm::logged_headers(&h.headers, &intercept),
            case.expect,
            "{}",
            case.name
        );
    }
}

#[test]
fn a_secret_never_formats() {
    let spec = spec();
    let intercept = api_interception(&spec);
    let shown = format!("{intercept:?} {}", mitm::describe(&intercept));
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("Authorization"), "{shown}");
}
