//! What is known about a registered socket's readiness, and the table of
//! registered sockets an engine looks events up in. Plain data: the
//! engine updates it from events, `source::Async` from its syscalls.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use rustix::event::epoll::EventFlags;

/// Lock, ignoring poison: every critical section here leaves its data
/// consistent (no user code runs under these locks).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which way an operation moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

#[derive(Default)]
pub(super) struct Side {
    /// An operation may proceed (unknown counts as ready).
    pub(super) ready: bool,
    /// Events seen for this direction.
    pub(super) seq: u64,
    /// EOF or an error was signalled: sticky (a read then never blocks,
    /// and no further edge would come to say so).
    pub(super) closed: bool,
    /// Tasks to wake at the next event (deduplicated with `will_wake`).
    wakers: Vec<Waker>,
}

impl Side {
    pub(super) fn fresh() -> Side {
        Side {
            ready: true,
            ..Side::default()
        }
    }

    pub(super) fn wait(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    fn fire(&mut self, woken: &mut Vec<Waker>) {
        self.ready = true;
        self.seq += 1;
        woken.append(&mut self.wakers);
    }
}

pub(super) struct State {
    pub(super) read: Side,
    pub(super) write: Side,
    /// Urgent (out-of-band) data was signalled: a short read may then stop
    /// at the urgent mark with bytes still queued, so it proves nothing.
    pub(super) urgent: bool,
}

/// The shared half of a registered socket: what an event updates.
pub(crate) struct Readiness(pub(super) Mutex<State>);

impl Readiness {
    pub(super) fn side(state: &mut State, dir: Direction) -> &mut Side {
        match dir {
            Direction::Read => &mut state.read,
            Direction::Write => &mut state.write,
        }
    }

    pub(super) fn on_event(&self, flags: EventFlags, woken: &mut Vec<Waker>) {
        let mut st = lock(&self.0);
        let broken = flags.intersects(EventFlags::ERR | EventFlags::HUP);
        let readable =
            broken || flags.intersects(EventFlags::IN | EventFlags::RDHUP | EventFlags::PRI);
        let writable = broken || flags.contains(EventFlags::OUT);
        if flags.contains(EventFlags::PRI) {
            st.urgent = true;
        }
        if broken || flags.contains(EventFlags::RDHUP) {
            st.read.closed = true;
        }
        if broken {
            st.write.closed = true;
        }
        if readable {
            st.read.fire(woken);
        }
        if writable {
            st.write.fire(woken);
        }
    }
}

/// The engine's table of registered sockets. An event carries a key
/// (index and generation); a key whose socket is gone finds nothing.
#[derive(Default)]
pub(crate) struct Sources {
    slots: Vec<(u32, Option<Arc<Readiness>>)>,
    free: Vec<u32>,
}

impl Sources {
    pub(super) fn insert(&mut self, state: Arc<Readiness>) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let generation = match self.slots.get_mut(index as usize) {
            Some(slot) => {
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = Some(state);
                slot.0
            }
            None => 0,
        };
        (u64::from(generation) << 32) | u64::from(index)
    }

    pub(super) fn remove(&mut self, key: u64) {
        let index = (key & u64::from(u32::MAX)) as u32;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if u64::from(slot.0) == key >> 32 && slot.1.take().is_some() {
                self.free.push(index);
            }
        }
    }

    pub(super) fn get(&self, key: u64) -> Option<Arc<Readiness>> {
        let index = (key & u64::from(u32::MAX)) as usize;
        match self.slots.get(index) {
            Some((generation, Some(state))) if u64::from(*generation) == key >> 32 => {
                Some(Arc::clone(state))
            }
            _ => None,
        }
    }
}
