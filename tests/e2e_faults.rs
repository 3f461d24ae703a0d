#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Faults end to end: the upstream resets mid-body, never answers, or closes
//! half-way; the client disconnects mid-upload; DNS never answers. Each time
//! the proxy answers or closes cleanly, logs the error in the canonical
//! line, and its descriptor and thread counts return to the baseline.

mod common;
mod harden;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream, UdpSocket};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use harden::*;

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Read exactly one head, byte by byte, so nothing after it is consumed.
fn read_head_exact(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn ok_response(_head: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
}

/// Holds until released (or 20 s), for origins that must not answer.
fn gate() -> (Sender<()>, Arc<Mutex<Receiver<()>>>) {
    let (tx, rx) = channel();
    (tx, Arc::new(Mutex::new(rx)))
}

fn warm_up(proxy: &mut Proxy, ok: &Origin, echo: &Origin) {
    let mut s = connect(proxy);
    write!(
        s,
        "GET http://{}/ HTTP/1.1\r\nProxy-Authorization: {}\r\nConnection: close\r\n\r\n",
        ok.addr,
        auth()
    )
    .unwrap();
    assert!(status_of(&read_all(&mut s)) == Some(200));
    let mut t = connect(proxy);
    write!(
        t,
        "CONNECT {} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\nx",
        echo.addr,
        auth()
    )
    .unwrap();
    t.shutdown(Shutdown::Write).unwrap();
    let got = read_all(&mut t);
    assert!(
        got.ends_with(b"\r\n\r\nx"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1);
    // Both decision lines too: lines of connections served by different
    // workers may be written in either order (each worker writes its lines
    // once per turn of its loop), so the GET's may come after the tunnel's.
    proxy.wait_msg("CANONICAL-PROXY-DECISION", 2);
}

fn next_decision(proxy: &mut Proxy) -> std::collections::HashMap<String, String> {
    fields(&proxy.next_matching(|l| l.contains("msg=CANONICAL-PROXY-DECISION")))
}

#[test]
fn upstream_and_client_faults_are_answered_logged_and_leak_nothing() {
    if !in_private_netns("upstream_and_client_faults_are_answered_logged_and_leak_nothing") {
        return;
    }
    let ok = Origin::http(ok_response);
    let echo = Origin::echo();
    // Resets mid-body: the request body is left unread, so closing sends RST.
    let reset = Origin::start(Arc::new(|mut s: TcpStream, _r| {
        if read_head_exact(&mut s).is_none() {
            return;
        }
        let mut peek = [0u8; 1];
        let _ = s.peek(&mut peek);
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        out.extend_from_slice(&[b'r'; 100]);
        let _ = s.write_all(&out);
    }));
    let (silent_release, silent_gate) = gate();
    let silent = Origin::start(Arc::new(move |mut s: TcpStream, _r| {
        let _ = read_head_exact(&mut s);
        let _ = silent_gate
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
    }));
    let (upload_tx, upload_rx) = channel::<usize>();
    let upload_tx = Arc::new(Mutex::new(upload_tx));
    let upload = Origin::start(Arc::new(move |mut s: TcpStream, _r| {
        let _ = read_head_exact(&mut s);
        let got = read_all(&mut s).len();
        let _ = upload_tx.lock().unwrap().send(got);
    }));
    let half = Origin::start(Arc::new(|mut s: TcpStream, _r| {
        let _ = read_head_exact(&mut s);
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
        out.extend_from_slice(&[b'h'; 50]);
        let _ = s.write_all(&out);
        let _ = s.shutdown(Shutdown::Write);
        let _ = read_all(&mut s);
    }));
    let half_tunnel = Origin::start(Arc::new(|mut s: TcpStream, _r| {
        let _ = s.write_all(&[b't'; 50]);
        let _ = s.shutdown(Shutdown::Write);
        let _ = read_all(&mut s);
    }));
    let origins = [&ok, &echo, &reset, &silent, &upload, &half, &half_tunnel];
    let mut args: Vec<String> = origins
        .iter()
        .map(|o| format!("--allow-address={}", o.addr))
        .collect();
    args.push("--idle-timeout=1s".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = Proxy::start(&argv);
    let pid = proxy.child.id();
    warm_up(&mut proxy, &ok, &echo);
    let base = Baseline::take(pid);
    let a = auth();

    // 1. The upstream resets mid-body: a 502 if the reset wins the race to
    // the response head, else the head and a truncated body; never a hang.
    let mut s = connect(&proxy);
    write!(
        s,
        "POST http://{}/ HTTP/1.1\r\nProxy-Authorization: {a}\r\nContent-Length: 10\r\n\r\n0123456789",
        reset.addr
    )
    .unwrap();
    let got = read_all(&mut s);
    let text = String::from_utf8_lossy(&got);
    match status_of(&got) {
        Some(502) => {}
        Some(200) => assert!(got.len() < 1000, "a reset body was completed: {text}"),
        other => panic!("reset mid-body answered {other:?}: {text}"),
    }
    let d = next_decision(&mut proxy);
    assert_eq!(d["level"], "error", "{d:?}");
    assert!(!d["error"].is_empty());
    drop(s);
    base.wait_back(pid, "after an upstream reset");

    // 2. The upstream never answers: 504 at the idle timeout.
    let mut s = connect(&proxy);
    write!(
        s,
        "GET http://{}/ HTTP/1.1\r\nProxy-Authorization: {a}\r\n\r\n",
        silent.addr
    )
    .unwrap();
    let got = read_all(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status_of(&got), Some(504), "{text}");
    assert!(
        text.ends_with("Timed out reading response from remote host after 1s\n"),
        "{text}"
    );
    let d = next_decision(&mut proxy);
    assert_eq!(d["level"], "error");
    assert_eq!(
        d["error"],
        "Timed out reading response from remote host after 1s"
    );
    assert_eq!(d["dst_port"], silent.addr.port().to_string());
    silent_release.send(()).unwrap();
    drop(s);
    base.wait_back(pid, "after an upstream that never answered");

    // 3. The client disconnects mid-upload: the upstream is closed too.
    let mut s = connect(&proxy);
    write!(
        s,
        "POST http://{}/ HTTP/1.1\r\nProxy-Authorization: {a}\r\nContent-Length: 1000000\r\n\r\n",
        upload.addr
    )
    .unwrap();
    s.write_all(&[b'u'; 1000]).unwrap();
    drop(s);
    let forwarded = upload_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the upstream connection is closed when the client goes");
    assert!(forwarded <= 1000, "{forwarded} body bytes forwarded");
    let d = next_decision(&mut proxy);
    assert_eq!(d["level"], "error");
    assert_eq!(
        d["error"], "client: connection closed with 999000 body bytes missing",
        "{d:?}"
    );
    base.wait_back(pid, "after a client left mid-upload");

    // 4. The origin closes half-way through a response body.
    let mut s = connect(&proxy);
    write!(
        s,
        "GET http://{}/ HTTP/1.1\r\nProxy-Authorization: {a}\r\n\r\n",
        half.addr
    )
    .unwrap();
    let got = read_all(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status_of(&got), Some(200), "{text}");
    assert!(
        text.ends_with(&"h".repeat(50)) && !text.contains(&"h".repeat(51)),
        "{text}"
    );
    let d = next_decision(&mut proxy);
    assert_eq!(d["level"], "error");
    assert_eq!(
        d["error"],
        "remote host: connection closed with 50 body bytes missing"
    );
    drop(s);
    base.wait_back(pid, "after an origin closed mid-body");

    // 5. The origin closes half-way through a tunnel: the half-close reaches
    // the client, which still may send, then both ends close cleanly.
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT {} HTTP/1.1\r\nProxy-Authorization: {a}\r\n\r\n",
        half_tunnel.addr
    )
    .unwrap();
    let head = read_head_exact(&mut s).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let got = read_all(&mut s);
    assert_eq!(got, vec![b't'; 50]);
    s.write_all(b"late").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 2));
    assert_eq!(close["error"], "");
    assert_eq!(close["bytes_in"], "50");
    assert_eq!(close["bytes_out"], "4");
    drop(s);
    base.wait_back(pid, "after a tunnel closed half-way");
}

/// The first `nameserver` of /etc/resolv.conf (glibc's default otherwise).
fn system_nameserver() -> IpAddr {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("nameserver"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| "127.0.0.1".parse().unwrap())
}

/// A DNS answer with RCODE=REFUSED for `query` (header and question only).
fn refused(query: &[u8]) -> Option<Vec<u8>> {
    let mut i = 12;
    while *query.get(i)? != 0 {
        i += usize::from(*query.get(i)?) + 1;
    }
    let end = i + 5;
    let mut out = query.get(..end)?.to_vec();
    out[2] = 0x81; // QR, RD
    out[3] = 0x85; // RA, REFUSED
    out[6..12].fill(0);
    Some(out)
}

#[test]
fn dns_that_never_answers_times_out_and_leaks_nothing() {
    if !in_private_netns("dns_that_never_answers_times_out_and_leaks_nothing") {
        return;
    }
    // The system resolver's nameserver, brought onto lo in this namespace,
    // with a socket that holds every query until released.
    let ns = system_nameserver();
    if !ns.is_loopback() {
        assert!(add_to_lo(ns), "cannot add the nameserver {ns} to lo");
    }
    let udp = UdpSocket::bind((ns, 53)).expect("bind the nameserver address, port 53");
    let (release_tx, release_rx) = channel::<()>();
    let (query_tx, query_rx) = channel::<()>();
    std::thread::spawn(move || {
        let mut held: Vec<(Vec<u8>, std::net::SocketAddr)> = Vec::new();
        let mut released = false;
        let mut buf = [0u8; 1500];
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        loop {
            if !released && release_rx.try_recv().is_ok() {
                released = true;
                for (q, from) in held.drain(..) {
                    if let Some(r) = refused(&q) {
                        let _ = udp.send_to(&r, from);
                    }
                }
            }
            if let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = query_tx.send(());
                if released {
                    if let Some(r) = refused(&buf[..n]) {
                        let _ = udp.send_to(&r, from);
                    }
                } else {
                    held.push((buf[..n].to_vec(), from));
                }
            }
        }
    });
    let ok = Origin::http(ok_response);
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", ok.addr),
        &format!("--allow-address={}", echo.addr),
        "--dns-timeout=500ms",
    ]);
    let pid = proxy.child.id();
    warm_up(&mut proxy, &ok, &echo);
    // One system lookup (answered from /etc/hosts) starts the
    // blocking pool, whose idle threads are kept for reuse (up to 500): the
    // baseline includes that thread, and the timed-out lookup must give it back.
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT localhost:443 HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    )
    .unwrap();
    assert_eq!(status_of(&read_all(&mut s)), Some(403));
    assert!(next_decision(&mut proxy)["error"].contains("(127.0.0.1)"));
    let base = Baseline::take_when_blocking_pool_idle(pid);
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT slow.example:443 HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    )
    .unwrap();
    let got = read_all(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status_of(&got), Some(502), "{text}");
    assert!(
        text.ends_with("Failed to resolve remote hostname: lookup slow.example: i/o timeout\n"),
        "{text}"
    );
    query_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the query reached the held nameserver");
    let d = next_decision(&mut proxy);
    assert_eq!(d["level"], "error");
    assert_eq!(
        d["error"],
        "Failed to resolve remote hostname: lookup slow.example: i/o timeout"
    );
    assert!(!d.contains_key("dst_ip"));
    // Let the abandoned lookup finish; its thread and socket must go away.
    release_tx.send(()).unwrap();
    drop(s);
    base.wait_back(pid, "after a DNS timeout");
}
