//! Connection workers: one single-threaded tokio runtime per core, each on
//! its own thread, that serve accepted client connections from start to end.
//!
//! A proxied request involves several tasks (the client connection, the
//! upstream connection, the response body). On a work-stealing runtime they
//! land on different threads and every hand-off is a cross-thread wake-up
//! (a futex call and a context switch). Serving a connection on one
//! single-threaded runtime keeps every task it spawns (its upstream
//! connections too: `tokio::spawn` uses the current runtime) on one thread,
//! as nginx keeps a connection on one worker process. Connections are spread
//! over the workers in turn; keep-alive makes that a per-connection cost, not
//! a per-request one.
//!
//! Background work (reaping, events, reloads) stays on the daemon's main
//! runtime. Workers that cannot be created are done without: connections go
//! to the ones that could, or to the main runtime when none could.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

/// The worker runtimes, spawned once for the daemon's lifetime.
pub struct ConnectionWorkers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl ConnectionWorkers {
    /// Starts `count` workers. With none (`count` 0, or threads that cannot
    /// be created) [`Self::spawn`] uses the current runtime. Each worker
    /// thread lives until the process exits.
    pub fn start(count: usize) -> Self {
        let mut handles = Vec::with_capacity(count);
        for n in 0..count {
            match start_worker(n) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::warn!(error = %e, started = handles.len(), "cannot start a connection worker; serving on those started (none: the main runtime)");
                    break;
                }
            }
        }
        Self {
            handles,
            next: AtomicUsize::new(0),
        }
    }

    /// One worker per available core.
    pub fn per_core() -> Self {
        Self::start(slots_per_core() - 1)
    }

    /// Runs `connection` on the next worker in turn.
    pub fn spawn<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            tokio::spawn(connection);
            return;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[n].spawn(connection);
    }
}

thread_local! {
    /// 1 + the index of the worker running on this thread; 0 elsewhere.
    static WORKER_SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Which worker this thread is: 1 + its index, or 0 on any other thread.
/// State kept per worker (the upstream connection pool) is indexed by it,
/// so that a connection is only ever used on the thread that drives it.
pub fn current_slot() -> usize {
    WORKER_SLOT.with(Cell::get)
}

/// The number of distinct [`current_slot`] values a process sees when it
/// runs [`ConnectionWorkers::per_core`]: one per core, plus 0.
pub fn slots_per_core() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 1
}

/// Runs forever with a timer always pending on this runtime.
///
/// tokio's timer wakes the runtime through its eventfd whenever a timer is
/// set earlier than the next deadline the runtime parked with, and with no
/// timer pending every one is earlier. Each request sets one (hyper's header
/// read timeout) after the previous one was cancelled, so without a pending
/// timer about every other request paid a `write` to the eventfd and an
/// extra `epoll_wait` (strace under `wrk -c64`). A tick a second keeps the
/// next deadline close, and request timers (seconds away) set no earlier one.
async fn keep_a_timer_pending() {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// A thread running a current-thread runtime forever; its handle.
///
/// The runtime is built on its thread: a runtime must not be dropped inside
/// another's `block_on`, which a failed thread spawn would otherwise do.
fn start_worker(n: usize) -> std::io::Result<Handle> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("substrate-conn-{n}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return drop(handle_tx.send(Err(e))),
            };
            if handle_tx.send(Ok(runtime.handle().clone())).is_err() {
                return;
            }
            WORKER_SLOT.with(|slot| slot.set(n + 1));
            runtime.block_on(keep_a_timer_pending())
        })?;
    handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("the worker thread ended before its runtime was built"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_run_on_worker_threads_in_turn() {
        let workers = ConnectionWorkers::start(2);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send(name.filter(|n| n.ends_with(&(current_slot() - 1).to_string())));
            });
        }
        let mut names: Vec<_> = (0..4)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(5)).ok().flatten())
            .collect();
        names.sort();
        let expected: Vec<Option<String>> = [
            "substrate-conn-0",
            "substrate-conn-0",
            "substrate-conn-1",
            "substrate-conn-1",
        ]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
        assert_eq!(names, expected);
    }
}
