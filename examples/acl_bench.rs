//! Micro-benchmark of `Acl::decide` on a 1,000-rule ACL.
//!
//! `cargo run --release --example acl_bench [decisions]`
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use smokescreen::core::acl::{Acl, Verdict};

const SERVICES: usize = 1_000;

fn build_yaml() -> String {
    let mut y = String::from("version: v1\nservices:\n");
    for i in 0..SERVICES {
        let action = ["enforce", "report", "open"][i % 3];
        y.push_str(&format!(
            "  - name: svc-{i}\n    project: project-{i}\n    action: {action}\n    allowed_domains:\n      - api-{i}.example.com\n      - \"*.svc-{i}.partner.net\"\n      - hooks.vendor-{i}.io\n      - \"*.cdn-{i}.example.org\"\n"
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

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let yaml = build_yaml();
    let t0 = Instant::now();
    let (acl, _warnings) = match Acl::from_yaml(&yaml, &[]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ACL does not load: {e}");
            std::process::exit(1);
        }
    };
    println!("loaded {SERVICES} rules in {:?}", t0.elapsed());

    // A realistic mix: allowed domains (exact and wildcard), global deny and
    // allow hits, policy fall-through, unknown roles (default rule).
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

    let mut tally = [0usize; 3];
    let t = Instant::now();
    for i in 0..n {
        let (role, host) = &cases[i & 4095];
        let d = acl.decide(black_box(role), black_box(host));
        let slot = match d.verdict {
            Verdict::Allow => 0,
            Verdict::AllowAndReport => 1,
            Verdict::Deny => 2,
        };
        tally[slot] += 1;
        black_box(&d);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} decisions in {secs:.3} s: {:.0} decisions/s ({:.0} ns each); allow {} report {} deny {}",
        n as f64 / secs,
        secs * 1e9 / n as f64,
        tally[0],
        tally[1],
        tally[2]
    );
}
