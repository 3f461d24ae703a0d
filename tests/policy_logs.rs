#![allow(clippy::disallowed_methods)] // tests run the binary and write temporary files
//! `suggest-acl` and `replay` through the real binary, on the example log of
//! the README walkthrough and on variants of it: text and JSON, gzip and
//! stdin, globbing and its public-suffix guard, merging into an ACL, replay's
//! exit codes, foreign and malformed lines. They open no sockets.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LOG: &str = "examples/report-mode.log";

fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smokescreen"))
        .args(args)
        .current_dir(ROOT)
        .env_remove("PROXY_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smokescreen");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("write stdin");
    drop(input);
    let o: Output = child.wait_with_output().expect("wait");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn smokescreen(args: &[&str]) -> (i32, String, String) {
    run_with_stdin(args, None)
}

fn write(dir: &Path, name: &str, body: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write temp file");
    p.to_string_lossy().into_owned()
}

fn example_log() -> String {
    std::fs::read_to_string(Path::new(ROOT).join(LOG)).expect("example log")
}

/// The example log's decision lines as JSON objects, other lines unchanged.
fn as_json(log: &str) -> String {
    log.lines()
        .map(|line| match smokescreen::core::log_read::parse_text(line) {
            Some(p) if p.get("msg") == Some("CANONICAL-PROXY-DECISION") => {
                let mut o = serde_json::Map::new();
                for (k, v) in &p.0 {
                    let value = match v.as_str() {
                        "true" => serde_json::Value::Bool(true),
                        "false" => serde_json::Value::Bool(false),
                        _ => serde_json::Value::from(v.as_str()),
                    };
                    o.insert(k.clone(), value);
                }
                serde_json::Value::Object(o).to_string()
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The ACL lines (no header comments), to compare suggestions from different inputs.
fn entries(acl: &str) -> Vec<&str> {
    acl.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn the_walkthrough_produces_the_example_acl_and_replays_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("suggested.yaml");
    let out = out.to_str().expect("utf-8 path");
    let (code, stdout, err) = smokescreen(&[
        "suggest-acl",
        "--merge",
        "examples/report-acl.yaml",
        "--glob-threshold",
        "3",
        LOG,
        "-o",
        out,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, "", "with -o nothing goes to stdout");
    let written = std::fs::read_to_string(out).expect("written");
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples/suggested-acl.yaml"))
        .expect("example");
    assert_eq!(
        written, example,
        "examples/suggested-acl.yaml is what the README command writes"
    );
    assert!(
        err.contains("21 decisions read; skipped 4 other lines and 1 malformed decision lines"),
        "{err}"
    );
    // The proxy loads it, and replaying the log against it changes nothing.
    let (code, stdout, err) = smokescreen(&[
        "check-config",
        "--egress-acl-file",
        "examples/suggested-acl.yaml",
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, stdout, _) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/suggested-acl.yaml",
        LOG,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("newly denied: 0 requests to 0 role/host pairs\n"),
        "{stdout}"
    );
}

#[test]
fn text_json_gzip_and_stdin_give_the_same_acl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, from_text, err) = smokescreen(&["suggest-acl", LOG]);
    assert_eq!(code, 0, "{err}");
    let json = as_json(&example_log());
    assert!(
        json.lines().filter(|l| l.starts_with('{')).count() >= 20,
        "{json}"
    );
    let json_path = write(dir.path(), "log.json", json.as_bytes());
    let (code, from_json, err) = smokescreen(&["suggest-acl", &json_path]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(&from_json), entries(&from_text));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(example_log().as_bytes()).expect("gzip");
    let gz_path = write(dir.path(), "log.gz", &gz.finish().expect("gzip"));
    let (code, from_gz, err) = smokescreen(&["suggest-acl", &gz_path]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_gz, from_text);
    let (code, from_stdin, err) = run_with_stdin(&["suggest-acl"], Some(example_log().as_bytes()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_stdin, from_text);
    for line in [
        "  - name: billing",
        "      - api.stripe.com  # 5 requests, last seen 2026-11-27T09:04:00Z",
        "      - status.example.org  # 1 request, last seen 2026-11-27T14:00:00Z",
        "#   role \"billing\", \"169.254.169.254:80\": \"The destination address (169.254.169.254) was denied by rule 'Deny: Not Global Unicast'\" (1 request)",
        "#   role \"billing\", \"db.internal:5432\" (1 request)",
    ] {
        assert!(from_text.lines().any(|l| l == line), "{line} missing:\n{from_text}");
    }
    assert!(
        !from_text.contains("169.254.169.254  #"),
        "an address denial is never an entry"
    );
    assert!(
        !from_text.contains("- db.internal"),
        "a globally denied host is never an entry"
    );
}

#[test]
fn siblings_collapse_into_a_glob_but_never_over_a_public_suffix() {
    let (code, acl, err) = smokescreen(&["suggest-acl", "--glob-threshold", "2", LOG]);
    assert_eq!(code, 0, "{err}");
    assert!(
        acl.contains(
            "      - \"*.slack.com\"  # 4 hosts, 5 requests, last seen 2026-11-26T10:02:00Z\n"
        ),
        "{acl}"
    );
    assert!(!acl.contains("hooks.slack.com"), "{acl}");
    // github.io is a public suffix: three sites there stay three entries.
    assert!(!acl.contains("*.github.io"), "{acl}");
    for site in ["alice.github.io", "bob.github.io", "carol.github.io"] {
        assert!(acl.contains(&format!("      - {site}  #")), "{site}: {acl}");
    }
    let (code, acl, _) = smokescreen(&["suggest-acl", "--glob-threshold", "0", LOG]);
    assert_eq!(code, 0);
    assert!(!acl.contains('*'), "0 never globs: {acl}");
    let (code, _, err) = smokescreen(&["suggest-acl", "--glob-threshold", "many", LOG]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value \"many\" for --glob-threshold"),
        "{err}"
    );
}

#[test]
fn merging_keeps_every_line_of_the_acl_in_order() {
    let base =
        std::fs::read_to_string(Path::new(ROOT).join("examples/report-acl.yaml")).expect("acl");
    let (code, merged, err) =
        smokescreen(&["suggest-acl", "--merge", "examples/report-acl.yaml", LOG]);
    assert_eq!(code, 0, "{err}");
    // Every original line survives, in order (only `action: report` becomes enforce).
    let mut rest = merged.lines();
    for line in base.lines() {
        let want = line.replace("action: report", "action: enforce");
        assert!(rest.any(|l| l == want), "{want:?} lost or moved:\n{merged}");
    }
    assert_eq!(
        merged.matches("- api.stripe.com").count(),
        1,
        "an allowed host is not added twice"
    );
    // A role the ACL does not have gets a new service; a flow list cannot be extended.
    let dir = tempfile::tempdir().expect("tempdir");
    let only_billing = write(
        dir.path(),
        "acl.yaml",
        b"version: v1\nservices:\n  - name: billing\n    project: billing\n    action: report\n    allowed_domains: [api.stripe.com]\n",
    );
    let (code, _, err) = smokescreen(&["suggest-acl", "--merge", &only_billing, LOG]);
    assert_eq!(code, 2);
    assert!(err.contains("flow list"), "{err}");
    let empty = write(
        dir.path(),
        "empty.yaml",
        b"# no rules yet\nversion: v1\nservices: []\n",
    );
    let (code, merged, err) = smokescreen(&["suggest-acl", "--merge", &empty, LOG]);
    assert_eq!(code, 0, "{err}");
    assert!(
        merged.starts_with("# no rules yet\nversion: v1\nservices:\n  - name: billing\n"),
        "{merged}"
    );
    assert!(
        merged.contains("  - name: webhooks\n    project: webhooks\n    action: enforce\n"),
        "{merged}"
    );
    let (code, _, err) = smokescreen(&["suggest-acl", "--merge", "/nonexistent/acl.yaml", LOG]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/acl.yaml"), "{err}");
}

#[test]
fn replay_exits_1_when_anything_is_newly_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example =
        std::fs::read_to_string(Path::new(ROOT).join("examples/suggested-acl.yaml")).expect("acl");
    let narrower = example.replace("      - \"*.slack.com\"", "      - hooks.slack.com");
    assert_ne!(narrower, example);
    let narrower = write(dir.path(), "narrower.yaml", narrower.as_bytes());
    let (code, out, _) = smokescreen(&["replay", "--egress-acl-file", &narrower, LOG]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("newly denied: 3 requests to 3 role/host pairs\n  role \"billing\"\n    \"api.slack.com:443\": 1 request (rule has enforce policy)\n"),
        "{out}"
    );
    // Against another ACL instead of the log: the other direction is "newly allowed".
    let (code, out, _) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/suggested-acl.yaml",
        "--against",
        &narrower,
        LOG,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("newly allowed: 3 requests to 3 role/host pairs\n"),
        "{out}"
    );
    assert!(out.contains(&format!("against {narrower}\n")), "{out}");
    // The address rules come from the proxy flags, with the logged address.
    let (code, out, _) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/suggested-acl.yaml",
        "--deny-range",
        "54.187.0.0/16",
        LOG,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"api.stripe.com:443\": 5 requests (destination address was denied by rule, see error)"), "{out}");
}

#[test]
fn replay_usage_and_file_errors_exit_2() {
    let (code, _, err) = smokescreen(&["replay", LOG]);
    assert_eq!(code, 2);
    assert!(err.contains("--egress-acl-file NEW is required"), "{err}");
    let (code, _, err) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/acl.yaml",
        "/nonexistent/log",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("smokescreen replay: /nonexistent/log: "),
        "{err}"
    );
    let (code, _, err) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/acl.yaml",
        "--against",
        "/nonexistent/old.yaml",
        LOG,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("could not load egress ACL: /nonexistent/old.yaml"),
        "{err}"
    );
    let (code, out, _) = smokescreen(&["replay", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Usage: smokescreen replay --egress-acl-file NEW"),
        "{out}"
    );
}

#[test]
fn foreign_and_malformed_lines_are_counted_never_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = example_log().into_bytes();
    log.extend_from_slice(b"\xff\xfe CANONICAL-PROXY-DECISION not utf-8\n");
    log.extend_from_slice(b"{\"msg\":\"CANONICAL-PROXY-DECISION\",\"role\":\n");
    log.extend_from_slice(b"\n\r\n");
    log.extend_from_slice(b"no newline at the end");
    let path = write(dir.path(), "mixed.log", &log);
    let (code, acl, err) = smokescreen(&["suggest-acl", &path]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("21 decisions read; skipped 7 other lines and 3 malformed decision lines"),
        "{err}"
    );
    assert!(acl.contains("  - name: webhooks\n"), "{acl}");
    let (code, out, _) = smokescreen(&[
        "replay",
        "--egress-acl-file",
        "examples/suggested-acl.yaml",
        &path,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "replay: 21 decisions read; skipped 7 other lines and 3 malformed decision lines\n"
        ),
        "{out}"
    );
    // A hostile role name cannot add YAML keys.
    let hostile = example_log().replace("role=webhooks", "role=\"x\\naction: open\"");
    let path = write(dir.path(), "hostile.log", hostile.as_bytes());
    let (code, acl, err) = smokescreen(&["suggest-acl", &path]);
    assert_eq!(code, 0, "{err}");
    assert!(acl.contains("  - name: \"x\\naction: open\"\n"), "{acl}");
    assert!(
        !acl.lines()
            .any(|l| l.trim_start().starts_with("action: open")),
        "{acl}"
    );
}
