//! Name resolution behind one interface: a static hosts map (pinning and
//! tests) in front of the system resolver or, with `--resolver-address`,
//! our own DNS client ([`dns`]), with a timeout. Answers are only
//! data here; the core classifies every one of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

pub mod dns;

use dns_lookup::{AddrInfoHints, LookupErrorKind, SockType};

use crate::core::lookup::{LookupCause, LookupError};
use crate::shell::runtime;
use dns::DnsClient;

/// A successful lookup: the addresses, and the names a CNAME chain led
/// through to them (only the `--resolver-address` client sees chains; the
/// system resolver's `getaddrinfo` does not report them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub ips: Vec<IpAddr>,
    pub aliases: Vec<String>,
}

/// Resolves names to addresses.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    /// Normalised names (lowercase, no trailing dot) answered without DNS.
    pub static_hosts: HashMap<String, Vec<IpAddr>>,
    pub timeout: Duration,
    /// `--resolver-address`: ask these servers instead of the system resolver.
    pub dns: Option<DnsClient>,
}

impl Resolver {
    pub fn new(static_hosts: HashMap<String, Vec<IpAddr>>, timeout: Duration) -> Resolver {
        Resolver {
            static_hosts,
            timeout,
            dns: None,
        }
    }

    /// Resolve through these DNS servers (in order) instead of the system resolver.
    pub fn with_servers(mut self, servers: Vec<std::net::SocketAddr>) -> Resolver {
        self.dns = (!servers.is_empty()).then(|| DnsClient::new(servers, self.timeout));
        self
    }

    /// All addresses for `name`, in resolver order.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        self.lookup_chain(name).await.map(|r| r.ips)
    }

    /// [`Resolver::lookup`] with the CNAME chain's names, when known.
    pub async fn lookup_chain(&self, name: &str) -> Result<Resolved, LookupError> {
        if let Some(ips) = self.static_hosts.get(name) {
            return Ok(Resolved {
                ips: ips.clone(),
                aliases: Vec::new(),
            });
        }
        if let Some(dns) = &self.dns {
            return dns.lookup_chain(name).await;
        }
        // getaddrinfo blocks: it runs on async-std's blocking pool, so the
        // executor never does; the timeout bounds how long a request waits.
        let owned = name.to_string();
        let query = runtime::spawn_blocking(move || system_lookup(&owned));
        match runtime::deadline(self.timeout, query).await {
            None => Err(LookupError::new(name, None, LookupCause::Timeout)),
            Some(answer) => answer.map(|ips| Resolved {
                ips,
                aliases: Vec::new(),
            }),
        }
    }
}

/// The system resolver (getaddrinfo), its error code kept: glibc reports a
/// missing name as `EAI_NONAME`/`EAI_NODATA` and a failing or unreachable
/// server as `EAI_AGAIN`/`EAI_FAIL`.
fn system_lookup(name: &str) -> Result<Vec<IpAddr>, LookupError> {
    let hints = AddrInfoHints {
        socktype: SockType::Stream.into(),
        ..AddrInfoHints::default()
    };
    let found = dns_lookup::getaddrinfo(Some(name), None, Some(hints)).map_err(|e| {
        let cause = match e.kind() {
            LookupErrorKind::NoName | LookupErrorKind::NoData => LookupCause::NoSuchHost,
            LookupErrorKind::Again | LookupErrorKind::Fail => LookupCause::ServerMisbehaving,
            _ => LookupCause::Other(std::io::Error::from(e).to_string()),
        };
        LookupError::new(name, None, cause)
    })?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for info in found.flatten() {
        let ip = info.sockaddr.ip();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}
