//! Inputs the fuzz targets (`fuzz/`) turned up, replayed as ordinary tests
//! with the invariant each one exercised. See docs/fuzzing.md, "Findings".

use smokescreen::core::log_read::parse_text;
use smokescreen::core::record::{Level, LogLine, Value};
use smokescreen::core::target::{normalise_host, parse_absolute_uri, parse_connect_target, Host};
use smokescreen::core::time::Timestamp;

/// `targets`: a label with `0x` and more `x`s is no number to `inet_aton`
/// (it stops at the second `x`) nor to WHATWG, so it stays a name, and the
/// normalised name is a fixed point.
#[test]
fn hex_prefixed_label_with_junk_is_a_name() {
    let raw = "0x742949674x60x1";
    let host = normalise_host(raw).expect("a name");
    assert_eq!(host, Host::Name(raw.to_string()));
    assert_eq!(normalise_host(&host.uri_str()), Ok(host.clone()));
    let t = parse_connect_target(&format!("{raw}:443")).expect("CONNECT target");
    let u = parse_absolute_uri(&format!("http://{raw}:443/")).expect("absolute-form");
    assert_eq!((&t.host, t.port), (&u.target.host, u.target.port));
    // Whereas a pure hex number after `0x` is an address.
    assert!(matches!(normalise_host("0x7f000001"), Ok(Host::Ip(_))));
}

/// `log_line`: a tiny float is written in its shortest round-trip form in
/// both renderings (a JSON reader that parses floats exactly gets the same
/// bits back; the text form reads back as the same text).
#[test]
fn tiny_float_renders_shortest_round_trip() {
    let x = 3.572698542578209e-263;
    let line = LogLine::new(Timestamp::new(-64_902, u32::MAX), Level::Debug, "")
        .with("zz", Value::Float(x));
    let json = line.render_json();
    assert!(json.contains("\"zz\":3.572698542578209e-263"), "{json}");
    let text = line.render_text();
    let parsed = parse_text(&text).expect("parses back");
    assert_eq!(parsed.get("zz"), Some("3.572698542578209e-263"));
    assert_eq!(
        parsed.get("zz").and_then(|s| s.parse::<f64>().ok()),
        Some(x)
    );
    // u32::MAX nanoseconds carry 4 s: -64898 s is 21502 s into 1969-12-31.
    assert_eq!(parsed.get("time"), Some("1969-12-31T05:58:22Z"));
}

/// `request_head` F1: leading empty lines count towards `max_head_bytes`, so
/// a client sending only CRLFs cannot grow the buffer without bound.
#[test]
fn leading_empty_lines_count_towards_the_head_limit() {
    use smokescreen::core::head::{parse_request, HeadError, HeadLimits};
    let tight = HeadLimits {
        max_head_bytes: 3,
        max_headers: 100,
    };
    assert_eq!(
        parse_request(b"\r\n\r\n", &tight),
        Err(HeadError::HeadTooLarge)
    );
    let flood = b"\r\n".repeat(1_000_000);
    assert_eq!(
        parse_request(&flood, &HeadLimits::default()),
        Err(HeadError::HeadTooLarge)
    );
    // Within the limit, leading empty lines are still skipped (RFC 9112 §2.2).
    let ok = parse_request(
        b"\r\n\r\nCONNECT a.example:443 HTTP/1.1\r\n\r\n",
        &HeadLimits::default(),
    );
    assert!(matches!(ok, Ok(Some(_))), "{ok:?}");
}
