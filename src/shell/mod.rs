//! The async-std network shell: it accepts connections, moves bytes and asks
//! the core what to do. No policy decision is made here.
//!
//! The shell owns the clock, sockets, files and signals, so the clippy guard
//! that keeps them out of `core` is lifted for this module tree only.
#![allow(clippy::disallowed_methods)]

pub mod front;
pub mod http;
pub mod mitm;
pub mod observe;
pub mod resolve;
pub mod runtime;
pub mod serve;
pub mod transport;

use front::{proxy_header, stream, tls};
use observe::{logging, metrics_listener};
use serve::{limits, listener};

use crate::config::acl_source::AclSource;
use crate::config::startup;
use crate::config::{Config, LogFormat};
use crate::core::auth::AuthMode;
use crate::core::decision::Policy;
use crate::core::head::HeadLimits;
use crate::core::record::{Format, Level};
use crate::shell::observe::logging::emit;
use crate::shell::resolve::Resolver;
use crate::shell::serve::state::Settings;

/// Run the proxy with a validated configuration; returns the exit status.
pub fn start(config: Config) -> i32 {
    let format = match config.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    logging::init(format, config.log_level);
    let front = match front(&config) {
        Ok(f) => f,
        Err(e) => {
            emit(&logging::line(Level::Error, "cannot start").with("error", e));
            return 2;
        }
    };
    let mitm = match mitm::Mitm::load(&config) {
        Ok(m) => m,
        Err(e) => {
            emit(&logging::line(Level::Error, "cannot start").with("error", e.to_string()));
            return 2;
        }
    };
    let resolver_servers = match startup::resolver_servers(&config.resolver_addresses) {
        Ok(s) => s,
        Err(e) => {
            emit(&logging::line(Level::Error, "cannot start").with("error", e.to_string()));
            return 2;
        }
    };
    if let Some(address) = &config.statsd_address {
        match statsd_socket(address) {
            Ok((socket, server)) => observe::statsd::start(socket, server),
            Err(e) => {
                emit(&logging::line(Level::Error, "cannot start").with("error", e));
                return 2;
            }
        }
    }
    let client_certificates = config
        .tls
        .as_ref()
        .is_some_and(|t| !t.client_ca_files.is_empty());
    let password = config.password.clone();
    let auth = match (password, config.allow_unauthenticated) {
        // mTLS: the certificate's CN is the role; a password adds a factor.
        (password, _) if client_certificates => AuthMode::ClientCertificate { password },
        (Some(p), _) => AuthMode::Password(p),
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
    let source = AclSource::of(&config);
    // Logged once the file is known to be good, so that for a bad file the
    // first line an operator sees names the file and the problem.
    let acl = match source.load() {
        Ok((acl, warnings)) => {
            emit(&logging::line(
                Level::Info,
                format!("Loading egress ACL from {}", source.describe()),
            ));
            for w in warnings {
                emit(&logging::line(Level::Warning, w));
            }
            metrics_listener::readiness().set_acl_loaded(true);
            acl
        }
        Err(e) => {
            emit(
                &logging::line(Level::Error, "could not load egress ACL")
                    .with("error", e.to_string()),
            );
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
        front,
        limits: limits::LimitSettings {
            max_concurrent_requests: config.limits.max_concurrent_requests,
            max_request_rate: config
                .limits
                .max_request_rate
                .map(|rate| (rate, config.limits.max_request_burst.unwrap_or(1))),
            max_concurrent_connect_tunnels: config.limits.max_concurrent_connect_tunnels,
        },
        upstream: config.upstream.clone(),
        mitm,
    };
    limits::raise_open_files_limit(config.limits.max_connections);
    let metrics_config = config.metrics.clone();
    let params = listener::ServerParams {
        listen: config.listen,
        policy,
        settings,
        resolver: Resolver::new(config.static_hosts.clone(), config.dns_timeout)
            .with_servers(resolver_servers),
        acl_source: source,
        max_connections: config.limits.max_connections,
        also_listening: Vec::new(),
    };
    let stats_socket = match &config.stats_socket_dir {
        Some(dir) => match observe::stats_socket::start(dir, config.stats_socket_file_mode) {
            Ok(path) => Some(path),
            Err(e) => {
                let what = observe::stats_socket::path(dir).display().to_string();
                emit(
                    &logging::line(Level::Error, "cannot start")
                        .with("error", format!("stats socket {what}: {e}")),
                );
                return 2;
            }
        },
        None => None,
    };
    // The server runs as a task on a worker, whose loop also drives its
    // sockets; the main thread only parks.
    let served = listener::bind(params.listen).and_then(|bound| {
        runtime::block_on(runtime::spawn(async move {
            let mut params = params;
            if let Some(m) = &metrics_config {
                params
                    .also_listening
                    .push(metrics_listener::start(m).await?);
            }
            listener::run(bound, params).await
        }))
    });
    // Workers buffer log lines per turn: write what is left before exiting.
    runtime::block_on(runtime::flush_logs());
    if let Some(path) = stats_socket {
        let _ = std::fs::remove_file(path);
    }
    match served {
        Ok(()) => 0,
        Err(e) => {
            emit(&logging::line(Level::Error, "cannot start").with("error", e.to_string()));
            1
        }
    }
}

/// PROXY protocol and TLS settings, loaded and checked before listening.
pub fn front(config: &Config) -> Result<stream::Front, String> {
    startup::check_proxy_protocol(config).map_err(|e| e.to_string())?;
    let proxy_protocol = config.proxy_protocol.then(|| proxy_header::ProxyProtocol {
        trusted: config.proxy_protocol_trusted_ranges.clone(),
        max_len: crate::core::proxy_protocol::DEFAULT_MAX_LEN,
    });
    let tls = match &config.tls {
        Some(t) => Some(tls::acceptor(t).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(stream::Front {
        proxy_protocol,
        tls,
    })
}

/// The statsd server's address (a name is resolved once, now) and a UDP
/// socket of its family to send from.
fn statsd_socket(address: &str) -> Result<(std::net::UdpSocket, std::net::SocketAddr), String> {
    use std::net::ToSocketAddrs as _;
    let server = address
        .to_socket_addrs()
        .map_err(|e| format!("--statsd-address {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("--statsd-address {address}: no address"))?;
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket =
        std::net::UdpSocket::bind(local).map_err(|e| format!("--statsd-address {address}: {e}"))?;
    Ok((socket, server))
}
