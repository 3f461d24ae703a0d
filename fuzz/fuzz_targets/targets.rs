//! CONNECT authority-form, absolute-form URIs and host normalisation on
//! arbitrary text.
//!
//! Invariants:
//! - a normalised host is a fixed point (`normalise_host(h.uri_str()) == h`),
//!   and for names and IPv4 also through `acl_str`;
//! - a normalised name is what a resolver will take as a *name*: lowercase
//!   LDH-or-underscore labels of 1..=63 bytes, at most 253 bytes, and never
//!   something `inet_aton` or an IPv6 parser would read as an address;
//! - CONNECT and absolute-form agree: `CONNECT a` and `GET http://a/` name
//!   the same host and port, whichever of the two parsed;
//! - a parsed target re-serialised from its parts parses to the same parts.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use smokescreen::core::target::{
    normalise_host, parse_absolute_uri, parse_connect_target, Host, TargetError,
};

/// Would `inet_aton`-style parsing (1 to 4 parts, decimal, octal or `0x`
/// hex) take the last label for a number? Written independently of
/// `core::target`: all digits (decimal, or octal with a leading 0, or a
/// broken number that glibc refuses but other resolvers may not), or `0x`
/// followed by hex digits only.
fn last_label_looks_numeric(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_host(host: &Host) {
    let again = normalise_host(&host.uri_str());
    assert_eq!(again.as_ref(), Ok(host), "not a fixed point: {host:?}");
    match host {
        Host::Name(n) => {
            assert_eq!(normalise_host(&host.acl_str()).as_ref(), Ok(host));
            assert!(!n.is_empty() && n.len() <= 253, "name length {}", n.len());
            assert!(!n.ends_with('.'));
            for label in n.split('.') {
                assert!((1..=63).contains(&label.len()), "label {label:?} in {n:?}");
                assert!(label.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'_'));
            }
            assert!(
                !last_label_looks_numeric(n),
                "name {n:?} would be read as an IPv4 address by a resolver"
            );
            assert!(n.parse::<IpAddr>().is_err());
            assert!(n.parse::<Ipv4Addr>().is_err() && n.parse::<Ipv6Addr>().is_err());
        }
        Host::Ip(IpAddr::V4(_)) => {
            assert_eq!(normalise_host(&host.acl_str()).as_ref(), Ok(host));
        }
        Host::Ip(IpAddr::V6(ip)) => {
            // Unbracketed IPv6 is refused, never read as a name.
            assert_eq!(
                normalise_host(&ip.to_string()),
                Err(TargetError::UnbracketedIpv6)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(host) = normalise_host(raw) {
        check_host(&host);
    }

    let connect = parse_connect_target(raw);
    if let Ok(t) = &connect {
        check_host(&t.host);
        assert!(t.port > 0);
        assert_eq!(t.requested, raw);
        let again = parse_connect_target(&format!("{}:{}", t.host.uri_str(), t.port));
        let again = again.expect("a re-serialised CONNECT target parses");
        assert_eq!((&again.host, again.port), (&t.host, t.port));
        // The same authority in absolute-form names the same destination.
        let uri = parse_absolute_uri(&format!("http://{raw}/"))
            .expect("an authority CONNECT accepts is accepted in absolute-form");
        assert_eq!((&uri.target.host, uri.target.port), (&t.host, t.port));
        assert_eq!(uri.target.requested, raw);
    }

    if let Ok(u) = parse_absolute_uri(raw) {
        check_host(&u.target.host);
        assert!(u.target.port > 0);
        assert!(u.path_and_query.starts_with('/'));
        assert!(u.path_and_query.bytes().all(|b| b.is_ascii_graphic()));
        assert!(!u.path_and_query.contains('#'));
        assert!(!u.target.requested.contains(['@', '/', '?', '#', '\\']));
        let rebuilt = format!(
            "http://{}:{}{}",
            u.target.host.uri_str(),
            u.target.port,
            u.path_and_query
        );
        let again = parse_absolute_uri(&rebuilt).expect("a re-serialised URI parses");
        assert_eq!(
            (&again.target.host, again.target.port, &again.path_and_query),
            (&u.target.host, u.target.port, &u.path_and_query)
        );
        // Its authority with an explicit port is a CONNECT target to the same place.
        let authority = format!("{}:{}", u.target.host.uri_str(), u.target.port);
        let t = parse_connect_target(&authority).expect("authority parses as CONNECT");
        assert_eq!((&t.host, t.port), (&u.target.host, u.target.port));
        if u.target.requested.contains(':') && !u.target.requested.ends_with(']') {
            // The client wrote a port: CONNECT to its authority agrees too.
            let t = parse_connect_target(&u.target.requested)
                .expect("an absolute-form authority with a port parses as CONNECT");
            assert_eq!((&t.host, t.port), (&u.target.host, u.target.port));
        }
    }

    // Scheme case never changes the verdict.
    if let Some(rest) = raw.strip_prefix("http://") {
        let upper = parse_absolute_uri(&format!("HTTP://{rest}"));
        assert_eq!(upper, parse_absolute_uri(raw));
    }
});
