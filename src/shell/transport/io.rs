//! Small byte-moving helpers shared by the connection, forwarder and tunnel.

use std::time::Duration;

use std::cell::RefCell;
use std::task::{Context, Poll};

use crate::shell::runtime::{self, WriteExt as _};

use crate::shell::transport::endpoint::{Endpoint, Io};

use crate::core::framing::{encode_chunk_header, ChunkedDecoder, LAST_CHUNK};

const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where reads land before the bytes that arrived are appended to a
    /// connection's buffer. Zeroed once per thread: reading straight into
    /// the buffer would need 16 KiB of fresh zeroes per read (safe Rust
    /// cannot read into uninitialised room), mostly for a ~400-byte head.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Read more bytes onto the end of `buf`; `Ok(0)` is EOF. Cancel-safe: bytes
/// are appended only in the poll that reads them, so a dropped future
/// (timeout, drain) leaves `buf` as it was.
pub async fn read_more<S: Endpoint + ?Sized>(
    stream: &S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    futures_lite::future::poll_fn(|cx| {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut room) => read_into(stream, cx, &mut room, buf),
            // Not reachable (a poll does not re-enter itself), but a fresh
            // buffer is always a correct answer.
            Err(_) => read_into(stream, cx, &mut vec![0; READ_CHUNK], buf),
        })
    })
    .await
}

fn read_into<S: Endpoint + ?Sized>(
    stream: &S,
    cx: &mut Context<'_>,
    room: &mut [u8],
    buf: &mut Vec<u8>,
) -> Poll<std::io::Result<usize>> {
    match stream.poll_read_shared(cx, room) {
        Poll::Ready(Ok(n)) => {
            buf.extend_from_slice(room.get(..n).unwrap_or_default());
            Poll::Ready(Ok(n))
        }
        other => other,
    }
}

/// Like [`read_more`], bounded by `limit`.
pub async fn read_more_timeout<S: Endpoint + ?Sized>(
    stream: &S,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> std::io::Result<usize> {
    runtime::timeout(limit, read_more(stream, buf)).await
}

/// Write everything and flush (TLS may hold records back until a flush).
pub async fn write_all<S: Endpoint + ?Sized>(stream: &S, bytes: &[u8]) -> std::io::Result<()> {
    let mut w = Io(stream);
    w.write_all(bytes).await?;
    w.flush().await
}

/// `read_more`, failing with `TimedOut` when no byte arrives for `idle`.
async fn read_idle<S: Endpoint + ?Sized>(
    stream: &S,
    buf: &mut Vec<u8>,
    idle: Option<Duration>,
) -> std::io::Result<usize> {
    match idle {
        Some(limit) => read_more_timeout(stream, buf, limit)
            .await
            .map_err(|e| idle_error(e, limit)),
        None => read_more(stream, buf).await,
    }
}

/// `write_all`, failing with `TimedOut` when the peer takes nothing for `idle`.
async fn write_idle<S: Endpoint + ?Sized>(
    stream: &S,
    bytes: &[u8],
    idle: Option<Duration>,
) -> std::io::Result<()> {
    match idle {
        Some(limit) => runtime::timeout(limit, write_all(stream, bytes))
            .await
            .map_err(|e| idle_error(e, limit)),
        None => write_all(stream, bytes).await,
    }
}

fn idle_error(e: std::io::Error, limit: Duration) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::TimedOut {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("idle timeout after {limit:?}"),
        )
    } else {
        e
    }
}

/// Where a body copy failed: reading from the source or writing to the sink.
#[derive(Debug)]
pub enum CopyError {
    Read(String),
    Write(String),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Read(e) => write!(f, "read: {e}"),
            CopyError::Write(e) => write!(f, "write: {e}"),
        }
    }
}

/// The body copies below give up when no byte moves for `idle` (a client
/// that stops mid-upload, an upstream that stops reading or sending), so a
/// stalled body cannot hold a connection and its slots forever.
///
/// Copy exactly `n` body bytes: first from `pending` (bytes already read
/// past the head), then from `from`. Surplus bytes stay in `pending`.
pub async fn copy_length<F: Endpoint + ?Sized, T: Endpoint + ?Sized>(
    from: &F,
    pending: &mut Vec<u8>,
    to: &T,
    mut n: u64,
    idle: Option<Duration>,
) -> Result<(), CopyError> {
    while n > 0 {
        if pending.is_empty() {
            let got = read_idle(from, pending, idle)
                .await
                .map_err(|e| CopyError::Read(e.to_string()))?;
            if got == 0 {
                return Err(CopyError::Read(format!(
                    "connection closed with {n} body bytes missing"
                )));
            }
        }
        let take = usize::try_from(n).unwrap_or(usize::MAX).min(pending.len());
        write_idle(to, pending.get(..take).unwrap_or_default(), idle)
            .await
            .map_err(|e| CopyError::Write(e.to_string()))?;
        pending.drain(..take);
        n -= take as u64;
    }
    Ok(())
}

/// Copy a chunked body, decoding it with the core's decoder and re-encoding
/// it canonically (`rechunk`) or writing the bare data (for HTTP/1.0 peers).
pub async fn copy_chunked<F: Endpoint + ?Sized, T: Endpoint + ?Sized>(
    from: &F,
    pending: &mut Vec<u8>,
    to: &T,
    rechunk: bool,
    idle: Option<Duration>,
) -> Result<(), CopyError> {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::with_capacity(READ_CHUNK + 32);
    loop {
        let mut done = false;
        let mut used = 0;
        while used < pending.len() {
            let input = pending.get(used..).unwrap_or_default();
            let step = decoder
                .decode(input)
                .map_err(|e| CopyError::Read(e.to_string()))?;
            if let Some(range) = step.data.clone() {
                let data = input.get(range).unwrap_or_default();
                if !data.is_empty() {
                    if rechunk {
                        encode_chunk_header(data.len(), &mut out);
                        out.extend_from_slice(data);
                        out.extend_from_slice(b"\r\n");
                    } else {
                        out.extend_from_slice(data);
                    }
                }
            }
            used += step.consumed;
            if step.done {
                done = true;
                break;
            }
            if step.consumed == 0 {
                break;
            }
        }
        pending.drain(..used);
        if done && rechunk {
            out.extend_from_slice(LAST_CHUNK);
        }
        if !out.is_empty() {
            write_idle(to, &out, idle)
                .await
                .map_err(|e| CopyError::Write(e.to_string()))?;
            out.clear();
        }
        if done {
            return Ok(());
        }
        let got = read_idle(from, pending, idle)
            .await
            .map_err(|e| CopyError::Read(e.to_string()))?;
        if got == 0 {
            return Err(CopyError::Read(
                "connection closed inside a chunked body".into(),
            ));
        }
    }
}

/// Copy until `from` reaches EOF (close-delimited response bodies).
pub async fn copy_until_close<F: Endpoint + ?Sized, T: Endpoint + ?Sized>(
    from: &F,
    pending: &mut Vec<u8>,
    to: &T,
    idle: Option<Duration>,
) -> Result<(), CopyError> {
    loop {
        if !pending.is_empty() {
            write_idle(to, pending, idle)
                .await
                .map_err(|e| CopyError::Write(e.to_string()))?;
            pending.clear();
        }
        let got = read_idle(from, pending, idle)
            .await
            .map_err(|e| CopyError::Read(e.to_string()))?;
        if got == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::transport::net::pair;

    #[test]
    fn read_more_appends_exactly_what_arrived_and_a_cancelled_read_changes_nothing() {
        runtime::block_on(async {
            let (a, b) = pair().await;
            let mut buf = b"kept".to_vec();
            // Nothing sent yet: the timeout drops the read mid-wait.
            let r = read_more_timeout(&b, &mut buf, Duration::from_millis(20)).await;
            assert_eq!(r.map_err(|e| e.kind()), Err(std::io::ErrorKind::TimedOut));
            assert_eq!(buf, b"kept");

            // More than one read's room, so several reads append in order.
            let sent: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| (i % 251) as u8).collect();
            let send = async {
                write_all(&a, &sent).await.expect("send");
                a.shutdown(std::net::Shutdown::Write).expect("FIN");
            };
            let receive = async {
                let mut reads = 0;
                loop {
                    let before = buf.len();
                    let n = read_more(&b, &mut buf).await.expect("read");
                    assert_eq!(buf.len(), before + n);
                    assert!(n <= READ_CHUNK);
                    if n == 0 {
                        return reads;
                    }
                    reads += 1;
                }
            };
            let ((), reads) = futures_lite::future::zip(send, receive).await;
            assert!(reads >= 4, "{reads} reads for {} bytes", sent.len());
            assert_eq!(buf.get(..4), Some(&b"kept"[..]));
            assert!(buf.get(4..) == Some(&sent[..]), "bytes differ");
        });
    }
}
