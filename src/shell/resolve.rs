//! Name resolution behind one interface: a static hosts map (pinning and
//! tests) in front of the system resolver or, with `--resolver-address`,
//! our own DNS client ([`crate::shell::dns`]), with a timeout. Answers are only
//! data here; the core classifies every one of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use async_std::net::ToSocketAddrs as _;

use crate::shell::dns::DnsClient;

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

    /// All addresses for `name`, in resolver order. The error is a short text
    /// for logs and the 502 body.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        self.lookup_chain(name).await.map(|r| r.ips)
    }

    /// [`Resolver::lookup`] with the CNAME chain's names, when known.
    pub async fn lookup_chain(&self, name: &str) -> Result<Resolved, String> {
        if let Some(ips) = self.static_hosts.get(name) {
            return Ok(Resolved {
                ips: ips.clone(),
                aliases: Vec::new(),
            });
        }
        if let Some(dns) = &self.dns {
            return dns.lookup_chain(name).await;
        }
        // async-std runs getaddrinfo on its blocking pool, so the executor
        // never blocks; the timeout bounds how long a request waits for it.
        let query = (name, 0u16);
        match async_std::future::timeout(self.timeout, query.to_socket_addrs()).await {
            Err(_) => Err(format!("lookup {name}: timed out after {:?}", self.timeout)),
            Ok(Err(e)) => Err(format!("lookup {name}: {e}")),
            Ok(Ok(addrs)) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for a in addrs {
                    if !ips.contains(&a.ip()) {
                        ips.push(a.ip());
                    }
                }
                Ok(Resolved {
                    ips,
                    aliases: Vec::new(),
                })
            }
        }
    }
}
