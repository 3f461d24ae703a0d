//! Configuration of the issue-8 features: PROXY protocol trusted ranges and
//! the password being optional when client certificates are required.
#![cfg(feature = "shell")]

use std::ffi::OsString;
use std::io::Write;

use smokescreen::config::{load, Command, Config, ConfigError};

fn load_with(args: &[&str], password: Option<&str>) -> Result<Command, ConfigError> {
    let argv: Vec<OsString> = std::iter::once("smokescreen")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    let password = password.map(str::to_string);
    load(argv, &move |name: &str| {
        (name == "PROXY_PASSWORD")
            .then(|| password.clone())
            .flatten()
    })
}

fn config(args: &[&str], password: Option<&str>) -> Config {
    match load_with(args, password) {
        Ok(Command::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn trusted_ranges_come_from_the_file_then_the_flags() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"support_proxy_protocol: true\nproxy_protocol_trusted_ranges: [10.0.0.0/8]\n")
        .unwrap();
    let path = file.path().display().to_string();
    let c = config(
        &[
            "--config-file",
            &path,
            "--proxy-protocol-trusted-range",
            "fdaa::1",
            "--proxy-protocol-trusted-range=192.168.1.77/24",
        ],
        Some("pw"),
    );
    assert!(c.proxy_protocol);
    let ranges: Vec<String> = c
        .proxy_protocol_trusted_ranges
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(ranges, ["10.0.0.0/8", "fdaa::1/128", "192.168.1.0/24"]);
}

#[test]
fn a_bad_trusted_range_is_named() {
    let e = load_with(
        &["--proxy-protocol-trusted-range", "10.0.0.0/33"],
        Some("pw"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value \"10.0.0.0/33\" for --proxy-protocol-trusted-range: expected a CIDR range such as 10.0.0.0/8 or fdaa::/16, or one address"
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn client_certificates_make_the_password_optional_but_tls_alone_does_not() {
    let mtls = [
        "--tls-server-bundle-file",
        "/nonexistent/bundle.pem",
        "--tls-client-ca-file",
        "/nonexistent/ca.pem",
    ];
    let c = config(&mtls, None);
    assert!(c.password.is_none());
    assert!(!c.allow_unauthenticated);
    let e = load_with(
        &["--tls-server-bundle-file", "/nonexistent/bundle.pem"],
        None,
    )
    .unwrap_err();
    assert_eq!(e, ConfigError::MissingPassword);
}
