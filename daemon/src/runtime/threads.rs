//! Thread settings for candle's CPU kernels.
//!
//! candle 0.11 runs CPU work on three pools, each sized once, on first use, from
//! environment variables: rayon's global pool (`RAYON_NUM_THREADS`; convolutions and
//! gemm), candle's own rayon pool (same variable) and its spinning barrier pool
//! (`CANDLE_NUM_THREADS`, `CANDLE_BARRIER_POOL_SPIN_LIMIT`; element-wise ops). On a
//! small CPU the barrier pool's default spin limit (25,000 spins) keeps idle workers
//! busy-waiting and steals the cores the gemm threads need, so the engine lowers it
//! unless the user set it.
//!
//! [`configure`] must run before the first tensor operation and before this process
//! starts other threads: it sets the variables and builds rayon's global pool. A
//! daemon slot gets its own worker process, so every trial configures its pools
//! afresh.

use thiserror::Error;

/// Spin limit used when the user did not choose one: enough to catch the next op of
/// a training step without burning a core between steps.
pub const DEFAULT_SPIN_LIMIT: u32 = 2_000;

/// Why the thread pools could not be configured.
#[derive(Debug, Error)]
pub enum ThreadsError {
    /// Zero threads were requested.
    #[error("threads must be at least 1, got 0")]
    Zero,
    /// rayon's global pool was already built with another size.
    #[error("the thread pool was already started with {existing} threads; cannot use {wanted}")]
    AlreadyStarted {
        /// Threads of the existing pool.
        existing: usize,
        /// Threads asked for.
        wanted: usize,
    },
}

/// The number of threads to use when none is given: the CPUs this process may run
/// on (cgroup and affinity aware).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Sizes candle's and rayon's pools to `threads`. See the module docs for when to
/// call it.
pub fn configure(threads: usize) -> Result<usize, ThreadsError> {
    if threads == 0 {
        return Err(ThreadsError::Zero);
    }
    let n = threads.to_string();
    std::env::set_var("RAYON_NUM_THREADS", &n);
    std::env::set_var("CANDLE_NUM_THREADS", &n);
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var(
            "CANDLE_BARRIER_POOL_SPIN_LIMIT",
            DEFAULT_SPIN_LIMIT.to_string(),
        );
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vov-compute-{i}"))
        .build_global();
    let existing = rayon::current_num_threads();
    if built.is_err() && existing != threads {
        return Err(ThreadsError::AlreadyStarted {
            existing,
            wanted: threads,
        });
    }
    Ok(threads)
}

/// The number of threads candle's CPU kernels use in this process.
pub fn current() -> usize {
    candle_core::utils::get_num_threads()
}
