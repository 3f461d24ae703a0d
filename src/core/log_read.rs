//! Reading our own log lines back: logrus text (`key=value`, Go-quoted
//! values) and JSON, as written by `core::record`. The policy tools
//! (`suggest-acl`, `replay`) stream millions of lines through
//! [`read_decision`], so the text reader borrows every value that needs no
//! unescaping and allocates nothing for lines that are not decisions.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use memchr::{memchr, memchr2};

use serde::Deserialize;

use crate::core::record::DECISION_MSG;

/// A parsed text line: `time`, `level`, `msg` and the fields, all as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedLine(pub Vec<(String, String)>);

impl ParsedLine {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse a text line into key/value pairs (the inverse of `render_text`).
/// `None` when it is not a well-formed logrus line.
pub fn parse_text(line: &str) -> Option<ParsedLine> {
    let mut out = Vec::new();
    for field in TextFields::new(line) {
        let (k, v) = field.ok()?;
        out.push((k.to_string(), v.into_owned()));
    }
    Some(ParsedLine(out))
}

/// The `key=value` pairs of a logrus text line, in order; an `Err` item
/// (and nothing after it) when the line is malformed.
pub struct TextFields<'a> {
    rest: &'a str,
    failed: bool,
}

impl<'a> TextFields<'a> {
    pub fn new(line: &'a str) -> TextFields<'a> {
        TextFields {
            rest: line,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Option<(&'a str, Cow<'a, str>)> {
        let rest = self.rest;
        let eq = memchr(b'=', rest.as_bytes())?;
        let key = &rest[..eq];
        if key.is_empty() || key.bytes().any(|b| b == b' ' || b == b'"') {
            return None;
        }
        let after = &rest[eq + 1..];
        let (value, rest) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (v, used) = unquote_go(quoted)?;
                (v, &quoted[used..])
            }
            None => {
                let end = memchr(b' ', after.as_bytes()).unwrap_or(after.len());
                (Cow::Borrowed(&after[..end]), &after[end..])
            }
        };
        self.rest = match rest.strip_prefix(' ') {
            Some("") => return None,
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return None,
        };
        Some((key, value))
    }
}

impl<'a> Iterator for TextFields<'a> {
    type Item = Result<(&'a str, Cow<'a, str>), ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match self.next_field() {
            Some(kv) => Some(Ok(kv)),
            None => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

/// Decode a Go-quoted string body (after the opening quote). Returns the text
/// (borrowed when it holds no escape) and how many bytes were used including
/// the closing quote.
fn unquote_go(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let end = memchr2(b'"', b'\\', s.as_bytes())?;
    if s.as_bytes()[end] == b'"' {
        return Some((Cow::Borrowed(&s[..end]), end + 1));
    }
    let mut out = String::from(&s[..end]);
    let mut chars = s[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(out), end + i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next()?;
                            code = code * 16 + h.to_digit(16)?;
                        }
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// The fields of a `CANONICAL-PROXY-DECISION` line the policy tools use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct LoggedDecision<'a> {
    #[serde(borrow, default)]
    pub msg: Cow<'a, str>,
    #[serde(borrow, default)]
    pub time: Cow<'a, str>,
    #[serde(borrow, default)]
    pub role: Cow<'a, str>,
    /// `host:port` for CONNECT, the URI's authority for HTTP.
    #[serde(borrow, default)]
    pub requested_host: Cow<'a, str>,
    #[serde(borrow, default)]
    pub proxy_type: Cow<'a, str>,
    #[serde(borrow, default)]
    pub project: Cow<'a, str>,
    #[serde(default)]
    pub allow: bool,
    #[serde(default)]
    pub enforce_would_deny: bool,
    #[serde(borrow, default)]
    pub decision_reason: Cow<'a, str>,
    /// Only when a connection was made.
    #[serde(borrow, default)]
    pub dst_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
}

/// What one log line is, to the policy tools.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per line, on the stack: boxing would allocate per decision
pub enum LogEntry<'a> {
    /// A decision line (text or JSON).
    Decision(LoggedDecision<'a>),
    /// Another of our lines, or another program's: skipped.
    Foreign,
    /// A line that names a decision but does not parse: skipped, counted.
    Malformed,
}

/// Read one line. A prefix before the log line (a container runtime's
/// timestamp, a syslog header) is skipped: the line starts at `time=` or `{`.
pub fn read_decision(line: &str) -> LogEntry<'_> {
    static DECISION: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(DECISION_MSG));
    if DECISION.find(line.as_bytes()).is_none() {
        return LogEntry::Foreign;
    }
    // The common case: the line is only our log line.
    if line.starts_with("time=") {
        return read_text(line).unwrap_or(LogEntry::Malformed);
    }
    if line.starts_with('{') {
        return read_json(line).unwrap_or(LogEntry::Malformed);
    }
    let text_start = line.find("time=");
    let json_start = line.find('{');
    let parsed = match (text_start, json_start) {
        (Some(t), Some(j)) if j < t => read_json(&line[j..]),
        (Some(t), _) => read_text(&line[t..]),
        (None, Some(j)) => read_json(&line[j..]),
        (None, None) => None,
    };
    parsed.unwrap_or(LogEntry::Malformed)
}

/// The alphabetically last field [`read_text`] needs.
const LAST_KEY_USED: &str = "role";

fn read_text(line: &str) -> Option<LogEntry<'_>> {
    let mut d = LoggedDecision::default();
    let flag = |v: &str| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    // logrus writes time, level and msg, then the other keys sorted: once
    // a sorted line is past `role`, the last key used here, the rest of it
    // (about a third) need not be read.
    let mut previous = "";
    let mut sorted = true;
    for field in TextFields::new(line) {
        let (key, value) = field.ok()?;
        if !d.msg.is_empty() {
            sorted &= key > previous;
            if sorted && key > LAST_KEY_USED {
                break;
            }
            previous = key;
        }
        match key {
            "msg" => d.msg = value,
            "time" => d.time = value,
            "role" => d.role = value,
            "requested_host" => d.requested_host = value,
            "proxy_type" => d.proxy_type = value,
            "project" => d.project = value,
            "allow" => d.allow = flag(&value)?,
            "enforce_would_deny" => d.enforce_would_deny = flag(&value)?,
            "decision_reason" => d.decision_reason = value,
            "dst_ip" => d.dst_ip = Some(value),
            "error" => d.error = Some(value),
            _ => {}
        }
    }
    Some(finish(d))
}

fn read_json(line: &str) -> Option<LogEntry<'_>> {
    serde_json::from_str(line.trim_end()).ok().map(finish)
}

fn finish(d: LoggedDecision<'_>) -> LogEntry<'_> {
    if d.msg != DECISION_MSG {
        LogEntry::Foreign
    } else if d.requested_host.is_empty() {
        LogEntry::Malformed
    } else {
        LogEntry::Decision(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"time="2026-11-30T12:00:00Z" level=warning msg=CANONICAL-PROXY-DECISION allow=false content_length=0 decision_reason="rule has enforce policy" enforce_would_deny=true id=c1 project=users proxy_type=connect requested_host="api.example.com:443" role=authed source_addr="127.0.0.1:5000" src_host=127.0.0.1 trace_id="""#;

    #[test]
    fn text_decision_lines_borrow_their_values() {
        let LogEntry::Decision(d) = read_decision(TEXT) else {
            panic!("a decision")
        };
        assert_eq!(d.role, "authed");
        assert_eq!(d.requested_host, "api.example.com:443");
        assert!(matches!(d.requested_host, Cow::Borrowed(_)));
        assert!(!d.allow);
        assert!(d.enforce_would_deny);
        assert_eq!(d.decision_reason, "rule has enforce policy");
        assert_eq!(d.time, "2026-11-30T12:00:00Z");
        assert_eq!(d.dst_ip, None);
    }

    #[test]
    fn prefixed_json_and_escaped_values_are_read() {
        let json = r#"2026-11-30T12:00:00Z stdout F {"allow":true,"decision_reason":"x","dst_ip":"1.2.3.4","enforce_would_deny":false,"level":"info","msg":"CANONICAL-PROXY-DECISION","requested_host":"a.example:443","role":"r\"1","time":"t"}"#;
        let LogEntry::Decision(d) = read_decision(json) else {
            panic!("a decision")
        };
        assert_eq!(d.role, "r\"1");
        assert_eq!(d.dst_ip.as_deref(), Some("1.2.3.4"));
        assert!(d.allow);
        let escaped = TEXT.replace("role=authed", r#"role="a\"b""#);
        let LogEntry::Decision(d) = read_decision(&escaped) else {
            panic!("a decision")
        };
        assert_eq!(d.role, "a\"b");
    }

    #[test]
    fn foreign_and_malformed_lines_are_told_apart() {
        assert_eq!(read_decision("hello world"), LogEntry::Foreign);
        assert_eq!(
            read_decision(r#"time="t" level=info msg=CANONICAL-PROXY-CN-CLOSE id=x"#),
            LogEntry::Foreign
        );
        assert_eq!(
            read_decision(&TEXT.replace("allow=false", "allow=maybe")),
            LogEntry::Malformed
        );
        let cut = TEXT.find("requested_host=").expect("field") + 20;
        assert_eq!(
            read_decision(&TEXT[..cut]),
            LogEntry::Malformed,
            "an unterminated quote"
        );
        // Past `role` a sorted line is not read: a damaged tail loses nothing used.
        assert!(matches!(
            read_decision(&TEXT[..TEXT.len() - 1]),
            LogEntry::Decision(_)
        ));
        let unsorted = TEXT.replace("allow=false", "zzz=1 allow=maybe");
        assert_eq!(
            read_decision(&unsorted),
            LogEntry::Malformed,
            "an unsorted line is read whole"
        );
        assert_eq!(
            read_decision(r#"{"msg":"CANONICAL-PROXY-DECISION","role":"#),
            LogEntry::Malformed
        );
        assert_eq!(
            read_decision("CANONICAL-PROXY-DECISION in prose"),
            LogEntry::Malformed
        );
    }
}
