//! Process signals: SIGTERM/SIGINT start a graceful drain (a second one cuts
//! it short); SIGHUP reloads the ACL atomically, keeping the old one if the
//! new file is bad.
//!
//! The ACL is read on the blocking pool with a time limit, never on the
//! signal task: a file that blocks (a FIFO, a hung network mount) must not
//! keep SIGTERM from being handled.

use std::io::Read as _;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::shell::runtime::{self, Async, Direction};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::backend::{OwningSignalIterator, PollResult, SignalDelivery};
use signal_hook::iterator::exfiltrator::SignalOnly;

use crate::config::acl_source::{AclLoadError, AclSource};
use crate::core::record::Level;
use crate::shell::observe::logging::{self, emit};
use crate::shell::serve::state::{Shared, Triggers};
use crate::shell::serve::StartError;

/// The installed handlers: signal-hook's self-pipe, whose read end is
/// watched by the proxy's own engine like its sockets. (On async-std's
/// socket it started async-io's reactor and thread at every start, with
/// ~60 KiB of queues, for the pipe alone: `docs/performance.md`, change 16.)
pub struct Signals(OwningSignalIterator<Pipe, SignalOnly>);

/// The self-pipe's read end.
pub struct Pipe(Async<UnixStream>);

impl AsRawFd for Pipe {
    fn as_raw_fd(&self) -> RawFd {
        self.0.get_ref().as_raw_fd()
    }
}

impl Signals {
    /// The next signal; `None` once the delivery is closed.
    async fn next(&mut self) -> Option<i32> {
        futures_lite::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        let mut has_signals = |read: &mut Pipe| match read.0.poll_io(
            Direction::Read,
            cx,
            |pipe| (&*pipe).read(&mut [0u8]),
            |_| false,
        ) {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(n)) => Ok(n > 0),
            Poll::Ready(Err(e)) => Err(e),
        };
        match self.0.poll_signal(&mut has_signals) {
            PollResult::Signal(signal) => Poll::Ready(Some(signal)),
            PollResult::Pending => Poll::Pending,
            PollResult::Closed => Poll::Ready(None),
            PollResult::Err(e) => {
                emit(
                    &logging::line(Level::Error, "signal pipe failed").with("error", e.to_string()),
                );
                Poll::Ready(None)
            }
        }
    }
}

/// Install the handlers. Done once at start, before serving: installing
/// them lazily inside a task could happen while the process is out of file
/// descriptors, and the reactor behind them panics then (which used to
/// drop the drain trigger and stop the proxy).
pub fn install() -> Result<Signals, StartError> {
    let err = StartError::Signals;
    let (read, write) = UnixStream::pair().map_err(err)?;
    read.set_nonblocking(true).map_err(err)?;
    let read = Pipe(Async::new_nonblocking(read));
    let delivery = SignalDelivery::with_pipe(read, write, SignalOnly, [SIGTERM, SIGINT, SIGHUP])
        .map_err(err)?;
    Ok(Signals(OwningSignalIterator::new(delivery)))
}

/// Handle signals until the process stops.
pub async fn handle(
    shared: Arc<Shared>,
    triggers: Triggers,
    source: AclSource,
    mut signals: Signals,
) {
    let mut draining = false;
    let reloading = Arc::new(AtomicBool::new(false));
    while let Some(signal) = signals.next().await {
        match signal {
            SIGHUP => start_reload(&shared, &source, &reloading),
            _ if !draining => {
                draining = true;
                emit(
                    &logging::line(Level::Info, "shutting down: draining connections")
                        .with("signal", signal_name(signal))
                        .with(
                            "exit_timeout",
                            format!("{:?}", shared.settings.exit_timeout),
                        ),
                );
                triggers.draining.close();
            }
            _ => {
                emit(
                    &logging::line(Level::Warning, "second signal: closing open tunnels now")
                        .with("signal", signal_name(signal)),
                );
                triggers.force_stop.close();
            }
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Longest a SIGHUP reload may spend reading and parsing the ACL file.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Run one reload as its own task; a SIGHUP while one is running is
/// logged and ignored (so a stuck file cannot pile up blocked threads).
fn start_reload(shared: &Arc<Shared>, source: &AclSource, reloading: &Arc<AtomicBool>) {
    if reloading.swap(true, Ordering::AcqRel) {
        emit(&logging::line(
            Level::Warning,
            "SIGHUP ignored: the previous ACL reload has not finished",
        ));
        return;
    }
    let (shared, source, reloading) = (Arc::clone(shared), source.clone(), Arc::clone(reloading));
    runtime::spawn(async move {
        reload(&shared, &source).await;
        reloading.store(false, Ordering::Release);
    });
}

/// Replace the ACL, or keep the old one and say why. The read runs on the
/// blocking pool within [`RELOAD_TIMEOUT`]; a read that never returns
/// leaves one pool thread waiting on it, and the old ACL in force.
pub async fn reload(shared: &Shared, source: &AclSource) {
    let Some(path) = &source.path else {
        emit(&logging::line(
            Level::Info,
            "SIGHUP: using the embedded default ACL; nothing to reload",
        ));
        return;
    };
    let reading = source.clone();
    let read = runtime::spawn_blocking(move || reading.load());
    let loaded = match runtime::deadline(RELOAD_TIMEOUT, read).await {
        Some(loaded) => loaded,
        None => Err(AclLoadError::Read {
            path: path.clone(),
            problem: format!("not read within {RELOAD_TIMEOUT:?}"),
        }),
    };
    match loaded {
        Ok((acl, warnings)) => {
            for w in warnings {
                emit(&logging::line(Level::Warning, w));
            }
            let mut policy = (*shared.policy()).clone();
            policy.acl = Some(acl);
            shared.set_policy(policy);
            emit(
                &logging::line(Level::Info, "reloaded egress ACL")
                    .with("file", path.display().to_string()),
            );
        }
        Err(e) => {
            emit(
                &logging::line(Level::Error, "ACL reload failed; keeping the previous ACL")
                    .with("error", e.to_string()),
            );
        }
    }
}
