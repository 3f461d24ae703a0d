//! A CONNECT tunnel: bytes both ways, nothing lost or reordered, half-close
//! propagated (a FIN one way leaves the other way open), an idle timeout over
//! both directions, and a forced stop for the end of a graceful drain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_std::io::{ReadExt as _, WriteExt as _};
use async_std::net::TcpStream;

use crate::shell::stream::{close_write, ClientStream, Endpoint, Io};
use futures_lite::future;

use crate::core::time::Timestamp;
use crate::shell::logging;

const BUFFER: usize = 16 * 1024;

/// What a tunnel did, for the CN-CLOSE record.
#[derive(Clone, Debug)]
pub struct TunnelStats {
    /// Bytes from the destination to the client.
    pub bytes_in: u64,
    /// Bytes from the client to the destination (including eager bytes).
    pub bytes_out: u64,
    pub last_activity: Timestamp,
    /// Empty when both directions ended with a clean EOF.
    pub error: String,
}

struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte moved, either way.
    last_ms: AtomicU64,
    /// Wall-clock of the last byte, as (secs, nanos) packed for the log.
    last_wall_secs: AtomicU64,
    last_wall_nanos: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
        let now = logging::now();
        self.last_wall_secs
            .store(u64::try_from(now.secs()).unwrap_or(0), Ordering::Relaxed);
        self.last_wall_nanos
            .store(u64::from(now.nanos()), Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    fn last_wall(&self) -> Timestamp {
        let secs = i64::try_from(self.last_wall_secs.load(Ordering::Relaxed)).unwrap_or(0);
        let nanos = u32::try_from(self.last_wall_nanos.load(Ordering::Relaxed)).unwrap_or(0);
        Timestamp::new(secs, nanos)
    }
}

/// Move bytes until both directions are closed, an error, the idle timeout,
/// or `stop` resolves. `eager` are bytes the client sent right after the
/// CONNECT head; they are written upstream first.
pub async fn run(
    client: ClientStream,
    upstream: TcpStream,
    eager: Vec<u8>,
    idle: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
) -> TunnelStats {
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
        last_wall_secs: AtomicU64::new(0),
        last_wall_nanos: AtomicU64::new(0),
    };
    activity.touch();
    let bytes_in = AtomicU64::new(0);
    let bytes_out = AtomicU64::new(0);

    let up = async {
        if !eager.is_empty() {
            let mut w = &upstream;
            w.write_all(&eager)
                .await
                .map_err(|e| format!("write to destination: {e}"))?;
            bytes_out.fetch_add(eager.len() as u64, Ordering::Relaxed);
        }
        pump(
            &client,
            &upstream,
            &bytes_out,
            &activity,
            idle,
            "client",
            "destination",
        )
        .await
    };
    let down = pump(
        &upstream,
        &client,
        &bytes_in,
        &activity,
        idle,
        "destination",
        "client",
    );

    let both = async {
        // When one direction fails, close everything so the other wakes up.
        let up = async {
            let r = up.await;
            if r.is_err() {
                abort(&client, &upstream);
            }
            r
        };
        let down = async {
            let r = down.await;
            if r.is_err() {
                abort(&client, &upstream);
            }
            r
        };
        let (a, b) = future::zip(up, down).await;
        match (a, b) {
            (Err(e), _) | (_, Err(e)) => e,
            _ => String::new(),
        }
    };
    let stopped = async {
        stop.await;
        abort(&client, &upstream);
        "proxy shutting down".to_string()
    };
    let error = future::or(both, stopped).await;
    abort(&client, &upstream);
    TunnelStats {
        bytes_in: bytes_in.load(Ordering::Relaxed),
        bytes_out: bytes_out.load(Ordering::Relaxed),
        last_activity: activity.last_wall(),
        error,
    }
}

fn abort(a: &ClientStream, b: &TcpStream) {
    a.abort();
    b.abort();
}

/// One direction: read until EOF, write everything, then pass the EOF on.
async fn pump<F: Endpoint, T: Endpoint>(
    from: &F,
    to: &T,
    counter: &AtomicU64,
    activity: &Activity,
    idle: Option<Duration>,
    from_name: &str,
    to_name: &str,
) -> Result<(), String> {
    let mut buf = vec![0u8; BUFFER];
    let (mut r, mut w) = (Io(from), Io(to));
    loop {
        let n = match idle {
            None => r.read(&mut buf).await,
            Some(limit) => loop {
                match async_std::io::timeout(limit, r.read(&mut buf)).await {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        if activity.idle_for() >= limit {
                            return Err(format!("idle timeout after {limit:?}"));
                        }
                    }
                    other => break other,
                }
            },
        }
        .map_err(|e| format!("read from {from_name}: {e}"))?;
        if n == 0 {
            // Half-close: the peer finished sending; tell the other side, keep the reverse open.
            close_write(to).await;
            return Ok(());
        }
        let chunk = buf.get(..n).unwrap_or_default();
        w.write_all(chunk)
            .await
            .map_err(|e| format!("write to {to_name}: {e}"))?;
        w.flush()
            .await
            .map_err(|e| format!("write to {to_name}: {e}"))?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}
