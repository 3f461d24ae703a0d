#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Limits end to end: request rate, concurrent requests, concurrent tunnels,
//! open connections, the header-read timeout (slowloris), idle timeouts,
//! and recovery from file-descriptor exhaustion (EMFILE).

mod common;
mod harden;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use harden::*;

fn get(proxy: &Proxy, origin: &Origin, path: &str) -> (String, Vec<u8>) {
    let mut s = connect(proxy);
    write!(
        s,
        "GET http://{}{path} HTTP/1.1\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
        origin.addr,
        auth()
    )
    .unwrap();
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf)
}

fn ok_response(_head: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
}

fn assert_limit_line(proxy: &mut Proxy, nth: usize, limit: &str, status: &str) {
    let line = fields(&proxy.wait_msg("\"request refused by a proxy limit\"", nth));
    assert_eq!(line["limit"], limit);
    assert_eq!(line["status"], status);
    assert_eq!(line["level"], "warning");
}

/// An origin and a proxy allowed to reach it at one request per 100 s
/// after a burst of 2: the third request is over the limit however slow
/// the machine is.
fn rate_limited() -> (Origin, Proxy) {
    let origin = Origin::http(ok_response);
    let proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        "--max-request-rate=0.01",
        "--max-request-burst=2",
    ]);
    (origin, proxy)
}

#[test]
fn request_rate_over_the_burst_gets_429() {
    if !in_private_netns("request_rate_over_the_burst_gets_429") {
        return;
    }
    let (origin, mut proxy) = rate_limited();
    for i in 0..2 {
        let (head, body) = get(&proxy, &origin, &format!("/r{i}"));
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert_eq!(body, b"ok");
    }
    let (head, body) = get(&proxy, &origin, "/r2");
    assert!(
        head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{head}"
    );
    assert_eq!(header(&head, "retry-after").as_deref(), Some("1"));
    assert_eq!(body, b"Proxy rate limit exceeded. Please retry later.\n");
    assert_eq!(
        origin.accepted(),
        2,
        "a rate-limited request reached the origin"
    );
    assert_limit_line(&mut proxy, 1, "max_request_rate", "429");
    let line = fields(&proxy.wait_msg("\"request refused by a proxy limit\"", 1));
    assert_eq!(line["requested_host"], origin.addr.to_string());
}

/// Issue 13, item 4: requests without credentials are answered 407 before
/// any limit is consulted, so a loop of them cannot spend the rate budget
/// of authenticated clients (it made 16 of 20 authenticated CONNECTs 429).
#[test]
fn unauthenticated_requests_do_not_spend_the_rate_budget() {
    if !in_private_netns("unauthenticated_requests_do_not_spend_the_rate_budget") {
        return;
    }
    let (origin, mut proxy) = rate_limited();
    for i in 0..20 {
        let answer = exchange(
            proxy.addr,
            format!("GET http://{}/u{i} HTTP/1.1\r\n\r\n", origin.addr).as_bytes(),
        );
        assert_eq!(status_of(&answer), Some(407), "unauthenticated request {i}");
    }
    for i in 0..2 {
        let (head, body) = get(&proxy, &origin, &format!("/r{i}"));
        assert!(
            head.starts_with("HTTP/1.1 200 "),
            "authenticated {i}: {head}"
        );
        assert_eq!(body, b"ok");
    }
    // The budget is still enforced for authenticated requests.
    let (head, _) = get(&proxy, &origin, "/r2");
    assert!(head.starts_with("HTTP/1.1 429 "), "{head}");
    assert_limit_line(&mut proxy, 1, "max_request_rate", "429");
    assert_eq!(origin.accepted(), 2);
}

/// An origin that holds every response until told to answer.
fn held_origin() -> (Origin, Sender<()>, std::sync::mpsc::Receiver<()>) {
    let (release_tx, release_rx) = channel::<()>();
    let (arrived_tx, arrived_rx) = channel::<()>();
    let release = Arc::new(Mutex::new(release_rx));
    let arrived = Arc::new(Mutex::new(arrived_tx));
    let origin = Origin::start(Arc::new(move |mut s: TcpStream, _r| {
        let mut buf = Vec::new();
        while read_head(&mut s, &mut buf).is_some() {
            let _ = arrived.lock().unwrap().send(());
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20));
            if s.write_all(&ok_response("")).is_err() {
                return;
            }
        }
    }));
    (origin, release_tx, arrived_rx)
}

#[test]
fn concurrent_requests_over_the_limit_get_503() {
    if !in_private_netns("concurrent_requests_over_the_limit_get_503") {
        return;
    }
    let (origin, release, arrived) = held_origin();
    let echo = Origin::echo();
    let ok = Origin::http(ok_response);
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        &format!("--allow-address={}", echo.addr),
        &format!("--allow-address={}", ok.addr),
        "--max-concurrent-requests=1",
    ]);
    let addr = origin.addr;
    let proxy_addr = proxy.addr;
    let first = std::thread::spawn(move || {
        let mut s = TcpStream::connect(proxy_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET http://{addr}/held HTTP/1.1\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
            auth()
        )
        .unwrap();
        let mut buf = Vec::new();
        read_response(&mut s, &mut buf).0
    });
    arrived
        .recv_timeout(Duration::from_secs(20))
        .expect("the first request reaches the origin");
    let (head, body) = get(&proxy, &origin, "/second");
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{head}"
    );
    assert_eq!(header(&head, "retry-after").as_deref(), Some("1"));
    assert_eq!(body, b"Proxy overloaded. Please retry later.\n");
    assert_limit_line(&mut proxy, 1, "max_concurrent_requests", "503");
    release.send(()).unwrap();
    let head = first.join().unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // The slot comes back (the client may read its answer a moment before
    // the slot is freed, so retry, bounded), and an established tunnel does
    // not hold one: with it open, plain requests still get through.
    let mut tunnel = None;
    for _ in 0..200 {
        let (t, head) = open_tunnel_at(proxy.addr, &echo.addr.to_string(), b"");
        if head.starts_with("HTTP/1.1 200 ") {
            tunnel = Some(t);
            break;
        }
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    }
    let mut tunnel = tunnel.expect("the request slot never came back");
    let request = format!(
        "GET http://{}/third HTTP/1.1\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
        ok.addr,
        auth()
    );
    let mut served = false;
    for _ in 0..200 {
        let answer = exchange(proxy.addr, request.as_bytes());
        if status_of(&answer) == Some(200) {
            served = true;
            break;
        }
        assert_eq!(status_of(&answer), Some(503));
    }
    assert!(served, "an open tunnel kept the only request slot");
    tunnel.write_all(b"still here").unwrap();
    let mut echoed = [0u8; 10];
    tunnel.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still here");
    drop(release);
}

#[test]
fn concurrent_tunnels_over_the_limit_get_429() {
    if !in_private_netns("concurrent_tunnels_over_the_limit_get_429") {
        return;
    }
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        "--max-concurrent-connect-tunnels=1",
    ]);
    let target = echo.addr.to_string();
    let (mut first, head) = open_tunnel_at(proxy.addr, &target, b"");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // A round trip, so the origin has surely counted its accept.
    first.write_all(b"hi").unwrap();
    let mut hi = [0u8; 2];
    first.read_exact(&mut hi).unwrap();
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nmaximum concurrent connect tunnels exceeded\n"),
        "{text}"
    );
    assert_eq!(echo.wait_accepted(1), 1, "the refused tunnel was dialled");
    assert_limit_line(&mut proxy, 1, "max_concurrent_connect_tunnels", "429");
    first.shutdown(Shutdown::Both).unwrap();
    proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1);
    let (_second, head) = open_tunnel_at(proxy.addr, &target, b"");
    assert!(
        head.starts_with("HTTP/1.1 200 "),
        "slot not returned: {head}"
    );
}

#[test]
fn connections_over_the_cap_get_503_and_close() {
    if !in_private_netns("connections_over_the_cap_get_503_and_close") {
        return;
    }
    let origin = Origin::http(ok_response);
    let proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        "--max-connections=2",
    ]);
    let a = connect(&proxy);
    let _b = connect(&proxy);
    let mut c = connect(&proxy);
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(
        text.ends_with("Proxy overloaded. Please retry later.\n"),
        "{text}"
    );
    drop(a);
    // The freed slot is noticed when the proxy reads the EOF: retry a
    // bounded number of times, each a full exchange.
    let request = format!(
        "GET http://{}/after HTTP/1.1\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
        origin.addr,
        auth()
    );
    let mut last = String::new();
    for _ in 0..200 {
        // A refused attempt may be closed before our write lands: only the
        // answer counts.
        let answer = exchange(proxy.addr, request.as_bytes());
        if status_of(&answer) == Some(200) {
            return;
        }
        last = String::from_utf8_lossy(&answer).into_owned();
    }
    panic!("a slot never came back: {last}");
}

#[test]
fn slowloris_head_is_cut_at_the_header_timeout() {
    if !in_private_netns("slowloris_head_is_cut_at_the_header_timeout") {
        return;
    }
    let mut proxy = Proxy::start(&["--read-header-timeout=600ms"]);
    let mut s = connect(&proxy);
    let mut writer = s.try_clone().unwrap();
    let (stop_tx, stop_rx) = channel::<()>();
    let started = Instant::now();
    // The attacker: one header line every 100 ms, forever. Each byte arrives
    // well inside any per-read timeout; only a bound on the whole head stops it.
    let dribbler = std::thread::spawn(move || {
        let _ = writer.write_all(b"CONNECT 8.8.8.8:443 HTTP/1.1\r\n");
        let mut sent = 0;
        while stop_rx.recv_timeout(Duration::from_millis(100)).is_err() {
            if writer.write_all(b"X-Slow: a\r\n").is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    let sent = dribbler.join().unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(5),
        "cut after {elapsed:?}"
    );
    assert!(sent >= 3, "the dribbler only sent {sent} lines");
    let line = fields(&proxy.wait_msg("\"request head timed out\"", 1));
    assert_eq!(line["status"], "408");
    assert_eq!(line["level"], "warning");
    // A connection that never sends a byte is closed quietly at the same bound.
    let mut silent = connect(&proxy);
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = silent.read_to_end(&mut sink);
    assert!(sink.is_empty(), "{:?}", String::from_utf8_lossy(&sink));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn idle_tunnel_and_idle_keep_alive_are_closed() {
    if !in_private_netns("idle_tunnel_and_idle_keep_alive_are_closed") {
        return;
    }
    let echo = Origin::echo();
    let origin = Origin::http(ok_response);
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        &format!("--allow-address={}", origin.addr),
        "--idle-timeout=500ms",
    ]);
    let (mut t, head) = open_tunnel_at(proxy.addr, &echo.addr.to_string(), b"");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    t.write_all(b"ping").unwrap();
    let mut pong = [0u8; 4];
    t.read_exact(&mut pong).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = t.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1));
    assert_eq!(close["error"], "idle timeout after 500ms");
    assert_eq!(close["bytes_in"], "4");
    assert_eq!(close["bytes_out"], "4");
    // Keep-alive: the connection is closed after a quiet 500 ms.
    let mut s = connect(&proxy);
    write!(
        s,
        "GET http://{}/ HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        origin.addr,
        auth()
    )
    .unwrap();
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty() && buf.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn accept_survives_fd_exhaustion_and_recovers() {
    if !in_private_netns("accept_survives_fd_exhaustion_and_recovers") {
        return;
    }
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[&format!("--allow-address={}", echo.addr)]);
    let pid = proxy.child.id();
    // Lower the running proxy's open-files limit to a few above what it
    // uses now (descriptors it inherited count, so the limit is relative).
    let limit = fd_count(pid) + 12;
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
    // Exhaust: idle connections until accept fails (each holds one fd).
    let mut clients = Vec::new();
    for _ in 0..80 {
        clients.push(connect(&proxy));
    }
    let first = fields(&proxy.wait_msg("\"accept failed; backing off\"", 1));
    assert!(first["error"].contains("Too many open files"), "{first:?}");
    let third = fields(&proxy.wait_msg("\"accept failed; backing off\"", 3));
    let (b1, b3): (u64, u64) = (
        first["backoff_ms"].parse().unwrap(),
        third["backoff_ms"].parse().unwrap(),
    );
    assert!(b3 > b1, "no backoff: {b1} then {b3}");
    // Free them: the proxy must come back and serve without a restart.
    drop(clients);
    let (mut t, head) = open_tunnel_at(proxy.addr, &echo.addr.to_string(), b"");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    t.write_all(b"back").unwrap();
    let mut echoed = [0u8; 4];
    t.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"back");
    assert!(
        proxy.child.try_wait().unwrap().is_none(),
        "the proxy exited"
    );
    let failures = proxy
        .seen
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    assert!(failures < 40, "accept spun: {failures} failures logged");
}
