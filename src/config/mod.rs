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

pub mod acl_source;
mod build;
mod cli;
mod compat;
pub mod duration;
mod file;
pub mod hosts;
mod settings;
mod sources;
pub mod startup;
mod usage;
pub(crate) mod values;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::acl::Action;
use crate::core::addr::AddressPolicy;
use crate::core::auth::Password;

pub use duration::{parse_duration, render_duration, DurationError};
use file::FileConfig;
use sources::Sources;

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
    /// The MITM CA for `mitm_domains` (both files, or neither).
    pub mitm: Option<MitmFiles>,
    /// `--mitm-upstream-ca-file`: trusted for intercepted destinations
    /// besides the system roots.
    pub mitm_upstream_ca_files: Vec<PathBuf>,
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

/// The MITM CA's PEM files (read and checked by the shell at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MitmFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
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
    cli::command().render_help().to_string()
}

/// Parse `args` (the first item is the program name, as in `std::env::args_os`),
/// read the config and hosts files they name, and then `PROXY_PASSWORD`
/// through `env`.
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let args: Vec<OsString> = args.into_iter().collect();
    let matches = match cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    let text = e.render().to_string();
                    Ok(Command::PrintAndExit { text, code: 0 })
                }
                _ => Err(usage::usage_error(&e, &args)),
            };
        }
    };
    load_matches(&matches, env).map(|c| Command::Run(Box::new(c)))
}

/// The proxy's own flags, for a command that takes them too (the policy
/// tools add them to each subcommand).
pub fn proxy_args() -> impl Iterator<Item = clap::Arg> {
    cli::command()
        .get_arguments()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
}

/// [`load`] after clap: for a command that carries [`proxy_args`] among
/// its own arguments (the policy tools take the proxy's flags).
pub fn load_matches(
    matches: &clap::ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let file_path = matches
        .try_get_one::<PathBuf>(settings::CONFIG_FILE.flag)
        .map_err(|e| ConfigError::Usage(e.to_string()))?
        .map(PathBuf::as_path);
    let file = match file_path {
        Some(path) => read_config_file(path)?,
        None => FileConfig::default(),
    };
    let sources = Sources {
        matches,
        file: &file,
        file_path,
    };
    let mut config = build::build(&sources)?;
    // HTTP(S)_PROXY and NO_PROXY fill in what the flags and keys leave unset.
    config.upstream = compat::upstream_proxies(
        sources.named_text(&settings::UPSTREAM_HTTP_PROXY_ADDR)?,
        sources.named_text(&settings::UPSTREAM_HTTPS_PROXY_ADDR)?,
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
    Ok(config)
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
