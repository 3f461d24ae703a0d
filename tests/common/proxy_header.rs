//! The sending side of the PROXY protocol, for tests: what a load balancer
//! writes before the client's bytes. The proxy only ever reads these headers,
//! so the encoder lives here, not in `core::proxy_protocol`. It is our own
//! (not `ppp`'s builder, which the parser is built on) so the round-trip
//! properties compare two independent codecs.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use smokescreen::core::proxy_protocol::{Addresses, V2_SIGNATURE};

/// Render a v1 header. Mixed families cannot be expressed in v1 and render
/// as `UNKNOWN`, as does anything but [`Addresses::Proxied`].
pub fn render_v1(addresses: &Addresses) -> Vec<u8> {
    let text = match addresses {
        Addresses::Proxied {
            source: SocketAddr::V4(s),
            destination: SocketAddr::V4(d),
        } => format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        Addresses::Proxied {
            source: SocketAddr::V6(s),
            destination: SocketAddr::V6(d),
        } => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        _ => "PROXY UNKNOWN\r\n".to_string(),
    };
    text.into_bytes()
}

/// Render a v2 header (no TLVs). Mixed families are widened to IPv6 with
/// IPv4-mapped addresses.
pub fn render_v2(addresses: &Addresses) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    let (command, family, body): (u8, u8, Vec<u8>) = match addresses {
        Addresses::Local => (0x20, 0x00, Vec::new()),
        Addresses::Unknown => (0x21, 0x00, Vec::new()),
        Addresses::Proxied {
            source,
            destination,
        } => match (source.ip(), destination.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                0x21,
                0x11,
                addr_body(&s.octets(), &d.octets(), source, destination),
            ),
            (s, d) => (
                0x21,
                0x21,
                addr_body(&v6(s).octets(), &v6(d).octets(), source, destination),
            ),
        },
    };
    out.push(command);
    out.push(family);
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// IPv4 widened to IPv4-mapped IPv6, as v2 carries mixed families.
pub fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn addr_body(s: &[u8], d: &[u8], source: &SocketAddr, destination: &SocketAddr) -> Vec<u8> {
    let mut body = Vec::with_capacity(36);
    body.extend_from_slice(s);
    body.extend_from_slice(d);
    body.extend_from_slice(&source.port().to_be_bytes());
    body.extend_from_slice(&destination.port().to_be_bytes());
    body
}
