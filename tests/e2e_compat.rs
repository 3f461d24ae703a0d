#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Issue 16: behaviour that lets this proxy replace Smokescreen HEAD without
//! touching clients, dashboards or alerts. Each test body runs in a private
//! network namespace (see `common`).

mod common;

use std::io::Write;

use common::*;

fn ok_response(_head: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
}

#[test]
fn refusals_log_their_status_code_and_successes_do_not() {
    if !in_private_netns("refusals_log_their_status_code_and_successes_do_not") {
        return;
    }
    let origin = Origin::http(ok_response);
    let allow = format!("--allow-address={}", origin.addr);
    let mut proxy = Proxy::start(&[&allow]);
    let (ok, _, err) = curl_via(&proxy, &[], &format!("http://{}/", origin.addr));
    assert!(ok, "curl failed: {err}");
    let allowed = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(allowed["allow"], "true");
    assert_eq!(allowed.get("status_code"), None, "{allowed:?}");

    let (_, body, _) = curl_via(&proxy, &["-D", "-"], "http://localhost/");
    assert!(String::from_utf8_lossy(&body).starts_with("HTTP/1.1 403"));
    let denied = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(denied["status_code"], "403", "{denied:?}");

    // A dial failure of an allowed request: 502 on the line.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut proxy = Proxy::start(&["--allow-address=127.0.0.1"]);
    let (_, body, _) = curl_via(&proxy, &["-D", "-"], &format!("http://127.0.0.1:{port}/"));
    assert!(String::from_utf8_lossy(&body).starts_with("HTTP/1.1 502"));
    let failed = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(failed["status_code"], "502", "{failed:?}");
}

#[test]
fn raw_utf8_hosts_are_proxied_as_punycode() {
    if !in_private_netns("raw_utf8_hosts_are_proxied_as_punycode") {
        return;
    }
    let origin = Origin::http(ok_response);
    let allow = format!("--allow-address={}", origin.addr);
    let pin = "--static-host=bücher.example=127.0.0.1".to_string();
    let mut proxy = Proxy::start(&[&allow, &pin]);
    let port = origin.addr.port();
    let mut s = connect(&proxy);
    let auth = basic("authed", PASSWORD);
    write!(
        s,
        "GET http://bücher.example:{port}/x HTTP/1.1\r\nProxy-Authorization: {auth}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let req = origin.requests.lock().unwrap()[0].clone();
    assert_eq!(
        header(&req, "host"),
        Some(format!("xn--bcher-kva.example:{port}")),
        "{req}"
    );
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(decision["allow"], "true");
    assert_eq!(decision["requested_host"], format!("bücher.example:{port}"));

    // CONNECT with a raw UTF-8 name reaches the pinned address too.
    let pin = "--static-host=🔐.example.com=127.0.0.1".to_string();
    let echo = Origin::echo();
    let allow = format!("--allow-address={}", echo.addr);
    let proxy = Proxy::start(&[&allow, &pin]);
    let target = format!("🔐.example.com:{}", echo.addr.port());
    let mut tunnel = open_tunnel_ok(proxy.addr, &target, b"");
    tunnel.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    std::io::Read::read_exact(&mut tunnel, &mut got).unwrap();
    assert_eq!(&got, b"ping");
}

const METRICS_FLAGS: [&str; 3] = [
    "--expose-prometheus-metrics",
    "--prometheus-listen-ip=127.0.0.1",
    "--prometheus-port=0",
];

/// The proxy and its metrics listener's address.
fn start_with_metrics(extra: &[&str]) -> (Proxy, std::net::SocketAddr) {
    let mut args: Vec<&str> = METRICS_FLAGS.to_vec();
    args.extend_from_slice(extra);
    let mut proxy = Proxy::start(&args);
    let line = proxy.wait_line(|l| l.contains("msg=\"serving metrics\""));
    let addr = field(&line, "metrics_addr").expect("metrics_addr");
    (proxy, addr.parse().expect("metrics address"))
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let (ok, out, err) = curl(&[&format!("http://{addr}/metrics")]);
    assert!(ok, "curl failed: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in metrics:\n{text}"))
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn prometheus_has_smokescreen_heads_names_and_counts_literals() {
    if !in_private_netns("prometheus_has_smokescreen_heads_names_and_counts_literals") {
        return;
    }
    let echo = Origin::echo();
    let (mut proxy, metrics) = start_with_metrics(&["--allow-address=127.0.0.1"]);
    let before = scrape(metrics);
    for series in [
        "cn_atpt_total{success=\"true\"}",
        "cn_atpt_total{success=\"false\"}",
        "cn_atpt_connect_err_total{type=\"refused\"}",
        "cn_atpt_connect_err_total{type=\"timeout\"}",
    ] {
        assert_eq!(sample(&before, series), 0.0, "{series}");
    }
    // One tunnel to a literal address that answers, one to a closed port.
    drop(open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""));
    let (_, head) = open_tunnel_at(proxy.addr, &format!("127.0.0.1:{}", closed_port()), b"");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    proxy.wait_msg("CANONICAL-PROXY-DECISION", 2);
    let after = scrape(metrics);
    assert_eq!(sample(&after, "cn_atpt_total{success=\"true\"}"), 1.0);
    assert_eq!(sample(&after, "cn_atpt_total{success=\"false\"}"), 1.0);
    assert_eq!(
        sample(&after, "cn_atpt_connect_err_total{type=\"refused\"}"),
        1.0
    );
    // Our older names stay beside them.
    assert_eq!(sample(&after, "cn_atpt_success_total"), 1.0);
    assert_eq!(sample(&after, "cn_atpt_fail_total"), 1.0);
    // Literal addresses count as resolver attempts, as in Smokescreen.
    assert_eq!(sample(&after, "resolver_attempts_total"), 2.0);
    assert_eq!(
        sample(&after, "resolver_lookup_duration_seconds_count"),
        2.0
    );
}

/// A UDP socket standing in for the statsd server, and the flag naming it.
fn statsd_listener() -> (std::net::UdpSocket, String) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let flag = format!("--statsd-address={}", socket.local_addr().unwrap());
    (socket, flag)
}

/// Collect statsd datagrams until every `want` line has arrived (bounded).
fn statsd_lines_until(socket: &std::net::UdpSocket, want: &[&str]) -> Vec<String> {
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut lines: Vec<String> = Vec::new();
    let mut buf = [0u8; 65536];
    while !want.iter().all(|w| lines.iter().any(|l| l == w)) {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => panic!("statsd lines missing ({e}); want {want:?}, got {lines:?}"),
        };
        let packet = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            n <= 1432,
            "datagram larger than DogStatsD's UDP default: {n}"
        );
        lines.extend(packet.split('\n').map(str::to_string));
    }
    lines
}

#[test]
fn statsd_sends_smokescreens_names_and_tags_over_udp() {
    if !in_private_netns("statsd_sends_smokescreens_names_and_tags_over_udp") {
        return;
    }
    let (statsd, flag) = statsd_listener();
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[&flag, "--allow-address=127.0.0.1"]);
    let mut tunnel = open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b"");
    tunnel.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    std::io::Read::read_exact(&mut tunnel, &mut got).unwrap();
    drop(tunnel);
    proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1);
    let (_, head) = open_tunnel_at(proxy.addr, &format!("127.0.0.1:{}", closed_port()), b"");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert!(connect_request_denied(&proxy).starts_with("HTTP/1.1 403"));
    let lines = statsd_lines_until(
        &statsd,
        &[
            "smokescreen.acl.report:1|c|#role:authed,def_rule:false,project:users",
            "smokescreen.acl.deny:1|c|#role:authed,def_rule:false,project:users",
            "smokescreen.resolver.attempts_total:1|c",
            "smokescreen.resolver.allow.user_configured:1|c",
            "smokescreen.cn.atpt.total:1|c|#success:true",
            "smokescreen.cn.atpt.total:1|c|#success:false",
            "smokescreen.cn.atpt.connect.err:1|c|#type:refused",
            "smokescreen.cn.close:1|c|#role:authed,project:users",
            "smokescreen.cn.bytes_in:4|h|#role:authed,project:users",
            "smokescreen.cn.bytes_out:4|h|#role:authed,project:users",
        ],
    );
    for prefix in [
        "smokescreen.resolver.lookup_time:",
        "smokescreen.cn.atpt.connect.time:",
        "smokescreen.cn.duration:",
        "smokescreen.proxy_duration_ms:",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "{prefix} in {lines:?}"
        );
    }
}

/// A CONNECT the default ACL denies (`*.internal` is on its deny list).
fn connect_request_denied(proxy: &Proxy) -> String {
    let (_, head) = open_tunnel_at(proxy.addr, "db.internal:443", b"");
    head
}

#[test]
fn a_statsd_server_that_is_down_costs_nothing() {
    if !in_private_netns("a_statsd_server_that_is_down_costs_nothing") {
        return;
    }
    // Nothing listens on the statsd port: requests still go through.
    let flag = format!("--statsd-address=127.0.0.1:{}", closed_port());
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[&flag, "--allow-address=127.0.0.1"]);
    for n in 1..=20 {
        drop(open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b""));
        proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", n);
    }
}

/// The examples for issue 16's features.
const EXAMPLES: &[&str] = &[
    "examples/statsd/config.yaml",
    "examples/upstream-proxy/config.yaml",
];

/// They load with `check-config`.
#[test]
fn compat_examples_load() {
    for example in EXAMPLES {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_smokescreen"))
            .args(["check-config", "--config-file", example])
            .env("PROXY_PASSWORD", PASSWORD)
            .output()
            .expect("run check-config");
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `check-config` names the upstream proxies and statsd, never a password.
#[test]
fn check_config_shows_upstreams_without_credentials() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smokescreen"))
        .args([
            "check-config",
            "--upstream-https-proxy-addr=http://me:s3cret@proxy.example:3128",
            "--statsd-address=127.0.0.1:8125",
        ])
        .env("PROXY_PASSWORD", PASSWORD)
        .env("HTTP_PROXY", "web-proxy.example:8080")
        .output()
        .expect("run check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("upstream https proxy: proxy.example:3128\n"),
        "{text}"
    );
    assert!(
        text.contains("upstream http proxy: web-proxy.example:8080\n"),
        "{text}"
    );
    assert!(text.contains("statsd: 127.0.0.1:8125\n"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smokescreen"))
        .args([
            "check-config",
            "--upstream-https-proxy-addr=https://me:s3cret@p:443",
        ])
        .env("PROXY_PASSWORD", PASSWORD)
        .output()
        .expect("run check-config");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("only http:// upstream proxies"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

/// GET / on the stats socket: the HTTP response as text.
fn read_stats_socket(path: &std::path::Path) -> String {
    use std::io::Read as _;
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect stats socket");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read stats socket");
    out
}

#[test]
fn the_stats_socket_lists_open_tunnels_as_smokescreen_does() {
    if !in_private_netns("the_stats_socket_lists_open_tunnels_as_smokescreen_does") {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let echo = Origin::echo();
    let mut proxy = Proxy::start(&[
        "--allow-address=127.0.0.1",
        &format!("--stats-socket-dir={}", dir.path().display()),
        "--stats-socket-file-mode=660",
    ]);
    let path = dir.path().join(format!("track-{}.sock", proxy.child.id()));
    let mode = std::fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    assert_eq!(
        read_stats_socket(&path).split("\r\n\r\n").nth(1),
        Some("[\n]\n"),
        "no tunnel open yet"
    );

    let mut tunnel = open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b"");
    tunnel.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    std::io::Read::read_exact(&mut tunnel, &mut got).unwrap();
    // A direction counts its bytes once its write returns, which can be just
    // after the client has them: ask again until the counts settle (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let response = loop {
        let response = read_stats_socket(&path);
        let settled = response.contains("\"bytesIn\":4,\"bytesOut\":4");
        if settled || std::time::Instant::now() > deadline {
            break response;
        }
    };
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let list: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    let conns = list.as_array().expect("a list");
    assert_eq!(conns.len(), 1, "{body}");
    let c = &conns[0];
    assert_eq!(c["role"], "authed");
    assert_eq!(c["rhost"], echo.addr.to_string());
    assert_eq!(c["raddr"], echo.addr.to_string());
    assert_eq!(c["bytesIn"], 4);
    assert_eq!(c["bytesOut"], 4);
    assert_eq!(c["proxyType"], "connect");
    assert!(c["secondsSinceLastActivity"].as_f64().is_some(), "{c}");
    assert!(
        c["created"].as_str().is_some_and(|t| t.contains('T')),
        "{c}"
    );
    drop(tunnel);
    // The socket file goes when the proxy exits.
    proxy.signal("TERM");
    assert!(proxy.wait_exit().success());
    assert!(!path.exists(), "stats socket left behind");
}

#[test]
fn statsd_counts_limited_requests_as_smokescreen_does() {
    if !in_private_netns("statsd_counts_limited_requests_as_smokescreen_does") {
        return;
    }
    let (statsd, flag) = statsd_listener();
    let echo = Origin::echo();
    let proxy = Proxy::start(&[
        &flag,
        "--allow-address=127.0.0.1",
        "--max-concurrent-connect-tunnels=1",
    ]);
    let first = open_tunnel_ok(proxy.addr, &echo.addr.to_string(), b"");
    let (_, head) = open_tunnel_at(proxy.addr, &echo.addr.to_string(), b"");
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    statsd_lines_until(&statsd, &["smokescreen.tunnels.concurrency_limited:1|c"]);
    drop(first);
}
