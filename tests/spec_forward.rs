#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Executes spec/forward.yaml: the core's forwarding rules directly, and
//! whole exchanges through the real proxy against a scripted origin (inside
//! a private network namespace).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde::Deserialize;

use common::*;
use smokescreen::core::forward::{self, Interim};
use smokescreen::core::head::{parse_request, parse_response, HeadLimits};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    rules: Vec<Rule>,
    exchanges: Vec<Exchange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    request: String,
    response: Option<String>,
    origin_sees: Option<String>,
    client_sees: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exchange {
    name: String,
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    steps: Vec<Step>,
    #[serde(default = "one")]
    accepts: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Step {
    Client(String),
    ClientBody(usize),
    ClientReads(String),
    ClientHead(HeadCheck),
    ClientEof,
    Origin(String),
    OriginReads(String),
    OriginAccept,
    OriginClose,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct HeadCheck {
    status: u16,
    #[serde(default)]
    has: Vec<String>,
    #[serde(default)]
    lacks: Vec<String>,
}

fn load() -> Spec {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/forward.yaml");
    let text = std::fs::read_to_string(path).expect("read spec/forward.yaml");
    serde_yaml::from_str(&text).expect("parse spec/forward.yaml")
}

/// What the core makes of one rule: the bytes the other side is sent, or the error.
fn apply(rule: &Rule) -> Result<String, String> {
    let limits = HeadLimits::default();
    let req = parse_request(rule.request.as_bytes(), &limits)
        .expect("valid request")
        .expect("complete request");
    let Some(response) = &rule.response else {
        let bytes = forward::request_head(&req, None);
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    };
    let resp = parse_response(response.as_bytes(), &limits, forward::is_head(&req))
        .expect("valid response")
        .expect("complete response");
    if (100..200).contains(&resp.status) {
        return match forward::interim(&req, &resp).map_err(|e| e.to_string())? {
            Interim::Relay(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Interim::Drop => Ok(String::new()),
        };
    }
    let plan = forward::response_head(&req, &resp, true).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&plan.head).into_owned())
}

#[test]
fn forwarding_rules() {
    let spec = load();
    let mut failures = Vec::new();
    for rule in &spec.rules {
        let want = match (&rule.origin_sees, &rule.client_sees, &rule.error) {
            (Some(s), None, None) | (None, Some(s), None) => Ok(s.clone()),
            (None, None, Some(e)) => Err(e.clone()),
            _ => panic!(
                "{}: exactly one of origin_sees, client_sees, error",
                rule.name
            ),
        };
        let got = apply(rule);
        if got != want {
            failures.push(format!("{}\n  want {want:?}\n  got  {got:?}", rule.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const DEADLINE: Duration = Duration::from_secs(5);

/// The origin side of one exchange: its listener and current connection.
struct ScriptedOrigin {
    accepted: Receiver<TcpStream>,
    count: usize,
    current: Option<TcpStream>,
}

impl ScriptedOrigin {
    fn start() -> (ScriptedOrigin, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let port = listener.local_addr().expect("origin addr").port();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { break };
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
        let origin = ScriptedOrigin {
            accepted: rx,
            count: 0,
            current: None,
        };
        (origin, port)
    }

    fn accept(&mut self) -> Result<(), String> {
        let s = self
            .accepted
            .recv_timeout(DEADLINE)
            .map_err(|_| "no upstream connection within 5 s".to_string())?;
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        self.count += 1;
        self.current = Some(s);
        Ok(())
    }

    /// The current connection; the first use accepts it.
    fn conn(&mut self) -> Result<&mut TcpStream, String> {
        if self.current.is_none() {
            self.accept()?;
        }
        self.current
            .as_mut()
            .ok_or_else(|| "no origin connection".to_string())
    }

    /// Connections accepted so far, counting any still waiting.
    fn total(&mut self) -> usize {
        self.count + self.accepted.try_iter().count()
    }
}

/// Read exactly `n` bytes within the deadline (what arrived, if fewer).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let end = Instant::now() + DEADLINE;
    let mut got = vec![0u8; n];
    let mut have = 0;
    while have < n && Instant::now() < end {
        match s.read(&mut got[have..]) {
            Ok(0) => break,
            Ok(k) => have += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    got.truncate(have);
    got
}

fn expect_bytes(who: &str, s: &mut TcpStream, want: &str) -> Result<(), String> {
    let got = read_n(s, want.len());
    if got == want.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "{who} expected {want:?}\n    got {:?}",
            String::from_utf8_lossy(&got)
        ))
    }
}

fn check_head(s: &mut TcpStream, check: &HeadCheck) -> Result<(), String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok());
    let mut problems = Vec::new();
    if status != Some(check.status) {
        problems.push(format!("status {:?}, expected {}", status, check.status));
    }
    for line in &check.has {
        if !head.split("\r\n").any(|l| l == line) {
            problems.push(format!("missing line {line:?}"));
        }
    }
    for name in &check.lacks {
        if header(&head, name).is_some() {
            problems.push(format!("has {name}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("client head {head:?}: {}", problems.join("; ")))
    }
}

fn expect_eof(s: &mut TcpStream) -> Result<(), String> {
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Ok(_) => Err(format!("client got {:?} instead of EOF", byte[0] as char)),
        Err(e) => Err(format!("client: no EOF within 5 s ({e})")),
    }
}

fn run_exchange(case: &Exchange) -> Result<(), String> {
    let (mut origin, port) = ScriptedOrigin::start();
    let proxy = Proxy::start(&[
        "--static-host=o.test=127.0.0.1",
        &format!("--allow-address=127.0.0.1:{port}"),
    ]);
    let fill = |s: &str| {
        s.replace("{auth}", &basic("u", PASSWORD))
            .replace("{port}", &port.to_string())
    };
    let mut client = connect(&proxy);
    client.set_read_timeout(Some(DEADLINE)).expect("timeout");
    for (i, step) in case.steps.iter().enumerate() {
        let at = |e: String| format!("step {} {step:?}: {e}", i + 1);
        match step {
            Step::Client(bytes) => client
                .write_all(fill(bytes).as_bytes())
                .map_err(|e| at(e.to_string()))?,
            Step::ClientBody(n) => client
                .write_all(&vec![b'a'; *n])
                .map_err(|e| at(e.to_string()))?,
            Step::ClientReads(bytes) => {
                expect_bytes("client", &mut client, &fill(bytes)).map_err(at)?
            }
            Step::ClientHead(check) => check_head(&mut client, check).map_err(at)?,
            Step::ClientEof => expect_eof(&mut client).map_err(at)?,
            Step::Origin(bytes) => origin
                .conn()
                .map_err(at)?
                .write_all(fill(bytes).as_bytes())
                .map_err(|e| at(e.to_string()))?,
            Step::OriginReads(bytes) => {
                let conn = origin.conn().map_err(at)?;
                expect_bytes("origin", conn, &fill(bytes)).map_err(at)?
            }
            Step::OriginAccept => origin.accept().map_err(at)?,
            Step::OriginClose => {
                if let Some(s) = origin.current.take() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }
    let total = origin.total();
    if total != case.accepts {
        return Err(format!(
            "origin accepted {total} connections, expected {}",
            case.accepts
        ));
    }
    Ok(())
}

#[test]
fn forwarding_exchanges() {
    if !in_private_netns("forwarding_exchanges") {
        return;
    }
    let spec = load();
    let mut failures = Vec::new();
    for case in &spec.exchanges {
        if let Err(e) = run_exchange(case) {
            failures.push(format!("{}\n  {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
