//! The merge: each setting's winning value (see `sources.rs`) into one
//! [`Config`], then the checks that need more than one setting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::settings::*;
use super::sources::Sources;
use super::{hosts, read_file, Config, ConfigError, Limits, MetricsConfig, MitmFiles, TlsConfig};
use crate::core::addr::AddressPolicy;

/// Settings are read in a fixed order, so the first of several bad values
/// is the one reported.
pub fn build(src: &Sources<'_>) -> Result<Config, ConfigError> {
    let listen = SocketAddr::new(src.required(&LISTEN_IP)?, src.required(&LISTEN_PORT)?);
    let proxy_protocol = src.switch(&PROXY_PROTOCOL)?;
    let unsafe_allow_private_ranges = src.switch(&UNSAFE_ALLOW_PRIVATE_RANGES)?;
    let expose_metrics = src.switch(&EXPOSE_PROMETHEUS_METRICS)?;
    let allow_missing_role = src.switch(&ALLOW_MISSING_ROLE)?;
    let allow_unauthenticated = src.switch(&ALLOW_UNAUTHENTICATED)?;
    let connect_timeout = src.required(&CONNECT_TIMEOUT)?;
    let dns_timeout = src.required(&DNS_TIMEOUT)?;
    let read_header_timeout = src.required(&READ_HEADER_TIMEOUT)?;
    let idle_timeout = Some(src.required(&IDLE_TIMEOUT)?).filter(|d| *d > Duration::ZERO);
    let exit_timeout = src.required(&EXIT_TIMEOUT)?;

    let mut allow = src.list(&ALLOW_RANGE)?;
    allow.extend(src.list(&ALLOW_ADDRESS)?);
    let mut deny = src.list(&DENY_RANGE)?;
    deny.extend(src.list(&DENY_ADDRESS)?);
    let address_policy = AddressPolicy {
        allow,
        deny,
        unsafe_allow_private_ranges,
    };
    let mut disabled_actions = Vec::new();
    for action in src.list(&DISABLED_ACTION)? {
        hosts::push_unique(&mut disabled_actions, action);
    }
    let proxy_protocol_trusted_ranges = src.list(&PROXY_PROTOCOL_TRUSTED_RANGE)?;
    let resolver_addresses = src.list(&RESOLVER_ADDRESS)?;
    let deny_message_extra = src.value(&DENY_MESSAGE_EXTRA)?.flatten();
    let statsd_address = src.value(&STATSD_ADDRESS)?.flatten();
    let stats_socket_dir = src.path(&STATS_SOCKET_DIR)?;
    let stats_socket_file_mode = src.required(&STATS_SOCKET_FILE_MODE)?;
    let acl_file = src.path(&ACL_FILE)?;
    let hosts_file = src.path(&HOSTS_FILE)?;
    let static_hosts = static_hosts(src, hosts_file.as_deref())?;
    let tls = tls(src)?;
    let mitm = mitm(src)?;
    let mitm_upstream_ca_files = src.paths(&MITM_UPSTREAM_CA_FILE)?;
    let limits = limits(src)?;
    let max_header_bytes = src.required(&MAX_HEADER_BYTES)?;
    let log_format = src.required(&LOG_FORMAT)?;
    let log_level = src.required(&LOG_LEVEL)?;

    // Validated even when metrics are off, so a typo does not wait to
    // surface until someone turns them on.
    let metrics = expose_metrics.then_some(metrics(src)?);
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
        mitm,
        mitm_upstream_ca_files,
        statsd_address,
        stats_socket_dir,
        stats_socket_file_mode,
        // Set by `load_matches`, which has the environment.
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
    for (raw_name, ips) in &src.file.static_hosts {
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
    for (name, ips) in src.list(&STATIC_HOST)? {
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
fn tls(src: &Sources<'_>) -> Result<Option<TlsConfig>, ConfigError> {
    let file_tls = src.file.tls.clone().unwrap_or_default();
    let server = match (
        src.path(&TLS_SERVER_BUNDLE_FILE)?,
        file_tls.cert_file,
        file_tls.key_file,
    ) {
        (Some(bundle), _, _) => Some((bundle, None)),
        (None, Some(cert), key) => Some((cert, key)),
        (None, None, Some(_)) => {
            return Err(src.file_error("tls: key_file is set but cert_file is not".to_string()))
        }
        (None, None, None) => None,
    };
    let mut client_ca_files = file_tls.client_ca_files;
    client_ca_files.extend(src.paths(&TLS_CLIENT_CA_FILE)?);
    let mut crl_files = file_tls.crl_files;
    crl_files.extend(src.paths(&TLS_CRL_FILE)?);
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

/// The MITM CA: both files or neither (Smokescreen's texts).
fn mitm(src: &Sources<'_>) -> Result<Option<MitmFiles>, ConfigError> {
    match (src.path(&MITM_CA_CERT_FILE)?, src.path(&MITM_CA_KEY_FILE)?) {
        (Some(cert_file), Some(key_file)) => Ok(Some(MitmFiles {
            cert_file,
            key_file,
        })),
        (None, Some(_)) => Err(ConfigError::Inconsistent(
            "mitm_ca_cert_file required when mitm_ca_key_file is set".to_string(),
        )),
        (Some(_), None) => Err(ConfigError::Inconsistent(
            "mitm_ca_key_file required when mitm_ca_cert_file is set".to_string(),
        )),
        (None, None) => Ok(None),
    }
}

fn limits(src: &Sources<'_>) -> Result<Limits, ConfigError> {
    let max_concurrent_requests = src.value(&MAX_CONCURRENT_REQUESTS)?.flatten();
    let max_concurrent_connect_tunnels = src.value(&MAX_CONCURRENT_CONNECT_TUNNELS)?.flatten();
    let max_request_rate = src.value(&MAX_REQUEST_RATE)?.flatten();
    let max_request_burst = match (max_request_rate, src.value(&MAX_REQUEST_BURST)?.flatten()) {
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
    Ok(Limits {
        max_concurrent_requests,
        max_request_rate,
        max_request_burst,
        max_concurrent_connect_tunnels,
        max_connections: src.required(&MAX_CONNECTIONS)?,
    })
}

fn metrics(src: &Sources<'_>) -> Result<MetricsConfig, ConfigError> {
    Ok(MetricsConfig {
        listen: SocketAddr::new(
            src.required(&PROMETHEUS_LISTEN_IP)?,
            src.required(&PROMETHEUS_PORT)?,
        ),
        endpoint: src.required(&PROMETHEUS_ENDPOINT)?,
    })
}
