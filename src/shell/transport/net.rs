//! TCP sockets registered with async-io's reactor, the one async-std itself
//! runs on (async-std's `TcpStream` is an `Arc<async_io::Async<..>>`).
//!
//! We hold the `Async` directly because async-std does not expose its
//! readiness waits: [`Tcp::readable`] lets a quiet tunnel or keep-alive
//! connection wait for bytes without a buffer and without the extra `peek`
//! syscalls, and [`Tcp::writable`] lets a tunnel `splice(2)` (see
//! [`splice`](super::splice)). Same reactor, same executor; only
//! the handle type differs.

use std::io::{self, Read as _};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::io::{AsyncRead, AsyncWrite};

/// A connected TCP socket; clones share it (both tunnel directions use one).
#[derive(Clone, Debug)]
pub struct Tcp(Arc<Async<std::net::TcpStream>>);

impl Tcp {
    /// Non-blocking connect to exactly `addr` (no name resolution here).
    pub async fn connect(addr: SocketAddr) -> io::Result<Tcp> {
        Async::<std::net::TcpStream>::connect(addr)
            .await
            .map(|s| Tcp(Arc::new(s)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.get_ref().shutdown(how)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.0.get_ref().set_nodelay(on)
    }

    /// Wait until a read would not block (bytes, EOF or an error are
    /// pending). Holds no buffer and makes no syscall besides re-arming the
    /// reactor's interest.
    pub async fn readable(&self) -> io::Result<()> {
        self.0.readable().await
    }

    /// Wait until a write would not block.
    pub async fn writable(&self) -> io::Result<()> {
        self.0.writable().await
    }

    /// Read what is there now without waiting: `WouldBlock` when nothing is.
    /// Lets a pump check for more bytes (or EOF) before going back to the
    /// reactor, which a wait always does even when bytes are ready.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&mut self.0.get_ref()).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl AsFd for Tcp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.get_ref().as_fd()
    }
}

impl AsyncRead for &Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for &Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

/// A listening socket.
#[derive(Debug)]
pub struct Listener(Async<std::net::TcpListener>);

impl Listener {
    pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Async::<std::net::TcpListener>::bind(addr).map(Listener)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    pub async fn accept(&self) -> io::Result<(Tcp, SocketAddr)> {
        let (s, peer) = self.0.accept().await?;
        Ok((Tcp(Arc::new(s)), peer))
    }
}

/// A connected loopback pair (client end, server end), for unit tests.
#[cfg(test)]
pub async fn pair() -> (Tcp, Tcp) {
    let l = Listener::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let addr = l.local_addr().expect("local address");
    let (a, b) = futures_lite::future::zip(Tcp::connect(addr), l.accept()).await;
    (a.expect("connect"), b.expect("accept").0)
}
