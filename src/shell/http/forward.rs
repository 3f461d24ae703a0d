//! Absolute-form HTTP forwarding: send the head the core writes, stream the
//! request body while reading the response (so a `100 Continue` or an early
//! refusal reaches the client at once), relay interim and final responses as
//! the core says, and keep the upstream connection only when it is clean.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::core::decision::Approved;
use crate::core::forward::{self, BodyPlan, Interim, Unread};
use crate::core::head::{BodyFraming, RequestHead, ResponseHead, ResponseParser};
use crate::core::reply::Reply;
use crate::shell::transport::endpoint::Endpoint;
use crate::shell::transport::io::{
    copy_chunked, copy_length, copy_until_close, read_more, read_more_timeout, write_all, CopyError,
};
use crate::shell::transport::net::Tcp;

/// The settings an exchange needs (from `--timeout`, `--idle-timeout` and
/// `--max-header-bytes`): plain values, so forwarding does not depend on
/// what connections share.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub head_limits: crate::core::head::HeadLimits,
}

/// A kept-alive upstream connection, reusable only for the same address.
/// Plain TCP for `http://`; TLS for intercepted tunnels (`shell::mitm`).
pub struct Upstream<S = Tcp> {
    pub addr: SocketAddr,
    pub stream: S,
    /// Bytes read from upstream past the last response.
    pub buf: Vec<u8>,
    /// Set when `stream` goes to an upstream proxy: the request line is then
    /// absolute-form, with the proxy's credentials.
    pub via_proxy: Option<crate::core::upstream::ProxyUrl>,
}

impl<S> Upstream<S> {
    pub fn new(stream: S, addr: SocketAddr) -> Upstream<S> {
        Upstream {
            addr,
            stream,
            buf: Vec::new(),
            via_proxy: None,
        }
    }
}

/// How the one retry gets a fresh upstream connection to the same address.
pub trait Dial: Sync {
    type Stream: Endpoint;
    fn dial(&self, addr: SocketAddr) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

/// Plain TCP, as `http://` forwarding dials.
pub struct TcpDial;

impl Dial for TcpDial {
    type Stream = Tcp;
    async fn dial(&self, addr: SocketAddr) -> std::io::Result<Tcp> {
        let s = Tcp::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

impl Upstream<Tcp> {
    /// What waits on the idle connection: a byte read here is a byte nobody
    /// asked for, and the connection is dropped anyway.
    pub fn unread(&self) -> Unread {
        if !self.buf.is_empty() {
            return Unread::Bytes;
        }
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Ok(0) => Unread::Closed,
            Ok(_) => Unread::Bytes,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Unread::Nothing,
            Err(_) => Unread::Closed,
        }
    }
}

/// How one exchange ended.
pub struct Exchange<S = Tcp> {
    /// For the decision record: what failed, if anything.
    pub error: Option<String>,
    /// The status of the proxy's own answer when the exchange failed.
    pub status_code: Option<u16>,
    /// The upstream connection, if it may be reused.
    pub upstream: Option<Upstream<S>>,
    pub client_keep_alive: bool,
}

impl<S> Exchange<S> {
    fn broken(error: String) -> Exchange<S> {
        Exchange {
            error: Some(error),
            status_code: None,
            upstream: None,
            client_keep_alive: false,
        }
    }
}

/// Why no response could be relayed.
enum Failure {
    /// The upstream closed before any response byte (a stale keep-alive connection).
    Stale,
    Upstream(String),
    /// No response byte within the idle timeout.
    Timeout(String),
    Client(String),
}

/// Where the request body upload is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upload {
    Running,
    Done,
    /// The upstream stopped taking it (it may still answer, e.g. 413).
    Refused,
}

/// The upload's state, read by the response side in the same task (atomic
/// only because the connection's future must be `Send`).
struct UploadState(AtomicU8);

impl UploadState {
    fn new() -> UploadState {
        UploadState(AtomicU8::new(Upload::Running as u8))
    }
    fn get(&self) -> Upload {
        match self.0.load(Ordering::Relaxed) {
            x if x == Upload::Done as u8 => Upload::Done,
            x if x == Upload::Refused as u8 => Upload::Refused,
            _ => Upload::Running,
        }
    }
    fn set(&self, state: Upload) {
        self.0.store(state as u8, Ordering::Relaxed);
    }
}

/// Send the request, relay the response. `reused`: the upstream connection
/// served an earlier request; a failure there before any response byte is
/// retried once on a fresh connection from `dial` when the core allows it.
/// `C` and `dial` let `shell::mitm` forward inner requests over TLS.
#[allow(clippy::too_many_arguments)]
pub async fn exchange<C: Endpoint + ?Sized, D: Dial>(
    limits: &Limits,
    client: &C,
    client_buf: &mut Vec<u8>,
    head: &RequestHead,
    approved: &Approved,
    conn: Upstream<D::Stream>,
    reused: bool,
    dial: &D,
) -> Exchange<D::Stream> {
    let request = forward::request_head(head, conn.via_proxy.as_ref());
    let direct = conn.via_proxy.is_none();
    let mut conn = conn;
    let mut reused = reused;
    loop {
        match attempt(limits, client, client_buf, head, &request, conn).await {
            Ok(done) => return done,
            // Through an upstream proxy there is no second connection to try.
            Err(Failure::Stale) if direct && forward::may_retry(head, reused, false) => {
                reused = false;
                let limit = limits.connect_timeout;
                match crate::shell::runtime::timeout(limit, dial.dial(approved.addr)).await {
                    Ok(s) => conn = Upstream::new(s, approved.addr),
                    Err(e) => {
                        return fail(
                            client,
                            502,
                            &format!("Failed to connect to remote host: {e}"),
                        )
                        .await
                    }
                }
            }
            Err(Failure::Stale) => {
                return fail(
                    client,
                    502,
                    "Failed to read response from remote host: connection closed",
                )
                .await;
            }
            Err(Failure::Client(e)) => return Exchange::broken(format!("client: {e}")),
            Err(Failure::Upstream(e)) => return fail(client, 502, &e).await,
            Err(Failure::Timeout(e)) => return fail(client, 504, &e).await,
        }
    }
}

async fn fail<C: Endpoint + ?Sized, S>(client: &C, status: u16, message: &str) -> Exchange<S> {
    let reply = Reply::refusal(status, message, None);
    let _ = write_all(client, &reply.to_bytes()).await;
    Exchange {
        status_code: Some(status),
        ..Exchange::broken(message.to_string())
    }
}

/// One try on one upstream connection: the head goes out at once, then the
/// body upload and the response run side by side. When the response has
/// been relayed first, the rest of the upload is abandoned (and both
/// connections close).
async fn attempt<C: Endpoint + ?Sized, S: Endpoint>(
    limits: &Limits,
    client: &C,
    client_buf: &mut Vec<u8>,
    head: &RequestHead,
    request: &[u8],
    conn: Upstream<S>,
) -> Result<Exchange<S>, Failure> {
    let mut conn = conn;
    let mut first = request.to_vec();
    let body_left = match head.body {
        BodyFraming::Length(n) => n - coalesce(&mut first, client_buf, n),
        _ => 0,
    };
    if write_all(&conn.stream, &first).await.is_err() {
        return Err(Failure::Stale);
    }
    let idle = limits.idle_timeout;
    let state = UploadState::new();
    let outcome = {
        let Upstream {
            stream: up,
            buf: up_buf,
            ..
        } = &mut conn;
        let up: &S = up;
        let upload = async {
            let sent = match head.body {
                BodyFraming::Length(_) => {
                    copy_length(client, client_buf, up, body_left, idle).await
                }
                BodyFraming::Chunked => copy_chunked(client, client_buf, up, true, idle).await,
                BodyFraming::Empty | BodyFraming::UntilClose => Ok(()),
            };
            state.set(match sent {
                Ok(()) => Upload::Done,
                Err(CopyError::Write(_)) => Upload::Refused,
                // The client is gone; the exchange ends below.
                Err(CopyError::Read(_)) => Upload::Running,
            });
            sent
        };
        let response = async {
            let resp = read_final_head(limits, client, head, up, up_buf, &state).await?;
            let relayed = relay(client, head, &resp, up, up_buf, &state, idle).await;
            Ok((relayed, resp))
        };
        let mut upload = pin!(upload);
        let mut response = pin!(response);
        let mut uploading = true;
        let outcome = futures_lite::future::poll_fn(|cx| {
            if uploading {
                if let Poll::Ready(sent) = upload.as_mut().poll(cx) {
                    uploading = false;
                    if let Err(CopyError::Read(e)) = sent {
                        return Poll::Ready(Err(Failure::Client(e)));
                    }
                }
            }
            response.as_mut().poll(cx)
        })
        .await;
        outcome
    };
    let (relayed, resp) = outcome?;
    let upload_done = state.get() == Upload::Done;
    if !upload_done && relayed.error.is_none() {
        drain_unsent_body(client, client_buf).await;
    }
    let keep = forward::keep_upstream(
        &resp,
        relayed.error.is_none(),
        !conn.buf.is_empty(),
        upload_done,
    );
    Ok(Exchange {
        upstream: keep.then_some(conn),
        ..relayed
    })
}

/// Read response heads until a final one, relaying interim responses as
/// the core says. Waiting has no deadline while the upload still moves (it
/// has its own idle timeout); afterwards the idle timeout applies.
async fn read_final_head<C: Endpoint + ?Sized, S: Endpoint>(
    limits: &Limits,
    client: &C,
    head: &RequestHead,
    up: &S,
    up_buf: &mut Vec<u8>,
    upload: &UploadState,
) -> Result<ResponseHead, Failure> {
    let head_limits = limits.head_limits;
    // Any byte (an interim response too) means the request was answered:
    // a failure after that is never "stale", so never retried.
    let mut answered = !up_buf.is_empty();
    let mut interims = 0usize;
    // Resumed across reads: a head trickled a byte at a time is scanned once.
    let mut parser = ResponseParser::default();
    loop {
        match parser.parse(up_buf, &head_limits, forward::is_head(head)) {
            Ok(Some(resp)) if (100..200).contains(&resp.status) => {
                up_buf.drain(..resp.head_len);
                parser = ResponseParser::default();
                interims += 1;
                if interims > forward::MAX_INTERIM {
                    let e = forward::ForwardError::TooManyInterim;
                    return Err(Failure::Upstream(e.to_string()));
                }
                match forward::interim(head, &resp) {
                    Ok(Interim::Relay(bytes)) => {
                        if let Err(e) = write_all(client, &bytes).await {
                            return Err(Failure::Client(e.to_string()));
                        }
                    }
                    Ok(Interim::Drop) => {}
                    Err(e) => return Err(Failure::Upstream(e.to_string())),
                }
                continue;
            }
            Ok(Some(resp)) => return Ok(resp),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Upstream(format!(
                    "invalid response from remote host: {e}"
                )))
            }
        }
        let was_empty = up_buf.is_empty();
        let limit = limits.idle_timeout.unwrap_or(Duration::from_secs(300));
        let read = async {
            if let (true, Some(tcp)) = (was_empty, up.waitable()) {
                // Right after the request the answer is never there yet: wait
                // for it instead of a read that would only say so.
                tcp.readable().await?;
            }
            read_more(up, up_buf).await
        };
        match crate::shell::runtime::timeout(limit, read).await {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                if upload.get() == Upload::Running {
                    continue;
                }
                return Err(Failure::Timeout(format!(
                    "Timed out reading response from remote host after {limit:?}"
                )));
            }
            Ok(0) | Err(_) if !answered => return Err(Failure::Stale),
            Ok(0) => {
                return Err(Failure::Upstream(
                    "remote host closed the connection mid-response".into(),
                ))
            }
            Ok(_) => answered = true,
            Err(e) => {
                return Err(Failure::Upstream(format!(
                    "Failed to read response from remote host: {e}"
                )))
            }
        }
    }
}

/// How much of an abandoned request body is read and discarded, for how
/// long in all, and how long a quiet client is waited for, before the client
/// connection closes.
const DRAIN_MAX: usize = 8 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_QUIET: Duration = Duration::from_millis(500);

/// After an early final response the rest of the request body is not sent
/// on, and the connection closes. Closing with unread bytes makes the kernel
/// reset it, which can destroy the response before a client that is still
/// writing has read it, so the body is read and dropped first, within
/// bounds (the staged close of RFC 9112 §9.6).
async fn drain_unsent_body<C: Endpoint + ?Sized>(client: &C, buf: &mut Vec<u8>) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut drained = buf.len();
    buf.clear();
    while drained < DRAIN_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        match read_more_timeout(client, buf, left.min(DRAIN_QUIET)).await {
            Ok(n) if n > 0 => drained += n,
            _ => return,
        }
        buf.clear();
    }
}

/// Most body bytes sent in the same write as a head.
const COALESCE_MAX: usize = 64 * 1024;

/// Move up to `n` already-read body bytes from `pending` to the end of `out`
/// (a head about to be written), so head and body leave in one write.
/// Returns how many moved.
fn coalesce(out: &mut Vec<u8>, pending: &mut Vec<u8>, n: u64) -> u64 {
    let take = usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(pending.len())
        .min(COALESCE_MAX);
    out.extend_from_slice(pending.get(..take).unwrap_or_default());
    pending.drain(..take);
    take as u64
}

/// Send the final response head the core writes and copy its body.
/// Returns the exchange without the upstream (the caller decides on that).
async fn relay<C: Endpoint + ?Sized, S: Endpoint>(
    client: &C,
    head: &RequestHead,
    resp: &ResponseHead,
    up: &S,
    up_buf: &mut Vec<u8>,
    upload: &UploadState,
    idle: Option<Duration>,
) -> Exchange<S> {
    up_buf.drain(..resp.head_len);
    let plan = match forward::response_head(head, resp, upload.get() == Upload::Done) {
        Ok(plan) => plan,
        Err(e) => return fail(client, 502, &e.to_string()).await,
    };
    let mut out = plan.head;
    // The body bytes already read go out with the head: one write, one packet.
    let body_left = match plan.body {
        BodyPlan::Length(n) => n - coalesce(&mut out, up_buf, n),
        _ => 0,
    };
    if let Err(e) = write_all(client, &out).await {
        return Exchange::broken(format!("client: {e}"));
    }
    let copied = match plan.body {
        BodyPlan::None => Ok(()),
        BodyPlan::Length(_) => copy_length(up, up_buf, client, body_left, idle).await,
        BodyPlan::Rechunk => copy_chunked(up, up_buf, client, true, idle).await,
        BodyPlan::Dechunk => copy_chunked(up, up_buf, client, false, idle).await,
        BodyPlan::UntilClose => copy_until_close(up, up_buf, client, idle).await,
    };
    match copied {
        Ok(()) => Exchange {
            error: None,
            status_code: None,
            upstream: None,
            client_keep_alive: plan.client_keep_alive,
        },
        // The head is already sent: all we can do is close the client so it
        // sees a truncated body rather than a wrong one.
        Err(CopyError::Read(e)) => Exchange::broken(format!("remote host: {e}")),
        Err(CopyError::Write(e)) => Exchange::broken(format!("client: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_moves_only_the_body_and_leaves_the_surplus() {
        let mut out = b"HEAD\r\n\r\n".to_vec();
        let mut pending = b"bodyNEXT".to_vec();
        assert_eq!(coalesce(&mut out, &mut pending, 4), 4);
        assert_eq!(out, b"HEAD\r\n\r\nbody");
        assert_eq!(pending, b"NEXT");
    }

    #[test]
    fn coalesce_takes_what_is_there_when_the_body_is_longer() {
        let mut out = Vec::new();
        let mut pending = b"abc".to_vec();
        assert_eq!(coalesce(&mut out, &mut pending, 10), 3);
        assert_eq!(out, b"abc");
        assert!(pending.is_empty());
    }

    #[test]
    fn coalesce_is_capped() {
        let mut out = Vec::new();
        let mut pending = vec![7u8; COALESCE_MAX + 10];
        assert_eq!(
            coalesce(&mut out, &mut pending, u64::MAX),
            COALESCE_MAX as u64
        );
        assert_eq!(pending.len(), 10);
    }
}
