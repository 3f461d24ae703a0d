//! Deadlines kept by the engine that runs the task: an ordered map the loop
//! reads for its wait timeout, so arming or cancelling one is a map insert
//! or removal under an uncontended lock, never a syscall (async-io writes
//! its eventfd for every timer it arms). A deadline only wakes when it has
//! passed; the loop waits in whole milliseconds, rounded up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::engine::{self, lock, Engine};

/// A future that completes at `at`.
pub struct Sleep {
    at: Instant,
    armed: Option<(Arc<Engine>, u64)>,
}

impl Sleep {
    pub fn after(limit: Duration) -> Sleep {
        let now = Instant::now();
        let at = now
            .checked_add(limit)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        Sleep { at, armed: None }
    }

    fn disarm(&mut self) {
        if let Some((engine, id)) = self.armed.take() {
            lock(&engine.timers).map.remove(&(self.at, id));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.disarm();
            return Poll::Ready(());
        }
        let at = self.at;
        match &self.armed {
            Some((engine, id)) => {
                let mut timers = lock(&engine.timers);
                if let Some(w) = timers.map.get_mut(&(at, *id)) {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                } else {
                    // Fired meanwhile (the loop found it due): arm again.
                    let id = timers.insert(at, cx.waker().clone());
                    drop(timers);
                    let engine = Arc::clone(engine);
                    self.armed = Some((engine, id));
                }
            }
            None => {
                let engine = engine::home();
                let id = lock(&engine.timers).insert(at, cx.waker().clone());
                if !engine.is_current() {
                    // The loop may be asleep with a later timeout.
                    engine.notify();
                }
                self.armed = Some((Arc::clone(engine), id));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

pin_project_lite::pin_project! {
    /// `future`'s output, or `None` once `limit` has passed since it first
    /// had to wait (a future that is ready at once arms no deadline). Holds
    /// the future once: an `async fn` wrapper would keep it twice, as its
    /// argument and as the value it awaits.
    pub struct Deadline<F> {
        #[pin]
        future: F,
        limit: Duration,
        sleep: Option<Sleep>,
    }
}

impl<F> Deadline<F> {
    pub fn new(limit: Duration, future: F) -> Deadline<F> {
        Deadline {
            future,
            limit,
            sleep: None,
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Some(v));
        }
        let limit = *this.limit;
        let sleep = this.sleep.get_or_insert_with(|| Sleep::after(limit));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Deadline`] for I/O: an error of kind `TimedOut` when it runs out.
    pub struct Timeout<F> {
        #[pin]
        inner: Deadline<F>,
    }
}

impl<F> Timeout<F> {
    pub fn new(limit: Duration, future: F) -> Timeout<F> {
        Timeout {
            inner: Deadline::new(limit, future),
        }
    }
}

impl<T, F: Future<Output = std::io::Result<T>>> Future for Timeout<F> {
    type Output = std::io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll(cx) {
            Poll::Ready(Some(r)) => Poll::Ready(r),
            Poll::Ready(None) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "future timed out",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}
