//! Properties of the parsers: no panics on any input, round trips of
//! generated valid requests, idempotent host normalisation, and a chunked
//! decoder that is indifferent to how its input is split.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use smokescreen::core::framing::{encode_chunk_header, ChunkedDecoder, LAST_CHUNK};
use smokescreen::core::head::{
    parse_request, parse_response, BodyFraming, HeadLimits, RequestForm, RequestParser,
    ResponseParser, Version,
};
use smokescreen::core::target::{normalise_host, parse_absolute_uri, parse_connect_target, Host};

fn small_limits() -> HeadLimits {
    HeadLimits {
        max_head_bytes: 256,
        max_headers: 4,
    }
}

/// A DNS name whose last label starts with a letter (so it is never an address).
fn name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-z0-9_]([a-z0-9-]{0,8}[a-z0-9])?", 0..3),
        "[a-z][a-z0-9-]{0,8}[a-z0-9]",
    )
        .prop_map(|(mut labels, last)| {
            labels.push(last);
            labels.join(".")
        })
        // `xn--` labels must be valid punycode; random ones are rightly refused.
        .prop_filter("no ACE prefix", |n| {
            !n.split('.').any(|l| l.starts_with("xn--"))
        })
}

/// Header fields the round trip may use (none that change framing or routing).
fn field() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z0-9-]{1,12}", "([!-~]([ -~]{0,20}[!-~])?)?")
}

/// Feed `pieces` to a fresh decoder the way the shell does; returns the body
/// and the unconsumed rest when the message completed.
fn decode_pieces(pieces: &[&[u8]]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut dec = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pending = Vec::new();
    let mut done = false;
    for piece in pieces {
        pending.extend_from_slice(piece);
        while !done {
            let step = dec.decode(&pending).ok()?;
            if let Some(r) = step.data {
                body.extend_from_slice(pending.get(r)?);
            }
            pending.drain(..step.consumed);
            done = step.done;
            if step.consumed == 0 {
                break;
            }
        }
    }
    done.then_some((body, pending))
}

/// Render `addr` the way a hostile client might: 1 to 4 parts, each in a random radix.
fn spell_ipv4(addr: u32, parts: usize, radices: &[u8]) -> String {
    let bytes = addr.to_be_bytes();
    let mut values: Vec<u64> = bytes
        .iter()
        .take(parts - 1)
        .map(|&b| u64::from(b))
        .collect();
    let last = bytes
        .iter()
        .skip(parts - 1)
        .fold(0u64, |n, &b| n << 8 | u64::from(b));
    values.push(last);
    values
        .iter()
        .zip(radices.iter().cycle())
        .map(|(v, r)| match r % 3 {
            0 => format!("{v}"),
            1 => format!("0{v:o}"),
            _ => format!("0x{v:x}"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_request_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_request(&bytes, &HeadLimits::default());
        let _ = parse_request(&bytes, &small_limits());
        let _ = parse_response(&bytes, &small_limits(), false);
    }

    /// A head fed to one `RequestParser` in pieces (any split, including
    /// CRLF pairs and leading empty lines cut in half) gets, at every
    /// step, exactly what `parse_request` says about the bytes so far, and
    /// no byte is examined twice.
    #[test]
    fn incremental_parsing_matches_whole_parsing(
        text in "(\r\n){0,2}\r?(GET|CONNECT|POST) [ -~]{0,30}( HTTP/1\\.[01])?(\r?\n[ -~\t\x00]{0,20}){0,5}(\r\n)?\r?\n?(\r\n)?",
        cuts in prop::collection::vec(1usize..12, 1..60),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { HeadLimits::default() };
        let bytes = text.as_bytes();
        let mut parser = RequestParser::default();
        let mut end = 0;
        for step in cuts.iter().cycle() {
            end = (end + step).min(bytes.len());
            let prefix = &bytes[..end];
            let got = parser.parse(prefix, &limits);
            prop_assert_eq!(&got, &parse_request(prefix, &limits), "prefix {:?}", String::from_utf8_lossy(prefix));
            prop_assert!(parser.examined() <= end, "examined {} of {}", parser.examined(), end);
            if !matches!(got, Ok(None)) || end == bytes.len() {
                break;
            }
        }
    }

    #[test]
    fn parse_request_never_panics_on_head_like_text(text in "(GET|CONNECT|POST) [ -~]{0,40}( HTTP/1\\.[01])?(\r\n[ -~\t]{0,30}){0,4}(\r\n)?\r\n") {
        let _ = parse_request(text.as_bytes(), &HeadLimits::default());
    }

    #[test]
    fn bytes_after_a_valid_head_are_left_alone(tail in prop::collection::vec(any::<u8>(), 0..200)) {
        let head = b"POST http://example.com/x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(&tail);
        let parsed = parse_request(&buf, &HeadLimits::default()).unwrap().unwrap();
        prop_assert_eq!(parsed.head_len, head.len());
        prop_assert_eq!(parsed.body, BodyFraming::Length(3));
    }

    #[test]
    fn generated_absolute_requests_round_trip(
        method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{1,8}".prop_filter("not CONNECT", |m| m != "CONNECT")],
        host in name(),
        port in 1u16..,
        path in "(/[A-Za-z0-9._~%-]{0,10}){1,3}(\\?[A-Za-z0-9=&]{0,10})?",
        fields in prop::collection::vec(field(), 0..6),
        http10 in any::<bool>(),
    ) {
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut text = format!("{method} http://{host}:{port}{path} {version}\r\n");
        for (n, v) in &fields {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let parsed = parse_request(text.as_bytes(), &HeadLimits::default()).unwrap().unwrap();
        prop_assert_eq!(&parsed.method, &method);
        prop_assert_eq!(parsed.version, if http10 { Version::Http10 } else { Version::Http11 });
        prop_assert_eq!(parsed.head_len, text.len());
        prop_assert_eq!(parsed.body, BodyFraming::Empty);
        let RequestForm::Absolute(uri) = &parsed.form else {
            return Err(TestCaseError::fail(format!("not absolute-form: {:?}", parsed.form)));
        };
        prop_assert_eq!(&uri.target.host, &Host::Name(host.clone()));
        prop_assert_eq!(uri.target.port, port);
        prop_assert_eq!(&uri.target.requested, &format!("{host}:{port}"));
        prop_assert_eq!(&uri.path_and_query, &path);
        let want: Vec<(String, Vec<u8>)> = fields.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(&parsed.headers.0, &want);
    }

    #[test]
    fn generated_connect_requests_round_trip(host in name(), port in 1u16.., v6 in any::<[u16; 8]>(), use_v6 in any::<bool>()) {
        let (authority, want_host) = if use_v6 {
            let ip = std::net::Ipv6Addr::from(v6);
            (format!("[{ip}]:{port}"), Host::Ip(IpAddr::V6(ip)))
        } else {
            (format!("{host}:{port}"), Host::Name(host.clone()))
        };
        let text = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        let parsed = parse_request(text.as_bytes(), &HeadLimits::default()).unwrap().unwrap();
        let RequestForm::Connect(t) = &parsed.form else {
            return Err(TestCaseError::fail(format!("not CONNECT: {:?}", parsed.form)));
        };
        prop_assert_eq!(&t.host, &want_host);
        prop_assert_eq!(t.port, port);
        prop_assert_eq!(&t.requested, &authority);
    }

    #[test]
    fn target_parsers_never_panic(s in "\\PC{0,40}", t in "[\\[\\]:%@\\\\/?#.0-9a-fx１０。ⓐ]{0,24}") {
        for input in [&s, &t] {
            let _ = normalise_host(input);
            let _ = parse_connect_target(input);
            let _ = parse_absolute_uri(input);
            let _ = parse_absolute_uri(&format!("http://{input}/"));
        }
    }

    #[test]
    fn host_normalisation_is_idempotent(s in "[A-Za-z0-9.\\-_xX]{1,30}|[a-zäöüßÄÖÜ０-９ａ-ｚⓐ-ⓩ。．]{1,20}|\\[[0-9a-fA-F:.]{2,30}\\]") {
        if let Ok(h) = normalise_host(&s) {
            prop_assert_eq!(normalise_host(&h.uri_str()), Ok(h.clone()));
            if !matches!(h, Host::Ip(IpAddr::V6(_))) {
                prop_assert_eq!(normalise_host(&h.to_string()), Ok(h.clone()));
            }
        }
    }

    #[test]
    fn every_ipv4_spelling_names_the_same_address(addr in any::<u32>(), parts in 1usize..=4, radices in prop::collection::vec(any::<u8>(), 4), upper in any::<bool>()) {
        let mut spelled = spell_ipv4(addr, parts, &radices);
        if upper {
            spelled = spelled.to_uppercase();
        }
        prop_assert_eq!(normalise_host(&spelled), Ok(Host::Ip(IpAddr::V4(Ipv4Addr::from(addr)))), "{}", spelled);
    }

    #[test]
    fn chunked_round_trips_at_any_split(
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunk_sizes in prop::collection::vec(1usize..64, 1..10),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ext in any::<bool>(),
        tail in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut wire = Vec::new();
        let mut rest = body.as_slice();
        let mut sizes = chunk_sizes.iter().cycle();
        while !rest.is_empty() {
            let n = sizes.next().copied().unwrap_or(1).min(rest.len());
            let (chunk, after) = rest.split_at(n);
            encode_chunk_header(n, &mut wire);
            if ext {
                // Put an extension between size and CRLF.
                wire.truncate(wire.len() - 2);
                wire.extend_from_slice(b";ext=\"v\"\r\n");
            }
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
            rest = after;
        }
        wire.extend_from_slice(LAST_CHUNK);
        let message_len = wire.len();
        wire.extend_from_slice(&tail);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for p in points {
            pieces.push(&wire[from..p]);
            from = p;
        }
        pieces.push(&wire[from..]);
        let (decoded, left) = decode_pieces(&pieces).expect("a complete, valid chunked message");
        prop_assert_eq!(decoded, body);
        prop_assert_eq!(left.as_slice(), &wire[message_len..]);
    }

    #[test]
    fn chunked_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), split in any::<prop::sample::Index>()) {
        let mut dec = ChunkedDecoder::new();
        let cut = split.index(bytes.len() + 1);
        let mut pending: Vec<u8> = bytes[..cut].to_vec();
        for more in [&bytes[cut..], &[][..]] {
            pending.extend_from_slice(more);
            loop {
                match dec.decode(&pending) {
                    Err(_) => return Ok(()),
                    Ok(step) => {
                        prop_assert!(step.consumed <= pending.len());
                        if let Some(r) = &step.data {
                            prop_assert!(r.start <= r.end && r.end == step.consumed);
                        }
                        pending.drain(..step.consumed);
                        if step.done || step.consumed == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// A 12 KB head: `first_lines`, padding fields, the blank line.
fn padded_head(first_lines: &str) -> (String, HeadLimits) {
    let mut head = String::from(first_lines);
    while head.len() < 12 * 1024 {
        head.push_str("X-Padding: abcdefghijklmnopqrstuvwxyz0123456789\r\n");
    }
    head.push_str("\r\n");
    let limits = HeadLimits {
        max_head_bytes: 1 << 20,
        max_headers: 1000,
    };
    (head, limits)
}

/// A 12 KB head trickled one byte per read: every byte is examined once
/// (re-parsing from the start examined ~72 million).
#[test]
fn a_trickled_head_is_scanned_once() {
    let (head, limits) = padded_head("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n");
    let mut parser = RequestParser::default();
    for end in 1..head.len() {
        assert_eq!(parser.parse(&head.as_bytes()[..end], &limits), Ok(None));
    }
    let parsed = parser.parse(head.as_bytes(), &limits).unwrap().unwrap();
    assert_eq!(parsed.head_len, head.len());
    assert_eq!(parser.examined(), head.len());
}

/// The same for a response head an origin trickles, and the result is
/// the one parsing it whole gives.
#[test]
fn a_trickled_response_head_is_scanned_once() {
    let (head, limits) = padded_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    let mut parser = ResponseParser::default();
    for end in 1..head.len() {
        assert_eq!(
            parser.parse(&head.as_bytes()[..end], &limits, false),
            Ok(None)
        );
    }
    let parsed = parser
        .parse(head.as_bytes(), &limits, false)
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(parsed),
        parse_response(head.as_bytes(), &limits, false).unwrap()
    );
    assert_eq!(parser.examined(), head.len());
}
