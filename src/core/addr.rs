//! Destination address classification: the default deny table, user allow
//! and deny ranges, and self-connection. This is the security boundary; the
//! hostname ACL is a convenience in front of it.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

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
///
/// A wildcard listener answers on every address of every local interface,
/// so the shell supplies them all (enumerated at start and kept current):
/// without them an allow rule (or `--unsafe-allow-private-ranges`) covering
/// one of the host's own addresses would let a client reach the metrics
/// page, or nest proxy-to-proxy tunnels until descriptors run out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelfEndpoints {
    /// Every address the proxy listens on (proxy and metrics listeners).
    pub listen: Vec<SocketAddr>,
    /// The local address the client's connection arrived on, if known.
    pub local_ip: Option<IpAddr>,
    /// Every address of every local interface (IPv4 and IPv6).
    pub local_addresses: Arc<[IpAddr]>,
}

impl SelfEndpoints {
    /// Whether `ip:port` (already canonical, see [`canonical_ip`]) reaches one
    /// of our own listeners. A wildcard listener answers on loopback, on the
    /// wildcard address itself, on the address the client reached us on and
    /// on every local interface address.
    fn is_self(&self, ip: IpAddr, port: u16) -> bool {
        let local = self.local_ip.map(canonical_ip);
        self.listen.iter().any(|l| {
            if l.port() != port {
                return false;
            }
            let lip = canonical_ip(l.ip());
            lip == ip
                || (lip.is_unspecified()
                    && (ip.is_loopback()
                        || ip.is_unspecified()
                        || local == Some(ip)
                        || self.is_local_address(ip)))
        })
    }

    fn is_local_address(&self, ip: IpAddr) -> bool {
        self.local_addresses.iter().any(|&a| canonical_ip(a) == ip)
    }
}

/// The address policy: built-in table plus user ranges.
///
/// The fields stay public so callers can read (and, in tests, write) them;
/// [`AddressPolicy::new`] is the preferred constructor because it normalises
/// the ranges. [`AddressPolicy::classify`] does not depend on their order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow: Vec<UserRange>,
    pub deny: Vec<UserRange>,
    /// `--unsafe-allow-private-ranges`: let RFC 1918 / ULA through.
    pub unsafe_allow_private_ranges: bool,
}

impl AddressPolicy {
    /// Build a policy from the flag values: networks truncated to their
    /// prefix, duplicates removed, most specific first (so `Debug` output and
    /// logs list ranges in the order they take precedence).
    pub fn new(
        allow: Vec<UserRange>,
        deny: Vec<UserRange>,
        unsafe_allow_private_ranges: bool,
    ) -> Self {
        AddressPolicy {
            allow: normalise(allow),
            deny: normalise(deny),
            unsafe_allow_private_ranges,
        }
    }

    /// Classify one destination.
    ///
    /// Order: IPv4-mapped unwrapping, self connection, the most specific user
    /// range, the built-in table. See `spec/addr.md`.
    pub fn classify(&self, dst: SocketAddr, me: &SelfEndpoints) -> Rule {
        let ip = canonical_ip(dst.ip());
        let port = dst.port();
        if me.is_self(ip, port) {
            return Rule::DenySelfConnection;
        }
        let table = builtin_rule(ip, self.unsafe_allow_private_ranges);
        match self.user_verdict(ip, port) {
            Some(UserVerdict::Allow) => Rule::AllowUserConfigured,
            // Report the table's own reason when it agrees, as Smokescreen
            // does for `localhost` (`Deny: Not Global Unicast`).
            Some(UserVerdict::Deny) if !table.allows() => table,
            Some(UserVerdict::Deny) => Rule::DenyUserConfigured,
            None => table,
        }
    }

    /// The most specific user range covering `ip:port`, if any. A linear
    /// scan without allocation: user lists are short, and a scan keeps the
    /// result independent of the order the fields happen to be in.
    fn user_verdict(&self, ip: IpAddr, port: u16) -> Option<UserVerdict> {
        let best_allow = best_match(&self.allow, ip, port);
        let best_deny = best_match(&self.deny, ip, port);
        match (best_allow, best_deny) {
            (None, None) => None,
            (Some(_), None) => Some(UserVerdict::Allow),
            (None, Some(_)) => Some(UserVerdict::Deny),
            // An exact tie goes to deny.
            (Some(a), Some(d)) if a > d => Some(UserVerdict::Allow),
            (Some(_), Some(_)) => Some(UserVerdict::Deny),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserVerdict {
    Allow,
    Deny,
}

/// How specific a matching user range is: prefix length counted in IPv4
/// bits for IPv4 destinations (a v6 range over the mapped form counts
/// `prefix - 96`), then "has a port" beats "has none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    prefix: i16,
    has_port: bool,
}

fn best_match(ranges: &[UserRange], ip: IpAddr, port: u16) -> Option<Specificity> {
    ranges.iter().filter_map(|r| r.specificity(ip, port)).max()
}

impl UserRange {
    /// Whether this range covers `ip:port`, judging a mapped address as IPv4
    /// and testing IPv4 destinations in their mapped form against IPv6 ranges.
    pub fn covers(&self, ip: IpAddr, port: u16) -> bool {
        self.specificity(canonical_ip(ip), port).is_some()
    }

    fn specificity(&self, ip: IpAddr, port: u16) -> Option<Specificity> {
        if self.port.is_some_and(|p| p != port) {
            return None;
        }
        let prefix = match (self.net, ip) {
            (IpNet::V4(n), IpAddr::V4(a)) => n.contains(&a).then(|| i16::from(n.prefix_len())),
            (IpNet::V6(n), IpAddr::V4(a)) => n
                .contains(&a.to_ipv6_mapped())
                .then(|| i16::from(n.prefix_len()) - 96),
            (IpNet::V6(n), IpAddr::V6(a)) => n.contains(&a).then(|| i16::from(n.prefix_len())),
            (IpNet::V4(_), IpAddr::V6(_)) => None,
        }?;
        Some(Specificity {
            prefix,
            has_port: self.port.is_some(),
        })
    }

    /// Sort key for "most specific first" within one family.
    fn sort_key(&self) -> (u8, bool) {
        let prefix = match self.net {
            IpNet::V4(n) => n.prefix_len(),
            IpNet::V6(n) => n.prefix_len(),
        };
        (prefix, self.port.is_some())
    }
}

fn normalise(mut ranges: Vec<UserRange>) -> Vec<UserRange> {
    for r in &mut ranges {
        r.net = r.net.trunc();
    }
    ranges.sort_by(|a, b| match b.sort_key().cmp(&a.sort_key()) {
        Ordering::Equal => (a.net, a.port).cmp(&(b.net, b.port)),
        other => other,
    });
    ranges.dedup();
    ranges
}

/// The address as it will be judged: an IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) becomes the IPv4 address it reaches; anything else is
/// returned unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// One row of the built-in table.
struct Row<T> {
    net: T,
    mask: T,
    rule: Rule,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u32, rule: Rule) -> Row<u32> {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Row {
        net: u32::from_be_bytes([a, b, c, d]) & mask,
        mask,
        rule,
    }
}

const fn v6(segments: [u16; 8], len: u32, rule: Rule) -> Row<u128> {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    let mut net: u128 = 0;
    let mut i = 0;
    while i < 8 {
        net = (net << 16) | segments[i] as u128;
        i += 1;
    }
    Row {
        net: net & mask,
        mask,
        rule,
    }
}

use Rule::{
    DenyCgnat as CGNAT, DenyIpv6Embedding as EMBED, DenyMetadata as META,
    DenyNotGlobalUnicast as NGU, DenyPrivateRange as PRIV, DenyReserved as RSVD,
};

/// IPv4 rows, first match wins. Order matters: metadata before private and
/// CGNAT so `--unsafe-allow-private-ranges` never unlocks it.
static V4_TABLE: [Row<u32>; 19] = [
    v4(0, 0, 0, 0, 32, NGU),
    v4(127, 0, 0, 0, 8, NGU),
    v4(169, 254, 0, 0, 16, NGU),
    v4(224, 0, 0, 0, 4, NGU),
    v4(255, 255, 255, 255, 32, NGU),
    v4(168, 63, 129, 16, 32, META),
    v4(100, 100, 100, 200, 32, META),
    v4(10, 0, 0, 0, 8, PRIV),
    v4(172, 16, 0, 0, 12, PRIV),
    v4(192, 168, 0, 0, 16, PRIV),
    v4(100, 64, 0, 0, 10, CGNAT),
    v4(0, 0, 0, 0, 8, RSVD),
    v4(192, 0, 0, 0, 24, RSVD),
    v4(192, 0, 2, 0, 24, RSVD),
    v4(192, 88, 99, 0, 24, RSVD),
    v4(198, 18, 0, 0, 15, RSVD),
    v4(198, 51, 100, 0, 24, RSVD),
    v4(203, 0, 113, 0, 24, RSVD),
    // After 255.255.255.255, which is above.
    v4(240, 0, 0, 0, 4, RSVD),
];

/// IPv6 rows, first match wins; anything left outside 2000::/3 is reserved.
static V6_TABLE: [Row<u128>; 16] = [
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, NGU),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, NGU),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, NGU),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, NGU),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, META),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, PRIV),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, EMBED),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, EMBED),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, EMBED),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, EMBED),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, EMBED),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, RSVD),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, RSVD),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, RSVD),
    // RFC 9637 documentation prefix, inside 2000::/3.
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, RSVD),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, RSVD),
];

/// 2000::/3: the only IPv6 space handed out as global unicast.
const GLOBAL_UNICAST_V6: Row<u128> = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Rule::AllowDefault);

fn first_match<T>(rows: &[Row<T>], bits: T) -> Option<Rule>
where
    T: Copy + std::ops::BitAnd<Output = T> + PartialEq,
{
    rows.iter().find(|r| bits & r.mask == r.net).map(|r| r.rule)
}

/// The built-in table alone (no user ranges, no self check): `AllowDefault`
/// or the deny rule of the first matching row. IPv4-mapped addresses are
/// judged as IPv4. With `allow_private`, a private range is allowed (nothing
/// later in the table overlaps it).
pub fn builtin_rule(ip: IpAddr, allow_private: bool) -> Rule {
    let hit = match canonical_ip(ip) {
        IpAddr::V4(a) => first_match(&V4_TABLE, u32::from(a)),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            first_match(&V6_TABLE, bits).or({
                if bits & GLOBAL_UNICAST_V6.mask == GLOBAL_UNICAST_V6.net {
                    None
                } else {
                    // Unassigned space outside 2000::/3: no public service lives there.
                    Some(Rule::DenyReserved)
                }
            })
        }
    };
    match hit {
        Some(Rule::DenyPrivateRange) if allow_private => Rule::AllowDefault,
        Some(rule) => rule,
        None => Rule::AllowDefault,
    }
}

/// How an IPv6 address carries an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmbeddingKind {
    /// `::ffff:a.b.c.d` (RFC 4291): the socket really talks IPv4.
    Mapped,
    /// `::a.b.c.d` (RFC 4291, deprecated); `::` and `::1` excluded.
    Compatible,
    /// `64:ff9b::a.b.c.d` (RFC 6052 well-known NAT64 prefix).
    Nat64,
    /// `2002:AABB:CCDD::/48` (RFC 3056).
    SixToFour,
    /// `2001:0:server:flags:port:client` (RFC 4380); the client address is
    /// stored bit-inverted in the last 32 bits.
    Teredo,
}

impl fmt::Display for EmbeddingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbeddingKind::Mapped => "IPv4-mapped",
            EmbeddingKind::Compatible => "IPv4-compatible",
            EmbeddingKind::Nat64 => "NAT64",
            EmbeddingKind::SixToFour => "6to4",
            EmbeddingKind::Teredo => "Teredo",
        })
    }
}

/// The IPv4 address an IPv6 address embeds, and how. For logs and tests:
/// classification denies the embedding forms whatever they carry. The local
/// NAT64 prefix 64:ff9b:1::/48 is not decoded (its layout depends on a
/// prefix length only the operator knows).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<(Ipv4Addr, EmbeddingKind)> {
    let bits = u128::from(ip);
    // Truncating casts pick the 32 bits we want on purpose.
    let low32 = Ipv4Addr::from(bits as u32);
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some((v4, EmbeddingKind::Mapped));
    }
    if bits >> 32 == 0 {
        // `::` and `::1` are the unspecified and loopback addresses, not embeddings.
        return (bits > 1).then_some((low32, EmbeddingKind::Compatible));
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some((low32, EmbeddingKind::Nat64));
    }
    if seg[0] == 0x2002 {
        return Some((
            Ipv4Addr::from((bits >> 80) as u32),
            EmbeddingKind::SixToFour,
        ));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some((Ipv4Addr::from(!(bits as u32)), EmbeddingKind::Teredo));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        match s.parse() {
            Ok(a) => a,
            Err(e) => panic!("bad test address {s}: {e}"),
        }
    }

    fn range(s: &str) -> UserRange {
        match s.parse() {
            Ok(r) => r,
            Err(e) => panic!("bad test range {s}: {e}"),
        }
    }

    fn classify(p: &AddressPolicy, s: &str) -> Rule {
        p.classify(sa(s), &SelfEndpoints::default())
    }

    #[test]
    fn table_rows_are_network_addresses() {
        // A row whose address has host bits set would never match; `v4`/`v6`
        // mask them, so check the masks agree with ipnet's idea of a prefix.
        for r in &V4_TABLE {
            assert_eq!(r.net & !r.mask, 0);
        }
        for r in &V6_TABLE {
            assert_eq!(r.net & !r.mask, 0);
        }
        assert_eq!(V4_TABLE[1].mask, 0xff00_0000);
        assert_eq!(V6_TABLE[2].mask >> 118, 0x3ff);
    }

    #[test]
    fn public_addresses_are_allowed() {
        let p = AddressPolicy::default();
        assert_eq!(classify(&p, "8.8.8.8:443"), Rule::AllowDefault);
        assert_eq!(classify(&p, "[2606:4700::1111]:443"), Rule::AllowDefault);
    }

    #[test]
    fn mapped_is_judged_as_ipv4() {
        let p = AddressPolicy::default();
        assert_eq!(
            classify(&p, "[::ffff:127.0.0.1]:80"),
            Rule::DenyNotGlobalUnicast
        );
        assert_eq!(classify(&p, "[::ffff:8.8.8.8]:80"), Rule::AllowDefault);
    }

    #[test]
    fn deny_address_inside_allow_range_denies() {
        // Smokescreen's open issue: its allow list won and the deny was ignored.
        let mk = |unsafe_private| {
            AddressPolicy::new(
                vec![range("192.168.0.0/16")],
                vec![range("192.168.1.5")],
                unsafe_private,
            )
        };
        assert_eq!(
            classify(&mk(false), "192.168.1.5:443"),
            Rule::DenyPrivateRange
        );
        assert_eq!(
            classify(&mk(false), "192.168.1.6:443"),
            Rule::AllowUserConfigured
        );
        assert_eq!(
            classify(&mk(true), "192.168.1.5:443"),
            Rule::DenyUserConfigured
        );
    }

    #[test]
    fn user_deny_reports_table_rule_when_table_denies() {
        let p = AddressPolicy::new(vec![], vec![range("127.0.0.0/8")], false);
        assert_eq!(classify(&p, "127.0.0.1:443"), Rule::DenyNotGlobalUnicast);
        let p = AddressPolicy::new(vec![], vec![range("8.8.8.8")], false);
        assert_eq!(classify(&p, "8.8.8.8:443"), Rule::DenyUserConfigured);
    }

    #[test]
    fn longer_prefix_beats_port() {
        // Not expressible in flag syntax (a CIDR takes no port), but the
        // struct allows it: prefix length is compared before the port.
        let wide_with_port = UserRange {
            net: IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(8, 8, 0, 0), 16).unwrap_or_default()),
            port: Some(443),
        };
        let p = AddressPolicy::new(vec![wide_with_port], vec![range("8.8.8.8")], false);
        assert_eq!(classify(&p, "8.8.8.8:443"), Rule::DenyUserConfigured);
        assert_eq!(classify(&p, "8.8.4.4:443"), Rule::AllowUserConfigured);
        assert_eq!(classify(&p, "8.8.4.4:80"), Rule::AllowDefault);
    }

    #[test]
    fn new_sorts_most_specific_first_and_dedups() {
        let p = AddressPolicy::new(
            vec![
                range("10.0.0.0/8"),
                range("10.1.2.3:80"),
                range("10.1.0.0/16"),
                range("10.1.2.3"),
                range("10.0.0.9/8"),
            ],
            vec![],
            false,
        );
        let got: Vec<String> = p
            .allow
            .iter()
            .map(|r| match r.port {
                Some(port) => format!("{}:{port}", r.net),
                None => r.net.to_string(),
            })
            .collect();
        assert_eq!(
            got,
            ["10.1.2.3/32:80", "10.1.2.3/32", "10.1.0.0/16", "10.0.0.0/8"]
        );
    }

    #[test]
    fn order_of_fields_does_not_matter() {
        let a = vec![range("10.0.0.0/8"), range("10.1.2.3:8080")];
        let d = vec![range("10.1.2.3"), range("10.1.0.0/16")];
        let fwd = AddressPolicy {
            allow: a.clone(),
            deny: d.clone(),
            unsafe_allow_private_ranges: false,
        };
        let rev = AddressPolicy {
            allow: a.into_iter().rev().collect(),
            deny: d.into_iter().rev().collect(),
            unsafe_allow_private_ranges: false,
        };
        for s in [
            "10.1.2.3:8080",
            "10.1.2.3:443",
            "10.1.9.9:443",
            "10.2.0.0:443",
        ] {
            assert_eq!(classify(&fwd, s), classify(&rev, s), "{s}");
        }
        assert_eq!(classify(&fwd, "10.1.2.3:8080"), Rule::AllowUserConfigured);
        assert_eq!(classify(&fwd, "10.2.0.0:443"), Rule::AllowUserConfigured);
    }

    #[test]
    fn embedded_forms_decode() {
        let e = |s: &str| embedded_ipv4(s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED));
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap_or(Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            e("::ffff:10.0.0.1"),
            Some((ip("10.0.0.1"), EmbeddingKind::Mapped))
        );
        assert_eq!(
            e("::10.0.0.1"),
            Some((ip("10.0.0.1"), EmbeddingKind::Compatible))
        );
        assert_eq!(
            e("64:ff9b::a00:1"),
            Some((ip("10.0.0.1"), EmbeddingKind::Nat64))
        );
        assert_eq!(
            e("2002:a00:1::1"),
            Some((ip("10.0.0.1"), EmbeddingKind::SixToFour))
        );
        // Teredo: client 10.0.0.1 inverted is f5ff:fffe.
        assert_eq!(
            e("2001:0:4136:e378:8000:63bf:f5ff:fffe"),
            Some((ip("10.0.0.1"), EmbeddingKind::Teredo))
        );
        assert_eq!(e("::"), None);
        assert_eq!(e("::1"), None);
        assert_eq!(e("2606:4700::1111"), None);
        assert_eq!(e("64:ff9b:1::a00:1"), None);
    }
}
