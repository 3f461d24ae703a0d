//! Process signals: SIGTERM/SIGINT start a graceful drain (a second one cuts
//! it short); SIGHUP reloads the ACL atomically, keeping the old one if the
//! new file is bad.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::shell::runtime::UnixStream;
use futures_lite::AsyncRead as _;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::backend::{OwningSignalIterator, PollResult, SignalDelivery};
use signal_hook::iterator::exfiltrator::SignalOnly;

use crate::config::acl_source::AclSource;
use crate::core::record::Level;
use crate::shell::logging::{self, emit};
use crate::shell::serve::StartError;
use crate::shell::state::{Shared, Triggers};

/// The installed handlers: signal-hook's self-pipe, whose read end is an
/// async-std socket, so it is watched by the one reactor the proxy already
/// runs (no second reactor thread just for signals).
pub struct Signals(OwningSignalIterator<UnixStream, SignalOnly>);

impl Signals {
    /// The next signal; `None` once the delivery is closed.
    async fn next(&mut self) -> Option<i32> {
        futures_lite::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        let mut has_signals = |read: &mut UnixStream| match Pin::new(read).poll_read(cx, &mut [0u8])
        {
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
    while let Some(signal) = signals.next().await {
        match signal {
            SIGHUP => reload(&shared, &source),
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

/// Replace the ACL, or keep the old one and say why.
pub fn reload(shared: &Shared, source: &AclSource) {
    let Some(path) = &source.path else {
        emit(&logging::line(
            Level::Info,
            "SIGHUP: using the embedded default ACL; nothing to reload",
        ));
        return;
    };
    match source.load() {
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
