//! Name resolution behind one interface: a static hosts map (pinning and
//! tests) in front of the system resolver or, with `--resolver-address`,
//! our own DNS client ([`dns`]), with a timeout. Answers are only
//! data here; the core classifies every one of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

pub mod dns;

use crate::shell::runtime;
use dns::DnsClient;

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
        if let Some(ips) = self.static_hosts.get(name) {
            return Ok(ips.clone());
        }
        if let Some(dns) = &self.dns {
            return dns.lookup(name).await;
        }
        // async-std runs getaddrinfo on its blocking pool, so the executor
        // never blocks; the timeout bounds how long a request waits for it.
        match runtime::deadline(self.timeout, runtime::lookup_host(name, 0)).await {
            None => Err(format!("lookup {name}: timed out after {:?}", self.timeout)),
            Some(Err(e)) => Err(format!("lookup {name}: {e}")),
            Some(Ok(addrs)) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for a in addrs {
                    if !ips.contains(&a.ip()) {
                        ips.push(a.ip());
                    }
                }
                Ok(ips)
            }
        }
    }
}
