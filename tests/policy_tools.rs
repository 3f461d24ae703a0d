#![allow(clippy::disallowed_methods)] // tests run the binary and write temporary files
//! The policy tools through the real binary: `check`, `test-policy` and
//! `check-config`, their output and exit codes. They open no sockets, so no
//! network namespace is needed.

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn smokescreen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smokescreen"))
        .args(args)
        .current_dir(ROOT)
        .env_remove("PROXY_PASSWORD")
        .output()
        .expect("run smokescreen")
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write temp file");
    p.to_string_lossy().into_owned()
}

#[test]
fn the_example_cases_pass_against_the_example_acl() {
    let (code, out, err) = text(&smokescreen(&["test-policy", "examples/policy-cases.yaml"]));
    assert_eq!(code, 0, "{out}{err}");
    let cases = out.lines().filter(|l| l.starts_with("PASS ")).count();
    assert!(cases >= 10, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(
        out.ends_with(&format!("{cases} passed, 0 failed\n")),
        "{out}"
    );
}

#[test]
fn check_prints_decision_reason_and_rule_with_exit_codes() {
    let acl = "examples/acl.yaml";
    let (code, out, _) = text(&smokescreen(&[
        "check",
        "--egress-acl-file",
        acl,
        "--role",
        "authed",
        "--host",
        "api.stripe.com",
        "--address",
        "54.187.216.72",
        "--port",
        "443",
    ]));
    assert_eq!(code, 0, "{out}");
    for line in [
        "decision: allow",
        "reason: host matched allowed domain in rule",
        "rule: authed",
        "project: webhooks",
        "address_rule: Allow: Default",
        "dial: 54.187.216.72:443",
    ] {
        assert!(out.lines().any(|l| l == line), "{line} missing:\n{out}");
    }
    let (code, out, _) = text(&smokescreen(&[
        "check",
        "--egress-acl-file",
        acl,
        "--host",
        "db.internal",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("decision: deny\nreason: host matched rule in global deny list\nrule: global_deny_list\n"), "{out}");
    assert!(out.contains("message: Egress proxying is denied to host 'db.internal:443': host matched rule in global deny list.\n"), "{out}");
}

#[test]
fn check_uses_the_proxy_flags_for_the_address_policy() {
    let base = [
        "check",
        "--host",
        "app.example.com",
        "--address",
        "10.20.0.7",
    ];
    let (code, out, _) = text(&smokescreen(&base));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("address_rule: Deny: Private Range\n"), "{out}");
    let mut allowed = base.to_vec();
    allowed.extend(["--allow-range", "10.20.0.0/16"]);
    let (code, out, _) = text(&smokescreen(&allowed));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("address_rule: Allow: User Configured\n"),
        "{out}"
    );
    // The default listener's own port is refused even when allowed by range.
    let (code, out, _) = text(&smokescreen(&[
        "check",
        "--host",
        "127.0.0.1",
        "--port",
        "4750",
        "--allow-range",
        "127.0.0.0/8",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("address_rule: Deny: Self Connection\n"),
        "{out}"
    );
}

#[test]
fn check_usage_and_file_errors_exit_2() {
    let (code, _, err) = text(&smokescreen(&["check", "--role", "authed"]));
    assert_eq!(code, 2);
    assert!(err.contains("--host is required"), "{err}");
    let (code, _, err) = text(&smokescreen(&[
        "check",
        "--host",
        "a.example",
        "--egress-acl-file",
        "/nonexistent/acl.yaml",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/acl.yaml"), "{err}");
    let (code, _, err) = text(&smokescreen(&[
        "check",
        "--host",
        "a.example",
        "--address",
        "not-an-ip",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--address"), "{err}");
    let (code, out, _) = text(&smokescreen(&["check", "--help"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("Usage: smokescreen check"), "{out}");
}

#[test]
fn test_policy_reports_each_failure_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acl = write(
        dir.path(),
        "acl.yaml",
        "version: v1\nservices:\n  - name: authed\n    project: p\n    action: enforce\n    allowed_domains: [ok.example.com]\n",
    );
    let cases = write(
        dir.path(),
        "cases.yaml",
        "acl: acl.yaml\ncases:\n  - {name: allowed host, host: ok.example.com, expect: allow}\n  - {name: wrong expectation, host: other.example.com, expect: allow}\n  - {name: wrong rule, host: ok.example.com, expect: allow, rule: nope}\n",
    );
    let (code, out, err) = text(&smokescreen(&["test-policy", &cases]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("\nPASS allowed host\n"), "{out}");
    assert!(
        out.contains(
            "\nFAIL wrong expectation: expected allow, got deny (rule has enforce policy)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\nFAIL wrong rule: expected rule \"nope\", got \"authed\"\n"),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 2 failed\n"), "{out}");
    // Flags on the command line replace the file's ACL: the embedded default
    // reports everything for `authed`, so the second case now passes.
    let (code, out, _) = text(&smokescreen(&[
        "test-policy",
        &cases,
        "--allow-range",
        "10.0.0.0/8",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PASS wrong expectation\n"), "{out}");
    assert!(out.starts_with("policy: ACL embedded default\n"), "{out}");
    let _ = acl;
}

#[test]
fn test_policy_file_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = write(
        dir.path(),
        "typo.yaml",
        "cases:\n  - {name: n, host: h.example, expct: allow}\n",
    );
    let (code, _, err) = text(&smokescreen(&["test-policy", &typo]));
    assert_eq!(code, 2);
    assert!(err.contains("typo.yaml"), "{err}");
    let empty = write(dir.path(), "empty.yaml", "cases: []\n");
    let (code, _, err) = text(&smokescreen(&["test-policy", &empty]));
    assert_eq!(code, 2);
    assert!(err.contains("no cases"), "{err}");
    let bad_acl = write(dir.path(), "bad-acl.yaml", "version: v2\nservices: []\n");
    let cases = write(
        dir.path(),
        "c.yaml",
        "acl: bad-acl.yaml\ncases:\n  - {name: n, host: h.example, expect: deny}\n",
    );
    let (code, _, err) = text(&smokescreen(&["test-policy", &cases]));
    assert_eq!(code, 2);
    assert!(
        err.contains("could not load egress ACL") && err.contains("bad-acl.yaml"),
        "{err}"
    );
    let (code, _, _) = text(&smokescreen(&["test-policy"]));
    assert_eq!(code, 2);
    let _ = bad_acl;
}

#[test]
fn check_config_loads_every_file_and_reports() {
    let (code, out, err) = text(&smokescreen(&[
        "check-config",
        "--egress-acl-file",
        "examples/acl.yaml",
        "--expose-prometheus-metrics",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("egress ACL: examples/acl.yaml (services: 1, default rule: yes)\n"),
        "{out}"
    );
    assert!(out.contains("metrics: [::]:9810/metrics"), "{out}");
    assert!(
        out.contains("note: PROXY_PASSWORD is not set here"),
        "{out}"
    );
    assert!(out.ends_with("configuration OK\n"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(dir.path(), "acl.yaml", "version: v1\nservices:\n  - name: a\n    project: p\n    action: enforce\n    allowed_domain: [x.example]\n");
    let (code, out, err) = text(&smokescreen(&["check-config", "--egress-acl-file", &bad]));
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("allowed_domain"), "{err}");
    let (code, _, err) = text(&smokescreen(&[
        "check-config",
        "--hosts-file",
        "/nonexistent/hosts",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/hosts"), "{err}");
    // A feature the proxy would refuse to start without.
    let (code, _, err) = text(&smokescreen(&["check-config", "--proxy-protocol"]));
    assert_eq!(code, 2);
    assert!(err.contains("would not start"), "{err}");
    let (code, _, _) = text(&smokescreen(&["check-config", "--listen-port", "x"]));
    assert_eq!(code, 2);
}
