//! The accept loop and the process lifecycle: bind, serve, drain, stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::shell::runtime as task;
use crate::shell::transport::net::Listener;

use crate::config::acl_source::AclSource;
use crate::core::decision::Policy;
use crate::core::record::Level;
use crate::shell::observe::logging::{self, emit};
use crate::shell::resolve::Resolver;
use crate::shell::serve::signals;
use crate::shell::serve::state::{closed, Settings, Shared};
use crate::shell::serve::StartError;
use crate::shell::serve::{connection, interfaces};

/// Everything needed to start serving.
pub struct ServerParams {
    pub listen: SocketAddr,
    pub policy: Policy,
    pub settings: Settings,
    pub resolver: Resolver,
    pub acl_source: AclSource,
    pub max_connections: usize,
    /// Our other listeners (metrics), refused as destinations like this one.
    pub also_listening: Vec<SocketAddr>,
}

/// Bind the proxy port. `shell::start` does this on the main thread, before
/// the executor starts: async-io's reactor is then set up there too, in
/// memory the main thread has already touched, not in a fresh malloc arena
/// of the executor thread (about 0.1 MiB less RSS at rest).
pub fn bind(listen: SocketAddr) -> Result<Listener, StartError> {
    Listener::bind(listen).map_err(|e| StartError::Listen(listen, e))
}

/// Serve on the bound port until a signal drains the process.
pub async fn run(listener: Listener, params: ServerParams) -> Result<(), StartError> {
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Listen(params.listen, e))?;
    let installed = signals::install()?;
    let mut listen = vec![bound];
    listen.extend(params.also_listening.iter().copied());
    let (shared, triggers) = Shared::new(params.policy, params.settings, params.resolver, listen);
    // Our own addresses, for the self-connection check, before the first accept.
    interfaces::update(&shared);
    task::spawn(interfaces::keep_current(Arc::clone(&shared)));
    task::spawn(signals::handle(
        Arc::clone(&shared),
        triggers,
        params.acl_source,
        installed,
    ));

    // Each connection holds a clone of `alive`; when all are dropped, `done` closes.
    let (alive, done) = task::bounded::<()>(1);
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Bound, so the kernel queues connections from here on: ready before we say so.
    crate::shell::observe::metrics_listener::readiness().set_accepting(true);
    emit(&logging::line(Level::Info, "starting").with("listen_addr", bound.to_string()));

    let mut backoff = Duration::from_millis(5);
    loop {
        let accept = async { Some(listener.accept().await) };
        let drain = async {
            closed(&shared.draining).await;
            None
        };
        let Some(accepted) = futures_lite::future::or(drain, accept).await else {
            break;
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                if open.load(std::sync::atomic::Ordering::Relaxed) >= params.max_connections {
                    // Over the cap: refuse at once rather than queue without bound.
                    let refusal = crate::core::limits::LimitRefusal::TooManyConnections;
                    crate::shell::observe::metrics::get().limited(refusal);
                    let _ = crate::shell::transport::io::write_all(
                        &stream,
                        &crate::core::reply::overloaded().to_bytes(),
                    )
                    .await;
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let guard = alive.clone();
                let open = Arc::clone(&open);
                open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Boxed before spawning: the spawn path moves its future by
                // value through several inlined layers, and a 4 KiB
                // connection future copied at each made this frame 32 KiB
                // (stack that stays resident) and cost a memcpy per layer.
                task::spawn_spread(Box::pin(async move {
                    connection::serve(shared, stream, peer).await;
                    open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    drop(guard);
                }));
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: back off and try again instead of spinning.
                emit(
                    &logging::line(Level::Error, "accept failed; backing off")
                        .with("error", e.to_string())
                        .with("backoff_ms", backoff.as_millis() as u64),
                );
                task::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    crate::shell::observe::metrics_listener::readiness().set_accepting(false);
    drop(listener);
    drop(alive);
    let remaining = open.load(std::sync::atomic::Ordering::Relaxed);
    emit(
        &logging::line(
            Level::Info,
            "stopped accepting; waiting for open connections",
        )
        .with("open_connections", remaining as u64),
    );
    // What ended the wait: None when every connection finished; the timeout
    // logs why it cuts tunnels (a second signal was already logged by
    // `signals`, so it must not be blamed on the timeout).
    let wait_all = async {
        closed(&done).await;
        None
    };
    let timeout = async {
        task::sleep(shared.settings.exit_timeout).await;
        Some(Some("exit timeout reached; closing remaining tunnels"))
    };
    let forced = async {
        closed(&shared.force_stop).await;
        Some(None)
    };
    let ended = futures_lite::future::or(wait_all, futures_lite::future::or(timeout, forced)).await;
    if let Some(why) = ended {
        if let Some(why) = why {
            emit(&logging::line(Level::Warning, why));
        }
        // Closing force_stop makes every tunnel stop and log its CN-CLOSE.
        shared.force_stop.close();
        let grace = async {
            task::sleep(Duration::from_secs(2)).await;
        };
        futures_lite::future::or(closed(&done), grace).await;
    }
    emit(&logging::line(Level::Info, "shutdown complete"));
    Ok(())
}
