//! The open CONNECT tunnels, for the stats socket: Smokescreen's connection
//! tracker, which lists each tracked connection with its live byte counts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::core::time::Timestamp;
use crate::shell::transport::tunnel::Counters;

/// One open tunnel, as the stats socket shows it.
pub struct Tracked {
    pub role: String,
    /// The destination as requested (`host:port`), Smokescreen's `rhost`.
    pub rhost: String,
    /// The address dialled.
    pub raddr: std::net::SocketAddr,
    pub created: Timestamp,
    pub counters: Arc<Counters>,
}

/// Smokescreen's `InstrumentedConnStats` JSON, field for field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats<'a> {
    role: &'a str,
    rhost: &'a str,
    raddr: String,
    created: String,
    bytes_in: u64,
    bytes_out: u64,
    seconds_since_last_activity: f64,
    proxy_type: &'static str,
}

/// The registry of open tunnels; empty and untouched unless the stats
/// socket is on.
#[derive(Default)]
pub struct Tracker {
    enabled: AtomicBool,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Tracked>>,
}

/// Removes its tunnel from the tracker when dropped (however the tunnel ends).
pub struct TrackGuard {
    tracker: &'static Tracker,
    id: u64,
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if let Ok(mut open) = self.tracker.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Tracker {
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Track a tunnel until the guard drops; `None` when tracking is off
    /// (then `tunnel` is never called: nothing is copied for nobody).
    pub fn track(&'static self, tunnel: impl FnOnce() -> Tracked) -> Option<TrackGuard> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open.lock().ok()?.insert(id, tunnel());
        Some(TrackGuard { tracker: self, id })
    }

    /// The JSON list Smokescreen's stats server writes: `[`, one object per
    /// line separated by `,`, `]`.
    pub fn json(&self) -> String {
        let mut out = String::from("[\n");
        if let Ok(open) = self.open.lock() {
            for (i, t) in open.values().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                let stats = Stats {
                    role: &t.role,
                    rhost: &t.rhost,
                    raddr: t.raddr.to_string(),
                    created: t.created.rfc3339_nanos(),
                    bytes_in: t.counters.bytes_in(),
                    bytes_out: t.counters.bytes_out(),
                    seconds_since_last_activity: t.counters.idle_for().as_secs_f64(),
                    proxy_type: "connect",
                };
                // Serialising plain strings and numbers cannot fail.
                out.push_str(&serde_json::to_string(&stats).unwrap_or_default());
            }
        }
        out.push_str("]\n");
        out
    }
}

/// The process's tracker.
pub fn get() -> &'static Tracker {
    static TRACKER: OnceLock<Tracker> = OnceLock::new();
    TRACKER.get_or_init(Tracker::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak() -> &'static Tracker {
        Box::leak(Box::default())
    }

    #[test]
    fn tunnels_are_listed_while_their_guard_lives() {
        let tracker = leak();
        let tunnel = || Tracked {
            role: "web\"".into(),
            rhost: "example.com:443".into(),
            raddr: "93.184.216.34:443".parse().unwrap(),
            created: Timestamp::new(0, 5),
            counters: Arc::default(),
        };
        assert!(tracker.track(tunnel).is_none(), "off by default");
        tracker.enable();
        let guard = tracker.track(tunnel);
        let other = tracker.track(tunnel);
        let text = tracker.json();
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(2), "{text}");
        assert_eq!(list[0]["role"], "web\"");
        assert_eq!(list[0]["created"], "1970-01-01T00:00:00.000000005Z");
        assert!(text.starts_with("[\n{\"role\":"), "{text}");
        drop(guard);
        drop(other);
        assert_eq!(tracker.json(), "[\n]\n");
    }
}
