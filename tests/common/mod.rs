//! Shared end-to-end test support: a private network namespace per test, the
//! real proxy binary, in-test origins, and a log reader.
//!
//! Every end-to-end test body runs inside `unshare -rn` (a new user + network
//! namespace with only loopback), so if the proxy ever tried to reach a
//! non-loopback address the packet would have nowhere to go: a regression
//! fails closed instead of touching a real network.
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const NETNS_MARK: &str = "SMOKESCREEN_TEST_IN_NETNS";

/// Run the calling test's body inside a private network namespace.
/// Returns `true` in the child (run the body), `false` in the parent (done:
/// the child's result has been asserted).
pub fn in_private_netns(test_name: &str) -> bool {
    if std::env::var_os(NETNS_MARK).is_some() {
        let status = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(
            status.success(),
            "ip link set lo up failed inside the namespace"
        );
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    // `--include-ignored`: the parent only gets here when this test was asked
    // for, so an ignored (long) test must run in the child too.
    let out = Command::new("unshare")
        .args(["-rn", "--"])
        .arg(exe)
        .args([
            test_name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(NETNS_MARK, "1")
        .output()
        .expect("unshare must be available (util-linux) and user namespaces enabled");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "test {test_name} failed inside the private network namespace\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // Measurements (soak, memory) print on stderr: pass them on.
    eprint!("{stderr}");
    false
}

/// A running proxy with its log lines.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    addr_text: String,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

pub const PASSWORD: &str = "test-password";

impl Proxy {
    /// Start the real binary on 127.0.0.1 with an OS-chosen port.
    pub fn start(args: &[&str]) -> Proxy {
        Proxy::start_with_env(args, &[("PROXY_PASSWORD", PASSWORD)])
    }

    /// Start with `--log-format json`.
    pub fn start_json() -> Proxy {
        Proxy::start(&["--log-format", "json"])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Proxy {
        Proxy::start_listening("127.0.0.1", args, env)
    }

    /// Start on `listen_ip` with an OS-chosen port.
    pub fn start_listening(listen_ip: &str, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smokescreen"));
        cmd.args(["--listen-ip", listen_ip, "--listen-port", "0"])
            .args(args);
        cmd.env_remove("PROXY_PASSWORD");
        // Upstream proxies come only from what a test passes.
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn proxy");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proxy = Proxy {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            addr_text: String::new(),
            lines: rx,
            seen: Vec::new(),
        };
        let start =
            proxy.wait_line(|l| l.contains("msg=starting") || l.contains("\"msg\":\"starting\""));
        let addr = field(&start, "listen_addr")
            .or_else(|| {
                let v: serde_json::Value = serde_json::from_str(&start).ok()?;
                v["listen_addr"].as_str().map(str::to_string)
            })
            .expect("listen_addr in starting line");
        proxy.addr = addr.parse().expect("listen addr");
        proxy.addr_text = addr;
        proxy
    }

    /// Wait (bounded) for a log line matching `pred`; panics with the lines seen.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        self.next_matching(pred)
    }

    /// Wait (bounded) for a new, not yet seen, line matching `pred`.
    pub fn next_matching(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "expected log line not seen; lines:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Wait for the n-th (1-based) line with `msg`.
    pub fn wait_msg(&mut self, msg: &str, nth: usize) -> String {
        let needle = format!("msg={msg}");
        loop {
            let found: Vec<&String> = self.seen.iter().filter(|l| l.contains(&needle)).collect();
            if found.len() >= nth {
                return found[nth - 1].clone();
            }
            self.next_matching(|l| l.contains(&needle));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `host:port` of the proxy, borrowed for argument lists.
    pub fn addr_str(&self) -> &str {
        self.addr_text.as_str()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for exit, bounded.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id();
        let (tx, rx) = channel();
        // `waitpid` on a helper thread, bounded by the channel timeout.
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        thread::spawn(move || {
            let mut child = child;
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("proxy {pid} did not exit"),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logrus text field's value (unquoted).
pub fn field(line: &str, key: &str) -> Option<String> {
    smokescreen::core::log_read::parse_text(line)?
        .get(key)
        .map(str::to_string)
}

/// Basic credentials header value.
pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// An origin that records requests and answers via a handler.
pub struct Origin {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// What the origin does with each accepted connection.
pub type Handler = Arc<dyn Fn(TcpStream, &Mutex<Vec<String>>) + Send + Sync>;

impl Origin {
    pub fn start(handler: Handler) -> Origin {
        Origin::start_on("127.0.0.1:0", handler)
    }

    pub fn start_on(bind: &str, handler: Handler) -> Origin {
        let listener = TcpListener::bind(bind).expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (Arc::clone(&accepted), Arc::clone(&requests));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                a.fetch_add(1, Ordering::SeqCst);
                let (h, r) = (Arc::clone(&handler), Arc::clone(&r));
                thread::spawn(move || h(stream, &r));
            }
        });
        Origin {
            addr,
            accepted,
            requests,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The accepted count once it reaches `n` (or after 10 s). The kernel
    /// completes a handshake before the origin's thread calls `accept`, so
    /// the proxy can answer a CONNECT before the count moves.
    pub fn wait_accepted(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.accepted() < n && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        self.accepted()
    }

    /// Echo every byte back; on EOF from the client, close our write side.
    pub fn echo() -> Origin {
        Origin::start(Arc::new(|mut s: TcpStream, _| {
            let mut buf = [0u8; 65536];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        }))
    }

    /// Serve HTTP/1.1 keep-alive: each request head is recorded; the body
    /// from `respond(head)` is sent as raw bytes.
    pub fn http(respond: fn(&str) -> Vec<u8>) -> Origin {
        Origin::start(Arc::new(
            move |mut s: TcpStream, reqs: &Mutex<Vec<String>>| {
                let mut buf = Vec::new();
                loop {
                    let Some(head) = read_head(&mut s, &mut buf) else {
                        return;
                    };
                    // Consume a Content-Length body if any.
                    let cl = header(&head, "content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < cl {
                        let mut chunk = [0u8; 8192];
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..cl).collect();
                    reqs.lock()
                        .unwrap()
                        .push(format!("{head}{}", String::from_utf8_lossy(&body)));
                    let resp = respond(&head);
                    if s.write_all(&resp).is_err() {
                        return;
                    }
                    if header(&head, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    {
                        return;
                    }
                }
            },
        ))
    }
}

/// Read one head (through CRLFCRLF) from a blocking stream; leftovers stay in `buf`.
pub fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..pos + 4).collect();
            return Some(String::from_utf8_lossy(&head).into_owned());
        }
        let mut chunk = [0u8; 8192];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A header's value from a raw head (case-insensitive name).
pub fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Run curl (bounded) and return (exit ok, stdout bytes, stderr text).
pub fn curl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--noproxy", ""])
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("curl must be installed");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// curl through `proxy` with the test password, plus `extra` flags.
pub fn curl_via(proxy: &Proxy, extra: &[&str], url: &str) -> (bool, Vec<u8>, String) {
    let creds = format!("anyname:{PASSWORD}");
    let mut args = vec!["-x", proxy.addr_str(), "-U", &creds];
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args)
}

/// Send `CONNECT target` with the test credentials (and `eager` bytes in the
/// same write), then read the reply head byte by byte so no tunnel byte is
/// consumed. The head is what arrived before EOF (empty if none).
pub fn open_tunnel_at(proxy: SocketAddr, target: &str, eager: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        basic("u", PASSWORD)
    )
    .into_bytes();
    req.extend_from_slice(eager);
    s.write_all(&req).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// [`open_tunnel_at`] that must succeed with a 200.
pub fn open_tunnel_ok(proxy: SocketAddr, target: &str, eager: &[u8]) -> TcpStream {
    let (s, head) = open_tunnel_at(proxy, target, eager);
    assert!(
        head.starts_with("HTTP/1.1 200 "),
        "CONNECT {target}: {head:?}"
    );
    s
}

/// A raw client connection to the proxy.
pub fn connect(proxy: &Proxy) -> TcpStream {
    let s = TcpStream::connect(proxy.addr).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Read a full response head + Content-Length body from a raw stream.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    let head = read_head(s, buf).expect("response head");
    let cl = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < cl {
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).expect("read body");
        assert!(n > 0, "EOF inside body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..cl).collect();
    (head, body)
}

/// Parse all fields of a line into a map.
pub fn fields(line: &str) -> HashMap<String, String> {
    smokescreen::core::log_read::parse_text(line)
        .expect("parsable log line")
        .0
        .into_iter()
        .collect()
}
