//! `mitm_domains`: which CONNECT tunnels are opened and inspected, which
//! headers their inner requests get, whether an inner request may go on,
//! and what the detailed per-request log line shows.
//!
//! A header value may name a secret instead of holding it
//! (`${env:NAME}`, `${file:/path}`); reading it is config's job (the core
//! reads no environment or file), and the value is held as a [`Secret`]
//! whose `Debug` and `Display` never show it.

use std::fmt;

use std::sync::Arc;

use super::acl::glob::{parse_glob, Glob};
use super::acl::load::{texts, RawMitmDomain};
use super::head::{Headers, RequestForm, RequestHead};
use super::target::{AbsoluteUri, Target};

/// What a log shows in place of a header value not listed in
/// `detailed_http_logs_full_headers` (Smokescreen's text).
pub const REDACTED: &str = "[REDACTED]";

/// A header value to add. `Debug` and `Display` print [`REDACTED`], so a
/// secret cannot reach a log line, error or tool output by formatting.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The value itself: only for the request head sent upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where an `add_headers` value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// Written in the ACL.
    Literal,
    /// `${env:NAME}`.
    Env(String),
    /// `${file:/path}`: the file's contents, one trailing newline removed.
    File(String),
}

impl ValueSource {
    /// Read a value as written in the ACL: a reference when it is exactly
    /// `${env:NAME}` or `${file:PATH}`, otherwise literal text.
    pub fn of(text: &str) -> ValueSource {
        let inner = text.strip_prefix("${").and_then(|t| t.strip_suffix('}'));
        match inner {
            Some(r) if r.starts_with("env:") && r.len() > 4 => ValueSource::Env(r[4..].to_owned()),
            Some(r) if r.starts_with("file:") && r.len() > 5 => {
                ValueSource::File(r[5..].to_owned())
            }
            _ => ValueSource::Literal,
        }
    }
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Literal => f.write_str("literal"),
            ValueSource::Env(name) => write!(f, "${{env:{name}}}"),
            ValueSource::File(path) => write!(f, "${{file:{path}}}"),
        }
    }
}

/// One `add_headers` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddHeader {
    pub name: String,
    pub source: ValueSource,
    /// The value; a reference's is empty until config resolves it.
    pub value: Secret,
}

/// One validated `mitm_domains` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interception {
    /// The `domain` as written (it is also one of the rule's allowed domains).
    pub domain: String,
    /// `domain` parsed once at load: what it matches.
    pub glob: Glob,
    /// In file order; names are unique (case-insensitively).
    pub add_headers: Vec<AddHeader>,
    pub detailed_http_logs: bool,
    /// Lowercase header names whose values the detailed log shows.
    pub full_headers: Vec<String>,
}

/// Why a `mitm_domains` entry was refused. `Display` is the text after
/// `<rule>: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MitmError {
    /// Smokescreen's text.
    NotAllowed {
        domain: String,
    },
    BadDomain {
        domain: String,
        error: String,
    },
    BadHeaderName {
        domain: String,
        name: String,
    },
    BadHeaderValue {
        domain: String,
        name: String,
    },
    DuplicateHeader {
        domain: String,
        name: String,
    },
}

impl fmt::Display for MitmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MitmError::NotAllowed { domain } => write!(
                f,
                "domain {domain} was added to mitm_domains but is missing in allowed_domains"
            ),
            MitmError::BadDomain { domain, error } => {
                write!(f, "mitm_domains: {domain}: {error}")
            }
            MitmError::BadHeaderName { domain, name } => {
                write!(
                    f,
                    "mitm_domains: {domain}: add_headers: invalid header name {name:?}"
                )
            }
            MitmError::BadHeaderValue { domain, name } => write!(
                f,
                "mitm_domains: {domain}: add_headers: {name}: the value has a control character"
            ),
            MitmError::DuplicateHeader { domain, name } => {
                write!(
                    f,
                    "mitm_domains: {domain}: add_headers: {name} is given twice"
                )
            }
        }
    }
}

/// Header names the proxy owns in an inner request; adding them would
/// change framing or routing.
const RESERVED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Validate one entry. `allowed` are the rule's `allowed_domains` as
/// written: the domain must be one of them exactly (as in Smokescreen).
pub fn validate(
    domain: &str,
    allowed: &[&str],
    headers: &[(String, String)],
    detailed_http_logs: bool,
    full_headers: &[String],
) -> Result<Interception, MitmError> {
    let glob = parse_glob(domain).map_err(|e| MitmError::BadDomain {
        domain: domain.to_owned(),
        error: e.to_string(),
    })?;
    if !allowed.contains(&domain) {
        return Err(MitmError::NotAllowed {
            domain: domain.to_owned(),
        });
    }
    let mut add_headers: Vec<AddHeader> = Vec::with_capacity(headers.len());
    for (name, text) in headers {
        let err_name = || (domain.to_owned(), name.clone());
        if !is_token(name) || RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            let (domain, name) = err_name();
            return Err(MitmError::BadHeaderName { domain, name });
        }
        if add_headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
        {
            let (domain, name) = err_name();
            return Err(MitmError::DuplicateHeader { domain, name });
        }
        let source = ValueSource::of(text);
        let value = match source {
            ValueSource::Literal => Secret::new(text.clone()),
            _ => Secret::default(),
        };
        if !value_ok(value.expose()) {
            let (domain, name) = err_name();
            return Err(MitmError::BadHeaderValue { domain, name });
        }
        add_headers.push(AddHeader {
            name: name.clone(),
            source,
            value,
        });
    }
    Ok(Interception {
        domain: domain.to_owned(),
        glob,
        add_headers,
        detailed_http_logs,
        full_headers: full_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    })
}

/// Validate a rule's `mitm_domains` against its `allowed_domains` as written.
pub fn from_entries(
    allowed: &[String],
    entries: Vec<RawMitmDomain>,
) -> Result<Vec<Arc<Interception>>, MitmError> {
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let domain = entry.domain.as_ref().map(|t| t.0.as_str()).unwrap_or("");
        out.push(Arc::new(validate(
            domain,
            &allowed,
            &entry.headers(),
            entry.detailed_http_logs.unwrap_or(false),
            &texts(entry.detailed_http_logs_full_headers.as_deref()),
        )?));
    }
    Ok(out)
}

/// An RFC 9110 token (a header name).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A field value may not carry CR, LF or NUL (it would split the head).
pub fn value_ok(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// The index of the first entry whose domain matches a canonical host
/// (file order), as Smokescreen picks it.
pub fn position<'a>(entries: impl Iterator<Item = &'a Interception>, host: &str) -> Option<usize> {
    let mut entries = entries;
    entries.position(|e| e.glob.matches(host))
}

/// Whether an inner request may go on: an origin-form request whose one
/// `Host` names the tunnel's host and port (the port may be left out when
/// it is 443). `tunnel` is the CONNECT target's normalised host.
pub fn inner_request_allowed(head: &RequestHead, tunnel: &str, port: u16) -> Result<(), String> {
    if !matches!(head.form, RequestForm::Origin(_)) {
        return Err("inner request must be in origin form (a path)".to_owned());
    }
    let hosts: Vec<&[u8]> = head.headers.get_all("host").collect();
    let [host] = hosts.as_slice() else {
        return Err(format!(
            "inner request must carry exactly one Host header (got {})",
            hosts.len()
        ));
    };
    let host = String::from_utf8_lossy(host);
    let (name, given_port) = split_host_port(host.trim());
    let name = name.trim_end_matches('.');
    let port_ok = match given_port {
        None => port == 443,
        Some(p) => p.parse::<u16>().ok() == Some(port),
    };
    if name.eq_ignore_ascii_case(tunnel) && port_ok {
        Ok(())
    } else {
        Err(format!(
            "inner request for host {host:?} does not match the tunnel's host {tunnel}:{port}"
        ))
    }
}

fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// The inner request's headers with the configured ones added, replacing
/// any the client sent with the same name (in any case).
pub fn with_added_headers(headers: &Headers, intercept: &Interception) -> Headers {
    let mut out: Vec<(String, Vec<u8>)> = headers
        .0
        .iter()
        .filter(|(n, _)| {
            !intercept
                .add_headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(n))
        })
        .cloned()
        .collect();
    for h in &intercept.add_headers {
        out.push((h.name.clone(), h.value.expose().as_bytes().to_vec()));
    }
    Headers(out)
}

/// The request to forward for an allowed inner request: aimed at the
/// tunnel's target (so `core::forward` writes its `Host`), with the
/// configured headers added.
pub fn inner_head(head: &RequestHead, tunnel: &Target, intercept: &Interception) -> RequestHead {
    let path_and_query = match &head.form {
        RequestForm::Origin(p) => p.clone(),
        _ => "/".to_owned(),
    };
    RequestHead {
        method: head.method.clone(),
        form: RequestForm::Absolute(AbsoluteUri {
            target: tunnel.clone(),
            path_and_query,
        }),
        version: head.version,
        headers: with_added_headers(&head.headers, intercept),
        body: head.body,
        head_len: head.head_len,
    }
}

/// The `mitm_req_url` field: `https://host[:port]/path` of an inner request.
pub fn request_url(head: &RequestHead, tunnel: &Target) -> String {
    let path = match &head.form {
        RequestForm::Origin(p) => p.as_str(),
        _ => "/",
    };
    let host = tunnel.host.uri_str();
    if tunnel.port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{}{path}", tunnel.port)
    }
}

/// The `mitm_req_headers` field: every header the client sent, values
/// replaced by [`REDACTED`] unless named in `detailed_http_logs_full_headers`
/// (Go's `http.Header` printed with `%v`). Added headers are not in it: the
/// log shows what the client sent.
pub fn logged_headers(headers: &Headers, intercept: &Interception) -> String {
    let mut out = String::from("map[");
    for (i, (name, value)) in headers.0.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(name);
        out.push_str(":[");
        if intercept
            .full_headers
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
        {
            out.push_str(&String::from_utf8_lossy(value));
        } else {
            out.push_str(REDACTED);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// What `check` and `test-policy` say about an interception: the domain and
/// the header names (never values).
pub fn describe(intercept: &Interception) -> String {
    let names: Vec<&str> = intercept
        .add_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    if names.is_empty() {
        format!("intercepted ({}), no headers added", intercept.domain)
    } else {
        format!(
            "intercepted ({}), adds headers: {}",
            intercept.domain,
            names.join(", ")
        )
    }
}
