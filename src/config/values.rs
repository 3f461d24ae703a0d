//! Parsers for single flag / config-file values. Each returns the problem as
//! text; the caller says which flag or key held the value.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use log::LevelFilter;

use crate::core::acl::Action;
use crate::core::addr::UserRange;

use super::duration::parse_duration;
use super::LogFormat;

/// A Go duration; 0 is allowed (it means "off" or "at once").
pub fn parse_any_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Timeouts where 0 would disable a defence or fail every request.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_any_duration(s)? {
        Duration::ZERO => Err("must be greater than zero".to_string()),
        d => Ok(d),
    }
}

/// `true`/`false` (any case), so a file's `true` can be turned off with `--flag=false`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

/// A listen address; brackets are tolerated (`[::]`) because people copy them from URLs.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map_err(|_| "expected an IP address such as :: or 0.0.0.0".to_string())
}

/// A TCP port; 0 lets the OS pick one (useful in tests).
pub fn parse_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| "expected a port number from 0 to 65535".to_string())
}

/// Plain decimal digits only: no sign, no exponent, no separators.
pub fn parse_unsigned(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number".to_string());
    }
    s.parse::<u64>()
        .map_err(|_| "number is too large".to_string())
}

/// An optional cap where 0 means "no limit" (Smokescreen's convention).
pub fn parse_optional_limit(s: &str) -> Result<Option<usize>, String> {
    let n = usize::try_from(parse_unsigned(s)?).map_err(|_| "number is too large".to_string())?;
    Ok((n > 0).then_some(n))
}

/// A cap that must be at least `min` and at most `max`.
pub fn parse_bounded(s: &str, min: usize, max: usize) -> Result<usize, String> {
    let n = parse_unsigned(s)?;
    match usize::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be between {min} and {max}")),
    }
}

/// Requests per second; 0 means no rate limit.
pub fn parse_rate(s: &str) -> Result<Option<f64>, String> {
    let ok_chars = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let rate = s
        .parse::<f64>()
        .ok()
        .filter(|r| ok_chars && r.is_finite() && *r >= 0.0);
    match rate {
        Some(0.0) => Ok(None),
        Some(r) => Ok(Some(r)),
        None => Err(
            "expected a non-negative decimal number of requests per second, e.g. 12.5".to_string(),
        ),
    }
}

/// A burst size; 0 means "derive from the rate".
pub fn parse_burst(s: &str) -> Result<Option<u32>, String> {
    let n = u32::try_from(parse_unsigned(s)?).map_err(|_| "number is too large".to_string())?;
    Ok((n > 0).then_some(n))
}

/// Which user-range flag family a value belongs to, for the hint in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    /// `--allow-range`/`--deny-range`: CIDR only.
    Cidr,
    /// `--allow-address`/`--deny-address`: IP or IP:PORT only.
    Address,
}

/// Parse a user range of the given kind, refusing the other kind so that
/// `--deny-range 1.2.3.4:80` cannot silently mean something else. A CIDR
/// with host bits set is refused too: `10.1.2.3/8` is usually a typo for /32,
/// and widening an allow range by accident is the dangerous direction.
pub fn parse_user_range(s: &str, kind: RangeKind, other: &str) -> Result<UserRange, String> {
    match kind {
        RangeKind::Cidr => {
            if !s.contains('/') {
                return Err(format!(
                    "expected a CIDR range such as 10.0.0.0/8 or fd00::/8 (use {other} for a single address)"
                ));
            }
            let net = s
                .parse::<IpNet>()
                .map_err(|_| "expected a CIDR range such as 10.0.0.0/8 or fd00::/8".to_string())?;
            if net != net.trunc() {
                return Err(format!("host bits are set; did you mean {}?", net.trunc()));
            }
        }
        RangeKind::Address => {
            if s.contains('/') {
                return Err(format!(
                    "expected IP or IP:PORT such as 192.0.2.7 or [2001:db8::7]:443 (use {other} for a CIDR range)"
                ));
            }
        }
    }
    s.parse::<UserRange>().map_err(|_| match kind {
        RangeKind::Cidr => "expected a CIDR range such as 10.0.0.0/8 or fd00::/8".to_string(),
        RangeKind::Address => {
            "expected IP or IP:PORT (port 1-65535) such as 192.0.2.7 or [2001:db8::7]:443"
                .to_string()
        }
    })
}

pub fn parse_allow_range(s: &str) -> Result<UserRange, String> {
    parse_user_range(s, RangeKind::Cidr, "--allow-address / allow_addresses")
}

pub fn parse_deny_range(s: &str) -> Result<UserRange, String> {
    parse_user_range(s, RangeKind::Cidr, "--deny-address / deny_addresses")
}

pub fn parse_allow_address(s: &str) -> Result<UserRange, String> {
    parse_user_range(s, RangeKind::Address, "--allow-range / allow_ranges")
}

pub fn parse_deny_address(s: &str) -> Result<UserRange, String> {
    parse_user_range(s, RangeKind::Address, "--deny-range / deny_ranges")
}

/// A PROXY protocol peer: a CIDR range, or a single address (as /32 or /128).
pub fn parse_trusted_range(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| {
            "expected a CIDR range such as 10.0.0.0/8 or fdaa::/16, or one address".to_string()
        })
}

/// `open|report|enforce` (any case), via the core's parser.
pub fn parse_action(s: &str) -> Result<Action, String> {
    s.to_ascii_lowercase()
        .parse::<Action>()
        .map_err(|_| "expected open, report or enforce".to_string())
}

/// `HOST:PORT` of a DNS resolver; bracketed IPv6 for literals.
pub fn parse_resolver(s: &str) -> Result<String, String> {
    const HINT: &str = "expected HOST:PORT such as 1.1.1.1:53 or [2606:4700:4700::1111]:53";
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return if sa.port() == 0 {
            Err(HINT.to_string())
        } else {
            Ok(sa.to_string())
        };
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| HINT.to_string())?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = !host.is_empty()
        && !host.contains(':')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if port_ok && host_ok {
        Ok(s.to_string())
    } else {
        Err(HINT.to_string())
    }
}

/// The Prometheus path: absolute, no query, fragment, space or control characters.
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let clean = s.starts_with('/')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#');
    if clean {
        Ok(s.to_string())
    } else {
        Err("expected an absolute path such as /metrics".to_string())
    }
}

/// Text appended to deny bodies. Line breaks and tabs are fine in a body;
/// other control characters (CR, NUL, ESC) are refused so the text can never
/// split a header or smuggle terminal escapes into logs.
pub fn parse_deny_message(s: &str) -> Result<Option<String>, String> {
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("control characters other than newline and tab are not allowed".to_string());
    }
    Ok((!s.is_empty()).then(|| s.to_string()))
}

pub fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".to_string()),
    }
}

/// Smokescreen's (logrus) level names; `warn` is accepted as an alias.
pub fn parse_log_level(s: &str) -> Result<LevelFilter, String> {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Ok(LevelFilter::Debug),
        "info" => Ok(LevelFilter::Info),
        "warning" | "warn" => Ok(LevelFilter::Warn),
        "error" => Ok(LevelFilter::Error),
        _ => Err("expected debug, info, warning or error".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_be_the_right_kind() {
        assert!(parse_user_range("10.0.0.0/8", RangeKind::Cidr, "--deny-address").is_ok());
        let wrong = parse_user_range("1.2.3.4:80", RangeKind::Cidr, "--deny-address");
        assert!(wrong.is_err_and(|e| e.contains("--deny-address")));
        let wrong = parse_user_range("10.0.0.0/8", RangeKind::Address, "--deny-range");
        assert!(wrong.is_err_and(|e| e.contains("--deny-range")));
        let typo = parse_user_range("10.1.2.3/8", RangeKind::Cidr, "--allow-address");
        assert_eq!(
            typo,
            Err("host bits are set; did you mean 10.0.0.0/8?".to_string())
        );
        let port = parse_user_range("[2001:db8::7]:443", RangeKind::Address, "--deny-range");
        assert_eq!(port.map(|r| r.port), Ok(Some(443)));
        assert!(parse_user_range("1.2.3.4:0", RangeKind::Address, "--deny-range").is_err());
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_optional_limit("0"), Ok(None));
        assert_eq!(parse_optional_limit("12"), Ok(Some(12)));
        for bad in ["", "-1", "+1", "1e3", "1_000", " 1"] {
            assert!(parse_optional_limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_rate("12.5"), Ok(Some(12.5)));
        assert_eq!(parse_rate("0"), Ok(None));
        for bad in ["inf", "NaN", "-1", "1e3", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_bounded("1023", 1024, 2048),
            Err("must be between 1024 and 2048".to_string())
        );
    }

    #[test]
    fn resolvers_and_endpoints() {
        assert_eq!(
            parse_resolver("[2606:4700:4700::1111]:53"),
            Ok("[2606:4700:4700::1111]:53".to_string())
        );
        assert_eq!(
            parse_resolver("dns.internal:5353"),
            Ok("dns.internal:5353".to_string())
        );
        for bad in ["1.1.1.1", "1.1.1.1:0", ":53", "a b:53", "::1:53x"] {
            assert!(parse_resolver(bad).is_err(), "{bad:?}");
        }
        assert!(parse_endpoint("/metrics").is_ok());
        for bad in ["metrics", "/a b", "/m?x=1", "/m\r\n"] {
            assert!(parse_endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deny_message_refuses_header_splitting() {
        assert_eq!(
            parse_deny_message("see\thttps://wiki\n"),
            Ok(Some("see\thttps://wiki\n".to_string()))
        );
        assert_eq!(parse_deny_message(""), Ok(None));
        assert!(parse_deny_message("a\r\nX-Evil: 1").is_err());
    }
}
