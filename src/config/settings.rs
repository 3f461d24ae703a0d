//! Every setting, declared once: its flag, its config-file key, how its
//! value is written, its default and its parser. The command line
//! (`cli.rs`), the config file's schema (`file.rs`) and the merge (`mod.rs`)
//! are all driven by this table, so a new setting is one declaration here,
//! its place in [`ALL`], and the line in `build.rs` that puts its value into
//! [`super::Config`].
//!
//! The order of [`ALL`] is the order of `--help`.

use std::net::IpAddr;
use std::time::Duration;

use log::LevelFilter;

use crate::core::acl::Action;
use crate::core::addr::UserRange;

use super::hosts;
use super::values;
use super::LogFormat;

/// How a setting is written on the command line and in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `--flag VALUE` / `key: scalar`.
    Value,
    /// `--flag` or `--flag=BOOL` / `key: bool`.
    Switch,
    /// Repeatable `--flag VALUE` / `key: [list]`; the file's entries come first.
    List,
    /// `--flag FILE` / `key: path`; any bytes the OS allows, empty means unset.
    Path,
    /// Repeatable `--flag FILE`.
    PathList,
}

/// What the command line and the file need to know about one setting.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The long flag without `--`; also clap's argument id.
    pub flag: &'static str,
    /// The config-file key; `None`: command line only.
    pub key: Option<&'static str>,
    pub value_name: &'static str,
    pub help: &'static str,
    /// Shown by `--help` and used when neither the flag nor the key is given.
    pub default: Option<&'static str>,
    pub shape: Shape,
}

impl Spec {
    const fn new(flag: &'static str, value_name: &'static str, shape: Shape) -> Spec {
        Spec {
            flag,
            key: None,
            value_name,
            help: "",
            default: None,
            shape,
        }
    }
    const fn value(flag: &'static str, value_name: &'static str) -> Spec {
        Spec::new(flag, value_name, Shape::Value)
    }
    const fn switch(flag: &'static str) -> Spec {
        Spec::new(flag, "BOOL", Shape::Switch)
    }
    const fn list(flag: &'static str, value_name: &'static str) -> Spec {
        Spec::new(flag, value_name, Shape::List)
    }
    const fn path(flag: &'static str, value_name: &'static str) -> Spec {
        Spec::new(flag, value_name, Shape::Path)
    }
    const fn paths(flag: &'static str) -> Spec {
        Spec::new(flag, "FILE", Shape::PathList)
    }
    const fn key(mut self, key: &'static str) -> Spec {
        self.key = Some(key);
        self
    }
    const fn default(mut self, default: &'static str) -> Spec {
        self.default = Some(default);
        self
    }
    const fn help(mut self, help: &'static str) -> Spec {
        self.help = help;
        self
    }

    /// `--listen-port`, for error messages.
    pub fn flag_name(&self) -> String {
        format!("--{}", self.flag)
    }
}

/// A setting whose text parses to a `T`; flag and file value share the parser.
#[derive(Clone, Copy, Debug)]
pub struct Setting<T> {
    pub spec: Spec,
    pub parse: fn(&str) -> Result<T, String>,
}

impl<T> Setting<T> {
    const fn new(spec: Spec, parse: fn(&str) -> Result<T, String>) -> Setting<T> {
        Setting { spec, parse }
    }
}

pub const CONFIG_FILE: Spec = Spec::path("config-file", "FILE")
    .help("Load settings from this YAML file (strict: unknown keys are errors)");

pub const LISTEN_IP: Setting<IpAddr> = Setting::new(
    Spec::value("listen-ip", "IP")
        .key("ip")
        .default("::")
        .help("Address to listen on (:: accepts IPv4 and IPv6)"),
    values::parse_ip,
);
pub const LISTEN_PORT: Setting<u16> = Setting::new(
    Spec::value("listen-port", "PORT")
        .key("port")
        .default("4750")
        .help("Port to listen on"),
    values::parse_port,
);
pub const CONNECT_TIMEOUT: Setting<Duration> = Setting::new(
    Spec::value("timeout", "DURATION")
        .key("connect_timeout")
        .default("10s")
        .help("Time limit for connecting to a destination"),
    values::parse_positive_duration,
);
pub const DNS_TIMEOUT: Setting<Duration> = Setting::new(
    Spec::value("dns-timeout", "DURATION")
        .key("dns_timeout")
        .default("5s")
        .help("Time limit for resolving a destination name"),
    values::parse_positive_duration,
);
pub const IDLE_TIMEOUT: Setting<Duration> = Setting::new(
    Spec::value("idle-timeout", "DURATION")
        .key("idle_timeout")
        .default("5m")
        .help("Close tunnels and keep-alive connections idle this long (0 = never)"),
    values::parse_any_duration,
);
pub const EXIT_TIMEOUT: Setting<Duration> = Setting::new(
    Spec::value("exit-timeout", "DURATION")
        .key("exit_timeout")
        .default("60s")
        .help("On shutdown, wait this long for open connections to finish"),
    values::parse_any_duration,
);
pub const READ_HEADER_TIMEOUT: Setting<Duration> = Setting::new(
    Spec::value("read-header-timeout", "DURATION")
        .key("read_header_timeout")
        .default("10s")
        .help("Time limit for a client to send a complete request head"),
    values::parse_positive_duration,
);
pub const PROXY_PROTOCOL: Setting<bool> = Setting::new(
    Spec::switch("proxy-protocol")
        .key("support_proxy_protocol")
        .help("Expect a PROXY protocol (v1/v2) header on each client connection"),
    values::parse_bool,
);
pub const PROXY_PROTOCOL_TRUSTED_RANGE: Setting<ipnet::IpNet> = Setting::new(
    Spec::list("proxy-protocol-trusted-range", "CIDR")
        .key("proxy_protocol_trusted_ranges")
        .help("Peers allowed to send a PROXY protocol header, e.g. your load balancer (repeatable; required with --proxy-protocol)"),
    values::parse_trusted_range,
);
pub const DENY_RANGE: Setting<UserRange> = Setting::new(
    Spec::list("deny-range", "CIDR")
        .key("deny_ranges")
        .help("Deny destinations in this CIDR range (repeatable)"),
    values::parse_deny_range,
);
pub const ALLOW_RANGE: Setting<UserRange> = Setting::new(
    Spec::list("allow-range", "CIDR").key("allow_ranges").help(
        "Allow destinations in this CIDR range even if a built-in rule denies them (repeatable)",
    ),
    values::parse_allow_range,
);
pub const DENY_ADDRESS: Setting<UserRange> = Setting::new(
    Spec::list("deny-address", "IP[:PORT]")
        .key("deny_addresses")
        .help("Deny this destination address, optionally only on one port (repeatable)"),
    values::parse_deny_address,
);
pub const ALLOW_ADDRESS: Setting<UserRange> = Setting::new(
    Spec::list("allow-address", "IP[:PORT]")
        .key("allow_addresses")
        .help("Allow this destination address, optionally only on one port (repeatable)"),
    values::parse_allow_address,
);
pub const ACL_FILE: Spec = Spec::path("egress-acl-file", "FILE")
    .key("acl_file")
    .help("Egress ACL file (Smokescreen `version: v1` YAML)");
pub const DISABLED_ACTION: Setting<Action> = Setting::new(
    Spec::list("disable-acl-policy-action", "ACTION")
        .key("disabled_acl_policy_actions")
        .help("Refuse to load an ACL whose rules use this action: open, report or enforce (repeatable)"),
    values::parse_action,
);
pub const RESOLVER_ADDRESS: Setting<String> = Setting::new(
    Spec::list("resolver-address", "HOST:PORT")
        .key("resolver_addresses")
        .help("DNS server to use instead of the system resolver (repeatable)"),
    values::parse_resolver,
);
/// The file's counterpart is the `static_hosts` map (see `file.rs`).
pub const STATIC_HOST: Setting<(String, Vec<IpAddr>)> = Setting::new(
    Spec::list("static-host", "NAME=IP[,IP...]")
        .help("Answer this name with these addresses instead of DNS (repeatable)"),
    hosts::parse_static_host,
);
pub const HOSTS_FILE: Spec = Spec::path("hosts-file", "FILE")
    .key("hosts_file")
    .help("Read pinned names from a file in /etc/hosts format");
pub const STATSD_ADDRESS: Setting<Option<String>> = Setting::new(
    Spec::value("statsd-address", "HOST:PORT")
        .key("statsd_address")
        .help("Send DogStatsD metrics over UDP to this address (names prefixed smokescreen.)"),
    super::compat::parse_statsd_address,
);
pub const STATS_SOCKET_DIR: Spec = Spec::path("stats-socket-dir", "DIR")
    .key("stats_socket_dir")
    .help("Serve open tunnels as JSON over HTTP on the Unix socket DIR/track-PID.sock");
pub const STATS_SOCKET_FILE_MODE: Setting<u32> = Setting::new(
    Spec::value("stats-socket-file-mode", "MODE")
        .key("stats_socket_file_mode")
        .default("700")
        .help("File mode (octal) of the stats socket"),
    super::compat::parse_file_mode,
);
/// Read as text and parsed by `compat::upstream_proxies`, which also reads
/// the environment and keeps a password out of its error texts.
pub const UPSTREAM_HTTP_PROXY_ADDR: Spec = Spec::value("upstream-http-proxy-addr", "URL")
    .key("upstream_http_proxy_addr")
    .help("Send plain HTTP requests through this proxy (http://[user:pass@]host:port; default: HTTP_PROXY)");
pub const UPSTREAM_HTTPS_PROXY_ADDR: Spec = Spec::value("upstream-https-proxy-addr", "URL")
    .key("upstream_https_proxy_addr")
    .help("Send CONNECT tunnels through this proxy (http://[user:pass@]host:port; default: HTTPS_PROXY)");
/// The file's counterparts are in the `tls` block (see `file.rs`).
pub const TLS_SERVER_BUNDLE_FILE: Spec = Spec::path("tls-server-bundle-file", "FILE")
    .help("Serve TLS to clients with this PEM bundle (certificate chain and private key)");
pub const TLS_CLIENT_CA_FILE: Spec = Spec::paths("tls-client-ca-file")
    .help("Require client certificates signed by this CA (repeatable; needs a server bundle)");
pub const TLS_CRL_FILE: Spec = Spec::paths("tls-crl-file")
    .help("Reject client certificates revoked by this CRL (repeatable; needs a client CA)");
pub const MITM_CA_CERT_FILE: Spec = Spec::path("mitm-ca-cert-file", "FILE")
    .key("mitm_ca_cert_file")
    .help("Mint certificates for mitm_domains tunnels with this CA certificate (PEM)");
pub const MITM_CA_KEY_FILE: Spec = Spec::path("mitm-ca-key-file", "FILE")
    .key("mitm_ca_key_file")
    .help("The MITM CA's private key (PEM); as sensitive as every secret it protects");
pub const MITM_UPSTREAM_CA_FILE: Spec = Spec::paths("mitm-upstream-ca-file").help(
    "Also trust this CA (PEM) for intercepted destinations, besides the system roots (repeatable)",
);
pub const DENY_MESSAGE_EXTRA: Setting<Option<String>> = Setting::new(
    Spec::value("additional-error-message-on-deny", "MSG")
        .key("deny_message_extra")
        .help("Text appended to every deny response body"),
    values::parse_deny_message,
);
pub const UNSAFE_ALLOW_PRIVATE_RANGES: Setting<bool> = Setting::new(
    Spec::switch("unsafe-allow-private-ranges")
        .key("unsafe_allow_private_ranges")
        .help("Allow private ranges (10/8, 172.16/12, 192.168/16, fc00::/7): unsafe"),
    values::parse_bool,
);
pub const EXPOSE_PROMETHEUS_METRICS: Setting<bool> = Setting::new(
    Spec::switch("expose-prometheus-metrics")
        .key("expose_prometheus_metrics")
        .help("Serve Prometheus metrics on a separate listener"),
    values::parse_bool,
);
pub const PROMETHEUS_ENDPOINT: Setting<String> = Setting::new(
    Spec::value("prometheus-endpoint", "PATH")
        .key("prometheus_endpoint")
        .default("/metrics")
        .help("Path of the Prometheus metrics page"),
    values::parse_endpoint,
);
pub const PROMETHEUS_LISTEN_IP: Setting<IpAddr> = Setting::new(
    Spec::value("prometheus-listen-ip", "IP")
        .key("prometheus_listen_ip")
        .default("::")
        .help("Address of the Prometheus listener"),
    values::parse_ip,
);
pub const PROMETHEUS_PORT: Setting<u16> = Setting::new(
    Spec::value("prometheus-port", "PORT")
        .key("prometheus_port")
        .default("9810")
        .help("Port of the Prometheus listener"),
    values::parse_port,
);
pub const MAX_CONCURRENT_REQUESTS: Setting<Option<usize>> = Setting::new(
    Spec::value("max-concurrent-requests", "N")
        .key("max_concurrent_requests")
        .help("Requests handled at once; more get 503 (0 = no limit)"),
    values::parse_optional_limit,
);
pub const MAX_REQUEST_RATE: Setting<Option<f64>> = Setting::new(
    Spec::value("max-request-rate", "RATE")
        .key("max_request_rate")
        .help("Requests accepted per second; more get 429 (0 = no limit)"),
    values::parse_rate,
);
pub const MAX_REQUEST_BURST: Setting<Option<u32>> = Setting::new(
    Spec::value("max-request-burst", "N")
        .key("max_request_burst")
        .help("Requests allowed in a burst above the rate (default: one second's worth)"),
    values::parse_burst,
);
pub const MAX_CONCURRENT_CONNECT_TUNNELS: Setting<Option<usize>> = Setting::new(
    Spec::value("max-concurrent-connect-tunnels", "N")
        .key("max_concurrent_connect_tunnels")
        .help("CONNECT tunnels open at once; more get 429 (0 = no limit)"),
    values::parse_optional_limit,
);
pub const MAX_CONNECTIONS: Setting<usize> = Setting::new(
    Spec::value("max-connections", "N")
        .key("max_connections")
        .default("10000")
        .help("Client connections open at once; more are answered 503 and closed"),
    |s| values::parse_bounded(s, 1, usize::MAX),
);
pub const MAX_HEADER_BYTES: Setting<usize> = Setting::new(
    Spec::value("max-header-bytes", "N")
        .key("max_header_bytes")
        .default("16384")
        .help("Largest request head accepted, in bytes (1024 to 1048576)"),
    |s| values::parse_bounded(s, 1024, 1 << 20),
);
pub const LOG_FORMAT: Setting<LogFormat> = Setting::new(
    Spec::value("log-format", "FORMAT")
        .key("log_format")
        .default("text")
        .help("Log format: text (logrus style) or json"),
    values::parse_log_format,
);
pub const LOG_LEVEL: Setting<LevelFilter> = Setting::new(
    Spec::value("log-level", "LEVEL")
        .key("log_level")
        .default("info")
        .help("Least severe level logged: debug, info, warning or error"),
    values::parse_log_level,
);
/// Command line only: a switch that turns authentication off should be
/// visible where the process is started, not tucked away in a file.
pub const ALLOW_UNAUTHENTICATED: Setting<bool> = Setting::new(
    Spec::switch("allow-unauthenticated")
        .help("Run without PROXY_PASSWORD: anyone who can reach the port may use the proxy (local development only)"),
    values::parse_bool,
);
pub const ALLOW_MISSING_ROLE: Setting<bool> = Setting::new(
    Spec::switch("allow-missing-role")
        .key("allow_missing_role")
        .help("Give requests that carry no credentials the ACL's default rule instead of denying them"),
    values::parse_bool,
);

/// Every setting, in `--help` order.
pub const ALL: &[&Spec] = &[
    &CONFIG_FILE,
    &LISTEN_IP.spec,
    &LISTEN_PORT.spec,
    &CONNECT_TIMEOUT.spec,
    &DNS_TIMEOUT.spec,
    &IDLE_TIMEOUT.spec,
    &EXIT_TIMEOUT.spec,
    &READ_HEADER_TIMEOUT.spec,
    &PROXY_PROTOCOL.spec,
    &PROXY_PROTOCOL_TRUSTED_RANGE.spec,
    &DENY_RANGE.spec,
    &ALLOW_RANGE.spec,
    &DENY_ADDRESS.spec,
    &ALLOW_ADDRESS.spec,
    &ACL_FILE,
    &DISABLED_ACTION.spec,
    &RESOLVER_ADDRESS.spec,
    &STATIC_HOST.spec,
    &HOSTS_FILE,
    &STATSD_ADDRESS.spec,
    &STATS_SOCKET_DIR,
    &STATS_SOCKET_FILE_MODE.spec,
    &UPSTREAM_HTTP_PROXY_ADDR,
    &UPSTREAM_HTTPS_PROXY_ADDR,
    &TLS_SERVER_BUNDLE_FILE,
    &TLS_CLIENT_CA_FILE,
    &TLS_CRL_FILE,
    &MITM_CA_CERT_FILE,
    &MITM_CA_KEY_FILE,
    &MITM_UPSTREAM_CA_FILE,
    &DENY_MESSAGE_EXTRA.spec,
    &UNSAFE_ALLOW_PRIVATE_RANGES.spec,
    &EXPOSE_PROMETHEUS_METRICS.spec,
    &PROMETHEUS_ENDPOINT.spec,
    &PROMETHEUS_LISTEN_IP.spec,
    &PROMETHEUS_PORT.spec,
    &MAX_CONCURRENT_REQUESTS.spec,
    &MAX_REQUEST_RATE.spec,
    &MAX_REQUEST_BURST.spec,
    &MAX_CONCURRENT_CONNECT_TUNNELS.spec,
    &MAX_CONNECTIONS.spec,
    &MAX_HEADER_BYTES.spec,
    &LOG_FORMAT.spec,
    &LOG_LEVEL.spec,
    &ALLOW_UNAUTHENTICATED.spec,
    &ALLOW_MISSING_ROLE.spec,
];

/// The setting of a long flag (without `--`).
pub fn by_flag(flag: &str) -> Option<&'static Spec> {
    ALL.iter().copied().find(|s| s.flag == flag)
}

/// The setting a config-file key belongs to.
pub fn by_key(key: &str) -> Option<&'static Spec> {
    ALL.iter().copied().find(|s| s.key == Some(key))
}

/// Config-file keys with a shape of their own, not one flag's value.
pub const BLOCK_KEYS: [&str; 2] = ["tls", "static_hosts"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_keys_are_unique() {
        let mut flags: Vec<_> = ALL.iter().map(|s| s.flag).collect();
        flags.sort_unstable();
        flags.dedup();
        assert_eq!(flags.len(), ALL.len());
        let mut keys: Vec<_> = ALL.iter().filter_map(|s| s.key).chain(BLOCK_KEYS).collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
