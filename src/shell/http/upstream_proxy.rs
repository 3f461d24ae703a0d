//! Leaving through an upstream (parent) proxy. `core::upstream` decides
//! whether a request goes through one; this module dials it and, for
//! CONNECT, asks it for the tunnel. The destination was checked by the ACL
//! and the address rules before any of this runs; the upstream proxy's own
//! address is dialled as configured, and it resolves the name again.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::core::addr::{AddressPolicy, Rule, SelfEndpoints};
use crate::core::decision::{self, Approved, Refusal};
use crate::core::head::{HeadLimits, ResponseParser};
use crate::core::target::{normalise_host, Host, Target};
use crate::core::upstream::ProxyUrl;
use crate::shell::http::forward::Upstream;
use crate::shell::observe::connect_failure::ConnectFailure;
use crate::shell::observe::metrics;
use crate::shell::resolve::Resolver;
use crate::shell::runtime;
use crate::shell::serve::state::Shared;
use crate::shell::transport::io::{read_more_timeout, write_all};
use crate::shell::transport::net::Tcp;

/// Why the upstream proxy did not give us a connection. `Display` follows
/// "Failed to connect to remote host: " in the 502 the client gets.
#[derive(Debug)]
pub enum UpstreamProxyError {
    /// The proxy's name did not resolve, or no address accepted.
    Dial(String, io::Error),
    /// No connection, or no answer to CONNECT, within the connect timeout.
    Timeout(String, Duration),
    /// The proxy answered CONNECT with something other than 2xx.
    Refused(String, u16, String),
    /// The proxy's answer was not an HTTP response (or it closed).
    BadResponse(String, String),
    /// An `https://` proxy (named by a client): TLS to a proxy is not built.
    Tls(String),
    /// A proxy the client named resolved only to addresses the address
    /// rules refuse (the first refusal's rule).
    Denied(String, IpAddr, Rule),
}

impl UpstreamProxyError {
    pub fn timed_out(&self) -> bool {
        matches!(self, UpstreamProxyError::Timeout(..))
    }

    /// The connect-error metrics' cause of a failed dial.
    pub fn failure(&self) -> ConnectFailure {
        match self {
            UpstreamProxyError::Dial(_, e) => ConnectFailure::of(e),
            UpstreamProxyError::Timeout(..) => ConnectFailure::Timeout,
            _ => ConnectFailure::Unknown,
        }
    }
}

impl fmt::Display for UpstreamProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamProxyError::Dial(p, e) => write!(f, "upstream proxy {p}: {e}"),
            UpstreamProxyError::Timeout(p, limit) => {
                write!(f, "upstream proxy {p}: i/o timeout after {limit:?}")
            }
            UpstreamProxyError::Refused(p, status, reason) => {
                write!(f, "upstream proxy {p} refused CONNECT: {status} {reason}")
            }
            UpstreamProxyError::BadResponse(p, problem) => {
                write!(f, "upstream proxy {p}: {problem}")
            }
            UpstreamProxyError::Denied(p, ip, rule) => write!(
                f,
                "upstream proxy {p}: the address {ip} was denied by rule '{rule}'"
            ),
            UpstreamProxyError::Tls(p) => write!(
                f,
                "upstream proxy {p}: TLS to an upstream proxy (https://) is not supported by this proxy"
            ),
        }
    }
}

impl std::error::Error for UpstreamProxyError {}

/// Whose proxy is dialled: the operator's (flags, config, environment) is
/// dialled as configured; one a client named in `X-Upstream-Https-Proxy`
/// is a destination like any other, and only the addresses the core's
/// address rules allow (self connection included) are dialled.
#[derive(Clone, Copy)]
pub enum Chosen<'a> {
    ByOperator,
    ByClient(&'a AddressPolicy, &'a SelfEndpoints),
}

/// Connect to the proxy itself within `limit`. A name is resolved as
/// destinations are (static hosts, `--resolver-address` or the system).
pub async fn dial(
    proxy: &ProxyUrl,
    resolver: &Resolver,
    limit: Duration,
    chosen: Chosen<'_>,
) -> Result<(Tcp, SocketAddr), UpstreamProxyError> {
    let name = proxy.authority.clone();
    let mut denied = None;
    let attempt = async {
        let ips = match normalise_host(&proxy.host) {
            Ok(Host::Ip(ip)) => vec![ip],
            Ok(Host::Name(n)) => resolver.lookup(&n).await.map_err(io::Error::other)?,
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in ips.into_iter().map(|ip| SocketAddr::new(ip, proxy.port)) {
            if let Chosen::ByClient(rules, me) = chosen {
                let rule = rules.classify(addr, me);
                if !rule.allows() {
                    denied.get_or_insert((addr.ip(), rule));
                    continue;
                }
            }
            match Tcp::connect(addr).await {
                Ok(tcp) => return Ok((tcp, addr)),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let result = runtime::timeout(limit, attempt).await;
    match (result, denied) {
        (Ok(ok), _) => Ok(ok),
        (Err(e), _) if e.kind() == io::ErrorKind::TimedOut => {
            Err(UpstreamProxyError::Timeout(name, limit))
        }
        (Err(_), Some((ip, rule))) => Err(UpstreamProxyError::Denied(name, ip, rule)),
        (Err(e), None) => Err(UpstreamProxyError::Dial(name, e)),
    }
}

/// The authority asked of the upstream: the checked, normalised host
/// (punycode, bracketed IPv6) and port.
pub fn authority(target: &Target) -> String {
    format!("{}:{}", target.host.uri_str(), target.port)
}

/// The CONNECT request for `target`, with the proxy's credentials if any.
pub fn connect_request(proxy: &ProxyUrl, target: &Target) -> Vec<u8> {
    let authority = authority(target);
    let mut out = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        out.push_str("Proxy-Authorization: ");
        out.push_str(auth);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Dial the proxy and open a tunnel to `target` through it. Returns the
/// connection and any bytes the proxy sent past its 2xx answer (they belong
/// to the destination's side of the tunnel).
pub async fn connect(
    proxy: &ProxyUrl,
    resolver: &Resolver,
    target: &Target,
    limit: Duration,
    chosen: Chosen<'_>,
) -> Result<(Tcp, SocketAddr, Vec<u8>), UpstreamProxyError> {
    if proxy.tls {
        return Err(UpstreamProxyError::Tls(proxy.authority.clone()));
    }
    let (tcp, addr) = dial(proxy, resolver, limit, chosen).await?;
    let name = || proxy.authority.clone();
    let bad = |problem: String| UpstreamProxyError::BadResponse(name(), problem);
    if let Err(e) = write_all(&tcp, &connect_request(proxy, target)).await {
        return Err(UpstreamProxyError::Dial(name(), e));
    }
    let mut buf = Vec::new();
    let mut parser = ResponseParser::default();
    let head = loop {
        // A 2xx to CONNECT has no body, whatever its headers say.
        match parser.parse(&buf, &HeadLimits::default(), true) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) => return Err(bad(e.to_string())),
        }
        match read_more_timeout(&tcp, &mut buf, limit).await {
            Ok(0) => return Err(bad("closed before answering CONNECT".to_string())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(UpstreamProxyError::Timeout(name(), limit))
            }
            Err(e) => return Err(bad(e.to_string())),
        }
    };
    if !(200..300).contains(&head.status) {
        let _ = tcp.shutdown(std::net::Shutdown::Both);
        return Err(UpstreamProxyError::Refused(
            name(),
            head.status,
            head.reason,
        ));
    }
    let rest = buf.get(head.head_len..).unwrap_or_default().to_vec();
    Ok((tcp, addr, rest))
}

/// A failure as the client's 502/504 and the metrics see it.
fn refused(approved: Approved, e: &UpstreamProxyError) -> Box<Refusal> {
    Box::new(decision::dial_failed(
        approved,
        &e.to_string(),
        e.timed_out(),
    ))
}

fn count(started: std::time::Instant, result: &Result<impl Sized, UpstreamProxyError>) {
    let failure = result.as_ref().err().map(UpstreamProxyError::failure);
    metrics::get().dialled(started.elapsed(), failure);
}

/// CONNECT through `proxy`: the connection, the approval, bytes the proxy
/// sent past its answer, and the proxy's `host:port` for the log.
pub async fn connect_for(
    shared: &Shared,
    approved: Approved,
    proxy: &ProxyUrl,
    chosen: Chosen<'_>,
) -> Result<(Tcp, Approved, Vec<u8>, Option<String>), Box<Refusal>> {
    let started = std::time::Instant::now();
    let limit = shared.settings.connect_timeout;
    let result = connect(proxy, &shared.resolver, &approved.target, limit, chosen).await;
    count(started, &result);
    match result {
        Ok((tcp, _, rest)) => {
            let _ = tcp.set_nodelay(true);
            Ok((tcp, approved, rest, Some(proxy.authority.clone())))
        }
        Err(e) => Err(refused(approved, &e)),
    }
}

/// A connection to `proxy` for one absolute-form request.
pub async fn dial_for(
    shared: &Shared,
    approved: Approved,
    proxy: &ProxyUrl,
) -> Result<(Upstream, Approved, bool), Box<Refusal>> {
    let started = std::time::Instant::now();
    let limit = shared.settings.connect_timeout;
    let result = dial(proxy, &shared.resolver, limit, Chosen::ByOperator).await;
    count(started, &result);
    match result {
        Ok((tcp, addr)) => {
            let _ = tcp.set_nodelay(true);
            let mut upstream = Upstream::new(tcp, addr);
            upstream.via_proxy = Some(proxy.clone());
            Ok((upstream, approved, false))
        }
        Err(e) => Err(refused(approved, &e)),
    }
}
