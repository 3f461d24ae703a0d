//! Command line and config file → one validated [`Config`].
//!
//! Everything a peer cannot control but an operator can get wrong is checked
//! here, once, before any socket is opened: the shell then only reads plain,
//! already-valid values. Precedence: the config file is the base, and a flag
//! given on the command line overrides the same setting (repeatable flags add
//! to the file's lists instead). `PROXY_PASSWORD` is read last, through a
//! closure, so `--help` and `--version` work without it and tests need no
//! real environment.
#![allow(clippy::disallowed_methods)] // the clippy guard is for src/core; this module reads files

mod cli;
mod compat;
pub mod duration;
mod file;
pub mod hosts;
mod values;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::core::acl::Action;
use crate::core::addr::{AddressPolicy, UserRange};

use cli::Cli;
pub use duration::{parse_duration, render_duration, DurationError};
use file::{FileConfig, Scalar};
use values::RangeKind;

/// Environment variable holding the proxy password.
pub const PASSWORD_ENV: &str = "PROXY_PASSWORD";

/// What `main` should do.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    /// `--help` / `--version`: print `text` to stdout and exit with `code` (0).
    PrintAndExit {
        text: String,
        code: i32,
    },
}

/// The proxy password. `Debug` never shows it, so a logged `Config` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Password {
        Password(password)
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Client-facing TLS. `key_file: None` means the key is in `cert_file` (a bundle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: Option<PathBuf>,
    /// Non-empty: clients must present a certificate signed by one of these.
    pub client_ca_files: Vec<PathBuf>,
    pub crl_files: Vec<PathBuf>,
}

/// The Prometheus listener, present only with `--expose-prometheus-metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// Absolute path, e.g. `/metrics`.
    pub endpoint: String,
}

/// Load limits. `None` is "no limit" (Smokescreen's 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Over it: 503 `Proxy overloaded. Please retry later.`
    pub max_concurrent_requests: Option<usize>,
    /// Requests per second; over it: 429.
    pub max_request_rate: Option<f64>,
    /// Token-bucket size; `Some` exactly when `max_request_rate` is.
    pub max_request_burst: Option<u32>,
    /// Over it: 429 `maximum concurrent connect tunnels exceeded`.
    pub max_concurrent_connect_tunnels: Option<usize>,
    /// Open client connections; always bounded (file descriptors are finite).
    pub max_connections: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus-style `key=value` lines, as Smokescreen prints.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the shell needs to run, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None` only with `allow_unauthenticated`.
    pub password: Option<Password>,
    pub allow_unauthenticated: bool,
    pub allow_missing_role: bool,
    /// `None` → the embedded default ACL.
    pub acl_file: Option<PathBuf>,
    pub disabled_actions: Vec<Action>,
    pub address_policy: AddressPolicy,
    pub connect_timeout: Duration,
    pub dns_timeout: Duration,
    /// `None`: idle connections are never closed (`0`).
    pub idle_timeout: Option<Duration>,
    pub exit_timeout: Duration,
    pub read_header_timeout: Duration,
    pub deny_message_extra: Option<String>,
    pub resolver_addresses: Vec<String>,
    /// Names are lowercase punycode without a trailing dot.
    pub static_hosts: HashMap<String, Vec<IpAddr>>,
    pub proxy_protocol: bool,
    /// Peers whose PROXY protocol headers are believed (`--proxy-protocol-trusted-range`).
    pub proxy_protocol_trusted_ranges: Vec<ipnet::IpNet>,
    pub tls: Option<TlsConfig>,
    pub statsd_address: Option<String>,
    pub stats_socket_dir: Option<PathBuf>,
    /// Permission bits of the stats socket file (`--stats-socket-file-mode`).
    pub stats_socket_file_mode: u32,
    /// Parent proxies for allowed requests (flags, file, then environment).
    pub upstream: crate::core::upstream::UpstreamProxies,
    pub metrics: Option<MetricsConfig>,
    pub limits: Limits,
    pub max_header_bytes: usize,
    pub log_format: LogFormat,
    pub log_level: log::LevelFilter,
    /// Where settings came from, for the startup log line.
    pub config_file: Option<PathBuf>,
    pub hosts_file: Option<PathBuf>,
}

/// Why the configuration was refused. `Display` is the one message printed
/// to stderr; [`ConfigError::exit_code`] is the process status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// clap's own usage error (unknown flag, missing value, repeated flag).
    Usage(String),
    /// A flag's value did not parse.
    InvalidValue {
        flag: String,
        value: String,
        problem: String,
    },
    /// The config file or hosts file could not be read or is invalid.
    File { path: PathBuf, problem: String },
    /// Settings that parse but do not fit together.
    Inconsistent(String),
    /// `PROXY_PASSWORD` empty or unset without `--allow-unauthenticated`.
    MissingPassword,
}

impl ConfigError {
    /// 1 for the missing password (as the Fly example exits), 2 for usage and config errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::MissingPassword => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(text) => f.write_str(text),
            ConfigError::InvalidValue {
                flag,
                value,
                problem,
            } => {
                write!(f, "invalid value {value:?} for {flag}: {problem}")
            }
            ConfigError::File { path, problem } => write!(f, "{}: {problem}", path.display()),
            ConfigError::Inconsistent(text) => f.write_str(text),
            ConfigError::MissingPassword => {
                write!(f, "missing environment variable: {PASSWORD_ENV}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The `--help` text (what the README documents).
pub fn help_text() -> String {
    Cli::command().render_help().to_string()
}

/// Parse `args` (the first item is the program name, as in `std::env::args_os`),
/// read the config and hosts files they name, and then `PROXY_PASSWORD`
/// through `env`.
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let text = e.render().to_string();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(Command::PrintAndExit { text, code: 0 })
                }
                _ => Err(ConfigError::Usage(text.trim_end().to_string())),
            };
        }
    };
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| ConfigError::Usage(e.render().to_string().trim_end().to_string()))?;
    let file = match &cli.config_file {
        Some(path) => read_config_file(path)?,
        None => FileConfig::default(),
    };
    let sources = Sources {
        matches: &matches,
        file_path: cli.config_file.as_deref(),
    };
    let mut config = build(&cli, &file, &sources)?;
    // issue 16: --upstream-http-proxy-addr, --upstream-https-proxy-addr, HTTP(S)_PROXY, NO_PROXY
    // A flag has no default, so it is set only when given; it beats the file.
    let flag = |id: &str, value: &Option<String>, key: Option<&file::Scalar>| match (value, key) {
        (Some(v), _) => Some((flag_name(id), v.clone())),
        (None, Some(file::Scalar(v))) => Some((id.to_string(), v.clone())),
        (None, None) => None,
    };
    config.upstream = compat::upstream_proxies(
        flag(
            "upstream_http_proxy_addr",
            &cli.upstream_http_proxy_addr,
            file.upstream_http_proxy_addr.as_ref(),
        ),
        flag(
            "upstream_https_proxy_addr",
            &cli.upstream_https_proxy_addr,
            file.upstream_https_proxy_addr.as_ref(),
        ),
        env,
    )?;

    config.password = env(PASSWORD_ENV)
        .filter(|p| !p.is_empty())
        .map(Password::new);
    // With client certificates required, the certificate authenticates;
    // a password is then optional (an extra factor when set).
    let certificates_required = config
        .tls
        .as_ref()
        .is_some_and(|t| !t.client_ca_files.is_empty());
    if config.password.is_none() && !config.allow_unauthenticated && !certificates_required {
        return Err(ConfigError::MissingPassword);
    }
    Ok(Command::Run(Box::new(config)))
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

fn read_config_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = read_file(path)?;
    FileConfig::from_yaml(&text).map_err(|problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    })
}

/// Knows where each value came from, to pick the winner and to word errors.
struct Sources<'a> {
    matches: &'a ArgMatches,
    file_path: Option<&'a Path>,
}

impl Sources<'_> {
    fn on_command_line(&self, id: &str) -> bool {
        self.matches.value_source(id) == Some(ValueSource::CommandLine)
    }

    fn flag_error(&self, id: &str, value: &str, problem: String) -> ConfigError {
        ConfigError::InvalidValue {
            flag: flag_name(id),
            value: value.to_string(),
            problem,
        }
    }

    fn key_error(&self, key: &str, value: &str, problem: String) -> ConfigError {
        self.file_error(format!("{key}: invalid value {value:?}: {problem}"))
    }

    fn file_error(&self, problem: String) -> ConfigError {
        ConfigError::File {
            path: self.file_path.map(Path::to_path_buf).unwrap_or_default(),
            problem,
        }
    }

    /// The winning value of a scalar setting: a flag given on the command
    /// line, else the file's key, else the flag's default (if it has one).
    fn scalar<T>(
        &self,
        id: &str,
        flag_value: Option<&str>,
        key: &str,
        file_value: Option<&Scalar>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let from_flag = |v: &str| parse(v).map_err(|p| self.flag_error(id, v, p));
        match (self.on_command_line(id), file_value, flag_value) {
            (true, _, Some(v)) => from_flag(v).map(Some),
            (false, Some(Scalar(v)), _) => {
                parse(v).map(Some).map_err(|p| self.key_error(key, v, p))
            }
            (_, _, Some(v)) => from_flag(v).map(Some),
            (_, _, None) => Ok(None),
        }
    }

    /// A scalar that always has a value (its flag has a default).
    fn required<T>(
        &self,
        id: &str,
        flag_value: &str,
        key: &str,
        file_value: Option<&Scalar>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let from_flag = |v: &str| parse(v).map_err(|p| self.flag_error(id, v, p));
        match (self.on_command_line(id), file_value) {
            (false, Some(Scalar(v))) => parse(v).map_err(|p| self.key_error(key, v, p)),
            _ => from_flag(flag_value),
        }
    }

    /// A list setting: the file's entries, then the command line's.
    fn list<T>(
        &self,
        id: &str,
        flag_values: &[String],
        key: &str,
        file_values: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ConfigError> {
        let from_file = file_values
            .iter()
            .map(|v| parse(v).map_err(|p| self.key_error(key, v, p)));
        let from_flags = flag_values
            .iter()
            .map(|v| parse(v).map_err(|p| self.flag_error(id, v, p)));
        from_file.chain(from_flags).collect()
    }

    /// A path setting: the flag if given, else the file's key. Empty means unset.
    fn path(&self, flag_value: Option<&PathBuf>, file_value: Option<&PathBuf>) -> Option<PathBuf> {
        flag_value
            .or(file_value)
            .filter(|p| !p.as_os_str().is_empty())
            .cloned()
    }
}

/// `listen_port` → `--listen-port`.
fn flag_name(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Timeouts where 0 would disable a defence or fail every request.
fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        Duration::ZERO => Err("must be greater than zero".to_string()),
        d => Ok(d),
    }
}

fn build(cli: &Cli, file: &FileConfig, src: &Sources<'_>) -> Result<Config, ConfigError> {
    let listen_ip = src.required(
        "listen_ip",
        &cli.listen_ip,
        "ip",
        file.ip.as_ref(),
        values::parse_ip,
    )?;
    let listen_port = src.required(
        "listen_port",
        &cli.listen_port,
        "port",
        file.port.as_ref(),
        values::parse_port,
    )?;
    let listen = SocketAddr::new(listen_ip, listen_port);

    let flag = |id: &str, value: &Option<String>, key: &str, file_value: &Option<Scalar>| {
        src.scalar(
            id,
            value.as_deref(),
            key,
            file_value.as_ref(),
            values::parse_bool,
        )
        .map(|b| b.unwrap_or(false))
    };
    let proxy_protocol = flag(
        "proxy_protocol",
        &cli.proxy_protocol,
        "support_proxy_protocol",
        &file.support_proxy_protocol,
    )?;
    let unsafe_allow_private_ranges = flag(
        "unsafe_allow_private_ranges",
        &cli.unsafe_allow_private_ranges,
        "unsafe_allow_private_ranges",
        &file.unsafe_allow_private_ranges,
    )?;
    let expose_metrics = flag(
        "expose_prometheus_metrics",
        &cli.expose_prometheus_metrics,
        "expose_prometheus_metrics",
        &file.expose_prometheus_metrics,
    )?;
    let allow_missing_role = flag(
        "allow_missing_role",
        &cli.allow_missing_role,
        "allow_missing_role",
        &file.allow_missing_role,
    )?;
    // Command line only: a switch that turns authentication off should be
    // visible where the process is started, not tucked away in a file.
    let allow_unauthenticated = match cli.allow_unauthenticated.as_deref() {
        Some(v) => {
            values::parse_bool(v).map_err(|p| src.flag_error("allow_unauthenticated", v, p))?
        }
        None => false,
    };

    let connect_timeout = src.required(
        "timeout",
        &cli.timeout,
        "connect_timeout",
        file.connect_timeout.as_ref(),
        positive_duration,
    )?;
    let dns_timeout = src.required(
        "dns_timeout",
        &cli.dns_timeout,
        "dns_timeout",
        file.dns_timeout.as_ref(),
        positive_duration,
    )?;
    let read_header_timeout = src.required(
        "read_header_timeout",
        &cli.read_header_timeout,
        "read_header_timeout",
        file.read_header_timeout.as_ref(),
        positive_duration,
    )?;
    let idle_timeout = src.required(
        "idle_timeout",
        &cli.idle_timeout,
        "idle_timeout",
        file.idle_timeout.as_ref(),
        duration,
    )?;
    let idle_timeout = (idle_timeout > Duration::ZERO).then_some(idle_timeout);
    let exit_timeout = src.required(
        "exit_timeout",
        &cli.exit_timeout,
        "exit_timeout",
        file.exit_timeout.as_ref(),
        duration,
    )?;

    let range = |kind, other: &'static str| move |s: &str| values::parse_user_range(s, kind, other);
    let mut allow: Vec<UserRange> = src.list(
        "allow_range",
        &cli.allow_range,
        "allow_ranges",
        &file.allow_ranges,
        range(RangeKind::Cidr, "--allow-address / allow_addresses"),
    )?;
    allow.extend(src.list(
        "allow_address",
        &cli.allow_address,
        "allow_addresses",
        &file.allow_addresses,
        range(RangeKind::Address, "--allow-range / allow_ranges"),
    )?);
    let mut deny: Vec<UserRange> = src.list(
        "deny_range",
        &cli.deny_range,
        "deny_ranges",
        &file.deny_ranges,
        range(RangeKind::Cidr, "--deny-address / deny_addresses"),
    )?;
    deny.extend(src.list(
        "deny_address",
        &cli.deny_address,
        "deny_addresses",
        &file.deny_addresses,
        range(RangeKind::Address, "--deny-range / deny_ranges"),
    )?);
    let address_policy = AddressPolicy {
        allow,
        deny,
        unsafe_allow_private_ranges,
    };

    let mut disabled_actions = Vec::new();
    for action in src.list(
        "disable_acl_policy_action",
        &cli.disable_acl_policy_action,
        "disabled_acl_policy_actions",
        &file.disabled_acl_policy_actions,
        values::parse_action,
    )? {
        hosts::push_unique(&mut disabled_actions, action);
    }
    let proxy_protocol_trusted_ranges = src.list(
        "proxy_protocol_trusted_range",
        &cli.proxy_protocol_trusted_range,
        "proxy_protocol_trusted_ranges",
        &file.proxy_protocol_trusted_ranges,
        parse_trusted_range,
    )?;
    let resolver_addresses = src.list(
        "resolver_address",
        &cli.resolver_address,
        "resolver_addresses",
        &file.resolver_addresses,
        values::parse_resolver,
    )?;

    let deny_message_extra = src
        .scalar(
            "additional_error_message_on_deny",
            cli.additional_error_message_on_deny.as_deref(),
            "deny_message_extra",
            file.deny_message_extra.as_ref(),
            values::parse_deny_message,
        )?
        .flatten();
    // issue 16: --statsd-address
    let statsd_address = src
        .scalar(
            "statsd_address",
            cli.statsd_address.as_deref(),
            "statsd_address",
            file.statsd_address.as_ref(),
            compat::parse_statsd_address,
        )?
        .flatten();
    // issue 16: --stats-socket-dir, --stats-socket-file-mode
    let stats_socket_dir = src.path(
        cli.stats_socket_dir.as_ref(),
        file.stats_socket_dir.as_ref(),
    );
    let stats_socket_file_mode = src.required(
        "stats_socket_file_mode",
        &cli.stats_socket_file_mode,
        "stats_socket_file_mode",
        file.stats_socket_file_mode.as_ref(),
        compat::parse_file_mode,
    )?;
    let acl_file = src.path(cli.egress_acl_file.as_ref(), file.acl_file.as_ref());
    let hosts_file = src.path(cli.hosts_file.as_ref(), file.hosts_file.as_ref());
    let static_hosts = static_hosts(cli, file, src, hosts_file.as_deref())?;
    let tls = tls(cli, file, src)?;
    let limits = limits(cli, file, src)?;

    let max_header_bytes = src.required(
        "max_header_bytes",
        &cli.max_header_bytes,
        "max_header_bytes",
        file.max_header_bytes.as_ref(),
        |s| values::parse_bounded(s, 1024, 1 << 20),
    )?;
    let log_format = src.required(
        "log_format",
        &cli.log_format,
        "log_format",
        file.log_format.as_ref(),
        values::parse_log_format,
    )?;
    let log_level = src.required(
        "log_level",
        &cli.log_level,
        "log_level",
        file.log_level.as_ref(),
        values::parse_log_level,
    )?;

    let metrics = metrics(cli, file, src)?;
    let metrics = if expose_metrics { Some(metrics) } else { None };
    if let Some(m) = &metrics {
        if listeners_clash(m.listen, listen) {
            return Err(ConfigError::Inconsistent(format!(
                "the Prometheus listener {} and the proxy listener {listen} would share a port",
                m.listen
            )));
        }
    }

    Ok(Config {
        listen,
        password: None,
        allow_unauthenticated,
        allow_missing_role,
        acl_file,
        disabled_actions,
        address_policy,
        connect_timeout,
        dns_timeout,
        idle_timeout,
        exit_timeout,
        read_header_timeout,
        deny_message_extra,
        resolver_addresses,
        static_hosts,
        proxy_protocol,
        proxy_protocol_trusted_ranges,
        tls,
        statsd_address,
        stats_socket_dir,
        stats_socket_file_mode,
        upstream: Default::default(),
        metrics,
        limits,
        max_header_bytes,
        log_format,
        log_level,
        config_file: src.file_path.map(Path::to_path_buf),
        hosts_file,
    })
}

/// Two listeners clash on the same port when either is the wildcard or both
/// are the same address (a dual-stack `::` also covers IPv4).
fn listeners_clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Pinned names: the hosts file, then the config file's `static_hosts`, then
/// `--static-host`. A later source replaces a name's addresses; within one
/// source, the addresses of repeated names add up.
fn static_hosts(
    cli: &Cli,
    file: &FileConfig,
    src: &Sources<'_>,
    hosts_file: Option<&Path>,
) -> Result<HashMap<String, Vec<IpAddr>>, ConfigError> {
    let mut merged: HashMap<String, Vec<IpAddr>> = HashMap::new();
    if let Some(path) = hosts_file {
        let text = read_file(path)?;
        let pairs = hosts::parse_hosts_file(&text).map_err(|problem| ConfigError::File {
            path: path.to_path_buf(),
            problem,
        })?;
        for (name, ip) in pairs {
            hosts::push_unique(merged.entry(name).or_default(), ip);
        }
    }
    for (raw_name, ips) in &file.static_hosts {
        let key_error =
            |problem: String| src.file_error(format!("static_hosts: {raw_name}: {problem}"));
        let name = hosts::normalise_name(raw_name).map_err(key_error)?;
        let mut parsed = Vec::new();
        for ip in ips.as_slice() {
            hosts::push_unique(&mut parsed, hosts::parse_ip(ip).map_err(key_error)?);
        }
        if parsed.is_empty() {
            return Err(key_error("no addresses".to_string()));
        }
        merged.insert(name, parsed);
    }
    let mut from_flags: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for spec in &cli.static_host {
        let (name, ips) =
            hosts::parse_static_host(spec).map_err(|p| src.flag_error("static_host", spec, p))?;
        let entry = from_flags.entry(name).or_default();
        for ip in ips {
            hosts::push_unique(entry, ip);
        }
    }
    merged.extend(from_flags);
    Ok(merged)
}

/// Server TLS from `--tls-server-bundle-file` or the file's `tls` block;
/// client CAs and CRLs add up from both. Client checks without a server
/// certificate, or CRLs without a client CA, are refused rather than ignored.
/// A CIDR range, or a single address (as /32 or /128).
fn parse_trusted_range(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            "expected a CIDR range such as 10.0.0.0/8 or fdaa::/16, or one address".to_string()
        })
}

fn tls(cli: &Cli, file: &FileConfig, src: &Sources<'_>) -> Result<Option<TlsConfig>, ConfigError> {
    let file_tls = file.tls.clone().unwrap_or_default();
    let server = match (
        &cli.tls_server_bundle_file,
        &file_tls.cert_file,
        &file_tls.key_file,
    ) {
        (Some(bundle), _, _) => Some((bundle.clone(), None)),
        (None, Some(cert), key) => Some((cert.clone(), key.clone())),
        (None, None, Some(_)) => {
            return Err(src.file_error("tls: key_file is set but cert_file is not".to_string()))
        }
        (None, None, None) => None,
    };
    let mut client_ca_files = file_tls.client_ca_files;
    client_ca_files.extend(cli.tls_client_ca_file.iter().cloned());
    let mut crl_files = file_tls.crl_files;
    crl_files.extend(cli.tls_crl_file.iter().cloned());
    if !crl_files.is_empty() && client_ca_files.is_empty() {
        return Err(ConfigError::Inconsistent(
            "a CRL (--tls-crl-file / tls.crl_files) needs a client CA (--tls-client-ca-file / tls.client_ca_files)"
                .to_string(),
        ));
    }
    match server {
        Some((cert_file, key_file)) => Ok(Some(TlsConfig { cert_file, key_file, client_ca_files, crl_files })),
        None if client_ca_files.is_empty() => Ok(None),
        None => Err(ConfigError::Inconsistent(
            "a client CA (--tls-client-ca-file / tls.client_ca_files) needs a server certificate (--tls-server-bundle-file / tls.cert_file)"
                .to_string(),
        )),
    }
}

fn limits(cli: &Cli, file: &FileConfig, src: &Sources<'_>) -> Result<Limits, ConfigError> {
    let max_concurrent_requests = src
        .scalar(
            "max_concurrent_requests",
            cli.max_concurrent_requests.as_deref(),
            "max_concurrent_requests",
            file.max_concurrent_requests.as_ref(),
            values::parse_optional_limit,
        )?
        .flatten();
    let max_concurrent_connect_tunnels = src
        .scalar(
            "max_concurrent_connect_tunnels",
            cli.max_concurrent_connect_tunnels.as_deref(),
            "max_concurrent_connect_tunnels",
            file.max_concurrent_connect_tunnels.as_ref(),
            values::parse_optional_limit,
        )?
        .flatten();
    let max_request_rate = src
        .scalar(
            "max_request_rate",
            cli.max_request_rate.as_deref(),
            "max_request_rate",
            file.max_request_rate.as_ref(),
            values::parse_rate,
        )?
        .flatten();
    let burst = src
        .scalar(
            "max_request_burst",
            cli.max_request_burst.as_deref(),
            "max_request_burst",
            file.max_request_burst.as_ref(),
            values::parse_burst,
        )?
        .flatten();
    let max_request_burst = match (max_request_rate, burst) {
        (None, Some(_)) => {
            return Err(ConfigError::Inconsistent(
                "a request burst (--max-request-burst / max_request_burst) needs a request rate (--max-request-rate / max_request_rate)"
                    .to_string(),
            ))
        }
        (None, None) => None,
        (Some(_), Some(b)) => Some(b),
        // One second's worth, at least one request.
        (Some(rate), None) => Some(u32::try_from(rate.ceil() as u64).unwrap_or(u32::MAX).max(1)),
    };
    let max_connections = src.required(
        "max_connections",
        &cli.max_connections,
        "max_connections",
        file.max_connections.as_ref(),
        |s| values::parse_bounded(s, 1, usize::MAX),
    )?;
    Ok(Limits {
        max_concurrent_requests,
        max_request_rate,
        max_request_burst,
        max_concurrent_connect_tunnels,
        max_connections,
    })
}

/// The Prometheus settings, validated even when metrics are off so a typo
/// does not wait to surface until someone turns them on.
fn metrics(cli: &Cli, file: &FileConfig, src: &Sources<'_>) -> Result<MetricsConfig, ConfigError> {
    let ip = src.required(
        "prometheus_listen_ip",
        &cli.prometheus_listen_ip,
        "prometheus_listen_ip",
        file.prometheus_listen_ip.as_ref(),
        values::parse_ip,
    )?;
    let port = src.required(
        "prometheus_port",
        &cli.prometheus_port,
        "prometheus_port",
        file.prometheus_port.as_ref(),
        values::parse_port,
    )?;
    let endpoint = src.required(
        "prometheus_endpoint",
        &cli.prometheus_endpoint,
        "prometheus_endpoint",
        file.prometheus_endpoint.as_ref(),
        values::parse_endpoint,
    )?;
    Ok(MetricsConfig {
        listen: SocketAddr::new(ip, port),
        endpoint,
    })
}
