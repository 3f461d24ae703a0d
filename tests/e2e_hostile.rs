#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! The hostile-input matrix (spec/hostile.yaml, prose in spec/hostile.md),
//! run end to end against one proxy in one private network namespace, and
//! the log-integrity checks in both log formats.

mod common;
mod harden;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::IpAddr;

use serde::Deserialize;

use common::*;
use harden::*;

#[derive(Deserialize)]
struct Spec {
    port: u16,
    static_hosts: Vec<String>,
    deny_table: Vec<Row>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Row {
    ip: String,
    rule: String,
    #[serde(default)]
    shown: Option<String>,
}

#[derive(Clone, Deserialize)]
struct Case {
    name: String,
    #[allow(dead_code)]
    class: String,
    request: String,
    status: u16,
    #[serde(default)]
    accepts: BTreeMap<String, usize>,
    #[serde(default)]
    one_response: bool,
    log: BTreeMap<String, String>,
    #[serde(default)]
    absent: Vec<String>,
}

const OUTCOME_MSGS: [&str; 4] = [
    "CANONICAL-PROXY-DECISION",
    "malformed request refused",
    "non-proxy request refused",
    "request refused by a proxy limit",
];

fn load() -> Spec {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/hostile.yaml");
    let text = std::fs::read_to_string(path).expect("read spec/hostile.yaml");
    serde_yaml::from_str(&text).expect("parse spec/hostile.yaml")
}

/// Each deny-table row as CONNECT and absolute-form, literal and by name.
fn deny_cases(spec: &Spec) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, row) in spec.deny_table.iter().enumerate() {
        let ip: IpAddr = row.ip.parse().expect("deny_table ip");
        let shown = row.shown.clone().unwrap_or_else(|| ip.to_string());
        let literal = match ip {
            IpAddr::V4(_) => format!("{ip}:{}", spec.port),
            IpAddr::V6(_) => format!("[{ip}]:{}", spec.port),
        };
        let name = format!("deny{i}.test:{}", spec.port);
        for (how, hostport) in [("literal", &literal), ("name", &name)] {
            for (proxy_type, request) in [
                (
                    "connect",
                    format!("CONNECT {hostport} HTTP/1.1\r\nProxy-Authorization: {{auth}}\r\n\r\n"),
                ),
                (
                    "http",
                    format!(
                        "GET http://{hostport}/ HTTP/1.1\r\nProxy-Authorization: {{auth}}\r\n\r\n"
                    ),
                ),
            ] {
                let log = BTreeMap::from([
                    ("msg".to_string(), "CANONICAL-PROXY-DECISION".to_string()),
                    ("allow".to_string(), "false".to_string()),
                    ("level".to_string(), "warning".to_string()),
                    ("proxy_type".to_string(), proxy_type.to_string()),
                    ("requested_host".to_string(), hostport.clone()),
                    (
                        "decision_reason".to_string(),
                        "destination address was denied by rule, see error".to_string(),
                    ),
                    (
                        "error".to_string(),
                        format!(
                            "The destination address ({shown}) was denied by rule '{}'",
                            row.rule
                        ),
                    ),
                ]);
                out.push(Case {
                    name: format!("deny_table {} {how} {proxy_type}", row.ip),
                    class: "deny_table".into(),
                    request: request.clone(),
                    status: 403,
                    accepts: BTreeMap::new(),
                    one_response: true,
                    log,
                    absent: vec!["dst_ip".into()],
                });
            }
        }
    }
    out
}

fn fill(template: &str, port: u16) -> Vec<u8> {
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    template
        .replace("{auth}", &auth())
        .replace("{ok}", &format!("8.8.8.8:{port}"))
        .replace("{port}", &port.to_string())
        .replace("{big}", &"a".repeat(17_000))
        .replace("{many}", &many)
        .into_bytes()
}

fn delta(
    before: &HashMap<IpAddr, usize>,
    after: &HashMap<IpAddr, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .filter_map(|(ip, n)| {
            let d = n - before.get(ip).copied().unwrap_or(0);
            (d > 0).then(|| (ip.to_string(), d))
        })
        .collect()
}

/// Check one case; returns what went wrong.
fn run_case(proxy: &mut Proxy, catch: &CatchAll, port: u16, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let before = catch.snapshot();
    let answer = exchange(proxy.addr, &fill(&case.request, port));
    let text = String::from_utf8_lossy(&answer).into_owned();
    if status_of(&answer) != Some(case.status) {
        problems.push(format!(
            "status: expected {}, got {:?}",
            case.status,
            text.lines().next()
        ));
    }
    if case.one_response {
        let responses = text.matches("HTTP/1.").count();
        if responses != 1 {
            problems.push(format!("{responses} responses, expected one: {text:?}"));
        }
    }
    let line = proxy
        .next_matching(|l| field(l, "msg").is_some_and(|m| OUTCOME_MSGS.contains(&m.as_str())));
    let got = fields(&line);
    for (key, want) in &case.log {
        if got.get(key) != Some(want) {
            problems.push(format!(
                "log {key}: expected {want:?}, got {:?}",
                got.get(key)
            ));
        }
    }
    for key in &case.absent {
        if got.contains_key(key) {
            problems.push(format!(
                "log has {key}={:?}, which must be absent",
                got[key]
            ));
        }
    }
    let seen = delta(&before, &catch.snapshot());
    if seen != case.accepts {
        problems.push(format!(
            "connections accepted: expected {:?}, got {seen:?}",
            case.accepts
        ));
    }
    if !problems.is_empty() {
        problems.push(format!("log line: {line}"));
    }
    problems
}

#[test]
fn hostile_matrix() {
    if !in_private_netns("hostile_matrix") {
        return;
    }
    let spec = load();
    let port = spec.port;
    // Every address the matrix names goes on lo, so a dial to it would
    // reach the counting listener instead of failing unseen.
    let mut ips: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap()];
    ips.extend(
        spec.deny_table
            .iter()
            .map(|r| r.ip.parse::<IpAddr>().unwrap()),
    );
    for h in &spec.static_hosts {
        let (_, list) = h.split_once('=').unwrap();
        ips.extend(list.split(',').map(|ip| ip.parse::<IpAddr>().unwrap()));
    }
    let mut observable = 0;
    for ip in &ips {
        if ip.is_loopback() || add_to_lo(*ip) {
            observable += 1;
        }
    }
    let catch = CatchAll::start(port);

    let mut args: Vec<String> = spec
        .static_hosts
        .iter()
        .map(|h| format!("--static-host={h}"))
        .collect();
    for (i, row) in spec.deny_table.iter().enumerate() {
        args.push(format!("--static-host=deny{i}.test={}", row.ip));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&argv);

    let mut cases = spec.cases.clone();
    cases.extend(deny_cases(&spec));
    let mut failures = Vec::new();
    for case in &cases {
        let problems = run_case(&mut proxy, &catch, port, case);
        if !problems.is_empty() {
            failures.push(format!("case {}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    // The authoritative no-connection proof: after every case has finished,
    // the only accepted connections are the ones the table allows.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        for (ip, n) in &case.accepts {
            *expected.entry(ip.clone()).or_insert(0) += n;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed ({observable} of {} addresses observable on lo):\n{}",
        failures.len(),
        cases.len(),
        ips.len(),
        failures.join("\n")
    );
    let total = delta(&HashMap::new(), &catch.snapshot());
    assert_eq!(
        total, expected,
        "connections reached addresses the matrix does not allow"
    );
    assert!(
        cases.len() > 200,
        "the matrix shrank: {} cases",
        cases.len()
    );
}

/// Hostile text that a client controls and that reaches a log line. (Control
/// characters such as ESC never get this far: a header value holding one is
/// refused with 400, which the requests below also check.)
const HOSTILE_TRACE: &str = "t\"RED\" level=error msg=FORGED x=\\u000a\u{202e}\u{2028}\u{200b}";
const HOSTILE_USER: &str = "evil\r\nlevel=error msg=FORGED\u{1b}[2J";

fn hostile_requests(proxy: &Proxy) {
    let user_auth = basic(HOSTILE_USER, PASSWORD);
    let requests: Vec<Vec<u8>> = vec![
        // Trace id with an escape sequence, quotes and a fake field (allowed request to a denied place).
        format!(
            "CONNECT 10.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: {}\r\nX-Smokescreen-Trace-ID: {HOSTILE_TRACE}\r\n\r\n",
            auth()
        )
        .into_bytes(),
        // A user name with CR LF (it is never logged) and a wrong password.
        format!(
            "CONNECT 10.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
            basic(HOSTILE_USER, "wrong")
        )
        .into_bytes(),
        format!("GET http://10.0.0.1/ HTTP/1.1\r\nProxy-Authorization: {user_auth}\r\n\r\n")
            .into_bytes(),
        // Requested hosts with quotes, escape sequences and raw bytes.
        format!(
            "CONNECT evil\"\u{1b}[31m.internal:443 HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
            auth()
        )
        .into_bytes(),
        b"CONNECT a\xff\xfe\x7f.example:443 HTTP/1.1\r\n\r\n".to_vec(),
        format!(
            "GET http://x\" level=error msg=FORGED/ HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
            auth()
        )
        .into_bytes(),
        // A trace id with an escape sequence: refused as malformed, never logged.
        format!(
            "CONNECT 10.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: {}\r\nX-Smokescreen-Trace-ID: \u{1b}[31mred\r\n\r\n",
            auth()
        )
        .into_bytes(),
        // A trace id with obs-text: a line separator and a byte that is not UTF-8.
        [
            b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nX-Smokescreen-Trace-ID: a\xe2\x80\xa8b\x80\r\nProxy-Authorization: ".as_slice(),
            auth().as_bytes(),
            b"\r\n\r\n",
        ]
        .concat(),
    ];
    for r in &requests {
        let mut s = connect(proxy);
        let _ = s.write_all(r);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// Every line the proxy wrote is one well-formed record; no escape byte,
/// no forged msg, no user name, and the trace id survives intact.
fn check_integrity(proxy: &mut Proxy, json: bool) {
    // Eight requests: eight outcome lines, plus the role-failure error lines.
    let is_outcome = |l: &str| {
        OUTCOME_MSGS
            .iter()
            .any(|m| l.contains(&format!("msg={m}")) || l.contains(&format!("\"msg\":\"{m}\"")))
            || l.contains("msg=\"malformed request refused\"")
    };
    let mut outcomes = 0;
    while outcomes < 8 {
        let line = proxy.next_matching(|_| true);
        if is_outcome(&line) {
            outcomes += 1;
        }
    }
    let mut trace_ids = Vec::new();
    for line in &proxy.seen {
        assert!(
            !line.contains('\u{1b}') && !line.contains('\r') && !line.contains('\u{2028}'),
            "raw control character in a log line: {line:?}"
        );
        assert!(!line.contains("evil\r") && !line.contains(HOSTILE_USER));
        let msg;
        if json {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            msg = v["msg"].as_str().unwrap_or_default().to_string();
            if let Some(t) = v.get("trace_id").and_then(|t| t.as_str()) {
                trace_ids.push(t.to_string());
            }
        } else {
            let parsed = smokescreen::core::log_read::parse_text(line)
                .unwrap_or_else(|| panic!("not a logrus line: {line}"));
            assert_eq!(
                parsed.0.first().map(|(k, _)| k.as_str()),
                Some("time"),
                "{line}"
            );
            let keys: Vec<&str> = parsed.0.iter().map(|(k, _)| k.as_str()).collect();
            let mut unique = keys.clone();
            unique.dedup();
            assert_eq!(
                keys.len(),
                unique.len(),
                "duplicated key (forged field): {line}"
            );
            msg = parsed.get("msg").unwrap_or_default().to_string();
            if let Some(t) = parsed.get("trace_id") {
                trace_ids.push(t.to_string());
            }
        }
        assert_ne!(msg, "FORGED", "a forged line: {line}");
        assert!(
            !line.contains("level=error msg=FORGED")
                || line.contains("\\\" level=error msg=FORGED"),
            "an unquoted forged field: {line}"
        );
    }
    assert!(
        trace_ids.iter().any(|t| t == HOSTILE_TRACE),
        "the hostile trace id did not round-trip: {trace_ids:?}"
    );
    assert!(
        trace_ids.iter().any(|t| t == "a\u{2028}b\u{fffd}"),
        "the raw-bytes trace id is missing: {trace_ids:?}"
    );
}

#[test]
fn log_lines_cannot_be_split_forged_or_coloured_text() {
    if !in_private_netns("log_lines_cannot_be_split_forged_or_coloured_text") {
        return;
    }
    let mut proxy = Proxy::start(&[]);
    hostile_requests(&proxy);
    check_integrity(&mut proxy, false);
}

#[test]
fn log_lines_cannot_be_split_forged_or_coloured_json() {
    if !in_private_netns("log_lines_cannot_be_split_forged_or_coloured_json") {
        return;
    }
    let mut proxy = Proxy::start(&["--log-format", "json"]);
    hostile_requests(&proxy);
    check_integrity(&mut proxy, true);
}
