//! Where a request wants to go: CONNECT authority-form and absolute-form
//! `http://` URIs, with host normalisation (case, trailing dot, IDNA,
//! IPv4/IPv6 literals including non-canonical IPv4 spellings).
//!
//! Invariant: what the rest of the core checks is exactly what the shell
//! would dial. A host that could be read two ways is refused.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest DNS name we accept (RFC 1035, without the trailing dot).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

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

    /// The host as it must be written inside an authority (`Host` header,
    /// URI): IPv6 in brackets. `normalise_host` of this gives `self` back.
    pub fn uri_str(&self) -> Cow<'_, str> {
        match self {
            Host::Name(n) => Cow::Borrowed(n.as_str()),
            Host::Ip(IpAddr::V4(ip)) => Cow::Owned(ip.to_string()),
            Host::Ip(IpAddr::V6(ip)) => Cow::Owned(format!("[{ip}]")),
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

impl Target {
    /// The authority for an outgoing `Host` header: what the client wrote,
    /// except that a raw UTF-8 name goes out in its punycode form (as Go's
    /// client sends it, so the destination sees what the ACL saw).
    pub fn host_header(&self) -> Cow<'_, str> {
        if self.requested.is_ascii() {
            return Cow::Borrowed(&self.requested);
        }
        match split_authority(&self.requested) {
            Ok((_, Some(_))) => Cow::Owned(format!("{}:{}", self.host.uri_str(), self.port)),
            _ => Cow::Owned(self.host.uri_str().into_owned()),
        }
    }
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
    /// No host at all (`:443`, `http:///`).
    EmptyHost,
    /// `%` in a host: percent-encoding would let the checked and dialled names differ.
    PercentEncoded,
    /// `user@host`: the classic `allowed@evil` confusion.
    Userinfo,
    /// `\`: some URL parsers read it as `/`, others as part of the host.
    Backslash,
    /// Whitespace, controls, or a character that cannot be in a host name.
    InvalidHostChar,
    /// `[example.com]`: brackets are for IPv6 literals only.
    BracketedName,
    /// Something in brackets that is not an IPv6 address.
    InvalidIpv6,
    /// `[fe80::1%25eth0]`: the zone would pick an interface we never checked.
    ZoneId,
    /// `::1` where an authority needs `[::1]`.
    UnbracketedIpv6,
    /// Looks like an IPv4 address (ends in a number) but is not a valid one.
    InvalidIpv4,
    /// IDNA (UTS #46) processing failed.
    InvalidIdna,
    /// An empty label (`a..b`, or more than one trailing dot).
    EmptyLabel,
    /// A label longer than 63 bytes.
    LabelTooLong,
    /// A name longer than 253 bytes.
    NameTooLong,
    /// CONNECT target without `:port`.
    MissingPort,
    /// `host:` with nothing after the colon.
    EmptyPort,
    /// Port not 1..=65535 written as 1 to 5 decimal digits.
    InvalidPort,
    /// `https://` in absolute-form: the client must tunnel with CONNECT.
    Https,
    /// A scheme other than http/https (lowercased; only scheme characters).
    UnsupportedScheme(String),
    /// Not `scheme://authority...` at all.
    NotAbsoluteUri,
    /// `#fragment` in a request target.
    Fragment,
    /// Whitespace, controls or non-ASCII in the path or query.
    InvalidPath,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetError::EmptyHost => "empty host in request target",
            TargetError::PercentEncoded => "percent-encoding is not allowed in the host",
            TargetError::Userinfo => "userinfo is not allowed in the request target",
            TargetError::Backslash => "backslash is not allowed in the request target",
            TargetError::InvalidHostChar => "invalid character in host",
            TargetError::BracketedName => "only ipv6 addresses may be enclosed in brackets",
            TargetError::InvalidIpv6 => "invalid ipv6 address",
            TargetError::ZoneId => "ipv6 zone identifiers are not allowed",
            TargetError::UnbracketedIpv6 => "ipv6 addresses must be enclosed in brackets",
            TargetError::InvalidIpv4 => "invalid ipv4 address",
            TargetError::InvalidIdna => "invalid internationalised domain name",
            TargetError::EmptyLabel => "empty label in host name",
            TargetError::LabelTooLong => "host name label longer than 63 characters",
            TargetError::NameTooLong => "host name longer than 253 characters",
            TargetError::MissingPort => "missing port in request target",
            TargetError::EmptyPort => "empty port in request target",
            TargetError::InvalidPort => "invalid port in request target",
            TargetError::Https => "https URLs must be requested with CONNECT",
            TargetError::UnsupportedScheme(s) => {
                return write!(f, "unsupported URL scheme {s:?}; only http is proxied");
            }
            TargetError::NotAbsoluteUri => "request target must be an absolute http:// URL",
            TargetError::Fragment => "fragment is not allowed in the request target",
            TargetError::InvalidPath => "invalid character in request path",
        })
    }
}

impl std::error::Error for TargetError {}

/// Normalise a host as it appears in an authority (IPv6 in brackets).
pub fn normalise_host(raw: &str) -> Result<Host, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let inner = rest.strip_suffix(']').ok_or(TargetError::InvalidHostChar)?;
        return bracketed_ipv6(inner);
    }
    check_host_chars(raw)?;
    // UTS #46 lowercases, maps look-alikes (fullwidth digits, enclosed
    // alphanumerics, ideographic full stops) and encodes to punycode. It runs
    // on ASCII too so `xn--` labels are validated the same way.
    let ascii = idna::domain_to_ascii(raw).map_err(|_| TargetError::InvalidIdna)?;
    // The mapping can produce ASCII punctuation (fullwidth `＠` → `@`): check again.
    check_host_chars(&ascii)?;
    if !ascii
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(TargetError::InvalidHostChar);
    }
    let name = ascii.strip_suffix('.').unwrap_or(&ascii);
    if name.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    // WHATWG "ends in a number": such a host is an IPv4 address to every
    // resolver (inet_aton), so it must parse as one here or be refused.
    if ends_in_number(name) {
        return parse_ipv4_whatwg(name)
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .ok_or(TargetError::InvalidIpv4);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(TargetError::NameTooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(TargetError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(TargetError::LabelTooLong);
        }
    }
    Ok(Host::Name(name.to_string()))
}

/// The inside of `[...]`: an IPv6 literal and nothing else.
fn bracketed_ipv6(inner: &str) -> Result<Host, TargetError> {
    if inner.contains('%') {
        return Err(TargetError::ZoneId);
    }
    match inner.parse::<Ipv6Addr>() {
        Ok(ip) => Ok(Host::Ip(IpAddr::V6(ip))),
        Err(_) if inner.contains(':') => Err(TargetError::InvalidIpv6),
        Err(_) => Err(TargetError::BracketedName),
    }
}

/// Refuse characters that are never part of a host, with the most precise error.
fn check_host_chars(s: &str) -> Result<(), TargetError> {
    for c in s.chars() {
        match c {
            '%' => return Err(TargetError::PercentEncoded),
            '@' => return Err(TargetError::Userinfo),
            '\\' => return Err(TargetError::Backslash),
            ':' if s.parse::<Ipv6Addr>().is_ok() => return Err(TargetError::UnbracketedIpv6),
            ':' | '[' | ']' | '/' | '?' | '#' => return Err(TargetError::InvalidHostChar),
            c if c.is_whitespace() || c.is_control() => return Err(TargetError::InvalidHostChar),
            _ => {}
        }
    }
    Ok(())
}

/// WHATWG URL "ends in a number" on a host without its trailing dot.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    !matches!(ipv4_number(last), Ipv4Number::NotANumber)
}

/// One dotted part of an IPv4 address.
enum Ipv4Number {
    NotANumber,
    /// The value, or `None` if it does not fit in 64 bits (certainly out of range).
    Value(Option<u64>),
}

/// WHATWG IPv4 number parser (and inet_aton's): `0x` hex (empty means 0),
/// leading `0` octal, otherwise decimal.
fn ipv4_number(part: &str) -> Ipv4Number {
    if part.is_empty() {
        return Ipv4Number::NotANumber;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (part.strip_prefix('0').unwrap_or(part), 8)
        } else {
            (part, 10)
        };
    let mut value: Option<u64> = Some(0);
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return Ipv4Number::NotANumber;
        };
        value = value
            .and_then(|v| v.checked_mul(u64::from(radix)))
            .and_then(|v| v.checked_add(u64::from(d)));
    }
    Ipv4Number::Value(value)
}

/// WHATWG IPv4 parser: 1 to 4 parts, the last one fills the remaining bytes.
fn parse_ipv4_whatwg(name: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        match ipv4_number(part) {
            Ipv4Number::Value(Some(v)) => numbers.push(v),
            _ => return None,
        }
    }
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    // The last part covers 5 - n bytes.
    let last_bits = 8 * (5 - numbers.len() as u32);
    if last_bits < 64 && *last >= 1u64 << last_bits {
        return None;
    }
    let mut addr: u64 = *last;
    for (i, n) in init.iter().enumerate() {
        addr += n << (8 * (3 - i as u32));
    }
    u32::try_from(addr).ok().map(Ipv4Addr::from)
}

/// A port: 1 to 5 decimal digits, 1..=65535.
fn parse_port(raw: &str) -> Result<u16, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::EmptyPort);
    }
    if raw.len() > 5 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TargetError::InvalidPort);
    }
    match raw.parse::<u16>() {
        Ok(0) | Err(_) => Err(TargetError::InvalidPort),
        Ok(p) => Ok(p),
    }
}

/// Split an authority (no userinfo) into host and optional port text.
fn split_authority(authority: &str) -> Result<(&str, Option<&str>), TargetError> {
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or(TargetError::InvalidIpv6)?;
        let (host, after) = authority.split_at(close + 1);
        if after.is_empty() {
            return Ok((host, None));
        }
        let port = after
            .strip_prefix(':')
            .ok_or(TargetError::InvalidHostChar)?;
        return Ok((host, Some(port)));
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((host, port)) if port.contains(':') => {
            // Two colons: an unbracketed IPv6 literal (possibly with a port), or junk.
            if authority.parse::<Ipv6Addr>().is_ok()
                || host.is_empty()
                || host.bytes().all(|b| b.is_ascii_hexdigit())
            {
                Err(TargetError::UnbracketedIpv6)
            } else {
                Err(TargetError::InvalidHostChar)
            }
        }
        Some((host, port)) => Ok((host, Some(port))),
    }
}

/// Parse a CONNECT request target (`host:port`, `[v6]:port`; port required).
pub fn parse_connect_target(raw: &str) -> Result<Target, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    if raw.contains('@') {
        return Err(TargetError::Userinfo);
    }
    let (host, port) = split_authority(raw)?;
    let port = port.ok_or(TargetError::MissingPort)?;
    let port = parse_port(port)?;
    let host = normalise_host(host)?;
    Ok(Target {
        host,
        port,
        requested: raw.to_string(),
    })
}

/// Parse an absolute-form URI. Only `http` is accepted; `https` gets its own
/// error telling the client to use CONNECT.
pub fn parse_absolute_uri(raw: &str) -> Result<AbsoluteUri, TargetError> {
    let (scheme, rest) = raw.split_once("://").ok_or(TargetError::NotAbsoluteUri)?;
    if !is_scheme(scheme) {
        return Err(TargetError::NotAbsoluteUri);
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "http" => {}
        "https" => return Err(TargetError::Https),
        _ => return Err(TargetError::UnsupportedScheme(scheme)),
    }
    if rest.contains('#') {
        return Err(TargetError::Fragment);
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(TargetError::Userinfo);
    }
    if authority.contains('\\') {
        return Err(TargetError::Backslash);
    }
    let (host, port) = split_authority(authority)?;
    let port = match port {
        None => 80,
        Some(p) => parse_port(p)?,
    };
    let host = normalise_host(host)?;
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TargetError::InvalidPath);
    }
    let path_and_query = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok(AbsoluteUri {
        target: Target {
            host,
            port,
            requested: authority.to_string(),
        },
        path_and_query,
    })
}

/// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn ipv4_spellings_match_inet_aton() {
        for (raw, want) in [
            ("127.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.000.000.001", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("0x", "0.0.0.0"),
            ("1.2.65535", "1.2.255.255"),
            ("255.255.255.255", "255.255.255.255"),
            ("4294967295", "255.255.255.255"),
        ] {
            assert_eq!(normalise_host(raw), Ok(ip(want)), "{raw}");
        }
    }

    #[test]
    fn numeric_looking_hosts_that_are_not_ipv4_are_refused() {
        for raw in [
            "1.2.3.4.5",
            "999.1.1.1",
            "4294967296",
            "09.1.1.1",
            "a.0x10",
            "1..2",
            "1.2.3.0x100",
            "0xffffffffffffffffffffff",
        ] {
            assert_eq!(normalise_host(raw), Err(TargetError::InvalidIpv4), "{raw}");
        }
    }

    #[test]
    fn host_header_is_punycode_for_raw_utf8_names() {
        let header = |raw: &str| {
            parse_absolute_uri(raw)
                .unwrap()
                .target
                .host_header()
                .into_owned()
        };
        assert_eq!(header("http://bücher.example/"), "xn--bcher-kva.example");
        assert_eq!(
            header("http://bücher.example:8080/"),
            "xn--bcher-kva.example:8080"
        );
        // ASCII stays exactly as written (case included).
        assert_eq!(header("http://Example.COM:80/"), "Example.COM:80");
    }

    #[test]
    fn uri_str_round_trips() {
        for raw in ["[::1]", "example.com", "10.0.0.1"] {
            let h = normalise_host(raw).unwrap();
            assert_eq!(normalise_host(&h.uri_str()), Ok(h));
        }
    }
}
