//! A DNS client for `--resolver-address`: the sockets and timers around
//! `core::dns`, which builds the queries and judges the answers.
//!
//! For each name, A and AAAA are asked at once, each from a fresh UDP
//! socket (so the kernel picks a new random source port) with a random
//! transaction id; replies that do not match id and question are ignored
//! (they may be spoofed) and the real one is still awaited. A truncated
//! reply is asked again over TCP. Servers are tried in the order given,
//! moving on when one fails or does not answer in its share of the DNS
//! timeout; an NXDOMAIN is final. The whole lookup is bounded by the
//! DNS timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::shell::runtime::{self, ReadExt as _, TcpStream, UdpSocket, WriteExt as _};

use crate::core::dns::{self, Answer, DnsError, QueryType};
use crate::core::lookup::{LookupCause, LookupError};
use crate::shell::resolve::Resolved;

/// Largest UDP reply read (EDNS payloads above 1232 are truncated to TCP anyway).
const UDP_BUFFER: usize = 4096;

/// A failed attempt against one server.
#[derive(Debug)]
enum Failure {
    /// The server's answer, final for this name (NXDOMAIN).
    Final(DnsError),
    /// Try the next server (timeout, network error, SERVFAIL…).
    Retry(LookupCause),
}

/// Queries the configured servers.
#[derive(Clone, Debug)]
pub struct DnsClient {
    pub servers: Vec<SocketAddr>,
    pub timeout: Duration,
}

impl DnsClient {
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> DnsClient {
        DnsClient { servers, timeout }
    }

    /// Addresses for a normalised `name`: IPv4 first, then IPv6. The error
    /// names the last server tried.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        self.lookup_chain(name).await.map(|r| r.ips)
    }

    /// [`DnsClient::lookup`] with the names the CNAME chains of the A and
    /// AAAA answers led through, for the core to judge.
    pub async fn lookup_chain(&self, name: &str) -> Result<Resolved, LookupError> {
        let started = Instant::now();
        let count = u32::try_from(self.servers.len().max(1)).unwrap_or(u32::MAX);
        let share = self.timeout / count;
        let mut last = LookupError::new(
            name,
            None,
            LookupCause::Other("no DNS server configured".into()),
        );
        for (i, server) in self.servers.iter().enumerate() {
            let left = self.timeout.saturating_sub(started.elapsed());
            // The last server gets whatever time is left.
            let budget = if i + 1 == self.servers.len() {
                left
            } else {
                share.min(left)
            };
            if budget.is_zero() {
                break;
            }
            let a = ask_with_fallback(*server, name, QueryType::A, budget);
            let aaaa = ask_with_fallback(*server, name, QueryType::Aaaa, budget);
            let (a, aaaa) = futures_lite::future::zip(a, aaaa).await;
            let mut aliases: Vec<String> = Vec::new();
            let mut split = |r: Result<(Vec<IpAddr>, Vec<String>), Failure>| match r {
                Ok((v, names)) => {
                    for n in names {
                        if !aliases.contains(&n) {
                            aliases.push(n);
                        }
                    }
                    (Ok(v), None)
                }
                Err(Failure::Final(e)) => (Err(e), None),
                Err(Failure::Retry(cause)) => (Err(DnsError::ServerFailure), Some(cause)),
            };
            let ((a, a_retry), (aaaa, aaaa_retry)) = (split(a), split(aaaa));
            match dns::merge(a, aaaa) {
                Ok(ips) => return Ok(Resolved { ips, aliases }),
                Err(DnsError::NoSuchHost) => {
                    return Err(LookupError::new(
                        name,
                        Some(*server),
                        LookupCause::NoSuchHost,
                    ))
                }
                Err(e) => {
                    let cause = a_retry.or(aaaa_retry).unwrap_or_else(|| (&e).into());
                    last = LookupError::new(name, Some(*server), cause);
                }
            }
        }
        Err(last)
    }
}

/// One question to one server: UDP, then TCP if the answer was truncated.
async fn ask_with_fallback(
    server: SocketAddr,
    name: &str,
    qtype: QueryType,
    budget: Duration,
) -> Result<(Vec<IpAddr>, Vec<String>), Failure> {
    let deadline = Instant::now() + budget;
    let attempt = async {
        match ask_udp(server, name, qtype).await? {
            Answer::Addresses { ips, aliases } => Ok((ips, aliases)),
            Answer::Truncated => match ask_tcp(server, name, qtype).await? {
                Answer::Addresses { ips, aliases } => Ok((ips, aliases)),
                Answer::Truncated => Err(Failure::Retry(LookupCause::Other(
                    "truncated answer over TCP".into(),
                ))),
            },
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match runtime::deadline(left, attempt).await {
        Some(r) => r,
        None => Err(Failure::Retry(LookupCause::Timeout)),
    }
}

fn random_id() -> Result<u16, Failure> {
    let mut b = [0u8; 2];
    getrandom::getrandom(&mut b)
        .map_err(|e| Failure::Retry(LookupCause::Other(format!("random id: {e}"))))?;
    Ok(u16::from_be_bytes(b))
}

fn judge(result: Result<Answer, DnsError>) -> Result<Option<Answer>, Failure> {
    match result {
        Ok(answer) => Ok(Some(answer)),
        Err(DnsError::NotOurs(_)) => Ok(None),
        Err(DnsError::NoSuchHost) => Err(Failure::Final(DnsError::NoSuchHost)),
        Err(e) => Err(Failure::Retry((&e).into())),
    }
}

async fn ask_udp(server: SocketAddr, name: &str, qtype: QueryType) -> Result<Answer, Failure> {
    let id = random_id()?;
    let query = dns::build_query(id, name, qtype).map_err(Failure::Final)?;
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let io = |e: std::io::Error| Failure::Retry(LookupCause::Other(e.to_string()));
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // A connected socket only receives datagrams from the server's address.
    socket.connect(server).await.map_err(io)?;
    socket.send(&query).await.map_err(io)?;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        let reply = buf.get(..n).unwrap_or_default();
        // Replies for someone else's question are dropped; keep waiting
        // (the caller's timeout bounds this loop).
        if let Some(answer) = judge(dns::parse_response(reply, id, name, qtype))? {
            return Ok(answer);
        }
    }
}

async fn ask_tcp(server: SocketAddr, name: &str, qtype: QueryType) -> Result<Answer, Failure> {
    let id = random_id()?;
    let query = dns::build_query(id, name, qtype).map_err(Failure::Final)?;
    let io = |e: std::io::Error| Failure::Retry(LookupCause::Other(e.to_string()));
    let mut stream = TcpStream::connect(server).await.map_err(io)?;
    let len = u16::try_from(query.len())
        .map_err(|_| Failure::Retry(LookupCause::Other("query too long".into())))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.map_err(io)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(io)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.map_err(io)?;
    match judge(dns::parse_response(&reply, id, name, qtype))? {
        Some(answer) => Ok(answer),
        // Over TCP there is no one else to wait for.
        None => Err(Failure::Retry(LookupCause::Other(
            "TCP answer does not match the query".into(),
        ))),
    }
}
