//! Prometheus metrics (served by `observe::metrics_listener`).
//!
//! Counters, histograms and gauges live in one process-wide registry that is
//! always updated (a relaxed atomic add per event), so instrumenting the
//! shell never depends on whether `--expose-prometheus-metrics` is on; the
//! flag only decides whether a listener serves them.
//!
//! Names follow Smokescreen's statsd names with `.` turned into `_`
//! (`acl.allow` → `acl_allow`). `prometheus-client` writes OpenMetrics, where
//! a counter's sample always ends in `_total`; a name Smokescreen already
//! spells with `_total` (`resolver.attempts_total`) is registered without it
//! so it is not doubled. Address rules get one counter each
//! (`resolver_deny_private_range_total`), as current Smokescreen does, rather
//! than one counter with a `rule` label: dashboards written for Smokescreen
//! keep working. The whole list is in `docs/operations.md`.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::core::addr::{Rule, SelfEndpoints};
use crate::core::decision::Verdicts;
use crate::core::decision::{Approved, Pending, Policy, Refusal};
use crate::core::limits::LimitRefusal;
use crate::shell::observe::connect_failure::ConnectFailure;
use crate::shell::observe::statsd;
use crate::shell::transport::tunnel::{TunnelError, TunnelStats};

pub use crate::shell::observe::outcome::{
    acl_outcome, address_outcome, rule_metric_name, AclOutcome, ALL_RULES,
};

/// The `limit` label values of `requests_limited_total`.
const LIMITS: [&str; 4] = ["rate", "concurrency", "tunnels", "connections"];

/// Open file descriptors (entries of `/proc/self/fd`) and the soft limit;
/// `None` where `/proc` cannot be read.
fn fd_usage() -> Option<(i64, i64)> {
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current?;
    Some((
        i64::try_from(open).unwrap_or(i64::MAX),
        i64::try_from(limit).unwrap_or(i64::MAX),
    ))
}

/// Label pairs of a Smokescreen-named family (`success`, `type`).
type Labels = Vec<(&'static str, &'static str)>;

/// All the process's metrics.
pub struct Metrics {
    registry: Registry,
    acl_allow: Counter,
    acl_report: Counter,
    acl_deny: Counter,
    acl_role_not_determined: Counter,
    resolver_attempts: Counter,
    resolver_errors: Counter,
    resolver_rules: Vec<(Rule, Counter)>,
    /// Smokescreen HEAD's `cn_atpt_total{success}`: the `true` and `false`
    /// series. Labelled series are created once and kept, so counting one
    /// needs no label lookup.
    cn_atpt: [Counter; 2],
    /// Smokescreen HEAD's per-cause `cn_atpt_connect_err{type}`, in
    /// `ConnectFailure::ALL` order.
    cn_atpt_connect_err: [Counter; 5],
    /// Requests and connections a proxy limit refused (429/503), in
    /// `LIMITS` order.
    requests_limited: [Counter; 4],
    /// File descriptors in use and the limit, read at each scrape.
    open_fds: Gauge,
    max_fds: Gauge,
    cn_atpt_success: Counter,
    cn_atpt_fail: Counter,
    cn_close: Counter,
    mitm_requests: Counter,
    cn_spliced_bytes: Counter,
    decision_seconds: Histogram,
    lookup_seconds: Histogram,
    connect_seconds: Histogram,
    tunnel_seconds: Histogram,
    tunnel_bytes_in: Histogram,
    tunnel_bytes_out: Histogram,
    connections_open: Gauge,
    tunnels_open: Gauge,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    // 1 ms to ~33 s.
    exponential_buckets(0.001, 2.0, 16)
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests_limited = Family::<Labels, Counter>::default();
        let by_limit = LIMITS.map(|limit| {
            requests_limited
                .get_or_create(&vec![("limit", limit)])
                .clone()
        });
        registry.register(
            "requests_limited",
            "Requests (rate, concurrency, tunnels) and connections refused by a proxy limit with 429 or 503",
            requests_limited.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "File descriptors the process has open (read at each scrape)",
            open_fds.clone(),
        );
        let max_fds = Gauge::default();
        registry.register(
            "process_max_fds",
            "The process's open-files limit (RLIMIT_NOFILE soft limit)",
            max_fds.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let acl_allow = counter("acl_allow", "Requests the ACL allowed");
        let acl_report = counter(
            "acl_report",
            "Requests the ACL allowed and reported (enforce would have denied)",
        );
        let acl_deny = counter("acl_deny", "Requests the ACL denied");
        let acl_role_not_determined = counter(
            "acl_role_not_determined",
            "Requests refused because no role could be determined (407)",
        );
        let resolver_attempts = counter(
            "resolver_attempts",
            "Destination names looked up (address literals need no lookup)",
        );
        let resolver_errors = counter("resolver_errors", "Destination lookups that failed");
        let resolver_rules = ALL_RULES
            .iter()
            .map(|&rule| {
                let help = format!("Requests whose destination address was decided by '{rule}'");
                (rule, counter(rule_metric_name(rule), &help))
            })
            .collect();
        registry.register(
            "statsd_dropped",
            "statsd lines dropped because the send queue was full",
            statsd::dropped().clone(),
        );
        let cn_atpt = Family::<Labels, Counter>::default();
        let by_success = ["true", "false"]
            .map(|success| cn_atpt.get_or_create(&vec![("success", success)]).clone());
        registry.register(
            "cn_atpt",
            "Connection attempts to destinations, by success (Smokescreen HEAD's name)",
            cn_atpt.clone(),
        );
        let cn_atpt_connect_err = Family::<Labels, Counter>::default();
        let by_cause = ConnectFailure::ALL.map(|cause| {
            cn_atpt_connect_err
                .get_or_create(&vec![("type", cause.as_str())])
                .clone()
        });
        registry.register(
            "cn_atpt_connect_err",
            "Failed connection attempts to destinations, by cause (Smokescreen HEAD's name)",
            cn_atpt_connect_err.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let cn_atpt_success = counter(
            "cn_atpt_success",
            "Connection attempts to destinations that succeeded",
        );
        let cn_atpt_fail = counter(
            "cn_atpt_fail",
            "Connection attempts to destinations that failed or timed out",
        );
        let cn_close = counter("cn_close", "CONNECT tunnels closed");
        let mitm_requests = counter("mitm_requests", "Requests inside intercepted tunnels");
        let cn_spliced_bytes = counter(
            "cn_spliced_bytes",
            "Tunnel bytes moved in the kernel by splice(2) (bulk plain-TCP streams)",
        );

        let mut histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::new(buckets.into_iter());
            registry.register(name, help, h.clone());
            h
        };
        let decision_seconds = histogram(
            "proxy_decision_duration_seconds",
            "Time from a parsed request head to the verdict, DNS included",
            seconds_buckets().collect(),
        );
        let lookup_seconds = histogram(
            "resolver_lookup_duration_seconds",
            "Time to look up a destination name",
            seconds_buckets().collect(),
        );
        let connect_seconds = histogram(
            "cn_atpt_connect_duration_seconds",
            "Time to connect to a destination",
            seconds_buckets().collect(),
        );
        let tunnel_seconds = histogram(
            "cn_duration_seconds",
            "How long CONNECT tunnels stayed open",
            exponential_buckets(0.01, 4.0, 12).collect(),
        );
        let tunnel_bytes_in = histogram(
            "cn_bytes_in",
            "Bytes from the destination to the client, per closed tunnel",
            exponential_buckets(64.0, 4.0, 13).collect(),
        );
        let tunnel_bytes_out = histogram(
            "cn_bytes_out",
            "Bytes from the client to the destination, per closed tunnel",
            exponential_buckets(64.0, 4.0, 13).collect(),
        );

        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let tunnels_open = Gauge::default();
        registry.register(
            "tunnels_open",
            "CONNECT tunnels open now",
            tunnels_open.clone(),
        );

        Metrics {
            registry,
            acl_allow,
            acl_report,
            acl_deny,
            acl_role_not_determined,
            resolver_attempts,
            resolver_errors,
            resolver_rules,
            cn_atpt: by_success,
            cn_atpt_connect_err: by_cause,
            requests_limited: by_limit,
            open_fds,
            max_fds,
            cn_atpt_success,
            cn_atpt_fail,
            cn_close,
            mitm_requests,
            cn_spliced_bytes,
            decision_seconds,
            lookup_seconds,
            connect_seconds,
            tunnel_seconds,
            tunnel_bytes_in,
            tunnel_bytes_out,
            connections_open,
            tunnels_open,
        }
    }

    /// The exposition text (OpenMetrics, ending in `# EOF`).
    pub fn render(&self) -> String {
        if let Some((open, max)) = fd_usage() {
            self.open_fds.set(open);
            self.max_fds.set(max);
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// A proxy limit refused a request or connection.
    pub fn limited(&self, refusal: LimitRefusal) {
        statsd::limited(refusal);
        // `LIMITS` order.
        let limit = match refusal {
            LimitRefusal::RateLimited => 0,
            LimitRefusal::Overloaded => 1,
            LimitRefusal::TooManyTunnels => 2,
            LimitRefusal::TooManyConnections => 3,
        };
        self.requests_limited[limit].inc();
    }

    /// After the first step (role and ACL).
    pub fn acl_decided(&self, result: &Result<Pending, Box<Refusal>>) {
        let outcome = acl_outcome(result);
        if let Some(o) = outcome {
            let verdicts = match result {
                Ok(p) => &p.verdicts,
                Err(r) => &r.verdicts,
            };
            statsd::acl(o, verdicts);
        }
        match outcome {
            Some(AclOutcome::Allow) => self.acl_allow.inc(),
            Some(AclOutcome::Report) => self.acl_report.inc(),
            Some(AclOutcome::Deny) => self.acl_deny.inc(),
            Some(AclOutcome::RoleNotDetermined) => self.acl_role_not_determined.inc(),
            None => 0,
        };
    }

    /// After a name lookup.
    pub fn looked_up(&self, elapsed: Duration, ok: bool) {
        statsd::looked_up(elapsed, ok);
        self.resolver_attempts.inc();
        if !ok {
            self.resolver_errors.inc();
        }
        self.lookup_seconds.observe(elapsed.as_secs_f64());
    }

    /// After the second step (address classification).
    pub fn addresses_checked(
        &self,
        result: &Result<Approved, Box<Refusal>>,
        policy: &Policy,
        me: &SelfEndpoints,
    ) {
        if let Some(rule) = address_outcome(result, policy, me) {
            statsd::address_rule(rule);
            if let Some((_, c)) = self.resolver_rules.iter().find(|(r, _)| *r == rule) {
                c.inc();
            }
        }
    }

    /// The whole decision (both steps and the lookup between them).
    pub fn decided(&self, elapsed: Duration) {
        statsd::decided(elapsed);
        self.decision_seconds.observe(elapsed.as_secs_f64());
    }

    /// After a dial to an approved address: `failure` is why it failed.
    pub fn dialled(&self, elapsed: Duration, failure: Option<ConnectFailure>) {
        statsd::dialled(elapsed, failure);
        match failure {
            None => {
                self.cn_atpt[0].inc();
                self.cn_atpt_success.inc()
            }
            Some(cause) => {
                self.cn_atpt[1].inc();
                let i = ConnectFailure::ALL.iter().position(|c| *c == cause);
                if let Some(counter) = i.and_then(|i| self.cn_atpt_connect_err.get(i)) {
                    counter.inc();
                }
                self.cn_atpt_fail.inc()
            }
        };
        self.connect_seconds.observe(elapsed.as_secs_f64());
    }

    /// A client connection opened; the gauge drops when the guard does.
    pub fn connection_opened(&'static self) -> OpenGuard {
        self.connections_open.inc();
        OpenGuard(&self.connections_open)
    }

    /// A tunnel started; the gauge drops when the guard does.
    pub fn tunnel_opened(&'static self) -> OpenGuard {
        self.tunnels_open.inc();
        OpenGuard(&self.tunnels_open)
    }

    /// A request inside an intercepted (`mitm_domains`) tunnel was read.
    pub fn intercepted(&self) {
        self.mitm_requests.inc();
    }

    /// A tunnel of the request `verdicts` describes ended.
    pub fn tunnel_closed(&self, stats: &TunnelStats, duration: Duration, verdicts: &Verdicts) {
        let cut = matches!(stats.error, Some(TunnelError::ShuttingDown));
        statsd::tunnel_closed(stats, duration, verdicts, cut);
        self.cn_close.inc();
        self.cn_spliced_bytes.inc_by(stats.spliced);
        self.tunnel_seconds.observe(duration.as_secs_f64());
        self.tunnel_bytes_in.observe(stats.bytes_in as f64);
        self.tunnel_bytes_out.observe(stats.bytes_out as f64);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Decrements a gauge when dropped, so an early return or a cancelled task
/// cannot leave it counting a connection that is gone.
pub struct OpenGuard(&'static Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::acl::Acl;
    use crate::core::addr::AddressPolicy;
    use crate::core::auth::{AuthMode, Password};
    use crate::core::decision::{after_dns, before_dns, Lookup};
    use crate::core::head::Headers;
    use crate::core::lookup::{LookupCause, LookupError};
    use crate::core::record::ProxyType;
    use crate::core::target::parse_connect_target;
    use std::net::IpAddr;

    fn policy() -> Policy {
        let acl = "version: v1\nservices:\n  - name: authed\n    project: users\n    action: report\n    allowed_domains: [ok.example.com]\ndefault:\n  project: other\n  action: enforce\nglobal_deny_list: ['*.internal']\n";
        let (acl, _) = Acl::from_yaml(acl, &[]).expect("test ACL");
        Policy {
            auth: AuthMode::Password(Password::new(b"pw".to_vec())),
            acl: Some(acl),
            addresses: AddressPolicy::default(),
            deny_message_extra: None,
            allow_missing_role: false,
        }
    }

    fn authed() -> Headers {
        use base64::Engine as _;
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:pw")
        );
        let raw =
            format!("CONNECT x:443 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {value}\r\n\r\n");
        crate::core::head::parse_request(raw.as_bytes(), &Default::default())
            .expect("head parses")
            .expect("complete head")
            .headers
    }

    fn step_one(host: &str, headers: &Headers) -> Result<Pending, Box<Refusal>> {
        let target = parse_connect_target(host).expect("target");
        before_dns(&policy(), &target, ProxyType::Connect, headers)
    }

    #[test]
    fn acl_outcomes_map_to_smokescreen_counters() {
        let h = authed();
        assert_eq!(
            acl_outcome(&step_one("ok.example.com:443", &h)),
            Some(AclOutcome::Allow)
        );
        assert_eq!(
            acl_outcome(&step_one("other.example.com:443", &h)),
            Some(AclOutcome::Report)
        );
        assert_eq!(
            acl_outcome(&step_one("db.internal:443", &h)),
            Some(AclOutcome::Deny)
        );
        assert_eq!(
            acl_outcome(&step_one("ok.example.com:443", &Headers::default())),
            Some(AclOutcome::RoleNotDetermined)
        );
    }

    #[test]
    fn address_outcome_names_the_deciding_rule() {
        let p = policy();
        let me = SelfEndpoints::default();
        let pending = step_one("ok.example.com:443", &authed()).expect("allowed");
        let private: IpAddr = "10.1.2.3".parse().expect("ip");
        let public: IpAddr = "93.184.216.34".parse().expect("ip");
        let denied = after_dns(&p, pending.clone(), Ok(&[private]), &me);
        assert_eq!(
            address_outcome(&denied, &p, &me),
            Some(Rule::DenyPrivateRange)
        );
        let allowed = after_dns(&p, pending.clone(), Ok(&[private, public]), &me);
        assert_eq!(address_outcome(&allowed, &p, &me), Some(Rule::AllowDefault));
        let nx = LookupError::new("ok.example.com", None, LookupCause::NoSuchHost);
        let failed = after_dns(&p, pending, Err(&nx), &me);
        assert_eq!(address_outcome(&failed, &p, &me), None);
        assert!(matches!(
            step_one("ok.example.com:443", &authed()).map(|p| p.lookup),
            Ok(Lookup::Name(_))
        ));
    }

    #[test]
    fn every_rule_has_a_distinct_counter_and_is_exposed() {
        let names: std::collections::HashSet<_> =
            ALL_RULES.iter().map(|r| rule_metric_name(*r)).collect();
        assert_eq!(names.len(), ALL_RULES.len());
        let text = Metrics::new().render();
        for name in names {
            assert!(
                text.contains(&format!("\n{name}_total 0\n")),
                "{name} missing:\n{text}"
            );
        }
    }

    #[test]
    fn counters_and_histograms_move() {
        let m = Metrics::new();
        let h = authed();
        m.acl_decided(&step_one("other.example.com:443", &h));
        m.acl_decided(&step_one("db.internal:443", &h));
        m.looked_up(Duration::from_millis(3), false);
        m.dialled(Duration::from_millis(2), None);
        m.dialled(Duration::from_millis(2), Some(ConnectFailure::Refused));
        m.limited(LimitRefusal::RateLimited);
        m.limited(LimitRefusal::TooManyConnections);
        let text = m.render();
        for line in [
            "acl_report_total 1",
            "acl_deny_total 1",
            "acl_allow_total 0",
            "resolver_attempts_total 1",
            "resolver_errors_total 1",
            "cn_atpt_total{success=\"true\"} 1",
            "cn_atpt_total{success=\"false\"} 1",
            "cn_atpt_connect_err_total{type=\"refused\"} 1",
            "cn_atpt_connect_err_total{type=\"timeout\"} 0",
            "cn_atpt_success_total 1",
            "cn_atpt_fail_total 1",
            "resolver_lookup_duration_seconds_count 1",
            "cn_atpt_connect_duration_seconds_count 2",
            "requests_limited_total{limit=\"rate\"} 1",
            "requests_limited_total{limit=\"connections\"} 1",
            "requests_limited_total{limit=\"tunnels\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // The fd gauges are read from /proc at each scrape: the test process
        // has at least stdin, stdout and stderr open, under a positive limit.
        let gauge = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<i64>().ok())
        };
        let (open, max) = (gauge("process_open_fds"), gauge("process_max_fds"));
        assert!(open.is_some_and(|o| o >= 3), "{text}");
        assert!(max.is_some_and(|m| m >= open.unwrap_or(0)), "{text}");
    }

    #[test]
    fn guards_return_gauges_to_zero() {
        let m: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        let a = m.connection_opened();
        let b = m.tunnel_opened();
        assert!(m.render().lines().any(|l| l == "tunnels_open 1"));
        drop((a, b));
        let text = m.render();
        assert!(text.lines().any(|l| l == "tunnels_open 0"), "{text}");
        assert!(text.lines().any(|l| l == "connections_open 0"), "{text}");
    }
}
