//! Output buffers for the kernels, zeroed on every thread instead of on the
//! calling one.
//!
//! `vec![0f32; n]` zeroes the whole buffer on the thread that runs the op, while
//! the compute threads wait: for DenseNet training that serial `memset` was an
//! eighth of the CPU time of a step (heap blocks are reused, so the C library
//! clears them by hand). Here each piece is zeroed by the thread that then
//! fills it, just before, while it is still in that core's cache.
#![allow(unsafe_code)]

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
}
