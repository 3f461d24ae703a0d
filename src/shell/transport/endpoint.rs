//! The contract every byte stream in the shell meets: usable through `&self`
//! from several futures at once, so a tunnel can pump both directions of one
//! connection together. [`Endpoint`] is that contract; [`Io`] turns any
//! endpoint into an `AsyncRead + AsyncWrite` value, and [`Owned`] does so
//! by value (what TLS libraries wrap), replaying bytes read ahead first.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::shell::runtime;
use crate::shell::transport::net::Tcp;

/// A byte stream usable through `&self` from several futures at once.
pub trait Endpoint: Send + Sync {
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    fn poll_flush_shared(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Finish sending (TLS `close_notify`, then FIN); reading stays open.
    fn poll_close_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Close both directions at once (errors, forced stops).
    fn abort(&self);
    /// The socket to wait on for readability without holding a buffer, when
    /// that is sound: plain TCP only (TLS may hold decrypted bytes in memory
    /// while the socket looks quiet).
    fn waitable(&self) -> Option<&Tcp> {
        None
    }
}

impl Endpoint for Tcp {
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, buf)
    }
    fn poll_flush_shared(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_flush(cx)
    }
    fn poll_close_write(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
    fn abort(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
    fn waitable(&self) -> Option<&Tcp> {
        Some(self)
    }
}

/// `&S` as an owned `AsyncRead + AsyncWrite` value (for `ReadExt`/`WriteExt`).
pub struct Io<'a, S: ?Sized>(pub &'a S);

impl<S: Endpoint + ?Sized> AsyncRead for Io<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_read_shared(cx, buf)
    }
}

impl<S: Endpoint + ?Sized> AsyncWrite for Io<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_shared(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush_shared(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_close_write(cx)
    }
}

/// An endpoint as an owned `AsyncRead + AsyncWrite` (what rustls wraps);
/// bytes read ahead of the handshake are replayed first.
pub struct Owned<S> {
    ahead: Vec<u8>,
    stream: S,
}

impl<S> Owned<S> {
    pub fn new(stream: S, ahead: Vec<u8>) -> Owned<S> {
        Owned { ahead, stream }
    }
}

impl<S: Endpoint + Unpin> AsyncRead for Owned<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.ahead.is_empty() {
            let n = buf.len().min(self.ahead.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.ahead.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.ahead.drain(..n);
            return Poll::Ready(Ok(n));
        }
        self.stream.poll_read_shared(cx, buf)
    }
}

impl<S: Endpoint + Unpin> AsyncWrite for Owned<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_write_shared(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_flush_shared(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_close_write(cx)
    }
}

/// Half-close `s` gracefully, bounded so a peer that stops reading cannot
/// hold the task.
pub async fn close_write<S: Endpoint + ?Sized>(s: &S) {
    let close = futures_lite::future::poll_fn(|cx| s.poll_close_write(cx));
    let _ = runtime::timeout(Duration::from_secs(1), close).await;
}
