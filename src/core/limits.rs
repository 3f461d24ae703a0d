//! Load-limit arithmetic: the token bucket behind `--max-request-rate`, the
//! admission rule behind every concurrency cap, and the file-descriptor
//! budget check. Time is an argument (a monotonic offset from any fixed
//! origin the caller picks), so every rule here is testable without a clock.

use std::fmt;
use std::time::Duration;

use crate::core::reply::{self, Reply};

/// A token bucket: `burst` tokens at most, refilled at `rate` per second.
/// It starts full, so a quiet proxy accepts a burst at once.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// `rate` must be positive and finite to ever refill; anything else
    /// (which the config layer refuses) gives a bucket that only drains.
    /// A `burst` of 0 is read as 1: a bucket that can never hold a token
    /// would refuse everything.
    pub fn new(rate: f64, burst: u32, now: Duration) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Refill for the time since the last call. A `now` earlier than the
    /// last one (never from a monotonic clock) adds nothing.
    fn refill(&mut self, now: Duration) {
        if now > self.last {
            let elapsed = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Take one token if there is one: `true` admits the request.
    pub fn try_take(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Tokens available at `now` (for tests and diagnostics).
    pub fn available(&self, now: Duration) -> f64 {
        let mut copy = self.clone();
        copy.refill(now);
        copy.tokens
    }
}

/// Whether one more may start when `in_use` are running under `limit`
/// (`None`: no limit).
pub fn admit(in_use: usize, limit: Option<usize>) -> bool {
    match limit {
        None => true,
        Some(max) => in_use < max,
    }
}

/// Which limit turned a request or connection away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitRefusal {
    /// `--max-request-rate` / `--max-request-burst`: 429.
    RateLimited,
    /// `--max-concurrent-requests`: 503.
    Overloaded,
    /// `--max-concurrent-connect-tunnels`: 429.
    TooManyTunnels,
    /// `--max-connections`: 503 and close, before any byte is read.
    TooManyConnections,
}

impl LimitRefusal {
    /// The answer (Smokescreen's texts, each with `Retry-After: 1`).
    pub fn reply(self) -> Reply {
        match self {
            LimitRefusal::RateLimited => reply::rate_limited(),
            LimitRefusal::Overloaded | LimitRefusal::TooManyConnections => reply::overloaded(),
            LimitRefusal::TooManyTunnels => reply::too_many_tunnels(),
        }
    }

    /// The setting's config-file key, for the log line.
    pub fn setting(self) -> &'static str {
        match self {
            LimitRefusal::RateLimited => "max_request_rate",
            LimitRefusal::Overloaded => "max_concurrent_requests",
            LimitRefusal::TooManyTunnels => "max_concurrent_connect_tunnels",
            LimitRefusal::TooManyConnections => "max_connections",
        }
    }
}

impl fmt::Display for LimitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitRefusal::RateLimited => "request rate limit exceeded",
            LimitRefusal::Overloaded => "too many concurrent requests",
            LimitRefusal::TooManyTunnels => "too many concurrent CONNECT tunnels",
            LimitRefusal::TooManyConnections => "too many open client connections",
        })
    }
}

/// File descriptors kept aside for the listener, logs, signals, DNS and
/// the runtime itself.
pub const FD_RESERVE: u64 = 64;

/// Each client connection can hold two descriptors (itself and its
/// upstream), so `--max-connections N` needs `2N + FD_RESERVE` of them.
pub fn fds_needed(max_connections: usize) -> u64 {
    u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        .saturating_add(FD_RESERVE)
}

/// How many connections `nofile` descriptors can hold (the inverse of
/// [`fds_needed`]).
pub fn connections_fitting(nofile: u64) -> u64 {
    nofile.saturating_sub(FD_RESERVE) / 2
}

/// The warning to log at start when the open-files limit cannot hold
/// `max_connections`: the cap would never be reached and `accept` would hit
/// EMFILE first (which the listener survives, but clients then wait in the
/// backlog instead of getting a prompt 503). The shell has already raised
/// the soft limit to the hard one (as Go does), so `soft` is below `hard`
/// only when that failed; the text names the hard limit, the only one an
/// operator has to change.
pub fn fd_budget_warning(max_connections: usize, soft: u64, hard: u64) -> Option<String> {
    let needed = fds_needed(max_connections);
    (needed > soft).then(|| {
        let fits = connections_fitting(soft);
        format!(
            "the open-files limit (soft {soft}, hard {hard}) is below what --max-connections {max_connections} needs ({needed}); {fits} connections fit; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=, docker --ulimit nofile=) or lower --max-connections"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_starts_full_then_refills_at_the_rate() {
        let mut b = TokenBucket::new(2.0, 3, ms(0));
        assert!(b.try_take(ms(0)));
        assert!(b.try_take(ms(0)));
        assert!(b.try_take(ms(0)));
        assert!(!b.try_take(ms(0)), "burst of 3 exhausted");
        // 2 per second: one token every 500 ms.
        assert!(!b.try_take(ms(499)));
        assert!(b.try_take(ms(500)));
        assert!(!b.try_take(ms(600)));
        // A long pause refills only up to the burst.
        assert!((b.available(ms(100_000)) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn bucket_ignores_time_going_backwards_and_bad_rates() {
        let mut b = TokenBucket::new(1.0, 1, ms(1000));
        assert!(b.try_take(ms(1000)));
        assert!(!b.try_take(ms(10)), "earlier now adds nothing");
        assert!(b.try_take(ms(2000)));
        let mut never = TokenBucket::new(f64::NAN, 0, ms(0));
        assert!(never.try_take(ms(0)), "burst 0 is read as 1");
        assert!(!never.try_take(ms(1_000_000)), "a NaN rate never refills");
    }

    #[test]
    fn admit_respects_the_limit() {
        assert!(admit(0, Some(1)));
        assert!(!admit(1, Some(1)));
        assert!(!admit(0, Some(0)));
        assert!(admit(usize::MAX, None));
    }

    #[test]
    fn refusals_use_smokescreen_answers() {
        let text = |r: LimitRefusal| String::from_utf8(r.reply().to_bytes()).unwrap();
        let rate = text(LimitRefusal::RateLimited);
        assert!(rate.starts_with("HTTP/1.1 429 "));
        assert!(rate.contains("\r\nRetry-After: 1\r\n"));
        assert!(rate.ends_with("Proxy rate limit exceeded. Please retry later.\n"));
        let busy = text(LimitRefusal::Overloaded);
        assert!(busy.starts_with("HTTP/1.1 503 "));
        assert!(busy.ends_with("Proxy overloaded. Please retry later.\n"));
        assert_eq!(text(LimitRefusal::TooManyConnections), busy);
        let tunnels = text(LimitRefusal::TooManyTunnels);
        assert!(tunnels.starts_with("HTTP/1.1 429 "));
        assert!(tunnels.ends_with("maximum concurrent connect tunnels exceeded\n"));
        assert_eq!(
            LimitRefusal::TooManyTunnels.setting(),
            "max_concurrent_connect_tunnels"
        );
    }

    #[test]
    fn fd_budget() {
        assert_eq!(fds_needed(10_000), 20_064);
        let warning = fd_budget_warning(10_000, 4096, 4096).unwrap();
        assert!(
            warning.contains("open-files limit (soft 4096, hard 4096)")
                && warning.contains("needs (20064); 2016 connections fit"),
            "{warning}"
        );
        assert_eq!(fd_budget_warning(10_000, 20_064, 20_064), None);
        assert_eq!(fd_budget_warning(10_000, 1 << 20, 1 << 20), None);
        assert_eq!(fds_needed(usize::MAX), u64::MAX);
        assert_eq!(connections_fitting(fds_needed(10_000)), 10_000);
        assert_eq!(connections_fitting(10), 0);
    }

    proptest! {
        /// Over any window, admissions never exceed burst + rate × elapsed.
        #[test]
        fn bucket_never_admits_more_than_burst_plus_refill(
            rate in 0.1f64..1000.0,
            burst in 1u32..100,
            steps in proptest::collection::vec(0u64..2000, 1..200),
        ) {
            let mut b = TokenBucket::new(rate, burst, ms(0));
            let mut now = 0u64;
            let mut admitted = 0u64;
            for step in steps {
                now += step;
                if b.try_take(ms(now)) {
                    admitted += 1;
                }
            }
            let bound = f64::from(burst) + rate * (now as f64 / 1000.0);
            prop_assert!(admitted as f64 <= bound + 1e-6, "{} > {}", admitted, bound);
        }

        /// A bucket that was quiet for at least burst/rate seconds admits a full burst.
        #[test]
        fn quiet_bucket_admits_a_full_burst(rate in 0.1f64..1000.0, burst in 1u32..50) {
            let mut b = TokenBucket::new(rate, burst, ms(0));
            for _ in 0..burst { prop_assert!(b.try_take(ms(0))); }
            prop_assert!(!b.try_take(ms(0)));
            let later = Duration::from_secs_f64(f64::from(burst) / rate) + ms(1);
            for _ in 0..burst { prop_assert!(b.try_take(later)); }
            prop_assert!(!b.try_take(later));
        }

        /// `connections_fitting` is the largest count `fds_needed` fits in.
        #[test]
        fn connections_fitting_inverts_fds_needed(nofile in 0u64..10_000_000) {
            let fits = connections_fitting(nofile);
            prop_assert!(nofile < FD_RESERVE || fds_needed(fits as usize) <= nofile);
            prop_assert!(fds_needed(fits as usize + 1) > nofile);
        }
    }
}
