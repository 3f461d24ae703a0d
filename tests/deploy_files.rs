#![allow(clippy::disallowed_methods)] // tests read the repository's files
//! The deployment files, checked against the code without Docker or Fly:
//! the Dockerfile's copies, binary, ports, ACL path and build command; the
//! fly.toml's private-network shape, drain timing, metrics and health check;
//! and the README's flag reference against `--help`, so none can drift.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use smokescreen::config::{self, Command, Config};
use smokescreen::shell::observe::metrics_listener::HEALTH_PATHS;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A flag's `[default: ...]` in `smokescreen --help`.
fn help_default(flag: &str) -> String {
    let help = config::help_text();
    let start = help
        .find(&format!("      {flag} "))
        .unwrap_or_else(|| panic!("{flag} not in --help:\n{help}"));
    let rest = &help[start..];
    let end = rest[8..].find("\n      --").map_or(rest.len(), |i| i + 8);
    let entry = &rest[..end];
    let d = entry
        .find("[default: ")
        .unwrap_or_else(|| panic!("{flag} has no default: {entry}"));
    let v = &entry[d + "[default: ".len()..];
    v[..v.find(']').expect("closing bracket")].to_string()
}

/// Dockerfile instructions as (KEYWORD, arguments), continuations joined,
/// comments dropped, each tagged with the index of its build stage.
fn dockerfile() -> Vec<(usize, String, String)> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut stage = 0usize;
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let full = std::mem::take(&mut current);
        let (kw, args) = full.split_once(' ').unwrap_or((&full, ""));
        let kw = kw.to_ascii_uppercase();
        if kw == "FROM" {
            stage += 1;
        }
        out.push((stage, kw, args.trim().to_string()));
    }
    out
}

fn last_stage(instrs: &[(usize, String, String)]) -> usize {
    instrs.iter().map(|i| i.0).max().expect("a stage")
}

fn cmd_args() -> Vec<String> {
    let instrs = dockerfile();
    let cmd = instrs.iter().rfind(|(_, k, _)| k == "CMD").expect("a CMD");
    serde_json::from_str(&cmd.2).expect("CMD in exec (JSON array) form")
}

/// The config the image's CMD starts with, through the real flag parser.
fn cmd_config() -> Config {
    let args: Vec<OsString> = cmd_args().into_iter().map(OsString::from).collect();
    let env = |name: &str| (name == config::PASSWORD_ENV).then(|| "secret".to_string());
    match config::load(args, &env) {
        Ok(Command::Run(c)) => *c,
        other => panic!("the Dockerfile CMD does not start the proxy: {other:?}"),
    }
}

fn dockerignore() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn dockerfile_copies_only_files_that_exist_and_are_not_ignored() {
    let ignored = dockerignore();
    let mut checked = 0;
    for (_, kw, args) in dockerfile() {
        if kw != "COPY" || args.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        let (sources, _dest) = words.split_at(words.len() - 1);
        for src in sources {
            assert!(
                Path::new(ROOT).join(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
            for pattern in &ignored {
                assert!(
                    !(src == pattern || src.starts_with(&format!("{pattern}/"))),
                    ".dockerignore pattern {pattern} excludes {src}, which the Dockerfile copies"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected Cargo.toml, Cargo.lock, src and the ACL to be copied"
    );
}

#[test]
fn dockerfile_is_multi_stage_with_a_non_root_runtime() {
    let instrs = dockerfile();
    let last = last_stage(&instrs);
    assert!(last >= 2, "multi-stage build expected");
    let user = instrs
        .iter()
        .rfind(|(s, k, _)| *s == last && k == "USER")
        .expect("runtime stage sets USER");
    let name = user.2.split(':').next().unwrap_or_default();
    assert!(
        name != "0" && name != "root" && !name.is_empty(),
        "runtime runs as {name}"
    );
    let binary = Path::new(env!("CARGO_BIN_EXE_smokescreen"))
        .file_name()
        .and_then(|n| n.to_str())
        .expect("binary name")
        .to_string();
    let from_build = instrs
        .iter()
        .find(|(s, k, a)| *s == last && k == "COPY" && a.starts_with("--from="))
        .expect("runtime copies the binary from the build stage");
    assert!(
        from_build.2.ends_with(&format!("/{binary}")),
        "copied binary {} is not {binary}",
        from_build.2
    );
    assert_eq!(
        cmd_args().first(),
        Some(&binary),
        "CMD runs the binary by name"
    );
}

#[test]
fn dockerfile_build_matches_ci_and_the_toolchain() {
    let instrs = dockerfile();
    let builds: Vec<&String> = instrs
        .iter()
        .filter(|(_, k, a)| k == "RUN" && a.contains("cargo build"))
        .map(|(_, _, a)| a)
        .collect();
    assert!(!builds.is_empty(), "no cargo build in the Dockerfile");
    for b in &builds {
        assert!(b.contains("cargo build --release --locked"), "{b}");
    }
    let ci = read(".ci/run");
    let ci_cargo: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("cargo ") && !l.starts_with("cargo fmt"))
        .collect();
    assert!(!ci_cargo.is_empty());
    for l in ci_cargo {
        assert!(l.contains("--locked"), "CI builds without --locked: {l}");
    }
    // The builder's Rust is at least the crate's declared minimum.
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let msrv = manifest["package"]["rust-version"]
        .as_str()
        .expect("rust-version");
    let from = instrs
        .iter()
        .find(|(_, k, _)| k == "FROM")
        .expect("FROM")
        .2
        .clone();
    let tag = from
        .split_whitespace()
        .next()
        .and_then(|image| image.strip_prefix("rust:"))
        .expect("build stage uses the rust image");
    let version = tag.split('-').next().unwrap_or_default();
    let parse = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    assert!(
        parse(version) >= parse(msrv),
        "rust:{version} is older than rust-version {msrv}"
    );
}

#[test]
fn dockerfile_ports_acl_and_cmd_agree_with_the_code() {
    let instrs = dockerfile();
    let last = last_stage(&instrs);
    let exposed: BTreeSet<String> = instrs
        .iter()
        .filter(|(s, k, _)| *s == last && k == "EXPOSE")
        .flat_map(|(_, _, a)| a.split_whitespace().map(str::to_string))
        .collect();
    let config = cmd_config();
    assert_eq!(help_default("--listen-port"), "4750");
    assert!(
        exposed.contains(&config.listen.port().to_string()),
        "{exposed:?}"
    );
    let metrics = config
        .metrics
        .as_ref()
        .expect("CMD enables --expose-prometheus-metrics (fly.toml scrapes and health-checks it)");
    assert_eq!(
        metrics.listen.port().to_string(),
        help_default("--prometheus-port")
    );
    assert!(
        exposed.contains(&metrics.listen.port().to_string()),
        "{exposed:?}"
    );
    // The ACL the CMD names is where the Dockerfile puts the default ACL.
    let acl = config.acl_file.clone().expect("CMD names an ACL file");
    assert_eq!(acl, Path::new("/etc/smokescreen/acl.yaml"));
    let copy = instrs
        .iter()
        .find(|(s, k, a)| *s == last && k == "COPY" && a.ends_with(&format!(" {}", acl.display())))
        .expect("the runtime stage copies a file to the CMD's ACL path");
    let src = copy.2.split_whitespace().next().expect("source");
    assert_eq!(src, "src/default-acl.yaml");
    assert_eq!(read(src), smokescreen::core::DEFAULT_ACL_YAML);
}

fn fly() -> toml::Table {
    read("fly.toml").parse().expect("fly.toml is valid TOML")
}

fn seconds(v: &toml::Value) -> u64 {
    match v {
        toml::Value::Integer(i) => u64::try_from(*i).expect("non-negative"),
        toml::Value::String(s) => config::parse_duration(s).expect("duration").as_secs(),
        other => panic!("not a duration: {other}"),
    }
}

#[test]
fn fly_toml_is_private_and_drains_within_kill_timeout() {
    let fly = fly();
    for public in ["services", "http_service"] {
        assert!(
            !fly.contains_key(public),
            "fly.toml must not publish the proxy ([{public}])"
        );
    }
    assert!(fly["app"].as_str().is_some_and(|a| !a.is_empty()));
    // 6PN is IPv6: the default listener must accept it.
    assert_eq!(help_default("--listen-ip"), "::");
    let signal = fly["kill_signal"].as_str().expect("kill_signal");
    assert!(
        ["SIGINT", "SIGTERM"].contains(&signal),
        "{signal} does not drain"
    );
    let exit =
        config::parse_duration(&help_default("--exit-timeout")).expect("default exit timeout");
    // The drain plus the 2 s the listener gives cut tunnels to log their close.
    let needed = exit.as_secs() + 2;
    let kill = seconds(&fly["kill_timeout"]);
    assert!(kill >= needed, "kill_timeout {kill}s < drain {needed}s");
    assert!(kill <= 300, "Fly caps kill_timeout at 300s");
    let dockerfile = fly["build"]["dockerfile"]
        .as_str()
        .expect("build.dockerfile");
    assert!(Path::new(ROOT).join(dockerfile).exists());
}

#[test]
fn fly_toml_metrics_and_health_check_match_the_listener() {
    let fly = fly();
    let port: i64 = help_default("--prometheus-port").parse().expect("port");
    assert_eq!(fly["metrics"]["port"].as_integer(), Some(port));
    assert_eq!(
        fly["metrics"]["path"].as_str(),
        Some(help_default("--prometheus-endpoint").as_str())
    );
    assert_eq!(help_default("--prometheus-listen-ip"), "::");
    let checks = fly["checks"].as_table().expect("[checks]");
    assert!(!checks.is_empty());
    for (name, check) in checks {
        assert_eq!(check["type"].as_str(), Some("http"), "check {name}");
        assert_eq!(check["port"].as_integer(), Some(port), "check {name}");
        let path = check["path"].as_str().expect("path");
        assert!(HEALTH_PATHS.contains(&path), "check {name} path {path}");
    }
    // Health and metrics only work if the image's CMD turns the listener on.
    assert!(cmd_config().metrics.is_some());
}

/// `--flags` in a text; `--tls-*` style globs kept with their `*`.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("--") {
        let start = i + pos;
        let mut end = start + 2;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'-')
        {
            end += 1;
        }
        let preceded_ok =
            start == 0 || !bytes[start - 1].is_ascii_alphanumeric() && bytes[start - 1] != b'-';
        if end > start + 2 && bytes[start + 2].is_ascii_lowercase() && preceded_ok {
            let mut flag = text[start..end].to_string();
            if bytes.get(end) == Some(&b'*') {
                flag.push('*');
            }
            out.insert(flag);
        }
        i = end.max(start + 2);
    }
    out
}

fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no '## {heading}' section"));
    let body = &text[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    &body[..end]
}

fn known(flag: &str, help: &BTreeSet<String>) -> bool {
    match flag.strip_suffix('*') {
        Some(prefix) => help.iter().any(|h| h.starts_with(prefix)),
        None => help.contains(flag),
    }
}

#[test]
fn readme_and_spec_document_every_flag_and_only_real_ones() {
    let help = flags_in(&config::help_text());
    assert!(help.len() > 30, "{help:?}");
    let readme = read("README.md");
    let documented: BTreeSet<String> = flags_in(&readme)
        .union(&flags_in(&read("spec/config.md")))
        .cloned()
        .collect();
    let missing: Vec<&String> = help
        .iter()
        .filter(|f| *f != "--help" && *f != "--version" && !documented.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "flags in --help but not documented: {missing:?}"
    );
    for heading in ["Configuration", "Metrics and health", "Deploying on Fly.io"] {
        for flag in flags_in(section(&readme, heading)) {
            assert!(
                known(&flag, &help),
                "README '{heading}' names {flag}, which --help does not have"
            );
        }
    }
    // The policy tools add their own four flags to the proxy's.
    let mut tools = help.clone();
    tools.extend(["--role", "--host", "--address", "--port"].map(String::from));
    for flag in flags_in(section(&readme, "Testing your policy")) {
        assert!(
            known(&flag, &tools),
            "README 'Testing your policy' names unknown {flag}"
        );
    }
}

#[test]
fn flag_scanner_finds_flags_and_globs() {
    let found = flags_in("use `--listen-port 1`, --tls-* and x--no; not ---x or --9");
    let want: BTreeSet<String> = ["--listen-port", "--tls-*"].map(String::from).into();
    assert_eq!(found, want);
}
