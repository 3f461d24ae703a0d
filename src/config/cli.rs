//! The command line, declared with clap. Every value is taken as text and
//! parsed by `values`, so a flag and its config-file key share one parser
//! and one error style. Defaults live here so `--help` shows them.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

pub const DEFAULT_LISTEN_IP: &str = "::";
pub const DEFAULT_LISTEN_PORT: &str = "4750";
pub const DEFAULT_CONNECT_TIMEOUT: &str = "10s";
pub const DEFAULT_DNS_TIMEOUT: &str = "5s";
pub const DEFAULT_IDLE_TIMEOUT: &str = "5m";
pub const DEFAULT_EXIT_TIMEOUT: &str = "60s";
pub const DEFAULT_READ_HEADER_TIMEOUT: &str = "10s";
pub const DEFAULT_PROMETHEUS_ENDPOINT: &str = "/metrics";
pub const DEFAULT_PROMETHEUS_LISTEN_IP: &str = "::";
pub const DEFAULT_PROMETHEUS_PORT: &str = "9810";
pub const DEFAULT_MAX_CONNECTIONS: &str = "10000";
pub const DEFAULT_MAX_HEADER_BYTES: &str = "16384";
pub const DEFAULT_LOG_FORMAT: &str = "text";
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_STATS_SOCKET_FILE_MODE: &str = "700";
/// Value-less boolean flags mean `true`; `--flag=false` overrides a file's `true`.
const BOOL: &str = "true";

const AFTER_HELP: &str = "\
Environment:
  PROXY_PASSWORD  Password clients must send with Proxy-Authorization: Basic
                  (any user name). Required unless --allow-unauthenticated.
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY (or lower case)
                  Upstream proxies as Go's ProxyFromEnvironment reads them;
                  --upstream-http-proxy-addr and --upstream-https-proxy-addr
                  take precedence.

Durations use Go syntax: 300ms, 10s, 1m30s, 1.5h (units ns us ms s m h); 0 alone is allowed.
Flags given on the command line override the same setting in --config-file;
repeatable flags add to the file's lists.

Policy tools (take the same flags):
  smokescreen check --host HOST [--role ROLE] [--address IP] [--port PORT]
  smokescreen test-policy CASES.yaml
  smokescreen check-config";

/// Field names are clap's argument ids (used with `ArgMatches::value_source`).
#[derive(Parser, Debug)]
#[command(
    name = "smokescreen",
    version,
    about = "An egress proxy that keeps user-supplied URLs away from your private network",
    after_help = AFTER_HELP,
    color = clap::ColorChoice::Never
)]
pub struct Cli {
    /// Load settings from this YAML file (strict: unknown keys are errors)
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Address to listen on (:: accepts IPv4 and IPv6)
    #[arg(long, value_name = "IP", default_value = DEFAULT_LISTEN_IP)]
    pub listen_ip: String,

    /// Port to listen on
    #[arg(long, value_name = "PORT", default_value = DEFAULT_LISTEN_PORT)]
    pub listen_port: String,

    /// Time limit for connecting to a destination
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_CONNECT_TIMEOUT)]
    pub timeout: String,

    /// Time limit for resolving a destination name
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_DNS_TIMEOUT)]
    pub dns_timeout: String,

    /// Close tunnels and keep-alive connections idle this long (0 = never)
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_IDLE_TIMEOUT)]
    pub idle_timeout: String,

    /// On shutdown, wait this long for open connections to finish
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_EXIT_TIMEOUT)]
    pub exit_timeout: String,

    /// Time limit for a client to send a complete request head
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_READ_HEADER_TIMEOUT)]
    pub read_header_timeout: String,

    /// Expect a PROXY protocol (v1/v2) header on each client connection
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = BOOL)]
    pub proxy_protocol: Option<String>,

    /// Peers allowed to send a PROXY protocol header, e.g. your load balancer (repeatable; required with --proxy-protocol)
    #[arg(long, value_name = "CIDR", action = ArgAction::Append)]
    pub proxy_protocol_trusted_range: Vec<String>,

    /// Deny destinations in this CIDR range (repeatable)
    #[arg(long, value_name = "CIDR", action = ArgAction::Append)]
    pub deny_range: Vec<String>,

    /// Allow destinations in this CIDR range even if a built-in rule denies them (repeatable)
    #[arg(long, value_name = "CIDR", action = ArgAction::Append)]
    pub allow_range: Vec<String>,

    /// Deny this destination address, optionally only on one port (repeatable)
    #[arg(long, value_name = "IP[:PORT]", action = ArgAction::Append)]
    pub deny_address: Vec<String>,

    /// Allow this destination address, optionally only on one port (repeatable)
    #[arg(long, value_name = "IP[:PORT]", action = ArgAction::Append)]
    pub allow_address: Vec<String>,

    /// Egress ACL file (Smokescreen `version: v1` YAML)
    #[arg(long, value_name = "FILE")]
    pub egress_acl_file: Option<PathBuf>,

    /// Refuse to load an ACL whose rules use this action: open, report or enforce (repeatable)
    #[arg(long, value_name = "ACTION", action = ArgAction::Append)]
    pub disable_acl_policy_action: Vec<String>,

    /// DNS server to use instead of the system resolver (repeatable)
    #[arg(long, value_name = "HOST:PORT", action = ArgAction::Append)]
    pub resolver_address: Vec<String>,

    /// Answer this name with these addresses instead of DNS (repeatable)
    #[arg(long, value_name = "NAME=IP[,IP...]", action = ArgAction::Append)]
    pub static_host: Vec<String>,

    /// Read pinned names from a file in /etc/hosts format
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,

    /// Send DogStatsD metrics over UDP to this address (names prefixed smokescreen.)
    #[arg(long, value_name = "HOST:PORT")]
    pub statsd_address: Option<String>,

    /// Serve open tunnels as JSON over HTTP on the Unix socket DIR/track-PID.sock
    #[arg(long, value_name = "DIR")]
    pub stats_socket_dir: Option<PathBuf>,

    /// File mode (octal) of the stats socket
    #[arg(long, value_name = "MODE", default_value = DEFAULT_STATS_SOCKET_FILE_MODE)]
    pub stats_socket_file_mode: String,

    /// Send plain HTTP requests through this proxy (http://[user:pass@]host:port; default: HTTP_PROXY)
    #[arg(long, value_name = "URL")]
    pub upstream_http_proxy_addr: Option<String>,

    /// Send CONNECT tunnels through this proxy (http://[user:pass@]host:port; default: HTTPS_PROXY)
    #[arg(long, value_name = "URL")]
    pub upstream_https_proxy_addr: Option<String>,

    /// Serve TLS to clients with this PEM bundle (certificate chain and private key)
    #[arg(long, value_name = "FILE")]
    pub tls_server_bundle_file: Option<PathBuf>,

    /// Require client certificates signed by this CA (repeatable; needs a server bundle)
    #[arg(long, value_name = "FILE", action = ArgAction::Append)]
    pub tls_client_ca_file: Vec<PathBuf>,

    /// Reject client certificates revoked by this CRL (repeatable; needs a client CA)
    #[arg(long, value_name = "FILE", action = ArgAction::Append)]
    pub tls_crl_file: Vec<PathBuf>,

    /// Text appended to every deny response body
    #[arg(long, value_name = "MSG")]
    pub additional_error_message_on_deny: Option<String>,

    /// Allow private ranges (10/8, 172.16/12, 192.168/16, fc00::/7): unsafe
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = BOOL)]
    pub unsafe_allow_private_ranges: Option<String>,

    /// Serve Prometheus metrics on a separate listener
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = BOOL)]
    pub expose_prometheus_metrics: Option<String>,

    /// Path of the Prometheus metrics page
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PROMETHEUS_ENDPOINT)]
    pub prometheus_endpoint: String,

    /// Address of the Prometheus listener
    #[arg(long, value_name = "IP", default_value = DEFAULT_PROMETHEUS_LISTEN_IP)]
    pub prometheus_listen_ip: String,

    /// Port of the Prometheus listener
    #[arg(long, value_name = "PORT", default_value = DEFAULT_PROMETHEUS_PORT)]
    pub prometheus_port: String,

    /// Requests handled at once; more get 503 (0 = no limit)
    #[arg(long, value_name = "N")]
    pub max_concurrent_requests: Option<String>,

    /// Requests accepted per second; more get 429 (0 = no limit)
    #[arg(long, value_name = "RATE")]
    pub max_request_rate: Option<String>,

    /// Requests allowed in a burst above the rate (default: one second's worth)
    #[arg(long, value_name = "N")]
    pub max_request_burst: Option<String>,

    /// CONNECT tunnels open at once; more get 429 (0 = no limit)
    #[arg(long, value_name = "N")]
    pub max_concurrent_connect_tunnels: Option<String>,

    /// Client connections open at once; more are answered 503 and closed
    #[arg(long, value_name = "N", default_value = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: String,

    /// Largest request head accepted, in bytes (1024 to 1048576)
    #[arg(long, value_name = "N", default_value = DEFAULT_MAX_HEADER_BYTES)]
    pub max_header_bytes: String,

    /// Log format: text (logrus style) or json
    #[arg(long, value_name = "FORMAT", default_value = DEFAULT_LOG_FORMAT)]
    pub log_format: String,

    /// Least severe level logged: debug, info, warning or error
    #[arg(long, value_name = "LEVEL", default_value = DEFAULT_LOG_LEVEL)]
    pub log_level: String,

    /// Run without PROXY_PASSWORD: anyone who can reach the port may use the proxy (local development only)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = BOOL)]
    pub allow_unauthenticated: Option<String>,

    /// Give requests that carry no credentials the ACL's default rule instead of denying them
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = BOOL)]
    pub allow_missing_role: Option<String>,
}
