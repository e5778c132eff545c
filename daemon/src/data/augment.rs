//! Seeded data augmentation on 8-bit CHW images, writing the model's f32 input
//! (scaled to [0, 1]).
//!
//! `shift` follows Keras' `ImageDataGenerator(width_shift_range=4,
//! height_shift_range=4, fill_mode="nearest")` with whole-pixel shifts drawn
//! uniformly from -4..=4; `crop` is the torchvision habit (zero-pad 4, random crop),
//! which is the same shift with zero fill. `flip` mirrors horizontally with
//! probability 1/2. `standard` (shift + flip) is the published setting.

use super::Augmentation;
use rand::Rng;

/// Largest shift in pixels, for `shift` and `crop`.
pub const MAX_SHIFT: i32 = 4;

/// How pixels outside the image are filled after a shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Repeat the nearest edge pixel.
    Nearest,
    /// Zeros.
    Zero,
}

/// One concrete transform drawn from a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    /// Horizontal shift in pixels (content moves right when positive).
    pub dx: i32,
    /// Vertical shift in pixels (content moves down when positive).
    pub dy: i32,
    /// Mirror horizontally.
    pub flip: bool,
    /// Fill for uncovered pixels.
    pub fill: Fill,
}

impl Transform {
    /// The identity.
    pub const IDENTITY: Transform = Transform {
        dx: 0,
        dy: 0,
        flip: false,
        fill: Fill::Zero,
    };
}

/// Draws a transform from the policy.
pub fn draw(policy: Augmentation, rng: &mut impl Rng) -> Transform {
    let (shift, fill, flip) = match policy {
        Augmentation::None => return Transform::IDENTITY,
        Augmentation::Flip => (false, Fill::Zero, true),
        Augmentation::Shift => (true, Fill::Nearest, false),
        Augmentation::Crop => (true, Fill::Zero, false),
        Augmentation::Standard => (true, Fill::Nearest, true),
        Augmentation::StandardCrop => (true, Fill::Zero, true),
    };
    let mut t = Transform {
        fill,
        ..Transform::IDENTITY
    };
    if shift {
        t.dx = rng.random_range(-MAX_SHIFT..=MAX_SHIFT);
        t.dy = rng.random_range(-MAX_SHIFT..=MAX_SHIFT);
    }
    if flip {
        t.flip = rng.random_bool(0.5);
    }
    t
}

/// Source coordinate for destination `d` after a shift of `shift`, or `None` when
/// it falls outside and the fill is zero.
fn source(d: i32, shift: i32, side: i32, fill: Fill) -> Option<usize> {
    let s = d - shift;
    if (0..side).contains(&s) {
        Some(s as usize)
    } else {
        match fill {
            Fill::Nearest => Some(s.clamp(0, side - 1) as usize),
            Fill::Zero => None,
        }
    }
}

/// Writes `src` (C x H x W bytes) transformed by `t` into `dst`, scaled to [0, 1].
pub fn apply(src: &[u8], dst: &mut [f32], (h, w): (usize, usize), t: Transform) {
    const SCALE: f32 = 1.0 / 255.0;
    let (hi, wi) = (h as i32, w as i32);
    let cols: Vec<Option<usize>> = (0..wi)
        .map(|x| {
            let x = if t.flip { wi - 1 - x } else { x };
            source(x, t.dx, wi, t.fill)
        })
        .collect();
    for (plane, out) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(h * w)) {
        for (y, row) in out.chunks_exact_mut(w).enumerate() {
            let Some(sy) = source(y as i32, t.dy, hi, t.fill) else {
                row.fill(0.0);
                continue;
            };
            let src_row = &plane[sy * w..(sy + 1) * w];
            for (o, c) in row.iter_mut().zip(&cols) {
                *o = c.map_or(0.0, |sx| f32::from(src_row[sx]) * SCALE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::seed;

    /// A 1x3x3 image 1..9, row-major.
    const IMG: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn run(t: Transform) -> Vec<u8> {
        let mut out = vec![0f32; 9];
        apply(&IMG, &mut out, (3, 3), t);
        out.iter().map(|v| (v * 255.0).round() as u8).collect()
    }

    #[test]
    fn identity_flip_and_shifts() {
        assert_eq!(run(Transform::IDENTITY), IMG);
        let flip = Transform {
            flip: true,
            ..Transform::IDENTITY
        };
        assert_eq!(run(flip), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
        let right_zero = Transform {
            dx: 1,
            ..Transform::IDENTITY
        };
        assert_eq!(run(right_zero), [0, 1, 2, 0, 4, 5, 0, 7, 8]);
        let down_nearest = Transform {
            dy: 1,
            fill: Fill::Nearest,
            ..Transform::IDENTITY
        };
        assert_eq!(run(down_nearest), [1, 2, 3, 1, 2, 3, 4, 5, 6]);
        let up_left_nearest = Transform {
            dx: -2,
            dy: -1,
            fill: Fill::Nearest,
            flip: false,
        };
        assert_eq!(run(up_left_nearest), [6, 6, 6, 9, 9, 9, 9, 9, 9]);
    }

    #[test]
    fn draws_are_seeded_and_bounded() {
        let draws = |s| -> Vec<Transform> {
            let mut rng = seed::rng(s, &[]);
            (0..200)
                .map(|_| draw(Augmentation::Standard, &mut rng))
                .collect()
        };
        let a = draws(1);
        assert_eq!(a, draws(1));
        assert_ne!(a, draws(2));
        assert!(a
            .iter()
            .all(|t| t.dx.abs() <= 4 && t.dy.abs() <= 4 && t.fill == Fill::Nearest));
        assert!(a.iter().any(|t| t.flip) && a.iter().any(|t| !t.flip));
        assert!(a.iter().any(|t| t.dx == 4) && a.iter().any(|t| t.dy == -4));
        let mut rng = seed::rng(0, &[]);
        assert_eq!(draw(Augmentation::None, &mut rng), Transform::IDENTITY);
        assert!((0..50).all(|_| draw(Augmentation::StandardCrop, &mut rng).fill == Fill::Zero));
    }
}
