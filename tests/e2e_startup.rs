#![allow(clippy::disallowed_methods)] // tests own processes, files and sockets
//! Process-level behaviour of the real binary: startup errors and exit
//! codes, SIGHUP reload, SIGTERM/SIGINT drain.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smokescreen"));
    cmd.args(args).env_remove("PROXY_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run smokescreen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_password_exits_1_with_the_fly_message() {
    let (code, _, err) = run(&["--listen-port", "0"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("missing environment variable: PROXY_PASSWORD"),
        "{err}"
    );
}

#[test]
fn help_and_version_work_without_a_password() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--egress-acl-file"), "{out}");
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn bad_flags_and_files_exit_2_naming_the_problem() {
    let (code, _, err) = run(&["--no-such-flag"], &[("PROXY_PASSWORD", "x")]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["--timeout", "ten seconds"], &[("PROXY_PASSWORD", "x")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--timeout"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yaml");
    std::fs::write(&acl, "version: v2\nservices: []\n").unwrap();
    let acl_arg = acl.display().to_string();
    let (code, _, err) = run(
        &["--listen-port", "0", "--egress-acl-file", &acl_arg],
        &[("PROXY_PASSWORD", "x")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&acl_arg) && err.contains("expected version \\\"v1\\\" got \\\"v2\\\""),
        "{err}"
    );
    let missing = dir.path().join("nope.yaml").display().to_string();
    let (code, _, err) = run(
        &["--listen-port", "0", "--egress-acl-file", &missing],
        &[("PROXY_PASSWORD", "x")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sighup_reloads_the_acl_and_keeps_the_old_one_when_the_new_is_bad() {
    if !in_private_netns("sighup_reloads_the_acl_and_keeps_the_old_one_when_the_new_is_bad") {
        return;
    }
    let origin = Origin::http(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yaml");
    let enforce = "version: v1\nservices:\n  - name: authed\n    project: p\n    action: enforce\n";
    let open = "version: v1\nservices:\n  - name: authed\n    project: p\n    action: open\n";
    std::fs::write(&acl, enforce).unwrap();
    let acl_arg = format!("--egress-acl-file={}", acl.display());
    let mut proxy = Proxy::start(&[&acl_arg, &format!("--allow-address={}", origin.addr)]);
    let creds = format!("u:{PASSWORD}");
    let url = format!("http://{}/", origin.addr);
    let status = |proxy: &Proxy| {
        let (_, out, _) = curl(&[
            "-x",
            &proxy.url(),
            "-U",
            &creds,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]);
        String::from_utf8_lossy(&out).into_owned()
    };
    assert_eq!(status(&proxy), "403");
    std::fs::write(&acl, open).unwrap();
    proxy.signal("HUP");
    proxy.wait_line(|l| l.contains("reloaded egress ACL"));
    assert_eq!(status(&proxy), "200");
    std::fs::write(
        &acl,
        "version: v1\nservices:\n  - name: authed\n    action: sometimes\n",
    )
    .unwrap();
    proxy.signal("HUP");
    let err = proxy.wait_line(|l| l.contains("ACL reload failed"));
    assert!(err.contains("unknown action sometimes"), "{err}");
    assert_eq!(status(&proxy), "200", "the previous ACL must stay in force");
}

#[test]
fn sigterm_drains_an_open_tunnel_then_exits_0() {
    if !in_private_netns("sigterm_drains_an_open_tunnel_then_exits_0") {
        return;
    }
    let origin = Origin::echo();
    let mut proxy = Proxy::start(&[&format!("--allow-address={}", origin.addr)]);
    let mut s = open_tunnel_ok(proxy.addr, &origin.addr.to_string(), b"");
    proxy.signal("TERM");
    proxy.wait_line(|l| l.contains("stopped accepting"));
    // New connections are refused once draining has started.
    assert!(
        std::net::TcpStream::connect(proxy.addr).is_err(),
        "listener still accepting while draining"
    );
    // The open tunnel still works during the drain.
    s.write_all(b"still here").unwrap();
    let mut echoed = [0u8; 10];
    s.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"still here");
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1));
    assert_eq!(close["error"], "");
    assert_eq!(close["bytes_out"], "10");
    let status = proxy.wait_exit();
    assert!(status.success(), "{status:?}");
    proxy.wait_line(|l| l.contains("shutdown complete"));
}

#[test]
fn exit_timeout_cuts_remaining_tunnels_and_logs_them() {
    if !in_private_netns("exit_timeout_cuts_remaining_tunnels_and_logs_them") {
        return;
    }
    let origin = Origin::echo();
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        "--exit-timeout=200ms",
    ]);
    let mut s = open_tunnel_ok(proxy.addr, &origin.addr.to_string(), b"");
    proxy.signal("INT");
    let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1));
    assert_eq!(close["error"], "proxy shutting down");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // the proxy closed the client side
    assert!(proxy.wait_exit().success());
}

#[test]
fn default_listen_address_is_dual_stack() {
    if !in_private_netns("default_listen_address_is_dual_stack") {
        return;
    }
    let mut proxy = Proxy::start_listening("::", &[], &[("PROXY_PASSWORD", PASSWORD)]);
    assert_eq!(proxy.addr.ip().to_string(), "::");
    let port = proxy.addr.port();
    for client in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let mut s = std::net::TcpStream::connect(&client).expect("connect over both families");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 400 "), "{client}: {reply}");
    }
    // The self-connection rule covers the wildcard listener on both families.
    let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        s,
        "CONNECT [::1]:{port} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        basic("u", PASSWORD)
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403 "), "{reply}");
    let d = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(
        d["error"],
        "The destination address (::1) was denied by rule 'Deny: Self Connection'"
    );
}

/// Set this test process's open-files limit; the proxy it spawns inherits it.
fn set_own_nofile(soft: u64, hard: u64) {
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={soft}:{hard}"),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

/// The proxy's own "Max open files" soft and hard limits.
fn proxy_nofile(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Issue 13, item 7: a 1,024 soft limit under a high hard limit is raised
/// at start (as Go does), without a warning; only a hard limit below what
/// --max-connections needs is warned about, naming it and what fits.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    if !in_private_netns("the_open_files_limit_is_raised_to_the_hard_limit") {
        return;
    }
    let (_, hard_now) = proxy_nofile(std::process::id());
    let hard = hard_now.min(65_536);
    // --max-connections 5000 needs 10,064 descriptors.
    assert!(hard >= 10_064, "this test needs a hard limit of 10064");
    set_own_nofile(1024, hard);
    let proxy = Proxy::start(&["--max-connections", "5000"]);
    let warned: Vec<&String> = proxy
        .seen
        .iter()
        .filter(|l| l.contains("open-files"))
        .collect();
    assert!(warned.is_empty(), "no warning expected: {warned:?}");
    assert_eq!(proxy_nofile(proxy.child.id()), (hard, hard));
    drop(proxy);

    // A hard limit too low for 5,000 connections.
    set_own_nofile(1024, 4096);
    let mut proxy = Proxy::start(&["--max-connections", "5000"]);
    let line = proxy.wait_line(|l| l.contains("open-files"));
    assert!(
        line.contains("level=warning")
            && line.contains("soft 4096, hard 4096")
            && line.contains("--max-connections 5000 needs (10064); 2016 connections fit"),
        "{line}"
    );
    assert_eq!(proxy_nofile(proxy.child.id()), (4096, 4096));
}

/// Issue 13, item 5: SIGHUP with the ACL path turned into a FIFO (a read
/// that never returns, like a hung network mount) must not keep SIGTERM
/// from draining, and the reload gives up within its time limit keeping
/// the old ACL.
#[test]
fn a_reload_stuck_on_a_fifo_never_delays_a_drain() {
    if !in_private_netns("a_reload_stuck_on_a_fifo_never_delays_a_drain") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yaml");
    let open = "version: v1\nservices:\n  - name: authed\n    project: p\n    action: open\n";
    let acl_arg = format!("--egress-acl-file={}", acl.display());
    let fifo = |acl: &std::path::Path| {
        let _ = std::fs::remove_file(acl);
        let made = Command::new("mkfifo").arg(acl).status().expect("mkfifo");
        assert!(made.success(), "mkfifo failed");
    };

    std::fs::write(&acl, open).unwrap();
    let mut proxy = Proxy::start(&[&acl_arg]);
    fifo(&acl);
    proxy.signal("HUP");
    proxy.signal("TERM");
    proxy.wait_line(|l| l.contains("shutting down: draining connections"));
    let status = proxy.wait_exit();
    assert!(status.success(), "exit status {status:?}");

    std::fs::remove_file(&acl).unwrap();
    std::fs::write(&acl, open).unwrap();
    let origin = Origin::http(|_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
    let mut proxy = Proxy::start(&[&acl_arg, &format!("--allow-address={}", origin.addr)]);
    fifo(&acl);
    proxy.signal("HUP");
    let err = proxy.wait_line(|l| l.contains("ACL reload failed"));
    assert!(err.contains("not read within 5s"), "{err}");
    // The old ACL is still in force and the proxy still serves.
    let (ok, body, stderr) = curl_via(&proxy, &[], &format!("http://{}/", origin.addr));
    assert!(ok && body == b"ok", "{stderr}");
    proxy.signal("TERM");
    assert!(proxy.wait_exit().success());
}

/// The names of the proxy's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Memory at rest (issue 20): the signal pipe and the proxy's own sockets
/// run on the proxy's engines, so a proxy that needs no DNS client,
/// metrics listener, statsd or stats socket never starts async-io's
/// reactor (its thread and ~60 KiB of queues), and signals still work.
#[test]
fn signals_and_tunnels_start_no_async_io_reactor() {
    if !in_private_netns("signals_and_tunnels_start_no_async_io_reactor") {
        return;
    }
    let origin = Origin::echo();
    let mut proxy = Proxy::start(&[&format!("--allow-address={}", origin.addr)]);
    let mut s = open_tunnel_ok(proxy.addr, &origin.addr.to_string(), b"");
    s.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    s.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    let names = thread_names(proxy.child.id());
    assert!(
        names.iter().any(|n| n.starts_with("smokescreen-")),
        "no worker thread among {names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "async-io"),
        "async-io's reactor started: {names:?}"
    );
    drop(s);
    proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1);
    proxy.signal("TERM");
    assert!(proxy.wait_exit().success());
}
