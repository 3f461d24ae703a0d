#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Operations under load: SIGHUP reload while tunnels carry data, SIGTERM
//! drain with active tunnels, and the exit timeout cutting tunnels that
//! will not finish.

mod common;
mod harden;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use harden::*;

/// A client that keeps a tunnel busy: 4 KiB out, the same 4 KiB echoed
/// back, until told to stop; then it half-closes and reads to EOF.
struct Pump {
    echoed: Arc<AtomicU64>,
    handle: JoinHandle<Result<u64, String>>,
}

fn pump(mut s: TcpStream, stop: Arc<AtomicBool>, seed: u8) -> Pump {
    let echoed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&echoed);
    let handle = std::thread::spawn(move || {
        let mut round: u8 = 0;
        let mut back = vec![0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let chunk = vec![seed.wrapping_add(round); 4096];
            s.write_all(&chunk).map_err(|e| format!("write: {e}"))?;
            s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
            if back != chunk {
                return Err("echo corrupted".into());
            }
            counter.fetch_add(4096, Ordering::SeqCst);
            round = round.wrapping_add(1);
        }
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .map_err(|e| format!("drain: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} unexpected bytes", rest.len()));
        }
        Ok(counter.load(Ordering::SeqCst))
    });
    Pump { echoed, handle }
}

/// Wait until every pump has moved at least `more` bytes past `from`.
fn wait_progress(pumps: &[Pump], from: &[u64], more: u64) {
    wait_for("tunnels carry data", Duration::from_secs(20), || {
        let now: Vec<u64> = pumps
            .iter()
            .map(|p| p.echoed.load(Ordering::SeqCst))
            .collect();
        if now.iter().zip(from).all(|(n, f)| *n >= f + more) {
            Ok(())
        } else {
            Err(format!("{now:?} from {from:?}"))
        }
    });
}

fn counts(pumps: &[Pump]) -> Vec<u64> {
    pumps
        .iter()
        .map(|p| p.echoed.load(Ordering::SeqCst))
        .collect()
}

const ACL_OPEN: &str = "version: v1\nservices:\n  - name: authed\n    project: users\n    action: open\ndefault:\n  project: other\n  action: enforce\n";
const ACL_ENFORCE: &str = "version: v1\nservices:\n  - name: authed\n    project: users\n    action: enforce\ndefault:\n  project: other\n  action: enforce\n";

#[test]
fn sighup_reload_keeps_busy_tunnels_and_applies_the_new_acl() {
    if !in_private_netns("sighup_reload_keeps_busy_tunnels_and_applies_the_new_acl") {
        return;
    }
    let echo = Origin::echo();
    let acl = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(acl.path(), ACL_OPEN).unwrap();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        &format!("--egress-acl-file={}", acl.path().display()),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let pumps: Vec<Pump> = (0..3)
        .map(|i| {
            pump(
                open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""),
                Arc::clone(&stop),
                i * 50,
            )
        })
        .collect();
    wait_progress(&pumps, &[0, 0, 0], 64 * 1024);

    std::fs::write(acl.path(), ACL_ENFORCE).unwrap();
    let at_reload = counts(&pumps);
    proxy.signal("HUP");
    proxy.wait_msg("\"reloaded egress ACL\"", 1);

    // New requests see the new ACL...
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT {} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        echo.addr,
        auth()
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 403 "), "{text}");
    assert!(text.contains("rule has enforce policy"), "{text}");
    let d = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 4));
    assert_eq!(d["decision_reason"], "rule has enforce policy");
    assert_eq!(d["allow"], "false");

    // ...while the tunnels opened before it keep moving data.
    wait_progress(&pumps, &at_reload, 64 * 1024);
    stop.store(true, Ordering::SeqCst);
    let mut totals = Vec::new();
    for p in pumps {
        totals.push(
            p.handle
                .join()
                .unwrap()
                .expect("tunnel survived the reload"),
        );
    }
    for n in 1..=3 {
        let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", n));
        assert_eq!(close["error"], "", "{close:?}");
        let bytes: u64 = close["bytes_in"].parse().unwrap();
        assert!(
            totals.contains(&bytes),
            "bytes_in {bytes} not in {totals:?}"
        );
    }
}

#[test]
fn sigterm_drains_busy_tunnels_and_refuses_new_connections() {
    if !in_private_netns("sigterm_drains_busy_tunnels_and_refuses_new_connections") {
        return;
    }
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        "--exit-timeout=20s",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let pumps: Vec<Pump> = (0..3)
        .map(|i| {
            pump(
                open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""),
                Arc::clone(&stop),
                i * 70,
            )
        })
        .collect();
    wait_progress(&pumps, &[0, 0, 0], 64 * 1024);
    proxy.signal("TERM");
    let line = fields(&proxy.wait_msg("\"stopped accepting; waiting for open connections\"", 1));
    assert_eq!(line["open_connections"], "3");
    // The listener is closed: new connections are refused outright.
    match TcpStream::connect(proxy.addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a new connection was accepted while draining"),
    }
    // The tunnels keep working through the drain, then finish on their own.
    let at_term = counts(&pumps);
    wait_progress(&pumps, &at_term, 64 * 1024);
    stop.store(true, Ordering::SeqCst);
    let started = Instant::now();
    for p in pumps {
        p.handle
            .join()
            .unwrap()
            .expect("tunnel finished cleanly during the drain");
    }
    for n in 1..=3 {
        let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", n));
        assert_eq!(close["error"], "", "{close:?}");
    }
    proxy.wait_msg("\"shutdown complete\"", 1);
    let status = proxy.wait_exit();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "drain took the whole exit timeout"
    );
    assert!(
        !proxy
            .seen
            .iter()
            .any(|l| l.contains("exit timeout reached")),
        "tunnels were cut although they finished in time"
    );
}

#[test]
fn exit_timeout_cuts_tunnels_that_never_finish() {
    if !in_private_netns("exit_timeout_cuts_tunnels_that_never_finish") {
        return;
    }
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        "--exit-timeout=1s",
    ]);
    let mut idle: Vec<TcpStream> = (0..2)
        .map(|_| open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""))
        .collect();
    let started = Instant::now();
    proxy.signal("TERM");
    proxy.wait_msg("\"exit timeout reached; closing remaining tunnels\"", 1);
    for n in 1..=2 {
        let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", n));
        assert_eq!(close["error"], "proxy shutting down");
    }
    let status = proxy.wait_exit();
    let elapsed = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    for s in &mut idle {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
}

#[test]
fn second_signal_cuts_tunnels_without_blaming_the_exit_timeout() {
    if !in_private_netns("second_signal_cuts_tunnels_without_blaming_the_exit_timeout") {
        return;
    }
    let echo = Origin::echo();
    // A long exit timeout: only the second signal can end this drain soon.
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", echo.addr),
        "--exit-timeout=60s",
    ]);
    // Several tunnels, so the listener sees the forced stop before they close.
    let _idle: Vec<TcpStream> = (0..16)
        .map(|_| open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""))
        .collect();
    proxy.signal("TERM");
    proxy.wait_msg("\"stopped accepting; waiting for open connections\"", 1);
    proxy.signal("TERM");
    proxy.wait_msg("\"second signal: closing open tunnels now\"", 1);
    for n in 1..=16 {
        let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", n));
        assert_eq!(close["error"], "proxy shutting down");
    }
    proxy.wait_msg("\"shutdown complete\"", 1);
    assert!(proxy.wait_exit().success());
    assert!(
        !proxy
            .seen
            .iter()
            .any(|l| l.contains("exit timeout reached")),
        "the log blames the exit timeout for a second signal:\n{}",
        proxy.seen.join("\n")
    );
}
