#![allow(clippy::disallowed_methods)] // tests own sockets and processes
//! Self connection through the real binary (issue 13, item 1): with a
//! wildcard listener, every address of every local interface is the proxy
//! itself on its own ports, whatever the address policy says. The addresses
//! (1.2.3.4, 8.8.8.8, 2606:4700::1111) exist only on `lo` inside the test's
//! private network namespace.

mod common;
mod harden;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use harden::*;

const SELF_DENIED: &str = "Deny: Self Connection";

/// A proxy on `0.0.0.0` with its metrics listener on `0.0.0.0` too, both on
/// OS-chosen ports: (proxy, proxy port, metrics port). The proxy is reached
/// on 127.0.0.1, so the address a client arrives on is never the one asked.
fn wildcard_proxy(extra: &[&str]) -> (Proxy, u16, u16) {
    let mut args = vec![
        "--expose-prometheus-metrics",
        "--prometheus-listen-ip=0.0.0.0",
        "--prometheus-port=0",
    ];
    args.extend_from_slice(extra);
    let mut proxy = Proxy::start_listening("0.0.0.0", &args, &[("PROXY_PASSWORD", PASSWORD)]);
    let line = proxy.wait_line(|l| l.contains("msg=\"serving metrics\""));
    let metrics: SocketAddr = field(&line, "metrics_addr")
        .expect("metrics_addr")
        .parse()
        .expect("metrics address");
    let port = proxy.addr.port();
    proxy.addr = SocketAddr::from(([127, 0, 0, 1], port));
    (proxy, port, metrics.port())
}

fn connect_status(proxy: &Proxy, target: &str) -> (String, Option<u16>) {
    let request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    );
    let answer = exchange_head(proxy.addr, request.as_bytes());
    let status = status_of(answer.as_bytes());
    (answer, status)
}

/// Send `request` and read only the response head (a granted CONNECT
/// stays open, so reading to EOF would wait for the idle timeout).
fn exchange_head(proxy: SocketAddr, request: &[u8]) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(proxy).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    read_head(&mut s, &mut Vec::new()).unwrap_or_default()
}

#[test]
fn every_local_address_on_our_ports_is_a_self_connection() {
    if !in_private_netns("every_local_address_on_our_ports_is_a_self_connection") {
        return;
    }
    let v4: [IpAddr; 2] = ["1.2.3.4".parse().unwrap(), "8.8.8.8".parse().unwrap()];
    for ip in v4 {
        assert!(add_to_lo(ip), "cannot add {ip} to lo");
    }
    let v6: IpAddr = "2606:4700::1111".parse().unwrap();
    let have_v6 = add_to_lo(v6);
    let (proxy, port, metrics) =
        wildcard_proxy(&["--unsafe-allow-private-ranges", "--allow-range=1.2.3.0/24"]);

    // The metrics page through the proxy, on a local address an allow
    // range covers: refused, and the page is not in the answer.
    let request = format!(
        "GET http://1.2.3.4:{metrics}/metrics HTTP/1.1\r\nHost: 1.2.3.4:{metrics}\r\nProxy-Authorization: {}\r\n\r\n",
        auth()
    );
    let answer = String::from_utf8_lossy(&exchange(proxy.addr, request.as_bytes())).into_owned();
    assert_eq!(status_of(answer.as_bytes()), Some(403), "{answer}");
    assert!(answer.contains(SELF_DENIED), "{answer}");
    assert!(!answer.contains("cn_atpt"), "metrics page leaked: {answer}");

    // The proxy port on each local address: no nested proxy-to-proxy tunnel.
    let mut targets: Vec<String> = v4.iter().map(|ip| format!("{ip}:{port}")).collect();
    if have_v6 {
        targets.push(format!("[{v6}]:{port}"));
    }
    for target in &targets {
        let (answer, status) = connect_status(&proxy, target);
        assert_eq!(status, Some(403), "CONNECT {target}: {answer}");
        assert!(answer.contains(SELF_DENIED), "CONNECT {target}: {answer}");
    }

    // Another port on the same addresses is not us.
    let origin = Origin::echo();
    let (answer, status) = connect_status(&proxy, &format!("8.8.8.8:{}", origin.addr.port()));
    assert_eq!(
        status,
        Some(502),
        "nothing listens on 8.8.8.8 there: {answer}"
    );
}

#[test]
fn an_address_added_after_start_is_refused_too() {
    if !in_private_netns("an_address_added_after_start_is_refused_too") {
        return;
    }
    let (proxy, port, _) = wildcard_proxy(&[]);
    let ip: IpAddr = "9.9.9.9".parse().unwrap();
    assert!(add_to_lo(ip), "cannot add {ip} to lo");
    // The list is read again every few seconds: wait (bounded) for it.
    wait_for(
        "CONNECT to a newly added local address refused",
        Duration::from_secs(15),
        || {
            let (answer, status) = connect_status(&proxy, &format!("{ip}:{port}"));
            if status == Some(403) && answer.contains(SELF_DENIED) {
                Ok(())
            } else {
                Err(answer)
            }
        },
    );
}
