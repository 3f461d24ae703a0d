//! Runs every case of `spec/config.yaml` through `config::load`.
#![cfg(feature = "shell")]
#![allow(clippy::disallowed_methods)] // a test may read its spec file

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

use serde::Deserialize;
use smokescreen::config::{load, render_duration, Command, Config};
use smokescreen::core::addr::UserRange;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/config.yaml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    cases: Vec<Case>,
}

fn default_password() -> Option<String> {
    Some("s3cret".to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    args: Vec<String>,
    #[serde(default = "default_password")]
    password: Option<String>,
    file: Option<String>,
    #[serde(default)]
    expect: BTreeMap<String, String>,
    error: Option<String>,
    error_starts_with: Option<String>,
    exit: Option<i32>,
    print: Option<String>,
}

fn ranges(list: &[UserRange]) -> String {
    let one = |r: &UserRange| match r.port {
        Some(p) => format!("{} port {p}", r.net),
        None => r.net.to_string(),
    };
    list.iter().map(one).collect::<Vec<_>>().join(", ")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// One Config field as text, or None for a name the table should not use.
fn field(c: &Config, name: &str) -> Option<String> {
    let text = match name {
        "listen" => c.listen.to_string(),
        "connect_timeout" => render_duration(c.connect_timeout),
        "dns_timeout" => render_duration(c.dns_timeout),
        "idle_timeout" => opt(c.idle_timeout.map(render_duration)),
        "exit_timeout" => render_duration(c.exit_timeout),
        "read_header_timeout" => render_duration(c.read_header_timeout),
        "proxy_protocol" => c.proxy_protocol.to_string(),
        "allow_unauthenticated" => c.allow_unauthenticated.to_string(),
        "allow_missing_role" => c.allow_missing_role.to_string(),
        "unsafe_allow_private_ranges" => c.address_policy.unsafe_allow_private_ranges.to_string(),
        "acl_file" => opt(c.acl_file.as_ref().map(|p| p.display().to_string())),
        "password" => (if c.password.is_some() { "set" } else { "none" }).to_string(),
        "metrics" => opt(c
            .metrics
            .as_ref()
            .map(|m| format!("{} {}", m.listen, m.endpoint))),
        "tls" => opt(c.tls.as_ref().map(|t| {
            let key = t
                .key_file
                .as_ref()
                .map_or_else(|| "bundle".to_string(), |k| k.display().to_string());
            format!(
                "{} key={key} cas={} crls={}",
                t.cert_file.display(),
                t.client_ca_files.len(),
                t.crl_files.len()
            )
        })),
        "mitm" => opt(c.mitm.as_ref().map(|m| {
            format!(
                "{} key={} upstream_cas={}",
                m.cert_file.display(),
                m.key_file.display(),
                c.mitm_upstream_ca_files.len()
            )
        })),
        "max_connections" => c.limits.max_connections.to_string(),
        "max_header_bytes" => c.max_header_bytes.to_string(),
        "max_concurrent_requests" => opt(c.limits.max_concurrent_requests),
        "max_request_rate" => opt(c.limits.max_request_rate),
        "max_request_burst" => opt(c.limits.max_request_burst),
        "max_concurrent_connect_tunnels" => opt(c.limits.max_concurrent_connect_tunnels),
        "log_format" => format!("{:?}", c.log_format).to_lowercase(),
        "log_level" => c.log_level.to_string(),
        "deny" => ranges(&c.address_policy.deny),
        "allow" => ranges(&c.address_policy.allow),
        "disabled_actions" => c
            .disabled_actions
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        "static_hosts" => {
            let sorted: BTreeMap<_, _> = c.static_hosts.iter().collect();
            let entry = |(name, ips): (&&String, &&Vec<std::net::IpAddr>)| {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                format!("{name}={}", ips.join(","))
            };
            sorted
                .iter()
                .map(|(n, i)| entry((n, i)))
                .collect::<Vec<_>>()
                .join("; ")
        }
        _ => return None,
    };
    Some(text)
}

fn run(case: &Case) -> Result<(), String> {
    let mut temp = None;
    let mut args: Vec<OsString> = vec!["smokescreen".into()];
    if let Some(text) = &case.file {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        args.push("--config-file".into());
        args.push(file.path().into());
        temp = Some(file);
    }
    args.extend(case.args.iter().map(OsString::from));
    let password = case.password.clone();
    let env = move |name: &str| {
        if name == "PROXY_PASSWORD" {
            password.clone()
        } else {
            None
        }
    };
    let file_path = temp
        .as_ref()
        .map(|f| f.path().display().to_string())
        .unwrap_or_default();

    match load(args, &env) {
        Ok(Command::Run(config)) => {
            if case.error.is_some() || case.error_starts_with.is_some() || case.print.is_some() {
                return Err(format!("expected a refusal or print, got {config:?}"));
            }
            if case.expect.is_empty() {
                return Err("a successful case must expect something".to_string());
            }
            for (name, want) in &case.expect {
                let got =
                    field(&config, name).ok_or_else(|| format!("unknown expect field {name}"))?;
                if &got != want {
                    return Err(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
            Ok(())
        }
        Ok(Command::PrintAndExit { text, code }) => {
            let want = case
                .print
                .as_ref()
                .ok_or_else(|| format!("unexpected print: {text}"))?;
            if code != 0 || !text.starts_with(want.as_str()) {
                return Err(format!("got code {code} and {text:?}, want 0 and {want:?}"));
            }
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            let want_code = case
                .exit
                .ok_or_else(|| format!("unexpected error: {message}"))?;
            if e.exit_code() != want_code {
                return Err(format!("exit code {}, want {want_code}", e.exit_code()));
            }
            match (&case.error, &case.error_starts_with) {
                (Some(want), _) if message != want.replace("{file}", &file_path) => {
                    Err(format!("error {message:?}, want {want:?}"))
                }
                (None, Some(prefix)) if !message.starts_with(prefix.as_str()) => Err(format!(
                    "error {message:?}, want it to start with {prefix:?}"
                )),
                (None, None) => Err(format!("unexpected error: {message}")),
                _ => Ok(()),
            }
        }
    }
}

#[test]
fn every_case_in_the_table() {
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    let spec: Spec = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    assert!(spec.cases.len() >= 30, "the table lost cases");
    let failures: Vec<String> = spec
        .cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("case {:?}: {e}", c.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
