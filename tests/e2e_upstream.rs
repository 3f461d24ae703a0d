#![allow(clippy::disallowed_methods)] // tests own sockets and clocks
//! Issue 16: upstream (parent) proxies — flags, the environment, and a
//! client's `X-Upstream-Https-Proxy` under `allowed_external_proxies` — with
//! fake upstream proxies that record what they are asked. Each test body
//! runs in a private network namespace (see `common`).

mod common;

use std::io::Write;

use common::*;

fn ok_response(_head: &str) -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A fake upstream proxy: records each request head; CONNECT gets `answer`
/// (a 200 then an echo, or a refusal), anything else a fixed 200.
fn upstream_proxy(answer: &'static str) -> Origin {
    Origin::start(std::sync::Arc::new(
        move |mut s: std::net::TcpStream, reqs: &std::sync::Mutex<Vec<String>>| {
            let mut buf = Vec::new();
            let Some(head) = read_head(&mut s, &mut buf) else {
                return;
            };
            reqs.lock().unwrap().push(head.clone());
            if !head.starts_with("CONNECT ") {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nvia upstream");
                return;
            }
            let _ = s.write_all(answer.as_bytes());
            if !answer.starts_with("HTTP/1.1 200") {
                return;
            }
            let mut chunk = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut s, &mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&chunk[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        },
    ))
}

const PROXY_OK: &str = "HTTP/1.1 200 Connection established\r\n\r\n";

#[test]
fn connect_and_http_go_through_the_upstream_proxies_after_every_check() {
    if !in_private_netns("connect_and_http_go_through_the_upstream_proxies_after_every_check") {
        return;
    }
    let https_proxy = upstream_proxy(PROXY_OK);
    let http_proxy = upstream_proxy(PROXY_OK);
    let mut proxy = Proxy::start(&[
        &format!(
            "--upstream-https-proxy-addr=http://corp:s3cret@{}",
            https_proxy.addr
        ),
        &format!("--upstream-http-proxy-addr={}", http_proxy.addr),
        // Public addresses the proxy checks but never dials itself.
        "--static-host=dest.test=8.8.8.8",
        "--static-host=private.test=10.0.0.1",
    ]);

    // CONNECT: the upstream is asked with CONNECT for the checked name.
    let mut tunnel = open_tunnel_ok(proxy.addr, "DEST.test:443", b"");
    tunnel.write_all(b"hello").unwrap();
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut tunnel, &mut got).unwrap();
    assert_eq!(&got, b"hello");
    drop(tunnel);
    let asked = https_proxy.requests.lock().unwrap()[0].clone();
    assert!(
        asked.starts_with("CONNECT dest.test:443 HTTP/1.1\r\n"),
        "{asked}"
    );
    assert_eq!(header(&asked, "host").as_deref(), Some("dest.test:443"));
    assert_eq!(
        header(&asked, "proxy-authorization").as_deref(),
        Some("Basic Y29ycDpzM2NyZXQ="),
        "the upstream's own credentials, not the client's: {asked}"
    );
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(decision["upstream_proxy"], https_proxy.addr.to_string());
    assert_eq!(decision["allow"], "true");

    // Plain HTTP: absolute-form to the HTTP upstream.
    let (ok, body, err) = curl_via(&proxy, &[], "http://dest.test:8080/path?q=1");
    assert!(ok, "curl: {err}");
    assert_eq!(body, b"via upstream");
    let asked = http_proxy.requests.lock().unwrap()[0].clone();
    assert!(
        asked.starts_with("GET http://dest.test:8080/path?q=1 HTTP/1.1\r\n"),
        "{asked}"
    );
    assert_eq!(header(&asked, "proxy-authorization"), None, "{asked}");
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(decision["upstream_proxy"], http_proxy.addr.to_string());

    // Refused by the ACL or an address rule: the upstream hears nothing.
    let (_, head) = open_tunnel_at(proxy.addr, "db.internal:443", b"");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = open_tunnel_at(proxy.addr, "private.test:443", b"");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    proxy.wait_msg("CANONICAL-PROXY-DECISION", 4);
    assert_eq!(
        https_proxy.accepted(),
        1,
        "upstream contacted for a refused request"
    );
    assert!(
        !proxy.seen.join("\n").contains("s3cret"),
        "upstream credentials in the log"
    );
}

#[test]
fn an_upstream_refusal_is_a_502_with_its_text() {
    if !in_private_netns("an_upstream_refusal_is_a_502_with_its_text") {
        return;
    }
    let refusing = upstream_proxy("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let mut proxy = Proxy::start(&[
        &format!("--upstream-https-proxy-addr={}", refusing.addr),
        "--static-host=dest.test=8.8.8.8",
    ]);
    let (mut s, head) = open_tunnel_at(proxy.addr, "dest.test:443", b"");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut body);
    let want = format!(
        "upstream proxy {} refused CONNECT: 403 Forbidden",
        refusing.addr
    );
    assert!(body.contains(&want), "{body}");
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(decision["status_code"], "502");
    assert!(decision["error"].contains(&want), "{decision:?}");

    // Nothing listening where the upstream should be: 502 too.
    let proxy = Proxy::start(&[
        &format!("--upstream-https-proxy-addr=127.0.0.1:{}", closed_port()),
        "--static-host=dest.test=8.8.8.8",
    ]);
    let (_, head) = open_tunnel_at(proxy.addr, "dest.test:443", b"");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
}

#[test]
fn the_environment_names_the_upstream_and_no_proxy_bypasses_it() {
    if !in_private_netns("the_environment_names_the_upstream_and_no_proxy_bypasses_it") {
        return;
    }
    let upstream = upstream_proxy(PROXY_OK);
    let https_proxy = format!("http://{}", upstream.addr);
    // The direct destination: a pinned name on an address added to lo.
    let status = std::process::Command::new("ip")
        .args(["addr", "add", "192.0.2.10/32", "dev", "lo"])
        .status()
        .expect("ip addr add");
    assert!(status.success());
    let direct = Origin::start_on("192.0.2.10:0", std::sync::Arc::new(|_s, _r| {}));
    let proxy = Proxy::start_with_env(
        &[
            "--static-host=dest.test=8.8.8.8",
            "--static-host=inside.corp=192.0.2.10",
            "--allow-range=192.0.2.10/32",
        ],
        &[
            ("PROXY_PASSWORD", PASSWORD),
            ("HTTPS_PROXY", &https_proxy),
            ("NO_PROXY", ".corp"),
        ],
    );
    drop(open_tunnel_ok(proxy.addr, "dest.test:443", b""));
    assert_eq!(upstream.accepted(), 1);
    let target = format!("inside.corp:{}", direct.addr.port());
    drop(open_tunnel_ok(proxy.addr, &target, b""));
    assert_eq!(upstream.accepted(), 1, "NO_PROXY name went upstream");
    // The proxy's dial completes at the handshake; the origin's accept
    // thread counts a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while direct.accepted() == 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(
        direct.accepted(),
        1,
        "NO_PROXY name was not dialled directly"
    );
}

const EXTERNAL_PROXY_ACL: &str = "version: v1
services:
  - name: authed
    project: users
    action: report
    allowed_external_proxies: [\"*.proxies.test\"]
global_deny_list: [\"*.internal\"]
";

/// CONNECT with an `X-Upstream-Https-Proxy` header: the response head and the stream.
fn connect_naming_proxy(proxy: &Proxy, target: &str, next: &str) -> (String, std::net::TcpStream) {
    let mut s = connect(proxy);
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nProxy-Authorization: {}\r\nX-Upstream-Https-Proxy: {next}\r\n\r\n",
        basic("u", PASSWORD)
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if std::io::Read::read(&mut s, &mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

#[test]
fn allowed_external_proxies_decide_the_clients_next_proxy() {
    if !in_private_netns("allowed_external_proxies_decide_the_clients_next_proxy") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yaml");
    std::fs::write(&acl, EXTERNAL_PROXY_ACL).unwrap();
    let external = upstream_proxy(PROXY_OK);
    let origin = Origin::http(ok_response);
    // A proxy the client names is a destination: the operator allows its
    // (loopback, here) address like any other.
    let mut proxy = Proxy::start(&[
        &format!("--egress-acl-file={}", acl.display()),
        "--static-host=dest.test=8.8.8.8",
        "--static-host=eu.proxies.test=127.0.0.1",
        &format!("--allow-address={}", origin.addr),
        &format!("--allow-address={}", external.addr),
    ]);
    let port = external.addr.port();

    // Allowed: the tunnel goes through the proxy the client named.
    let next = format!("http://eu.proxies.test:{port}");
    let (head, mut tunnel) = connect_naming_proxy(&proxy, "dest.test:443", &next);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tunnel.write_all(b"hi").unwrap();
    let mut got = [0u8; 2];
    std::io::Read::read_exact(&mut tunnel, &mut got).unwrap();
    assert_eq!(&got, b"hi");
    let asked = external.requests.lock().unwrap()[0].clone();
    assert!(
        asked.starts_with("CONNECT dest.test:443 HTTP/1.1\r\n"),
        "{asked}"
    );
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(
        decision["upstream_proxy"],
        format!("eu.proxies.test:{port}")
    );

    // A proxy host the rule does not list: denied before anything is sent.
    let (head, _) =
        connect_naming_proxy(&proxy, "dest.test:443", &format!("http://127.0.0.1:{port}"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(
        decision["decision_reason"],
        "connect proxy host not allowed in rule"
    );
    // Not a URL: Smokescreen's text.
    let (head, _) = connect_naming_proxy(&proxy, "dest.test:443", "http://:1");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 3));
    assert!(
        decision["decision_reason"].starts_with("proxy header contains invalid URL"),
        "{decision:?}"
    );
    // https:// (TLS to the next proxy) is allowed by the ACL but not built: 502.
    let (head, _) = connect_naming_proxy(&proxy, "dest.test:443", "https://eu.proxies.test");
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    assert_eq!(
        external.accepted(),
        1,
        "the next proxy heard a refused request"
    );

    // Plain HTTP: the ACL checks the header, and it never reaches the destination.
    let mut s = connect(&proxy);
    write!(
        s,
        "GET http://{}/x HTTP/1.1\r\nProxy-Authorization: {}\r\nX-Upstream-Https-Proxy: {next}\r\nConnection: close\r\n\r\n",
        origin.addr,
        basic("u", PASSWORD)
    )
    .unwrap();
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let req = origin.requests.lock().unwrap()[0].clone();
    assert_eq!(header(&req, "x-upstream-https-proxy"), None, "{req}");
}

#[test]
fn a_proxy_the_client_names_is_held_to_the_address_rules() {
    if !in_private_netns("a_proxy_the_client_names_is_held_to_the_address_rules") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl.yaml");
    std::fs::write(&acl, EXTERNAL_PROXY_ACL).unwrap();
    // An internal service that would answer anything, behind a name the
    // rule's glob covers: reaching it is what the address rules forbid.
    let internal = upstream_proxy(PROXY_OK);
    let mut proxy = Proxy::start(&[
        &format!("--egress-acl-file={}", acl.display()),
        "--static-host=dest.test=8.8.8.8",
        "--static-host=evil.proxies.test=127.0.0.1",
    ]);
    let next = format!("http://evil.proxies.test:{}", internal.addr.port());
    let (head, _) = connect_naming_proxy(&proxy, "dest.test:443", &next);
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let decision = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert!(
        decision["error"]
            .contains("the address 127.0.0.1 was denied by rule 'Deny: Not Global Unicast'"),
        "{decision:?}"
    );
    assert_eq!(
        internal.accepted(),
        0,
        "the proxy connected to a denied address"
    );
}
