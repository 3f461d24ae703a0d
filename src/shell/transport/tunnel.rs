//! A CONNECT tunnel: bytes both ways, nothing lost or reordered, half-close
//! propagated (a FIN one way leaves the other way open), an idle timeout over
//! both directions, and a forced stop for the end of a graceful drain.
//!
//! Memory: an idle tunnel holds no data buffer. Each direction waits on the
//! reactor for readability, borrows a buffer from the shared
//! [`pool`](crate::shell::transport::pool) only while bytes move, and gives it back as
//! soon as a read finds nothing more. A TLS client keeps its buffer
//! (decrypted bytes may wait in memory while the socket is quiet).
//!
//! Bulk: a direction between two plain TCP sockets whose read fills the
//! pool buffer continues with [`splice`](crate::shell::transport::splice), in the
//! kernel, until its EOF.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::shell::runtime::{self, ReadExt as _, WriteExt as _};
use crate::shell::transport::net::Tcp;
use futures_lite::future;

use crate::core::time::Timestamp;
use crate::shell::transport::budget::Budget;
use crate::shell::transport::endpoint::{close_write, Endpoint, Io};
use crate::shell::transport::pool::Pool;
use crate::shell::transport::splice::{self, Fault, Pipe, Relayed};

/// What a tunnel did, for the CN-CLOSE record.
#[derive(Debug)]
pub struct TunnelStats {
    /// Bytes from the destination to the client.
    pub bytes_in: u64,
    /// Bytes from the client to the destination (including eager bytes).
    pub bytes_out: u64,
    pub last_activity: Timestamp,
    /// Of all bytes, those moved by `splice(2)` (bulk plain-TCP streams).
    pub spliced: u64,
    /// `None` when both directions ended with a clean EOF.
    pub error: Option<TunnelError>,
}

/// Why a tunnel ended other than by two clean EOFs. The texts are the
/// CN-CLOSE record's `error` field.
#[derive(Debug)]
pub enum TunnelError {
    /// Writing the bytes that came with the CONNECT head failed.
    Eager(std::io::Error),
    /// A read from one end failed.
    Read(Side, std::io::Error),
    /// A write to one end failed (`Side` is the end read from).
    Write(Side, std::io::Error),
    IdleTimeout(Duration),
    ShuttingDown,
    /// An intercepted tunnel (`shell::mitm`) ended for this reason.
    Intercepted(String),
}

impl std::fmt::Display for TunnelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelError::Eager(e) => write!(f, "write to destination: {e}"),
            TunnelError::Read(side, e) => write!(f, "read from {}: {e}", side.source()),
            TunnelError::Write(side, e) => write!(f, "write to {}: {e}", side.sink()),
            TunnelError::IdleTimeout(limit) => write!(f, "idle timeout after {limit:?}"),
            TunnelError::ShuttingDown => f.write_str("proxy shutting down"),
            TunnelError::Intercepted(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for TunnelError {}

/// When bytes last moved, as nanoseconds since `start` (one relaxed store
/// per chunk; the wall-clock time is derived once, at the end).
struct Activity {
    start: Instant,
    last_ns: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ns: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_ns.store(ns, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_nanos(self.last_ns.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Wall-clock time of the last byte: now minus how long ago it was.
    fn last_wall(&self) -> Timestamp {
        let then = SystemTime::now()
            .checked_sub(self.idle_for())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match then.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => Timestamp::new(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(_) => Timestamp::new(0, 0),
        }
    }
}

/// A running tunnel's byte counts and last activity, readable while it
/// runs (the stats socket lists them).
pub struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    spliced: AtomicU64,
    activity: Activity,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            spliced: AtomicU64::new(0),
            activity: Activity::new(),
        }
    }
}

impl Counters {
    /// Bytes from the destination so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes to the destination so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Time since bytes last moved (or since the tunnel started).
    pub fn idle_for(&self) -> Duration {
        self.activity.idle_for()
    }
}

/// Move bytes until both directions are closed, an error, the idle timeout,
/// or `stop` resolves. `eager` are bytes the client sent right after the
/// CONNECT head; they are written upstream first. `counters` move as bytes do;
/// buffers come from `pool` (`pool::GLOBAL` in the proxy).
pub async fn run<C: Endpoint>(
    pool: &Pool,
    client: C,
    upstream: Tcp,
    eager: Vec<u8>,
    idle: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
    counters: &Counters,
) -> TunnelStats {
    let Counters {
        bytes_in,
        bytes_out,
        spliced,
        activity,
    } = counters;

    let both = async {
        if !eager.is_empty() {
            let mut w = &upstream;
            if let Err(e) = w.write_all(&eager).await {
                return Ended::Failed(TunnelError::Eager(e));
            }
            bytes_out.fetch_add(eager.len() as u64, Ordering::Relaxed);
        }
        // The head buffer the eager bytes came in is not kept for the tunnel's life.
        drop(eager);
        // When one direction fails, close everything so the other wakes up.
        let fail_both = |r: Result<(), TunnelError>| {
            if r.is_err() {
                abort(&client, &upstream);
            }
            r
        };
        let one_done = AtomicBool::new(false);
        let up = async {
            let flow = Flow::new(Side::Client, bytes_out, spliced, activity, &one_done);
            fail_both(pump(pool, &client, &upstream, &flow).await)
        };
        let down = async {
            let flow = Flow::new(Side::Destination, bytes_in, spliced, activity, &one_done);
            fail_both(pump(pool, &upstream, &client, &flow).await)
        };
        match future::zip(up, down).await {
            (Err(e), _) | (_, Err(e)) => Ended::Failed(e),
            _ => Ended::Clean,
        }
    };
    // One timer per tunnel (not one per read): it sleeps until the idle limit
    // could first be reached, then re-checks against the last activity.
    let watchdog = async {
        let Some(limit) = idle else {
            return future::pending::<Ended>().await;
        };
        loop {
            let idle_for = activity.idle_for();
            if idle_for >= limit {
                return Ended::Failed(TunnelError::IdleTimeout(limit));
            }
            runtime::sleep(limit - idle_for).await;
        }
    };
    let stopped = async {
        stop.await;
        Ended::Failed(TunnelError::ShuttingDown)
    };
    let error = match future::or(both, future::or(watchdog, stopped)).await {
        // Both directions already passed their EOF on: nothing left to close.
        Ended::Clean => None,
        Ended::Failed(e) => {
            abort(&client, &upstream);
            Some(e)
        }
    };
    TunnelStats {
        bytes_in: bytes_in.load(Ordering::Relaxed),
        bytes_out: bytes_out.load(Ordering::Relaxed),
        spliced: spliced.load(Ordering::Relaxed),
        last_activity: activity.last_wall(),
        error,
    }
}

/// How the tunnel ended: both EOFs passed on, or why not.
enum Ended {
    Clean,
    Failed(TunnelError),
}

fn abort(a: &impl Endpoint, b: &Tcp) {
    a.abort();
    b.abort();
}

/// Which end a pump reads from, for error texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Destination,
}

impl Side {
    fn source(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Destination => "destination",
        }
    }

    fn sink(self) -> &'static str {
        match self {
            Side::Client => "destination",
            Side::Destination => "client",
        }
    }
}

/// What one direction reports: its byte counter, the tunnel's spliced-byte
/// counter and last activity, and which end it reads from (error texts).
struct Flow<'a> {
    side: Side,
    moved: &'a AtomicU64,
    spliced: &'a AtomicU64,
    activity: &'a Activity,
    /// Set by the first direction to pass its EOF on.
    one_done: &'a AtomicBool,
}

impl<'a> Flow<'a> {
    fn new(
        side: Side,
        moved: &'a AtomicU64,
        spliced: &'a AtomicU64,
        activity: &'a Activity,
        one_done: &'a AtomicBool,
    ) -> Self {
        Flow {
            side,
            moved,
            spliced,
            activity,
            one_done,
        }
    }

    /// This direction read its source's EOF: half-close the sink. When the
    /// other direction already ended, the sink's own EOF was read and the
    /// tunnel is about to close both sockets, whose close sends the FIN
    /// of a plain TCP sink anyway (one `shutdown` fewer per tunnel); a TLS
    /// sink still gets its close_notify.
    async fn pass_eof<T: Endpoint + ?Sized>(&self, to: &T) {
        let last = self.one_done.swap(true, Ordering::AcqRel);
        if !(last && to.waitable().is_some()) {
            close_write(to).await;
        }
    }

    /// `n` bytes reached the other end (`by_splice`: without our memory).
    fn delivered(&self, n: usize, by_splice: bool) {
        self.moved.fetch_add(n as u64, Ordering::Relaxed);
        if by_splice {
            self.spliced.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.activity.touch();
    }

    fn read_err(&self, e: std::io::Error) -> TunnelError {
        TunnelError::Read(self.side, e)
    }

    fn write_err(&self, e: std::io::Error) -> TunnelError {
        TunnelError::Write(self.side, e)
    }
}

/// One direction: read until EOF, write everything, then pass the EOF on.
async fn pump<F: Endpoint, T: Endpoint>(
    pool: &Pool,
    from: &F,
    to: &T,
    flow: &Flow<'_>,
) -> Result<(), TunnelError> {
    let read_err = |e| flow.read_err(e);
    let write_err = |e| flow.write_err(e);
    let (mut r, mut w) = (Io(from), Io(to));
    let waitable = from.waitable();
    // Both ends plain TCP: a bulk stream may move by splice(2) instead.
    let mut spliceable = waitable.zip(to.waitable());
    loop {
        if let Some(tcp) = waitable {
            // Wait for bytes (or EOF, or an error) without holding a buffer.
            tcp.readable().await.map_err(read_err)?;
        }
        let mut buf = pool.take();
        // Keep the buffer while bytes keep coming; plain TCP gives it back
        // (and waits again) as soon as a read finds nothing there.
        let mut budget = Budget::default();
        loop {
            budget.spend().await;
            let n = match waitable {
                Some(tcp) => match tcp.try_read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(read_err(e)),
                },
                None => r.read(&mut buf).await.map_err(read_err)?,
            };
            if n == 0 {
                // Half-close: the peer finished sending; tell the other side, keep the reverse open.
                flow.pass_eof(to).await;
                return Ok(());
            }
            let chunk = buf.get(..n).unwrap_or_default();
            w.write_all(chunk).await.map_err(write_err)?;
            // TLS may hold records until flushed; plain TCP flush is free.
            w.flush().await.map_err(write_err)?;
            flow.delivered(n, false);
            if n == buf.len() {
                if let Some((src, dst)) = spliceable.filter(|(src, _)| !src.urgent()) {
                    // A full buffer: bulk data. Move the rest in the kernel.
                    if let Ok(pipe) = Pipe::new() {
                        // Boxed: only bulk directions pay for the relay's state.
                        match Box::pin(splice_rest(&pipe, src, dst, flow)).await {
                            Some(ended) => return ended,
                            // Urgent data: splice stops at its mark, reads
                            // do not; copy the rest of this direction.
                            None => spliceable = None,
                        }
                    }
                }
            }
        }
    }
}

/// The rest of a plain TCP direction by `splice(2)`, then the half-close;
/// `None` when urgent data stopped the relay (its pipe emptied) and the
/// direction must go on by copying.
async fn splice_rest(
    pipe: &Pipe,
    from: &Tcp,
    to: &Tcp,
    flow: &Flow<'_>,
) -> Option<Result<(), TunnelError>> {
    Some(
        match splice::relay(pipe, from, to, |n| flow.delivered(n, true)).await {
            Ok(Relayed::Eof) => {
                flow.pass_eof(to).await;
                Ok(())
            }
            Ok(Relayed::Urgent) => return None,
            Err(Fault::Read(e)) => Err(flow.read_err(e)),
            Err(Fault::Write(e)) => Err(flow.write_err(e)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::transport::net::pair;
    use crate::shell::transport::pool;
    use std::net::Shutdown;

    fn payload(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// Write `data`, half-close, and collect everything read back until EOF.
    async fn send_and_collect(s: Tcp, data: Vec<u8>) -> Vec<u8> {
        let writer = {
            let s = s.clone();
            async move {
                let mut w = &s;
                w.write_all(&data).await.unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            }
        };
        let reader = async {
            let mut got = Vec::new();
            let mut r = &s;
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        future::zip(writer, reader).await.1
    }

    /// A tunnel with no eager bytes and buffers from the global pool.
    fn run_fresh<'a>(
        client: Tcp,
        dest: Tcp,
        idle: Option<Duration>,
        stop: impl std::future::Future<Output = ()> + 'a,
        counters: &'a Counters,
    ) -> impl std::future::Future<Output = TunnelStats> + 'a {
        run(
            &pool::GLOBAL,
            client,
            dest,
            Vec::new(),
            idle,
            stop,
            counters,
        )
    }

    /// Run a plain tunnel where the client sends `eager` then `up` and the
    /// destination sends `down`, each side half-closing when done; check
    /// that every byte arrived in order and the counters agree.
    async fn cross(eager: &[u8], up: &[u8], down: &[u8]) -> TunnelStats {
        let (client_outer, client_inner) = pair().await;
        let (dest_inner, dest_outer) = pair().await;
        let counters = Counters::default();
        let tunnel = run(
            &pool::GLOBAL,
            client_inner,
            dest_inner,
            eager.to_vec(),
            Some(Duration::from_secs(60)),
            future::pending(),
            &counters,
        );
        let client = send_and_collect(client_outer, up.to_vec());
        let dest = send_and_collect(dest_outer, down.to_vec());
        let (stats, (at_client, at_dest)) = future::zip(tunnel, future::zip(client, dest)).await;
        let expected_up = [eager, up].concat();
        assert!(at_dest == expected_up, "client→destination bytes differ");
        assert!(at_client == down, "destination→client bytes differ");
        assert_eq!(stats.bytes_out, expected_up.len() as u64);
        assert_eq!(stats.bytes_in, down.len() as u64);
        // The live counters (the stats socket's view) say the same.
        assert_eq!(
            (counters.bytes_in(), counters.bytes_out()),
            (stats.bytes_in, stats.bytes_out)
        );
        assert!(stats.error.is_none(), "{:?}", stats.error);
        stats
    }

    #[test]
    fn bytes_cross_both_ways_exactly_with_eager_bytes_and_half_close() {
        runtime::block_on(async {
            let up = payload(3 * pool::BUFFER + 17, 1);
            let down = payload(5 * pool::BUFFER + 3, 2);
            cross(b"eager-bytes", &up, &down).await;
        });
    }

    #[test]
    fn bulk_streams_are_spliced_both_ways_and_arrive_exactly() {
        runtime::block_on(async {
            // Far more than the socket buffers hold: the pipes fill and the
            // relay has to wait for the receivers again and again.
            let up = payload(24 << 20, 3);
            let down = payload((16 << 20) + 5, 4);
            let stats = cross(b"", &up, &down).await;
            let total = (up.len() + down.len()) as u64;
            assert!(
                stats.spliced > total / 2,
                "bulk bytes were copied, not spliced: {} of {total}",
                stats.spliced
            );
        });
    }

    #[test]
    fn urgent_data_in_a_spliced_direction_loses_no_byte_behind_it() {
        runtime::block_on(async {
            let (client_outer, client_inner) = pair().await;
            let (dest_inner, dest_outer) = pair().await;
            let bulk = payload(3 << 20, 9);
            let counters = Counters::default();
            let tunnel = run_fresh(
                client_inner,
                dest_inner,
                Some(Duration::from_secs(60)),
                future::pending(),
                &counters,
            );
            let exercise = async {
                let (mut c, mut d) = (&client_outer, &dest_outer);
                let send = async {
                    c.write_all(&bulk).await.unwrap();
                    // One urgent byte (not part of the stream without
                    // SO_OOBINLINE), then bytes behind its mark, then EOF.
                    rustix::net::send(&client_outer, b"!", rustix::net::SendFlags::OOB).unwrap();
                    c.write_all(b"after the urgent mark").await.unwrap();
                    client_outer.shutdown(Shutdown::Write).unwrap();
                };
                let mut got = Vec::new();
                let recv = d.read_to_end(&mut got);
                let (_, n) = future::zip(send, recv).await;
                n.unwrap();
                let mut want = bulk.clone();
                want.extend_from_slice(b"after the urgent mark");
                assert!(got == want, "{} bytes of {} arrived", got.len(), want.len());
                dest_outer.shutdown(Shutdown::Write).unwrap();
            };
            let (stats, ()) = future::zip(tunnel, exercise).await;
            assert!(stats.spliced > 0, "the bulk direction was not spliced");
            assert!(stats.error.is_none(), "{:?}", stats.error);
        });
    }

    #[test]
    fn a_spliced_direction_passes_its_eof_on_while_the_other_stays_open() {
        runtime::block_on(async {
            let (client_outer, client_inner) = pair().await;
            let (dest_inner, dest_outer) = pair().await;
            let up = payload(4 << 20, 5);
            let counters = Counters::default();
            let tunnel = run_fresh(
                client_inner,
                dest_inner,
                Some(Duration::from_secs(60)),
                future::pending(),
                &counters,
            );
            let exercise = async {
                let (mut c, mut d) = (&client_outer, &dest_outer);
                let send = async {
                    c.write_all(&up).await.unwrap();
                    client_outer.shutdown(Shutdown::Write).unwrap();
                };
                let mut got = Vec::new();
                let recv = d.read_to_end(&mut got);
                let (_, n) = future::zip(send, recv).await;
                n.unwrap();
                assert!(got == up, "client→destination bytes differ");
                // The destination still answers after the client's EOF.
                d.write_all(b"late answer").await.unwrap();
                dest_outer.shutdown(Shutdown::Write).unwrap();
                let mut answer = Vec::new();
                c.read_to_end(&mut answer).await.unwrap();
                assert_eq!(answer, b"late answer");
            };
            let (stats, ()) = future::zip(tunnel, exercise).await;
            assert!(stats.spliced > 0, "the bulk direction was not spliced");
            assert_eq!(stats.bytes_out, up.len() as u64);
            assert_eq!(stats.bytes_in, 11);
            assert!(stats.error.is_none(), "{:?}", stats.error);
        });
    }

    #[test]
    fn an_idle_tunnel_times_out_and_says_so() {
        runtime::block_on(async {
            let (_client_outer, client_inner) = pair().await;
            let (dest_inner, _dest_outer) = pair().await;
            let limit = Duration::from_millis(50);
            let counters = Counters::default();
            let stats = run_fresh(
                client_inner,
                dest_inner,
                Some(limit),
                future::pending(),
                &counters,
            )
            .await;
            assert!(matches!(stats.error, Some(TunnelError::IdleTimeout(l)) if l == limit));
            assert_eq!(
                stats.error.map(|e| e.to_string()).as_deref(),
                Some(format!("idle timeout after {limit:?}").as_str())
            );
            assert_eq!(stats.bytes_in + stats.bytes_out, 0);
        });
    }

    #[test]
    fn stop_cuts_the_tunnel_and_closes_both_ends() {
        runtime::block_on(async {
            let (client_outer, client_inner) = pair().await;
            let (dest_inner, dest_outer) = pair().await;
            let counters = Counters::default();
            let stats =
                run_fresh(client_inner, dest_inner, None, future::ready(()), &counters).await;
            assert_eq!(
                stats.error.map(|e| e.to_string()).as_deref(),
                Some("proxy shutting down")
            );
            let mut rest = Vec::new();
            let (mut a, mut b) = (&client_outer, &dest_outer);
            assert_eq!(a.read_to_end(&mut rest).await.unwrap(), 0);
            assert_eq!(b.read_to_end(&mut rest).await.unwrap(), 0);
        });
    }

    #[test]
    fn a_tunnel_that_went_quiet_holds_no_buffer() {
        runtime::block_on(async {
            let (client_outer, client_inner) = pair().await;
            let (dest_inner, dest_outer) = pair().await;
            let pool = Pool::new();
            let counters = Counters::default();
            let tunnel = run(
                &pool,
                client_inner,
                dest_inner,
                Vec::new(),
                None,
                future::pending(),
                &counters,
            );
            let exercise = async {
                let (mut c, mut d) = (&client_outer, &dest_outer);
                c.write_all(b"ping").await.unwrap();
                let mut got = [0u8; 4];
                d.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"ping");
                d.write_all(b"pong").await.unwrap();
                c.read_exact(&mut got).await.unwrap();
                assert_eq!(&got, b"pong");
                // Both pumps are back to waiting: no buffer is lent out.
                let lent = pool.lent();
                client_outer.shutdown(Shutdown::Both).unwrap();
                dest_outer.shutdown(Shutdown::Both).unwrap();
                lent
            };
            let (stats, lent_while_quiet) = future::zip(tunnel, exercise).await;
            assert_eq!(lent_while_quiet, 0, "a quiet tunnel still holds a buffer");
            assert_eq!(
                pool.kept(),
                1,
                "the burst's buffer was not returned for reuse"
            );
            assert_eq!(stats.bytes_in, 4);
            assert_eq!(stats.bytes_out, 4);
        });
    }
}
