//! `loadgen`: the load generator and helper servers for `bench/run.sh`.
//!
//! Plain threads and blocking `std::net`: one thread per simulated client
//! keeps the generator simple and cheap enough that the proxy, pinned to its
//! own core, is what saturates. Every loop is bounded by a deadline and a
//! count, and every socket has read/write timeouts, so a run always ends.
//!
//! Modes (each appends `label<TAB>metric<TAB>value` lines to `--out`):
//! - `connect`:   connect, CONNECT, small GET through the tunnel, close
//!   (with `--proxy none`: connect, GET, close, e.g. through a TCP relay).
//! - `keepalive`: absolute-form GETs on kept-alive connections.
//!   Both write the operations completed to `--done-file` when given.
//! - `bulk`:      one tunnel, read `--bytes` from the bulk source.
//! - `idle`:      hold `--count` tunnels open, sample the proxy's RSS.
//! - `rss`:       record the proxy's RSS now (at rest).
//! - `serve`:     the bulk source and the hold (idle) server.
//! - `report`:    medians of the collected lines as a Markdown table.
// The load generator is all clocks, sockets and /proc files; the project's
// clippy.toml guard is for the proxy core, not for this tool.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
struct Opts {
    proxy: Option<SocketAddr>,
    target: String,
    auth: Option<String>,
    concurrency: usize,
    duration: Duration,
    max: u64,
    pid: Option<u32>,
    label: String,
    out: Option<String>,
    clk_tck: f64,
    count: usize,
    bytes: u64,
    bulk_listen: Option<SocketAddr>,
    hold_listen: Option<SocketAddr>,
    lifetime: Duration,
    hold_secs: f64,
    done_file: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            proxy: None,
            target: "127.0.0.1:8080".into(),
            auth: None,
            concurrency: 32,
            duration: Duration::from_secs(10),
            max: 10_000_000,
            pid: None,
            label: "run".into(),
            out: None,
            clk_tck: 100.0,
            count: 1000,
            bytes: 1 << 30,
            bulk_listen: None,
            hold_listen: None,
            lifetime: Duration::from_secs(3600),
            hold_secs: 1.0,
            done_file: None,
        }
    }
}

fn die(msg: impl AsRef<str>) -> ! {
    eprintln!("loadgen: {}", msg.as_ref());
    std::process::exit(2)
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let key = args[i].as_str();
        let val = args
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| die(format!("{key} needs a value")));
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| die(format!("{key}: not a number: {v}")))
        };
        let addr = |v: &str| -> SocketAddr {
            v.parse()
                .unwrap_or_else(|_| die(format!("{key}: not an address: {v}")))
        };
        match key {
            "--proxy" => {
                o.proxy = if val.is_empty() || val == "none" {
                    None
                } else {
                    Some(addr(&val))
                }
            }
            "--target" => o.target = val,
            "--auth" => o.auth = if val.is_empty() { None } else { Some(val) },
            "--concurrency" => o.concurrency = num(&val) as usize,
            "--duration" => o.duration = Duration::from_secs_f64(num(&val)),
            "--max" => o.max = num(&val) as u64,
            "--pid" => {
                o.pid = if val.is_empty() {
                    None
                } else {
                    Some(num(&val) as u32)
                }
            }
            "--label" => o.label = val,
            "--out" => o.out = Some(val),
            "--clk-tck" => o.clk_tck = num(&val),
            "--count" => o.count = num(&val) as usize,
            "--bytes" => o.bytes = num(&val) as u64,
            "--bulk-listen" => o.bulk_listen = Some(addr(&val)),
            "--hold-listen" => o.hold_listen = Some(addr(&val)),
            "--lifetime" => o.lifetime = Duration::from_secs_f64(num(&val)),
            "--hold-secs" => o.hold_secs = num(&val),
            "--done-file" => o.done_file = Some(val),
            _ => die(format!("unknown option {key}")),
        }
        i += 2;
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        die("usage: loadgen connect|keepalive|bulk|idle|rss|serve|report [options]")
    };
    if mode == "report" {
        let file = args.get(1).unwrap_or_else(|| die("report FILE"));
        report(file);
        return;
    }
    let o = parse_opts(&args[1..]);
    match mode.as_str() {
        "connect" => cycle_mode(&o, true),
        "keepalive" => cycle_mode(&o, false),
        "bulk" => bulk(&o),
        "idle" => idle(&o),
        "rss" => {
            let pid = o.pid.unwrap_or_else(|| die("rss needs --pid"));
            emit(&o, "rss_rest_mib", rss_kib(pid) as f64 / 1024.0);
        }
        "serve" => serve(&o),
        _ => die(format!("unknown mode {mode}")),
    }
}

/// Append one result line and echo it.
fn emit(o: &Opts, metric: &str, value: f64) {
    let line = format!("{}\t{}\t{:.3}\n", o.label, metric, value);
    print!("{line}");
    if let Some(path) = &o.out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| die(format!("{path}: {e}")));
        let _ = f.write_all(line.as_bytes());
    }
}

// ---------------------------------------------------------------- /proc

/// utime + stime of the whole process (all threads), in seconds.
fn cpu_secs(pid: u32, clk_tck: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    (ut + st) / clk_tck
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- HTTP bits

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn auth_header(o: &Opts) -> String {
    match &o.auth {
        Some(a) => format!("Proxy-Authorization: Basic {}\r\n", base64(a.as_bytes())),
        None => String::new(),
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Read one response head into `buf`; returns (head length, status,
/// content-length, whether the server will close after this response).
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(usize, u16, Option<u64>, bool)> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find_head_end(buf) {
            let head = String::from_utf8_lossy(&buf[..end]);
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let cl = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            });
            let http10 = head.starts_with("HTTP/1.0");
            let conn = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("connection")
                    .then(|| v.trim().to_ascii_lowercase())
            });
            let close = match conn.as_deref() {
                Some(v) if v.contains("close") => true,
                Some(v) if v.contains("keep-alive") => false,
                _ => http10,
            };
            return Ok((end, status, cl, close));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too long"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Read a whole response (Content-Length framed, or to EOF); leftovers stay
/// in `buf`. Returns the status and whether the connection must be closed.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u16, bool)> {
    let (end, status, cl, close) = read_head(s, buf)?;
    buf.drain(..end);
    let mut chunk = [0u8; 8192];
    match cl {
        Some(n) => {
            let n = n as usize;
            while buf.len() < n {
                let got = s.read(&mut chunk)?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed in body",
                    ));
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            buf.drain(..n);
        }
        None => loop {
            let got = s.read(&mut chunk)?;
            if got == 0 {
                buf.clear();
                break;
            }
        },
    }
    Ok((status, close || cl.is_none()))
}

fn dial(o: &Opts) -> io::Result<TcpStream> {
    let addr = match o.proxy {
        Some(p) => p,
        None => o
            .target
            .parse()
            .map_err(|_| io::Error::other("target must be IP:port"))?,
    };
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Open a tunnel to the target (or a direct connection when there is no proxy).
fn tunnel(o: &Opts, buf: &mut Vec<u8>) -> io::Result<TcpStream> {
    let mut s = dial(o)?;
    if o.proxy.is_some() {
        let req = format!(
            "CONNECT {t} HTTP/1.1\r\nHost: {t}\r\n{}\r\n",
            auth_header(o),
            t = o.target
        );
        s.write_all(req.as_bytes())?;
        let (end, status, _, _) = read_head(&mut s, buf)?;
        if status != 200 {
            return Err(io::Error::other(format!("CONNECT answered {status}")));
        }
        buf.drain(..end);
    }
    Ok(s)
}

// ---------------------------------------------------------------- modes

struct Shared {
    stop: AtomicBool,
    done: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

/// CONNECT cycles (`connect`) or kept-alive absolute-form GETs (`keepalive`).
fn cycle_mode(o: &Opts, connect: bool) {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });
    let cpu0 = o.pid.map(|p| cpu_secs(p, o.clk_tck));
    let t0 = Instant::now();
    let deadline = t0 + o.duration;
    let per_thread_max = o.max.div_ceil(o.concurrency as u64);
    let mut handles = Vec::new();
    for _ in 0..o.concurrency {
        let o = o.clone();
        let shared = Arc::clone(&shared);
        handles.push(thread::spawn(move || {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut conn: Option<TcpStream> = None;
            let path_req = if o.proxy.is_some() && !connect {
                format!(
                    "GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\n{}\r\n",
                    auth_header(&o),
                    t = o.target
                )
            } else if connect {
                format!(
                    "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    o.target
                )
            } else {
                format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", o.target)
            };
            let mut n = 0u64;
            while n < per_thread_max
                && Instant::now() < deadline
                && !shared.stop.load(Ordering::Relaxed)
            {
                let start = Instant::now();
                let r = (|| -> io::Result<()> {
                    if connect {
                        buf.clear();
                        let mut s = tunnel(&o, &mut buf)?;
                        s.write_all(path_req.as_bytes())?;
                        let (status, _) = read_response(&mut s, &mut buf)?;
                        if status != 200 {
                            return Err(io::Error::other(format!("GET answered {status}")));
                        }
                        let _ = s.shutdown(Shutdown::Both);
                    } else {
                        let reused = conn.is_some();
                        if conn.is_none() {
                            buf.clear();
                            conn = Some(dial(&o)?);
                        }
                        let s = conn.as_mut().ok_or_else(|| io::Error::other("no conn"))?;
                        let first = s
                            .write_all(path_req.as_bytes())
                            .and_then(|()| read_response(s, &mut buf));
                        let (status, close) = match first {
                            // A kept connection the server closed without saying so
                            // beforehand: reconnect and retry once (the cost counts).
                            Err(_) if reused && buf.is_empty() => {
                                let s = conn.insert(dial(&o)?);
                                s.write_all(path_req.as_bytes())?;
                                read_response(s, &mut buf)?
                            }
                            other => other?,
                        };
                        if close {
                            // A proxy that does not keep the client connection alive pays a
                            // reconnect on the next request; that is what it costs.
                            conn = None;
                        }
                        if status != 200 {
                            return Err(io::Error::other(format!("GET answered {status}")));
                        }
                    }
                    Ok(())
                })();
                match r {
                    Ok(()) => {
                        lat.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        n += 1;
                    }
                    Err(e) => {
                        conn = None;
                        let errs = shared.errors.fetch_add(1, Ordering::Relaxed);
                        if errs < 3 {
                            eprintln!("loadgen: {}: {e}", o.label);
                        }
                        if errs > 1000 {
                            shared.stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            shared.done.fetch_add(n, Ordering::Relaxed);
            if let Ok(mut all) = shared.latencies.lock() {
                all.extend_from_slice(&lat);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = o.pid.map(|p| cpu_secs(p, o.clk_tck));
    let done = shared.done.load(Ordering::Relaxed);
    let errors = shared.errors.load(Ordering::Relaxed);
    let mut lat = shared
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let prefix = if connect { "connect" } else { "keepalive" };
    // The operations completed, for run.sh to divide the proxy's syscall
    // count (taken around this run) by.
    if let Some(path) = &o.done_file {
        if let Err(e) = std::fs::write(path, format!("{done}\n")) {
            die(format!("{path}: {e}"));
        }
    }
    emit(o, &format!("{prefix}_per_s"), done as f64 / secs);
    emit(o, &format!("{prefix}_p50_ms"), percentile(&lat, 0.50));
    emit(o, &format!("{prefix}_p99_ms"), percentile(&lat, 0.99));
    emit(o, &format!("{prefix}_errors"), errors as f64);
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        if done > 0 {
            emit(
                o,
                &format!("{prefix}_cpu_s_per_10k"),
                (b - a) / done as f64 * 10_000.0,
            );
        }
    }
}

/// One tunnel to the bulk source; read `--bytes` and time it.
fn bulk(o: &Opts) {
    let mut buf = Vec::new();
    let t0 = Instant::now();
    let r = (|| -> io::Result<u64> {
        let mut s = tunnel(o, &mut buf)?;
        let mut got = buf.len() as u64;
        let mut chunk = vec![0u8; 256 * 1024];
        while got < o.bytes {
            if t0.elapsed() > o.duration * 6 {
                return Err(io::Error::other("bulk transfer took too long"));
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok(got)
    })();
    let secs = t0.elapsed().as_secs_f64();
    match r {
        Ok(got) if got >= o.bytes => emit(o, "bulk_mib_s", got as f64 / secs / (1024.0 * 1024.0)),
        Ok(got) => die(format!(
            "{}: bulk ended after {got} of {} bytes",
            o.label, o.bytes
        )),
        Err(e) => die(format!("{}: bulk: {e}", o.label)),
    }
}

/// Hold `--count` tunnels (each carries one small write), then sample RSS.
fn idle(o: &Opts) {
    let pid = o.pid.unwrap_or_else(|| die("idle needs --pid"));
    let before = rss_kib(pid);
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(o.count);
    let mut buf = Vec::new();
    for i in 0..o.count {
        if t0.elapsed() > o.duration * 6 {
            eprintln!(
                "loadgen: {}: idle: stopped after {i} tunnels (time bound)",
                o.label
            );
            break;
        }
        buf.clear();
        match tunnel(o, &mut buf) {
            Ok(mut s) => {
                // Data moves once, so per-tunnel buffers must be released after it.
                let _ = s.write_all(b"ping through the tunnel\n");
                held.push(s);
            }
            Err(e) => {
                eprintln!("loadgen: {}: idle: tunnel {i}: {e}", o.label);
                break;
            }
        }
    }
    // Let the proxy finish moving the pings before sampling.
    thread::sleep(Duration::from_secs_f64(o.hold_secs));
    let after = rss_kib(pid);
    let n = held.len().max(1);
    emit(o, "idle_tunnels", held.len() as f64);
    emit(
        o,
        "idle_kib_per_tunnel",
        after.saturating_sub(before) as f64 / n as f64,
    );
    drop(held);
}

/// The bulk source (writes `--bytes` to each connection, then closes) and
/// the hold server (accepts and keeps connections, never answers).
fn serve(o: &Opts) {
    let deadline = Instant::now() + o.lifetime;
    if let Some(addr) = o.bulk_listen {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| die(format!("bind {addr}: {e}")));
        let bytes = o.bytes;
        thread::spawn(move || {
            let chunk = vec![b'x'; 256 * 1024];
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                thread::spawn({
                    let chunk = chunk.clone();
                    move || {
                        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                        let mut left = bytes;
                        while left > 0 {
                            let n = (left as usize).min(chunk.len());
                            if s.write_all(&chunk[..n]).is_err() {
                                return;
                            }
                            left -= n as u64;
                        }
                        let _ = s.shutdown(Shutdown::Write);
                        // Wait for the reader to close so no byte is lost.
                        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                        let mut sink = [0u8; 1024];
                        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                    }
                });
            }
        });
    }
    if let Some(addr) = o.hold_listen {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| die(format!("bind {addr}: {e}")));
        thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming() {
                match s {
                    Ok(s) => held.push(s),
                    Err(_) => held.clear(),
                }
                // Forget connections from finished runs (bounded memory).
                if held.len() > 50_000 {
                    held.clear();
                }
            }
        });
    }
    println!("serving");
    let _ = io::stdout().flush();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------- report

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians per (label, metric), one column per label, and each label's
/// ratio against `direct` where both exist.
fn report(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(format!("{path}: {e}")));
    let mut labels: Vec<String> = Vec::new();
    let mut metrics: Vec<String> = Vec::new();
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(l), Some(m), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        if !labels.iter().any(|x| x == l) {
            labels.push(l.to_string());
        }
        if !metrics.iter().any(|x| x == m) {
            metrics.push(m.to_string());
        }
        values
            .entry((l.to_string(), m.to_string()))
            .or_default()
            .push(v);
    }
    // Rows grouped by the metric's prefix (`connect_`, `keepalive_`, ...) in
    // order of first appearance, so a metric some labels add later (run.sh's
    // `*_syscalls_per_op`) sits with its group.
    let prefix = |m: &str| m.split('_').next().unwrap_or("").to_string();
    let mut groups: Vec<String> = Vec::new();
    for m in &metrics {
        if !groups.contains(&prefix(m)) {
            groups.push(prefix(m));
        }
    }
    metrics.sort_by_key(|m| groups.iter().position(|g| *g == prefix(m)));
    let med = |l: &str, m: &str| -> Option<(f64, usize, f64, f64)> {
        let mut v = values.get(&(l.to_string(), m.to_string()))?.clone();
        let n = v.len();
        let md = median(&mut v);
        Some((md, n, v[0], v[n - 1]))
    };
    println!("| metric | {} |", labels.join(" | "));
    println!("|---|{}", "---|".repeat(labels.len()));
    for m in &metrics {
        let mut row = format!("| {m} |");
        for l in &labels {
            match med(l, m) {
                Some((md, n, lo, hi)) => {
                    let direct = med("direct", m).map(|d| d.0);
                    let ratio = match direct {
                        Some(d) if l != "direct" && d.is_finite() && d != 0.0 => {
                            format!(" ({:.2}× direct)", md / d)
                        }
                        _ => String::new(),
                    };
                    let spread = if n > 1 {
                        format!(" [{}..{}]", fmt(lo), fmt(hi))
                    } else {
                        String::new()
                    };
                    row.push_str(&format!(" {}{ratio}{spread} |", fmt(md)));
                }
                None => row.push_str(" — |"),
            }
        }
        println!("{row}");
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"u:p"), "dTpw");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
