//! Counting the FLOPs a thread's convolutions stand for: each forward, input
//! gradient and weight gradient adds its direct-convolution count (two per
//! multiply-add of the textbook loop, whichever algorithm ran: Winograd does
//! fewer), so achieved GFLOP/s compare across frameworks and against the
//! CPU's peak. A thread's count covers the ops it called, which is where
//! candle runs a custom op's CPU code (in the forward and in `backward()`).

use std::cell::Cell;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Adds `flops` to this thread's count.
pub(super) fn add(flops: u64) {
    COUNT.with(|c| c.set(c.get().wrapping_add(flops)));
}

/// Runs `f`, returning its result and the convolution FLOPs it stood for.
pub fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = COUNT.with(Cell::get);
    let out = f();
    (out, COUNT.with(Cell::get).wrapping_sub(before))
}
