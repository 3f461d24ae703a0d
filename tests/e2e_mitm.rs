#![allow(clippy::disallowed_methods)] // tests own sockets, files and processes
//! `mitm_domains` end to end, each test in a private network namespace: a
//! test MITM CA and an HTTPS origin made with rcgen, curl as the app. The
//! origin receives the added header the app never sent; a non-listed domain
//! still tunnels untouched; an inner request for another host is refused; a
//! destination the proxy cannot verify gets nothing; a secret never appears
//! in logs; a bad CA or a rule without a CA fails at start; a reload picks
//! up a rotated secret.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{curl, in_private_netns, Proxy, PASSWORD};
use pki::{write, Ca};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const SECRET: &str = "Bearer sk_live_TOPSECRET_4242";
const ROTATED: &str = "Bearer sk_live_ROTATED_9999";

/// An HTTPS origin for `api.test` and `other.test` that records every
/// request head it receives and answers 200 `hello`.
struct HttpsOrigin {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpsOrigin {
    fn start(ca: &Ca) -> HttpsOrigin {
        let pem = ca.server_for(&["api.test", "other.test"]);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pem.cert.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { break };
                let config = Arc::clone(&config);
                let seen = Arc::clone(&seen);
                thread::spawn(move || serve(tcp, config, seen));
            }
        });
        HttpsOrigin { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn serve(
    tcp: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    loop {
        let mut head = String::new();
        {
            let mut reader = BufReader::new(&mut tls);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
        }
        seen.lock().unwrap().push(head);
        let body = b"hello";
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        if tls.write_all(reply.as_bytes()).is_err() || tls.write_all(body).is_err() {
            return;
        }
        let _ = tls.flush();
    }
}

fn acl_text(secret_ref: &str) -> String {
    format!(
        "version: v1
services:
  - name: authed
    project: jobs
    action: enforce
    allowed_domains: [api.test, other.test]
    mitm_domains:
      - domain: api.test
        add_headers:
          Authorization: \"{secret_ref}\"
          X-Team: blue
        detailed_http_logs: true
        detailed_http_logs_full_headers: [User-Agent]
default:
  action: enforce
"
    )
}

/// The files a proxy with interception needs.
struct Setup {
    dir: tempfile::TempDir,
    origin: HttpsOrigin,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mitm_ca = Ca::new("test MITM CA");
        let origin_ca = Ca::new("test origin CA");
        write(dir.path(), "mitm-ca.pem", &mitm_ca.pem.cert);
        write(dir.path(), "mitm-ca.key", &mitm_ca.pem.key);
        write(dir.path(), "origin-ca.pem", &origin_ca.pem.cert);
        let origin = HttpsOrigin::start(&origin_ca);
        Setup { dir, origin }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn acl(&self, secret_ref: &str) -> PathBuf {
        write(self.dir.path(), "acl.yaml", &acl_text(secret_ref))
    }

    /// Flags for a proxy that intercepts `api.test` (pinned to the origin).
    fn args(&self, acl: &Path, trust_origin: bool) -> Vec<String> {
        let mut args = vec![
            format!("--egress-acl-file={}", acl.display()),
            format!("--mitm-ca-cert-file={}", self.path("mitm-ca.pem").display()),
            format!("--mitm-ca-key-file={}", self.path("mitm-ca.key").display()),
            format!("--static-host=api.test={}", self.origin.addr.ip()),
            format!("--static-host=other.test={}", self.origin.addr.ip()),
            format!("--allow-address={}", self.origin.addr),
        ];
        if trust_origin {
            args.push(format!(
                "--mitm-upstream-ca-file={}",
                self.path("origin-ca.pem").display()
            ));
        }
        args
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.origin.addr.port())
    }
}

fn start(args: &[String], env: &[(&str, &str)]) -> Proxy {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut all = vec![("PROXY_PASSWORD", PASSWORD)];
    all.extend_from_slice(env);
    Proxy::start_with_env(&refs, &all)
}

/// curl as the app (role `authed`: the password's), trusting `ca` for the destination.
fn app(proxy: &Proxy, ca: &Path, extra: &[&str], url: &str) -> (bool, String, String) {
    let creds = format!("app:{PASSWORD}");
    let ca = ca.display().to_string();
    let mut args = vec!["-x", proxy.addr_str(), "-U", &creds, "--cacert", &ca];
    args.extend_from_slice(extra);
    args.push(url);
    let (ok, out, err) = curl(&args);
    (ok, String::from_utf8_lossy(&out).into_owned(), err)
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Stop the proxy and return every line it wrote.
fn all_lines(mut proxy: Proxy) -> String {
    proxy.signal("TERM");
    let _ = proxy.wait_exit();
    proxy.seen.join("\n")
}

#[test]
fn origin_gets_the_added_header_the_app_never_sent() {
    if !in_private_netns("origin_gets_the_added_header_the_app_never_sent") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    for json in [false, true] {
        let mut args = setup.args(&acl, true);
        if json {
            args.push("--log-format=json".to_string());
        }
        let mut proxy = start(&args, &[("API_TOKEN", SECRET)]);
        let before = setup.origin.heads().len();
        let (ok, body, err) = app(
            &proxy,
            &setup.path("mitm-ca.pem"),
            &["-H", "X-Team: red", "-A", "job/1"],
            &setup.url("api.test", "/v1/charges?limit=1"),
        );
        assert!(ok, "curl failed: {err}");
        assert_eq!(body, "hello");
        let heads = setup.origin.heads();
        let head = heads.get(before).expect("the origin got the request");
        assert!(
            head.starts_with("GET /v1/charges?limit=1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert_eq!(header(head, "authorization"), [SECRET]);
        // The client's own X-Team is replaced, not duplicated.
        assert_eq!(header(head, "x-team"), ["blue"]);
        assert_eq!(header(head, "user-agent"), ["job/1"]);
        proxy.wait_line(|l| l.contains("mitm_req_url"));
        let log = all_lines(proxy);
        assert!(!log.contains(SECRET), "the secret is in the log:\n{log}");
        assert!(log.contains("https://api.test:"), "{log}");
        assert!(log.contains("job/1"), "listed header shown: {log}");
        assert!(log.contains("[REDACTED]"), "others redacted: {log}");
    }
}

#[test]
fn a_listed_domain_is_served_a_minted_certificate_and_others_tunnel_untouched() {
    if !in_private_netns(
        "a_listed_domain_is_served_a_minted_certificate_and_others_tunnel_untouched",
    ) {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    let proxy = start(&setup.args(&acl, true), &[("API_TOKEN", SECRET)]);
    // other.test is allowed but not listed: the origin's own certificate
    // reaches the app (only the origin CA verifies it) and nothing is added.
    let (ok, body, err) = app(
        &proxy,
        &setup.path("origin-ca.pem"),
        &[],
        &setup.url("other.test", "/plain"),
    );
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "hello");
    let heads = setup.origin.heads();
    let head = heads.last().expect("the origin got the request");
    assert!(head.starts_with("GET /plain "), "{head}");
    assert!(header(head, "authorization").is_empty(), "{head}");
    assert!(header(head, "x-team").is_empty(), "{head}");
    // api.test is listed: the origin CA does not verify what the app gets.
    let (ok, _, err) = app(
        &proxy,
        &setup.path("origin-ca.pem"),
        &[],
        &setup.url("api.test", "/"),
    );
    assert!(!ok, "api.test must be served the minted certificate: {err}");
    let _ = all_lines(proxy);
}

#[test]
fn an_inner_request_for_another_host_is_refused() {
    if !in_private_netns("an_inner_request_for_another_host_is_refused") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    let mut proxy = start(&setup.args(&acl, true), &[("API_TOKEN", SECRET)]);
    let host = format!("Host: other.test:{}", setup.origin.addr.port());
    let (ok, body, err) = app(
        &proxy,
        &setup.path("mitm-ca.pem"),
        &["-H", &host, "-o", "/dev/stdout", "-w", "%{http_code}"],
        &setup.url("api.test", "/steal"),
    );
    assert!(ok, "curl failed: {err}");
    assert!(body.ends_with("403"), "{body}");
    assert!(body.contains("does not match the tunnel's host"), "{body}");
    assert!(
        setup.origin.heads().iter().all(|h| !h.contains("/steal")),
        "the origin must not see it"
    );
    let line = proxy.wait_line(|l| l.contains("inner request refused"));
    assert!(line.contains("other.test"), "{line}");
    let _ = all_lines(proxy);
}

#[test]
fn a_destination_the_proxy_cannot_verify_gets_nothing() {
    if !in_private_netns("a_destination_the_proxy_cannot_verify_gets_nothing") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    // No --mitm-upstream-ca-file: the origin's CA is not trusted.
    let proxy = start(&setup.args(&acl, false), &[("API_TOKEN", SECRET)]);
    let (ok, body, err) = app(
        &proxy,
        &setup.path("mitm-ca.pem"),
        &["-o", "/dev/stdout", "-w", "%{http_code}"],
        &setup.url("api.test", "/"),
    );
    assert!(ok, "curl failed: {err}");
    assert!(body.ends_with("502"), "{body}");
    assert!(setup.origin.heads().is_empty(), "no request may reach it");
    let log = all_lines(proxy);
    assert!(!log.contains(SECRET), "{log}");
}

#[test]
fn a_reload_picks_up_a_rotated_secret() {
    if !in_private_netns("a_reload_picks_up_a_rotated_secret") {
        return;
    }
    let setup = Setup::new();
    let secret_file = write(setup.dir.path(), "token", &format!("{SECRET}\n"));
    let acl = setup.acl(&format!("${{file:{}}}", secret_file.display()));
    let mut proxy = start(&setup.args(&acl, true), &[]);
    let ca = setup.path("mitm-ca.pem");
    let url = setup.url("api.test", "/");
    assert!(app(&proxy, &ca, &[], &url).0);
    std::fs::write(&secret_file, format!("{ROTATED}\n")).unwrap();
    proxy.signal("HUP");
    proxy.wait_line(|l| l.contains("reloaded egress ACL"));
    assert!(app(&proxy, &ca, &[], &url).0);
    let heads = setup.origin.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(header(&heads[0], "authorization"), [SECRET]);
    assert_eq!(header(&heads[1], "authorization"), [ROTATED]);
    let log = all_lines(proxy);
    assert!(!log.contains(SECRET) && !log.contains(ROTATED), "{log}");
}

/// Run the proxy expecting it to refuse to start; (exit code, stderr).
fn refused(args: &[String], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smokescreen"));
    cmd.args(["--listen-ip", "127.0.0.1", "--listen-port", "0"])
        .args(args)
        .env("PROXY_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let mut err = String::new();
    let _ = out.stderr.as_slice().read_to_string(&mut err);
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn bad_ca_files_or_a_rule_without_a_ca_fail_at_start() {
    if !in_private_netns("bad_ca_files_or_a_rule_without_a_ca_fail_at_start") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    let acl_flag = format!("--egress-acl-file={}", acl.display());
    let env = [("API_TOKEN", SECRET)];

    let (code, err) = refused(std::slice::from_ref(&acl_flag), &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mitm_domains needs a MITM CA"), "{err}");

    let garbage = write(setup.dir.path(), "garbage.pem", "not a certificate\n");
    let mut args = setup.args(&acl, true);
    args[1] = format!("--mitm-ca-cert-file={}", garbage.display());
    let (code, err) = refused(&args, &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mitm_ca_key_file error"), "{err}");

    // The origin CA's certificate with the MITM CA's key: not a pair.
    let mut args = setup.args(&acl, true);
    args[1] = format!(
        "--mitm-ca-cert-file={}",
        setup.path("origin-ca.pem").display()
    );
    let (code, err) = refused(&args, &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("private key does not match"), "{err}");

    // A secret that cannot be read names where it is, never a value.
    let (code, err) = refused(&setup.args(&acl, true), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "add_headers: Authorization: ${env:API_TOKEN}: the environment variable is not set"
        ),
        "{err}"
    );
}

/// Run a tool subcommand; (exit code, stdout, stderr).
fn tool(args: &[String], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smokescreen"));
    cmd.args(args).env("PROXY_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_shows_interception_with_header_names_only() {
    if !in_private_netns("check_shows_interception_with_header_names_only") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    let env = [("API_TOKEN", SECRET)];
    let mut args = vec!["check".to_string(), "--host=api.test".to_string()];
    args.extend(setup.args(&acl, true));
    let (code, out, err) = tool(&args, &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("mitm: intercepted (api.test), adds headers: Authorization, X-Team\n"),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");
    // Without the secret in the environment the tools still judge (names only).
    let (code, out, _) = tool(&args, &[]);
    assert_eq!(code, 0, "{out}");
    args[1] = "--host=other.test".to_string();
    let (code, out, _) = tool(&args, &env);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("mitm:"), "{out}");
    // test-policy cases can expect the interception (or its absence).
    let cases = write(
        setup.dir.path(),
        "cases.yaml",
        "cases:\n  - {name: api, host: api.test, expect: allow, mitm: \"intercepted (api.test), adds headers: Authorization, X-Team\"}\n  - {name: other, host: other.test, expect: allow, mitm: none}\n  - {name: wrong, host: other.test, expect: allow, mitm: \"intercepted (other.test), no headers added\"}\n",
    );
    let mut args = vec!["test-policy".to_string(), cases.display().to_string()];
    args.extend(setup.args(&acl, true));
    let (code, out, err) = tool(&args, &env);
    assert_eq!(code, 1, "only the wrong case fails: {out}{err}");
    assert!(out.contains("expected mitm"), "{out}");
    assert_eq!(out.matches("expected mitm").count(), 1, "{out}");
    assert!(!out.contains(SECRET), "{out}");
    // check-config loads the CA as the proxy would.
    let mut args = vec!["check-config".to_string()];
    args.extend(setup.args(&acl, true));
    args[2] = format!(
        "--mitm-ca-cert-file={}",
        setup.path("origin-ca.pem").display()
    );
    let (code, out, err) = tool(&args, &env);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("private key does not match"), "{err}");
}

/// Python's urllib as the app (a second client stack: http.client's own
/// CONNECT and TLS): the origin gets the header, the app sent none.
#[test]
fn a_python_client_gets_the_header_added_too() {
    if !in_private_netns("a_python_client_gets_the_header_added_too") {
        return;
    }
    let setup = Setup::new();
    let acl = setup.acl("${env:API_TOKEN}");
    let proxy = start(&setup.args(&acl, true), &[("API_TOKEN", SECRET)]);
    let script = "import ssl, sys, urllib.request\n\
        proxy, ca, url = sys.argv[1:4]\n\
        ctx = ssl.create_default_context(cafile=ca)\n\
        opener = urllib.request.build_opener(\n\
            urllib.request.ProxyHandler({'https': proxy}),\n\
            urllib.request.HTTPSHandler(context=ctx))\n\
        print(opener.open(url, timeout=20).read().decode())\n";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &format!("http://anyname:{PASSWORD}@{}", proxy.addr),
            &setup.path("mitm-ca.pem").display().to_string(),
            &setup.url("api.test", "/py"),
        ])
        .output()
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "hello");
    let heads = setup.origin.heads();
    let head = heads.last().expect("the origin got the request");
    assert!(head.starts_with("GET /py "), "{head}");
    assert_eq!(header(head, "authorization"), [SECRET]);
    let log = all_lines(proxy);
    assert!(!log.contains(SECRET), "{log}");
}
