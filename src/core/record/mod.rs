//! Canonical log records and their two renderings: logrus-compatible text
//! (what the Fly page shows) and one JSON object per line.
//!
//! Invariant: one record is always exactly one line. Every value that could
//! carry a quote, backslash, CR, LF, escape sequence or other invisible
//! character is escaped, so a hostile host name or trace id can neither
//! split, forge nor colour a line.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::core::time::Timestamp;

mod text;
use text::{push_text_pair, push_text_value};

/// logrus level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field value. Numbers stay numbers in JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Borrowed where the record outlives the line (every decision and
    /// close line), so rendering a line copies no field into a `String`.
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Bool(bool),
    /// Seconds and other measurements; printed like Go's `%v`.
    Float(f64),
    /// An instant, printed as Go's `time.Time.String()` (`start_time`).
    Time(Timestamp),
    /// An address, printed as Go prints it (`src_host`, `dst_ip`).
    Ip(IpAddr),
    /// `ip:port` (`[ip]:port` for IPv6), as Go's `net.Addr.String()`.
    Addr(SocketAddr),
}

impl Value<'_> {
    /// The value as text, before quoting (Go's `fmt.Sprint`).
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(x) => go_float(*x),
            Value::Time(t) => t.go_string(),
            Value::Ip(ip) => ip.to_string(),
            Value::Addr(a) => a.to_string(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::from(s.as_ref()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Bool(b) => serde_json::Value::from(*b),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::from(go_float(*x))),
            Value::Time(_) | Value::Ip(_) | Value::Addr(_) => {
                serde_json::Value::from(self.to_text())
            }
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}
/// `From<T> for Value` for each type a field takes as it is.
macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(v)
            }
        })*
    };
}

value_from!(
    bool => Bool,
    u64 => UInt,
    f64 => Float,
    Timestamp => Time,
    IpAddr => Ip,
    SocketAddr => Addr,
);

impl From<u16> for Value<'_> {
    fn from(u: u16) -> Self {
        Value::UInt(u64::from(u))
    }
}

/// One log line: level, message and fields (rendered sorted by key).
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine<'a> {
    pub time: Timestamp,
    pub level: Level,
    pub msg: Cow<'a, str>,
    pub fields: Vec<(&'static str, Value<'a>)>,
}

impl<'a> LogLine<'a> {
    pub fn new(time: Timestamp, level: Level, msg: impl Into<Cow<'a, str>>) -> LogLine<'a> {
        LogLine {
            time,
            level,
            msg: msg.into(),
            fields: Vec::new(),
        }
    }

    /// Add a field (builder style).
    pub fn with(mut self, key: &'static str, value: impl Into<Value<'a>>) -> LogLine<'a> {
        self.fields.push((key, value.into()));
        self
    }

    /// logrus TextFormatter output (without colours): `time="…" level=info msg=… k=v …`.
    pub fn render_text(&self) -> String {
        let mut out = String::with_capacity(512);
        self.render_text_into(&mut out);
        out
    }

    /// [`render_text`](Self::render_text), appended to `out` (the log sink
    /// reuses one buffer per thread).
    pub fn render_text_into(&self, out: &mut String) {
        // The RFC 3339 spelling has `:`, so logrus quotes it; nothing in it
        // needs escaping.
        out.push_str("time=\"");
        self.time.push_rfc3339_seconds(out);
        out.push('"');
        out.push_str(" level=");
        out.push_str(self.level.as_str());
        out.push_str(" msg=");
        push_text_value(out, &self.msg);
        // The record builders add fields in key order; anything else is
        // sorted here (logrus sorts keys).
        if self.fields.is_sorted_by(|a, b| a.0 <= b.0) {
            for (key, value) in &self.fields {
                push_text_pair(out, key, value);
            }
        } else {
            let mut fields: Vec<_> = self.fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (key, value) in fields {
                push_text_pair(out, key, value);
            }
        }
    }

    /// One JSON object, keys sorted, `time` with nanoseconds.
    pub fn render_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for (key, value) in &self.fields {
            map.insert((*key).to_string(), value.to_json());
        }
        map.insert("time".into(), self.time.rfc3339_nanos().into());
        map.insert("level".into(), self.level.as_str().into());
        map.insert("msg".into(), self.msg.as_ref().into());
        // serde_json escapes control characters; U+2028/2029 are escaped too
        // below so that no consumer can treat them as line breaks.
        let text = serde_json::Value::Object(map).to_string();
        text.replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    }

    /// Render in the chosen format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.render_text(),
            Format::Json => self.render_json(),
        }
    }

    /// [`render`](Self::render), appended to `out`.
    pub fn render_into(&self, format: Format, out: &mut String) {
        match format {
            Format::Text => self.render_text_into(out),
            Format::Json => out.push_str(&self.render_json()),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Go's `%v` for float64: shortest representation, exponent form outside 1e-4..1e21.
pub fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    // The decimal exponent of the shortest representation, read off Rust's
    // own `{:e}` (the same digits Go picks), not computed with `log10`,
    // which rounds up just below a power of ten (9.999999999999999e20).
    let sci = format!("{x:e}");
    let Some((mant, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..21).contains(&exp) {
        format!("{x}")
    } else {
        // Rust prints `1e-5`; Go prints `1e-05` (at least two exponent digits).
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// `http` or `connect`, as Smokescreen logs `proxy_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyType {
    Connect,
    Http,
}

impl ProxyType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Connect => "connect",
            ProxyType::Http => "http",
        }
    }
}

/// Who the client is, as far as the logs are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The peer address (or the one a trusted PROXY protocol header carried).
    pub source: SocketAddr,
    /// TLS client certificate common name and OU, `unknown` without mTLS.
    pub common_name: String,
    pub organization_unit: String,
}

impl Client {
    pub fn plain(source: SocketAddr) -> Client {
        Client {
            source,
            common_name: "unknown".into(),
            organization_unit: "unknown".into(),
        }
    }

    /// A client with a verified certificate; missing names log as `unknown`.
    pub fn with_cert(source: SocketAddr, cert: Option<&crate::core::auth::ClientCert>) -> Client {
        let name = |v: Option<&String>| {
            v.filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| "unknown".into())
        };
        Client {
            source,
            common_name: name(cert.and_then(|c| c.common_name.as_ref())),
            organization_unit: name(cert.and_then(|c| c.organization_unit.as_ref())),
        }
    }
}

/// CANONICAL-PROXY-DECISION: one per request, written once the outcome
/// (including the dial) is known.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    pub id: String,
    pub proxy_type: ProxyType,
    pub requested_host: String,
    pub client: Client,
    pub start_time: Timestamp,
    pub trace_id: String,
    pub role: String,
    pub project: String,
    pub allow: bool,
    pub enforce_would_deny: bool,
    pub decision_reason: String,
    /// The address dialled, when one was allowed.
    pub dst: Option<SocketAddr>,
    /// What went wrong, when something did (auth failure, address denial, dial error).
    pub error: Option<String>,
    pub content_length: u64,
    /// The status of the proxy's own answer when it refused or failed the
    /// request (Smokescreen HEAD's `status_code`); absent when the request
    /// went through.
    pub status_code: Option<u16>,
    /// The upstream proxy (`host:port`) that carried the request, if any.
    pub upstream_proxy: Option<String>,
    pub level: Level,
    /// Resolved addresses refused before the one dialled (or all of them).
    pub rejected: Vec<(std::net::IpAddr, crate::core::addr::Rule)>,
}

pub const DECISION_MSG: &str = "CANONICAL-PROXY-DECISION";
pub const CLOSE_MSG: &str = "CANONICAL-PROXY-CN-CLOSE";

impl DecisionRecord {
    pub fn to_line(&self, now: Timestamp) -> LogLine<'_> {
        let src = self.client.source;
        let mut line = LogLine::new(now, self.level, DECISION_MSG);
        // Up to 23 fields: one allocation instead of five regrowths.
        line.fields.reserve(23);
        // Pushed in key order, so rendering needs no sort.
        line = line
            .with("allow", self.allow)
            .with("content_length", self.content_length)
            .with("decision_reason", self.decision_reason.as_str());
        if let Some(dst) = self.dst {
            line = line.with("dst_ip", dst.ip()).with("dst_port", dst.port());
        }
        line = line.with("enforce_would_deny", self.enforce_would_deny);
        if let Some(err) = &self.error {
            line = line.with("error", err.as_str());
        }
        line = line
            .with("id", self.id.as_str())
            .with("project", self.project.as_str())
            .with("proxy_type", self.proxy_type.as_str());
        // Only when it adds to `error`: a mixed answer, or several refused addresses.
        if !self.rejected.is_empty() && (self.dst.is_some() || self.rejected.len() > 1) {
            // Our addition: every refused answer, so a mixed DNS answer is visible.
            let list: Vec<String> = self
                .rejected
                .iter()
                .map(|(ip, rule)| format!("{ip} ({rule})"))
                .collect();
            line = line.with("rejected_addrs", list.join(", "));
        }
        line = line
            .with("requested_host", self.requested_host.as_str())
            .with("role", self.role.as_str())
            .with("source_addr", src)
            .with("src_host", src.ip())
            .with("src_host_common_name", self.client.common_name.as_str())
            .with(
                "src_host_organization_unit",
                self.client.organization_unit.as_str(),
            )
            .with("src_port", src.port())
            .with("start_time", self.start_time);
        if let Some(code) = self.status_code {
            line = line.with("status_code", code);
        }
        line = line.with("trace_id", self.trace_id.as_str());
        if let Some(proxy) = &self.upstream_proxy {
            // Our addition: which parent proxy carried the request.
            line = line.with("upstream_proxy", proxy.as_str());
        }
        line
    }
}

/// CANONICAL-PROXY-CN-CLOSE: one per closed CONNECT tunnel.
#[derive(Clone, Debug, PartialEq)]
pub struct CloseRecord {
    pub id: String,
    pub proxy_type: ProxyType,
    pub requested_host: String,
    pub role: String,
    pub source: SocketAddr,
    pub dst: SocketAddr,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub last_activity: Timestamp,
    /// Measured on a monotonic clock by the shell (wall-clock steps do not
    /// distort it), so it need not equal `end_time - start_time`.
    pub duration_secs: f64,
    /// Bytes received from the destination (Smokescreen's meaning).
    pub bytes_in: u64,
    /// Bytes sent to the destination.
    pub bytes_out: u64,
    /// Empty when the tunnel ended cleanly.
    pub error: String,
    pub trace_id: String,
}

impl CloseRecord {
    pub fn to_line(&self, now: Timestamp) -> LogLine<'_> {
        LogLine::new(now, Level::Info, CLOSE_MSG)
            .with("bytes_in", self.bytes_in)
            .with("bytes_out", self.bytes_out)
            .with("dst_ip", self.dst.ip())
            .with("dst_port", self.dst.port())
            .with("duration", self.duration_secs)
            .with("end_time", self.end_time)
            .with("error", self.error.as_str())
            .with("id", self.id.as_str())
            .with("last_activity", self.last_activity)
            .with("proxy_type", self.proxy_type.as_str())
            .with("requested_host", self.requested_host.as_str())
            .with("role", self.role.as_str())
            .with("source_addr", self.source)
            .with("start_time", self.start_time)
            .with("trace_id", self.trace_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::log_read::parse_text;
    use proptest::prelude::*;

    #[test]
    fn go_float_matches_go_percent_v() {
        assert_eq!(go_float(0.170710048), "0.170710048");
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(-1.5e-7), "-1.5e-07");
        assert_eq!(go_float(2.5e300), "2.5e+300");
        // Just below a power of ten: the shortest digits decide the form,
        // as in Go (a log10-based exponent said 21 here).
        assert_eq!(go_float(9.999999999999999e20), "999999999999999900000");
        assert_eq!(go_float(9.99999999999999e-5), "9.99999999999999e-05");
    }

    #[test]
    fn hostile_values_stay_on_one_line() {
        let line = LogLine::new(Timestamp::new(0, 0), Level::Info, "m")
            .with(
                "requested_host",
                "evil\r\nlevel=error msg=FORGED \"x\" \u{1b}[31mred\u{202e}",
            )
            .render_text();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert!(line.contains(
            r#"requested_host="evil\r\nlevel=error msg=FORGED \"x\" \x1b[31mred\u202e""#
        ));
        let parsed = parse_text(&line).unwrap();
        assert_eq!(parsed.0.len(), 4);
    }

    fn arb_value() -> impl Strategy<Value = Value<'static>> {
        prop_oneof![
            any::<String>().prop_map(Value::from),
            "[ -~]{0,20}".prop_map(Value::from),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    const KEYS: [&str; 6] = ["a", "error", "id", "requested_host", "trace_id", "zz"];

    #[test]
    fn fields_added_out_of_order_render_sorted() {
        let t = Timestamp::new(0, 0);
        let sorted = LogLine::new(t, Level::Info, "m")
            .with("a", 1u64)
            .with("b", "x")
            .with("c", true);
        let unsorted = LogLine::new(t, Level::Info, "m")
            .with("c", true)
            .with("a", 1u64)
            .with("b", "x");
        assert_eq!(unsorted.render_text(), sorted.render_text());
        assert!(sorted.render_text().ends_with(" a=1 b=x c=true"));
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u16; 8]>().prop_map(IpAddr::from),
        ]
    }

    proptest! {
        /// The typed values (rendered without an intermediate string) read
        /// exactly as their text would: what the lines said before.
        #[test]
        fn typed_values_render_as_their_text(
            ip in arb_ip(),
            port in any::<u16>(),
            n in any::<i64>(),
            secs in -100_000_000_000i64..100_000_000_000, nanos in 0u32..1_000_000_000,
        ) {
            let t = Timestamp::new(0, 0);
            let at = Timestamp::new(secs, nanos);
            let addr = SocketAddr::new(ip, port);
            let typed = LogLine::new(t, Level::Info, "m")
                .with("a", addr)
                .with("b", ip)
                .with("c", at)
                .with("d", Value::Int(n));
            let text = LogLine::new(t, Level::Info, "m")
                .with("a", addr.to_string())
                .with("b", ip.to_string())
                .with("c", at.go_string())
                .with("d", n.to_string());
            prop_assert_eq!(typed.render_text(), text.render_text());
            prop_assert_eq!(typed.render_json(), text.render_json().replace(&format!("\"d\":\"{n}\""), &format!("\"d\":{n}")));
        }
    }

    proptest! {
        #[test]
        fn text_line_is_one_line_and_parses_back(
            msg in any::<String>(),
            values in proptest::collection::vec(arb_value(), 6),
            secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000,
        ) {
            let mut line = LogLine::new(Timestamp::new(secs, nanos), Level::Warning, msg.clone());
            for (k, v) in KEYS.iter().zip(values.iter()) {
                line = line.with(k, v.clone());
            }
            let text = line.render_text();
            prop_assert!(!text.contains('\n') && !text.contains('\r'));
            let parsed = parse_text(&text).expect("parses");
            prop_assert_eq!(parsed.get("msg"), Some(msg.as_str()));
            prop_assert_eq!(parsed.get("level"), Some("warning"));
            let t = Timestamp::new(secs, nanos).rfc3339_seconds();
            prop_assert_eq!(parsed.get("time"), Some(t.as_str()));
            for (k, v) in KEYS.iter().zip(values.iter()) {
                let text = v.to_text();
                prop_assert_eq!(parsed.get(k), Some(text.as_str()));
            }
            let json = line.render_json();
            let one_line = !json.contains('\n') && !json.contains('\r') && !json.contains('\u{2028}');
            prop_assert!(one_line);
            let back: serde_json::Value = serde_json::from_str(&json).expect("json");
            prop_assert_eq!(back["msg"].as_str(), Some(msg.as_str()));
        }
    }
}
