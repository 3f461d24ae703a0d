//! The PROXY protocol (HAProxy, v1 text and v2 binary): a load balancer in
//! front of the proxy prefixes each connection with the client's real
//! address. Only peers the operator trusts may do that; anyone else could
//! claim any source address and walk past logs and source-based controls.
//!
//! Parsing is delegated to the `ppp` crate (bounds-checked, no `unsafe`);
//! this module adds what a server needs on top of it: a size cap checked
//! before anything is buffered, a strict "need more bytes" that can never
//! wait forever on a line that is already complete, the mapping of every
//! v2 shape to "use these addresses" or "use the real peer", and the trust
//! decision. Rendering lives with the tests (`tests/common/proxy_header.rs`):
//! the proxy only ever reads these headers.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The v1 header's maximum size, CRLF included (the specification's figure).
pub const V1_MAX_LEN: usize = 107;
/// v2's fixed part: signature, version/command, family/protocol, length.
pub const V2_FIXED_LEN: usize = 16;
/// The v2 signature.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Default cap on a whole v2 header. Addresses take at most 216 bytes; the
/// rest is TLVs (a load balancer's extras), which we ignore, so 4 KiB is
/// generous while keeping a hostile peer from making us buffer 64 KiB.
pub const DEFAULT_MAX_LEN: usize = 4096;

/// What the header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// A proxied TCP connection: the client's address and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v2 LOCAL: the sender's own connection (a health check); use the real peer.
    Local,
    /// v1 UNKNOWN, or a v2 family/transport we do not carry (UNSPEC, UNIX,
    /// UDP): use the real peer, as the specification asks.
    Unknown,
}

/// Protocol version of a parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A complete, valid header at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub addresses: Addresses,
    /// Bytes the header occupies; what follows belongs to the client's protocol.
    pub len: usize,
}

impl Header {
    /// The source address to log and judge the client by.
    pub fn client_addr(&self, peer: SocketAddr) -> SocketAddr {
        match self.addresses {
            Addresses::Proxied { source, .. } => source,
            Addresses::Local | Addresses::Unknown => peer,
        }
    }
}

/// Why the bytes are not an acceptable header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyHeaderError {
    /// The bytes do not start with either signature (an ordinary client).
    NotProxyProtocol,
    /// A v2 header declaring more bytes than the configured cap.
    TooLong { declared: usize, limit: usize },
    /// A v1 line longer than 107 bytes without its CRLF.
    V1TooLong,
    /// The signature matched but the rest is malformed.
    Invalid(String),
}

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHeaderError::NotProxyProtocol => f.write_str("no PROXY protocol header"),
            ProxyHeaderError::TooLong { declared, limit } => write!(
                f,
                "PROXY protocol v2 header of {declared} bytes exceeds the limit of {limit}"
            ),
            ProxyHeaderError::V1TooLong => {
                write!(f, "PROXY protocol v1 header longer than {V1_MAX_LEN} bytes")
            }
            ProxyHeaderError::Invalid(why) => write!(f, "invalid PROXY protocol header: {why}"),
        }
    }
}

impl std::error::Error for ProxyHeaderError {}

/// Does `buf` start with (a prefix of) a PROXY protocol signature? `None`
/// when too few bytes have arrived to tell.
pub fn looks_like_header(buf: &[u8]) -> Option<bool> {
    const V1: &[u8] = b"PROXY ";
    let prefix_of = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf.get(..n) == sig.get(..n)
    };
    let (v1, v2) = (prefix_of(V1), prefix_of(V2_SIGNATURE));
    if !v1 && !v2 {
        return Some(false);
    }
    if (v1 && buf.len() >= V1.len()) || (v2 && buf.len() >= V2_SIGNATURE.len()) {
        return Some(true);
    }
    None
}

/// Parse a header at the start of `buf`. `Ok(None)`: a valid prefix, read
/// more (never more than `max_len` bytes in all). `max_len` caps v2; v1 is
/// always capped at [`V1_MAX_LEN`].
pub fn parse(buf: &[u8], max_len: usize) -> Result<Option<Header>, ProxyHeaderError> {
    match looks_like_header(buf) {
        Some(false) => return Err(ProxyHeaderError::NotProxyProtocol),
        None => return Ok(None),
        Some(true) => {}
    }
    if buf.starts_with(V2_SIGNATURE) {
        parse_v2(buf, max_len)
    } else {
        parse_v1(buf)
    }
}

fn parse_v2(buf: &[u8], max_len: usize) -> Result<Option<Header>, ProxyHeaderError> {
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(None);
    };
    let declared = V2_FIXED_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    if declared > max_len {
        return Err(ProxyHeaderError::TooLong {
            declared,
            limit: max_len,
        });
    }
    if buf.len() < declared {
        return Ok(None);
    }
    let header = ppp::v2::Header::try_from(buf.get(..declared).unwrap_or_default())
        .map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?;
    use ppp::v2::{Addresses as A, Command, Protocol};
    let addresses = match (header.command, header.protocol, header.addresses) {
        (Command::Local, _, _) => Addresses::Local,
        (Command::Proxy, Protocol::Stream, A::IPv4(a)) => Addresses::Proxied {
            source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        },
        (Command::Proxy, Protocol::Stream, A::IPv6(a)) => Addresses::Proxied {
            source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        },
        (Command::Proxy, _, _) => Addresses::Unknown,
    };
    Ok(Some(Header {
        version: Version::V2,
        addresses,
        len: declared,
    }))
}

fn parse_v1(buf: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    // The line ends at the first LF; without one, wait (up to the cap).
    let window = buf.get(..buf.len().min(V1_MAX_LEN)).unwrap_or_default();
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    let line = window.get(..=lf).unwrap_or_default();
    if !line.ends_with(b"\r\n") || line.iter().filter(|&&b| b == b'\r').count() != 1 {
        return Err(ProxyHeaderError::Invalid(
            "v1 line must end with a single CRLF".to_string(),
        ));
    }
    // The line is complete, so anything ppp calls partial is malformed here.
    let header = ppp::v1::Header::try_from(line).map_err(|e| {
        ProxyHeaderError::Invalid(match e {
            ppp::v1::BinaryParseError::InvalidUtf8(_) => "v1 line is not valid UTF-8".to_string(),
            ppp::v1::BinaryParseError::Parse(p) => p.to_string(),
        })
    })?;
    if header.header.len() != line.len() {
        return Err(ProxyHeaderError::Invalid(
            "v1 line has trailing fields".to_string(),
        ));
    }
    use ppp::v1::Addresses as A;
    let addresses = match header.addresses {
        A::Tcp4(a) => Addresses::Proxied {
            source: SocketAddr::new(IpAddr::V4(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V4(a.destination_address), a.destination_port),
        },
        A::Tcp6(a) => Addresses::Proxied {
            source: SocketAddr::new(IpAddr::V6(a.source_address), a.source_port),
            destination: SocketAddr::new(IpAddr::V6(a.destination_address), a.destination_port),
        },
        A::Unknown => Addresses::Unknown,
    };
    Ok(Some(Header {
        version: Version::V1,
        addresses,
        len: line.len(),
    }))
}

/// May `peer` send a PROXY header? IPv4-mapped IPv6 peers (what a dual-stack
/// listener reports for IPv4 clients) are judged as the IPv4 address.
pub fn trusted(peer: IpAddr, ranges: &[IpNet]) -> bool {
    let peer = canonical(peer);
    ranges.iter().any(|r| r.contains(&peer))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_is_read_and_followed_bytes_are_left() {
        let mut buf = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 4750\r\n".to_vec();
        let len = buf.len();
        buf.extend_from_slice(b"CONNECT example.com:443 HTTP/1.1\r\n");
        let h = parse(&buf, DEFAULT_MAX_LEN).unwrap().unwrap();
        assert_eq!(h.len, len);
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.client_addr(sa("127.0.0.1:1")), sa("203.0.113.7:51000"));
    }

    #[test]
    fn v2_over_the_cap_is_refused_before_it_is_buffered() {
        let mut buf = V2_SIGNATURE.to_vec();
        buf.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(
            parse(&buf, DEFAULT_MAX_LEN),
            Err(ProxyHeaderError::TooLong {
                declared: 16 + 65535,
                limit: DEFAULT_MAX_LEN
            })
        );
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_ranges() {
        let ranges: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(trusted("::ffff:10.1.2.3".parse().unwrap(), &ranges));
        assert!(!trusted("::ffff:11.1.2.3".parse().unwrap(), &ranges));
        assert!(!trusted("10.1.2.3".parse().unwrap(), &[]));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..300), cap in 0usize..5000) {
            let _ = parse(&buf, cap);
        }

        #[test]
        fn never_panics_after_a_signature(v2 in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = if v2 { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
            buf.extend_from_slice(&tail);
            if let Ok(Some(h)) = parse(&buf, DEFAULT_MAX_LEN) {
                prop_assert!(h.len <= buf.len());
            }
        }

    }
}
