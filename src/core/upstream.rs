//! Upstream (parent) proxies: which one, if any, carries a request that the
//! ACL and the address rules already allowed.
//!
//! The rules are Go's `ProxyFromEnvironment` (`golang.org/x/net/http/httpproxy`),
//! as Smokescreen HEAD applies them: CONNECT uses the HTTPS proxy, plain
//! HTTP the HTTP proxy; `localhost` and loopback destinations never go
//! through a proxy; `NO_PROXY` lists names (a suffix match: `example.com`
//! covers `a.example.com`; `.example.com` and `*.example.com` only the
//! subdomains), IP addresses, CIDR ranges, each with an optional `:port`,
//! or `*` for everything. The environment is read by `config`; this module
//! only decides.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;

use crate::core::target::{normalise_host, Host, Target};

/// One upstream proxy: where to connect, and the credentials it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `host:port` (IPv6 in brackets), dialled as configured.
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// The `Proxy-Authorization` value from the URL's userinfo.
    pub authorization: Option<String>,
    /// `https://`: the proxy wants TLS (only a client's
    /// `X-Upstream-Https-Proxy` may name one; it is refused when dialled).
    pub tls: bool,
}

/// Never prints the credentials.
impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("authority", &self.authority)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Why a proxy URL was refused. `Display` is the text the config error shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyUrlError {
    /// `https://` (TLS to the proxy), `socks5://`, ...: not built.
    UnsupportedScheme(String),
    MissingHost,
    InvalidPort,
    /// A path, query or fragment after the authority.
    TrailingPath,
}

impl fmt::Display for ProxyUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyUrlError::UnsupportedScheme(s) => write!(
                f,
                "unsupported proxy scheme {s:?}; only http:// upstream proxies are supported"
            ),
            ProxyUrlError::MissingHost => f.write_str("missing proxy host"),
            ProxyUrlError::InvalidPort => f.write_str("invalid proxy port"),
            ProxyUrlError::TrailingPath => {
                f.write_str("a proxy URL has no path, query or fragment")
            }
        }
    }
}

impl std::error::Error for ProxyUrlError {}

impl ProxyUrl {
    /// Parse `http://[user:pass@]host[:port]` or, as Go does, a bare
    /// `host[:port]`. The port defaults to 80.
    pub fn parse(raw: &str) -> Result<ProxyUrl, ProxyUrlError> {
        match ProxyUrl::parse_header(raw)? {
            p if p.tls => Err(ProxyUrlError::UnsupportedScheme("https".into())),
            p => Ok(p),
        }
    }

    /// Parse a client's `X-Upstream-Https-Proxy`: as [`ProxyUrl::parse`],
    /// but `https://` is read too (port 443 by default) so the ACL can judge
    /// its host.
    pub fn parse_header(raw: &str) -> Result<ProxyUrl, ProxyUrlError> {
        let raw = raw.trim();
        let (rest, tls) = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (rest, false),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (rest, true),
            Some((scheme, _)) => return Err(ProxyUrlError::UnsupportedScheme(scheme.to_string())),
            None => (raw, false),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(ProxyUrlError::TrailingPath);
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport, if tls { 443 } else { 80 })?;
        if host.is_empty() {
            return Err(ProxyUrlError::MissingHost);
        }
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let authorization = userinfo.map(|u| {
            let decoded = percent_decode(u);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(decoded)
            )
        });
        Ok(ProxyUrl {
            authority,
            host: host.to_string(),
            port,
            authorization,
            tls,
        })
    }
}

fn split_host_port(s: &str, default_port: u16) -> Result<(&str, u16), ProxyUrlError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or(ProxyUrlError::MissingHost)?;
        match after.strip_prefix(':') {
            Some(p) => (inner, Some(p)),
            None if after.is_empty() => (inner, None),
            None => return Err(ProxyUrlError::InvalidPort),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or(ProxyUrlError::InvalidPort)?,
    };
    Ok((host, port))
}

/// `%XX` escapes in userinfo, as `url.Parse` decodes them.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(&b), _) => {
                out.push(b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    out
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypass {
    Everything,
    Range(IpNet),
    Ip(IpAddr, Option<u16>),
    /// `suffix` starts with `.`; `exact` also matches the name itself.
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

/// The parsed `NO_PROXY` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<Bypass>);

impl NoProxy {
    /// Parse a comma-separated list; entries Go would ignore are ignored.
    pub fn parse(list: &str) -> NoProxy {
        let mut out = Vec::new();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return NoProxy(vec![Bypass::Everything]);
            }
            if let Ok(net) = entry.parse::<IpNet>() {
                out.push(Bypass::Range(net));
                continue;
            }
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() && !h.ends_with(':') => (
                    h.trim_start_matches('[').trim_end_matches(']'),
                    p.parse().ok(),
                ),
                _ => (entry.as_str(), None),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                out.push(Bypass::Ip(ip, port));
                continue;
            }
            let host = host.strip_prefix('*').unwrap_or(host);
            let (bare, exact) = match host.strip_prefix('.') {
                Some(b) => (b, false),
                None => (host, true),
            };
            let bare = match normalise_host(bare) {
                Ok(Host::Name(n)) => n,
                _ => bare.to_string(),
            };
            if bare.is_empty() {
                continue;
            }
            out.push(Bypass::Domain {
                suffix: format!(".{bare}"),
                exact,
                port,
            });
        }
        NoProxy(out)
    }

    /// Whether a request to `host:port` goes direct.
    fn bypasses(&self, host: &Host, port: u16) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.0.iter().any(|b| match (b, host) {
            (Bypass::Everything, _) => true,
            (Bypass::Range(net), Host::Ip(ip)) => net.contains(ip),
            (Bypass::Ip(want, p), Host::Ip(ip)) => want == ip && port_ok(p),
            (
                Bypass::Domain {
                    suffix,
                    exact,
                    port: p,
                },
                Host::Name(name),
            ) => {
                (name.ends_with(suffix.as_str()) || (*exact && suffix.get(1..) == Some(name)))
                    && port_ok(p)
            }
            _ => false,
        })
    }
}

/// The configured upstream proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamProxies {
    /// For plain HTTP requests (`--upstream-http-proxy-addr`, `HTTP_PROXY`).
    pub http: Option<ProxyUrl>,
    /// For CONNECT (`--upstream-https-proxy-addr`, `HTTPS_PROXY`).
    pub https: Option<ProxyUrl>,
    pub no_proxy: NoProxy,
}

impl UpstreamProxies {
    /// The proxy that carries an allowed request to `target`, or `None` to
    /// connect directly. For CONNECT, a proxy the client named (and the ACL
    /// allowed, `X-Upstream-Https-Proxy`) takes the place of the configured
    /// one, as in Smokescreen HEAD; `NO_PROXY` and loopback still go direct.
    pub fn for_target<'a>(
        &'a self,
        target: &Target,
        connect: bool,
        requested: Option<&'a ProxyUrl>,
    ) -> Option<&'a ProxyUrl> {
        let proxy = match (connect, requested) {
            (true, Some(r)) => r,
            (true, None) => self.https.as_ref()?,
            (false, _) => self.http.as_ref()?,
        };
        let local = match &target.host {
            Host::Name(n) => n == "localhost",
            Host::Ip(ip) => ip.is_loopback(),
        };
        if local || self.no_proxy.bypasses(&target.host, target.port) {
            return None;
        }
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::target::parse_connect_target;

    #[test]
    fn proxy_urls_parse_like_go() {
        let p = ProxyUrl::parse("http://corp-proxy:3128").unwrap();
        assert_eq!(
            (p.authority.as_str(), p.authorization),
            ("corp-proxy:3128", None)
        );
        assert_eq!(
            ProxyUrl::parse("10.0.0.1").unwrap().authority,
            "10.0.0.1:80"
        );
        assert_eq!(
            ProxyUrl::parse("http://[fd00::1]:8080/").unwrap().authority,
            "[fd00::1]:8080"
        );
        let p = ProxyUrl::parse("http://us%3Aer:p%40ss@proxy:3128").unwrap();
        assert_eq!(p.authorization.as_deref(), Some("Basic dXM6ZXI6cEBzcw=="));
        assert!(!format!("{p:?}").contains("dXM6"), "credentials in Debug");
        assert_eq!(
            ProxyUrl::parse("https://proxy:443"),
            Err(ProxyUrlError::UnsupportedScheme("https".into()))
        );
        assert_eq!(
            ProxyUrl::parse("http://proxy:0"),
            Err(ProxyUrlError::InvalidPort)
        );
        assert_eq!(
            ProxyUrl::parse("http://:3128"),
            Err(ProxyUrlError::MissingHost)
        );
        assert_eq!(
            ProxyUrl::parse("http://proxy/x"),
            Err(ProxyUrlError::TrailingPath)
        );
        let h = ProxyUrl::parse_header("https://u:p@ext.proxy:8443").unwrap();
        assert_eq!((h.authority.as_str(), h.tls), ("ext.proxy:8443", true));
        assert_eq!(
            ProxyUrl::parse_header("https://ext.proxy").unwrap().port,
            443
        );
    }

    fn proxies(no_proxy: &str) -> UpstreamProxies {
        UpstreamProxies {
            http: Some(ProxyUrl::parse("http-proxy:80").unwrap()),
            https: Some(ProxyUrl::parse("https-proxy:3128").unwrap()),
            no_proxy: NoProxy::parse(no_proxy),
        }
    }

    fn via(p: &UpstreamProxies, target: &str, connect: bool) -> Option<String> {
        let t = parse_connect_target(target).unwrap();
        p.for_target(&t, connect, None).map(|u| u.host.clone())
    }

    #[test]
    fn connect_uses_the_https_proxy_and_http_the_http_proxy() {
        let p = proxies("");
        assert_eq!(
            via(&p, "example.com:443", true).as_deref(),
            Some("https-proxy")
        );
        assert_eq!(
            via(&p, "example.com:80", false).as_deref(),
            Some("http-proxy")
        );
        let none = UpstreamProxies::default();
        assert_eq!(via(&none, "example.com:443", true), None);
    }

    #[test]
    fn loopback_and_no_proxy_go_direct() {
        let p = proxies("internal.example, .corp, *.svc, 10.0.0.0/8, 192.0.2.7, api.test:8443");
        for (target, direct) in [
            ("localhost:443", true),
            ("127.0.0.2:443", true),
            ("[::1]:443", true),
            ("internal.example:443", true),
            ("a.internal.example:443", true),
            ("xinternal.example:443", false),
            ("corp:443", false),
            ("a.corp:443", true),
            ("a.svc:443", true),
            ("svc:443", false),
            ("10.1.2.3:443", true),
            ("192.0.2.7:443", true),
            ("192.0.2.8:443", false),
            ("api.test:8443", true),
            ("api.test:443", false),
            ("INTERNAL.EXAMPLE.:443", true),
        ] {
            assert_eq!(via(&p, target, true).is_none(), direct, "{target}");
        }
        assert_eq!(via(&proxies("*"), "example.com:443", true), None);
    }
}
