//! State shared by every connection: the current policy (swapped whole on
//! SIGHUP), settings, the resolver and the shutdown signals.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::shell::runtime::{self, Receiver, Sender};

use crate::core::decision::Policy;
use crate::core::head::HeadLimits;
use crate::shell::resolve::Resolver;
use crate::shell::serve::limits::{LimitSettings, Limiter};

/// Timeouts and bounds the shell applies.
#[derive(Clone, Debug)]
pub struct Settings {
    pub head_limits: HeadLimits,
    pub read_header_timeout: Duration,
    pub connect_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub exit_timeout: Duration,
    /// PROXY protocol and TLS in front of HTTP.
    pub front: crate::shell::front::stream::Front,
    /// Request and tunnel limits (`--max-*`).
    pub limits: LimitSettings,
    /// Parent proxies for allowed requests (`--upstream-*-proxy-addr`, env).
    pub upstream: crate::core::upstream::UpstreamProxies,
    /// The MITM CA and upstream trust, when `mitm_domains` may be used.
    pub mitm: Option<Arc<crate::shell::mitm::Mitm>>,
}

impl Settings {
    /// What a forwarded exchange needs of these settings.
    pub fn forward_limits(&self) -> crate::shell::http::forward::Limits {
        crate::shell::http::forward::Limits {
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            head_limits: self.head_limits,
        }
    }
}

/// Shared by all connections.
pub struct Shared {
    policy: Swap<Policy>,
    pub settings: Settings,
    pub resolver: Resolver,
    /// Rate and concurrency limits, shared by every connection.
    pub limiter: Limiter,
    /// Every address this process listens on (self-connection defence).
    pub listen: Vec<SocketAddr>,
    /// Every address of every local interface (see `shell::interfaces`).
    local_addresses: Swap<[IpAddr]>,
    /// Closed when draining starts: idle keep-alive connections stop waiting.
    pub draining: Receiver<()>,
    /// Closed when the exit timeout expires: tunnels are cut.
    pub force_stop: Receiver<()>,
}

/// The sending halves; dropping one closes its signal for everyone.
pub struct Triggers {
    pub draining: Sender<()>,
    pub force_stop: Sender<()>,
}

impl Shared {
    pub fn new(
        policy: Policy,
        settings: Settings,
        resolver: Resolver,
        listen: Vec<SocketAddr>,
    ) -> (Arc<Shared>, Triggers) {
        let (drain_tx, drain_rx) = runtime::bounded(1);
        let (stop_tx, stop_rx) = runtime::bounded(1);
        let shared = Shared {
            policy: Swap::new(Arc::new(policy)),
            limiter: Limiter::new(settings.limits.clone()),
            settings,
            resolver,
            listen,
            local_addresses: Swap::new(Arc::from(Vec::new())),
            draining: drain_rx,
            force_stop: stop_rx,
        };
        (
            Arc::new(shared),
            Triggers {
                draining: drain_tx,
                force_stop: stop_tx,
            },
        )
    }

    /// The policy in force now. A request keeps the one it started with.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.get()
    }

    /// Replace the policy atomically (SIGHUP reload).
    pub fn set_policy(&self, policy: Policy) {
        self.policy.set(Arc::new(policy));
    }

    /// The local interface addresses as last read.
    pub fn local_addresses(&self) -> Arc<[IpAddr]> {
        self.local_addresses.get()
    }

    /// Replace the local interface addresses (only when they changed: the
    /// list is read again every few seconds and is almost always the same).
    pub fn set_local_addresses(&self, list: Vec<IpAddr>) {
        if *self.local_addresses.get() != *list {
            self.local_addresses.set(Arc::from(list));
        }
    }
}

/// A value readers take a snapshot of (an `Arc`) and a writer replaces
/// whole; a poisoned lock still holds a whole value, so it is used as is.
#[derive(Debug)]
struct Swap<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Swap<T> {
    fn new(value: Arc<T>) -> Swap<T> {
        Swap(RwLock::new(value))
    }

    fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(v) => Arc::clone(&v),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set(&self, value: Arc<T>) {
        match self.0.write() {
            Ok(mut v) => *v = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Resolves when `rx`'s sender is dropped or closed.
pub async fn closed(rx: &Receiver<()>) {
    while rx.recv().await.is_ok() {}
}
