//! The one place that names the async runtime.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052). Everything the
//! shell needs from a runtime goes through this module — spawning, blocking
//! on the main thread, timers, channels, the few runtime-owned sockets and
//! the I/O extension traits — so that moving to another runtime (or to
//! async-std's own building blocks, async-executor and async-io, as
//! `transport::net` already does for proxy sockets) changes this file and
//! nothing else. quinn keeps its runtimes behind `runtime/mod.rs` the same
//! way.

use std::future::Future;
use std::io;
use std::time::Duration;

/// Channels between tasks (drain and stop signals, connection tracking).
pub use async_std::channel::{bounded, Receiver, Sender};
/// Read/write extension methods for the runtime's streams.
pub use async_std::io::{ReadExt, WriteExt};
/// Runtime-owned sockets: the DNS client's UDP/TCP and the metrics listener.
pub use async_std::net::{TcpListener, TcpStream, UdpSocket};
/// The signal self-pipe, read as a stream; the stats socket's listener.
pub use async_std::os::unix::net::{UnixListener, UnixStream};
/// A handle to a spawned task; awaiting it yields the task's output.
pub use async_std::task::JoinHandle;

/// Run `future` as a task on the runtime's executor.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    async_std::task::spawn(future)
}

/// Run `future` to completion on the calling thread (the runtime's own
/// `block_on`, which also drives its reactor there; tests and tools use it).
pub fn block_on<F: Future>(future: F) -> F::Output {
    async_std::task::block_on(future)
}

/// Wait for `duration`.
pub async fn sleep(duration: Duration) {
    async_std::task::sleep(duration).await
}

/// Give `future` at most `limit`; an I/O error of kind `TimedOut` when it
/// runs out (the shape every socket step already returns).
pub async fn timeout<T, F>(limit: Duration, future: F) -> io::Result<T>
where
    F: Future<Output = io::Result<T>>,
{
    async_std::io::timeout(limit, future).await
}

/// Give `future` at most `limit`; `None` when it runs out.
pub async fn deadline<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    async_std::future::timeout(limit, future).await.ok()
}

/// Run blocking `work` (getaddrinfo) on the runtime's blocking pool, so the
/// executor never blocks.
pub fn spawn_blocking<F, T>(work: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    async_std::task::spawn_blocking(work)
}

/// Copy everything `reader` yields into a sink, counting the bytes.
pub async fn discard<R>(reader: R) -> io::Result<u64>
where
    R: futures_lite::AsyncRead + Unpin,
{
    let mut reader = reader;
    async_std::io::copy(&mut reader, &mut async_std::io::sink()).await
}
