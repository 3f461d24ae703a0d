//! The one place that names the async runtime.
//!
//! async-std is discontinued upstream (RUSTSEC-2025-0052). Everything the
//! shell needs from a runtime goes through this module — spawning, blocking
//! on the main thread, timers, channels, the few runtime-owned sockets and
//! the I/O extension traits — so that moving to another runtime changes
//! this module and nothing else. quinn keeps its runtimes behind
//! `runtime/mod.rs` the same way.
//!
//! The proxy's own tasks, sockets and deadlines run on [`engine`]s: one
//! worker thread per CPU, each driving its sockets' readiness from the loop
//! that runs its tasks (built on async-std's building blocks `async-task`
//! and `blocking`, with an edge-triggered epoll set of its own; why, with
//! measurements, in `docs/performance.md` and `docs/dependencies.md`).
//! async-std still provides the channels, the runtime-owned sockets below
//! (on async-io's reactor and its thread) and the I/O extension traits.

mod deadlines;
mod engine;
mod readiness;
mod source;
mod timer;

pub use source::{Async, Direction};
pub use timer::{Deadline, Sleep, Timeout};

use std::future::Future;
use std::io;
use std::time::Duration;

/// Channels between tasks (drain and stop signals, connection tracking).
pub use async_std::channel::{bounded, Receiver, Sender};
/// Read/write extension methods for the runtime's streams.
pub use async_std::io::{ReadExt, WriteExt};
/// Runtime-owned sockets: the DNS client's UDP/TCP and the metrics listener.
pub use async_std::net::{TcpListener, TcpStream, UdpSocket};
/// The stats socket's listener and its connections.
pub use async_std::os::unix::net::{UnixListener, UnixStream};
/// A handle to a spawned task; awaiting it yields the task's output.
/// Dropping it lets the task run on (as async-std's handle did).
pub struct JoinHandle<T>(Option<async_task::Task<T>>);

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match self.0.as_mut() {
            Some(task) => std::pin::Pin::new(task).poll(cx),
            // Only after Ready, which a caller does not poll past.
            None => std::task::Poll::Pending,
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.detach();
        }
    }
}

/// Run `future` as a task: on this thread's engine when called from a
/// task, else on the next worker in turn.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_on(engine::home(), future)
}

/// Run `future` on the next worker in turn (connections, spread over the
/// cores; with one worker this is the caller's own engine).
pub fn spawn_spread<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_on(engine::next_in_turn(), future)
}

fn spawn_on<F>(engine: &'static std::sync::Arc<engine::Engine>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (runnable, task) = async_task::Builder::new()
        .propagate_panic(true)
        .spawn(move |()| future, move |r| engine.schedule(r));
    runnable.schedule();
    JoinHandle(Some(task))
}

/// Run `future` to completion on the calling thread, which parks while it
/// waits (the workers run the tasks and sockets it waits for).
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}

/// Write a rendered log line: buffered on a worker until its loop is about
/// to wait (or 64 KiB are buffered), directly elsewhere.
pub fn write_log(line: &[u8]) {
    engine::write_log(line);
}

/// Write every worker's buffered log lines (before the process exits).
pub async fn flush_logs() {
    for engine in engine::pool() {
        let flushed = spawn_on(engine, async { engine::flush_log() });
        flushed.await;
    }
}

/// Wait for `duration`.
pub async fn sleep(duration: Duration) {
    Sleep::after(duration).await
}

/// Give `future` at most `limit`; an I/O error of kind `TimedOut` when it
/// runs out (the shape every socket step already returns).
pub fn timeout<T, F>(limit: Duration, future: F) -> Timeout<F>
where
    F: Future<Output = io::Result<T>>,
{
    Timeout::new(limit, future)
}

/// Give `future` at most `limit`; `None` when it runs out.
pub fn deadline<F: Future>(limit: Duration, future: F) -> Deadline<F> {
    Deadline::new(limit, future)
}

/// Run blocking `work` (getaddrinfo, reading an ACL file) on async-std's
/// blocking pool (the `blocking` crate), so no worker ever blocks.
pub fn spawn_blocking<F, T>(work: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    JoinHandle(Some(blocking::unblock(work)))
}

/// Copy everything `reader` yields into a sink, counting the bytes.
pub async fn discard<R>(reader: R) -> io::Result<u64>
where
    R: futures_lite::AsyncRead + Unpin,
{
    let mut reader = reader;
    async_std::io::copy(&mut reader, &mut async_std::io::sink()).await
}

#[cfg(test)]
mod tests;
