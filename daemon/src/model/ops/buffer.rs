//! Output and scratch buffers for the kernels.
//!
//! `vec![0f32; n]` zeroes the whole buffer on the thread that runs the op, while
//! the compute threads wait: for DenseNet training that serial `memset` was an
//! eighth of the CPU time of a step (heap blocks are reused, so the C library
//! clears them by hand). Outputs here are zeroed piece by piece by the thread
//! that then fills the piece, just before, while it is still in that core's
//! cache; scratch that a kernel overwrites before reading (patch matrices,
//! products) is kept per thread from call to call, neither allocated nor
//! cleared again.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Buffers below this many values are zeroed in place: a parallel call costs
/// more than clearing them.
const SERIAL_BELOW: usize = 1 << 15;

/// Values per piece of a plain zeroed buffer.
const ZERO_PIECE: usize = 1 << 16;

/// A `len`-value buffer cut into `piece`-value pieces (the last may be shorter),
/// with `f(i, piece_i)` run on every piece in parallel; each piece is all zeros
/// when `f` gets it, so `f` may add into it as well as overwrite it.
pub(crate) fn par_pieces(
    len: usize,
    piece: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let piece = piece.max(1);
    if len < SERIAL_BELOW {
        let mut out = vec![0f32; len];
        out.chunks_mut(piece).enumerate().for_each(|(i, p)| f(i, p));
        return out;
    }
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(piece)
        .enumerate()
        .for_each(|(i, p)| {
            p.fill(MaybeUninit::new(0.0));
            // SAFETY: every value of `p` was initialised on the line above, and
            // `MaybeUninit<f32>` has the layout of `f32`.
            let p = unsafe { &mut *(std::ptr::from_mut(p) as *mut [f32]) };
            f(i, p);
        });
    // SAFETY: the pieces cover `0..len` of the capacity and each was initialised
    // above; a panic in `f` propagates out of `for_each` before this line, and the
    // vector is then dropped with length 0.
    unsafe { out.set_len(len) };
    out
}

/// `len` zeros, written on all threads.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    par_pieces(len, ZERO_PIECE, |_, _| {})
}

/// Which of a thread's two kept scratch buffers: one for a kernel call, one for
/// a pass inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kept {
    /// A call's buffers (patch matrices, products, transformed tiles).
    Call,
    /// A pass's buffers inside a call that holds its own.
    Pass,
}

thread_local! {
    static SCRATCH: [RefCell<Vec<f32>>; 2] = const { [RefCell::new(Vec::new()), RefCell::new(Vec::new())] };
}

/// Runs `f` on `len` values of this thread's `kept` scratch buffer, kept from
/// call to call: they hold whatever an earlier call left there (always
/// initialised), so `f` must write each value before it reads it. A nested call
/// for the same buffer on the same thread (a task it took on while `f` waited)
/// gets a fresh one.
pub(crate) fn with_scratch<R>(kept: Kept, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cells| match cells[kept as usize].try_borrow_mut() {
        Ok(mut kept) => {
            if kept.len() < len {
                kept.resize(len, 0.0);
            }
            f(&mut kept[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

/// Fills both kept scratch buffers of the calling thread and of every thread
/// of the current pool with `len` NaNs, so that a kernel reading scratch it
/// did not write shows up in its tests.
#[cfg(test)]
pub(crate) fn poison_kept(len: usize) {
    let poison = || {
        SCRATCH.with(|cells| {
            for cell in cells {
                let mut kept = cell.borrow_mut();
                kept.clear();
                kept.resize(len, f32::NAN);
            }
        });
    };
    poison();
    rayon::broadcast(|_| poison());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_starts_at_zero_and_lands_in_place() {
        for (len, piece) in [(0, 4), (10, 3), (SERIAL_BELOW + 7, 1000), (1 << 17, 4096)] {
            let out = par_pieces(len, piece, |i, p| {
                assert!(p.iter().all(|&v| v == 0.0), "piece {i} not zeroed");
                for (j, v) in p.iter_mut().enumerate() {
                    *v += (i * piece + j) as f32;
                }
            });
            assert_eq!(out.len(), len);
            assert!(out.iter().enumerate().all(|(k, &v)| v == k as f32));
        }
        assert!(zeros(SERIAL_BELOW * 3 + 1).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn scratch_is_kept_per_thread_and_nested_calls_get_their_own() {
        with_scratch(Kept::Call, 8, |a| a.fill(3.0));
        with_scratch(Kept::Call, 4, |a| {
            assert_eq!(a, [3.0; 4], "kept from the last call");
            a.fill(5.0);
            for kept in [Kept::Call, Kept::Pass] {
                with_scratch(kept, 4, |b| {
                    b.fill(7.0);
                    assert_eq!(b.len(), 4);
                });
            }
            assert_eq!(a, [5.0; 4], "a nested call leaves it alone");
        });
        with_scratch(Kept::Pass, 2, |b| {
            assert_eq!(b, [7.0; 2], "the pass buffer is kept too")
        });
        with_scratch(Kept::Call, 16, |a| assert_eq!(a.len(), 16));
    }
}
