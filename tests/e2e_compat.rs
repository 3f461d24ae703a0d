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
