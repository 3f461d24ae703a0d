//! Support for the hardening tests: /proc counters for leak checks, extra
//! addresses on `lo`, a listener that counts accepted connections per local
//! address, and raw request exchange. Used only inside the private network
//! namespace set up by `common::in_private_netns`.
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{basic, read_head, PASSWORD};

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn status_field(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Threads of `pid`.
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

/// The names of `pid`'s threads, for failure messages.
pub fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    let wchan = std::fs::read_to_string(e.path().join("wchan")).unwrap_or_default();
                    Some(format!("{}:{}", comm.trim(), wchan.trim()))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Resident set size of `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Wait (bounded) for `cond`; /proc counters have no event to wait on, so
/// this polls every 20 ms and fails with `what` and the last value.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match cond() {
            Ok(()) => return,
            Err(last) if start.elapsed() > limit => {
                panic!("{what}: not reached within {limit:?}; last: {last}")
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The proxy's descriptors and threads, to compare after a fault.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub fds: usize,
    pub threads: u64,
    pub names: Vec<String>,
}

impl Baseline {
    /// [`take`](Self::take) once every thread of the blocking pool is idle
    /// (waiting on its futex): a pool thread that has just delivered a
    /// result but not yet marked itself idle makes the pool start another
    /// thread for the next job, which the pool then keeps.
    pub fn take_when_blocking_pool_idle(pid: u32) -> Baseline {
        wait_for("blocking pool idle", Duration::from_secs(10), || {
            let busy: Vec<String> = thread_names(pid)
                .into_iter()
                .filter(|t| t.starts_with("blocking-") && !t.contains(":futex"))
                .collect();
            if busy.is_empty() {
                Ok(())
            } else {
                Err(format!("busy: {busy:?}"))
            }
        });
        Baseline::take(pid)
    }

    pub fn take(pid: u32) -> Baseline {
        Baseline {
            fds: fd_count(pid),
            threads: thread_count(pid),
            names: thread_names(pid),
        }
    }

    /// Wait until descriptors are back to the baseline and threads are not
    /// above it (async-std's blocking pool shrinks after ~1 s idle).
    pub fn wait_back(&self, pid: u32, what: &str) {
        wait_for(what, Duration::from_secs(30), || {
            let (fds, threads) = (fd_count(pid), thread_count(pid));
            if fds <= self.fds && threads <= self.threads {
                Ok(())
            } else {
                Err(format!(
                    "fds {fds} (baseline {}), threads {threads} {:?} (baseline {} {:?})",
                    self.fds,
                    thread_names(pid),
                    self.threads,
                    self.names
                ))
            }
        });
    }
}

/// Add an address to `lo` in the namespace; `false` if the kernel refuses
/// it (multicast, unspecified, mapped): such addresses cannot be dialled
/// locally at all.
pub fn add_to_lo(ip: IpAddr) -> bool {
    let (family, prefix) = match ip {
        IpAddr::V4(_) => ("-4", 32),
        IpAddr::V6(_) => ("-6", 128),
    };
    std::process::Command::new("ip")
        .args([
            family,
            "addr",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            "lo",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A dual-stack listener on `[::]:port` that counts accepted connections
/// per local address (the address the connection was made to) and answers
/// one HTTP request on each with `200 ok`.
pub struct CatchAll {
    pub port: u16,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl CatchAll {
    pub fn start(port: u16) -> CatchAll {
        let listener = TcpListener::bind(("::", port)).expect("bind [::]:port");
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let c = Arc::clone(&counts);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let local = s.local_addr().map(|a| canonical(a.ip()));
                if let Ok(ip) = local {
                    *c.lock().unwrap().entry(ip).or_insert(0) += 1;
                }
                thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut buf = Vec::new();
                    if read_head(&mut s, &mut buf).is_some() {
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                });
            }
        });
        CatchAll { port, counts }
    }

    /// Accepted connections so far, per local address.
    pub fn snapshot(&self) -> HashMap<IpAddr, usize> {
        self.counts.lock().unwrap().clone()
    }
}

/// A valid Proxy-Authorization value.
pub fn auth() -> String {
    basic("u", PASSWORD)
}

/// Send `request` on a fresh connection and read until the proxy closes
/// (bounded by a 20 s read timeout).
pub fn exchange(proxy: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).expect("connect to proxy");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The proxy may answer and close before reading everything (a refused
    // CONNECT): a failed write is part of the expected outcome.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "reading the answer: {e} after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    out
}

/// The status code of the first response in `bytes`.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
