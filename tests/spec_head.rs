//! Executes every case of `spec/head.yaml`: request heads, response heads
//! and the chunked body decoder.

use serde::Deserialize;
use smokescreen::core::framing::{ChunkedDecoder, FramingError};
use smokescreen::core::head::{
    parse_request, parse_response, BodyFraming, HeadError, HeadLimits, RequestForm, Version,
};
use smokescreen::core::target::TargetError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    requests: Vec<RequestCase>,
    responses: Vec<ResponseCase>,
    chunked: Vec<ChunkedCase>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_head_bytes: Option<usize>,
    max_headers: Option<usize>,
}

impl Limits {
    fn get(limits: Option<Limits>) -> HeadLimits {
        let d = HeadLimits::default();
        let l = limits.unwrap_or(Limits {
            max_head_bytes: None,
            max_headers: None,
        });
        HeadLimits {
            max_head_bytes: l.max_head_bytes.unwrap_or(d.max_head_bytes),
            max_headers: l.max_headers.unwrap_or(d.max_headers),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestCase {
    name: String,
    input: String,
    limits: Option<Limits>,
    expect: Option<RequestExpect>,
    error: Option<String>,
    /// HTTP status of the error (400 when not given).
    status: Option<u16>,
    #[serde(default)]
    incomplete: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestExpect {
    method: String,
    /// connect | absolute | origin
    form: String,
    /// Normalised host (connect/absolute) or the path (origin).
    target: String,
    port: Option<u16>,
    path: Option<String>,
    version: String,
    body: String,
    /// What follows the head in the input (checks `head_len`).
    rest: String,
    keep_alive: Option<bool>,
    headers: Option<Vec<(String, String)>>,
    connection_tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseCase {
    name: String,
    input: String,
    #[serde(default)]
    request_was_head: bool,
    expect: Option<ResponseExpect>,
    error: Option<String>,
    #[serde(default)]
    incomplete: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseExpect {
    status: u16,
    reason: String,
    version: String,
    body: String,
    rest: String,
    #[serde(default)]
    framing_conflict: bool,
    keep_alive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkedCase {
    name: String,
    input: String,
    /// Decoded body, when the message is complete.
    body: Option<String>,
    /// Bytes left unconsumed after the last chunk.
    #[serde(default)]
    rest: String,
    /// The input ends before the last chunk and trailers are complete.
    #[serde(default)]
    incomplete: bool,
    error: Option<String>,
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::Http10 => "1.0",
        Version::Http11 => "1.1",
    }
}

fn body_text(b: BodyFraming) -> String {
    match b {
        BodyFraming::Empty => "empty".to_string(),
        BodyFraming::Length(n) => format!("length {n}"),
        BodyFraming::Chunked => "chunked".to_string(),
        BodyFraming::UntilClose => "until-close".to_string(),
    }
}

/// Collects mismatches of one case.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
    fn into_result(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join("; "))
        }
    }
}

fn check_request(case: &RequestCase) -> Result<(), String> {
    let limits = Limits::get(case.limits);
    let input = case.input.as_bytes();
    let got = parse_request(input, &limits);
    let mut d = Diffs::default();
    match (&case.expect, &case.error, case.incomplete, got) {
        (None, None, true, Ok(None)) => {}
        (None, None, true, other) => d.0.push(format!("expected incomplete, got {other:?}")),
        (None, Some(want), false, Err(e)) => {
            d.eq("error", e.to_string(), want.clone());
            d.eq("status", e.status(), case.status.unwrap_or(400));
        }
        (None, Some(want), false, other) => {
            d.0.push(format!("expected error {want:?}, got {other:?}"))
        }
        (Some(want), None, false, Ok(Some(h))) => {
            d.eq("method", h.method.as_str(), want.method.as_str());
            let (form, target, port, path) = match &h.form {
                RequestForm::Connect(t) => ("connect", t.host.to_string(), Some(t.port), None),
                RequestForm::Absolute(u) => (
                    "absolute",
                    u.target.host.to_string(),
                    Some(u.target.port),
                    Some(u.path_and_query.clone()),
                ),
                RequestForm::Origin(p) => ("origin", p.clone(), None, None),
            };
            d.eq("form", form, want.form.as_str());
            d.eq("target", target.as_str(), want.target.as_str());
            if want.port.is_some() {
                d.eq("port", port, want.port);
            }
            if want.path.is_some() {
                d.eq("path", path, want.path.clone());
            }
            d.eq("version", version_text(h.version), want.version.as_str());
            d.eq("body", body_text(h.body), want.body.clone());
            d.eq("rest", input.get(h.head_len..), Some(want.rest.as_bytes()));
            if let Some(k) = want.keep_alive {
                d.eq("keep_alive", h.keep_alive(), k);
            }
            if let Some(hs) = &want.headers {
                let got: Vec<(String, Vec<u8>)> = h.headers.0.clone();
                let want: Vec<(String, Vec<u8>)> = hs
                    .iter()
                    .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
                    .collect();
                d.eq("headers", got, want);
            }
            if let Some(t) = &want.connection_tokens {
                d.eq("connection_tokens", &h.connection_tokens(), t);
            }
            // Every strict prefix of the head asks for more bytes.
            for cut in 0..h.head_len {
                if let Some(r) = input.get(..cut).map(|p| parse_request(p, &limits)) {
                    if r != Ok(None) {
                        d.0.push(format!("prefix of {cut} bytes gave {r:?}"));
                        break;
                    }
                }
            }
        }
        (Some(_), None, false, other) => d.0.push(format!("expected a head, got {other:?}")),
        _ => {
            d.0.push("case needs exactly one of expect, error, incomplete".to_string())
        }
    }
    d.into_result()
}

fn check_response(case: &ResponseCase) -> Result<(), String> {
    let input = case.input.as_bytes();
    let got = parse_response(input, &HeadLimits::default(), case.request_was_head);
    let mut d = Diffs::default();
    match (&case.expect, &case.error, case.incomplete, got) {
        (None, None, true, Ok(None)) => {}
        (None, Some(want), false, Err(e)) => d.eq("error", e.to_string(), want.clone()),
        (Some(want), None, false, Ok(Some(h))) => {
            d.eq("status", h.status, want.status);
            d.eq("reason", h.reason.as_str(), want.reason.as_str());
            d.eq("version", version_text(h.version), want.version.as_str());
            d.eq("body", body_text(h.body), want.body.clone());
            d.eq("rest", input.get(h.head_len..), Some(want.rest.as_bytes()));
            d.eq(
                "framing_conflict",
                h.framing_conflict,
                want.framing_conflict,
            );
            d.eq("keep_alive", h.keep_alive(), want.keep_alive);
        }
        (_, _, _, other) => d.0.push(format!("unexpected outcome {other:?}")),
    }
    d.into_result()
}

/// Outcome of decoding a chunked body fed in the given pieces.
#[derive(Debug, PartialEq)]
enum Outcome {
    Done { body: Vec<u8>, rest: Vec<u8> },
    Incomplete { body: Vec<u8> },
    Error(FramingError),
}

fn decode_in_pieces(pieces: &[&[u8]]) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut done = false;
    for piece in pieces {
        pending.extend_from_slice(piece);
        while !done {
            let step = match dec.decode(&pending) {
                Ok(step) => step,
                Err(e) => return Outcome::Error(e),
            };
            if let Some(r) = step.data.clone() {
                match pending.get(r) {
                    Some(bytes) => body.extend_from_slice(bytes),
                    None => panic!(
                        "data range {:?} outside input of {}",
                        step.data,
                        pending.len()
                    ),
                }
            }
            assert!(step.consumed <= pending.len(), "consumed more than given");
            pending.drain(..step.consumed);
            done = step.done;
            if step.consumed == 0 {
                break;
            }
        }
    }
    if done {
        Outcome::Done {
            body,
            rest: pending,
        }
    } else {
        Outcome::Incomplete { body }
    }
}

fn check_chunked(case: &ChunkedCase) -> Result<(), String> {
    let input = case.input.as_bytes();
    let want = match (&case.body, &case.error, case.incomplete) {
        (Some(b), None, false) => Outcome::Done {
            body: b.as_bytes().to_vec(),
            rest: case.rest.as_bytes().to_vec(),
        },
        (Some(b), None, true) => Outcome::Incomplete {
            body: b.as_bytes().to_vec(),
        },
        (None, Some(_), false) => {
            return match decode_in_pieces(&[input]) {
                Outcome::Error(e)
                    if e.to_string() == *case.error.as_deref().unwrap_or_default() =>
                {
                    // The same error whatever the split.
                    for cut in 0..=input.len() {
                        let (a, b) = input.split_at(cut);
                        let got = decode_in_pieces(&[a, b]);
                        if got != Outcome::Error(e.clone()) {
                            return Err(format!("split at {cut}: {got:?}"));
                        }
                    }
                    Ok(())
                }
                other => Err(format!("expected error {:?}, got {other:?}", case.error)),
            };
        }
        _ => return Err("case needs body (with optional incomplete) or error".to_string()),
    };
    let whole = decode_in_pieces(&[input]);
    if whole != want {
        return Err(format!("whole input: got {whole:?}, want {want:?}"));
    }
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        let got = decode_in_pieces(&[a, b]);
        if got != want {
            return Err(format!("split at {cut}: got {got:?}"));
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let got = decode_in_pieces(&bytes);
    if got != want {
        return Err(format!("byte by byte: got {got:?}"));
    }
    Ok(())
}

fn spec() -> Spec {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/head.yaml"));
    serde_yaml::from_str(text).expect("spec/head.yaml parses")
}

fn run<C>(cases: &[C], name: impl Fn(&C) -> &str, check: impl Fn(&C) -> Result<(), String>) {
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in cases {
        assert!(
            names.insert(name(case).to_string()),
            "duplicate case name {}",
            name(case)
        );
        if let Err(why) = check(case) {
            failures.push(format!("{}: {why}", name(case)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn spec_head_requests() {
    let spec = spec();
    assert!(spec.requests.len() >= 50);
    run(&spec.requests, |c| &c.name, check_request);
}

#[test]
fn spec_head_responses() {
    let spec = spec();
    assert!(spec.responses.len() >= 20);
    run(&spec.responses, |c| &c.name, check_response);
}

#[test]
fn spec_head_chunked() {
    let spec = spec();
    assert!(spec.chunked.len() >= 20);
    run(&spec.chunked, |c| &c.name, check_chunked);
}

/// Every client-facing text and status in one reviewed place.
#[test]
fn head_error_texts() {
    let head = [
        HeadError::Target(TargetError::Https),
        HeadError::HeadTooLarge,
        HeadError::TooManyHeaders,
        HeadError::BareLf,
        HeadError::BareCr,
        HeadError::Nul,
        HeadError::ObsFold,
        HeadError::SpaceBeforeColon,
        HeadError::MissingColon,
        HeadError::InvalidHeaderName,
        HeadError::InvalidHeaderValue,
        HeadError::InvalidMethod,
        HeadError::MalformedRequestLine,
        HeadError::InvalidTargetChar,
        HeadError::AsteriskForm,
        HeadError::UnsupportedVersion,
        HeadError::MalformedStatusLine,
        HeadError::InvalidStatus,
        HeadError::ContentLengthWithTransferEncoding,
        HeadError::InvalidContentLength,
        HeadError::ConflictingContentLength,
        HeadError::ContentLengthTooLarge,
        HeadError::MultipleTransferEncoding,
        HeadError::InvalidTransferEncoding,
        HeadError::TransferEncodingNotChunked,
        HeadError::TransferEncodingInHttp10,
        HeadError::BodyOnConnect,
        HeadError::MultipleHost,
    ];
    let framing = [
        FramingError::InvalidChunkSize,
        FramingError::ChunkSizeTooLarge,
        FramingError::InvalidChunkExtension,
        FramingError::ChunkLineTooLong,
        FramingError::LineNotCrlf,
        FramingError::MissingDataCrlf,
        FramingError::InvalidTrailer,
        FramingError::TrailersTooLarge,
    ];
    let mut texts: Vec<String> = head
        .iter()
        .map(|e| format!("{} {e:?} => {e}", e.status()))
        .collect();
    texts.extend(framing.iter().map(|e| format!("{e:?} => {e}")));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_yaml_snapshot!("head_error_texts", texts));
}
