#![allow(clippy::disallowed_methods)] // tests read files and own sockets
//! The Grafana dashboard and Prometheus alert rules in `deploy/` name only
//! metrics the proxy exports: every metric in their PromQL is looked up in a
//! real scrape of the proxy's `/metrics`, so renaming a metric in the code
//! fails here instead of silently emptying a panel or muting an alert.
//! (`promtool check rules` / `test rules` check the rules' syntax and logic
//! in `.ci/run`.)

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DASHBOARD: &str = "deploy/grafana/smokescreen.json";
const RULES: &str = "deploy/prometheus/smokescreen-alerts.yml";

/// Series Prometheus makes itself rather than scraping them.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Remove bracketed parts: `{...}` label matchers, `[...]` ranges, strings.
fn strip_brackets(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        let close = match c {
            '{' => '}',
            '[' => ']',
            '"' | '\'' | '`' => c,
            _ => {
                out.push(c);
                continue;
            }
        };
        for d in chars.by_ref() {
            if d == close {
                break;
            }
        }
        out.push(' ');
    }
    out
}

/// The metric names a PromQL expression reads: identifiers that are not a
/// function or aggregation (followed by `(`), a keyword, a label list after
/// `by`/`without`/`on`/`ignoring`/`group_*`, a number or duration, or a
/// Grafana variable (`$job`, `$__rate_interval`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Operators, and aggregations (which may precede `by (...)`, not `(`).
    const KEYWORDS: [&str; 17] = [
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let text = strip_brackets(expr);
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_label_list = false;
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'$' || b.is_ascii_digit() || b == b'.' {
            // Variable, number or duration: skip the whole token.
            i += 1;
            while i < bytes.len() && (word(bytes[i]) || bytes[i] == b'.') {
                i += 1;
            }
            continue;
        }
        if !(b.is_ascii_alphabetic() || b == b'_' || b == b':') {
            if b == b'(' && skip_label_list {
                let end = text[i..].find(')').map_or(bytes.len(), |e| i + e + 1);
                i = end;
                skip_label_list = false;
                continue;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        let ident = &text[start..i];
        let next = text[i..].trim_start().chars().next();
        if LABEL_LISTS.contains(&ident) {
            skip_label_list = true;
        } else if next != Some('(') && !KEYWORDS.contains(&ident) {
            names.insert(ident.to_string());
        }
    }
    names
}

/// Every `expr` string in the dashboard, and the metric of each
/// `label_values(METRIC, label)` template query.
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query" | "definition", serde_json::Value::String(s))
                        if s.starts_with("label_values(") =>
                    {
                        let inner = &s["label_values(".len()..];
                        let metric = inner.rsplit_once(',').map_or(inner, |(m, _)| m);
                        out.push(metric.to_string());
                    }
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// The rules file's expressions and the names its recording rules define.
fn rule_exprs() -> (Vec<String>, BTreeSet<String>) {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read(RULES)).expect("rules YAML");
    let mut exprs = Vec::new();
    let mut recorded = BTreeSet::new();
    let groups = doc["groups"].as_sequence().expect("groups");
    for group in groups {
        for rule in group["rules"].as_sequence().expect("rules") {
            exprs.push(rule["expr"].as_str().expect("expr").to_string());
            if let Some(name) = rule["record"].as_str() {
                recorded.insert(name.to_string());
            }
        }
    }
    (exprs, recorded)
}

/// Sample names in an exposition (`_total`, `_bucket`, `_sum`, `_count` included).
fn exported(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le) (rate(cn_atpt_connect_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))",
    );
    assert_eq!(
        names,
        BTreeSet::from(["cn_atpt_connect_duration_seconds_bucket".to_string()])
    );
    let names = metric_names(
        "smokescreen:denials:rate5m > 1 and smokescreen:denials:rate5m > 3 * (smokescreen:denials:rate5m offset 1h)",
    );
    assert_eq!(
        names,
        BTreeSet::from(["smokescreen:denials:rate5m".to_string()])
    );
    let names = metric_names(
        "sum by (instance) (a_total{x=\"y\"}) > 0.05 * sum without(job) (b_total) + on(instance) group_left(z) c",
    );
    assert_eq!(
        names,
        BTreeSet::from(["a_total".into(), "b_total".into(), "c".into()])
    );
}

#[test]
fn dashboard_and_alert_rules_name_only_exported_metrics() {
    if !in_private_netns("dashboard_and_alert_rules_name_only_exported_metrics") {
        return;
    }
    let mut proxy = Proxy::start(&[
        "--expose-prometheus-metrics",
        "--prometheus-listen-ip=127.0.0.1",
        "--prometheus-port=0",
    ]);
    let line = proxy.wait_line(|l| l.contains("msg=\"serving metrics\""));
    let addr = field(&line, "metrics_addr").expect("metrics_addr");
    let (ok, body, err) = curl(&["-sf", &format!("http://{addr}/metrics")]);
    assert!(ok, "scraping /metrics failed: {err}");
    let exported = exported(&String::from_utf8_lossy(&body));
    assert!(
        exported.contains("acl_allow_total"),
        "the scrape has no acl_allow_total: {exported:?}"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let (rules, recorded) = rule_exprs();
    let mut missing = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, expr) in exprs
        .iter()
        .map(|e| (DASHBOARD, e))
        .chain(rules.iter().map(|e| (RULES, e)))
    {
        for name in metric_names(expr) {
            let known = exported.contains(&name)
                || recorded.contains(&name)
                || PROMETHEUS_OWN.contains(&name.as_str());
            if !known {
                missing.push(format!("{file}: {name} (in `{expr}`)"));
            }
            checked.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "metrics named but not exported by /metrics:\n{}",
        missing.join("\n")
    );
    // The extraction found the panels' metrics at all (a broken parser that
    // finds nothing would pass the check above).
    for name in [
        "acl_deny_total",
        "resolver_deny_cloud_metadata_total",
        "proxy_decision_duration_seconds_bucket",
        "cn_atpt_connect_duration_seconds_bucket",
        "resolver_errors_total",
        "tunnels_open",
        "connections_open",
        "cn_bytes_in_sum",
        "up",
    ] {
        assert!(
            checked.contains(name),
            "{name} not found in the dashboard or rules"
        );
    }
}
