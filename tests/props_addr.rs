//! Properties of address classification, checked against an independent
//! oracle: the reference deny table written as a plain list of `(IpNet, Rule)`
//! and scanned linearly (no bit masks shared with the implementation).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use smokescreen::core::addr::{
    embedded_ipv4, AddressPolicy, EmbeddingKind, Rule, SelfEndpoints, UserRange,
};

use Rule::*;

/// The reference table, in first-match order.
const ORACLE_V4: &[(&str, Rule)] = &[
    ("0.0.0.0/32", DenyNotGlobalUnicast),
    ("127.0.0.0/8", DenyNotGlobalUnicast),
    ("169.254.0.0/16", DenyNotGlobalUnicast),
    ("224.0.0.0/4", DenyNotGlobalUnicast),
    ("255.255.255.255/32", DenyNotGlobalUnicast),
    ("168.63.129.16/32", DenyMetadata),
    ("100.100.100.200/32", DenyMetadata),
    ("10.0.0.0/8", DenyPrivateRange),
    ("172.16.0.0/12", DenyPrivateRange),
    ("192.168.0.0/16", DenyPrivateRange),
    ("100.64.0.0/10", DenyCgnat),
    ("0.0.0.0/8", DenyReserved),
    ("192.0.0.0/24", DenyReserved),
    ("192.0.2.0/24", DenyReserved),
    ("192.88.99.0/24", DenyReserved),
    ("198.18.0.0/15", DenyReserved),
    ("198.51.100.0/24", DenyReserved),
    ("203.0.113.0/24", DenyReserved),
    ("240.0.0.0/4", DenyReserved),
];

const ORACLE_V6: &[(&str, Rule)] = &[
    ("::/128", DenyNotGlobalUnicast),
    ("::1/128", DenyNotGlobalUnicast),
    ("fe80::/10", DenyNotGlobalUnicast),
    ("ff00::/8", DenyNotGlobalUnicast),
    ("fd00:ec2::254/128", DenyMetadata),
    ("fc00::/7", DenyPrivateRange),
    ("64:ff9b::/96", DenyIpv6Embedding),
    ("64:ff9b:1::/48", DenyIpv6Embedding),
    ("2002::/16", DenyIpv6Embedding),
    ("2001::/32", DenyIpv6Embedding),
    ("::/96", DenyIpv6Embedding),
    ("100::/64", DenyReserved),
    ("2001::/23", DenyReserved),
    ("2001:db8::/32", DenyReserved),
    ("3fff::/20", DenyReserved),
    ("fec0::/10", DenyReserved),
];

fn net(s: &str) -> IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("oracle range {s}: {e}"))
}

/// The built-in table's verdict for `ip` (no user ranges, no self check).
fn oracle(ip: IpAddr, allow_private: bool) -> Rule {
    let ip = match ip {
        IpAddr::V6(v6) if v6.segments()[..6] == [0, 0, 0, 0, 0, 0xffff] => {
            let [.., a, b, c, d] = v6.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
        other => other,
    };
    let table = if ip.is_ipv4() { ORACLE_V4 } else { ORACLE_V6 };
    let hit = table
        .iter()
        .find(|(n, _)| net(n).contains(&ip))
        .map(|(_, r)| *r)
        .or_else(|| {
            let global = net("2000::/3");
            (ip.is_ipv6() && !global.contains(&ip)).then_some(DenyReserved)
        });
    match hit {
        Some(DenyPrivateRange) if allow_private => AllowDefault,
        Some(r) => r,
        None => AllowDefault,
    }
}

/// Whether any of `ranges` covers `ip:port`, IPv4 also via its mapped form.
fn covered(ranges: &[UserRange], ip: IpAddr, port: u16) -> bool {
    let v4 = match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    };
    ranges.iter().any(|r| {
        r.port.is_none_or(|p| p == port)
            && (r.net.contains(&ip)
                || v4.is_some_and(|a| {
                    r.net.contains(&IpAddr::V4(a))
                        || r.net.contains(&IpAddr::V6(a.to_ipv6_mapped()))
                }))
    })
}

fn mapped(a: Ipv4Addr) -> IpAddr {
    IpAddr::V6(a.to_ipv6_mapped())
}

// ---- strategies -------------------------------------------------------------

/// An address inside one of the table's networks (or an arbitrary one), so
/// every row is exercised and boundaries are hit often.
fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    let in_table = (0..ORACLE_V4.len(), any::<u32>(), any::<bool>()).prop_map(|(i, host, edge)| {
        let n = match net(ORACLE_V4[i].0) {
            IpNet::V4(n) => n,
            IpNet::V6(_) => unreachable!("v4 table"),
        };
        let base = u32::from(n.network());
        let hostmask = u32::from(n.hostmask());
        let host = if edge { host & 1 } else { host };
        // Also step just outside the range (either side) now and then.
        match host % 7 {
            0 => Ipv4Addr::from(base.wrapping_sub(1)),
            1 => Ipv4Addr::from((base | hostmask).wrapping_add(1)),
            2 => Ipv4Addr::from(base | hostmask),
            _ => Ipv4Addr::from(base | (host & hostmask)),
        }
    });
    prop_oneof![any::<u32>().prop_map(Ipv4Addr::from), in_table]
}

fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
    let in_table = (0..ORACLE_V6.len(), any::<u128>()).prop_map(|(i, host)| {
        let n = match net(ORACLE_V6[i].0) {
            IpNet::V6(n) => n,
            IpNet::V4(_) => unreachable!("v6 table"),
        };
        let base = u128::from(n.network());
        let hostmask = u128::from(n.hostmask());
        match host % 7 {
            0 => Ipv6Addr::from(base.wrapping_sub(1)),
            1 => Ipv6Addr::from((base | hostmask).wrapping_add(1)),
            2 => Ipv6Addr::from(base | hostmask),
            _ => Ipv6Addr::from(base | (host & hostmask)),
        }
    });
    let public = (any::<u128>()).prop_map(|h| Ipv6Addr::from((0x2u128 << 124) | (h >> 4)));
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        public,
        in_table,
        v4_addr().prop_map(|a| a.to_ipv6_mapped()),
        v4_addr().prop_map(|a| a.to_ipv6_compatible()),
    ]
}

fn ip_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_addr().prop_map(IpAddr::V4),
        v6_addr().prop_map(IpAddr::V6)
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(443u16), Just(4750), Just(8080), any::<u16>()]
}

/// A user range near interesting addresses: any prefix length, sometimes a port.
fn user_range() -> impl Strategy<Value = UserRange> {
    let v4 =
        (v4_addr(), 0u8..=32).prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(a, l).unwrap_or_default()));
    let v6 =
        (v6_addr(), 0u8..=128).prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(a, l).unwrap_or_default()));
    let v4_as_mapped = (v4_addr(), 96u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(a.to_ipv6_mapped(), l).unwrap_or_default()));
    (
        prop_oneof![v4, v6, v4_as_mapped],
        prop_oneof![3 => Just(None), 1 => port().prop_map(Some)],
    )
        .prop_map(|(net, port)| UserRange { net, port })
}

fn policy() -> impl Strategy<Value = AddressPolicy> {
    (
        prop::collection::vec(user_range(), 0..5),
        prop::collection::vec(user_range(), 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(allow, deny, unsafe_private, via_new)| {
            if via_new {
                AddressPolicy::new(allow, deny, unsafe_private)
            } else {
                AddressPolicy {
                    allow,
                    deny,
                    unsafe_allow_private_ranges: unsafe_private,
                }
            }
        })
}

fn self_endpoints() -> impl Strategy<Value = SelfEndpoints> {
    let listen_ip = prop_oneof![
        Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Just(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ip_addr(),
    ];
    (
        prop::collection::vec(
            (
                listen_ip,
                prop_oneof![Just(4750u16), Just(9810), any::<u16>()],
            ),
            0..3,
        ),
        prop::option::of(ip_addr()),
        prop::collection::vec(ip_addr(), 0..4),
    )
        .prop_map(|(listen, local_ip, local_addresses)| SelfEndpoints {
            listen: listen
                .into_iter()
                .map(|(ip, p)| SocketAddr::new(ip, p))
                .collect(),
            local_ip,
            local_addresses: local_addresses.into(),
        })
}

/// The forms an IPv6 address can embed an IPv4 address in (mapped aside).
fn embeddings(a: Ipv4Addr) -> Vec<(Ipv6Addr, Option<EmbeddingKind>)> {
    let v = u128::from(u32::from(a));
    vec![
        (a.to_ipv6_compatible(), Some(EmbeddingKind::Compatible)),
        (
            Ipv6Addr::from((0x64_ff9bu128 << 96) | v),
            Some(EmbeddingKind::Nat64),
        ),
        // Local-use NAT64 is denied but not decoded.
        (Ipv6Addr::from((0x64_ff9b_0001u128 << 80) | v), None),
        (
            Ipv6Addr::from((0x2002u128 << 112) | (v << 80) | 1),
            Some(EmbeddingKind::SixToFour),
        ),
        (
            // Teredo with server 65.54.227.120, flags 0x8000, port 0x63bf.
            Ipv6Addr::from(
                (0x2001_0000u128 << 96)
                    | (0x4136_e378u128 << 64)
                    | (0x8000_63bfu128 << 32)
                    | u128::from(!u32::from(a)),
            ),
            Some(EmbeddingKind::Teredo),
        ),
    ]
}

/// No listeners at all: nothing is a self connection.
fn nobody() -> SelfEndpoints {
    SelfEndpoints::default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Default policy: the implementation agrees with the oracle exactly.
    #[test]
    fn default_policy_matches_oracle(ip in ip_addr(), port in port(), unsafe_private in any::<bool>()) {
        let p = AddressPolicy { unsafe_allow_private_ranges: unsafe_private, ..AddressPolicy::default() };
        let got = p.classify(SocketAddr::new(ip, port), &nobody());
        let want = oracle(ip, unsafe_private);
        prop_assert_eq!(got, want, "{}", ip);
        prop_assert_eq!(got.allows(), want.allows());
    }

    /// A table deny is only ever lifted by a user allow range covering the
    /// address; a user allow is only ever reported when one covers it.
    #[test]
    fn table_denies_need_a_covering_allow(
        p in policy(), me in self_endpoints(), ip in ip_addr(), port in port()
    ) {
        let got = p.classify(SocketAddr::new(ip, port), &me);
        if !oracle(ip, p.unsafe_allow_private_ranges).allows() && got.allows() {
            prop_assert!(covered(&p.allow, ip, port), "{} allowed as {:?} without an allow range", ip, got);
        }
        if got == AllowUserConfigured {
            prop_assert!(covered(&p.allow, ip, port));
        }
        if got == DenyUserConfigured {
            prop_assert!(covered(&p.deny, ip, port));
        }
    }

    /// An IPv4-mapped address gets exactly the rule of its IPv4 address.
    #[test]
    fn mapped_is_judged_as_ipv4(
        p in policy(), me in self_endpoints(), a in v4_addr(), port in port()
    ) {
        let plain = p.classify(SocketAddr::new(IpAddr::V4(a), port), &me);
        let as_mapped = p.classify(SocketAddr::new(mapped(a), port), &me);
        prop_assert_eq!(plain, as_mapped, "{}", a);
        let d = AddressPolicy::default();
        prop_assert_eq!(
            d.classify(SocketAddr::new(IpAddr::V4(a), port), &nobody()),
            d.classify(SocketAddr::new(mapped(a), port), &nobody())
        );
    }

    /// Every embedding form of a denied IPv4 address is denied too (with no
    /// user ranges, and with user ranges that only name IPv4 space), and
    /// `embedded_ipv4` recovers the address.
    #[test]
    fn embeddings_of_denied_ipv4_are_denied(
        a in v4_addr(), v4_ranges in prop::collection::vec((v4_addr(), 0u8..=32, any::<bool>()), 0..4)
    ) {
        let mut allow = Vec::new();
        let mut deny = Vec::new();
        for (base, len, is_allow) in v4_ranges {
            let r = UserRange { net: IpNet::V4(Ipv4Net::new(base, len).unwrap_or_default()), port: None };
            if is_allow { allow.push(r) } else { deny.push(r) }
        }
        let user = AddressPolicy::new(allow, deny, false);
        let default = AddressPolicy::default();
        for p in [&default, &user] {
            let plain = p.classify(SocketAddr::new(IpAddr::V4(a), 443), &nobody());
            for (six, kind) in embeddings(a) {
                let got = p.classify(SocketAddr::new(IpAddr::V6(six), 443), &nobody());
                if !plain.allows() {
                    prop_assert!(!got.allows(), "{} embeds denied {} but got {:?}", six, a, got);
                }
                if let Some(kind) = kind {
                    // `::0.0.0.0` and `::0.0.0.1` are `::` and `::1`, not embeddings.
                    if !(kind == EmbeddingKind::Compatible && u32::from(a) <= 1) {
                        prop_assert_eq!(embedded_ipv4(six), Some((a, kind)));
                    }
                }
            }
        }
        prop_assert_eq!(embedded_ipv4(a.to_ipv6_mapped()), Some((a, EmbeddingKind::Mapped)));
    }

    /// Adding a deny range never turns a deny into an allow.
    #[test]
    fn extra_deny_never_allows(
        p in policy(), extra in user_range(), me in self_endpoints(), ip in ip_addr(), port in port()
    ) {
        let dst = SocketAddr::new(ip, port);
        let before = p.classify(dst, &me);
        let mut more = p.clone();
        more.deny.push(extra);
        let after = more.classify(dst, &me);
        if !before.allows() {
            prop_assert!(!after.allows(), "{} was {:?}, became {:?}", dst, before, after);
        }
        let rebuilt = AddressPolicy::new(more.allow.clone(), more.deny.clone(), more.unsafe_allow_private_ranges);
        prop_assert_eq!(rebuilt.classify(dst, &me), after);
    }

    /// Anything at all (untruncated networks, any port, any listeners) is
    /// classified without panicking, and self connections stay denied.
    #[test]
    fn never_panics(
        raw_allow in prop::collection::vec((any::<u128>(), 0u8..=128, any::<bool>(), any::<Option<u16>>()), 0..4),
        ip in any::<IpAddr>(), port in any::<u16>(), me in self_endpoints(), unsafe_private in any::<bool>()
    ) {
        let allow: Vec<UserRange> = raw_allow
            .into_iter()
            .map(|(bits, len, v4, port)| {
                let net = if v4 {
                    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(bits as u32), len % 33).unwrap_or_default())
                } else {
                    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(bits), len).unwrap_or_default())
                };
                UserRange { net, port }
            })
            .collect();
        let p = AddressPolicy { allow: allow.clone(), deny: Vec::new(), unsafe_allow_private_ranges: unsafe_private };
        let dst = SocketAddr::new(ip, port);
        let got = p.classify(dst, &me);
        let normalised = AddressPolicy::new(allow, Vec::new(), unsafe_private);
        prop_assert_eq!(normalised.classify(dst, &me), got);
        for l in &me.listen {
            prop_assert_eq!(p.classify(*l, &me), DenySelfConnection);
            // A wildcard listener answers on every local interface address.
            if l.ip().is_unspecified() {
                for a in me.local_addresses.iter() {
                    prop_assert_eq!(p.classify(SocketAddr::new(*a, l.port()), &me), DenySelfConnection);
                }
            }
        }
    }
}
