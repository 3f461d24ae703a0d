//! Observing: the log sink and the Prometheus metrics and health listener.

pub mod conn_track;
pub mod connect_failure;
pub mod logging;
pub mod metrics;
pub mod metrics_listener;
pub mod outcome;
pub mod slots;
pub mod stats_socket;
pub mod statsd;
