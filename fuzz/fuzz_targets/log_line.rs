//! Log rendering with hostile strings: a record must render to exactly one
//! line that parses back to the same fields (text), and to one JSON object on
//! one line with the same values (JSON).
#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smokescreen::core::addr::Rule;
use smokescreen::core::log_read::{parse_text, read_decision, LogEntry};
use smokescreen::core::record::{
    go_float, Client, DecisionRecord, Level, LogLine, ProxyType, Value,
};
use smokescreen::core::time::Timestamp;

/// Field names a line may carry; the real records use most of these.
const KEYS: [&str; 8] = [
    "allow",
    "error",
    "id",
    "requested_host",
    "role",
    "trace_id",
    "src_host_common_name",
    "zz",
];

#[derive(Arbitrary, Debug)]
enum FuzzValue {
    Str(String),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Float(f64),
    Time(i64, u32),
    Ip(IpAddr),
    Addr(SocketAddr),
}

impl FuzzValue {
    fn value(&self) -> Value<'_> {
        match self {
            FuzzValue::Str(s) => Value::from(s.as_str()),
            FuzzValue::Int(i) => Value::Int(*i),
            FuzzValue::UInt(u) => Value::UInt(*u),
            FuzzValue::Bool(b) => Value::Bool(*b),
            FuzzValue::Float(x) => Value::Float(*x),
            FuzzValue::Time(secs, nanos) => Value::Time(Timestamp::new(*secs, *nanos)),
            FuzzValue::Ip(ip) => Value::Ip(*ip),
            FuzzValue::Addr(a) => Value::Addr(*a),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Record {
    id: String,
    requested_host: String,
    trace_id: String,
    role: String,
    project: String,
    common_name: String,
    reason: String,
    error: Option<String>,
    source: SocketAddr,
    dst: Option<SocketAddr>,
    allow: bool,
    content_length: u64,
    rejected: Vec<(IpAddr, u8)>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    secs: i64,
    nanos: u32,
    level: u8,
    msg: String,
    fields: Vec<(u8, FuzzValue)>,
    record: Option<Record>,
}

const LEVELS: [Level; 4] = [Level::Debug, Level::Info, Level::Warning, Level::Error];
const RULES: [Rule; 4] = [
    Rule::DenyPrivateRange,
    Rule::DenyNotGlobalUnicast,
    Rule::DenyIpv6Embedding,
    Rule::DenyMetadata,
];

/// The text and JSON renderings of `line` are one line each and carry its fields.
fn check_line(line: &LogLine) {
    let text = line.render_text();
    assert!(
        !text.contains(['\n', '\r', '\u{1b}', '\u{85}', '\u{2028}', '\u{2029}']),
        "line break or escape in {text:?}"
    );
    let parsed = parse_text(&text).unwrap_or_else(|| panic!("does not parse back: {text:?}"));
    let mut want = vec![
        ("time".to_string(), line.time.rfc3339_seconds()),
        ("level".to_string(), line.level.as_str().to_string()),
        ("msg".to_string(), line.msg.to_string()),
    ];
    let mut fields: Vec<_> = line.fields.iter().collect();
    fields.sort_by_key(|(k, _)| *k);
    want.extend(fields.iter().map(|(k, v)| ((*k).to_string(), v.to_text())));
    assert_eq!(parsed.0, want, "text line {text:?}");

    let json = line.render_json();
    assert!(
        !json.contains(['\n', '\r', '\u{2028}', '\u{2029}']),
        "line break in {json:?}"
    );
    let back: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let obj = back.as_object().expect("an object");
    assert_eq!(
        obj.get("msg").and_then(|v| v.as_str()),
        Some(line.msg.as_ref())
    );
    assert_eq!(
        obj.get("level").and_then(|v| v.as_str()),
        Some(line.level.as_str())
    );
    assert_eq!(
        obj.get("time").and_then(|v| v.as_str()),
        Some(line.time.rfc3339_nanos().as_str())
    );
    // For each key, the last value given is the one in the object.
    for key in KEYS {
        let Some((_, v)) = line.fields.iter().rev().find(|(k, _)| *k == key) else {
            assert!(obj.get(key).is_none(), "{key} appeared from nowhere");
            continue;
        };
        let got = obj.get(key).expect("every field is in the object");
        match v {
            Value::Str(s) => assert_eq!(got.as_str(), Some(s.as_ref())),
            Value::Int(i) => assert_eq!(got.as_i64(), Some(*i)),
            Value::UInt(u) => assert_eq!(got.as_u64(), Some(*u)),
            Value::Bool(b) => assert_eq!(got.as_bool(), Some(*b)),
            Value::Float(x) if x.is_finite() => assert_eq!(got.as_f64(), Some(*x)),
            Value::Float(x) => assert_eq!(got.as_str(), Some(go_float(*x).as_str())),
            // Written digit by digit in text, as strings in JSON: both must
            // say what `to_text` (Display) says.
            Value::Time(_) | Value::Ip(_) | Value::Addr(_) => {
                assert_eq!(got.as_str(), Some(v.to_text().as_str()))
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let time = Timestamp::new(input.secs, input.nanos);
    let level = LEVELS[usize::from(input.level % 4)];
    let mut line = LogLine::new(time, level, input.msg.clone());
    for (k, v) in input.fields.iter().take(12) {
        line = line.with(KEYS[usize::from(*k) % KEYS.len()], v.value());
    }
    check_line(&line);

    if let Some(r) = input.record {
        let record = DecisionRecord {
            id: r.id,
            proxy_type: if r.allow {
                ProxyType::Connect
            } else {
                ProxyType::Http
            },
            requested_host: r.requested_host.clone(),
            client: Client {
                source: r.source,
                common_name: r.common_name,
                organization_unit: "unknown".into(),
            },
            start_time: time,
            trace_id: r.trace_id.clone(),
            role: r.role,
            project: r.project,
            allow: r.allow,
            enforce_would_deny: !r.allow,
            decision_reason: r.reason,
            dst: r.dst,
            error: r.error,
            content_length: r.content_length,
            status_code: (!r.allow).then_some(403),
            upstream_proxy: None,
            level,
            rejected: r
                .rejected
                .iter()
                .take(4)
                .map(|(ip, i)| (*ip, RULES[usize::from(*i % 4)]))
                .collect(),
        };
        let line = record.to_line(time);
        check_line(&line);
        let parsed = parse_text(&line.render_text()).expect("parses");
        assert_eq!(
            parsed.get("requested_host"),
            Some(r.requested_host.as_str())
        );
        assert_eq!(parsed.get("trace_id"), Some(r.trace_id.as_str()));
        // The policy tools' streaming reader sees the same decision in both renderings.
        for rendered in [line.render_text(), line.render_json()] {
            match read_decision(&rendered) {
                LogEntry::Decision(d) => {
                    assert_eq!(d.role, record.role.as_str());
                    assert_eq!(d.requested_host, r.requested_host.as_str());
                    assert_eq!(d.allow, record.allow);
                    assert_eq!(d.decision_reason, record.decision_reason.as_str());
                }
                // An empty requested_host is not a usable decision.
                LogEntry::Malformed if r.requested_host.is_empty() => {}
                other => panic!("{rendered:?} read as {other:?}"),
            }
        }
    }
});
