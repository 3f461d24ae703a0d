//! Destination address classification: the default deny table, user allow
//! and deny ranges, and self-connection. This is the security boundary; the
//! hostname ACL is a convenience in front of it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The rule that classified an address. `Display` is the rule name used in
/// logs and deny messages (Smokescreen's names where it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    AllowDefault,
    AllowUserConfigured,
    DenyNotGlobalUnicast,
    DenyPrivateRange,
    DenyUserConfigured,
    DenyCgnat,
    DenyIpv6Embedding,
    DenySelfConnection,
    /// Special-purpose ranges Smokescreen lets through (documentation, benchmarking, 240/4, ...).
    DenyReserved,
    /// Cloud metadata endpoints outside the ranges above (e.g. Azure WireServer).
    DenyMetadata,
}

impl Rule {
    pub fn allows(self) -> bool {
        matches!(self, Rule::AllowDefault | Rule::AllowUserConfigured)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::AllowDefault => "Allow: Default",
            Rule::AllowUserConfigured => "Allow: User Configured",
            Rule::DenyNotGlobalUnicast => "Deny: Not Global Unicast",
            Rule::DenyPrivateRange => "Deny: Private Range",
            Rule::DenyUserConfigured => "Deny: User Configured",
            Rule::DenyCgnat => "Deny: CGNAT Range",
            Rule::DenyIpv6Embedding => "Deny: IPv6 Embedding",
            Rule::DenySelfConnection => "Deny: Self Connection",
            Rule::DenyReserved => "Deny: Reserved Range",
            Rule::DenyMetadata => "Deny: Cloud Metadata",
        })
    }
}

/// A user range: `--allow-range`/`--deny-range` CIDR or `--allow-address`/
/// `--deny-address` IP with optional port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub net: IpNet,
    pub port: Option<u16>,
}

/// Why a user range did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRangeError(pub String);

impl fmt::Display for UserRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid address or range {:?}: expected CIDR, IP or IP:PORT",
            self.0
        )
    }
}

impl std::error::Error for UserRangeError {}

impl std::str::FromStr for UserRange {
    type Err = UserRangeError;

    /// Accepts `10.0.0.0/8`, `fd00::/8`, `1.2.3.4`, `1.2.3.4:443`, `::1`, `[::1]:443`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UserRangeError(s.to_string());
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(UserRange {
                net: net.trunc(),
                port: None,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(UserRange {
                net: IpNet::from(ip),
                port: None,
            });
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err(err());
            }
            return Ok(UserRange {
                net: IpNet::from(sa.ip()),
                port: Some(sa.port()),
            });
        }
        Err(err())
    }
}

/// The proxy's own endpoints, so it can refuse to connect to itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelfEndpoints {
    /// Every address the proxy listens on (proxy and metrics listeners).
    pub listen: Vec<SocketAddr>,
    /// The local address the client's connection arrived on, if known.
    pub local_ip: Option<IpAddr>,
}

/// The address policy: built-in table plus user ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow: Vec<UserRange>,
    pub deny: Vec<UserRange>,
    /// `--unsafe-allow-private-ranges`: let RFC 1918 / ULA through.
    pub unsafe_allow_private_ranges: bool,
}

impl AddressPolicy {
    /// Classify one destination.
    pub fn classify(&self, _dst: SocketAddr, _me: &SelfEndpoints) -> Rule {
        todo!("helper: classification")
    }
}
