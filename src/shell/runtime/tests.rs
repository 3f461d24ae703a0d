//! The engine's own guarantees: no wake-up lost to the readiness
//! bookkeeping (each case here hung before its fix or would hang without
//! it), deadlines, spawning from any thread, and a panicking task.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::*;

/// A connected pair: the near end on the engine, the far end blocking std.
fn pair() -> (Async<TcpStream>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let far = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (near, _) = listener.accept().expect("accept");
    near.set_nonblocking(true).expect("non-blocking");
    (Async::new_nonblocking(near), far)
}

async fn read(s: &Async<TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    let want = buf.len();
    futures_lite::future::poll_fn(|cx| {
        s.poll_io(
            Direction::Read,
            cx,
            |t| (&*t).read(buf),
            |n| *n > 0 && *n < want,
        )
    })
    .await
}

/// Bounded, so a lost wake-up fails the test instead of hanging it.
fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match block_on(deadline(Duration::from_secs(10), f)) {
        Some(v) => v,
        None => panic!("{what}: no wake-up within 10 s"),
    }
}

#[test]
fn a_short_read_does_not_hide_an_eof_that_came_with_the_same_event() {
    let (near, mut far) = pair();
    // Bytes and FIN are both queued before the socket is registered, so its
    // first event carries both at once and no later edge will come.
    far.write_all(b"abc").expect("write");
    far.shutdown(std::net::Shutdown::Write).expect("FIN");
    within("readable", near.ready(Direction::Read)).expect("readable");
    let mut buf = [0u8; 1024];
    let n = within("first read", read(&near, &mut buf)).expect("read");
    assert_eq!(buf.get(..n), Some(&b"abc"[..]));
    // The short read drained the bytes, but EOF is still to be read.
    let n = within("EOF", read(&near, &mut buf)).expect("read EOF");
    assert_eq!(n, 0);
}

#[test]
fn bytes_after_urgent_data_are_read_without_a_new_event() {
    let (near, far) = pair();
    let mut buf = [0u8; 1024];
    // Registered and drained before anything arrives.
    assert_eq!(
        near.try_io(Direction::Read, |t| (&*t).read(&mut buf), |_| false)
            .map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
    // "ab", one urgent byte, "de": a read stops at the urgent mark, short,
    // with "de" still queued and no further edge to announce it.
    let send = |bytes: &[u8], flags| rustix::net::send(&far, bytes, flags).expect("send");
    send(b"ab", rustix::net::SendFlags::empty());
    send(b"c", rustix::net::SendFlags::OOB);
    send(b"de", rustix::net::SendFlags::empty());
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = within("read", read(&near, &mut buf)).expect("read");
        assert!(n > 0, "EOF before the bytes");
        got.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    assert_eq!(got, b"abde");
}

#[test]
fn a_read_known_to_be_drained_waits_for_the_next_bytes() {
    let (near, mut far) = pair();
    let mut buf = [0u8; 64];
    far.write_all(b"first").expect("write");
    let n = within("first", read(&near, &mut buf)).expect("read");
    assert_eq!(buf.get(..n), Some(&b"first"[..]));
    // Drained: a try answers WouldBlock (without a syscall once registered).
    let again = near.try_io(Direction::Read, |t| (&*t).read(&mut buf), |_| false);
    assert_eq!(
        again.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
    // Bytes sent from another thread while the task waits wake it.
    let writer = std::thread::spawn(move || {
        far.write_all(b"second").expect("write");
        far
    });
    let n = within("second", read(&near, &mut buf)).expect("read");
    assert_eq!(buf.get(..n), Some(&b"second"[..]));
    drop(writer.join());
}

#[test]
fn a_full_send_buffer_waits_for_room_and_loses_nothing() {
    let (near, mut far) = pair();
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    let expected = data.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        far.read_to_end(&mut got).expect("read");
        got
    });
    within("write", async {
        let mut sent = 0;
        while sent < data.len() {
            let rest = data.get(sent..).unwrap_or_default();
            let n = futures_lite::future::poll_fn(|cx| {
                near.poll_io(
                    Direction::Write,
                    cx,
                    |t| (&*t).write(rest),
                    |n| *n < rest.len(),
                )
            })
            .await
            .expect("write");
            sent += n;
        }
    });
    near.get_ref()
        .shutdown(std::net::Shutdown::Write)
        .expect("FIN");
    let got = reader.join().expect("reader");
    assert!(got == expected, "bytes lost or reordered");
}

#[test]
fn deadlines_fire_after_their_time_from_any_thread() {
    let start = Instant::now();
    block_on(sleep(Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
    // A timeout ends a future that never completes.
    let r = block_on(timeout(
        Duration::from_millis(20),
        futures_lite::future::pending::<std::io::Result<()>>(),
    ));
    assert_eq!(r.map_err(|e| e.kind()), Err(std::io::ErrorKind::TimedOut));
    // A task on a worker sleeps on its own engine's deadlines.
    let slept = block_on(spawn(async {
        let start = Instant::now();
        sleep(Duration::from_millis(25)).await;
        start.elapsed()
    }));
    assert!(slept >= Duration::from_millis(25), "{slept:?}");
}

#[test]
fn a_dropped_handle_lets_its_task_run_on() {
    let (tx, rx) = bounded::<u32>(1);
    drop(spawn(async move {
        sleep(Duration::from_millis(5)).await;
        let _ = tx.send(7).await;
    }));
    assert_eq!(within("task", rx.recv()), Ok(7));
}

#[test]
fn a_panicking_task_leaves_its_worker_running() {
    let panicked = std::panic::catch_unwind(|| {
        block_on(spawn(async {
            panic!("a task's own bug");
        }))
    });
    assert!(panicked.is_err(), "the panic reached its awaiter");
    // Every worker still runs tasks.
    for _ in 0..2 * engine::pool().len() {
        assert_eq!(within("after the panic", spawn_spread(async { 1 + 1 })), 2);
    }
}
