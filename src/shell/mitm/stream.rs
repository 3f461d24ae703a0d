//! TLS inside a tunnel, shared through `&self` like every shell stream: the
//! client side (we serve the minted certificate) and the destination side
//! (we verify its certificate). Each TLS stream sits behind a mutex held for
//! one synchronous `poll_*` call, as `front::stream` does for client TLS.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::shell::transport::endpoint::Endpoint;
pub use crate::shell::transport::endpoint::Owned;
use crate::shell::transport::net::Tcp;

/// A TLS stream usable through `&self`; `under` is the stream it runs on
/// (aborted directly, without `close_notify`).
pub struct Locked<T, U> {
    tls: Mutex<T>,
    under: U,
}

impl<T, U> Locked<T, U> {
    pub fn new(tls: T, under: U) -> Locked<T, U> {
        Locked {
            tls: Mutex::new(tls),
            under,
        }
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, T>> {
        self.tls
            .lock()
            .map_err(|_| io::Error::other("TLS stream lock poisoned"))
    }

    fn with<R>(&self, f: impl FnOnce(Pin<&mut T>) -> Poll<io::Result<R>>) -> Poll<io::Result<R>>
    where
        T: Unpin,
    {
        match self.lock() {
            Ok(mut guard) => f(Pin::new(&mut *guard)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<T, U> Endpoint for Locked<T, U>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
    U: Endpoint,
{
    fn poll_read_shared(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_read(cx, buf))
    }
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }
    fn poll_flush_shared(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }
    fn poll_close_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_close(cx))
    }
    fn abort(&self) {
        self.under.abort();
    }
    /// TLS may hold decrypted bytes while the socket is quiet: never waitable.
    fn waitable(&self) -> Option<&Tcp> {
        None
    }
}
