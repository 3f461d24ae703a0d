//! Runs every case of `spec/proxy_protocol.yaml` against `core::proxy_protocol`.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::Deserialize;
use smokescreen::core::proxy_protocol::{parse, trusted, Addresses, Version, DEFAULT_MAX_LEN};

const SPEC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/spec/proxy_protocol.yaml"
));

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    parse: Vec<ParseCase>,
    trust: Vec<TrustCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParseCase {
    name: String,
    input: Option<String>,
    hex: Option<String>,
    cap: Option<usize>,
    expect: Option<String>,
    header: Option<WantHeader>,
    error: Option<String>,
    error_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WantHeader {
    version: u8,
    kind: String,
    source: Option<SocketAddr>,
    destination: Option<SocketAddr>,
    len: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustCase {
    name: String,
    peer: IpAddr,
    ranges: Vec<String>,
    trusted: bool,
}

fn bytes(case: &ParseCase) -> Vec<u8> {
    match (&case.input, &case.hex) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(hex)) => {
            let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            assert!(digits.len() % 2 == 0, "{}: odd hex length", case.name);
            digits
                .chunks(2)
                .map(|pair| {
                    u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16)
                        .unwrap_or_else(|_| panic!("{}: bad hex", case.name))
                })
                .collect()
        }
        _ => panic!("{}: exactly one of input/hex", case.name),
    }
}

#[test]
fn every_parse_case() {
    let spec: Spec = serde_yaml::from_str(SPEC).expect("spec/proxy_protocol.yaml parses");
    assert!(spec.parse.len() >= 30);
    for case in &spec.parse {
        let name = &case.name;
        let input = bytes(case);
        let got = parse(&input, case.cap.unwrap_or(DEFAULT_MAX_LEN));
        match (&case.expect, &case.header, &case.error, &case.error_prefix) {
            (Some(e), None, None, None) => {
                assert_eq!(e, "need_more", "{name}: unknown expect");
                assert_eq!(got, Ok(None), "{name}");
            }
            (None, Some(want), None, None) => {
                let h = got
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .unwrap_or_else(|| panic!("{name}: needs more"));
                let version = match want.version {
                    1 => Version::V1,
                    2 => Version::V2,
                    v => panic!("{name}: version {v}"),
                };
                assert_eq!(h.version, version, "{name}");
                assert_eq!(h.len, want.len, "{name}");
                let addresses = match want.kind.as_str() {
                    "proxied" => Addresses::Proxied {
                        source: want.source.expect("source"),
                        destination: want.destination.expect("destination"),
                    },
                    "local" => Addresses::Local,
                    "unknown" => Addresses::Unknown,
                    k => panic!("{name}: kind {k}"),
                };
                assert_eq!(h.addresses, addresses, "{name}");
            }
            (None, None, Some(text), None) => {
                let e = got.expect_err(name);
                assert_eq!(&e.to_string(), text, "{name}");
            }
            (None, None, None, Some(prefix)) => {
                let e = got.expect_err(name);
                assert!(e.to_string().starts_with(prefix), "{name}: {e}");
                assert!(e.to_string().len() > prefix.len(), "{name}: no cause: {e}");
            }
            _ => panic!("{name}: exactly one of expect/header/error/error_prefix"),
        }
    }
}

fn ranges(texts: &[String]) -> Vec<IpNet> {
    texts.iter().map(|t| t.parse().expect("CIDR")).collect()
}

#[test]
fn every_trust_case() {
    let spec: Spec = serde_yaml::from_str(SPEC).expect("spec/proxy_protocol.yaml parses");
    assert!(!spec.trust.is_empty());
    for case in &spec.trust {
        assert_eq!(
            trusted(case.peer, &ranges(&case.ranges)),
            case.trusted,
            "{}",
            case.name
        );
    }
}
