//! TCP sockets on the shell's engine (`runtime::Async`): edge-triggered
//! readiness, registered the first time an operation would block.
//!
//! [`Tcp::readable`] lets a quiet tunnel or keep-alive connection wait for
//! bytes without a buffer, [`Tcp::try_read`] reads what is there without
//! waiting (a direction known to be drained answers `WouldBlock` without a
//! syscall), and [`Tcp::try_io`] lets a tunnel `splice(2)` (see
//! [`splice`](super::splice)) with the same readiness bookkeeping.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::shell::runtime::{Async, Direction};

/// A connected TCP socket; clones share it (both tunnel directions use one).
#[derive(Clone, Debug)]
pub struct Tcp(Arc<Async<std::net::TcpStream>>);

impl Tcp {
    /// Non-blocking connect to exactly `addr` (no name resolution here).
    pub async fn connect(addr: SocketAddr) -> io::Result<Tcp> {
        let family = if addr.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let fd = rustix::net::socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        let pending = match rustix::net::connect(&fd, &addr) {
            Ok(()) => false,
            Err(rustix::io::Errno::INPROGRESS) => true,
            Err(e) => return Err(e.into()),
        };
        let socket = Async::new_nonblocking(std::net::TcpStream::from(fd));
        if pending {
            // Registering marks both directions not ready until the
            // socket's first event: writable once the handshake ends.
            socket.ready(Direction::Write).await?;
            // Writable means the handshake ended. An event without
            // EPOLLERR/EPOLLHUP means it succeeded (the kernel reports a
            // failed connect with both); otherwise SO_ERROR says why.
            if socket.broken(Direction::Write) {
                if let Err(e) = rustix::net::sockopt::socket_error(socket.get_ref())? {
                    return Err(e.into());
                }
            }
        }
        Ok(Tcp(Arc::new(socket)))
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
    /// pending, or nothing is known yet). Holds no buffer and makes no
    /// syscall once the socket is registered.
    pub async fn readable(&self) -> io::Result<()> {
        self.0.ready(Direction::Read).await
    }

    /// Wait until a write would not block.
    pub async fn writable(&self) -> io::Result<()> {
        self.0.ready(Direction::Write).await
    }

    /// Read what is there now without waiting: `WouldBlock` when nothing is
    /// (without a syscall when the socket is known to be drained).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len();
        self.0.try_io(
            Direction::Read,
            |s| (&*s).read(buf),
            |n| *n > 0 && *n < want,
        )
    }

    /// The peer signalled urgent (out-of-band) data at some point.
    pub fn urgent(&self) -> bool {
        self.0.urgent()
    }

    /// Run a non-blocking operation on the socket with the engine's
    /// readiness bookkeeping (`splice` uses it).
    pub fn try_io<R>(
        &self,
        dir: Direction,
        op: impl FnMut(&std::net::TcpStream) -> io::Result<R>,
    ) -> io::Result<R> {
        self.0.try_io(dir, op, |_| false)
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
        let want = buf.len();
        self.0.poll_io(
            Direction::Read,
            cx,
            |s| (&*s).read(buf),
            // A short read drained the socket; EOF (0) stays readable.
            |n| *n > 0 && *n < want,
        )
    }
}

impl AsyncWrite for &Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let want = buf.len();
        self.0
            .poll_io(Direction::Write, cx, |s| (&*s).write(buf), |n| *n < want)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
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
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Listener(Async::new_nonblocking(listener)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// The next connection, already non-blocking (accept4), with its peer.
    pub async fn accept(&self) -> io::Result<(Tcp, SocketAddr)> {
        let (fd, peer) = futures_lite::future::poll_fn(|cx| {
            self.0.poll_io(
                Direction::Read,
                cx,
                |l| {
                    rustix::net::acceptfrom_with(l, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                        .map_err(io::Error::from)
                },
                |_| false,
            )
        })
        .await?;
        let peer = peer
            .and_then(|p| SocketAddr::try_from(p).ok())
            .ok_or_else(|| io::Error::other("accepted a connection with no IP peer address"))?;
        let stream = std::net::TcpStream::from(fd);
        Ok((Tcp(Arc::new(Async::new_nonblocking(stream))), peer))
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
