//! Where a request wants to go: CONNECT authority-form and absolute-form
//! `http://` URIs, with host normalisation (case, trailing dot, IDNA,
//! IPv4/IPv6 literals including non-canonical IPv4 spellings).
//!
//! Invariant: what the rest of the core checks is exactly what the shell
//! would dial. A host that could be read two ways is refused.

use std::fmt;
use std::net::IpAddr;

/// A normalised destination host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lowercase ASCII (punycode) DNS name, no trailing dot.
    Name(String),
    /// An address literal (IPv6 zone ids are refused, never parsed).
    Ip(IpAddr),
}

impl Host {
    /// The string ACL globs are matched against (name, or the address text).
    pub fn acl_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Host::Name(n) => std::borrow::Cow::Borrowed(n.as_str()),
            Host::Ip(ip) => std::borrow::Cow::Owned(ip.to_string()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
    /// The authority as the client wrote it (userinfo never included): what
    /// logs call `requested_host` and deny messages quote. For CONNECT this is
    /// `host:port`; for absolute-form it is the URI's host[:port].
    pub requested: String,
}

/// An absolute-form `http://` request target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsoluteUri {
    pub target: Target,
    /// Origin-form path and query to send upstream (at least `/`).
    pub path_and_query: String,
}

/// Why a request target or host was refused. `Display` is the client-facing text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    Todo,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid request target")
    }
}

impl std::error::Error for TargetError {}

/// Normalise a host as it appears in an authority (IPv6 in brackets).
pub fn normalise_host(_raw: &str) -> Result<Host, TargetError> {
    todo!("helper: host normalisation")
}

/// Parse a CONNECT request target (`host:port`, `[v6]:port`; port required).
pub fn parse_connect_target(_raw: &str) -> Result<Target, TargetError> {
    todo!("helper: authority-form")
}

/// Parse an absolute-form URI. Only `http` is accepted; `https` gets its own
/// error telling the client to use CONNECT.
pub fn parse_absolute_uri(_raw: &str) -> Result<AbsoluteUri, TargetError> {
    todo!("helper: absolute-form")
}
