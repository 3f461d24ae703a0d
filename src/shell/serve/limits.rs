//! Wiring for the load limits: the shell owns the clock and the counters;
//! the arithmetic and the answers are `core::limits`.
//!
//! A request holds a [`Permit`] from its head until its answer is written
//! (for CONNECT: until the tunnel is established); a tunnel holds one until
//! it closes. Dropping a permit gives the slot back, so no error path can
//! leak one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::core::limits::{admit, fd_budget_warning, LimitRefusal, TokenBucket};
use crate::core::record::Level;
use crate::shell::observe::logging::{self, emit};
use crate::shell::transport::io::write_all;

/// The configured limits (`None`: no limit), as plain values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LimitSettings {
    pub max_concurrent_requests: Option<usize>,
    /// (requests per second, burst).
    pub max_request_rate: Option<(f64, u32)>,
    pub max_concurrent_connect_tunnels: Option<usize>,
}

/// Live counters and the rate bucket.
#[derive(Debug)]
pub struct Limiter {
    settings: LimitSettings,
    epoch: Instant,
    bucket: Option<Mutex<TokenBucket>>,
    requests: AtomicUsize,
    tunnels: AtomicUsize,
}

/// One slot of a counter; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit<'a> {
    counter: &'a AtomicUsize,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Take a slot if `admit` says there is one (atomically: two racing
/// requests cannot both take the last slot).
fn acquire(counter: &AtomicUsize, limit: Option<usize>) -> Option<Permit<'_>> {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            admit(n, limit).then(|| n.saturating_add(1))
        })
        .ok()
        .map(|_| Permit { counter })
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Limiter {
        let epoch = Instant::now();
        let bucket = settings
            .max_request_rate
            .map(|(rate, burst)| Mutex::new(TokenBucket::new(rate, burst, epoch.elapsed())));
        Limiter {
            settings,
            epoch,
            bucket,
            requests: AtomicUsize::new(0),
            tunnels: AtomicUsize::new(0),
        }
    }

    /// Admit one request: the rate first (a refused request costs nothing
    /// else), then the concurrency cap.
    pub fn admit_request(&self) -> Result<Permit<'_>, LimitRefusal> {
        if let Some(bucket) = &self.bucket {
            let now = self.epoch.elapsed();
            let taken = match bucket.lock() {
                Ok(mut b) => b.try_take(now),
                Err(poisoned) => poisoned.into_inner().try_take(now),
            };
            if !taken {
                return Err(LimitRefusal::RateLimited);
            }
        }
        acquire(&self.requests, self.settings.max_concurrent_requests)
            .ok_or(LimitRefusal::Overloaded)
    }

    /// Admit one CONNECT tunnel (checked before the decision, so a client
    /// over the cap never gets a 200).
    pub fn admit_tunnel(&self) -> Result<Permit<'_>, LimitRefusal> {
        acquire(&self.tunnels, self.settings.max_concurrent_connect_tunnels)
            .ok_or(LimitRefusal::TooManyTunnels)
    }

    /// Requests in progress now.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }

    /// Open CONNECT tunnels now.
    pub fn open_tunnels(&self) -> usize {
        self.tunnels.load(Ordering::Acquire)
    }
}

/// Answer a refused request, log why, and let the caller close.
pub async fn refuse<S: crate::shell::front::stream::Endpoint + ?Sized>(
    stream: &S,
    peer: SocketAddr,
    requested_host: Option<&str>,
    refusal: LimitRefusal,
) {
    crate::shell::observe::metrics::get().limited(refusal);
    let reply = refusal.reply();
    let _ = write_all(stream, &reply.to_bytes()).await;
    let mut line = logging::line(Level::Warning, "request refused by a proxy limit")
        .with("error", refusal.to_string())
        .with("limit", refusal.setting())
        .with("source_addr", peer.to_string())
        .with("status", reply.status);
    if let Some(host) = requested_host {
        line = line.with("requested_host", host);
    }
    emit(&line);
}

/// At start: raise the soft open-files limit to the hard one (what Go's
/// runtime does for Smokescreen), then warn only if what is left cannot
/// hold `--max-connections`.
pub fn raise_open_files_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    // `None` is "unlimited": nothing to raise, nothing to warn about.
    let (Some(soft), Some(hard)) = (before.current, before.maximum) else {
        return;
    };
    let mut soft = soft;
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => soft = hard,
            Err(e) => emit(
                &logging::line(Level::Warning, "could not raise the open-files limit")
                    .with("error", e.to_string())
                    .with("soft", soft)
                    .with("hard", hard),
            ),
        }
    }
    if let Some(warning) = fd_budget_warning(max_connections, soft, hard) {
        emit(&logging::line(Level::Warning, warning));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_and_returned_on_drop() {
        let l = Limiter::new(LimitSettings {
            max_concurrent_requests: Some(2),
            max_request_rate: None,
            max_concurrent_connect_tunnels: Some(1),
        });
        let a = l.admit_request().unwrap();
        let b = l.admit_request().unwrap();
        assert_eq!(l.admit_request().unwrap_err(), LimitRefusal::Overloaded);
        assert_eq!(l.requests_in_flight(), 2);
        drop(a);
        let c = l.admit_request().unwrap();
        drop((b, c));
        assert_eq!(l.requests_in_flight(), 0);
        let t = l.admit_tunnel().unwrap();
        assert_eq!(l.admit_tunnel().unwrap_err(), LimitRefusal::TooManyTunnels);
        drop(t);
        assert!(l.admit_tunnel().is_ok());
        assert_eq!(l.open_tunnels(), 0);
    }

    #[test]
    fn rate_is_checked_before_concurrency() {
        let l = Limiter::new(LimitSettings {
            max_concurrent_requests: None,
            // One per thousand seconds: the second request in this test is refused.
            max_request_rate: Some((0.001, 1)),
            max_concurrent_connect_tunnels: None,
        });
        let first = l.admit_request();
        assert!(first.is_ok());
        assert_eq!(l.admit_request().unwrap_err(), LimitRefusal::RateLimited);
    }

    #[test]
    fn no_limits_admit_everything() {
        let l = Limiter::new(LimitSettings::default());
        let permits: Vec<_> = (0..1000).map(|_| l.admit_request().unwrap()).collect();
        assert_eq!(l.requests_in_flight(), 1000);
        drop(permits);
        assert_eq!(l.requests_in_flight(), 0);
    }
}
