//! Bounded, signal-blocking, always-joined worker threads for long maintenance work
//! (CREATE INDEX / REINDEX), and cancellation that reaches them within milliseconds.
//!
//! Why this shape. A NOTICE sent from Rust calls Postgres' `errfinish` directly (pgrx does
//! not guard it), and `errfinish` runs CHECK_FOR_INTERRUPTS: a pending cancel there longjmps
//! past every Rust frame, so nothing joined the build threads, and they kept running on the
//! freed stack of the cancelled statement, then on the next statement's stack.
//!
//! Rules kept here:
//! - [`Workers::new`] starts exactly `n` threads (a rayon pool whose threads are spawned
//!   with every signal blocked, so signals reach only the backend thread); `n = 0` runs
//!   everything on the backend thread. Drop ends the pool and joins every thread.
//! - [`init`] (from `_PG_init`) makes the backend thread the only thread of rayon's global
//!   pool: a parallel iterator reached outside a `Workers` pool (e.g. quantizer training
//!   reached from INSERT) runs inline and never starts a thread.
//! - Worker threads never call Postgres. While they work, the backend thread polls every
//!   [`POLL`]: on a cancel or terminate it raises the [`Stop`] flag, waits for the job
//!   (which checks the flag at least once per node or chunk) and only then lets Postgres
//!   raise the ERROR. Other interrupts wait until the job is done. Any unwinding of the
//!   backend thread raises the flag before the job is waited for.
//! - NOTICEs sent while threads may exist go through [`notice`], with interrupts held off.

use crate::fmgr::raise;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// How often the backend thread polls for interrupts and progress while workers run.
pub const POLL: Duration = Duration::from_millis(10);

/// Least time between two progress ticks of a job running on the backend thread.
const INLINE_TICK: Duration = Duration::from_millis(50);

/// Makes the calling (backend) thread the single thread of rayon's global pool.
pub fn init() {
    // An error means the global pool exists already (nothing else starts it here): keep it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build_global();
}

/// Worker threads a maintenance command may use: `max_parallel_maintenance_workers`, at most the cores.
pub fn maintenance_workers() -> usize {
    // SAFETY: a plain read of an integer GUC on the backend thread.
    let setting = unsafe { pg_sys::max_parallel_maintenance_workers }.max(0) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    setting.min(cores)
}

/// Threads started by [`Workers`] in this backend so far (a test hook).
pub static THREADS_STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A bounded set of worker threads, or none; joined when dropped.
pub struct Workers {
    pool: Option<rayon::ThreadPool>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Restores the backend thread's signal mask when dropped.
struct MaskGuard(libc::sigset_t);

impl MaskGuard {
    /// Blocks every signal on the calling thread, remembering the previous mask.
    fn block_all() -> MaskGuard {
        // SAFETY: plain libc calls on sigset_t values owned here.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            MaskGuard(old)
        }
    }
}

impl Drop for MaskGuard {
    /// Puts the previous mask back (pending signals are delivered then).
    fn drop(&mut self) {
        // SAFETY: restores a mask obtained from pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

impl Workers {
    /// No threads: every job runs on the backend thread.
    pub fn none() -> Workers {
        Workers {
            pool: None,
            handles: Arc::default(),
        }
    }

    /// `n` worker threads (none when `n` is 0), each with every signal blocked.
    pub fn new(n: usize) -> Workers {
        let mut workers = Workers::none();
        if n == 0 {
            return workers;
        }
        let spawned = Arc::clone(&workers.handles);
        // Threads inherit the mask of the thread that spawns them: block everything while
        // the pool starts, so no signal can ever be delivered to a worker.
        let mask = MaskGuard::block_all();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .spawn_handler(move |thread| {
                let handle = std::thread::Builder::new()
                    .name(format!("qhnsw worker {}", thread.index()))
                    .spawn(move || thread.run())?;
                THREADS_STARTED.fetch_add(1, Ordering::Relaxed);
                spawned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(handle);
                Ok(())
            })
            .build();
        drop(mask);
        match pool {
            Ok(pool) => workers.pool = Some(pool),
            Err(e) => {
                drop(workers);
                raise(
                    Code::ERRCODE_INSUFFICIENT_RESOURCES,
                    format!("cannot start qhnsw worker threads: {e}"),
                )
            }
        }
        workers
    }

    /// Worker threads of this set (0: the backend thread works alone).
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.current_num_threads())
    }

    /// Runs `job` on the workers (or on the backend thread when there are none) and returns
    /// its result; `tick` runs on the backend thread every few milliseconds meanwhile.
    /// On a cancel the job is stopped and joined first, then the ERROR is raised: this
    /// never returns a stopped job's result.
    pub fn run<T: Send>(&self, tick: &(dyn Fn() + Sync), job: impl FnOnce(&Stop) -> T + Send) -> T {
        let Some(pool) = &self.pool else {
            let stop = Stop::new(Some((std::thread::current().id(), tick)));
            return job(&stop);
        };
        let stop = Stop::new(None);
        let finished = AtomicBool::new(false);
        let mut result = None;
        let mut cancelled = false;
        pool.in_place_scope(|scope| {
            let _raise_on_exit = RaiseOnDrop(&stop.flag);
            let (stop, finished, result) = (&stop, &finished, &mut result);
            scope.spawn(move |_| {
                let _done = RaiseOnDrop(finished);
                *result = Some(job(stop));
            });
            while !finished.load(Ordering::Acquire) {
                std::thread::sleep(POLL);
                if must_stop_first() {
                    cancelled = true;
                    stop.flag.store(true, Ordering::Relaxed);
                    break;
                }
                tick();
            }
        });
        if cancelled {
            pgrx::check_for_interrupts!();
            raise(
                Code::ERRCODE_QUERY_CANCELED,
                "canceling statement due to user request",
            );
        }
        result.expect("the job finished")
    }
}

impl Drop for Workers {
    /// Ends the pool and joins every thread it started.
    fn drop(&mut self) {
        drop(self.pool.take());
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }
}

/// Sets a flag when dropped (at the end of a scope, or while unwinding out of it).
struct RaiseOnDrop<'a>(&'a AtomicBool);

impl Drop for RaiseOnDrop<'_> {
    /// Sets the flag.
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Whether a pending interrupt ends the statement or the process (cancel, statement
/// timeout, terminate, lost client): such interrupts are only processed once the workers
/// have stopped. (A pending client-connection check waits for the job like the others:
/// it may find the client alive, which must not cancel the build.)
fn must_stop_first() -> bool {
    // SAFETY: plain reads of the interrupt flags, on the backend thread.
    unsafe {
        pg_sys::InterruptPending != 0
            && pg_sys::InterruptHoldoffCount == 0
            && pg_sys::CritSectionCount == 0
            && (pg_sys::QueryCancelPending != 0
                || pg_sys::ProcDiePending != 0
                || pg_sys::ClientConnectionLost != 0)
    }
}

/// The stop signal a job checks at least once per node or chunk.
pub struct Stop<'t> {
    flag: AtomicBool,
    /// Set when the job runs on the backend thread: that thread and the progress tick.
    inline: Option<(ThreadId, &'t (dyn Fn() + Sync))>,
    last_tick: Mutex<Instant>,
}

impl<'t> Stop<'t> {
    /// A stop signal; `inline` when the job runs on the backend thread.
    fn new(inline: Option<(ThreadId, &'t (dyn Fn() + Sync))>) -> Stop<'t> {
        Stop {
            flag: AtomicBool::new(false),
            inline,
            last_tick: Mutex::new(Instant::now()),
        }
    }

    /// A signal that never stops (plain Rust callers and tests).
    pub fn never() -> Stop<'static> {
        Stop::new(None)
    }

    /// True when the job must give up now. A job on the backend thread also processes
    /// interrupts here (a cancel unwinds it as an ERROR) and runs the progress tick.
    pub fn stopped(&self) -> bool {
        if self.flag.load(Ordering::Relaxed) {
            return true;
        }
        if let Some((backend, tick)) = self.inline {
            if std::thread::current().id() == backend {
                // Raised while Postgres processes interrupts: if that ERRORs, the job's other
                // branches (rayon runs them before the panic leaves) stop at once.
                self.flag.store(true, Ordering::Relaxed);
                pgrx::check_for_interrupts!();
                self.flag.store(false, Ordering::Relaxed);
                let mut last = self.last_tick.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= INLINE_TICK {
                    *last = Instant::now();
                    tick();
                }
            }
        }
        false
    }
}

/// Sends a NOTICE (or WARNING) with interrupts held off, so it cannot longjmp out of Rust code.
pub fn notice(report: impl FnOnce()) {
    /// RESUME_INTERRUPTS when dropped.
    struct Resume;
    impl Drop for Resume {
        /// Undoes the HOLD_INTERRUPTS below.
        fn drop(&mut self) {
            // SAFETY: the backend thread incremented the count just before.
            unsafe { pg_sys::InterruptHoldoffCount -= 1 };
        }
    }
    // SAFETY: HOLD_INTERRUPTS on the backend thread.
    unsafe { pg_sys::InterruptHoldoffCount += 1 };
    let _resume = Resume;
    report();
}
