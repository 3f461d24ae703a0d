//! The engine: one thread that runs tasks and drives their sockets' readiness
//! from the same loop, so a socket event wakes a task on the thread that
//! polls it (no cross-thread wake-up, no lock hand-off of the reactor).
//!
//! Each worker thread owns one engine: a run queue of `async-task`
//! runnables, an epoll set with every socket registered once,
//! edge-triggered (no re-arm per wait, no `EPOLL_CTL_DEL`: closing the
//! socket removes it), the deadlines of the tasks it runs, and a buffer of
//! log lines written once per turn of the loop. Another thread reaches it
//! through `incoming` and an eventfd, written only while the engine sleeps.
//!
//! Why not async-io's reactor (what async-std runs on): it registers
//! one-shot, so every wait costs an `epoll_ctl` re-arm, every timer
//! insertion writes its eventfd, and every wait costs `timerfd_settime`;
//! measured in `docs/performance.md` (change 15) and `docs/dependencies.md`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_task::Runnable;
use rustix::event::{epoll, eventfd, EventfdFlags, Timespec};

use super::deadlines::Timers;
pub(super) use super::readiness::lock;
use super::readiness::{Readiness, Sources};

/// Tasks run per turn before the loop looks at sockets again, so a busy
/// task set cannot starve I/O.
const TURN_BUDGET: usize = 256;
/// Buffered log bytes that make the loop write at once instead of at the
/// end of the turn: the most a crash can lose (see `docs/performance.md`).
pub(super) const LOG_FLUSH_BYTES: usize = 64 * 1024;
/// How long a busy worker (one that never waits) may hold log lines.
const LOG_FLUSH_AFTER: Duration = Duration::from_millis(100);
/// The epoll key of the engine's own eventfd.
const WAKE_KEY: u64 = u64::MAX;

pub(crate) struct Engine {
    index: usize,
    epoll: OwnedFd,
    wake: OwnedFd,
    /// Runnables scheduled from other threads.
    incoming: Mutex<VecDeque<Runnable>>,
    /// The loop is in (or about to enter) a blocking wait: a cross-thread
    /// schedule must write the eventfd.
    sleeping: AtomicBool,
    pub(super) sources: Mutex<Sources>,
    pub(super) timers: Mutex<Timers>,
}

thread_local! {
    /// The index of the engine this thread runs (usize::MAX: none).
    static CURRENT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Runnables scheduled by this engine's own thread.
    static QUEUE: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
    /// Log lines of this turn, written before the loop next waits.
    static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

static POOL: OnceLock<Vec<Arc<Engine>>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// How many worker threads: `ASYNC_STD_THREAD_COUNT` when set (async-std's
/// own knob, kept so deployments that tuned it keep their setting), else
/// the CPUs this process may run on (its affinity mask and cgroup quota).
fn worker_count() -> usize {
    let asked = std::env::var("ASYNC_STD_THREAD_COUNT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0);
    asked
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .min(256)
}

/// The worker engines, started on first use.
pub(super) fn pool() -> &'static [Arc<Engine>] {
    POOL.get_or_init(|| {
        let engines: Vec<Arc<Engine>> = (0..worker_count())
            .map(|index| match Engine::new(index) {
                Ok(e) => Arc::new(e),
                // Only when the process is out of descriptors before it
                // serves anything; nothing can run without an engine.
                Err(e) => panic!("cannot create the event loop: {e}"),
            })
            .collect();
        for engine in &engines {
            let engine = Arc::clone(engine);
            let name = format!("smokescreen-{}", engine.index);
            if let Err(e) = std::thread::Builder::new()
                .name(name)
                .spawn(move || engine.run())
            {
                panic!("cannot start a worker thread: {e}");
            }
        }
        engines
    })
}

/// The engine this thread runs, if it is a worker.
pub(super) fn current() -> Option<&'static Arc<Engine>> {
    let index = CURRENT.with(Cell::get);
    if index == usize::MAX {
        return None;
    }
    pool().get(index)
}

/// The next worker in turn (spreads connections over the cores).
pub(super) fn next_in_turn() -> &'static Arc<Engine> {
    let engines = pool();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // `pool()` is never empty (worker_count() >= 1).
    &engines[n % engines.len()]
}

/// Where a new task, socket or deadline lives: this thread's engine, or
/// for a thread that is not a worker (main, tests, the blocking pool) the
/// next worker in turn.
pub(super) fn home() -> &'static Arc<Engine> {
    current().unwrap_or_else(next_in_turn)
}

/// Append a rendered log line to this worker's buffer (written at once
/// past 64 KiB); on a thread that is not a worker, write it now.
pub(super) fn write_log(line: &[u8]) {
    if CURRENT.with(Cell::get) == usize::MAX {
        write_stderr(line);
        return;
    }
    LOG.with(|log| {
        let mut log = log.borrow_mut();
        log.extend_from_slice(line);
        if log.len() >= LOG_FLUSH_BYTES {
            write_buffered(&mut log);
        }
    });
}

/// Write this thread's buffered log lines (a no-op elsewhere).
pub(super) fn flush_log() {
    LOG.with(|log| write_buffered(&mut log.borrow_mut()));
}

fn write_buffered(log: &mut Vec<u8>) {
    if log.is_empty() {
        return;
    }
    write_stderr(log);
    log.clear();
    if log.capacity() > 4 * LOG_FLUSH_BYTES {
        log.shrink_to(LOG_FLUSH_BYTES);
    }
}

/// Under stderr's lock, so the lines of two threads never interleave; a
/// closed stderr is ignored rather than crashing the proxy.
fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

impl Engine {
    fn new(index: usize) -> std::io::Result<Engine> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        epoll::add(
            &epoll,
            &wake,
            epoll::EventData::new_u64(WAKE_KEY),
            epoll::EventFlags::IN,
        )?;
        Ok(Engine {
            index,
            epoll,
            wake,
            incoming: Mutex::new(VecDeque::new()),
            sleeping: AtomicBool::new(false),
            sources: Mutex::new(Sources::default()),
            timers: Mutex::new(Timers::default()),
        })
    }

    /// Is this thread the one running this engine?
    pub(super) fn is_current(&self) -> bool {
        CURRENT.with(Cell::get) == self.index
    }

    /// Queue `runnable` here: directly from this engine's thread, else
    /// through `incoming` and, if the loop sleeps, the eventfd.
    pub(super) fn schedule(&self, runnable: Runnable) {
        if self.is_current() {
            QUEUE.with(|q| q.borrow_mut().push_back(runnable));
        } else {
            lock(&self.incoming).push_back(runnable);
            self.notify();
        }
    }

    /// Wake the loop if it sleeps (another thread queued work or an
    /// earlier deadline).
    pub(super) fn notify(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
        }
    }

    /// Add a socket to the epoll set, edge-triggered for both directions.
    pub(super) fn register(&self, fd: impl AsFd, key: u64) -> std::io::Result<()> {
        use epoll::EventFlags as F;
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(key),
            F::IN | F::OUT | F::RDHUP | F::PRI | F::ET,
        )?;
        Ok(())
    }

    fn run(self: Arc<Self>) {
        CURRENT.with(|c| c.set(self.index));
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        let mut woken: Vec<Waker> = Vec::new();
        let mut ready: Vec<(Arc<Readiness>, epoll::EventFlags)> = Vec::new();
        let mut flushed = Instant::now();
        loop {
            self.run_tasks();
            let now = Instant::now();
            self.fire_timers(now, &mut woken);
            let mut busy = !woken.is_empty() || QUEUE.with(|q| !q.borrow().is_empty());
            for w in woken.drain(..) {
                w.wake();
            }
            let timeout = if busy {
                // A worker that never idles still writes its lines at
                // least every LOG_FLUSH_AFTER.
                if now.duration_since(flushed) >= LOG_FLUSH_AFTER {
                    flush_log();
                    flushed = now;
                }
                Some(Duration::ZERO)
            } else {
                flushed = now;
                flush_log();
                self.sleeping.store(true, Ordering::SeqCst);
                if !lock(&self.incoming).is_empty() {
                    busy = true;
                }
                if busy {
                    Some(Duration::ZERO)
                } else {
                    // Read after `sleeping` is set: a deadline another
                    // thread arms from here on finds it set and writes the
                    // eventfd; one armed before is in the map.
                    let next_deadline = lock(&self.timers).next();
                    next_deadline.map(|at| at.saturating_duration_since(now))
                }
            };
            let spec = timeout.map(round_up_ms);
            events.clear();
            let waited = epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                spec.as_ref(),
            );
            self.sleeping.store(false, Ordering::SeqCst);
            if let Err(e) = waited {
                if e != rustix::io::Errno::INTR {
                    // Not expected for a valid epoll fd; do not spin hot.
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            self.dispatch(&events, &mut ready, &mut woken);
            if events.len() == events.capacity() && events.capacity() < 4096 {
                events.reserve(events.capacity());
            }
        }
    }

    /// Run queued tasks until none is left or the turn's budget is spent.
    fn run_tasks(&self) {
        // What other threads handed over joins the queue every turn, even
        // when this thread's own tasks keep the queue from emptying.
        self.take_incoming();
        let mut ran = 0;
        while ran < TURN_BUDGET {
            let next = QUEUE.with(|q| q.borrow_mut().pop_front());
            let runnable = match next {
                Some(r) => r,
                None => {
                    if self.take_incoming() {
                        continue;
                    }
                    return;
                }
            };
            // A panic in a task is caught by async-task (propagate_panic)
            // and handed to whoever awaits it; the loop goes on.
            runnable.run();
            ran += 1;
        }
    }

    /// Move what other threads queued here onto the local queue; `false`
    /// when there was nothing.
    fn take_incoming(&self) -> bool {
        let mut incoming = lock(&self.incoming);
        if incoming.is_empty() {
            return false;
        }
        let moved: Vec<Runnable> = incoming.drain(..).collect();
        drop(incoming);
        QUEUE.with(|q| q.borrow_mut().extend(moved));
        true
    }

    /// Wake the tasks whose deadline passed.
    fn fire_timers(&self, now: Instant, woken: &mut Vec<Waker>) {
        lock(&self.timers).expire(now, woken);
    }

    fn dispatch(
        &self,
        events: &[epoll::Event],
        ready: &mut Vec<(Arc<Readiness>, epoll::EventFlags)>,
        woken: &mut Vec<Waker>,
    ) {
        {
            let sources = lock(&self.sources);
            for event in events {
                let key = event.data.u64();
                if key == WAKE_KEY {
                    let mut sink = [0u8; 8];
                    let _ = rustix::io::read(&self.wake, &mut sink);
                    continue;
                }
                if let Some(state) = sources.get(key) {
                    ready.push((state, event.flags));
                }
            }
        }
        for (state, flags) in ready.drain(..) {
            state.on_event(flags, woken);
        }
        for w in woken.drain(..) {
            w.wake();
        }
    }
}

/// epoll waits in whole milliseconds: round up, so a deadline never wakes
/// the loop early (which would spin until it passes).
fn round_up_ms(d: Duration) -> Timespec {
    let ms = d.as_nanos().div_ceil(1_000_000);
    let ms = i64::try_from(ms).unwrap_or(i64::MAX / 1_000_000);
    Timespec {
        tv_sec: ms / 1000,
        tv_nsec: (ms % 1000) * 1_000_000,
    }
}
