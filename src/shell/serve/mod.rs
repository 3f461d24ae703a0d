//! Serving: the listener and accept loop, one connection's request loop,
//! what connections share, limits, and signals (drain, reload).

pub mod connection;
pub mod limits;
pub mod listener;
pub mod signals;
pub mod state;
