//! Pinned host names: `--static-host NAME=IP[,IP...]`, the `static_hosts`
//! key and `--hosts-file` (/etc/hosts format). These answers replace DNS for
//! those names; the address policy still judges every address.

use std::net::IpAddr;

/// Normalise a host name the way the core matches hosts: IDNA to lowercase
/// punycode, one trailing dot dropped. Address literals are refused, since
/// pinning an address to itself means nothing and hides a typo.
pub fn normalise_name(raw: &str) -> Result<String, String> {
    // The same normalisation requests get, so a pinned name is found by
    // exactly the hosts that mean it.
    match crate::core::target::normalise_host(raw) {
        Ok(crate::core::target::Host::Name(name)) => Ok(name),
        Ok(crate::core::target::Host::Ip(_)) => {
            Err(format!("{raw:?} is an IP address, not a host name"))
        }
        Err(e) => Err(format!("{raw:?} is not a valid host name: {e}")),
    }
}

/// Parse one address of a pinned name; zone ids (`fe80::1%eth0`) are refused.
pub fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    raw.parse::<IpAddr>()
        .map_err(|_| format!("invalid IP address {raw:?}"))
}

/// Parse `NAME=IP[,IP...]`.
pub fn parse_static_host(spec: &str) -> Result<(String, Vec<IpAddr>), String> {
    let (name, ips) = spec
        .split_once('=')
        .ok_or_else(|| "expected NAME=IP[,IP...], e.g. api.example.com=192.0.2.10".to_string())?;
    let name = normalise_name(name.trim())?;
    let mut out = Vec::new();
    for ip in ips.split(',') {
        push_unique(&mut out, parse_ip(ip.trim())?);
    }
    Ok((name, out))
}

/// Parse /etc/hosts text: `IP NAME [ALIAS...]` per line, `#` starts a
/// comment, blank lines are skipped. Returns (name, ip) pairs in file order;
/// an error says which line.
pub fn parse_hosts_file(text: &str) -> Result<Vec<(String, IpAddr)>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = line.split('#').next().unwrap_or("");
        let mut fields = content.split_whitespace();
        let Some(ip) = fields.next() else { continue };
        let ip = parse_ip(ip).map_err(|e| format!("line {line_no}: {e}"))?;
        let mut any = false;
        for name in fields {
            let name = normalise_name(name).map_err(|e| format!("line {line_no}: {e}"))?;
            out.push((name, ip));
            any = true;
        }
        if !any {
            return Err(format!("line {line_no}: address {ip} has no host name"));
        }
    }
    Ok(out)
}

pub(crate) fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn names_are_lowercase_punycode_without_trailing_dot() {
        assert_eq!(
            normalise_name("API.Example.COM."),
            Ok("api.example.com".to_string())
        );
        assert_eq!(
            normalise_name("bücher.example"),
            Ok("xn--bcher-kva.example".to_string())
        );
        assert_eq!(normalise_name("my_host"), Ok("my_host".to_string()));
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            ".",
            "a..b",
            "1.2.3.4",
            "::1",
            "a b",
            "a/b",
            "a:80",
            &"a".repeat(64),
        ] {
            assert!(normalise_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn static_host_with_several_addresses() {
        let (name, ips) =
            parse_static_host("Db.Internal.=10.0.0.1, ::1,10.0.0.1").unwrap_or_default();
        assert_eq!(name, "db.internal");
        assert_eq!(ips, vec![ip("10.0.0.1"), ip("::1")]);
        assert!(parse_static_host("db.internal").is_err());
        assert!(parse_static_host("db.internal=").is_err());
        assert!(parse_static_host("=1.2.3.4").is_err());
        assert!(parse_static_host("db=fe80::1%eth0").is_err());
    }

    #[test]
    fn hosts_file_lines_comments_and_aliases() {
        let text = "# comment\n\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # trailing\n10.1.2.3 Db.Internal db\n";
        let got = parse_hosts_file(text).unwrap_or_default();
        assert_eq!(
            got,
            vec![
                ("localhost".to_string(), ip("127.0.0.1")),
                ("localhost".to_string(), ip("::1")),
                ("ip6-localhost".to_string(), ip("::1")),
                ("db.internal".to_string(), ip("10.1.2.3")),
                ("db".to_string(), ip("10.1.2.3")),
            ]
        );
    }

    #[test]
    fn hosts_file_errors_name_the_line() {
        assert_eq!(
            parse_hosts_file("127.0.0.1 localhost\nnot-an-ip name\n"),
            Err("line 2: invalid IP address \"not-an-ip\"".to_string())
        );
        assert_eq!(
            parse_hosts_file("10.0.0.1   # only a comment\n"),
            Err("line 1: address 10.0.0.1 has no host name".to_string())
        );
    }
}
