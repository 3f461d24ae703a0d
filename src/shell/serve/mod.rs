//! Serving: the listener and accept loop, one connection's request loop,
//! what connections share, limits, and signals (drain, reload).

pub mod connection;
pub mod interfaces;
pub mod limits;
pub mod listener;
pub mod signals;
pub mod state;

use std::fmt;
use std::net::SocketAddr;

/// Why the proxy could not start serving. `Display` gives the `error`
/// field of the `cannot start` log line.
#[derive(Debug)]
pub enum StartError {
    /// Binding (or reading back) the proxy port.
    Listen(SocketAddr, std::io::Error),
    /// Binding (or reading back) the metrics port.
    Metrics(SocketAddr, std::io::Error),
    /// The signal handlers (drain, reload) could not be installed.
    Signals(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Listen(addr, e) => write!(f, "listen on {addr}: {e}"),
            StartError::Metrics(addr, e) => write!(f, "metrics listener on {addr}: {e}"),
            StartError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
        }
    }
}

impl std::error::Error for StartError {}
