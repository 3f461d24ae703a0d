//! The proxy's own answers (denials, errors, the CONNECT 200) as bytes.
//! Texts follow Smokescreen so clients and runbooks keep working.

/// Header naming why a request was refused (Smokescreen's).
pub const ERROR_HEADER: &str = "X-Smokescreen-Error";

/// Body for origin-form requests: the proxy is not a web server.
pub const NON_PROXY_MESSAGE: &str =
    "This is a proxy server. Does not respond to non-proxy requests.";

/// What a successful CONNECT gets before the tunnel starts.
pub const CONNECT_ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// A complete response the proxy writes itself. Always `Connection: close`:
/// after a refusal the connection is not read again (RFC 9931 for CONNECT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Extra headers (name, value); values are sanitised on render.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A refusal: body and `X-Smokescreen-Error` carry `message`;
    /// `extra` (`--additional-error-message-on-deny`) is appended to the body.
    pub fn refusal(status: u16, message: &str, extra: Option<&str>) -> Reply {
        let body = match extra {
            Some(extra) if !extra.is_empty() => format!("{message}\n\n{extra}\n"),
            _ => format!("{message}\n"),
        };
        let mut reply = Reply::text(status, body);
        reply.headers.push((ERROR_HEADER, message.to_string()));
        if status == 407 {
            reply.headers.push((
                "Proxy-Authenticate",
                "Basic realm=\"smokescreen\"".to_string(),
            ));
        }
        reply
    }

    /// Add a header (builder style).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Serialise as an HTTP/1.1 response.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\n",
                self.status,
                reason_phrase(self.status)
            )
            .as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(sanitise_header_value(value).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// Header values may not carry CR, LF or other controls; replace them.
fn sanitise_header_value(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Standard reason phrases for the statuses the proxy produces.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// `Egress proxying is denied to host '<host>': <reason>.`
pub fn denied_message(requested_host: &str, reason: &str) -> String {
    format!("Egress proxying is denied to host '{requested_host}': {reason}.")
}

/// The 429 for `--max-request-rate`.
pub fn rate_limited() -> Reply {
    Reply::text(429, "Proxy rate limit exceeded. Please retry later.\n")
        .with_header("Retry-After", "1")
}

/// The 503 for `--max-concurrent-requests`.
pub fn overloaded() -> Reply {
    Reply::text(503, "Proxy overloaded. Please retry later.\n").with_header("Retry-After", "1")
}

/// The 429 for `--max-concurrent-connect-tunnels`.
pub fn too_many_tunnels() -> Reply {
    Reply::text(429, "maximum concurrent connect tunnels exceeded\n")
        .with_header("Retry-After", "1")
}

/// The 400 for origin-form requests.
pub fn non_proxy_request() -> Reply {
    Reply::text(400, format!("{NON_PROXY_MESSAGE}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_with_extra_message_and_challenge() {
        let r = Reply::refusal(
            407,
            "Egress proxying is denied to host 'x': y.",
            Some("ask #netsec"),
        );
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"));
        assert!(
            text.contains("\r\nX-Smokescreen-Error: Egress proxying is denied to host 'x': y.\r\n")
        );
        assert!(text.contains("\r\nProxy-Authenticate: Basic realm=\"smokescreen\"\r\n"));
        assert!(
            text.ends_with("\r\n\r\nEgress proxying is denied to host 'x': y.\n\nask #netsec\n")
        );
        let len = "Egress proxying is denied to host 'x': y.\n\nask #netsec\n".len();
        assert!(text.contains(&format!("Content-Length: {len}\r\n")));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let r = Reply::refusal(403, "a\r\nSet-Cookie: x", None);
        let text = String::from_utf8(r.to_bytes()).unwrap();
        let (head, _body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("X-Smokescreen-Error: a??Set-Cookie: x\r\n"));
        assert!(!head.contains("\r\nSet-Cookie"));
    }
}
