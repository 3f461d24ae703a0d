//! Absolute-form HTTP forwarding: rewrite the head (hop-by-hop and proxy
//! headers out, `Host` from the URI), stream the body with our own framing,
//! stream the response back, and keep both connections alive when safe.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::shell::net::Tcp;

use crate::shell::stream::ClientStream;

use crate::core::decision::Approved;
use crate::core::head::{
    parse_response, BodyFraming, Headers, RequestForm, RequestHead, ResponseHead, Version,
};
use crate::shell::io::{
    copy_chunked, copy_length, copy_until_close, read_more, write_all, CopyError,
};
use crate::shell::state::Shared;

/// A kept-alive upstream connection, reusable only for the same address.
pub struct Upstream {
    pub addr: SocketAddr,
    pub stream: Tcp,
    /// Bytes read from upstream past the last response.
    pub buf: Vec<u8>,
    /// Set when `stream` goes to an upstream proxy: the request line is then
    /// absolute-form, with the proxy's credentials.
    pub via_proxy: Option<crate::core::upstream::ProxyUrl>,
}

impl Upstream {
    pub fn new(stream: Tcp, addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            stream,
            buf: Vec::new(),
            via_proxy: None,
        }
    }
}

/// How one exchange ended.
pub struct Exchange {
    /// For the decision record: what failed, if anything.
    pub error: Option<String>,
    /// The status of the proxy's own answer when the exchange failed.
    pub status_code: Option<u16>,
    /// The upstream connection, if it may be reused.
    pub upstream: Option<Upstream>,
    pub client_keep_alive: bool,
}

/// Headers never forwarded in either direction (RFC 9110 §7.6.1 hop-by-hop,
/// proxy credentials, and Smokescreen's own control headers). Framing headers
/// are rewritten by us.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "x-smokescreen-trace-id",
    "x-smokescreen-role",
    // A client's next proxy (checked by the ACL) is for us, never the destination.
    "x-upstream-https-proxy",
];

fn push_headers(out: &mut Vec<u8>, headers: &Headers, extra_drop: &[&str]) {
    let listed = headers.connection_tokens();
    for (name, value) in &headers.0 {
        let is = |n: &str| n.eq_ignore_ascii_case(name);
        if HOP_BY_HOP.iter().any(|n| is(n))
            || extra_drop.iter().any(|n| is(n))
            || listed.iter().any(|n| is(n))
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_length(out: &mut Vec<u8>, n: u64) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "Content-Length: {n}\r\n");
}

fn request_head_bytes(
    head: &RequestHead,
    approved: &Approved,
    via_proxy: Option<&crate::core::upstream::ProxyUrl>,
) -> Vec<u8> {
    let path = match &head.form {
        RequestForm::Absolute(uri) => uri.path_and_query.as_str(),
        _ => "/",
    };
    let host = approved.target.host_header();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    if via_proxy.is_some() {
        // An upstream proxy needs absolute-form (RFC 9112 §3.2.2).
        out.extend_from_slice(b"http://");
        out.extend_from_slice(host.as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    // RFC 9112 §3.2.2: the URI's authority, not whatever Host the client sent.
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(auth) = via_proxy.and_then(|p| p.authorization.as_deref()) {
        out.extend_from_slice(b"Proxy-Authorization: ");
        out.extend_from_slice(auth.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    push_headers(&mut out, &head.headers, &[]);
    match head.body {
        BodyFraming::Length(n) => push_length(&mut out, n),
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Empty | BodyFraming::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Send the request, relay the response. `reused`: the upstream connection
/// served an earlier request, so a failure before any response byte on a
/// bodiless request is retried once on a fresh connection.
pub async fn exchange(
    shared: &Shared,
    client: &ClientStream,
    client_buf: &mut Vec<u8>,
    head: &RequestHead,
    approved: &Approved,
    conn: Upstream,
    reused: bool,
) -> Exchange {
    let request = request_head_bytes(head, approved, conn.via_proxy.as_ref());
    let mut conn = conn;
    let mut retried = !reused;
    loop {
        match send_and_read_head(shared, client, client_buf, head, &request, &mut conn).await {
            Ok(resp) => return relay(client, head, resp, conn, shared.settings.idle_timeout).await,
            Err(Failure::Stale)
                if !retried && head.body == BodyFraming::Empty && conn.via_proxy.is_none() =>
            {
                retried = true;
                match crate::shell::runtime::timeout(
                    shared.settings.connect_timeout,
                    Tcp::connect(approved.addr),
                )
                .await
                {
                    Ok(s) => conn = Upstream::new(s, approved.addr),
                    Err(e) => {
                        return fail(
                            client,
                            502,
                            &format!("Failed to connect to remote host: {e}"),
                        )
                        .await
                    }
                }
            }
            Err(Failure::Stale) => {
                return fail(
                    client,
                    502,
                    "Failed to read response from remote host: connection closed",
                )
                .await;
            }
            Err(Failure::Client(e)) => {
                return Exchange {
                    error: Some(format!("client: {e}")),
                    status_code: None,
                    upstream: None,
                    client_keep_alive: false,
                };
            }
            Err(Failure::Upstream(e)) => return fail(client, 502, &e).await,
            Err(Failure::Timeout(e)) => return fail(client, 504, &e).await,
        }
    }
}

enum Failure {
    /// The upstream closed before any response byte (a stale keep-alive connection).
    Stale,
    Upstream(String),
    /// No response byte within the idle timeout.
    Timeout(String),
    Client(String),
}

async fn fail(client: &ClientStream, status: u16, message: &str) -> Exchange {
    let reply = crate::core::reply::Reply::refusal(status, message, None);
    let _ = write_all(client, &reply.to_bytes()).await;
    Exchange {
        error: Some(message.to_string()),
        status_code: Some(status),
        upstream: None,
        client_keep_alive: false,
    }
}

async fn send_and_read_head(
    shared: &Shared,
    client: &ClientStream,
    client_buf: &mut Vec<u8>,
    head: &RequestHead,
    request: &[u8],
    conn: &mut Upstream,
) -> Result<ResponseHead, Failure> {
    let mut first = request.to_vec();
    let body_left = match head.body {
        BodyFraming::Length(n) => n - coalesce(&mut first, client_buf, n),
        _ => 0,
    };
    if write_all(&conn.stream, &first).await.is_err() {
        return Err(Failure::Stale);
    }
    let idle = shared.settings.idle_timeout;
    let body = match head.body {
        BodyFraming::Length(_) => {
            copy_length(client, client_buf, &conn.stream, body_left, idle).await
        }
        BodyFraming::Chunked => copy_chunked(client, client_buf, &conn.stream, true, idle).await,
        BodyFraming::Empty | BodyFraming::UntilClose => Ok(()),
    };
    match body {
        Ok(()) => {}
        Err(CopyError::Read(e)) => return Err(Failure::Client(e)),
        Err(CopyError::Write(e)) => {
            return Err(Failure::Upstream(format!(
                "Failed to send request to remote host: {e}"
            )))
        }
    }
    let is_head = head.method.eq_ignore_ascii_case("HEAD");
    let limits = shared.settings.head_limits;
    let client_http11 = head.version == Version::Http11;
    loop {
        match parse_response(&conn.buf, &limits, is_head) {
            Ok(Some(resp)) => {
                if (100..200).contains(&resp.status) {
                    let interim = conn.buf.get(..resp.head_len).unwrap_or_default().to_vec();
                    conn.buf.drain(..resp.head_len);
                    if resp.status == 101 {
                        return Err(Failure::Upstream(
                            "remote host switched protocols, which this proxy does not forward"
                                .into(),
                        ));
                    }
                    // Interim responses go to HTTP/1.1 clients only (RFC 9110 §15.2).
                    if client_http11 && write_all(client, &interim).await.is_err() {
                        return Err(Failure::Client("client closed".into()));
                    }
                    continue;
                }
                return Ok(resp);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Upstream(format!(
                    "invalid response from remote host: {e}"
                )))
            }
        }
        let was_empty = conn.buf.is_empty();
        let limit = shared
            .settings
            .idle_timeout
            .unwrap_or(std::time::Duration::from_secs(300));
        let read = async {
            if was_empty {
                // Right after the request the answer is never there yet: wait
                // for it instead of a read that would only say so.
                conn.stream.readable().await?;
            }
            read_more(&conn.stream, &mut conn.buf).await
        };
        match crate::shell::runtime::timeout(limit, read).await {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(Failure::Timeout(format!(
                    "Timed out reading response from remote host after {limit:?}"
                )))
            }
            Ok(0) | Err(_) if was_empty => return Err(Failure::Stale),
            Ok(0) => {
                return Err(Failure::Upstream(
                    "remote host closed the connection mid-response".into(),
                ))
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Failure::Upstream(format!(
                    "Failed to read response from remote host: {e}"
                )))
            }
        }
    }
}

/// Most body bytes sent in the same write as a head.
const COALESCE_MAX: usize = 64 * 1024;

/// Move up to `n` already-read body bytes from `pending` to the end of `out`
/// (a head about to be written), so head and body leave in one write.
/// Returns how many moved.
fn coalesce(out: &mut Vec<u8>, pending: &mut Vec<u8>, n: u64) -> u64 {
    let take = usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(pending.len())
        .min(COALESCE_MAX);
    out.extend_from_slice(pending.get(..take).unwrap_or_default());
    pending.drain(..take);
    take as u64
}

async fn relay(
    client: &ClientStream,
    head: &RequestHead,
    resp: ResponseHead,
    mut conn: Upstream,
    idle: Option<std::time::Duration>,
) -> Exchange {
    let client_http11 = head.version == Version::Http11;
    conn.buf.drain(..resp.head_len);
    let chunked_to_client = resp.body == BodyFraming::Chunked && client_http11;
    let close_delimited = resp.body == BodyFraming::UntilClose
        || (resp.body == BodyFraming::Chunked && !client_http11);
    let client_keep = head.keep_alive() && !close_delimited;

    let mut out = Vec::with_capacity(512);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, resp.reason);
    // The upstream's X-Smokescreen-Error must not pose as ours.
    push_headers(&mut out, &resp.headers, &["x-smokescreen-error"]);
    match resp.body {
        BodyFraming::Length(n) => push_length(&mut out, n),
        BodyFraming::Chunked if chunked_to_client => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
        }
        BodyFraming::Empty => {
            // HEAD and 304 answers keep the Content-Length that describes the resource.
            if let Some(v) = resp.headers.get("content-length") {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
        }
        _ => {}
    }
    if client_keep {
        if !client_http11 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    } else {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    // The body bytes already read go out with the head: one write, one packet.
    let body_left = match resp.body {
        BodyFraming::Length(n) => n - coalesce(&mut out, &mut conn.buf, n),
        _ => 0,
    };
    if let Err(e) = write_all(client, &out).await {
        return Exchange {
            error: Some(format!("client: {e}")),
            status_code: None,
            upstream: None,
            client_keep_alive: false,
        };
    }
    let copied = match resp.body {
        BodyFraming::Empty => Ok(()),
        BodyFraming::Length(_) => {
            copy_length(&conn.stream, &mut conn.buf, client, body_left, idle).await
        }
        BodyFraming::Chunked => {
            copy_chunked(&conn.stream, &mut conn.buf, client, chunked_to_client, idle).await
        }
        BodyFraming::UntilClose => {
            copy_until_close(&conn.stream, &mut conn.buf, client, idle).await
        }
    };
    match copied {
        Ok(()) => {
            let upstream_keep =
                resp.keep_alive() && resp.body != BodyFraming::UntilClose && conn.buf.is_empty();
            Exchange {
                error: None,
                status_code: None,
                upstream: if upstream_keep { Some(conn) } else { None },
                client_keep_alive: client_keep,
            }
        }
        // The head is already sent: all we can do is close the client so it
        // sees a truncated body rather than a wrong one.
        Err(CopyError::Read(e)) => Exchange {
            error: Some(format!("remote host: {e}")),
            status_code: None,
            upstream: None,
            client_keep_alive: false,
        },
        Err(CopyError::Write(e)) => Exchange {
            error: Some(format!("client: {e}")),
            status_code: None,
            upstream: None,
            client_keep_alive: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_moves_only_the_body_and_leaves_the_surplus() {
        let mut out = b"HEAD\r\n\r\n".to_vec();
        let mut pending = b"bodyNEXT".to_vec();
        assert_eq!(coalesce(&mut out, &mut pending, 4), 4);
        assert_eq!(out, b"HEAD\r\n\r\nbody");
        assert_eq!(pending, b"NEXT");
    }

    #[test]
    fn coalesce_takes_what_is_there_when_the_body_is_longer() {
        let mut out = Vec::new();
        let mut pending = b"abc".to_vec();
        assert_eq!(coalesce(&mut out, &mut pending, 10), 3);
        assert_eq!(out, b"abc");
        assert!(pending.is_empty());
    }

    #[test]
    fn coalesce_is_capped() {
        let mut out = Vec::new();
        let mut pending = vec![7u8; COALESCE_MAX + 10];
        assert_eq!(
            coalesce(&mut out, &mut pending, u64::MAX),
            COALESCE_MAX as u64
        );
        assert_eq!(pending.len(), 10);
    }
}
