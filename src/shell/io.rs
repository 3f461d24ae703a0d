//! Small byte-moving helpers shared by the connection, forwarder and tunnel.

use std::time::Duration;

use async_std::io::{ReadExt as _, WriteExt as _};

use crate::shell::stream::{Endpoint, Io};

use crate::core::framing::{encode_chunk_header, ChunkedDecoder, LAST_CHUNK};

const READ_CHUNK: usize = 16 * 1024;

/// Cuts a read buffer back to `keep` bytes when dropped, so a read that is
/// cancelled (a timeout) leaves no zero padding behind.
struct Truncate<'a> {
    buf: &'a mut Vec<u8>,
    keep: usize,
}

impl Drop for Truncate<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.keep);
    }
}

/// Read more bytes into `buf`; `Ok(0)` is EOF. Cancel-safe: if the future
/// is dropped (timeout, drain), `buf` is exactly as it was.
pub async fn read_more<S: Endpoint + ?Sized>(
    stream: &S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let old = buf.len();
    buf.resize(old + READ_CHUNK, 0);
    let mut guard = Truncate { buf, keep: old };
    let mut r = Io(stream);
    let res = r.read(guard.buf.get_mut(old..).unwrap_or_default()).await;
    guard.keep = old + *res.as_ref().unwrap_or(&0);
    res
}

/// Like [`read_more`], bounded by `limit`.
pub async fn read_more_timeout<S: Endpoint + ?Sized>(
    stream: &S,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> std::io::Result<usize> {
    async_std::io::timeout(limit, read_more(stream, buf)).await
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
        Some(limit) => async_std::io::timeout(limit, write_all(stream, bytes))
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
