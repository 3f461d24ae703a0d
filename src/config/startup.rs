//! Start-up checks beyond parsing: settings that are valid values but with
//! which the proxy would still refuse to start. The proxy runs them before
//! listening and `check-config` runs the same ones, so the tool's "OK"
//! means the proxy starts.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs as _};

use crate::config::Config;

/// Why the proxy would not start. `Display` is the logged `error` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartupError {
    /// `--proxy-protocol` without `--proxy-protocol-trusted-range`.
    UntrustedProxyProtocol,
    /// A `--resolver-address` that does not name a server.
    Resolver { address: String, problem: String },
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::UntrustedProxyProtocol => f.write_str("--proxy-protocol needs at least one --proxy-protocol-trusted-range (config key proxy_protocol_trusted_ranges): the peers, such as your load balancer, whose headers are believed"),
            StartupError::Resolver { address, problem } => {
                write!(f, "--resolver-address {address}: {problem}")
            }
        }
    }
}

impl std::error::Error for StartupError {}

/// PROXY protocol headers are believed only from named peers.
pub fn check_proxy_protocol(config: &Config) -> Result<(), StartupError> {
    if config.proxy_protocol && config.proxy_protocol_trusted_ranges.is_empty() {
        return Err(StartupError::UntrustedProxyProtocol);
    }
    Ok(())
}

/// `--resolver-address` values to socket addresses (names resolved once, now).
pub fn resolver_servers(addresses: &[String]) -> Result<Vec<SocketAddr>, StartupError> {
    let err = |address: &str, problem: String| StartupError::Resolver {
        address: address.to_string(),
        problem,
    };
    let mut out = Vec::new();
    for a in addresses {
        let mut resolved = a.to_socket_addrs().map_err(|e| err(a, e.to_string()))?;
        let first = resolved
            .next()
            .ok_or_else(|| err(a, "no address".to_string()))?;
        out.push(first);
    }
    Ok(out)
}
