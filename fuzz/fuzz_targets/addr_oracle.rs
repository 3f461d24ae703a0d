//! Differential target: `core::addr` against an oracle written here from
//! the deny table in the SSRF threat notes and the order in `spec/addr.md`,
//! without looking at `src/core/addr.rs`.
//!
//! The destination is any 16 bytes (as IPv6), an IPv4 address, its mapped
//! form, or an address placed inside or just outside one of the oracle's
//! table rows, so every row boundary is reached without guessing prefixes.
//! User ranges and the proxy's own listeners are fuzzed too. The two
//! implementations must agree on every input, for a policy built with
//! `AddressPolicy::new` and for the same ranges written in reverse order.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use smokescreen::core::addr::{
    builtin_rule, embedded_ipv4, AddressPolicy, EmbeddingKind, Rule, SelfEndpoints, UserRange,
};

// ---------------------------------------------------------------- the oracle

/// What the oracle judges: an IPv4 address or a non-mapped IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Canon {
    V4(u32),
    V6(u128),
}

/// Step 1: `::ffff:a.b.c.d` is judged as `a.b.c.d`, nothing else is unwrapped.
fn canon(ip: IpAddr) -> Canon {
    match ip {
        IpAddr::V4(a) => Canon::V4(u32::from(a)),
        IpAddr::V6(a) => {
            let o = a.octets();
            if o[..10].iter().all(|&b| b == 0) && o[10] == 0xff && o[11] == 0xff {
                Canon::V4(u32::from_be_bytes([o[12], o[13], o[14], o[15]]))
            } else {
                Canon::V6(u128::from(a))
            }
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

fn in4(addr: u32, net: u32, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    addr & mask == net & mask
}

fn in6(addr: u128, net: u128, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    addr & mask == net & mask
}

/// `x:x:...` segments to a number.
const fn v6(s: [u16; 8]) -> u128 {
    let mut n = 0u128;
    let mut i = 0;
    while i < 8 {
        n = (n << 16) | s[i] as u128;
        i += 1;
    }
    n
}

// Rows in table order: (network, prefix length, rule). Private rows are
// handled separately because `unsafe_allow_private_ranges` changes them.
const V4_NGU: &[(u32, u32)] = &[
    (v4(0, 0, 0, 0), 32),
    (v4(127, 0, 0, 0), 8),
    (v4(169, 254, 0, 0), 16),
    (v4(224, 0, 0, 0), 4),
    (v4(255, 255, 255, 255), 32),
];
const V4_METADATA: &[(u32, u32)] = &[(v4(168, 63, 129, 16), 32), (v4(100, 100, 100, 200), 32)];
const V4_PRIVATE: &[(u32, u32)] = &[
    (v4(10, 0, 0, 0), 8),
    (v4(172, 16, 0, 0), 12),
    (v4(192, 168, 0, 0), 16),
];
const V4_CGNAT: &[(u32, u32)] = &[(v4(100, 64, 0, 0), 10)];
const V4_RESERVED: &[(u32, u32)] = &[
    (v4(0, 0, 0, 0), 8),
    (v4(192, 0, 0, 0), 24),
    (v4(192, 0, 2, 0), 24),
    (v4(192, 88, 99, 0), 24),
    (v4(198, 18, 0, 0), 15),
    (v4(198, 51, 100, 0), 24),
    (v4(203, 0, 113, 0), 24),
    (v4(240, 0, 0, 0), 4),
];

const V6_NGU: &[(u128, u32)] = &[
    (0, 128),
    (1, 128),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8),
];
const V6_METADATA: &[(u128, u32)] = &[(v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]), 128)];
const V6_PRIVATE: &[(u128, u32)] = &[(v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7)];
const V6_EMBEDDING: &[(u128, u32)] = &[
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32),
    (0, 96),
];
const V6_RESERVED: &[(u128, u32)] = &[
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10),
];
const V6_GLOBAL: (u128, u32) = (v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3);

/// Step 4: the built-in table, first match wins.
fn oracle_table(ip: Canon, allow_private: bool) -> Rule {
    match ip {
        Canon::V4(a) => {
            let hit = |rows: &[(u32, u32)]| rows.iter().any(|&(n, l)| in4(a, n, l));
            if hit(V4_NGU) {
                Rule::DenyNotGlobalUnicast
            } else if hit(V4_METADATA) {
                Rule::DenyMetadata
            } else if hit(V4_PRIVATE) {
                if allow_private {
                    Rule::AllowDefault
                } else {
                    Rule::DenyPrivateRange
                }
            } else if hit(V4_CGNAT) {
                Rule::DenyCgnat
            } else if hit(V4_RESERVED) {
                Rule::DenyReserved
            } else {
                Rule::AllowDefault
            }
        }
        Canon::V6(a) => {
            let hit = |rows: &[(u128, u32)]| rows.iter().any(|&(n, l)| in6(a, n, l));
            if hit(V6_NGU) {
                Rule::DenyNotGlobalUnicast
            } else if hit(V6_METADATA) {
                Rule::DenyMetadata
            } else if hit(V6_PRIVATE) {
                if allow_private {
                    Rule::AllowDefault
                } else {
                    Rule::DenyPrivateRange
                }
            } else if hit(V6_EMBEDDING) {
                Rule::DenyIpv6Embedding
            } else if hit(V6_RESERVED) || !in6(a, V6_GLOBAL.0, V6_GLOBAL.1) {
                Rule::DenyReserved
            } else {
                Rule::AllowDefault
            }
        }
    }
}

fn is_unspecified(ip: Canon) -> bool {
    matches!(ip, Canon::V4(0) | Canon::V6(0))
}

fn is_loopback(ip: Canon) -> bool {
    match ip {
        Canon::V4(a) => a >> 24 == 127,
        Canon::V6(a) => a == 1,
    }
}

/// Step 2: our own listeners (a wildcard one also answers on loopback, the
/// unspecified address, the address the client reached us on and every
/// local interface address).
fn oracle_is_self(ip: Canon, port: u16, me: &SelfEndpoints) -> bool {
    let local = me.local_ip.map(canon);
    let interface = me.local_addresses.iter().any(|&a| canon(a) == ip);
    me.listen.iter().any(|l| {
        let lip = canon(l.ip());
        l.port() == port
            && (lip == ip
                || (is_unspecified(lip)
                    && (is_loopback(ip)
                        || is_unspecified(ip)
                        || local == Some(ip)
                        || interface)))
    })
}

/// Step 3: the specificity of a user range covering `ip:port`.
fn oracle_specificity(r: &UserRange, ip: Canon, port: u16) -> Option<(i32, bool)> {
    if let Some(p) = r.port {
        if p != port {
            return None;
        }
    }
    let prefix = match (r.net, ip) {
        (IpNet::V4(n), Canon::V4(a)) => {
            let len = u32::from(n.prefix_len());
            in4(a, u32::from(n.addr()), len).then_some(len as i32)
        }
        (IpNet::V6(n), Canon::V4(a)) => {
            let mapped = 0xffff_0000_0000u128 | u128::from(a);
            let len = u32::from(n.prefix_len());
            in6(mapped, u128::from(n.addr()), len).then_some(len as i32 - 96)
        }
        (IpNet::V6(n), Canon::V6(a)) => {
            let len = u32::from(n.prefix_len());
            in6(a, u128::from(n.addr()), len).then_some(len as i32)
        }
        (IpNet::V4(_), Canon::V6(_)) => None,
    }?;
    Some((prefix, r.port.is_some()))
}

fn oracle_classify(
    allow: &[UserRange],
    deny: &[UserRange],
    allow_private: bool,
    dst: SocketAddr,
    me: &SelfEndpoints,
) -> Rule {
    let ip = canon(dst.ip());
    let port = dst.port();
    if oracle_is_self(ip, port, me) {
        return Rule::DenySelfConnection;
    }
    let table = oracle_table(ip, allow_private);
    let best = |ranges: &[UserRange]| {
        ranges
            .iter()
            .filter_map(|r| oracle_specificity(r, ip, port))
            .max()
    };
    match (best(allow), best(deny)) {
        (None, None) => table,
        (Some(a), d) if d.is_none_or(|d| a > d) => Rule::AllowUserConfigured,
        _ if !matches!(table, Rule::AllowDefault | Rule::AllowUserConfigured) => table,
        _ => Rule::DenyUserConfigured,
    }
}

/// The IPv4 address each embedding form carries (spec/addr.md, "Helpers").
fn oracle_embedded(ip: Ipv6Addr) -> Option<(Ipv4Addr, EmbeddingKind)> {
    let a = u128::from(ip);
    let low = Ipv4Addr::from(a as u32);
    if in6(a, 0xffff_0000_0000, 96) {
        Some((low, EmbeddingKind::Mapped))
    } else if in6(a, 0, 96) && a > 1 {
        Some((low, EmbeddingKind::Compatible))
    } else if in6(a, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        Some((low, EmbeddingKind::Nat64))
    } else if in6(a, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        Some((Ipv4Addr::from((a >> 80) as u32), EmbeddingKind::SixToFour))
    } else if in6(a, v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32) {
        Some((Ipv4Addr::from(!(a as u32)), EmbeddingKind::Teredo))
    } else {
        None
    }
}

// ------------------------------------------------------------ fuzzed inputs

/// Every row of the oracle's table, for placing addresses at its edges.
fn rows() -> Vec<(bool, u128, u32)> {
    let mut out = Vec::new();
    for set in [V4_NGU, V4_METADATA, V4_PRIVATE, V4_CGNAT, V4_RESERVED] {
        out.extend(set.iter().map(|&(n, l)| (true, u128::from(n), l)));
    }
    for set in [V6_NGU, V6_METADATA, V6_PRIVATE, V6_EMBEDDING, V6_RESERVED] {
        out.extend(set.iter().map(|&(n, l)| (false, n, l)));
    }
    out.push((false, V6_GLOBAL.0, V6_GLOBAL.1));
    out.push((false, 0xffff_0000_0000, 96));
    out
}

#[derive(Arbitrary, Debug)]
enum Addr {
    Any([u8; 16]),
    V4([u8; 4]),
    Mapped([u8; 4]),
    /// Inside a table row (`edge` 0), just below it (1) or just above it (2).
    Row {
        row: u8,
        bits: [u8; 16],
        edge: u8,
    },
}

impl Addr {
    fn ip(&self) -> IpAddr {
        match *self {
            Addr::Any(b) => IpAddr::V6(Ipv6Addr::from(b)),
            Addr::V4(b) => IpAddr::V4(Ipv4Addr::from(b)),
            Addr::Mapped(b) => IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped()),
            Addr::Row { row, bits, edge } => {
                let rows = rows();
                let (is_v4, net, len) = rows[usize::from(row) % rows.len()];
                let bits = u128::from_be_bytes(bits);
                let width = if is_v4 { 32 } else { 128 };
                let host_mask = if len >= width {
                    0
                } else {
                    (if width == 128 {
                        u128::MAX
                    } else {
                        u128::from(u32::MAX)
                    }) >> len
                };
                let first = net & !host_mask;
                let last = first | host_mask;
                let value = match edge % 3 {
                    0 => first | (bits & host_mask),
                    1 => first.wrapping_sub(1),
                    _ => last.wrapping_add(1),
                };
                if is_v4 {
                    IpAddr::V4(Ipv4Addr::from(value as u32))
                } else {
                    IpAddr::V6(Ipv6Addr::from(value))
                }
            }
        }
    }
}

/// A handful of ports so equal ports (self, port-specific ranges) are common.
fn port(p: u8) -> u16 {
    [443, 80, 4750, 1][usize::from(p % 4)]
}

#[derive(Arbitrary, Debug)]
struct Range {
    addr: Addr,
    prefix: u8,
    port: Option<u8>,
}

impl Range {
    fn user_range(&self) -> UserRange {
        let ip = self.addr.ip();
        let max = if ip.is_ipv4() { 33 } else { 129 };
        let net = IpNet::new(ip, self.prefix % max).unwrap_or_else(|_| IpNet::from(ip));
        UserRange {
            net,
            port: self.port.map(port),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    dst: Addr,
    port: u8,
    allow_private: bool,
    allow: Vec<Range>,
    deny: Vec<Range>,
    listen: Vec<(Addr, u8)>,
    local_ip: Option<Addr>,
    interfaces: Vec<Addr>,
}

fuzz_target!(|input: Input| {
    let dst = SocketAddr::new(input.dst.ip(), port(input.port));
    let allow: Vec<UserRange> = input.allow.iter().take(4).map(Range::user_range).collect();
    let deny: Vec<UserRange> = input.deny.iter().take(4).map(Range::user_range).collect();
    let me = SelfEndpoints {
        listen: input
            .listen
            .iter()
            .take(3)
            .map(|(a, p)| SocketAddr::new(a.ip(), port(*p)))
            .collect(),
        local_ip: input.local_ip.as_ref().map(Addr::ip),
        local_addresses: input.interfaces.iter().take(4).map(Addr::ip).collect(),
    };

    // The table alone, on the address as given (mapped forms unwrapped by both).
    let want_table = oracle_table(canon(dst.ip()), input.allow_private);
    assert_eq!(
        builtin_rule(dst.ip(), input.allow_private),
        want_table,
        "builtin_rule({}) disagrees with the oracle",
        dst.ip()
    );

    let want = oracle_classify(&allow, &deny, input.allow_private, dst, &me);
    let built = AddressPolicy::new(allow.clone(), deny.clone(), input.allow_private);
    assert_eq!(
        built.classify(dst, &me),
        want,
        "classify({dst}) with AddressPolicy::new"
    );
    let reversed = AddressPolicy {
        allow: allow.iter().rev().copied().collect(),
        deny: deny.iter().rev().copied().collect(),
        unsafe_allow_private_ranges: input.allow_private,
    };
    assert_eq!(
        reversed.classify(dst, &me),
        want,
        "classify({dst}) with reversed ranges"
    );
    assert_eq!(
        want.allows(),
        matches!(want, Rule::AllowDefault | Rule::AllowUserConfigured)
    );

    if let IpAddr::V6(v6) = dst.ip() {
        assert_eq!(
            embedded_ipv4(v6),
            oracle_embedded(v6),
            "embedded_ipv4({v6})"
        );
    }
});
