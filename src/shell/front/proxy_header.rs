//! Reading the PROXY protocol header off a new connection (`--proxy-protocol`).
//! The rules are in `core::proxy_protocol` and `spec/proxy_protocol.md`;
//! this only reads bytes, bounded in size by the core and in time by the
//! header timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::shell::transport::net::Tcp;
use ipnet::IpNet;

use crate::core::proxy_protocol::{self, ProxyHeaderError};
use crate::shell::transport::io::read_more_timeout;

/// The error text for a peer that closed without sending anything.
pub const CLOSED_EARLY: &str = "connection closed before a request";

/// PROXY protocol settings.
#[derive(Clone, Debug)]
pub struct ProxyProtocol {
    /// Peers allowed to send a header.
    pub trusted: Vec<IpNet>,
    /// Largest v2 header accepted.
    pub max_len: usize,
}

/// Read bytes until the core can tell whether (and which) header is there.
/// Returns the client's address and the bytes read past the header.
pub async fn read(
    tcp: &Tcp,
    peer: SocketAddr,
    settings: &ProxyProtocol,
    limit: Duration,
) -> Result<(SocketAddr, Vec<u8>), (SocketAddr, String)> {
    let trusted = proxy_protocol::trusted(peer.ip(), &settings.trusted);
    let started = Instant::now();
    let mut buf = Vec::new();
    loop {
        if !trusted {
            // Anyone else may not claim an address: look only at the signature.
            match proxy_protocol::looks_like_header(&buf) {
                Some(false) => return Ok((peer, buf)),
                Some(true) => {
                    return Err((
                        peer,
                        "PROXY protocol header from an untrusted peer".to_string(),
                    ))
                }
                None => {}
            }
        } else {
            match proxy_protocol::parse(&buf, settings.max_len) {
                Ok(Some(header)) => {
                    let rest = buf.split_off(header.len.min(buf.len()));
                    return Ok((header.client_addr(peer), rest));
                }
                Ok(None) => {}
                Err(ProxyHeaderError::NotProxyProtocol) => {
                    return Err((
                        peer,
                        "missing PROXY protocol header from a trusted peer".to_string(),
                    ))
                }
                Err(e) => return Err((peer, e.to_string())),
            }
        }
        let left = limit.saturating_sub(started.elapsed());
        match read_more_timeout(tcp, &mut buf, left).await {
            Ok(0) => return Err((peer, CLOSED_EARLY.to_string())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err((
                    peer,
                    "timed out reading the PROXY protocol header".to_string(),
                ))
            }
            Err(e) => return Err((peer, e.to_string())),
        }
    }
}
