//! The metrics and health listener: `/metrics` (or `--prometheus-endpoint`)
//! and `/healthz` (`/healthcheck`), on its own port. Requests are read by
//! async-h1; the fixed-length answers are written here. Idle or slow peers
//! cannot starve it: a head must arrive within a few seconds, and past a
//! fixed number of connections a newcomer evicts the oldest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_lite::FutureExt as _;
use http_types::{Method, Request};

use crate::config::MetricsConfig;
use crate::core::record::Level;
use crate::shell::observe::logging::{self, emit};
use crate::shell::observe::metrics;
use crate::shell::observe::slots::Slots;
use crate::shell::runtime::{self, TcpListener, TcpStream};
use crate::shell::serve::StartError;

/// Paths that answer the health check (ours, and Smokescreen's spelling).
pub const HEALTH_PATHS: [&str; 2] = ["/healthz", "/healthcheck"];

/// The OpenMetrics content type `prometheus-client` produces.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Scrapers are few; past this many concurrent connections on the metrics
/// port, each new one evicts the oldest (`shell::slots`), so idle peers
/// cannot lock out the health check.
const MAX_METRICS_CONNECTIONS: usize = 64;

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
            metrics::get().render().into_bytes(),
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
    let slots = Slots::new(MAX_METRICS_CONNECTIONS);
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
        let slot = slots.take();
        let endpoint = Arc::clone(&endpoint);
        runtime::spawn(async move {
            let closer = stream.clone();
            futures_lite::future::or(serve_one(stream, endpoint), slot.evicted()).await;
            let _ = closer.shutdown(std::net::Shutdown::Both);
            drop(slot);
        });
    }
}

/// How long a metrics connection may take to send a request head, from
/// its first byte or the end of the previous answer: a scraper or health
/// check sends its request at once, so an idle peer is closed quickly.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

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
}
