//! Smokescreen's main metrics path: DogStatsD text over UDP, with its names
//! (`acl.allow`, `cn.atpt.total`, ...), tags and `smokescreen.` prefix.
//!
//! Sending never blocks or slows a request: an event is formatted and put
//! on a bounded queue with `try_send`; one task drains the queue, packs
//! lines into datagrams and sends them. A full queue drops the line and
//! counts it (`statsd_dropped_total` on the Prometheus page). UDP needs no
//! answer, so a statsd server that is down costs one unanswered datagram.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::core::addr::Rule;
use crate::core::decision::Verdicts;
use crate::core::limits::LimitRefusal;
use crate::shell::observe::connect_failure::ConnectFailure;
use crate::shell::observe::outcome::{rule_metric_name, AclOutcome};
use crate::shell::runtime::{self, bounded, Receiver, Sender, UdpSocket};
use crate::shell::transport::tunnel::TunnelStats;

/// Smokescreen's `DefaultStatsdNamespace`.
pub const NAMESPACE: &str = "smokescreen.";
/// Lines waiting to be sent; beyond this they are dropped.
const QUEUE_LINES: usize = 8192;
/// Largest datagram: DogStatsD's default for UDP (fits a 1500-byte MTU).
const MAX_PACKET: usize = 1432;

/// The DogStatsD metric type of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Count,
    Histogram,
    /// Milliseconds.
    Timing,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Count => "c",
            Kind::Histogram => "h",
            Kind::Timing => "ms",
        }
    }
}

/// One DogStatsD line: `smokescreen.NAME:VALUE|TYPE[|#k:v,...]`. Tag values
/// are cleaned as Smokescreen's `SanitizeTagValue` does (plus `,`, which
/// would split the tag list), so a hostile role cannot forge a metric.
pub fn line(name: &str, value: f64, kind: Kind, tags: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = write!(out, "{NAMESPACE}{name}:{value}|{}", kind.suffix());
    for (i, (k, v)) in tags.iter().enumerate() {
        out.push_str(if i == 0 { "|#" } else { "," });
        out.push_str(k);
        out.push(':');
        out.extend(v.chars().map(|c| match c {
            '|' | '@' | '#' | ':' | '"' | '{' | '}' | '\\' | ',' => '_',
            c if c.is_control() => '_',
            c => c,
        }));
    }
    out
}

struct Sink {
    queue: Sender<String>,
}

impl Sink {
    /// Queue a line without waiting; a full queue drops it and counts it.
    fn push(&self, line: String) {
        if self.queue.try_send(line).is_err() {
            dropped().inc();
        }
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Start sending to `server` from `socket` (bound by the caller, before the
/// runtime starts, so a bind failure stops start-up).
pub fn start(socket: StdUdpSocket, server: SocketAddr) {
    let (queue, lines) = bounded(QUEUE_LINES);
    if SINK.set(Sink { queue }).is_ok() {
        runtime::spawn(send_loop(UdpSocket::from(socket), server, lines));
    }
}

/// Whether statsd is on (callers skip formatting when it is not).
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// Lines dropped because the queue was full (exposed to Prometheus).
pub fn dropped() -> &'static Counter {
    static DROPPED: OnceLock<Counter> = OnceLock::new();
    DROPPED.get_or_init(Counter::default)
}

/// Queue one metric; never waits. A full queue drops the line and counts it.
pub fn send(name: &str, value: f64, kind: Kind, tags: &[(&str, &str)]) {
    if let Some(sink) = SINK.get() {
        sink.push(line(name, value, kind, tags));
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `acl.allow` / `acl.report` / `acl.deny` tagged `role`, `def_rule` and
/// `project`; `acl.role_not_determined` untagged (as Smokescreen sends them).
pub fn acl(outcome: AclOutcome, verdicts: &Verdicts) {
    if !enabled() {
        return;
    }
    let name = match outcome {
        AclOutcome::Allow => "acl.allow",
        AclOutcome::Report => "acl.report",
        AclOutcome::Deny => "acl.deny",
        AclOutcome::RoleNotDetermined => {
            return send("acl.role_not_determined", 1.0, Kind::Count, &[])
        }
    };
    let def_rule = if verdicts.default_rule {
        "true"
    } else {
        "false"
    };
    let tags = [
        ("role", verdicts.role.as_str()),
        ("def_rule", def_rule),
        ("project", verdicts.project.as_str()),
    ];
    send(name, 1.0, Kind::Count, &tags);
}

/// `resolver.attempts_total`, then `resolver.errors_total` or `resolver.lookup_time`.
pub fn looked_up(elapsed: Duration, ok: bool) {
    send("resolver.attempts_total", 1.0, Kind::Count, &[]);
    if ok {
        send("resolver.lookup_time", millis(elapsed), Kind::Timing, &[]);
    } else {
        send("resolver.errors_total", 1.0, Kind::Count, &[]);
    }
}

/// `resolver.allow.default`, `resolver.deny.private_range`, ...
pub fn address_rule(rule: Rule) {
    if enabled() {
        send(
            &rule_metric_name(rule).replacen('_', ".", 2),
            1.0,
            Kind::Count,
            &[],
        );
    }
}

/// `cn.atpt.total{success}`, `cn.atpt.connect.err{type}`, `cn.atpt.connect.time`.
pub fn dialled(elapsed: Duration, failure: Option<ConnectFailure>) {
    let success = if failure.is_none() { "true" } else { "false" };
    send("cn.atpt.total", 1.0, Kind::Count, &[("success", success)]);
    if let Some(cause) = failure {
        send(
            "cn.atpt.connect.err",
            1.0,
            Kind::Count,
            &[("type", cause.as_str())],
        );
    }
    send("cn.atpt.connect.time", millis(elapsed), Kind::Timing, &[]);
}

/// `proxy_duration_ms`: the proxy's own latency before the dial.
pub fn decided(elapsed: Duration) {
    send("proxy_duration_ms", millis(elapsed), Kind::Timing, &[]);
}

/// `requests.rate_limited`, `requests.concurrency_limited`,
/// `tunnels.concurrency_limited` (Smokescreen's limiter metrics; our
/// `--max-connections` has no Smokescreen counterpart and sends none).
pub fn limited(refusal: LimitRefusal) {
    let name = match refusal {
        LimitRefusal::RateLimited => "requests.rate_limited",
        LimitRefusal::Overloaded => "requests.concurrency_limited",
        LimitRefusal::TooManyTunnels => "tunnels.concurrency_limited",
        LimitRefusal::TooManyConnections => return,
    };
    send(name, 1.0, Kind::Count, &[]);
}

/// `cn.close`, `cn.duration` (seconds), `cn.bytes_in`, `cn.bytes_out`, tagged
/// `role` and `project`; `cn.active_at_termination` when a drain cut it.
pub fn tunnel_closed(stats: &TunnelStats, duration: Duration, verdicts: &Verdicts, cut: bool) {
    if !enabled() {
        return;
    }
    let tags = [
        ("role", verdicts.role.as_str()),
        ("project", verdicts.project.as_str()),
    ];
    send("cn.close", 1.0, Kind::Count, &tags);
    send(
        "cn.duration",
        duration.as_secs_f64(),
        Kind::Histogram,
        &tags,
    );
    send("cn.bytes_in", stats.bytes_in as f64, Kind::Histogram, &tags);
    send(
        "cn.bytes_out",
        stats.bytes_out as f64,
        Kind::Histogram,
        &tags,
    );
    if cut {
        send("cn.active_at_termination", 1.0, Kind::Count, &tags);
    }
}

/// Drain the queue into datagrams of whole lines joined by `\n`.
async fn send_loop(socket: UdpSocket, server: SocketAddr, lines: Receiver<String>) {
    while let Ok(first) = lines.recv().await {
        let mut packet = first;
        while let Ok(next) = lines.try_recv() {
            if packet.len() + 1 + next.len() > MAX_PACKET {
                // A lost datagram is a lost sample, never a stalled request.
                let _ = socket.send_to(packet.as_bytes(), server).await;
                packet = next;
            } else {
                packet.push('\n');
                packet.push_str(&next);
            }
        }
        let _ = socket.send_to(packet.as_bytes(), server).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_dogstatsd_text_with_the_smokescreen_prefix() {
        assert_eq!(
            line(
                "acl.allow",
                1.0,
                Kind::Count,
                &[("role", "web"), ("def_rule", "false")]
            ),
            "smokescreen.acl.allow:1|c|#role:web,def_rule:false"
        );
        assert_eq!(
            line("resolver.lookup_time", 2.5, Kind::Timing, &[]),
            "smokescreen.resolver.lookup_time:2.5|ms"
        );
        assert_eq!(
            line("cn.bytes_in", 10.0, Kind::Histogram, &[]),
            "smokescreen.cn.bytes_in:10|h"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (queue, lines) = bounded(2);
        let sink = Sink { queue };
        let before = dropped().get();
        for n in 0..5 {
            sink.push(format!("line {n}"));
        }
        assert_eq!(dropped().get() - before, 3);
        assert_eq!(lines.try_recv().ok().as_deref(), Some("line 0"));
    }

    #[test]
    fn hostile_tag_values_cannot_add_tags_or_metrics() {
        let l = line(
            "acl.deny",
            1.0,
            Kind::Count,
            &[("role", "a,b:c|#d\nx.y:1|c")],
        );
        assert_eq!(l, "smokescreen.acl.deny:1|c|#role:a_b_c__d_x.y_1_c");
    }
}
