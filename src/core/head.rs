//! HTTP/1.0 and 1.1 message heads: strict request parsing (on `httparse`)
//! with the framing rules a proxy needs to be unsmugglable, and upstream
//! response head parsing for forwarding.

use std::fmt;

use crate::core::target::{AbsoluteUri, Target, TargetError};

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: BodyFraming,
    pub head_len: usize,
}

/// Why a head was refused. `Display` is the text sent to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    Target(TargetError),
    Todo,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Target(e) => write!(f, "{e}"),
            HeadError::Todo => f.write_str("malformed request"),
        }
    }
}

impl std::error::Error for HeadError {}

impl HeadError {
    /// HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// Parse a request head from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse_request(_buf: &[u8], _limits: &HeadLimits) -> Result<Option<RequestHead>, HeadError> {
    todo!("helper: request head")
}

/// Parse an upstream response head. `request_was_head`: the request method
/// was HEAD, so the response has no body whatever it says.
pub fn parse_response(
    _buf: &[u8],
    _limits: &HeadLimits,
    _request_was_head: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    todo!("helper: response head")
}
