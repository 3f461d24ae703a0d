//! Round trips between the test-side PROXY protocol encoder
//! (`tests/common/proxy_header.rs`) and `core::proxy_protocol::parse`.

#[path = "common/proxy_header.rs"]
mod proxy_header;

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use proxy_header::{render_v1, render_v2, v6};
use smokescreen::core::proxy_protocol::{parse, Addresses, DEFAULT_MAX_LEN, V1_MAX_LEN};

fn sa(s: &str) -> SocketAddr {
    match s.parse() {
        Ok(a) => a,
        Err(e) => panic!("{s}: {e}"),
    }
}

#[test]
fn every_prefix_of_a_valid_header_asks_for_more() {
    for full in [
        render_v1(&Addresses::Proxied {
            source: sa("[2001:db8::1]:1"),
            destination: sa("[2001:db8::2]:2"),
        }),
        render_v2(&Addresses::Proxied {
            source: sa("192.0.2.1:1"),
            destination: sa("192.0.2.2:2"),
        }),
    ] {
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n], DEFAULT_MAX_LEN), Ok(None), "prefix {n}");
        }
        assert!(parse(&full, DEFAULT_MAX_LEN).unwrap().is_some());
    }
}

fn any_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

proptest! {
    #[test]
    fn v1_round_trips(s in any_addr(), d in any_addr()) {
        let a = Addresses::Proxied { source: s, destination: d };
        let bytes = render_v1(&a);
        prop_assert!(bytes.len() <= V1_MAX_LEN);
        let h = parse(&bytes, DEFAULT_MAX_LEN).unwrap().unwrap();
        prop_assert_eq!(h.len, bytes.len());
        if s.is_ipv4() == d.is_ipv4() {
            prop_assert_eq!(h.addresses, a);
        } else {
            prop_assert_eq!(h.addresses, Addresses::Unknown);
        }
    }

    #[test]
    fn v2_round_trips(s in any_addr(), d in any_addr(), extra in proptest::collection::vec(any::<u8>(), 0..40)) {
        let a = Addresses::Proxied { source: s, destination: d };
        let mut bytes = render_v2(&a);
        let len = bytes.len();
        bytes.extend_from_slice(&extra);
        let h = parse(&bytes, DEFAULT_MAX_LEN).unwrap().unwrap();
        prop_assert_eq!(h.len, len);
        let want = if s.is_ipv4() && d.is_ipv4() {
            a
        } else {
            Addresses::Proxied {
                source: SocketAddr::new(IpAddr::V6(v6(s.ip())), s.port()),
                destination: SocketAddr::new(IpAddr::V6(v6(d.ip())), d.port()),
            }
        };
        prop_assert_eq!(h.addresses, want);
    }
}
