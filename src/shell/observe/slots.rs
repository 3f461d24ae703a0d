//! A fixed number of connection slots where a newcomer evicts the oldest
//! holder instead of being turned away, for the metrics/health listener:
//! idle or slow peers can then never lock out the health check that
//! arrives after them (they only push each other out).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::shell::runtime::{self, Receiver, Sender};

use crate::shell::serve::state::closed;

/// The slots, shared by the accept loop and the connection tasks.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    /// Holders, oldest first: an id and the sender whose drop evicts it.
    held: Mutex<VecDeque<(u64, Sender<()>)>>,
    next_id: AtomicU64,
}

/// One taken slot: gives it back on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    evicted: Receiver<()>,
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            capacity: capacity.max(1),
            held: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Take a slot, evicting the oldest holder when all are taken.
    pub fn take(self: &Arc<Self>) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = runtime::bounded(1);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while held.len() >= self.capacity {
            // Dropping the sender closes the oldest holder's channel.
            held.pop_front();
        }
        held.push_back((id, tx));
        Slot {
            slots: Arc::clone(self),
            id,
            evicted: rx,
        }
    }

    /// Slots held now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Slot {
    /// Resolves when a newer connection has taken this slot.
    pub async fn evicted(&self) {
        closed(&self.evicted).await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_evicts_the_oldest_and_drops_give_slots_back() {
        runtime::block_on(async {
            let slots = Slots::new(2);
            let a = slots.take();
            let b = slots.take();
            assert_eq!(slots.held(), 2);
            let c = slots.take();
            assert_eq!(slots.held(), 2);
            // `a` was evicted: its wait ends at once.
            a.evicted().await;
            let b_still_held = futures_lite::future::or(
                async {
                    b.evicted().await;
                    false
                },
                async { true },
            )
            .await;
            assert!(b_still_held, "b must not be evicted yet");
            drop(b);
            assert_eq!(slots.held(), 1);
            drop((a, c));
            assert_eq!(slots.held(), 0);
        });
    }
}
