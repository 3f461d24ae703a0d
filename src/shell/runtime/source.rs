//! A socket registered with an engine: what is known about its readiness,
//! and the tasks waiting for it.
//!
//! Registration is edge-triggered and lazy: a socket is added to its
//! engine's epoll set the first time an operation on it would block, so a
//! socket whose bytes are already there (a client's first request) costs
//! no `epoll_ctl` until it has to wait. After that, readiness is tracked
//! here: an operation that would block, or a read or write that moved fewer
//! bytes than asked (the kernel's buffer was drained or filled), marks its
//! direction not ready, and only an event marks it ready again. An
//! operation on a direction known not to be ready waits without a syscall.
//!
//! Each direction counts its events (`seq`); a task that saw an operation
//! block marks the direction not ready only if no event arrived since it
//! read the count, so an event between the syscall and the mark is never
//! lost, whichever thread dispatched it.

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use super::engine::{self, Engine};
pub use super::readiness::Direction;
use super::readiness::{lock, Readiness, Side, State};

/// An I/O object (a non-blocking socket) driven by an engine.
pub struct Async<T: AsFd> {
    io: T,
    state: Arc<Readiness>,
    /// The engine and key, once registered.
    home: OnceLock<(Arc<Engine>, u64)>,
}

impl<T: AsFd> std::fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async")
            .field("registered", &self.home.get().is_some())
            .finish()
    }
}

impl<T: AsFd> Async<T> {
    /// Wrap a socket already in non-blocking mode; nothing is registered yet.
    pub fn new_nonblocking(io: T) -> Async<T> {
        Async {
            io,
            state: Arc::new(Readiness(Mutex::new(State {
                read: Side::fresh(),
                write: Side::fresh(),
                urgent: false,
            }))),
            home: OnceLock::new(),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Register with this thread's engine (or the next worker) if not yet.
    fn register(&self) -> io::Result<()> {
        if self.home.get().is_some() {
            return Ok(());
        }
        let engine = engine::home();
        let key = lock(&engine.sources).insert(Arc::clone(&self.state));
        {
            // Edge-triggered ADD queues an event at once for whatever is
            // ready now (a connected socket with send room: writable), so
            // both directions start not ready and that event tells the truth.
            let mut st = lock(&self.state.0);
            st.read.ready = false;
            st.write.ready = false;
        }
        match engine.register(self.io.as_fd(), key) {
            Ok(()) => {
                if self.home.set((Arc::clone(engine), key)).is_err() {
                    // Registered concurrently by a clone on another thread
                    // (not done by the shell); keep the first.
                    lock(&engine.sources).remove(key);
                }
                Ok(())
            }
            Err(e) => {
                lock(&engine.sources).remove(key);
                Err(e)
            }
        }
    }

    /// Mark `dir` not ready if no event came since `seq` was read.
    fn clear(&self, dir: Direction, seq: u64) {
        let mut st = lock(&self.state.0);
        let side = Readiness::side(&mut st, dir);
        if side.seq == seq && !side.closed {
            side.ready = false;
        }
    }

    /// `(ready, seq)` of `dir`; a socket not yet registered is ready.
    fn peek(&self, dir: Direction) -> (bool, u64) {
        let mut st = lock(&self.state.0);
        let side = Readiness::side(&mut st, dir);
        (side.ready || self.home.get().is_none(), side.seq)
    }

    /// Run `op` unless `dir` is known not ready; when it would block, mark
    /// the direction not ready (registering the socket first, so the next
    /// edge is seen). Never waits.
    /// `short(&r)` as for [`poll_io`](Self::poll_io).
    pub fn try_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        loop {
            let (ready, seq) = self.peek(dir);
            if !ready {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.register()?;
                    self.clear(dir, seq);
                    Err(e)
                }
                Ok(r) => {
                    if short(&r) {
                        self.cleared_by_short(dir, seq);
                    }
                    Ok(r)
                }
                other => other,
            };
        }
    }

    /// An operation moved fewer bytes than asked: the kernel buffer was
    /// drained (read) or filled (write), so the direction is not ready,
    /// unless an event came meanwhile or urgent data makes a short read
    /// prove nothing.
    fn cleared_by_short(&self, dir: Direction, seq: u64) {
        if self.home.get().is_none() {
            return;
        }
        let mut st = lock(&self.state.0);
        let urgent = st.urgent;
        let side = Readiness::side(&mut st, dir);
        if side.seq == seq && !side.closed && !(dir == Direction::Read && urgent) {
            side.ready = false;
        }
    }

    /// [`try_io`](Self::try_io) as a poll: a blocked operation leaves the
    /// task's waker for the direction's next event. `short(&r)` says the
    /// operation moved fewer bytes than asked, which also marks the
    /// direction not ready (for reads, unless urgent data was signalled).
    pub fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
        short: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        loop {
            let seq = {
                let mut st = lock(&self.state.0);
                let registered = self.home.get().is_some();
                let side = Readiness::side(&mut st, dir);
                if registered && !side.ready {
                    side.wait(cx.waker());
                    return Poll::Pending;
                }
                side.seq
            };
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.register() {
                        return Poll::Ready(Err(e));
                    }
                    let mut st = lock(&self.state.0);
                    let side = Readiness::side(&mut st, dir);
                    if side.seq != seq {
                        continue; // an event arrived meanwhile: try again
                    }
                    if side.closed {
                        // EOF or an error was signalled yet the call would
                        // block (not seen from Linux): retry on the next
                        // turn rather than spin here or wait for an edge.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    side.ready = false;
                    side.wait(cx.waker());
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => {
                    if short(&r) {
                        self.cleared_by_short(dir, seq);
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Ready when `dir` may proceed (an event arrived since it was last
    /// found blocked, or nothing is known yet).
    pub fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = lock(&self.state.0);
        let registered = self.home.get().is_some();
        let side = Readiness::side(&mut st, dir);
        if !registered || side.ready {
            return Poll::Ready(Ok(()));
        }
        side.wait(cx.waker());
        Poll::Pending
    }

    /// An event signalled urgent (out-of-band) data.
    pub fn urgent(&self) -> bool {
        lock(&self.state.0).urgent
    }

    /// An event said the socket hung up or has an error pending (the
    /// direction's readiness is then sticky).
    pub fn broken(&self, dir: Direction) -> bool {
        let mut st = lock(&self.state.0);
        Readiness::side(&mut st, dir).closed
    }

    /// Wait until `dir` may proceed; registers the socket so that an
    /// event can say so.
    pub async fn ready(&self, dir: Direction) -> io::Result<()> {
        self.register()?;
        futures_lite::future::poll_fn(|cx| self.poll_ready(dir, cx)).await
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        // Closing the socket (dropping `io` next) removes it from the epoll
        // set; the key is retired so a late event finds nothing.
        if let Some((engine, key)) = self.home.get() {
            lock(&engine.sources).remove(*key);
        }
    }
}
