//! The rules of plain-HTTP forwarding (RFC 9110 §7.6, §9.2.2, §15.2; RFC
//! 9112 §6–7, §9.3), as pure functions the shell applies: which fields reach
//! the origin and the client, how each body is framed on the way, which
//! interim responses are relayed, when an upstream connection may carry the
//! next request, and when a failed request may be sent again.
//!
//! Bodies are always re-framed by our own decoder, never passed with the
//! sender's framing; transfer codings other than `chunked` are kept in order
//! (they describe the bytes, which we do not touch).

use std::fmt;
use std::io::Write as _;

use crate::core::decision::{TRACE_ID_HEADER, UPSTREAM_PROXY_HEADER};
use crate::core::head::{
    content_length, BodyFraming, Headers, RequestForm, RequestHead, ResponseHead, Version,
};
use crate::core::upstream::ProxyUrl;

/// Fields never forwarded in either direction: hop-by-hop (RFC 9110 §7.6.1),
/// proxy credentials and challenges, and the framing and `Host` fields we
/// write ourselves.
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
];

/// Smokescreen's request control fields, meant for this proxy only (the
/// client's next proxy, `X-Upstream-Https-Proxy`, was checked by the ACL).
const PROXY_REQUEST_FIELDS: &[&str] =
    &[TRACE_ID_HEADER, "x-smokescreen-role", UPSTREAM_PROXY_HEADER];

/// Response fields starting with this are the proxy's own (`X-Smokescreen-Error`):
/// an origin's must not pose as ours.
const PROXY_RESPONSE_PREFIX: &str = "x-smokescreen-";

/// Why a response cannot be forwarded; the shell answers 502 with this text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardError {
    /// A `101`: plain forwarding carries no upgraded protocols.
    SwitchedProtocols,
    /// Transfer codings other than `chunked` towards an HTTP/1.0 client,
    /// which must not be sent `Transfer-Encoding` (RFC 9112 §6.1).
    CodingForHttp10(String),
    /// More interim responses than [`MAX_INTERIM`] before a final one: an
    /// origin that never answers would otherwise hold the request forever
    /// (each read has the idle timeout, the sequence had no limit).
    TooManyInterim,
}

/// Interim (1xx) responses relayed or dropped per request before the
/// exchange is refused with a 502.
pub const MAX_INTERIM: usize = 16;

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::SwitchedProtocols => {
                f.write_str("remote host switched protocols, which this proxy does not forward")
            }
            ForwardError::TooManyInterim => write!(
                f,
                "remote host sent more than {MAX_INTERIM} interim responses"
            ),
            ForwardError::CodingForHttp10(codings) => write!(
                f,
                "remote host used a transfer coding ({codings}) an HTTP/1.0 client cannot receive"
            ),
        }
    }
}

impl std::error::Error for ForwardError {}

/// How the shell moves a response body to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body (HEAD, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Decode the chunked framing and encode it again canonically.
    Rechunk,
    /// Decode the chunked framing and send the bare data (HTTP/1.0 client).
    Dechunk,
    /// Copy until the upstream closes.
    UntilClose,
}

/// A final response as the client gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsePlan {
    /// The head to send, through its final CRLF.
    pub head: Vec<u8>,
    pub body: BodyPlan,
    /// Whether the client connection stays open afterwards.
    pub client_keep_alive: bool,
}

/// An interim (1xx) response, for the client or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interim {
    Relay(Vec<u8>),
    /// Not for this client (HTTP/1.0 clients get no 1xx, RFC 9110 §15.2).
    Drop,
}

/// Methods are case-sensitive tokens (RFC 9110 §9.1): only `HEAD` is HEAD,
/// so `head` gets the body its response announces.
pub fn is_head(req: &RequestHead) -> bool {
    req.method == "HEAD"
}

/// RFC 9110 §9.2.2: the methods whose repetition has the effect of one.
fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// `name` is one of `names` (lowercase), ignoring case.
fn is_one_of<S: AsRef<str>>(name: &str, names: &[S]) -> bool {
    names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(name))
}

/// A response field only the proxy itself may send.
fn is_proxy_response_field(name: &str) -> bool {
    name.get(..PROXY_RESPONSE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PROXY_RESPONSE_PREFIX))
}

/// Copy the end-to-end fields: not hop-by-hop, not named by `Connection`,
/// not matched by `drop`.
fn push_fields(out: &mut Vec<u8>, headers: &Headers, drop: impl Fn(&str) -> bool) {
    let listed = headers.connection_tokens();
    for (name, value) in &headers.0 {
        if is_one_of(name, HOP_BY_HOP) || is_one_of(name, &listed) || drop(name) {
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

/// The transfer codings of a message in order, `chunked` spelled canonically.
fn codings(headers: &Headers) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all("transfer-encoding") {
        for member in String::from_utf8_lossy(value).split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.eq_ignore_ascii_case("chunked") {
                out.push("chunked".to_string());
            } else if !member.is_empty() {
                out.push(member.to_string());
            }
        }
    }
    out
}

fn push_codings(out: &mut Vec<u8>, codings: &[String]) {
    out.extend_from_slice(b"Transfer-Encoding: ");
    out.extend_from_slice(codings.join(", ").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The head sent to the origin: origin-form target, `Host` from the URI
/// (RFC 9112 §3.2.2, whatever `Host` the client sent), the client's
/// end-to-end fields, and our framing for the body.
pub fn request_head(req: &RequestHead, via: Option<&ProxyUrl>) -> Vec<u8> {
    let (path, host) = match &req.form {
        RequestForm::Absolute(uri) => (uri.path_and_query.as_str(), uri.target.host_header()),
        RequestForm::Connect(t) => ("/", t.host_header()),
        RequestForm::Origin(p) => (p.as_str(), "".into()),
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    if via.is_some() {
        // An upstream proxy takes absolute-form (RFC 9112 §3.2.2).
        out.extend_from_slice(b"http://");
        out.extend_from_slice(host.as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(auth) = via.and_then(|p| p.authorization.as_deref()) {
        out.extend_from_slice(b"Proxy-Authorization: ");
        out.extend_from_slice(auth.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1): it
    // sends its body at once, so the origin must not wait for a 100.
    let http10 = req.version == Version::Http10;
    push_fields(&mut out, &req.headers, |name| {
        is_one_of(name, PROXY_REQUEST_FIELDS) || (http10 && name.eq_ignore_ascii_case("expect"))
    });
    match req.body {
        BodyFraming::Length(n) => push_length(&mut out, n),
        BodyFraming::Chunked => push_codings(&mut out, &codings(&req.headers)),
        BodyFraming::Empty | BodyFraming::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn status_line(out: &mut Vec<u8>, resp: &ResponseHead) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, resp.reason);
}

/// A 1xx from the origin: relayed without hop-by-hop or proxy fields to
/// HTTP/1.1 clients; a `101` is refused.
pub fn interim(req: &RequestHead, resp: &ResponseHead) -> Result<Interim, ForwardError> {
    if resp.status == 101 {
        return Err(ForwardError::SwitchedProtocols);
    }
    if req.version != Version::Http11 {
        return Ok(Interim::Drop);
    }
    let mut out = Vec::with_capacity(128);
    status_line(&mut out, resp);
    push_fields(&mut out, &resp.headers, is_proxy_response_field);
    out.extend_from_slice(b"\r\n");
    Ok(Interim::Relay(out))
}

/// The final response as the client gets it. `upload_done`: the whole
/// request body has been sent upstream; if not (the origin answered early),
/// the rest stays unread and the client connection is closed after this
/// response.
pub fn response_head(
    req: &RequestHead,
    resp: &ResponseHead,
    upload_done: bool,
) -> Result<ResponsePlan, ForwardError> {
    let client_http11 = req.version == Version::Http11;
    // Codings matter only for a body they frame. TE in an HTTP/1.0 response
    // is faulty framing (RFC 9112 §6.1): the body runs until close and its
    // claimed codings are not passed on.
    let codings = match (resp.version, resp.body) {
        (Version::Http11, BodyFraming::Chunked | BodyFraming::UntilClose) => codings(&resp.headers),
        _ => Vec::new(),
    };
    let extra_codings = codings.iter().any(|c| c != "chunked");
    if !client_http11 && extra_codings {
        return Err(ForwardError::CodingForHttp10(codings.join(", ")));
    }
    let mut out = Vec::with_capacity(512);
    status_line(&mut out, resp);
    push_fields(&mut out, &resp.headers, is_proxy_response_field);
    let body = match resp.body {
        BodyFraming::Empty => {
            // A HEAD or 304 answer may describe the resource's length, but
            // only a valid one is passed on.
            if let Ok(Some(n)) = content_length(&resp.headers) {
                push_length(&mut out, n);
            }
            BodyPlan::None
        }
        BodyFraming::Length(n) => {
            push_length(&mut out, n);
            BodyPlan::Length(n)
        }
        BodyFraming::Chunked if client_http11 => {
            push_codings(&mut out, &codings);
            BodyPlan::Rechunk
        }
        BodyFraming::Chunked => BodyPlan::Dechunk,
        BodyFraming::UntilClose => {
            if client_http11 && !codings.is_empty() {
                push_codings(&mut out, &codings);
            }
            BodyPlan::UntilClose
        }
    };
    let close_delimited = matches!(body, BodyPlan::UntilClose | BodyPlan::Dechunk);
    let client_keep_alive = req.keep_alive() && !close_delimited && upload_done;
    if !client_keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if !client_http11 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ResponsePlan {
        head: out,
        body,
        client_keep_alive,
    })
}

/// What an idle upstream connection holds when it is about to be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unread {
    /// Nothing: the last response was all there was.
    Nothing,
    /// Bytes nobody asked for (a late body): they would become the next
    /// request's response.
    Bytes,
    /// The origin closed it.
    Closed,
}

/// After an exchange: the upstream connection may be kept only when the
/// response was fully framed and read, nothing past it arrived, the origin
/// did not ask to close, and the whole request body went out.
pub fn keep_upstream(
    resp: &ResponseHead,
    relayed: bool,
    leftover: bool,
    upload_done: bool,
) -> bool {
    relayed && !leftover && upload_done && resp.keep_alive()
}

/// Before an exchange: a kept upstream connection is reused only for the
/// same destination address and when nothing is waiting on it.
pub fn may_reuse(same_addr: bool, unread: Unread) -> bool {
    same_addr && unread == Unread::Nothing
}

/// A request that failed on a reused connection before any response byte is
/// sent again on a fresh one only when repeating it is harmless: an
/// idempotent method with no body (RFC 9110 §9.2.2; never POST or PATCH,
/// never a streamed body).
pub fn may_retry(req: &RequestHead, reused: bool, response_started: bool) -> bool {
    reused && !response_started && req.body == BodyFraming::Empty && is_idempotent(&req.method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::head::{parse_request, HeadLimits};

    fn req(s: &str) -> RequestHead {
        parse_request(s.as_bytes(), &HeadLimits::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn only_idempotent_bodiless_requests_on_reused_connections_are_retried() {
        let get = req("GET http://a/ HTTP/1.1\r\n\r\n");
        assert!(may_retry(&get, true, false));
        assert!(!may_retry(&get, false, false));
        assert!(!may_retry(&get, true, true));
        assert!(!may_retry(
            &req("POST http://a/ HTTP/1.1\r\n\r\n"),
            true,
            false
        ));
        assert!(!may_retry(
            &req("PATCH http://a/ HTTP/1.1\r\n\r\n"),
            true,
            false
        ));
        assert!(!may_retry(
            &req("get http://a/ HTTP/1.1\r\n\r\n"),
            true,
            false
        ));
        let put = req("PUT http://a/ HTTP/1.1\r\nContent-Length: 1\r\n\r\n");
        assert!(!may_retry(&put, true, false));
    }

    #[test]
    fn reuse_needs_the_same_address_and_a_quiet_socket() {
        assert!(may_reuse(true, Unread::Nothing));
        assert!(!may_reuse(false, Unread::Nothing));
        assert!(!may_reuse(true, Unread::Bytes));
        assert!(!may_reuse(true, Unread::Closed));
    }
}
