//! Request and response head parsing on arbitrary bytes.
//!
//! Invariants beyond "does not panic":
//! - a parsed head's `head_len` fits the input and the head ends with CRLF CRLF;
//! - the verdict depends only on the head: the head alone, or the head with
//!   other bytes after it, parses the same (the shell reads heads as they arrive);
//! - any strict prefix of a complete head is "need more bytes";
//! - an error is final: more bytes never turn it into something else;
//! - fed in pieces to one `RequestParser` (as the shell does after each
//!   read), the verdict is the same as parsing the bytes whole;
//! - tighter limits only ever add `HeadTooLarge` / `TooManyHeaders`;
//! - what was accepted obeys the framing rules (tchar names, no CL with TE, ...).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smokescreen::core::head::{
    parse_request, parse_response, BodyFraming, HeadError, HeadLimits, RequestForm,
    RequestParser, Version,
};

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_request(data: &[u8]) {
    let limits = HeadLimits::default();
    let full = parse_request(data, &limits);

    // Split reads (pieces of 1 to 13 bytes) reach the same verdict, and
    // no byte is examined twice.
    let mut parser = RequestParser::default();
    let (mut end, mut step) = (0, 1);
    let incremental = loop {
        end = (end + step).min(data.len());
        step = step % 13 + 1;
        match parser.parse(&data[..end], &limits) {
            Ok(None) if end < data.len() => continue,
            other => break other,
        }
    };
    assert_eq!(incremental, full, "split reads changed the verdict");
    assert!(parser.examined() <= end, "a byte was examined twice");

    // Errors are final and a complete head does not depend on what follows.
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"\r\n\r\nX");
    let extended = parse_request(&longer, &limits);
    match (&full, &extended) {
        (Err(a), Err(b)) => assert_eq!(a, b, "an error changed when more bytes arrived"),
        (Err(_), Ok(_)) => panic!("an error became {extended:?} when more bytes arrived"),
        (Ok(Some(a)), b) => assert_eq!(Ok(Some(a.clone())), *b, "trailing bytes changed the head"),
        (Ok(None), _) => {}
    }

    match &full {
        Ok(Some(head)) => {
            assert!(head.head_len <= data.len());
            assert!(head.head_len <= limits.max_head_bytes);
            let raw = &data[..head.head_len];
            assert!(
                raw.ends_with(b"\r\n\r\n"),
                "head does not end with CRLF CRLF"
            );
            assert!(!raw.contains(&0), "NUL accepted in a head");
            for (i, &b) in raw.iter().enumerate() {
                if b == b'\n' {
                    assert!(i > 0 && raw[i - 1] == b'\r', "bare LF accepted at {i}");
                }
                if b == b'\r' {
                    assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR accepted at {i}");
                }
            }
            // The head alone parses the same.
            assert_eq!(parse_request(raw, &limits), full);
            // Every strict prefix asks for more (checked at two cut points).
            for cut in [head.head_len - 1, head.head_len / 2] {
                assert_eq!(
                    parse_request(&data[..cut], &limits),
                    Ok(None),
                    "prefix of {cut} bytes was not 'need more'"
                );
            }
            assert!(!head.method.is_empty() && head.method.bytes().all(is_tchar));
            assert!(head.headers.0.len() <= limits.max_headers);
            for (name, value) in &head.headers.0 {
                assert!(
                    !name.is_empty() && name.bytes().all(is_tchar),
                    "bad name {name:?}"
                );
                assert!(!value.contains(&b'\r') && !value.contains(&b'\n') && !value.contains(&0));
                assert!(
                    !value.starts_with(b" ") && !value.ends_with(b" "),
                    "value not trimmed"
                );
            }
            assert!(head.headers.get_all("host").count() <= 1);
            let has_te = head.headers.get("transfer-encoding").is_some();
            let has_cl = head.headers.get("content-length").is_some();
            assert!(!(has_te && has_cl), "CL and TE both accepted");
            match head.body {
                BodyFraming::Chunked => {
                    assert!(has_te && head.version == Version::Http11)
                }
                BodyFraming::Length(_) => assert!(has_cl),
                BodyFraming::Empty => assert!(!has_te && !has_cl),
                BodyFraming::UntilClose => panic!("a request body cannot run until close"),
            }
            match &head.form {
                RequestForm::Connect(t) => {
                    assert_eq!(head.method, "CONNECT");
                    assert!(matches!(
                        head.body,
                        BodyFraming::Empty | BodyFraming::Length(0)
                    ));
                    assert!(t.port > 0);
                }
                RequestForm::Absolute(u) => {
                    assert_ne!(head.method, "CONNECT");
                    assert!(u.path_and_query.starts_with('/'));
                }
                RequestForm::Origin(p) => {
                    assert_ne!(head.method, "CONNECT");
                    assert!(p.starts_with('/'));
                }
            }
            // keep_alive and connection tokens are total functions.
            let tokens = head.connection_tokens();
            if tokens.iter().any(|t| t == "close") {
                assert!(!head.keep_alive());
            }
        }
        Ok(None) => assert!(data.len() <= limits.max_head_bytes),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(matches!(e.status(), 400 | 431));
        }
    }

    // Tighter limits: the same verdict, or one of the two limit errors.
    let tight = HeadLimits {
        max_head_bytes: data.len() / 2 + 1,
        max_headers: 2,
    };
    let limited = parse_request(data, &tight);
    // Leading empty lines count towards the limit too, or a client could
    // grow the shell's buffer without bound while it waits for a head.
    if limited == Ok(None) {
        assert!(
            data.len() <= tight.max_head_bytes,
            "{} bytes still 'need more' under a {}-byte limit",
            data.len(),
            tight.max_head_bytes
        );
    }
    if limited != full {
        assert!(
            matches!(
                limited,
                Err(HeadError::HeadTooLarge | HeadError::TooManyHeaders)
            ),
            "tighter limits gave {limited:?} instead of {full:?}"
        );
    }
}

fn check_response(data: &[u8], request_was_head: bool) {
    let limits = HeadLimits::default();
    let full = parse_response(data, &limits, request_was_head);
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"\r\n\r\nX");
    let extended = parse_response(&longer, &limits, request_was_head);
    match (&full, &extended) {
        (Err(a), Err(b)) => assert_eq!(a, b, "a response error changed with more bytes"),
        (Err(_), Ok(_)) => panic!("a response error became {extended:?} with more bytes"),
        (Ok(Some(a)), b) => assert_eq!(Ok(Some(a.clone())), *b, "trailing bytes changed it"),
        (Ok(None), _) => {}
    }
    if let Ok(Some(head)) = &full {
        assert!(head.head_len <= data.len());
        let raw = &data[..head.head_len];
        assert!(raw.ends_with(b"\r\n\r\n"));
        assert_eq!(parse_response(raw, &limits, request_was_head), full);
        assert_eq!(
            parse_response(&data[..head.head_len - 1], &limits, request_was_head),
            Ok(None)
        );
        assert!((100..=999).contains(&head.status));
        let no_body = request_was_head
            || (100..200).contains(&head.status)
            || head.status == 204
            || head.status == 304;
        if no_body {
            assert_eq!(head.body, BodyFraming::Empty);
        }
        if head.framing_conflict || head.body == BodyFraming::UntilClose {
            assert!(!head.keep_alive(), "keep-alive after untrustworthy framing");
        }
        assert!(!head.reason.contains(['\r', '\n']));
    }
}

fuzz_target!(|data: &[u8]| {
    check_request(data);
    check_response(data, false);
    check_response(data, data.first().is_some_and(|b| b & 1 == 1));
});
