//! The deadlines an engine keeps for the tasks it runs: an ordered map its
//! loop reads for the wait timeout. Plain data; `timer::Sleep` arms and
//! disarms entries, the engine expires them.

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct Timers {
    pub(super) map: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

impl Timers {
    pub(super) fn insert(&mut self, at: Instant, waker: Waker) -> u64 {
        self.next_id += 1;
        self.map.insert((at, self.next_id), waker);
        self.next_id
    }

    /// Move every waker whose deadline is not after `now` into `woken`.
    pub(super) fn expire(&mut self, now: Instant, woken: &mut Vec<Waker>) {
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            woken.push(entry.remove());
        }
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.map.keys().next().map(|k| k.0)
    }
}
