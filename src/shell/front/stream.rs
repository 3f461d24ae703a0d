//! The client side of a connection, plain TCP or TLS, behind one type.
//!
//! The shell reads and writes streams through shared references (async-std's
//! `&Tcp` is `AsyncRead + AsyncWrite`), so a tunnel can pump both
//! directions of one connection at once. [`Endpoint`] is that contract;
//! [`Io`] turns any endpoint into an `AsyncRead + AsyncWrite` value.
//!
//! A TLS stream cannot be split, so [`ClientStream::Tls`] keeps it behind a
//! mutex held only for the duration of one synchronous `poll_*` call (the
//! same technique as `futures_lite::io::split`); both directions of a
//! tunnel are polled by the same task, so no wake-up is lost.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;

use crate::core::auth::ClientCert;
use crate::shell::front::proxy_header::{self, ProxyProtocol};
use crate::shell::front::tls;
pub use crate::shell::transport::endpoint::{close_write, Endpoint, Io, Owned};
use crate::shell::transport::net::Tcp;

/// TCP bytes that were read ahead (while looking for a PROXY header) are
/// replayed before the socket's own, so the TLS handshake sees them.
type Prefixed = Owned<Tcp>;

/// The shared half of a TLS client connection.
pub struct TlsConn {
    tls: Mutex<TlsStream<Prefixed>>,
    tcp: Tcp,
}

impl TlsConn {
    fn lock(&self) -> io::Result<MutexGuard<'_, TlsStream<Prefixed>>> {
        self.tls
            .lock()
            .map_err(|_| io::Error::other("TLS stream lock poisoned"))
    }
}

/// A client connection, plain or TLS. Cloning shares the connection.
#[derive(Clone)]
pub enum ClientStream {
    Plain(Tcp),
    Tls(Arc<TlsConn>),
}

impl fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientStream::Plain(_) => f.write_str("ClientStream::Plain"),
            ClientStream::Tls(_) => f.write_str("ClientStream::Tls"),
        }
    }
}

impl ClientStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &Tcp {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(t) => &t.tcp,
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }

    /// Abrupt shutdown of the socket (no TLS `close_notify`; see [`close_write`]).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp().shutdown(how)
    }
}

fn with_tls<T>(
    t: &TlsConn,
    f: impl FnOnce(Pin<&mut TlsStream<Prefixed>>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match t.lock() {
        Ok(mut guard) => f(Pin::new(&mut *guard)),
        Err(e) => Poll::Ready(Err(e)),
    }
}

impl Endpoint for ClientStream {
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            ClientStream::Plain(s) => s.poll_read_shared(cx, buf),
            ClientStream::Tls(t) => with_tls(t, |s| s.poll_read(cx, buf)),
        }
    }
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            ClientStream::Plain(s) => s.poll_write_shared(cx, buf),
            // rustls may keep records buffered after accepting plaintext:
            // writers flush (io::write_all, the tunnel) so nothing is left behind.
            ClientStream::Tls(t) => with_tls(t, |s| s.poll_write(cx, buf)),
        }
    }
    fn poll_flush_shared(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Plain(s) => s.poll_flush_shared(cx),
            ClientStream::Tls(t) => with_tls(t, |s| s.poll_flush(cx)),
        }
    }
    fn poll_close_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Plain(s) => s.poll_close_write(cx),
            ClientStream::Tls(t) => with_tls(t, |s| s.poll_close(cx)),
        }
    }
    fn abort(&self) {
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
    fn waitable(&self) -> Option<&Tcp> {
        match self {
            ClientStream::Plain(s) => Some(s),
            ClientStream::Tls(_) => None,
        }
    }
}

/// How a client connection is opened before HTTP: PROXY header, then TLS.
#[derive(Clone, Default)]
pub struct Front {
    pub proxy_protocol: Option<ProxyProtocol>,
    pub tls: Option<TlsAcceptor>,
}

impl fmt::Debug for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Front")
            .field("proxy_protocol", &self.proxy_protocol)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A client connection ready for HTTP.
pub struct Opened {
    pub client: ClientStream,
    /// The client's address: the socket peer, or what a trusted PROXY header carried.
    pub peer: SocketAddr,
    /// The verified client certificate (mTLS).
    pub cert: Option<ClientCert>,
    /// Plaintext bytes already read (plain TCP only): the start of the first request.
    pub buf: Vec<u8>,
}

/// Read the PROXY header (if configured) and do the TLS handshake (if
/// configured), each bounded by `limit`. `Err` is a text for the log; the
/// caller closes the connection.
pub async fn open(
    front: &Front,
    tcp: Tcp,
    peer: SocketAddr,
    limit: Duration,
) -> Result<Opened, (SocketAddr, String)> {
    let (peer, ahead) = match &front.proxy_protocol {
        Some(pp) => proxy_header::read(&tcp, peer, pp, limit).await?,
        None => (peer, Vec::new()),
    };
    let Some(acceptor) = &front.tls else {
        return Ok(Opened {
            client: ClientStream::Plain(tcp),
            peer,
            cert: None,
            buf: ahead,
        });
    };
    let io = Owned::new(tcp.clone(), ahead);
    let stream = match crate::shell::runtime::timeout(limit, acceptor.accept(io)).await {
        Ok(s) => s,
        Err(e) => return Err((peer, format!("TLS handshake failed: {e}"))),
    };
    let cert = tls::peer_cert(stream.get_ref().1);
    Ok(Opened {
        client: ClientStream::Tls(Arc::new(TlsConn {
            tls: Mutex::new(stream),
            tcp,
        })),
        peer,
        cert,
        buf: Vec::new(),
    })
}

/// Log a connection refused before HTTP (bad PROXY header, failed TLS
/// handshake). A peer that just closed (a TCP health check) is not logged.
pub fn log_refused(source: SocketAddr, peer: SocketAddr, error: &str) {
    use crate::core::record::Level;
    use crate::shell::observe::logging::{self, emit};
    if error == proxy_header::CLOSED_EARLY {
        return;
    }
    emit(
        &logging::line(Level::Warning, "connection refused before the request")
            .with("error", error)
            .with("source_addr", source.to_string())
            .with("peer_addr", peer.to_string()),
    );
}
