//! Element-wise `+ - *` with pgvector's float checks, and the bounds of `subvector`,
//! with no Postgres in it.
//!
//! As in pgvector (and PostgreSQL's `float4pl`/`float4mi`/`float4mul`), a result that
//! becomes infinite is an overflow, and a product that becomes zero although neither
//! factor is zero is an underflow; a subnormal product is a valid result.

use std::ops::Range;

/// An element-wise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
}

/// Why an element-wise operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// A result is beyond float4 ("value out of range: overflow").
    Overflow,
    /// A product of non-zero factors rounded to zero ("value out of range: underflow").
    Underflow,
}

/// Writes `op(a[i], b[i])` into `out` (all three the same length), checking every result.
pub fn apply(op: Op, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), OpError> {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = match op {
            Op::Add => x + y,
            Op::Sub => x - y,
            Op::Mul => x * y,
        };
    }
    for ((o, x), y) in out.iter().zip(a).zip(b) {
        if o.is_infinite() {
            return Err(OpError::Overflow);
        }
        if op == Op::Mul && *o == 0.0 && *x != 0.0 && *y != 0.0 {
            return Err(OpError::Underflow);
        }
    }
    Ok(())
}

/// The element range `subvector(v, start, count)` selects from `dims` elements, with
/// pgvector's rules: `start` is 1-based and may be below 1 (the range is then cut at
/// the first element), the range is cut at the last element, and an empty range is
/// an error (`None`).
pub fn subvector_range(dims: usize, start: i32, count: i32) -> Option<Range<usize>> {
    if count < 1 {
        return None;
    }
    let dims = dims as i64;
    let end = (start as i64 + count as i64).min(dims + 1);
    let first = (start as i64).max(1);
    if first > dims || end <= first {
        return None;
    }
    Some((first - 1) as usize..(end - 1) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `op` on two equal-length slices.
    fn run(op: Op, a: &[f32], b: &[f32]) -> Result<Vec<f32>, OpError> {
        let mut out = vec![0.0; a.len()];
        apply(op, a, b, &mut out).map(|_| out)
    }

    #[test]
    fn exact_results() {
        assert_eq!(run(Op::Add, &[1.0, 2.0], &[3.0, 4.5]), Ok(vec![4.0, 6.5]));
        assert_eq!(run(Op::Sub, &[1.0, 2.0], &[3.0, 4.5]), Ok(vec![-2.0, -2.5]));
        assert_eq!(
            run(Op::Mul, &[1.0, 0.0, -2.0], &[3.0, 5.0, 4.0]),
            Ok(vec![3.0, 0.0, -8.0])
        );
    }

    #[test]
    fn overflow_and_underflow() {
        assert_eq!(run(Op::Add, &[3e38], &[3e38]), Err(OpError::Overflow));
        assert_eq!(run(Op::Sub, &[-3e38], &[3e38]), Err(OpError::Overflow));
        assert_eq!(run(Op::Mul, &[1e37], &[1e37]), Err(OpError::Overflow));
        assert_eq!(run(Op::Mul, &[1e-37], &[1e-37]), Err(OpError::Underflow));
        assert_eq!(run(Op::Mul, &[-1e-30], &[1e-30]), Err(OpError::Underflow));
        // A subnormal product is not an underflow (as in pgvector and float4mul).
        assert_eq!(
            run(Op::Mul, &[1e-20], &[1e-20]),
            Ok(vec![1e-20f32 * 1e-20f32])
        );
        // Zero factors and exact cancellation are fine.
        assert_eq!(run(Op::Mul, &[0.0], &[1e-37]), Ok(vec![0.0]));
        assert_eq!(run(Op::Sub, &[1e-45], &[1e-45]), Ok(vec![0.0]));
    }

    #[test]
    fn subvector_bounds_follow_pgvector() {
        assert_eq!(subvector_range(5, 1, 3), Some(0..3));
        assert_eq!(subvector_range(5, 3, 2), Some(2..4));
        assert_eq!(subvector_range(5, -1, 3), Some(0..1));
        assert_eq!(subvector_range(5, 3, 9), Some(2..5));
        assert_eq!(subvector_range(5, 1, 0), None);
        assert_eq!(subvector_range(5, 3, -1), None);
        assert_eq!(subvector_range(5, -1, 2), None);
        assert_eq!(subvector_range(5, 6, 1), None);
        assert_eq!(subvector_range(5, i32::MAX, 10), None);
        assert_eq!(subvector_range(5, 3, i32::MAX), Some(2..5));
        assert_eq!(subvector_range(5, -2147483644, i32::MAX), Some(0..2));
        assert_eq!(subvector_range(5, i32::MIN, i32::MAX), None);
    }
}
