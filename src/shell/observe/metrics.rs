//! Prometheus metrics and the health endpoint.
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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::shell::runtime::{self, TcpListener, TcpStream};
use futures_lite::FutureExt as _;
use http_types::{Method, Request};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::MetricsConfig;
use crate::core::addr::{Rule, SelfEndpoints};
use crate::core::decision::{Approved, Pending, Policy, Refusal, RefusalKind};
use crate::core::record::Level;
use crate::shell::logging::{self, emit};
use crate::shell::serve::StartError;
use crate::shell::tunnel::TunnelStats;

/// Paths that answer the health check (ours, and Smokescreen's spelling).
pub const HEALTH_PATHS: [&str; 2] = ["/healthz", "/healthcheck"];

/// The OpenMetrics content type `prometheus-client` produces.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Scrapers are few; more concurrent connections than this on the metrics
/// port are closed at once rather than given a task each.
const MAX_METRICS_CONNECTIONS: usize = 64;

/// Every address rule, so each counter exists (at 0) from the start.
const ALL_RULES: [Rule; 10] = [
    Rule::AllowDefault,
    Rule::AllowUserConfigured,
    Rule::DenyNotGlobalUnicast,
    Rule::DenyPrivateRange,
    Rule::DenyUserConfigured,
    Rule::DenyCgnat,
    Rule::DenyIpv6Embedding,
    Rule::DenySelfConnection,
    Rule::DenyReserved,
    Rule::DenyMetadata,
];

/// The counter name (before the `_total` suffix) for an address rule.
/// Exhaustive, so a new rule cannot ship without its counter.
pub fn rule_metric_name(rule: Rule) -> &'static str {
    match rule {
        Rule::AllowDefault => "resolver_allow_default",
        Rule::AllowUserConfigured => "resolver_allow_user_configured",
        Rule::DenyNotGlobalUnicast => "resolver_deny_not_global_unicast",
        Rule::DenyPrivateRange => "resolver_deny_private_range",
        Rule::DenyUserConfigured => "resolver_deny_user_configured",
        Rule::DenyCgnat => "resolver_deny_cgnat_range",
        Rule::DenyIpv6Embedding => "resolver_deny_ipv6_embedding",
        Rule::DenySelfConnection => "resolver_deny_self_connection",
        Rule::DenyReserved => "resolver_deny_reserved_range",
        Rule::DenyMetadata => "resolver_deny_cloud_metadata",
    }
}

/// Which ACL counter a first-step outcome counts towards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclOutcome {
    Allow,
    Report,
    Deny,
    RoleNotDetermined,
}

/// Classify the result of `decision::before_dns` for the ACL counters.
/// `None`: the outcome is not an ACL decision (no such case today, kept
/// so a new refusal kind is not miscounted).
pub fn acl_outcome(result: &Result<Pending, Box<Refusal>>) -> Option<AclOutcome> {
    match result {
        Ok(p) if p.verdicts.enforce_would_deny => Some(AclOutcome::Report),
        Ok(_) => Some(AclOutcome::Allow),
        Err(r) => match r.kind {
            RefusalKind::Role(_) => Some(AclOutcome::RoleNotDetermined),
            RefusalKind::Acl => Some(AclOutcome::Deny),
            _ => None,
        },
    }
}

/// The address rule a second-step outcome counts towards: the rule that let
/// the chosen address through, or the rule that refused the first answer
/// (the one the deny message names). DNS failures decide no address.
pub fn address_outcome(
    result: &Result<Approved, Box<Refusal>>,
    policy: &Policy,
    me: &SelfEndpoints,
) -> Option<Rule> {
    match result {
        Ok(approved) => Some(policy.addresses.classify(approved.addr, me)),
        Err(r) if r.kind == RefusalKind::Address => r.rejected.first().map(|(_, rule)| *rule),
        Err(_) => None,
    }
}

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
    cn_atpt: Counter,
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
        let cn_atpt = counter("cn_atpt", "Connection attempts to destinations");
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
            cn_atpt,
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
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// After the first step (role and ACL).
    pub fn acl_decided(&self, result: &Result<Pending, Box<Refusal>>) {
        match acl_outcome(result) {
            Some(AclOutcome::Allow) => self.acl_allow.inc(),
            Some(AclOutcome::Report) => self.acl_report.inc(),
            Some(AclOutcome::Deny) => self.acl_deny.inc(),
            Some(AclOutcome::RoleNotDetermined) => self.acl_role_not_determined.inc(),
            None => 0,
        };
    }

    /// After a name lookup.
    pub fn looked_up(&self, elapsed: Duration, ok: bool) {
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
            if let Some((_, c)) = self.resolver_rules.iter().find(|(r, _)| *r == rule) {
                c.inc();
            }
        }
    }

    /// The whole decision (both steps and the lookup between them).
    pub fn decided(&self, elapsed: Duration) {
        self.decision_seconds.observe(elapsed.as_secs_f64());
    }

    /// After a dial to an approved address.
    pub fn dialled(&self, elapsed: Duration, ok: bool) {
        self.cn_atpt.inc();
        if ok {
            self.cn_atpt_success.inc();
        } else {
            self.cn_atpt_fail.inc();
        }
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

    /// A tunnel ended.
    pub fn tunnel_closed(&self, stats: &TunnelStats, duration: Duration) {
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

/// What the health check reports: ready only when both are true.
#[derive(Debug, Default)]
pub struct Readiness {
    acl_loaded: AtomicBool,
    accepting: AtomicBool,
}

impl Readiness {
    pub fn set_acl_loaded(&self, loaded: bool) {
        self.acl_loaded.store(loaded, Ordering::SeqCst);
    }

    /// True once the proxy listener accepts; false again when draining starts.
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.acl_loaded.load(Ordering::SeqCst) && self.accepting.load(Ordering::SeqCst)
    }
}

/// The process's readiness.
pub fn readiness() -> &'static Readiness {
    static READY: OnceLock<Readiness> = OnceLock::new();
    READY.get_or_init(Readiness::default)
}

/// Status and body for one request to the metrics listener. Pure, so the
/// routing is tested without sockets.
pub fn route(method: &Method, path: &str, endpoint: &str, ready: bool) -> (u16, &'static str) {
    let is_read = matches!(method, Method::Get | Method::Head);
    if HEALTH_PATHS.contains(&path) {
        return match (is_read, ready) {
            (false, _) => (405, "method not allowed\n"),
            (true, true) => (200, "ok\n"),
            (true, false) => (503, "not ready\n"),
        };
    }
    if path == endpoint {
        return if is_read {
            (200, "")
        } else {
            (405, "method not allowed\n")
        };
    }
    (404, "not found\n")
}

/// Status, content type and body for one request.
fn respond(req: &Request, endpoint: &str) -> (u16, &'static str, Vec<u8>) {
    let (status, body) = route(
        &req.method(),
        req.url().path(),
        endpoint,
        readiness().is_ready(),
    );
    if status == 200 && !HEALTH_PATHS.contains(&req.url().path()) {
        (
            status,
            OPENMETRICS_CONTENT_TYPE,
            get().render().into_bytes(),
        )
    } else {
        (
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }
}

/// One whole response. Every body here has a known length, so there is
/// never chunked framing; a HEAD answer keeps the length and drops the body.
fn response_bytes(
    status: u16,
    content_type: &str,
    body: &[u8],
    head: bool,
    close: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
        crate::core::reply::reason_phrase(status),
        body.len()
    )
    .into_bytes();
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head {
        out.extend_from_slice(body);
    }
    out
}

/// Whether the client asked to close after this request. (async-h1 reads
/// HTTP/1.1 heads only, where keep-alive is the default.)
fn wants_close(req: &Request) -> bool {
    req.header("connection").is_some_and(|v| {
        v.as_str()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    })
}

/// Bind the metrics listener and serve it in the background. Returns the
/// bound address, which the caller adds to the self-connection list.
pub async fn start(config: &MetricsConfig) -> Result<SocketAddr, StartError> {
    let failed = |e| StartError::Metrics(config.listen, e);
    let listener = TcpListener::bind(config.listen).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    emit(
        &logging::line(Level::Info, "serving metrics")
            .with("metrics_addr", bound.to_string())
            .with("endpoint", config.endpoint.clone())
            .with("health", HEALTH_PATHS[0]),
    );
    let endpoint: Arc<str> = Arc::from(config.endpoint.as_str());
    runtime::spawn(serve(listener, endpoint));
    Ok(bound)
}

async fn serve(listener: TcpListener, endpoint: Arc<str>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                emit(
                    &logging::line(Level::Warning, "metrics accept failed")
                        .with("error", e.to_string()),
                );
                runtime::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= MAX_METRICS_CONNECTIONS {
            continue; // dropped: closed at once
        }
        open.fetch_add(1, Ordering::Relaxed);
        let open = Arc::clone(&open);
        let endpoint = Arc::clone(&endpoint);
        runtime::spawn(async move {
            serve_one(stream, endpoint).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// How long a metrics connection may take to send a request head (async-h1's
/// own default when it served the whole connection).
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Most request-body bytes read and discarded before the connection closes.
const MAX_DISCARD: u64 = 64 * 1024;

/// Serve one metrics connection. async-h1 parses each request; the answer is
/// written here. (async-h1's response encoder would do the same for these
/// fixed-length bodies, but its chunked path calls `log2`, the only reason
/// the binary would load libm: 0.3 MiB of RSS; docs/performance.md.)
async fn serve_one(stream: TcpStream, endpoint: Arc<str>) {
    let handle = async move {
        use crate::shell::runtime::{ReadExt as _, WriteExt as _};
        let mut out = stream.clone();
        loop {
            let next = async { Ok(async_h1::server::decode(stream.clone()).await) };
            let (req, body) = match runtime::timeout(HEAD_TIMEOUT, next).await {
                Ok(Ok(Some(pair))) => pair,
                // A head async-h1 refuses (no Host, bad syntax): say so, close.
                Ok(Err(_)) => {
                    let reply = crate::core::reply::Reply::text(400, "bad request\n");
                    let _ = out.write_all(&reply.to_bytes()).await;
                    return;
                }
                // EOF or the head timeout: close.
                Ok(Ok(None)) | Err(_) => return,
            };
            let close = wants_close(&req);
            let (status, content_type, bytes) = respond(&req, &endpoint);
            let head = req.method() == Method::Head;
            let reply = response_bytes(status, content_type, &bytes, head, close);
            if out.write_all(&reply).await.is_err() || close {
                return;
            }
            // Unread request body: discard a little, close on more.
            let discard = runtime::discard(body.take(MAX_DISCARD + 1));
            match runtime::timeout(HEAD_TIMEOUT, discard).await {
                Ok(n) if n <= MAX_DISCARD => {}
                _ => return,
            }
        }
    };
    // http-types can panic on odd input (see docs/dependencies.md); a bad
    // scrape must not take the task's thread, let alone the proxy, down.
    let _ = std::panic::AssertUnwindSafe(handle).catch_unwind().await;
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
        m.dialled(Duration::from_millis(2), true);
        m.dialled(Duration::from_millis(2), false);
        let text = m.render();
        for line in [
            "acl_report_total 1",
            "acl_deny_total 1",
            "acl_allow_total 0",
            "resolver_attempts_total 1",
            "resolver_errors_total 1",
            "cn_atpt_total 2",
            "cn_atpt_success_total 1",
            "cn_atpt_fail_total 1",
            "resolver_lookup_duration_seconds_count 1",
            "cn_atpt_connect_duration_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn routing_health_and_metrics() {
        let e = "/metrics";
        assert_eq!(route(&Method::Get, "/healthz", e, true).0, 200);
        assert_eq!(route(&Method::Get, "/healthcheck", e, true).0, 200);
        assert_eq!(route(&Method::Get, "/healthz", e, false).0, 503);
        assert_eq!(route(&Method::Post, "/healthz", e, true).0, 405);
        assert_eq!(route(&Method::Get, "/metrics", e, false).0, 200);
        assert_eq!(route(&Method::Get, "/other", e, true).0, 404);
        assert_eq!(route(&Method::Get, "/custom", "/custom", true).0, 200);
        assert_eq!(route(&Method::Get, "/metrics", "/custom", true).0, 404);
    }

    #[test]
    fn readiness_needs_both_acl_and_listener() {
        let r = Readiness::default();
        assert!(!r.is_ready());
        r.set_acl_loaded(true);
        assert!(!r.is_ready());
        r.set_accepting(true);
        assert!(r.is_ready());
        r.set_accepting(false);
        assert!(!r.is_ready());
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
