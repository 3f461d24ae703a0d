//! The async-std network shell: it accepts connections, moves bytes and asks
//! the core what to do. No policy decision is made here.
//!
//! The shell owns the clock, sockets, files and signals, so the clippy guard
//! that keeps them out of `core` is lifted for this module tree only.
#![allow(clippy::disallowed_methods)]

pub mod connection;
pub mod forward;
pub mod io;
pub mod listener;
pub mod logging;
pub mod pool;
pub mod resolve;
pub mod signals;
pub mod state;
pub mod tunnel;

pub use listener::run;

use crate::config::{Config, LogFormat};
use crate::core::auth::{AuthMode, Password};
use crate::core::decision::Policy;
use crate::core::head::HeadLimits;
use crate::core::record::{Format, Level};
use crate::shell::logging::emit;
use crate::shell::resolve::Resolver;
use crate::shell::signals::AclSource;
use crate::shell::state::Settings;

/// Features whose flags are accepted for compatibility but not built yet:
/// refusing to start beats silently running without what the operator asked for.
fn unsupported(config: &Config) -> Option<&'static str> {
    if config.tls.is_some() {
        return Some(
            "TLS listener (--tls-server-bundle-file, --tls-client-ca-file, --tls-crl-file)",
        );
    }
    if config.proxy_protocol {
        return Some("PROXY protocol (--proxy-protocol)");
    }
    if !config.resolver_addresses.is_empty() {
        return Some("custom DNS servers (--resolver-address)");
    }
    if config.metrics.is_some() {
        return Some("Prometheus metrics (--expose-prometheus-metrics)");
    }
    let l = &config.limits;
    if l.max_concurrent_requests.is_some()
        || l.max_request_rate.is_some()
        || l.max_concurrent_connect_tunnels.is_some()
    {
        return Some("request limits (--max-concurrent-requests, --max-request-rate, --max-concurrent-connect-tunnels)");
    }
    if config.statsd_address.is_some() || config.stats_socket_dir.is_some() {
        return Some("statsd metrics (--statsd-address, --stats-socket-dir); use --expose-prometheus-metrics");
    }
    None
}

/// Run the proxy with a validated configuration; returns the exit status.
pub fn start(config: Config) -> i32 {
    let format = match config.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    logging::init(format, config.log_level);
    if let Some(feature) = unsupported(&config) {
        emit(&logging::line(
            Level::Error,
            format!("not supported in this version: {feature}"),
        ));
        return 2;
    }
    let auth = match (&config.password, config.allow_unauthenticated) {
        (Some(p), _) => AuthMode::Password(Password::new(p.as_bytes().to_vec())),
        (None, true) => {
            emit(&logging::line(
                Level::Warning,
                "AUTHENTICATION DISABLED (--allow-unauthenticated): any client that can reach this port may use the proxy; for local development only",
            ));
            AuthMode::Unauthenticated
        }
        (None, false) => {
            // The config layer already refuses this; keep the guarantee local too.
            emit(&logging::line(
                Level::Error,
                "missing environment variable: PROXY_PASSWORD",
            ));
            return 1;
        }
    };
    let source = AclSource {
        path: config.acl_file.clone(),
        disabled: config.disabled_actions.clone(),
    };
    let what = match &source.path {
        Some(p) => p.display().to_string(),
        None => "embedded default".to_string(),
    };
    emit(&logging::line(
        Level::Info,
        format!("Loading egress ACL from {what}"),
    ));
    let acl = match signals::load_acl(&source) {
        Ok((acl, warnings)) => {
            for w in warnings {
                emit(&logging::line(Level::Warning, w));
            }
            acl
        }
        Err(e) => {
            emit(&logging::line(Level::Error, "could not load egress ACL").with("error", e));
            return 2;
        }
    };
    let policy = Policy {
        auth,
        acl: Some(acl),
        addresses: config.address_policy.clone(),
        deny_message_extra: config.deny_message_extra.clone(),
        allow_missing_role: config.allow_missing_role,
    };
    let settings = Settings {
        head_limits: HeadLimits {
            max_head_bytes: config.max_header_bytes,
            ..HeadLimits::default()
        },
        read_header_timeout: config.read_header_timeout,
        connect_timeout: config.connect_timeout,
        idle_timeout: config.idle_timeout,
        exit_timeout: config.exit_timeout,
    };
    let params = listener::ServerParams {
        listen: config.listen,
        policy,
        settings,
        resolver: Resolver::new(config.static_hosts.clone(), config.dns_timeout),
        acl_source: source,
        max_connections: config.limits.max_connections,
    };
    // The server runs as a task on the executor; the main thread only parks
    // (futures-lite's block_on, which does not drive the I/O reactor), so
    // accepts and the reactor do not bounce between threads.
    match futures_lite::future::block_on(async_std::task::spawn(listener::run(params))) {
        Ok(()) => 0,
        Err(e) => {
            emit(&logging::line(Level::Error, "cannot start").with("error", e));
            1
        }
    }
}
