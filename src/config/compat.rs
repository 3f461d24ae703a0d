//! Parsers for the settings that make this proxy a drop-in for Smokescreen
//! HEAD (issue 16): statsd, the stats socket, upstream proxies.

use super::{values, ConfigError};
use crate::core::upstream::{NoProxy, ProxyUrl, UpstreamProxies};

/// The upstream proxies: each from its flag or config key (`(name, value)`)
/// when set, else from the environment as Go's `httpproxy.FromEnvironment`
/// reads it (upper case first). Error texts never show a password.
pub fn upstream_proxies(
    http: Option<(String, String)>,
    https: Option<(String, String)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UpstreamProxies, ConfigError> {
    let from_env = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (n.to_string(), v)))
    };
    let parse = |setting: Option<(String, String)>| match setting {
        None => Ok(None),
        Some((name, value)) => {
            ProxyUrl::parse(&value)
                .map(Some)
                .map_err(|e| ConfigError::InvalidValue {
                    flag: name,
                    value: redact_userinfo(&value),
                    problem: e.to_string(),
                })
        }
    };
    Ok(UpstreamProxies {
        http: parse(http.or_else(|| from_env(["HTTP_PROXY", "http_proxy"])))?,
        https: parse(https.or_else(|| from_env(["HTTPS_PROXY", "https_proxy"])))?,
        no_proxy: NoProxy::parse(
            &from_env(["NO_PROXY", "no_proxy"])
                .map(|(_, v)| v)
                .unwrap_or_default(),
        ),
    })
}

/// `http://user:secret@host` → `http://***@host`, for error messages.
fn redact_userinfo(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), value),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}"),
        None => value.to_string(),
    }
}

/// `--statsd-address` / `statsd_address`: `HOST:PORT` of a DogStatsD server
/// (UDP). Empty means unset.
pub fn parse_statsd_address(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    values::parse_resolver(s)
        .map(Some)
        .map_err(|_| "expected HOST:PORT such as 127.0.0.1:8200".to_string())
}

/// `--stats-socket-file-mode` / `stats_socket_file_mode`: octal permission
/// bits, as `chmod` takes them (`700`, `0660`).
pub fn parse_file_mode(s: &str) -> Result<u32, String> {
    const HINT: &str = "expected octal permission bits such as 700 or 660";
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(HINT.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_proxies_come_from_flags_then_the_environment() {
        let env = |name: &str| match name {
            "https_proxy" => Some("http://lower:3128".to_string()),
            "HTTP_PROXY" => Some("env-http:8080".to_string()),
            "NO_PROXY" => Some(".corp".to_string()),
            _ => None,
        };
        let u = upstream_proxies(None, None, &env).unwrap();
        assert_eq!(
            u.http.map(|p| p.authority).as_deref(),
            Some("env-http:8080")
        );
        assert_eq!(u.https.map(|p| p.authority).as_deref(), Some("lower:3128"));
        assert_eq!(u.no_proxy, NoProxy::parse(".corp"));
        let flag = Some((
            "--upstream-https-proxy-addr".to_string(),
            "flag:1".to_string(),
        ));
        let u = upstream_proxies(None, flag, &env).unwrap();
        assert_eq!(u.https.map(|p| p.authority).as_deref(), Some("flag:1"));
    }

    #[test]
    fn bad_proxy_urls_are_named_without_their_password() {
        let bad = Some((
            "HTTPS_PROXY".to_string(),
            "socks5://me:hunter2@p:1080".to_string(),
        ));
        let err = upstream_proxies(None, bad, &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTPS_PROXY") && err.contains("socks5"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn file_modes_are_octal_permission_bits() {
        assert_eq!(parse_file_mode("700"), Ok(0o700));
        assert_eq!(parse_file_mode("0660"), Ok(0o660));
        for bad in ["", "800", "1777", "rwx", "-1"] {
            assert!(parse_file_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statsd_address_is_host_and_port() {
        assert_eq!(
            parse_statsd_address("127.0.0.1:8125"),
            Ok(Some("127.0.0.1:8125".into()))
        );
        assert_eq!(
            parse_statsd_address("statsd.local:8125"),
            Ok(Some("statsd.local:8125".into()))
        );
        assert_eq!(parse_statsd_address(""), Ok(None));
        for bad in ["127.0.0.1", "::1:8125", "host:0", "unix:///run/statsd.sock"] {
            assert!(parse_statsd_address(bad).is_err(), "{bad}");
        }
    }
}
