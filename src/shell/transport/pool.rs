//! Byte buffers lent to tunnels only while data moves, so an idle tunnel
//! costs no buffer memory. A few returned buffers are kept for reuse (no
//! allocate-and-zero per burst); the rest go back to the allocator.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Size of one buffer: large enough that a bulk transfer moves in few
/// syscalls, small enough that many concurrent bursts stay cheap.
pub const BUFFER: usize = 64 * 1024;

/// How many idle buffers the process keeps (1 MiB at most).
const KEEP: usize = 16;

/// A set of reusable buffers.
pub struct Pool {
    free: Mutex<Vec<Box<[u8]>>>,
    lent: AtomicUsize,
}

/// The process-wide pool the tunnels use.
pub static GLOBAL: Pool = Pool::new();

impl Pool {
    pub const fn new() -> Pool {
        Pool {
            free: Mutex::new(Vec::new()),
            lent: AtomicUsize::new(0),
        }
    }

    /// Borrow a buffer of [`BUFFER`] bytes; it returns to the pool on drop.
    pub fn take(&self) -> Lease<'_> {
        let reused = match self.free.lock() {
            Ok(mut free) => free.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        let buf = reused.unwrap_or_else(|| vec![0u8; BUFFER].into_boxed_slice());
        self.lent.fetch_add(1, Ordering::Relaxed);
        Lease {
            buf: Some(buf),
            pool: self,
        }
    }

    /// Buffers currently borrowed (for tests and diagnostics).
    pub fn lent(&self) -> usize {
        self.lent.load(Ordering::Relaxed)
    }

    /// Buffers kept for reuse.
    pub fn kept(&self) -> usize {
        match self.free.lock() {
            Ok(free) => free.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    fn give_back(&self, buf: Box<[u8]>) {
        self.lent.fetch_sub(1, Ordering::Relaxed);
        let mut free = match self.free.lock() {
            Ok(free) => free,
            Err(poisoned) => poisoned.into_inner(),
        };
        if free.len() < KEEP {
            free.push(buf);
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

/// A borrowed buffer; derefs to `[u8]` of [`BUFFER`] bytes.
pub struct Lease<'a> {
    buf: Option<Box<[u8]>>,
    pool: &'a Pool,
}

impl Deref for Lease<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or_default()
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give_back(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_counted_and_returned() {
        let pool = Pool::new();
        let a = pool.take();
        let b = pool.take();
        assert_eq!(a.len(), BUFFER);
        assert_eq!(pool.lent(), 2);
        drop(a);
        assert_eq!((pool.lent(), pool.kept()), (1, 1));
        drop(b);
        assert_eq!((pool.lent(), pool.kept()), (0, 2));
    }

    #[test]
    fn a_returned_buffer_is_reused_not_reallocated() {
        let pool = Pool::new();
        let mut a = pool.take();
        a[0] = 42;
        let first = a.as_ptr();
        drop(a);
        let b = pool.take();
        assert_eq!(b.as_ptr(), first);
        assert_eq!(
            b[0], 42,
            "reused buffers are not re-zeroed: callers only read what they wrote"
        );
    }

    #[test]
    fn at_most_keep_buffers_are_kept() {
        let pool = Pool::new();
        let leases: Vec<_> = (0..KEEP + 5).map(|_| pool.take()).collect();
        drop(leases);
        assert_eq!(pool.kept(), KEEP);
        assert_eq!(pool.lent(), 0);
    }
}
