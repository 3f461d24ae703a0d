//! One intercepted tunnel: after the `200`, accept the client's TLS with a
//! minted certificate, open verified TLS to the checked address, then read
//! inner requests one by one; each is checked by `core::mitm` and forwarded
//! with `http::forward` (the same code as `http://`), headers added.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_rustls::TlsAcceptor;

use super::stream::{Locked, Owned};
use super::{Mitm, OriginTls, TlsDial};
use crate::core::decision::{Approved, RequestFacts};
use crate::core::head::{RequestHead, RequestParser};
use crate::core::mitm::{self, Interception};
use crate::core::record::Level;
use crate::core::reply::Reply;
use crate::core::time::Timestamp;
use crate::shell::front::stream::{close_write, ClientStream, Endpoint};
use crate::shell::http::forward::{self, Upstream};
use crate::shell::observe::logging::{self, emit};
use crate::shell::observe::metrics;
use crate::shell::runtime;
use crate::shell::serve::state::Shared;
use crate::shell::transport::io::{read_more_timeout, write_all};
use crate::shell::transport::net::Tcp;

/// An intercepted tunnel's parts.
pub struct Session<'a> {
    pub shared: &'a Shared,
    pub mitm: &'a Mitm,
    pub approved: &'a Approved,
    pub intercept: &'a Interception,
    pub facts: &'a RequestFacts,
}

/// How the tunnel ended, for its close line. Byte counts are the
/// plaintext the client sent and received.
pub struct Ended {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_activity: Timestamp,
    pub error: Option<String>,
}

impl Ended {
    /// Cut by the exit timeout (dropping the session closes both sockets).
    pub fn stopped() -> Ended {
        Ended {
            bytes_in: 0,
            bytes_out: 0,
            last_activity: logging::now(),
            error: Some("proxy shutting down".to_owned()),
        }
    }
}

/// The client side: TLS with the minted certificate, bytes counted.
struct ClientTls {
    tls: Locked<futures_rustls::server::TlsStream<Owned<ClientStream>>, ClientStream>,
    read: AtomicU64,
    written: AtomicU64,
}

impl Endpoint for ClientTls {
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        counted(self.tls.poll_read_shared(cx, buf), &self.read)
    }
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        counted(self.tls.poll_write_shared(cx, buf), &self.written)
    }
    fn poll_flush_shared(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tls.poll_flush_shared(cx)
    }
    fn poll_close_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tls.poll_close_write(cx)
    }
    fn abort(&self) {
        self.tls.abort();
    }
}

/// Add a completed read's or write's byte count to `counter`.
fn counted(polled: Poll<io::Result<usize>>, counter: &AtomicU64) -> Poll<io::Result<usize>> {
    if let Poll::Ready(Ok(n)) = &polled {
        counter.fetch_add(*n as u64, Ordering::Relaxed);
    }
    polled
}

impl Session<'_> {
    /// Run the tunnel to its end. `origin` is the dialled, checked address.
    pub async fn run(&self, client: ClientStream, eager: Vec<u8>, origin: Tcp) -> Ended {
        let host = self.approved.target.host.acl_str().into_owned();
        let ended = |error: String| Ended {
            bytes_in: 0,
            bytes_out: eager.len() as u64,
            last_activity: logging::now(),
            error: Some(error),
        };
        let accepted = match self.accept(&client, &host, eager.clone()).await {
            Ok(tls) => tls,
            Err(e) => {
                let _ = origin.shutdown(std::net::Shutdown::Both);
                client.abort();
                return ended(e);
            }
        };
        let error = self.serve(&accepted, &host, origin).await;
        close_write(&accepted).await;
        accepted.abort();
        Ended {
            bytes_in: accepted.written.load(Ordering::Relaxed),
            bytes_out: accepted.read.load(Ordering::Relaxed),
            last_activity: logging::now(),
            error,
        }
    }

    async fn accept(
        &self,
        client: &ClientStream,
        host: &str,
        eager: Vec<u8>,
    ) -> Result<ClientTls, String> {
        let config = self
            .mitm
            .authority
            .server_config(host, logging::now())
            .map_err(|e| format!("cannot mint a certificate for {host}: {e}"))?;
        let limit = self.shared.settings.read_header_timeout;
        let handshake = TlsAcceptor::from(config).accept(Owned::new(client.clone(), eager));
        let tls = runtime::timeout(limit, handshake)
            .await
            .map_err(|e| format!("client TLS handshake failed: {e}"))?;
        Ok(ClientTls {
            tls: Locked::new(tls, client.clone()),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
        })
    }

    /// The inner request loop; `Some` is why it ended abnormally.
    async fn serve(&self, client: &ClientTls, host: &str, origin: Tcp) -> Option<String> {
        let dialer = match self.mitm.dialer(host) {
            Ok(d) => d,
            Err(e) => return Some(format!("invalid TLS name {host}: {e}")),
        };
        let limit = self.shared.settings.connect_timeout;
        let mut upstream: Result<Upstream<OriginTls>, String> =
            match runtime::timeout(limit, dialer.handshake(origin)).await {
                Ok(s) => Ok(Upstream::new(s, self.approved.addr)),
                Err(e) => Err(format!("TLS to the destination failed: {e}")),
            };
        let mut buf = Vec::new();
        let mut reused = false;
        loop {
            let head = match self.read_head(client, &mut buf).await {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => return Some(e),
            };
            buf.drain(..head.head_len);
            metrics::get().intercepted();
            let port = self.approved.target.port;
            if let Err(why) = mitm::inner_request_allowed(&head, host, port) {
                self.refuse(client, &head, 403, &why).await;
                return Some(why);
            }
            let conn = match upstream {
                Ok(conn) => conn,
                Err(e) => {
                    self.refuse(client, &head, 502, &e).await;
                    return Some(e);
                }
            };
            let inner = mitm::inner_head(&head, &self.approved.target, self.intercept);
            let result = self
                .forward(client, &mut buf, &inner, conn, reused, &dialer)
                .await;
            self.log_request(&head, result.error.as_deref());
            let keep = result.client_keep_alive;
            upstream = match result.upstream {
                Some(conn) => {
                    reused = true;
                    Ok(conn)
                }
                None if keep => {
                    reused = false;
                    match runtime::timeout(limit, dialer_dial(&dialer, self.approved)).await {
                        Ok(s) => Ok(Upstream::new(s, self.approved.addr)),
                        Err(e) => Err(format!("TLS to the destination failed: {e}")),
                    }
                }
                None => return result.error,
            };
            if !keep {
                return result.error;
            }
        }
    }

    async fn forward(
        &self,
        client: &ClientTls,
        buf: &mut Vec<u8>,
        inner: &RequestHead,
        conn: Upstream<OriginTls>,
        reused: bool,
        dialer: &TlsDial,
    ) -> crate::shell::http::forward::Exchange<OriginTls> {
        let limits = self.shared.settings.forward_limits();
        let exchange = forward::exchange(
            &limits,
            client,
            buf,
            inner,
            self.approved,
            conn,
            reused,
            dialer,
        );
        // Boxed: forwarding's state is large (see `serve::connection`).
        Box::pin(exchange).await
    }

    /// The next inner head: `Ok(None)` when the client closed or went idle
    /// between requests.
    async fn read_head(
        &self,
        client: &ClientTls,
        buf: &mut Vec<u8>,
    ) -> Result<Option<RequestHead>, String> {
        let settings = &self.shared.settings;
        let idle = settings.idle_timeout.unwrap_or(Duration::from_secs(3600));
        // Resumed across reads: a trickled head is scanned once.
        let mut parser = RequestParser::default();
        loop {
            match parser.parse(buf, &settings.head_limits) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(e) => {
                    let reply = Reply::text(e.status(), format!("{e}\n"));
                    let _ = write_all(client, &reply.to_bytes()).await;
                    return Err(format!("malformed inner request: {e}"));
                }
            }
            let limit = if buf.is_empty() {
                idle
            } else {
                settings.read_header_timeout
            };
            match read_more_timeout(client, buf, limit).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(_) if buf.is_empty() => return Ok(None),
                Err(e) => return Err(format!("reading an inner request: {e}")),
            }
        }
    }

    /// Answer an inner request with the proxy's own refusal and log why.
    async fn refuse(&self, client: &ClientTls, head: &RequestHead, status: u16, why: &str) {
        let reply = Reply::refusal(status, why, None);
        let _ = write_all(client, &reply.to_bytes()).await;
        let line = logging::line(Level::Warning, "inner request refused")
            .with("id", self.facts.id.as_str())
            .with("error", why.to_owned())
            .with("mitm_req_method", head.method.clone())
            .with("requested_host", self.approved.target.requested.clone())
            .with("status", status);
        emit(&line);
    }

    /// Smokescreen's detailed fields, when the entry asks for them.
    fn log_request(&self, head: &RequestHead, error: Option<&str>) {
        if !self.intercept.detailed_http_logs {
            return;
        }
        let mut line = logging::line(Level::Info, "MITM request")
            .with("id", self.facts.id.as_str())
            .with("role", self.approved.verdicts.role.clone())
            .with("requested_host", self.approved.target.requested.clone())
            .with(
                "mitm_req_url",
                mitm::request_url(head, &self.approved.target),
            )
            .with("mitm_req_method", head.method.clone())
            .with(
                "mitm_req_headers",
                mitm::logged_headers(&head.headers, self.intercept),
            );
        if let Some(e) = error {
            line = line.with("error", e.to_owned());
        }
        emit(&line);
    }
}

async fn dialer_dial(dialer: &TlsDial, approved: &Approved) -> std::io::Result<OriginTls> {
    use crate::shell::http::forward::Dial;
    dialer.dial(approved.addr).await
}
