//! Micro-benchmarks of the pure core, the per-request work the proxy does
//! besides moving bytes:
//!
//! - whole decisions/s (credentials, 1,000-rule ACL, address classification),
//!   and bare `Acl::decide` calls/s on the same ACL;
//! - request head parsing, MB/s and heads/s;
//! - log record rendering, ns/record (text and JSON).
//!
//! `cargo run --release --example core_bench [seconds-per-benchmark]`
//!
//! Not a test: numbers depend on the machine. docs/performance.md has results.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use smokescreen::core::acl::Acl;
use smokescreen::core::addr::{AddressPolicy, SelfEndpoints};
use smokescreen::core::auth::{AuthMode, Password};
use smokescreen::core::decision::{self, Policy, RequestFacts};
use smokescreen::core::head::{parse_request, HeadLimits, RequestForm};
use smokescreen::core::record::{Client, Format, ProxyType};
use smokescreen::core::time::Timestamp;

const SERVICES: usize = 1_000;

/// 1,000 services with four domains each (exact and wildcard), 200 global
/// deny and 200 global allow entries. Service 500 is `authed`, the role every
/// password-authenticated request gets (Fly's setup).
fn acl_yaml() -> String {
    let mut y = String::from("version: v1\nservices:\n");
    for i in 0..SERVICES {
        let action = ["enforce", "report", "open"][i % 3];
        let name = if i == 500 {
            "authed".to_string()
        } else {
            format!("svc-{i}")
        };
        y.push_str(&format!(
            "  - name: {name}\n    project: project-{i}\n    action: {action}\n    allowed_domains:\n      - api-{i}.example.com\n      - \"*.svc-{i}.partner.net\"\n      - hooks.vendor-{i}.io\n      - \"*.cdn-{i}.example.org\"\n"
        ));
    }
    y.push_str("default:\n  project: other\n  action: enforce\nglobal_deny_list:\n");
    for i in 0..100 {
        y.push_str(&format!(
            "  - \"*.internal-{i}\"\n  - blocked-{i}.example.com\n"
        ));
    }
    y.push_str("  - \"*.internal\"\nglobal_allow_list:\n");
    for i in 0..100 {
        y.push_str(&format!(
            "  - \"*.shared-{i}.example.net\"\n  - status-{i}.example.net\n"
        ));
    }
    y
}

/// Run `f` repeatedly for about `budget`; returns (iterations, seconds).
fn time_it(budget: Duration, mut f: impl FnMut(usize)) -> (usize, f64) {
    // Warm up, then run in batches so the clock is read rarely.
    for i in 0..1_000 {
        f(i);
    }
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed() < budget {
        for _ in 0..1_000 {
            f(n);
            n += 1;
        }
    }
    (n, t.elapsed().as_secs_f64())
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let budget = Duration::from_secs_f64(secs);

    let (acl, _) = match Acl::from_yaml(&acl_yaml(), &[]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ACL does not load: {e}");
            std::process::exit(1);
        }
    };

    // ---- bare ACL lookups: a mix of roles and hosts.
    let mut cases: Vec<(String, String)> = Vec::new();
    for i in 0..4096usize {
        let s = i % SERVICES;
        let role = if i % 10 == 9 {
            format!("unknown-{i}")
        } else {
            format!("svc-{s}")
        };
        let host = match i % 8 {
            0 => format!("api-{s}.example.com"),
            1 => format!("a.b.svc-{s}.partner.net"),
            2 => format!("db-{i}.internal"),
            3 => format!("x.shared-{}.example.net", i % 100),
            4 => format!("www.unrelated-{i}.com"),
            5 => format!("blocked-{}.example.com", i % 100),
            6 => format!("edge.cdn-{s}.example.org"),
            _ => "fly.io".to_owned(),
        };
        cases.push((role, host));
    }
    let (n, t) = time_it(budget, |i| {
        let (role, host) = &cases[i & 4095];
        black_box(acl.decide(black_box(role), black_box(host)));
    });
    println!(
        "acl_decide: {:.0} lookups/s ({:.0} ns each), 1,000-rule ACL",
        n as f64 / t,
        t * 1e9 / n as f64
    );

    // ---- whole decisions: auth + ACL + address classification.
    let password = "bench-password";
    let policy = Policy {
        auth: AuthMode::Password(Password::new(password.as_bytes().to_vec())),
        acl: Some(acl),
        addresses: AddressPolicy::default(),
        deny_message_extra: None,
        allow_missing_role: false,
    };
    let me = SelfEndpoints {
        listen: vec![SocketAddr::from(([0, 0, 0, 0], 4750))],
        local_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        // A typical host: loopback, a private and a public address, IPv6.
        local_addresses: [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ]
        .into(),
    };
    let limits = HeadLimits::default();
    let auth = "Proxy-Authorization: Basic dXNlcjpiZW5jaC1wYXNzd29yZA==\r\n";
    let mut heads = Vec::new();
    for i in 0..512usize {
        let host = match i % 4 {
            0 => "api-500.example.com:443".to_string(),
            1 => "x.svc-500.partner.net:443".to_string(),
            2 => format!("www.unrelated-{i}.com:443"),
            _ => format!("db-{i}.internal:443"),
        };
        let raw =
            format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n{auth}User-Agent: bench\r\n\r\n");
        let head = match parse_request(raw.as_bytes(), &limits) {
            Ok(Some(h)) => h,
            other => {
                eprintln!("bench head does not parse: {other:?}");
                std::process::exit(1);
            }
        };
        heads.push(head);
    }
    // A public address so classification runs its whole table.
    let answer = [IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14))];
    let mut allowed = 0usize;
    let (n, t) = time_it(budget, |i| {
        let head = &heads[i & 511];
        let RequestForm::Connect(target) = &head.form else {
            return;
        };
        let out = decision::before_dns(&policy, target, ProxyType::Connect, &head.headers)
            .and_then(|p| decision::after_dns(&policy, p, Ok(&answer), &me));
        allowed += usize::from(out.is_ok());
        black_box(out.is_ok());
    });
    println!(
        "decision: {:.0} decisions/s ({:.0} ns each; {:.0}% allowed), credentials + 1,000-rule ACL + address table",
        n as f64 / t,
        t * 1e9 / n as f64,
        100.0 * allowed as f64 / (n + 1_000) as f64
    );

    // ---- head parsing.
    let get = format!(
        "GET http://api-500.example.com/v1/hooks?id=12345 HTTP/1.1\r\nHost: api-500.example.com\r\n{auth}User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\nContent-Type: application/json\r\nX-Request-Id: 2b1d4f0e-8c55-4bb3-9b1e-5c2a8f9d7e61\r\nX-Smokescreen-Trace-Id: trace-abc\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    );
    let connect = format!(
        "CONNECT api-500.example.com:443 HTTP/1.1\r\nHost: api-500.example.com:443\r\n{auth}\r\n"
    );
    for (name, raw) in [
        ("absolute-form GET, 10 headers", &get),
        ("CONNECT", &connect),
    ] {
        let (n, t) = time_it(budget, |_| {
            black_box(parse_request(black_box(raw.as_bytes()), &limits).ok());
        });
        println!(
            "head_parse ({name}, {} bytes): {:.0} MB/s, {:.0} heads/s ({:.0} ns each)",
            raw.len(),
            (n * raw.len()) as f64 / t / 1e6,
            n as f64 / t,
            t * 1e9 / n as f64
        );
    }

    // ---- log rendering: a full CANONICAL-PROXY-DECISION record.
    let head = &heads[0];
    let RequestForm::Connect(target) = &head.form else {
        return;
    };
    let approved = decision::before_dns(&policy, target, ProxyType::Connect, &head.headers)
        .and_then(|p| decision::after_dns(&policy, p, Ok(&answer), &me));
    let Ok(approved) = approved else {
        eprintln!("the bench request is not approved");
        std::process::exit(1);
    };
    let now = Timestamp::new(1_700_000_000, 123_456_789);
    let facts = RequestFacts::from_headers(
        "cngd2l1c3s4uipn73g0".into(),
        Client::plain(SocketAddr::from(([10, 0, 0, 7], 53137))),
        now,
        &head.headers,
    );
    let record = decision::approved_record(&facts, &approved);
    for (name, format) in [("text", Format::Text), ("json", Format::Json)] {
        let mut bytes = 0usize;
        let (n, t) = time_it(budget, |_| {
            let line = black_box(&record).to_line(now).render(format);
            bytes += line.len();
        });
        println!(
            "log_render ({name}): {:.0} ns/record ({} bytes)",
            t * 1e9 / n as f64,
            bytes / (n + 1_000)
        );
    }
}
