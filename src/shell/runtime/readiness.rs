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
    /// The task to wake at the next event. Inline: one task waits per
    /// direction in practice, and a `Vec` would be an allocation per
    /// waited direction of every idle socket (`docs/performance.md`,
    /// change 16).
    waker: Option<Waker>,
    /// Any further tasks (deduplicated with `will_wake`, like `waker`).
    more: Vec<Waker>,
}

impl Side {
    pub(super) fn fresh() -> Side {
        Side {
            ready: true,
            ..Side::default()
        }
    }

    pub(super) fn wait(&mut self, waker: &Waker) {
        match &self.waker {
            None => self.waker = Some(waker.clone()),
            Some(w) if w.will_wake(waker) => {}
            Some(_) => {
                if !self.more.iter().any(|w| w.will_wake(waker)) {
                    self.more.push(waker.clone());
                }
            }
        }
    }

    fn fire(&mut self, woken: &mut Vec<Waker>) {
        self.ready = true;
        self.seq += 1;
        woken.extend(self.waker.take());
        woken.append(&mut self.more);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_task_waiting_on_a_direction_is_woken_once_by_its_event() {
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let (wa, wb) = (Waker::from(Arc::clone(&a)), Waker::from(Arc::clone(&b)));
        let readiness = Readiness(Mutex::new(State {
            read: Side::default(),
            write: Side::default(),
            urgent: false,
        }));
        {
            let mut st = lock(&readiness.0);
            // The first waiter inline, the second after it, repeats dropped.
            for w in [&wa, &wb, &wa, &wb] {
                st.read.wait(w);
            }
        }
        let mut woken = Vec::new();
        readiness.on_event(EventFlags::IN, &mut woken);
        assert_eq!(woken.len(), 2);
        woken.drain(..).for_each(Waker::wake);
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        // Nobody waits now: the next event wakes nothing.
        readiness.on_event(EventFlags::IN, &mut woken);
        assert!(woken.is_empty());
    }
}
