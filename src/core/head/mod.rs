//! HTTP/1.0 and 1.1 message heads: strict request parsing (on `httparse`)
//! with the framing rules a proxy needs to be unsmugglable, and upstream
//! response head parsing for forwarding.
//!
//! A proxy that reads a head differently from the server behind it can be
//! used to smuggle requests, so anything RFC 9112 lets a recipient guess at
//! (bare LF, obs-fold, CL+TE, odd codings) is refused by name instead. The
//! head is pre-scanned byte by byte so every refusal is precise; `httparse`
//! then splits the already-validated header section into fields.

use std::fmt;

mod line;
mod scan;

use crate::core::target::{
    parse_absolute_uri, parse_connect_target, AbsoluteUri, Target, TargetError,
};
use line::{is_tchar, request_line, status_line, trim_ows};
use scan::{HeadScanner, Kind, Scan};

/// Bounds on what a peer may send before we refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest head (request line + headers + final CRLF) accepted.
    pub max_head_bytes: usize,
    /// Most header fields accepted.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The protocol text as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields in arrival order; names as received (compare case-insensitively).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, Vec<u8>)>);

impl Headers {
    /// First value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    /// Every value of `name` (case-insensitive).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Lowercase tokens of every `Connection` field. The forwarder removes the
    /// headers named here (they are hop-by-hop); members that are not tokens
    /// can name no header and are skipped.
    pub fn connection_tokens(&self) -> Vec<String> {
        let mut tokens = Vec::new();
        for value in self.get_all("connection") {
            for member in value.split(|&b| b == b',') {
                let member = trim_ows(member);
                if !member.is_empty() && member.iter().all(|&b| is_tchar(b)) {
                    tokens.push(String::from_utf8_lossy(member).to_ascii_lowercase());
                }
            }
        }
        tokens
    }

    /// Persistence per RFC 9112 §9.3: `close` ends it, HTTP/1.0 needs `keep-alive`.
    fn keep_alive(&self, version: Version) -> bool {
        let tokens = self.connection_tokens();
        if tokens.iter().any(|t| t == "close") {
            return false;
        }
        match version {
            Version::Http11 => true,
            Version::Http10 => tokens.iter().any(|t| t == "keep-alive"),
        }
    }
}

/// How the message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (requests without CL/TE, HEAD/1xx/204/304 responses).
    Empty,
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the upstream closes.
    UntilClose,
}

/// The request target, by form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestForm {
    /// `CONNECT host:port`.
    Connect(Target),
    /// `GET http://host/path` (absolute-form, scheme http).
    Absolute(AbsoluteUri),
    /// `GET /path`: a request meant for an origin server, refused by a proxy.
    Origin(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub form: RequestForm,
    pub version: Version,
    pub headers: Headers,
    pub body: BodyFraming,
    /// Bytes of the buffer the head used; what follows is body or tunnel data.
    pub head_len: usize,
}

impl RequestHead {
    /// Whether the client wants the connection kept open after this exchange.
    pub fn keep_alive(&self) -> bool {
        self.headers.keep_alive(self.version)
    }

    /// Lowercase tokens of the `Connection` fields (headers to strip when forwarding).
    pub fn connection_tokens(&self) -> Vec<String> {
        self.headers.connection_tokens()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: BodyFraming,
    pub head_len: usize,
    /// The upstream sent framing a recipient must not trust for the next
    /// message (CL next to TE, or TE in HTTP/1.0): forward this response,
    /// then close the connection (RFC 9112 §6.1, §6.3).
    pub framing_conflict: bool,
}

impl ResponseHead {
    /// Whether the upstream connection may carry another exchange afterwards.
    pub fn keep_alive(&self) -> bool {
        !self.framing_conflict
            && self.body != BodyFraming::UntilClose
            && self.headers.keep_alive(self.version)
    }

    /// Lowercase tokens of the `Connection` fields (headers to strip when forwarding).
    pub fn connection_tokens(&self) -> Vec<String> {
        self.headers.connection_tokens()
    }
}

/// Why a head was refused. `Display` is the text sent to the client.
///
/// For a response head the shell answers its client with 502 instead; the
/// text is then only logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    Target(TargetError),
    /// The head (or what has arrived of it) exceeds `max_head_bytes`.
    HeadTooLarge,
    /// More than `max_headers` fields.
    TooManyHeaders,
    /// An LF not preceded by CR.
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// A NUL byte anywhere in the head.
    Nul,
    /// A field line starting with whitespace (obs-fold).
    ObsFold,
    /// `Name : value`.
    SpaceBeforeColon,
    /// A field line without a colon.
    MissingColon,
    InvalidHeaderName,
    InvalidHeaderValue,
    InvalidMethod,
    /// Not `method SP target SP version`.
    MalformedRequestLine,
    /// Control or space byte in the request target, or bytes that are not UTF-8.
    InvalidTargetChar,
    /// `OPTIONS *`: meaningless to a forward proxy.
    AsteriskForm,
    /// Anything but HTTP/1.0 and HTTP/1.1 (HTTP/0.9, HTTP/2.0 preface, ...).
    UnsupportedVersion,
    MalformedStatusLine,
    InvalidStatus,
    /// Both framing headers: the classic CL.TE / TE.CL smuggling vector.
    ContentLengthWithTransferEncoding,
    /// Not 1*DIGIT (`+3`, `3 4`, empty list member, ...).
    InvalidContentLength,
    /// Several Content-Length values that differ.
    ConflictingContentLength,
    /// Does not fit in 64 bits.
    ContentLengthTooLarge,
    /// More than one Transfer-Encoding field in a request.
    MultipleTransferEncoding,
    /// Empty member, non-token member, or `chunked` more than once.
    InvalidTransferEncoding,
    /// The final coding of a request is not `chunked`: its length is unknowable.
    TransferEncodingNotChunked,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing).
    TransferEncodingInHttp10,
    /// CONNECT with Content-Length > 0 or Transfer-Encoding.
    BodyOnConnect,
    /// More than one Host field.
    MultipleHost,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeadError::Target(e) => return write!(f, "{e}"),
            HeadError::HeadTooLarge => "message head too large",
            HeadError::TooManyHeaders => "too many header fields",
            HeadError::BareLf => "bare LF in message head",
            HeadError::BareCr => "bare CR in message head",
            HeadError::Nul => "NUL byte in message head",
            HeadError::ObsFold => "obsolete line folding is not allowed",
            HeadError::SpaceBeforeColon => "whitespace between header name and colon",
            HeadError::MissingColon => "header line without a colon",
            HeadError::InvalidHeaderName => "invalid header field name",
            HeadError::InvalidHeaderValue => "invalid header field value",
            HeadError::InvalidMethod => "invalid request method",
            HeadError::MalformedRequestLine => "malformed request line",
            HeadError::InvalidTargetChar => "invalid character in request target",
            HeadError::AsteriskForm => "asterisk-form request target is not supported by a proxy",
            HeadError::UnsupportedVersion => "unsupported HTTP version",
            HeadError::MalformedStatusLine => "malformed status line",
            HeadError::InvalidStatus => "invalid status code",
            HeadError::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding are present"
            }
            HeadError::InvalidContentLength => "invalid Content-Length",
            HeadError::ConflictingContentLength => "conflicting Content-Length values",
            HeadError::ContentLengthTooLarge => "Content-Length too large",
            HeadError::MultipleTransferEncoding => "more than one Transfer-Encoding header",
            HeadError::InvalidTransferEncoding => "invalid Transfer-Encoding",
            HeadError::TransferEncodingNotChunked => "Transfer-Encoding must end with chunked",
            HeadError::TransferEncodingInHttp10 => "Transfer-Encoding is not allowed in HTTP/1.0",
            HeadError::BodyOnConnect => "CONNECT request must not have a body",
            HeadError::MultipleHost => "more than one Host header",
        })
    }
}

impl std::error::Error for HeadError {}

impl From<TargetError> for HeadError {
    fn from(e: TargetError) -> Self {
        HeadError::Target(e)
    }
}

impl HeadError {
    /// HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::HeadTooLarge | HeadError::TooManyHeaders => 431,
            _ => 400,
        }
    }
}

/// Split the validated field section with `httparse`.
fn fields(section: &[u8], count: usize) -> Result<Headers, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; count];
    match httparse::parse_headers(section, &mut slots) {
        Ok(httparse::Status::Complete((_, parsed))) => Ok(Headers(
            parsed
                .iter()
                .map(|h| (h.name.to_string(), trim_ows(h.value).to_vec()))
                .collect(),
        )),
        // The pre-scan accepted the section, so these are not expected; map them anyway.
        Ok(httparse::Status::Partial) => Err(HeadError::MissingColon),
        Err(httparse::Error::HeaderName | httparse::Error::Token) => {
            Err(HeadError::InvalidHeaderName)
        }
        Err(httparse::Error::HeaderValue) => Err(HeadError::InvalidHeaderValue),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(httparse::Error::NewLine) => Err(HeadError::BareLf),
        Err(httparse::Error::Status | httparse::Error::Version) => {
            Err(HeadError::MalformedRequestLine)
        }
    }
}

/// The header section of a complete scan.
fn scanned_fields(buf: &[u8], scan: &Scan) -> Result<Headers, HeadError> {
    let section = buf
        .get(scan.start_line_end + 2..scan.head_len)
        .unwrap_or_default();
    fields(section, scan.fields)
}

/// Content-Length: every value, every comma-separated member 1*DIGIT and
/// identical; the first one is the length.
pub fn content_length(headers: &Headers) -> Result<Option<u64>, HeadError> {
    let mut first: Option<&[u8]> = None;
    for value in headers.get_all("content-length") {
        for member in value.split(|&b| b == b',') {
            let member = trim_ows(member);
            if member.is_empty() || !member.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::InvalidContentLength);
            }
            match first {
                None => first = Some(member),
                Some(f) if f != member => return Err(HeadError::ConflictingContentLength),
                Some(_) => {}
            }
        }
    }
    let Some(digits) = first else { return Ok(None) };
    digits
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map(Some)
        .ok_or(HeadError::ContentLengthTooLarge)
}

/// Whether a Transfer-Encoding list ends in `chunked`. Empty or non-token
/// members and a repeated `chunked` are errors (RFC 9112 §6.1).
fn te_ends_chunked<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<bool, HeadError> {
    let mut chunked_seen = false;
    let mut last_chunked = false;
    for value in values {
        for member in value.split(|&b| b == b',') {
            let member = trim_ows(member);
            // A coding may carry parameters (`gzip;q=1` is not legal, but `x;a=b` is).
            let coding = member
                .split(|&b| b == b';')
                .next()
                .map(trim_ows)
                .unwrap_or_default();
            if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                return Err(HeadError::InvalidTransferEncoding);
            }
            last_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if last_chunked {
                if chunked_seen || member.len() != coding.len() {
                    return Err(HeadError::InvalidTransferEncoding);
                }
                chunked_seen = true;
            }
        }
    }
    Ok(last_chunked)
}

/// Parse a request head from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse_request(buf: &[u8], limits: &HeadLimits) -> Result<Option<RequestHead>, HeadError> {
    RequestParser::default().parse(buf, limits)
}

/// [`parse_request`] for a head that arrives in pieces: give it the same
/// growing buffer after every read. Only bytes it has not seen are
/// examined, so the total work is linear in the head's size however it is
/// split (re-parsing from the start after every one-byte read was
/// quadratic, and cost the proxy CPU before authentication).
#[derive(Clone, Debug)]
pub struct RequestParser {
    scanner: HeadScanner,
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser {
            scanner: HeadScanner::new(Kind::Request),
        }
    }
}

impl RequestParser {
    /// `buf` must start with the bytes given before (it may only grow).
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
    ) -> Result<Option<RequestHead>, HeadError> {
        match self.scanner.scan(buf, limits)? {
            Some(scan) => request_head(buf, &scan).map(Some),
            None => Ok(None),
        }
    }

    /// Bytes examined so far, over every call (the scanner's work).
    pub fn examined(&self) -> usize {
        self.scanner.examined()
    }
}

/// The request head of a complete, pre-validated scan.
fn request_head(buf: &[u8], scan: &Scan) -> Result<RequestHead, HeadError> {
    let line = buf.get(scan.start..scan.start_line_end).unwrap_or_default();
    let (method, target, version) = request_line(line)?;
    let headers = scanned_fields(buf, scan)?;

    if headers.get_all("host").count() > 1 {
        return Err(HeadError::MultipleHost);
    }
    let body = request_framing(&headers, version)?;
    let form = if method == "CONNECT" {
        if matches!(body, BodyFraming::Chunked) || matches!(body, BodyFraming::Length(n) if n > 0) {
            return Err(HeadError::BodyOnConnect);
        }
        RequestForm::Connect(parse_connect_target(target)?)
    } else if target.starts_with('/') {
        RequestForm::Origin(target.to_string())
    } else if target == "*" {
        return Err(HeadError::AsteriskForm);
    } else {
        RequestForm::Absolute(parse_absolute_uri(target)?)
    };
    Ok(RequestHead {
        method: method.to_string(),
        form,
        version,
        headers,
        body,
        head_len: scan.head_len,
    })
}

/// RFC 9112 §6.3 for requests, refusing every ambiguous case.
fn request_framing(headers: &Headers, version: Version) -> Result<BodyFraming, HeadError> {
    let te_count = headers.get_all("transfer-encoding").count();
    let has_cl = headers.get("content-length").is_some();
    if te_count > 0 && has_cl {
        return Err(HeadError::ContentLengthWithTransferEncoding);
    }
    if te_count > 1 {
        return Err(HeadError::MultipleTransferEncoding);
    }
    if te_count == 1 {
        if version == Version::Http10 {
            return Err(HeadError::TransferEncodingInHttp10);
        }
        return if te_ends_chunked(headers.get_all("transfer-encoding"))? {
            Ok(BodyFraming::Chunked)
        } else {
            Err(HeadError::TransferEncodingNotChunked)
        };
    }
    Ok(content_length(headers)?.map_or(BodyFraming::Empty, BodyFraming::Length))
}

/// Parse an upstream response head. `request_was_head`: the request method
/// was HEAD, so the response has no body whatever it says.
pub fn parse_response(
    buf: &[u8],
    limits: &HeadLimits,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    ResponseParser::default().parse(buf, limits, request_was_head)
}

/// [`parse_response`] resumed across reads, like [`RequestParser`]: an
/// origin that trickles its head costs work linear in the head's size.
pub struct ResponseParser {
    scanner: HeadScanner,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser {
            scanner: HeadScanner::new(Kind::Response),
        }
    }
}

impl ResponseParser {
    /// `buf` must start with the bytes given before (it may only grow);
    /// after a head is taken off `buf`, start a new parser.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
        request_was_head: bool,
    ) -> Result<Option<ResponseHead>, HeadError> {
        match self.scanner.scan(buf, limits)? {
            Some(scan) => response_head(buf, &scan, request_was_head).map(Some),
            None => Ok(None),
        }
    }

    /// Bytes examined so far, over every call (the scanner's work).
    pub fn examined(&self) -> usize {
        self.scanner.examined()
    }
}

/// The response head of a complete, pre-validated scan.
fn response_head(
    buf: &[u8],
    scan: &Scan,
    request_was_head: bool,
) -> Result<ResponseHead, HeadError> {
    let line = buf.get(scan.start..scan.start_line_end).unwrap_or_default();
    let (version, status, reason) = status_line(line)?;
    let headers = scanned_fields(buf, scan)?;

    let has_te = headers.get("transfer-encoding").is_some();
    let has_cl = headers.get("content-length").is_some();
    let no_body =
        request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
    let (body, framing_conflict) = if no_body {
        (BodyFraming::Empty, has_te && has_cl)
    } else if has_te && version == Version::Http10 {
        // RFC 9112 §6.1: TE in HTTP/1.0 is faulty framing; read until close.
        (BodyFraming::UntilClose, true)
    } else if has_te {
        // Multiple TE fields form one list here: a response cannot be refused
        // for it, and the list's final coding decides (TE overrides CL).
        let body = if te_ends_chunked(headers.get_all("transfer-encoding"))? {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        };
        (body, has_cl)
    } else {
        (
            content_length(&headers)?.map_or(BodyFraming::UntilClose, BodyFraming::Length),
            false,
        )
    };
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
        body,
        head_len: scan.head_len,
        framing_conflict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<Option<RequestHead>, HeadError> {
        parse_request(s.as_bytes(), &HeadLimits::default())
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let full = "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(req(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(matches!(req(full), Ok(Some(_))));
    }

    #[test]
    fn a_target_that_is_not_utf8_is_refused() {
        let raw = b"CONNECT \xff.example.com:443 HTTP/1.1\r\n\r\n";
        assert_eq!(
            parse_request(raw, &HeadLimits::default()),
            Err(HeadError::InvalidTargetChar)
        );
        // A UTF-8 control character is as bad as an ASCII one.
        let raw = "CONNECT a\u{85}b.example.com:443 HTTP/1.1\r\n\r\n";
        assert!(req(raw).is_err());
    }

    #[test]
    fn empty_line_flood_is_bounded() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            max_headers: 10,
        };
        assert_eq!(parse_request(&b"\r\n".repeat(32), &limits), Ok(None));
        assert_eq!(
            parse_request(&b"\r\n".repeat(33), &limits),
            Err(HeadError::HeadTooLarge)
        );
        assert_eq!(HeadError::HeadTooLarge.status(), 431);
    }

    #[test]
    fn connection_tokens_and_keep_alive() {
        let h =
            req("GET http://a/ HTTP/1.1\r\nConnection: Close, X-Foo\r\nConnection: ,te\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(h.connection_tokens(), vec!["close", "x-foo", "te"]);
        assert!(!h.keep_alive());
        let h = req("GET http://a/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive());
        let h = req("GET http://a/ HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive());
        let h = req("GET http://a/ HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(h.keep_alive());
    }

    #[test]
    fn response_keep_alive_needs_delimited_body() {
        let limits = HeadLimits::default();
        let r = parse_response(b"HTTP/1.1 200 OK\r\n\r\n", &limits, false)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, BodyFraming::UntilClose);
        assert!(!r.keep_alive());
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
            &limits,
            false,
        )
        .unwrap()
        .unwrap();
        assert!(r.keep_alive());
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            &limits,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.body, BodyFraming::Chunked);
        assert!(r.framing_conflict);
        assert!(!r.keep_alive());
    }
}
