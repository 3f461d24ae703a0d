//! Every open connection keeps its task's future for its whole life, an
//! idle CONNECT tunnel included, so that future's size is memory per idle
//! tunnel (issue 20: ≤ 4 KiB of RSS each, heap and all). A step that needs
//! a lot of state (a DNS lookup, a parent proxy, forwarding) must be boxed
//! so that it is freed when it ends instead of sizing every task
//! (`docs/performance.md`, change 16).

use std::future::Future;

use smokescreen::shell::serve::connection::serve;

/// The size of the future `f` returns, without calling it.
fn future_size<A, B, C, F: Future>(_f: impl FnOnce(A, B, C) -> F) -> usize {
    std::mem::size_of::<F>()
}

#[test]
fn a_connection_task_stays_small() {
    let size = future_size(serve);
    eprintln!("connection future: {size} bytes");
    assert!(size <= 2048, "a connection's future is {size} bytes");
}
