#![allow(clippy::disallowed_methods)] // tests own processes, files and sockets
//! End-to-end tests of the Smokescreen-parity features through the real
//! binary: PROXY protocol, the TLS listener with client certificates and
//! CRLs, and `--resolver-address`. Loopback only, each in a private network
//! namespace.

mod common;
#[path = "common/pki.rs"]
mod pki;
#[path = "common/proxy_header.rs"]
mod proxy_header;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread;

use common::*;
use pki::{write, Ca};
use proxy_header::{render_v1, render_v2};
use smokescreen::core::proxy_protocol::Addresses;

/// The log message of a connection refused before HTTP (quoted: it has spaces).
const REFUSED: &str = "\"connection refused before the request\"";

fn ok_response(head: &str) -> Vec<u8> {
    let path = head.split(' ').nth(1).unwrap_or("?").to_string();
    let body = format!("hello from origin {path}");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn connect_request(origin: SocketAddr) -> String {
    format!(
        "CONNECT {origin} HTTP/1.1\r\nHost: {origin}\r\nProxy-Authorization: {}\r\n\r\n",
        basic("u", PASSWORD)
    )
}

/// Read until the peer closes (or the read timeout); returns what arrived.
fn read_to_close(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smokescreen"));
    cmd.args(["--listen-ip", "127.0.0.1", "--listen-port", "0"])
        .args(args)
        .env_remove("PROXY_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run smokescreen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn proxy_protocol_from_a_trusted_peer_sets_the_client_address() {
    if !in_private_netns("proxy_protocol_from_a_trusted_peer_sets_the_client_address") {
        return;
    }
    let origin = Origin::http(ok_response);
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        "--proxy-protocol",
        "--proxy-protocol-trusted-range=127.0.0.0/8",
    ]);

    // v1, then the CONNECT request in the same write.
    let mut s = connect(&proxy);
    let header = render_v1(&Addresses::Proxied {
        source: "203.0.113.7:51000".parse().unwrap(),
        destination: proxy.addr,
    });
    let mut bytes = header;
    bytes.extend_from_slice(connect_request(origin.addr).as_bytes());
    s.write_all(&bytes).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).expect("CONNECT reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(s);
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["source_addr"], "203.0.113.7:51000");
    assert_eq!(line["src_host"], "203.0.113.7");
    assert_eq!(line["src_port"], "51000");
    assert_eq!(line["allow"], "true");

    // v2 with IPv6 addresses, header and request in separate writes.
    let mut s = connect(&proxy);
    s.write_all(&render_v2(&Addresses::Proxied {
        source: "[2001:db8::7]:4242".parse().unwrap(),
        destination: "[2001:db8::1]:4750".parse().unwrap(),
    }))
    .unwrap();
    s.write_all(connect_request(origin.addr).as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).expect("CONNECT reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(s);
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(line["source_addr"], "[2001:db8::7]:4242");
    assert_eq!(line["src_host"], "2001:db8::7");

    // v2 LOCAL (a health check): the real peer is logged.
    let mut s = connect(&proxy);
    s.write_all(&render_v2(&Addresses::Local)).unwrap();
    s.write_all(connect_request(origin.addr).as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).expect("CONNECT reply");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(s);
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 3));
    assert_eq!(line["src_host"], "127.0.0.1");

    // A trusted peer must send a header: a bare request is refused unanswered.
    let mut s = connect(&proxy);
    s.write_all(connect_request(origin.addr).as_bytes())
        .unwrap();
    assert_eq!(read_to_close(&mut s), b"");
    let refused = fields(&proxy.wait_msg(REFUSED, 1));
    assert_eq!(
        refused["error"],
        "missing PROXY protocol header from a trusted peer"
    );

    // A malformed header is refused too.
    let mut s = connect(&proxy);
    s.write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n").unwrap();
    assert_eq!(read_to_close(&mut s), b"");
    let refused = fields(&proxy.wait_msg(REFUSED, 2));
    assert!(
        refused["error"].starts_with("invalid PROXY protocol header: "),
        "{refused:?}"
    );
    assert_eq!(origin.wait_accepted(3), 3);
}

#[test]
fn proxy_protocol_from_an_untrusted_peer_is_refused_and_plain_requests_pass() {
    if !in_private_netns("proxy_protocol_from_an_untrusted_peer_is_refused_and_plain_requests_pass")
    {
        return;
    }
    let origin = Origin::http(ok_response);
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        "--proxy-protocol",
        "--proxy-protocol-trusted-range=10.0.0.0/8",
    ]);
    let mut s = connect(&proxy);
    let mut bytes = render_v1(&Addresses::Proxied {
        source: "198.51.100.1:1".parse().unwrap(),
        destination: proxy.addr,
    });
    bytes.extend_from_slice(connect_request(origin.addr).as_bytes());
    s.write_all(&bytes).unwrap();
    assert_eq!(read_to_close(&mut s), b"");
    let refused = fields(&proxy.wait_msg(REFUSED, 1));
    assert_eq!(
        refused["error"],
        "PROXY protocol header from an untrusted peer"
    );
    assert_eq!(refused["source_addr"].split(':').next(), Some("127.0.0.1"));

    // Without a header, an untrusted peer is served with its own address.
    let (ok, body, err) = curl_via(&proxy, &[], &format!("http://{}/plain", origin.addr));
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8_lossy(&body), "hello from origin /plain");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["src_host"], "127.0.0.1");
    assert_eq!(origin.wait_accepted(1), 1);
}

#[test]
fn proxy_protocol_header_has_a_timeout() {
    if !in_private_netns("proxy_protocol_header_has_a_timeout") {
        return;
    }
    let mut proxy = Proxy::start(&[
        "--proxy-protocol",
        "--proxy-protocol-trusted-range=127.0.0.1",
        "--read-header-timeout=300ms",
    ]);
    let mut s = connect(&proxy);
    s.write_all(b"PROXY TCP4 1.2.3.4").unwrap();
    // The proxy closes the connection by itself (read timeout in `connect` is 20 s).
    assert_eq!(read_to_close(&mut s), b"");
    let refused = fields(&proxy.wait_msg(REFUSED, 1));
    assert_eq!(
        refused["error"],
        "timed out reading the PROXY protocol header"
    );
}

#[test]
fn proxy_protocol_without_trusted_ranges_refuses_to_start() {
    if !in_private_netns("proxy_protocol_without_trusted_ranges_refuses_to_start") {
        return;
    }
    let (code, stderr) = run(&["--proxy-protocol"], &[("PROXY_PASSWORD", PASSWORD)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--proxy-protocol needs at least one --proxy-protocol-trusted-range"),
        "{stderr}"
    );
}

/// PKI files for the TLS tests.
struct Files {
    _dir: tempfile::TempDir,
    bundle: String,
    ca: String,
    crl: String,
    acl: String,
    good_cert: String,
    good_key: String,
    revoked_cert: String,
    revoked_key: String,
    stranger_cert: String,
    stranger_key: String,
}

fn pki_files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |path: &Path| path.display().to_string();
    let ca = Ca::new("Proxy Client CA");
    let server = ca.server();
    let good = ca.client(Some("billing"), Some("payments"), 20);
    let revoked = ca.client(Some("billing"), Some("payments"), 21);
    let other = Ca::new("Another CA");
    let stranger = other.client(Some("billing"), None, 20);
    let d = dir.path();
    let acl = "version: v1\nservices:\n  - name: billing\n    project: payments\n    action: enforce\n    allowed_domains: [origin.test]\ndefault:\n  project: other\n  action: enforce\n";
    Files {
        bundle: p(&write(
            d,
            "server.pem",
            &format!("{}{}", server.cert, server.key),
        )),
        ca: p(&write(d, "ca.pem", &ca.pem.cert)),
        crl: p(&write(d, "crl.pem", &ca.crl(&[21]))),
        acl: p(&write(d, "acl.yaml", acl)),
        good_cert: p(&write(d, "good.pem", &good.cert)),
        good_key: p(&write(d, "good.key", &good.key)),
        revoked_cert: p(&write(d, "revoked.pem", &revoked.cert)),
        revoked_key: p(&write(d, "revoked.key", &revoked.key)),
        stranger_cert: p(&write(d, "stranger.pem", &stranger.cert)),
        stranger_key: p(&write(d, "stranger.key", &stranger.key)),
        _dir: dir,
    }
}

/// curl through the TLS proxy with an optional client certificate.
fn curl_tls(
    proxy: &Proxy,
    files: &Files,
    identity: Option<(&str, &str)>,
    extra: &[&str],
    url: &str,
) -> (bool, Vec<u8>, String) {
    let proxy_url = format!("https://{}", proxy.addr);
    let mut args = vec![
        "-x",
        proxy_url.as_str(),
        "--proxy-cacert",
        files.ca.as_str(),
    ];
    if let Some((cert, key)) = identity {
        args.extend_from_slice(&["--proxy-cert", cert, "--proxy-key", key]);
    }
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args)
}

fn tls_proxy(files: &Files, origin: &Origin, env: &[(&str, &str)]) -> Proxy {
    Proxy::start_with_env(
        &[
            &format!("--allow-address={}", origin.addr),
            "--static-host=origin.test=127.0.0.1",
            "--egress-acl-file",
            &files.acl,
            "--tls-server-bundle-file",
            &files.bundle,
            "--tls-client-ca-file",
            &files.ca,
            "--tls-crl-file",
            &files.crl,
        ],
        env,
    )
}

/// Issue 13, item 2, through the binary: root → intermediate → leaf
/// `CN=authed`, the root's CRL (`--tls-crl-file`) revoking the
/// intermediate. The leaf is refused in the handshake; a leaf of an
/// intermediate that is not revoked gets role `authed`.
#[test]
fn a_client_of_a_revoked_intermediate_ca_is_refused() {
    if !in_private_netns("a_client_of_a_revoked_intermediate_ca_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |path: &Path| path.display().to_string();
    let root = Ca::new("Proxy Client Root");
    let server = root.server();
    let revoked_ca = root.intermediate("Revoked Intermediate", 31);
    let good_ca = root.intermediate("Good Intermediate", 32);
    let acl = "version: v1\nservices:\n  - name: authed\n    project: users\n    action: enforce\n    allowed_domains: [origin.test]\n";
    let origin = Origin::http(ok_response);
    let bundle = p(&write(
        d,
        "server.pem",
        &format!("{}{}", server.cert, server.key),
    ));
    let ca = p(&write(d, "root.pem", &root.pem.cert));
    let mut proxy = Proxy::start_with_env(
        &[
            &format!("--allow-address={}", origin.addr),
            "--static-host=origin.test=127.0.0.1",
            "--egress-acl-file",
            &p(&write(d, "acl.yaml", acl)),
            "--tls-server-bundle-file",
            &bundle,
            "--tls-client-ca-file",
            &ca,
            "--tls-crl-file",
            &p(&write(d, "root-crl.pem", &root.crl(&[31]))),
        ],
        &[],
    );
    let url = format!("http://origin.test:{}/chain", origin.addr.port());
    let proxy_url = format!("https://{}", proxy.addr);
    let through = |issuer: &Ca, name: &str| {
        let leaf = issuer.client_chain("authed", 7);
        let cert = p(&write(d, &format!("{name}.pem"), &leaf.cert));
        let key = p(&write(d, &format!("{name}.key"), &leaf.key));
        curl(&[
            "-x",
            &proxy_url,
            "--proxy-cacert",
            &ca,
            "--proxy-cert",
            &cert,
            "--proxy-key",
            &key,
            &url,
        ])
    };

    let (ok, body, err) = through(&good_ca, "good");
    assert!(ok, "a client of a good intermediate: {err}");
    assert_eq!(String::from_utf8_lossy(&body), "hello from origin /chain");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["role"], "authed");

    let (ok, body, err) = through(&revoked_ca, "revoked");
    assert!(
        !ok,
        "a client of a revoked intermediate got through: {body:?}"
    );
    assert!(body.is_empty(), "{body:?} ({err})");
    assert_eq!(origin.accepted(), 1, "the revoked chain reached the origin");
}

#[test]
fn tls_client_certificate_names_the_role_and_bad_certificates_are_refused() {
    if !in_private_netns("tls_client_certificate_names_the_role_and_bad_certificates_are_refused") {
        return;
    }
    let files = pki_files();
    let origin = Origin::http(ok_response);
    // No PROXY_PASSWORD: the certificate alone authenticates.
    let mut proxy = tls_proxy(&files, &origin, &[]);
    let url = format!("http://origin.test:{}/over-tls", origin.addr.port());
    let good = Some((files.good_cert.as_str(), files.good_key.as_str()));

    // Forwarded HTTP over the TLS connection.
    let (ok, body, err) = curl_tls(&proxy, &files, good, &[], &url);
    assert!(ok, "{err}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        "hello from origin /over-tls"
    );
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["role"], "billing");
    assert_eq!(line["project"], "payments");
    assert_eq!(line["src_host_common_name"], "billing");
    assert_eq!(line["src_host_organization_unit"], "payments");
    assert_eq!(line["proxy_type"], "http");
    assert_eq!(line["allow"], "true");

    // A CONNECT tunnel inside the TLS connection.
    let (ok, body, err) = curl_tls(&proxy, &files, good, &["-p"], &url);
    assert!(ok, "{err}");
    assert_eq!(
        String::from_utf8_lossy(&body),
        "hello from origin /over-tls"
    );
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(line["proxy_type"], "connect");
    assert_eq!(line["role"], "billing");
    let close = fields(&proxy.wait_msg("CANONICAL-PROXY-CN-CLOSE", 1));
    assert_eq!(close["error"], "");

    // The ACL still applies to the certificate's role.
    let (ok, _, _) = curl_tls(
        &proxy,
        &files,
        good,
        &["-f"],
        &format!("http://{}/not-listed", origin.addr),
    );
    assert!(!ok);
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 3));
    assert_eq!(line["allow"], "false");
    assert_eq!(line["role"], "billing");

    // No certificate, a revoked one, or one from another CA: refused in the handshake.
    let refusals = [
        (None, "certificate"),
        (
            Some((files.revoked_cert.as_str(), files.revoked_key.as_str())),
            "revoked",
        ),
        (
            Some((files.stranger_cert.as_str(), files.stranger_key.as_str())),
            "issuer",
        ),
    ];
    for (n, (identity, cause)) in refusals.into_iter().enumerate() {
        let (ok, _, _) = curl_tls(&proxy, &files, identity, &[], &url);
        assert!(!ok, "{cause}: curl succeeded");
        let refused = fields(&proxy.wait_msg(REFUSED, n + 1));
        assert!(
            refused["error"].to_lowercase().contains(cause),
            "{cause}: {refused:?}"
        );
    }
    assert_eq!(origin.wait_accepted(2), 2);
    let decisions = proxy
        .seen
        .iter()
        .filter(|l| l.contains("CANONICAL-PROXY-DECISION"))
        .count();
    assert_eq!(decisions, 3, "refused handshakes must not reach a decision");
}

#[test]
fn tls_with_a_password_requires_both_factors() {
    if !in_private_netns("tls_with_a_password_requires_both_factors") {
        return;
    }
    let files = pki_files();
    let origin = Origin::http(ok_response);
    let mut proxy = tls_proxy(&files, &origin, &[("PROXY_PASSWORD", PASSWORD)]);
    let url = format!("http://origin.test:{}/both", origin.addr.port());
    let good = Some((files.good_cert.as_str(), files.good_key.as_str()));

    let (ok, body, _) = curl_tls(&proxy, &files, good, &["-w", "%{http_code}"], &url);
    assert!(ok);
    assert!(String::from_utf8_lossy(&body).ends_with("407"));
    let creds = format!("u:{PASSWORD}");
    let (ok, body, err) = curl_tls(&proxy, &files, good, &["-U", &creds], &url);
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8_lossy(&body), "hello from origin /both");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 2));
    assert_eq!(line["role"], "billing");
    assert_eq!(origin.wait_accepted(1), 1);
}

/// A UDP DNS server on 127.0.0.1 answering `origin.test` A with 127.0.0.1
/// and NXDOMAIN for everything else.
fn dns_server() -> SocketAddr {
    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record, RecordType};
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, from)) = udp.recv_from(&mut buf) else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(q) = query.queries.first().cloned() else {
                continue;
            };
            let mut r = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            r.add_query(q.clone());
            match q.name().to_ascii().as_str() {
                "origin.test." if q.query_type() == RecordType::A => {
                    r.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::A(A([127, 0, 0, 1].into())),
                    ));
                }
                "origin.test." => {}
                _ => r.metadata.response_code = ResponseCode::NXDomain,
            }
            let _ = udp.send_to(&r.to_vec().unwrap(), from);
        }
    });
    addr
}

#[test]
fn resolver_address_resolves_destinations_through_the_given_server() {
    if !in_private_netns("resolver_address_resolves_destinations_through_the_given_server") {
        return;
    }
    let dns = dns_server();
    let origin = Origin::http(ok_response);
    let mut proxy = Proxy::start(&[
        &format!("--allow-address={}", origin.addr),
        &format!("--resolver-address={dns}"),
    ]);
    let (ok, body, err) = curl_via(
        &proxy,
        &[],
        &format!("http://origin.test:{}/dns", origin.addr.port()),
    );
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8_lossy(&body), "hello from origin /dns");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["dst_ip"], "127.0.0.1");

    let (ok, body, _) = curl_via(&proxy, &["-w", "\n%{http_code}"], "http://missing.test/");
    assert!(ok);
    let text = String::from_utf8_lossy(&body);
    assert!(text.ends_with("\n502"), "{text}");
    assert!(
        text.contains(&format!("lookup missing.test on {dns}: no such host")),
        "{text}"
    );
    // The answers still go through the address checks: loopback is denied
    // for a port that was not allowed.
    let (ok, body, _) = curl_via(&proxy, &["-w", "\n%{http_code}"], "http://origin.test:1/");
    assert!(ok);
    let text = String::from_utf8_lossy(&body);
    assert!(text.ends_with("\n403"), "{text}");
}

#[test]
fn proxy_protocol_header_comes_before_the_tls_handshake() {
    if !in_private_netns("proxy_protocol_header_comes_before_the_tls_handshake") {
        return;
    }
    let files = pki_files();
    let origin = Origin::http(ok_response);
    let url = format!("http://origin.test:{}/pp-tls", origin.addr.port());
    let good = Some((files.good_cert.as_str(), files.good_key.as_str()));
    let start = |trusted: &str| {
        Proxy::start_with_env(
            &[
                &format!("--allow-address={}", origin.addr),
                "--static-host=origin.test=127.0.0.1",
                "--egress-acl-file",
                &files.acl,
                "--tls-server-bundle-file",
                &files.bundle,
                "--tls-client-ca-file",
                &files.ca,
                "--proxy-protocol",
                &format!("--proxy-protocol-trusted-range={trusted}"),
            ],
            &[],
        )
    };

    // Trusted: a v1 header, then the TLS handshake on the same connection
    // (curl cannot send a header to a proxy, so this client is rustls).
    let mut proxy = start("127.0.0.0/8");
    let header = render_v1(&Addresses::Proxied {
        source: "198.51.100.9:6000".parse().unwrap(),
        destination: proxy.addr,
    });
    let request = format!("GET {url} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n");
    let reply = tls_exchange(proxy.addr, &files, &header, request.as_bytes());
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("hello from origin /pp-tls"), "{reply}");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["role"], "billing");
    assert_eq!(line["source_addr"], "198.51.100.9:6000");
    drop(proxy);

    // Untrusted and without a header: the bytes read while looking for a
    // header are replayed into the handshake.
    let mut proxy = start("10.0.0.0/8");
    let (ok, body, err) = curl_tls(&proxy, &files, good, &[], &url);
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8_lossy(&body), "hello from origin /pp-tls");
    let line = fields(&proxy.wait_msg("CANONICAL-PROXY-DECISION", 1));
    assert_eq!(line["src_host_common_name"], "billing");
    assert_eq!(origin.wait_accepted(2), 2);
}

/// Connect to `proxy`, send `prefix` in clear, then speak TLS with the good
/// client certificate: send `request`, return everything read until close.
fn tls_exchange(proxy: SocketAddr, files: &Files, prefix: &[u8], request: &[u8]) -> Vec<u8> {
    use async_std::io::{ReadExt as _, WriteExt as _};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&files.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(&files.good_cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&files.good_key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    async_std::task::block_on(async {
        let mut tcp = async_std::net::TcpStream::connect(proxy).await.unwrap();
        tcp.write_all(prefix).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
        let connector = futures_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(request).await.unwrap();
        tls.flush().await.unwrap();
        let mut out = Vec::new();
        let read = tls.read_to_end(&mut out);
        let _ = async_std::future::timeout(std::time::Duration::from_secs(20), read).await;
        out
    })
}
