#![allow(clippy::disallowed_methods)] // tests own sockets
//! The metrics and health listener through the real binary: the exposition,
//! the counters real requests move, readiness across a drain, and that
//! neither the metrics port nor `/healthz` can be reached through the proxy.
//! Each test body runs in a private network namespace (see `common`).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use common::*;

const METRICS_FLAGS: [&str; 3] = [
    "--expose-prometheus-metrics",
    "--prometheus-listen-ip=127.0.0.1",
    "--prometheus-port=0",
];

fn start_with_metrics(extra: &[&str]) -> (Proxy, SocketAddr) {
    let mut args: Vec<&str> = METRICS_FLAGS.to_vec();
    args.extend_from_slice(extra);
    let mut proxy = Proxy::start(&args);
    let line = proxy.wait_line(|l| l.contains("msg=\"serving metrics\""));
    let addr = field(&line, "metrics_addr")
        .expect("metrics_addr")
        .parse()
        .expect("metrics address");
    (proxy, addr)
}

/// GET a path on the metrics listener: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (ok, out, err) = curl(&["-w", "\n%{http_code}", &format!("http://{addr}{path}")]);
    assert!(ok, "curl failed: {err}");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.parse().expect("status"), body.to_string())
}

/// The value of one sample line (`name value`).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in metrics:\n{text}"))
}

fn connect_request(proxy: &Proxy, target: &str, creds: bool) -> String {
    let mut s = connect(proxy);
    let auth = if creds {
        format!("Proxy-Authorization: {}\r\n", basic("u", PASSWORD))
    } else {
        String::new()
    };
    write!(s, "CONNECT {target} HTTP/1.1\r\n{auth}\r\n").expect("write CONNECT");
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf).0
}

#[test]
fn metrics_count_real_requests_and_health_is_ready() {
    if !in_private_netns("metrics_count_real_requests_and_health_is_ready") {
        return;
    }
    let origin = Origin::echo();
    let (mut proxy, metrics) = start_with_metrics(&[
        &format!("--allow-address={}", origin.addr),
        &format!("--static-host=origin.test={}", origin.addr.ip()),
        "--dns-timeout=2s",
    ]);
    assert_eq!(get(metrics, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(metrics, "/healthcheck").0, 200);

    // Allowed (ACL report, user-configured address), then tunnelled and closed.
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT origin.test:{} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\nping",
        origin.addr.port(),
        basic("u", PASSWORD)
    )
    .expect("write CONNECT");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    while buf.len() < 4 {
        let mut chunk = [0u8; 64];
        let n = s.read(&mut chunk).expect("read echo");
        assert!(n > 0, "EOF before the echo");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(buf, b"ping");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1);
    // ACL deny, no credentials, an address deny and a failed lookup.
    assert!(connect_request(&proxy, "db.internal:443", true).starts_with("HTTP/1.1 403 "));
    assert!(connect_request(&proxy, "origin.test:443", false).starts_with("HTTP/1.1 407 "));
    assert!(connect_request(&proxy, "127.0.0.1:9", true).starts_with("HTTP/1.1 403 "));
    assert!(
        connect_request(&proxy, "does-not-exist.invalid:443", true).starts_with("HTTP/1.1 502 ")
    );
    proxy.wait_msg("CANONICAL-PROXY-DECISION", 5);

    let (status, text) = get(metrics, "/metrics");
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for (name, want) in [
        ("acl_report_total", 3.0),
        ("acl_deny_total", 1.0),
        ("acl_allow_total", 0.0),
        ("acl_role_not_determined_total", 1.0),
        // The literal 127.0.0.1 counts too, as in Smokescreen.
        ("resolver_attempts_total", 3.0),
        ("resolver_errors_total", 1.0),
        ("resolver_allow_user_configured_total", 1.0),
        ("resolver_deny_not_global_unicast_total", 1.0),
        ("cn_atpt_total{success=\"true\"}", 1.0),
        ("cn_atpt_total{success=\"false\"}", 0.0),
        ("cn_atpt_success_total", 1.0),
        ("cn_atpt_fail_total", 0.0),
        ("cn_close_total", 1.0),
        // Four bytes each way: copied, far below the splice threshold.
        ("cn_spliced_bytes_total", 0.0),
        ("tunnels_open", 0.0),
        ("proxy_decision_duration_seconds_count", 5.0),
        ("resolver_lookup_duration_seconds_count", 3.0),
        ("cn_atpt_connect_duration_seconds_count", 1.0),
        ("cn_duration_seconds_count", 1.0),
        ("cn_bytes_in_count", 1.0),
    ] {
        assert_eq!(sample(&text, name), want, "{name}\n{text}");
    }
    assert!(sample(&text, "cn_bytes_out_sum") >= 4.0, "{text}");
    assert_eq!(get(metrics, "/nope").0, 404);
}

#[test]
fn health_turns_503_when_draining_starts() {
    if !in_private_netns("health_turns_503_when_draining_starts") {
        return;
    }
    let origin = Origin::echo();
    let (mut proxy, metrics) = start_with_metrics(&[&format!("--allow-address={}", origin.addr)]);
    assert_eq!(get(metrics, "/healthz").0, 200);
    // An open tunnel keeps the process draining rather than exiting.
    let mut s = connect(&proxy);
    write!(
        s,
        "CONNECT {} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
        origin.addr,
        basic("u", PASSWORD)
    )
    .expect("write");
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    proxy.signal("TERM");
    proxy.wait_msg("\"stopped accepting; waiting for open connections\"", 1);
    assert_eq!(get(metrics, "/healthz"), (503, "not ready\n".to_string()));
    let text = get(metrics, "/metrics").1;
    assert_eq!(sample(&text, "tunnels_open"), 1.0, "{text}");
    drop(s);
    assert!(proxy.wait_exit().success());
}

#[test]
fn metrics_port_is_refused_as_a_destination() {
    if !in_private_netns("metrics_port_is_refused_as_a_destination") {
        return;
    }
    // Even with all of loopback explicitly allowed.
    let (mut proxy, metrics) = start_with_metrics(&["--allow-range=127.0.0.0/8"]);
    let head = connect_request(&proxy, &metrics.to_string(), true);
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    let d = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(
        d["error"],
        format!(
            "The destination address ({}) was denied by rule 'Deny: Self Connection'",
            metrics.ip()
        )
    );
    // Absolute-form to the health path is refused the same way.
    let mut s = connect(&proxy);
    write!(
        s,
        "GET http://{metrics}/healthz HTTP/1.1\r\nHost: {metrics}\r\nProxy-Authorization: {}\r\n\r\n",
        basic("u", PASSWORD)
    )
    .expect("write");
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("Deny: Self Connection"));
    let text = get(metrics, "/metrics").1;
    assert_eq!(
        sample(&text, "resolver_deny_self_connection_total"),
        2.0,
        "{text}"
    );
    for success in ["true", "false"] {
        let series = format!("cn_atpt_total{{success=\"{success}\"}}");
        assert_eq!(sample(&text, &series), 0.0, "never dialled: {text}");
    }
}

#[test]
fn health_is_not_served_on_the_proxy_port() {
    if !in_private_netns("health_is_not_served_on_the_proxy_port") {
        return;
    }
    let (proxy, _metrics) = start_with_metrics(&[]);
    let mut s: TcpStream = connect(&proxy);
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr).expect("write");
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut s, &mut buf);
    assert!(!head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(
        String::from_utf8_lossy(&body).trim_end(),
        smokescreen::core::reply::NON_PROXY_MESSAGE
    );
}

#[test]
fn metrics_listener_keeps_alive_answers_head_and_honours_close() {
    if !in_private_netns("metrics_listener_keeps_alive_answers_head_and_honours_close") {
        return;
    }
    let (_proxy, metrics) = start_with_metrics(&[]);
    let mut s = TcpStream::connect(metrics).expect("connect metrics");
    let mut buf = Vec::new();

    // HEAD: the length of the GET body, and no body bytes.
    write!(s, "HEAD /healthz HTTP/1.1\r\nHost: m\r\n\r\n").expect("write HEAD");
    let head = read_head(&mut s, &mut buf).expect("HEAD response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(header(&head, "content-length").as_deref(), Some("3"));
    assert!(buf.is_empty(), "HEAD answer carried a body: {buf:?}");

    // Same connection, next request.
    write!(s, "GET /healthz HTTP/1.1\r\nHost: m\r\n\r\n").expect("write GET");
    let (head, body) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, b"ok\n");

    // `Connection: close` gets its answer, then EOF.
    write!(
        s,
        "GET /nope HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let (head, body) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert_eq!(body, b"not found\n");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read to EOF");
    assert!(
        rest.is_empty() && buf.is_empty(),
        "bytes after close: {rest:?}"
    );

    // The exposition itself.
    let text = one_shot(metrics, "GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(
        text.contains("content-type: application/openmetrics-text"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    // async-h1 reads HTTP/1.1 only: an HTTP/1.0 head gets a 400, then EOF.
    let text = one_shot(metrics, "GET /healthz HTTP/1.0\r\nHost: m\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");

    // A head async-h1 refuses (HTTP/1.1 without Host): 400, then EOF.
    let text = one_shot(metrics, "GET /metrics HTTP/1.1\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
}

/// Send one request on a fresh connection, half-close, read everything.
fn one_shot(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect metrics");
    s.write_all(request.as_bytes()).expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to EOF");
    String::from_utf8_lossy(&all).into_owned()
}

/// Raise this test process's soft open-files limit to its hard limit (the
/// test holds a thousand sockets).
fn raise_own_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: now.maximum,
        maximum: now.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise RLIMIT_NOFILE");
}

/// Issue 13, item 3: idle connections to the metrics port that never send
/// a byte cannot starve `/healthz`: the oldest is evicted when all slots are
/// taken, and a silent peer is closed after a short head timeout (it was
/// 64 slots, then every newcomer closed at once, for up to 60 s each).
#[test]
fn idle_connections_cannot_starve_the_health_check() {
    if !in_private_netns("idle_connections_cannot_starve_the_health_check") {
        return;
    }
    raise_own_nofile();
    let (_proxy, metrics) = start_with_metrics(&[]);
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(metrics).expect("connect to the metrics port"))
        .collect();
    for round in 0..3 {
        let (ok, out, err) = curl(&[
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            &format!("http://{metrics}/healthz"),
        ]);
        assert!(ok, "round {round}: /healthz did not answer: {err}");
        assert!(
            String::from_utf8_lossy(&out).ends_with("ok\n\n200"),
            "round {round}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    drop(idle);

    // A peer that never sends a byte is closed by the head timeout.
    let mut silent = TcpStream::connect(metrics).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let mut byte = [0u8; 1];
    match silent.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a silent metrics connection was not closed: {other:?}"),
    }
}
