#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Long-running measurements, not part of the default `cargo test`:
//!
//! ```sh
//! bench/soak.sh            # both, release build
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//! `SOAK_SECS` (120), `SOAK_CLIENTS` (300) and `IDLE_TUNNELS` (9000) size
//! them. Results are recorded in docs/reliability.md.

mod common;
mod harden;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use harden::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ok_response(_head: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world".to_vec()
}

fn tunnel_session(proxy: SocketAddr, echo: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(proxy).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "CONNECT {echo} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 39];
    s.read_exact(&mut head).map_err(|e| format!("head: {e}"))?;
    if &head != b"HTTP/1.1 200 Connection established\r\n\r\n" {
        return Err(format!("head {:?}", String::from_utf8_lossy(&head)));
    }
    let mut back = [0u8; 1024];
    for i in 0..10u8 {
        let chunk = [i; 1024];
        s.write_all(&chunk).map_err(|e| format!("write: {e}"))?;
        s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
        if back != chunk {
            return Err("corrupted echo".into());
        }
    }
    Ok(())
}

fn http_session(proxy: SocketAddr, origin: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(proxy).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    for i in 0..5 {
        write!(
            s,
            "GET http://{origin}/{i} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
            auth()
        )
        .map_err(|e| e.to_string())?;
        let head = read_head(&mut s, &mut buf).ok_or("no response head")?;
        if !head.starts_with("HTTP/1.1 200 ") {
            return Err(head);
        }
        while buf.len() < 11 {
            let mut chunk = [0u8; 64];
            let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("EOF in body".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if buf.drain(..11).collect::<Vec<u8>>() != b"hello world" {
            return Err("wrong body".into());
        }
    }
    Ok(())
}

#[test]
#[ignore = "long soak (2 min): run with bench/soak.sh or cargo test --release --test soak -- --ignored"]
fn soak_mixed_connect_and_http() {
    if !in_private_netns("soak_mixed_connect_and_http") {
        return;
    }
    let secs = env_or("SOAK_SECS", 120);
    let clients = env_or("SOAK_CLIENTS", 300);
    let echo = Origin::echo();
    let origin = Origin::http(ok_response);
    let proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        &format!("--allow-address={}", origin.addr),
    ]);
    let pid = proxy.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut handles = Vec::new();
    for c in 0..clients {
        let (stop, ok, errors, first_error) = (
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&errors),
            Arc::clone(&first_error),
        );
        let (p, e, o) = (proxy.addr, echo.addr, origin.addr);
        handles.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let r = if c % 2 == 0 {
                    tunnel_session(p, e)
                } else {
                    http_session(p, o)
                };
                match r {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(msg) => {
                        first_error.lock().unwrap().get_or_insert(msg);
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    // Sample every 10 s; the channel timeout is the sampling clock.
    let (_never, tick) = channel::<()>();
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        let _ = tick.recv_timeout(Duration::from_secs(10));
        let s = (
            started.elapsed().as_secs(),
            rss_kib(pid),
            fd_count(pid),
            thread_count(pid),
            ok.load(Ordering::Relaxed),
        );
        eprintln!(
            "t={}s rss={}KiB fds={} threads={} sessions={}",
            s.0, s.1, s.2, s.3, s.4
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let sessions = ok.load(Ordering::Relaxed);
    let failed = errors.load(Ordering::Relaxed);
    eprintln!(
        "soak: {clients} clients, {secs}s, {sessions} sessions ({:.0}/s), {failed} errors",
        sessions as f64 / secs as f64
    );
    assert_eq!(failed, 0, "first error: {:?}", first_error.lock().unwrap());
    assert!(sessions > 0);
    // Flat memory: after the first third, RSS grows by less than 20 %.
    let settled = samples[samples.len() / 3].1;
    let peak_late = samples[samples.len() / 3..]
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap();
    assert!(
        peak_late <= settled + settled / 5,
        "RSS grew from {settled} KiB to {peak_late} KiB"
    );
}

#[test]
#[ignore = "measurement (about a minute): run with bench/soak.sh or cargo test --release --test soak idle -- --ignored"]
fn idle_tunnels_memory() {
    if !in_private_netns("idle_tunnels_memory") {
        return;
    }
    let n = env_or("IDLE_TUNNELS", 9000) as usize;
    // An origin that just keeps every connection (no thread per connection).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for s in listener.incoming().flatten() {
            kept.push(s);
        }
    });
    let proxy = Proxy::start(&[&format!("--allow-address={origin}")]);
    let pid = proxy.child.id();
    // Warm up with a few tunnels, then measure from there.
    let warm: Vec<TcpStream> = (0..16).map(|_| open(proxy.addr, origin)).collect();
    let before = (rss_kib(pid), fd_count(pid));
    let started = Instant::now();
    let tunnels: Vec<TcpStream> = (0..n).map(|_| open(proxy.addr, origin)).collect();
    let opened_in = started.elapsed();
    let after = (rss_kib(pid), fd_count(pid));
    let per = (after.0 - before.0) as f64 * 1024.0 / n as f64;
    eprintln!(
        "idle tunnels: {n} opened in {opened_in:?}; RSS {} -> {} KiB ({per:.0} bytes per tunnel); fds {} -> {}",
        before.0, after.0, before.1, after.1
    );
    assert!(
        after.1 >= before.1 + 2 * n,
        "each tunnel holds two descriptors"
    );
    drop(tunnels);
    drop(warm);
}

fn open(proxy: SocketAddr, origin: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "CONNECT {origin} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    )
    .unwrap();
    let mut head = [0u8; 39];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 Connection established\r\n\r\n");
    s
}
