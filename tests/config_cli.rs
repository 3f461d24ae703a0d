//! Drives `config::load` the way `main` will: argument vectors plus a fake
//! environment, with real (temporary) files for the config and hosts files.
#![cfg(feature = "shell")]

use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use smokescreen::config::{
    help_text, load, Command, Config, ConfigError, LogFormat, MetricsConfig, TlsConfig,
};
use smokescreen::core::acl::Action;
use smokescreen::core::addr::UserRange;
use smokescreen::core::auth::{AuthMode, Password};

const PASSWORD: &str = "hunter2-very-secret";

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("smokescreen")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

fn load_with(args: &[&str], password: Option<&str>) -> Result<Command, ConfigError> {
    let password = password.map(str::to_string);
    let env = move |name: &str| {
        if name == "PROXY_PASSWORD" {
            password.clone()
        } else {
            None
        }
    };
    load(argv(args), &env)
}

fn config(args: &[&str]) -> Config {
    match load_with(args, Some(PASSWORD)) {
        Ok(Command::Run(config)) => *config,
        Ok(other) => panic!("{args:?}: expected Run, got {other:?}"),
        Err(e) => panic!("{args:?}: unexpected error: {e}"),
    }
}

fn error(args: &[&str]) -> ConfigError {
    match load_with(args, Some(PASSWORD)) {
        Err(e) => e,
        Ok(other) => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = match tempfile::NamedTempFile::new() {
        Ok(f) => f,
        Err(e) => panic!("tempfile: {e}"),
    };
    if let Err(e) = file.write_all(text.as_bytes()) {
        panic!("write tempfile: {e}");
    }
    file
}

fn path_str(file: &tempfile::NamedTempFile) -> String {
    file.path().display().to_string()
}

fn range(s: &str) -> UserRange {
    match s.parse() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn ip(s: &str) -> IpAddr {
    match s.parse() {
        Ok(ip) => ip,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    match s.parse() {
        Ok(a) => a,
        Err(e) => panic!("{s}: {e}"),
    }
}

#[test]
fn defaults() {
    let c = config(&[]);
    assert_eq!(c.listen, addr("[::]:4750"));
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.dns_timeout, Duration::from_secs(5));
    assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(c.exit_timeout, Duration::from_secs(60));
    assert_eq!(c.read_header_timeout, Duration::from_secs(10));
    assert_eq!(
        c.password.as_ref().map(|p| p.as_bytes()),
        Some(PASSWORD.as_bytes())
    );
    assert!(!c.allow_unauthenticated && !c.allow_missing_role && !c.proxy_protocol);
    assert_eq!(c.acl_file, None);
    assert!(c.disabled_actions.is_empty());
    assert!(c.address_policy.allow.is_empty() && c.address_policy.deny.is_empty());
    assert!(!c.address_policy.unsafe_allow_private_ranges);
    assert!(c.resolver_addresses.is_empty() && c.static_hosts.is_empty());
    assert_eq!(c.tls, None);
    assert_eq!(c.metrics, None);
    assert_eq!(c.limits.max_concurrent_requests, None);
    assert_eq!(c.limits.max_request_rate, None);
    assert_eq!(c.limits.max_request_burst, None);
    assert_eq!(c.limits.max_concurrent_connect_tunnels, None);
    assert_eq!(c.limits.max_connections, 10_000);
    assert_eq!(c.max_header_bytes, 16_384);
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert_eq!(c.deny_message_extra, None);
    assert_eq!((c.statsd_address, c.stats_socket_dir), (None, None));
}

#[test]
fn every_scalar_flag() {
    let c = config(&[
        "--listen-ip",
        "127.0.0.1",
        "--listen-port",
        "8080",
        "--timeout",
        "1m30s",
        "--dns-timeout=300ms",
        "--idle-timeout",
        "0",
        "--exit-timeout",
        "1.5h",
        "--read-header-timeout",
        "2s",
        "--proxy-protocol",
        "--egress-acl-file",
        "/etc/smokescreen/acl.yaml",
        "--statsd-address",
        "127.0.0.1:8200",
        "--stats-socket-dir",
        "/run/stats",
        "--additional-error-message-on-deny",
        "See https://wiki/egress",
        "--unsafe-allow-private-ranges",
        "--max-concurrent-requests",
        "100",
        "--max-request-rate",
        "12.5",
        "--max-request-burst",
        "40",
        "--max-concurrent-connect-tunnels",
        "7",
        "--max-connections",
        "500",
        "--max-header-bytes",
        "32768",
        "--log-format",
        "json",
        "--log-level",
        "warning",
        "--allow-missing-role",
    ]);
    assert_eq!(c.listen, addr("127.0.0.1:8080"));
    assert_eq!(c.connect_timeout, Duration::from_secs(90));
    assert_eq!(c.dns_timeout, Duration::from_millis(300));
    assert_eq!(c.idle_timeout, None);
    assert_eq!(c.exit_timeout, Duration::from_secs(5400));
    assert_eq!(c.read_header_timeout, Duration::from_secs(2));
    assert!(
        c.proxy_protocol && c.allow_missing_role && c.address_policy.unsafe_allow_private_ranges
    );
    assert_eq!(c.acl_file, Some(PathBuf::from("/etc/smokescreen/acl.yaml")));
    assert_eq!(c.statsd_address.as_deref(), Some("127.0.0.1:8200"));
    assert_eq!(c.stats_socket_dir, Some(PathBuf::from("/run/stats")));
    assert_eq!(
        c.deny_message_extra.as_deref(),
        Some("See https://wiki/egress")
    );
    assert_eq!(c.limits.max_concurrent_requests, Some(100));
    assert_eq!(c.limits.max_request_rate, Some(12.5));
    assert_eq!(c.limits.max_request_burst, Some(40));
    assert_eq!(c.limits.max_concurrent_connect_tunnels, Some(7));
    assert_eq!(c.limits.max_connections, 500);
    assert_eq!(c.max_header_bytes, 32_768);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_level, log::LevelFilter::Warn);
}

#[test]
fn burst_defaults_to_one_second_of_rate_and_needs_a_rate() {
    assert_eq!(
        config(&["--max-request-rate", "2.5"])
            .limits
            .max_request_burst,
        Some(3)
    );
    assert_eq!(
        config(&["--max-request-rate", "0.1"])
            .limits
            .max_request_burst,
        Some(1)
    );
    assert_eq!(
        config(&["--max-request-rate", "0"]).limits.max_request_rate,
        None
    );
    assert_eq!(
        error(&["--max-request-burst", "5"]).to_string(),
        "a request burst (--max-request-burst / max_request_burst) needs a request rate (--max-request-rate / max_request_rate)"
    );
}

#[test]
fn repeatable_flags_accumulate() {
    let c = config(&[
        "--deny-range",
        "10.0.0.0/8",
        "--deny-range",
        "fd00::/8",
        "--deny-address",
        "192.0.2.7",
        "--deny-address",
        "[2001:db8::7]:443",
        "--allow-range",
        "172.16.0.0/12",
        "--allow-address",
        "10.1.2.3:8080",
        "--disable-acl-policy-action",
        "open",
        "--disable-acl-policy-action",
        "REPORT",
        "--disable-acl-policy-action",
        "open",
        "--resolver-address",
        "1.1.1.1:53",
        "--resolver-address",
        "[2606:4700:4700::1111]:53",
        "--tls-server-bundle-file",
        "/tls/bundle.pem",
        "--tls-client-ca-file",
        "/tls/ca1.pem",
        "--tls-client-ca-file",
        "/tls/ca2.pem",
        "--tls-crl-file",
        "/tls/a.crl",
        "--tls-crl-file",
        "/tls/b.crl",
    ]);
    let p = &c.address_policy;
    assert_eq!(
        p.deny,
        vec![
            range("10.0.0.0/8"),
            range("fd00::/8"),
            range("192.0.2.7"),
            range("[2001:db8::7]:443")
        ]
    );
    assert_eq!(
        p.allow,
        vec![range("172.16.0.0/12"), range("10.1.2.3:8080")]
    );
    assert_eq!(c.disabled_actions, vec![Action::Open, Action::Report]);
    assert_eq!(
        c.resolver_addresses,
        vec!["1.1.1.1:53", "[2606:4700:4700::1111]:53"]
    );
    assert_eq!(
        c.tls,
        Some(TlsConfig {
            cert_file: "/tls/bundle.pem".into(),
            key_file: None,
            client_ca_files: vec!["/tls/ca1.pem".into(), "/tls/ca2.pem".into()],
            crl_files: vec!["/tls/a.crl".into(), "/tls/b.crl".into()],
        })
    );
}

#[test]
fn ranges_and_addresses_must_be_the_right_kind() {
    assert_eq!(
        error(&["--deny-range", "1.2.3.4:80"]).to_string(),
        "invalid value \"1.2.3.4:80\" for --deny-range: expected a CIDR range such as 10.0.0.0/8 or fd00::/8 (use --deny-address / deny_addresses for a single address)"
    );
    assert_eq!(
        error(&["--allow-address", "10.0.0.0/8"]).to_string(),
        "invalid value \"10.0.0.0/8\" for --allow-address: expected IP or IP:PORT such as 192.0.2.7 or [2001:db8::7]:443 (use --allow-range / allow_ranges for a CIDR range)"
    );
    let e = error(&["--allow-range", "10.1.2.3/8"]);
    assert_eq!(e.to_string(), "invalid value \"10.1.2.3/8\" for --allow-range: host bits are set; did you mean 10.0.0.0/8?");
    assert_eq!(e.exit_code(), 2);
    assert!(error(&["--deny-address", "example.com"])
        .to_string()
        .starts_with("invalid value \"example.com\" for --deny-address"));
}

#[test]
fn bad_values_name_the_flag_and_value() {
    let cases: &[(&[&str], &str)] = &[
        (&["--timeout", "10"], "invalid value \"10\" for --timeout: missing unit (use ns, us, ms, s, m or h, e.g. 10s or 1m30s)"),
        (&["--timeout", "10x"], "invalid value \"10x\" for --timeout: unknown unit \"x\" (use ns, us, ms, s, m or h, e.g. 10s or 1m30s)"),
        (&["--timeout", "0"], "invalid value \"0\" for --timeout: must be greater than zero"),
        (&["--dns-timeout=-5s"], "invalid value \"-5s\" for --dns-timeout: a duration may not have a sign"),
        (&["--idle-timeout", "1d"], "invalid value \"1d\" for --idle-timeout: unknown unit \"d\" (use ns, us, ms, s, m or h, e.g. 10s or 1m30s)"),
        (&["--listen-port", "70000"], "invalid value \"70000\" for --listen-port: expected a port number from 0 to 65535"),
        (&["--listen-ip", "localhost"], "invalid value \"localhost\" for --listen-ip: expected an IP address such as :: or 0.0.0.0"),
        (&["--proxy-protocol=yes"], "invalid value \"yes\" for --proxy-protocol: expected true or false"),
        (&["--disable-acl-policy-action", "deny"], "invalid value \"deny\" for --disable-acl-policy-action: expected open, report or enforce"),
        (&["--max-header-bytes", "100"], "invalid value \"100\" for --max-header-bytes: must be between 1024 and 1048576"),
        (&["--max-connections", "0"], "invalid value \"0\" for --max-connections: must be between 1 and 18446744073709551615"),
        (&["--max-request-rate", "fast"], "invalid value \"fast\" for --max-request-rate: expected a non-negative decimal number of requests per second, e.g. 12.5"),
        (&["--log-format", "xml"], "invalid value \"xml\" for --log-format: expected text or json"),
        (&["--log-level", "trace"], "invalid value \"trace\" for --log-level: expected debug, info, warning or error"),
        (&["--resolver-address", "1.1.1.1"], "invalid value \"1.1.1.1\" for --resolver-address: expected HOST:PORT such as 1.1.1.1:53 or [2606:4700:4700::1111]:53"),
        (&["--prometheus-endpoint", "metrics"], "invalid value \"metrics\" for --prometheus-endpoint: expected an absolute path such as /metrics"),
        (&["--additional-error-message-on-deny", "a\r\nb"], "invalid value \"a\\r\\nb\" for --additional-error-message-on-deny: control characters other than newline and tab are not allowed"),
        (&["--static-host", "db.internal"], "invalid value \"db.internal\" for --static-host: expected NAME=IP[,IP...], e.g. api.example.com=192.0.2.10"),
    ];
    for (args, want) in cases {
        let e = error(args);
        assert_eq!(e.to_string(), *want, "{args:?}");
        assert_eq!(e.exit_code(), 2, "{args:?}");
        assert!(!e.to_string().contains('\n'), "{args:?}: not one line");
    }
}

#[test]
fn usage_errors_come_from_clap_with_exit_code_2() {
    for args in [
        &["--no-such-flag"][..],
        &["--listen-port"],
        &["--listen-port", "1", "--listen-port", "2"],
        &["stray"],
    ] {
        let e = error(args);
        assert!(matches!(e, ConfigError::Usage(_)), "{args:?}: {e:?}");
        assert!(e.to_string().starts_with("error: "), "{args:?}: {e}");
        assert_eq!(e.exit_code(), 2);
    }
    assert!(error(&["--no-such-flag"])
        .to_string()
        .contains("--no-such-flag"));
}

#[test]
fn missing_password_is_exit_1_with_the_exact_text() {
    for password in [None, Some("")] {
        let e = match load_with(&[], password) {
            Err(e) => e,
            Ok(other) => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(e, ConfigError::MissingPassword);
        assert_eq!(
            e.to_string(),
            "missing environment variable: PROXY_PASSWORD"
        );
        assert_eq!(e.exit_code(), 1);
    }
}

#[test]
fn config_errors_are_reported_before_the_missing_password() {
    let e = match load_with(&["--timeout", "soon"], None) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn help_and_version_work_without_the_password() {
    for flag in ["--help", "-h"] {
        match load_with(&[flag], None) {
            Ok(Command::PrintAndExit { text, code }) => {
                assert_eq!(code, 0);
                assert_eq!(text, help_text());
                assert!(text.contains("--listen-port <PORT>"));
            }
            other => panic!("{flag}: {other:?}"),
        }
    }
    for flag in ["--version", "-V"] {
        match load_with(&[flag], None) {
            Ok(Command::PrintAndExit { text, code }) => {
                assert_eq!(code, 0);
                assert_eq!(text, format!("smokescreen {}\n", env!("CARGO_PKG_VERSION")));
            }
            other => panic!("{flag}: {other:?}"),
        }
    }
}

#[test]
fn help_snapshot() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("config_help", help_text()));
}

#[test]
fn allow_unauthenticated_runs_without_a_password() {
    match load_with(&["--allow-unauthenticated"], None) {
        Ok(Command::Run(c)) => {
            assert!(c.allow_unauthenticated);
            assert_eq!(c.password, None);
        }
        other => panic!("{other:?}"),
    }
    // A password that is set is still kept (and so still required by the shell).
    let c = config(&["--allow-unauthenticated"]);
    assert!(c.allow_unauthenticated && c.password.is_some());
    // `=false` is the same as leaving it out.
    assert_eq!(
        load_with(&["--allow-unauthenticated=false"], None).err(),
        Some(ConfigError::MissingPassword)
    );
}

#[test]
fn allow_unauthenticated_is_not_a_config_file_key() {
    let file = temp_file("allow_unauthenticated: true\n");
    let e = error(&["--config-file", &path_str(&file)]);
    // serde_yaml gives no position for the very first key.
    assert_eq!(
        e.to_string(),
        format!(
            "{}: unknown key `allow_unauthenticated`",
            file.path().display()
        )
    );
}

#[test]
fn password_never_appears_in_debug_output() {
    let c = config(&[]);
    let debug = format!("{c:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("password: Some(<redacted>)"), "{debug}");
    let pretty = format!("{c:#?}");
    assert!(!pretty.contains(PASSWORD));
    let command = load_with(&[], Some(PASSWORD));
    assert!(!format!("{command:?}").contains(PASSWORD));
}

/// One password type: what `config` loads is what `core::auth` checks, with
/// no copy through bytes in between.
#[test]
fn the_loaded_password_is_the_cores_password() {
    let loaded: Option<Password> = config(&[]).password;
    let mode = match loaded {
        Some(p) => AuthMode::Password(p),
        None => panic!("PROXY_PASSWORD was set"),
    };
    match &mode {
        AuthMode::Password(p) => {
            assert!(p.matches(PASSWORD.as_bytes()));
            assert!(!p.matches(b"hunter2"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(format!("{mode:?}"), "Password(<redacted>)");
}

const FULL_FILE: &str = r#"
# every key, Smokescreen's first
ip: 127.0.0.2
port: 8123
deny_ranges: [10.0.0.0/8]
allow_ranges: ["192.168.0.0/16"]
deny_addresses: ["192.168.1.5", "[::1]:22"]
allow_addresses: ["10.9.9.9:443"]
resolver_addresses: ["127.0.0.53:53"]
acl_file: /etc/smokescreen/acl.yaml
support_proxy_protocol: true
deny_message_extra: "Ask #egress"
allow_missing_role: true
connect_timeout: 17s
idle_timeout: 0
exit_timeout: 2m
dns_timeout: 23s
read_header_timeout: 3s
unsafe_allow_private_ranges: true
tls:
  cert_file: /tls/cert.pem
  key_file: /tls/key.pem
  client_ca_files: [/tls/ca.pem]
  crl_files: [/tls/ca.crl]
max_concurrent_requests: 7
max_request_rate: 12.5
max_request_burst: 17
max_concurrent_connect_tunnels: 19
statsd_address: 127.0.0.1:8125
stats_socket_dir: /run/smokescreen
# our additions
static_hosts:
  Pinned.Example.: [203.0.113.5, "2001:db8::5"]
  one.example: 198.51.100.1
log_format: json
log_level: debug
max_connections: 321
max_header_bytes: 8192
disabled_acl_policy_actions: [open]
expose_prometheus_metrics: true
prometheus_endpoint: /m
prometheus_listen_ip: 127.0.0.3
prometheus_port: 9999
"#;

#[test]
fn config_file_with_every_key() {
    let file = temp_file(FULL_FILE);
    let c = config(&["--config-file", &path_str(&file)]);
    assert_eq!(c.listen, addr("127.0.0.2:8123"));
    assert_eq!(
        c.address_policy.deny,
        vec![range("10.0.0.0/8"), range("192.168.1.5"), range("[::1]:22")]
    );
    assert_eq!(
        c.address_policy.allow,
        vec![range("192.168.0.0/16"), range("10.9.9.9:443")]
    );
    assert!(c.address_policy.unsafe_allow_private_ranges);
    assert_eq!(c.resolver_addresses, vec!["127.0.0.53:53"]);
    assert_eq!(c.acl_file, Some(PathBuf::from("/etc/smokescreen/acl.yaml")));
    assert!(c.proxy_protocol && c.allow_missing_role);
    assert_eq!(c.deny_message_extra.as_deref(), Some("Ask #egress"));
    assert_eq!(c.connect_timeout, Duration::from_secs(17));
    assert_eq!(c.idle_timeout, None);
    assert_eq!(c.exit_timeout, Duration::from_secs(120));
    assert_eq!(c.dns_timeout, Duration::from_secs(23));
    assert_eq!(c.read_header_timeout, Duration::from_secs(3));
    assert_eq!(
        c.tls,
        Some(TlsConfig {
            cert_file: "/tls/cert.pem".into(),
            key_file: Some("/tls/key.pem".into()),
            client_ca_files: vec!["/tls/ca.pem".into()],
            crl_files: vec!["/tls/ca.crl".into()],
        })
    );
    assert_eq!(c.limits.max_concurrent_requests, Some(7));
    assert_eq!(c.limits.max_request_rate, Some(12.5));
    assert_eq!(c.limits.max_request_burst, Some(17));
    assert_eq!(c.limits.max_concurrent_connect_tunnels, Some(19));
    assert_eq!(c.limits.max_connections, 321);
    assert_eq!(c.statsd_address.as_deref(), Some("127.0.0.1:8125"));
    assert_eq!(c.stats_socket_dir, Some(PathBuf::from("/run/smokescreen")));
    assert_eq!(c.static_hosts.len(), 2);
    assert_eq!(
        c.static_hosts.get("pinned.example"),
        Some(&vec![ip("203.0.113.5"), ip("2001:db8::5")])
    );
    assert_eq!(
        c.static_hosts.get("one.example"),
        Some(&vec![ip("198.51.100.1")])
    );
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_level, log::LevelFilter::Debug);
    assert_eq!(c.max_header_bytes, 8192);
    assert_eq!(c.disabled_actions, vec![Action::Open]);
    assert_eq!(
        c.metrics,
        Some(MetricsConfig {
            listen: addr("127.0.0.3:9999"),
            endpoint: "/m".into()
        })
    );
    assert_eq!(c.config_file.as_deref(), Some(file.path()));
}

#[test]
fn flags_override_file_values_and_lists_add_up() {
    let file = temp_file(FULL_FILE);
    let c = config(&[
        "--config-file",
        &path_str(&file),
        "--listen-port",
        "4750",
        "--timeout",
        "4s",
        "--proxy-protocol=false",
        "--log-format",
        "text",
        "--deny-range",
        "100.64.0.0/10",
        "--static-host",
        "one.example=192.0.2.1",
        "--egress-acl-file",
        "/other/acl.yaml",
        "--tls-server-bundle-file",
        "/tls/bundle.pem",
        "--max-request-rate",
        "0",
        "--max-request-burst",
        "0",
    ]);
    assert_eq!(
        c.listen,
        addr("127.0.0.2:4750"),
        "ip from the file, port from the flag"
    );
    assert_eq!(c.connect_timeout, Duration::from_secs(4));
    assert_eq!(
        c.dns_timeout,
        Duration::from_secs(23),
        "not given on the command line: file wins over default"
    );
    assert!(!c.proxy_protocol);
    assert_eq!(
        c.log_format,
        LogFormat::Text,
        "explicit flag equal to the default still overrides"
    );
    assert_eq!(c.address_policy.deny.first(), Some(&range("10.0.0.0/8")));
    assert_eq!(c.address_policy.deny.get(1), Some(&range("100.64.0.0/10")));
    assert_eq!(
        c.static_hosts.get("one.example"),
        Some(&vec![ip("192.0.2.1")])
    );
    assert_eq!(c.static_hosts.get("pinned.example").map(Vec::len), Some(2));
    assert_eq!(c.acl_file, Some(PathBuf::from("/other/acl.yaml")));
    assert_eq!(
        c.tls
            .as_ref()
            .map(|t| (t.cert_file.clone(), t.key_file.clone())),
        Some(("/tls/bundle.pem".into(), None))
    );
    assert_eq!(c.tls.map(|t| t.client_ca_files.len()), Some(1));
    assert_eq!(
        (c.limits.max_request_rate, c.limits.max_request_burst),
        (None, None)
    );
}

#[test]
fn file_value_errors_name_the_path_and_key() {
    let cases: &[(&str, &str)] = &[
        ("connect_timeout: 10\n", "connect_timeout: invalid value \"10\": missing unit (use ns, us, ms, s, m or h, e.g. 10s or 1m30s)"),
        ("port: 99999\n", "port: invalid value \"99999\": expected a port number from 0 to 65535"),
        ("deny_ranges: [1.2.3.4:80]\n", "deny_ranges: invalid value \"1.2.3.4:80\": expected a CIDR range such as 10.0.0.0/8 or fd00::/8 (use --deny-address / deny_addresses for a single address)"),
        ("static_hosts:\n  db: nope\n", "static_hosts: db: invalid IP address \"nope\""),
        ("static_hosts:\n  db: []\n", "static_hosts: db: no addresses"),
        ("tls:\n  key_file: /k.pem\n", "tls: key_file is set but cert_file is not"),
        ("port: [1]\n", "port: invalid type: sequence, expected a string, number or boolean at line 1 column 7"),
        ("port: 1\nlisten_port: 2\n", "unknown key `listen_port` at line 2 column 1"),
        ("port: 1\nconect_timeout: 10s\n", "unknown key `conect_timeout` at line 2 column 1 (did you mean `connect_timeout`?)"),
        ("port: 1\n  bad indent: [\n", ""),
    ];
    for (text, want) in cases {
        let file = temp_file(text);
        let e = error(&["--config-file", &path_str(&file)]);
        let prefix = format!("{}: ", file.path().display());
        let message = e.to_string();
        assert!(message.starts_with(&prefix), "{text:?}: {message}");
        if !want.is_empty() {
            assert_eq!(message.strip_prefix(&prefix), Some(*want), "{text:?}");
        }
        assert!(!message.contains('\n'), "{text:?}: not one line: {message}");
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn unreadable_files_name_the_path() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let missing = dir.path().join("missing.yaml");
    let missing_str = missing.display().to_string();
    for flag in ["--config-file", "--hosts-file"] {
        let e = error(&[flag, &missing_str]);
        assert_eq!(
            e.to_string(),
            format!("{missing_str}: No such file or directory (os error 2)")
        );
        assert_eq!(e.exit_code(), 2);
    }
    let e = error(&["--config-file", &dir.path().display().to_string()]);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", dir.path().display())),
        "{e}"
    );
}

#[test]
fn empty_config_file_means_defaults() {
    let file = temp_file("# nothing yet\n");
    let c = config(&["--config-file", &path_str(&file)]);
    assert_eq!(c.listen, addr("[::]:4750"));
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
}

#[test]
fn hosts_file_parsing_and_precedence() {
    let hosts = temp_file("# pinned\n10.0.0.5 db.internal DB\n10.0.0.6 db.internal\n::1 ip6-localhost # comment\n\n198.51.100.9 api.example\n");
    let c = config(&[
        "--hosts-file",
        &path_str(&hosts),
        "--static-host",
        "API.example.=192.0.2.1,192.0.2.2",
        "--static-host",
        "api.example=192.0.2.3",
    ]);
    assert_eq!(
        c.static_hosts.get("db.internal"),
        Some(&vec![ip("10.0.0.5"), ip("10.0.0.6")])
    );
    assert_eq!(c.static_hosts.get("db"), Some(&vec![ip("10.0.0.5")]));
    assert_eq!(c.static_hosts.get("ip6-localhost"), Some(&vec![ip("::1")]));
    assert_eq!(
        c.static_hosts.get("api.example"),
        Some(&vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")]),
        "flags replace the hosts file's entry and add up among themselves"
    );
    assert_eq!(c.hosts_file.as_deref(), Some(hosts.path()));

    let bad = temp_file("10.0.0.5 ok\n10.0.0.x broken\n");
    let e = error(&["--hosts-file", &path_str(&bad)]);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: line 2: invalid IP address \"10.0.0.x\"",
            bad.path().display()
        )
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn hosts_file_from_the_config_file() {
    let hosts = temp_file("192.0.2.44 from-hosts-file\n");
    let file = temp_file(&format!(
        "hosts_file: {}\nstatic_hosts:\n  from-hosts-file: 192.0.2.45\n",
        path_str(&hosts)
    ));
    let c = config(&["--config-file", &path_str(&file)]);
    assert_eq!(
        c.static_hosts.get("from-hosts-file"),
        Some(&vec![ip("192.0.2.45")]),
        "static_hosts beats hosts_file"
    );
}

#[test]
fn static_host_names_are_normalised() {
    let c = config(&["--static-host", "Bücher.Example.=192.0.2.8"]);
    assert_eq!(
        c.static_hosts.get("xn--bcher-kva.example"),
        Some(&vec![ip("192.0.2.8")])
    );
    assert!(error(&["--static-host", "1.2.3.4=192.0.2.8"])
        .to_string()
        .contains("is an IP address, not a host name"));
}

#[test]
fn tls_checks_need_their_prerequisites() {
    assert_eq!(
        error(&["--tls-client-ca-file", "/ca.pem"]).to_string(),
        "a client CA (--tls-client-ca-file / tls.client_ca_files) needs a server certificate (--tls-server-bundle-file / tls.cert_file)"
    );
    assert_eq!(
        error(&["--tls-server-bundle-file", "/b.pem", "--tls-crl-file", "/x.crl"]).to_string(),
        "a CRL (--tls-crl-file / tls.crl_files) needs a client CA (--tls-client-ca-file / tls.client_ca_files)"
    );
}

#[test]
fn metrics_listener() {
    let c = config(&["--expose-prometheus-metrics"]);
    assert_eq!(
        c.metrics,
        Some(MetricsConfig {
            listen: addr("[::]:9810"),
            endpoint: "/metrics".into()
        })
    );
    let e = error(&["--expose-prometheus-metrics", "--prometheus-port", "4750"]);
    assert_eq!(
        e.to_string(),
        "the Prometheus listener [::]:4750 and the proxy listener [::]:4750 would share a port"
    );
    // Different addresses on the same port are fine.
    let c = config(&[
        "--expose-prometheus-metrics",
        "--listen-ip",
        "127.0.0.1",
        "--prometheus-listen-ip",
        "127.0.0.2",
        "--prometheus-port",
        "4750",
    ]);
    assert_eq!(c.metrics.map(|m| m.listen), Some(addr("127.0.0.2:4750")));
    // Metrics settings are validated even when metrics are off.
    assert!(error(&["--prometheus-port", "x"])
        .to_string()
        .contains("--prometheus-port"));
}

#[test]
fn bracketed_listen_ip_is_accepted() {
    assert_eq!(config(&["--listen-ip", "[::1]"]).listen, addr("[::1]:4750"));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const FLAGS: &[&str] = &[
        "--listen-ip",
        "--listen-port",
        "--timeout",
        "--idle-timeout",
        "--deny-range",
        "--allow-address",
        "--static-host",
        "--max-request-rate",
        "--max-request-burst",
        "--max-header-bytes",
        "--log-level",
        "--proxy-protocol",
        "--prometheus-port",
        "--expose-prometheus-metrics",
        "--resolver-address",
        "--additional-error-message-on-deny",
        "--tls-crl-file",
        "--disable-acl-policy-action",
    ];

    proptest! {
        #[test]
        fn arbitrary_flag_values(pairs in prop::collection::vec((0..FLAGS.len(), "\\PC{0,12}"), 0..6)) {
            let mut args: Vec<String> = Vec::new();
            for (i, value) in pairs {
                args.push(format!("{}={value}", FLAGS.get(i).copied().unwrap_or("--timeout")));
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            // Ok or a typed error; a panic fails the property.
            if let Err(e) = load_with(&refs, Some(PASSWORD)) {
                prop_assert!(e.exit_code() == 2);
            }
        }

        #[test]
        fn arbitrary_config_file_text(text in "(\\PC{0,20}(: |\n|- |  )?){0,8}") {
            let file = temp_file(&text);
            if let Err(e) = load_with(&["--config-file", &path_str(&file)], Some(PASSWORD)) {
                prop_assert!(e.exit_code() == 2);
                let prefix = format!("{}: ", file.path().display());
                let inconsistent = matches!(e, ConfigError::Inconsistent(_));
                prop_assert!(inconsistent || e.to_string().starts_with(&prefix), "{}", e);
            }
        }
    }
}
