//! Hexadecimal float literals (`0x1.8p3`), which C's `strtof` (and so pgvector's
//! `vector_in`) accepts: scanning and reading with one correct rounding to float4, with no
//! Postgres in it.
//!
//! Grammar (after an optional sign): `0x` or `0X`, hex digits with at most one point and at
//! least one digit, then optionally `p` or `P`, an optional sign and decimal digits (only
//! taken when a digit follows). The value rounds to the nearest float4, ties to even;
//! beyond float4 it is infinity and below half the smallest subnormal it is zero, as
//! `strtof` returns.

/// Length of the hex literal at the start of `s` (no sign), or 0 if there is none.
pub fn scan(s: &[u8]) -> usize {
    if s.len() < 2 || s[0] != b'0' || !matches!(s[1], b'x' | b'X') {
        return 0;
    }
    let hex_digits = |from: usize| {
        s.get(from..)
            .unwrap_or(&[])
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count()
    };
    let whole = hex_digits(2);
    let mut i = 2 + whole;
    let mut fraction = 0;
    if s.get(i) == Some(&b'.') {
        fraction = hex_digits(i + 1);
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return 0;
    }
    if matches!(s.get(i), Some(b'p' | b'P')) {
        let sign = usize::from(matches!(s.get(i + 1), Some(b'+' | b'-')));
        let digits = s
            .get(i + 1 + sign..)
            .unwrap_or(&[])
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            i += 1 + sign + digits;
        }
    }
    i
}

/// Reads a literal accepted by [`scan`] (no sign) as the nearest float4.
pub fn read(literal: &str) -> f32 {
    let body = &literal.as_bytes()[2..];
    // The first 15 significant hex digits (60 bits) stay exact in `m`; later non-zero
    // digits only set `sticky` (they decide rounding, never the kept bits).
    let (mut m, mut exp2, mut sticky, mut seen_point, mut kept) = (0u64, 0i64, false, false, 0);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'.' {
            seen_point = true;
        } else if let Some(d) = (b as char).to_digit(16) {
            if m == 0 && d == 0 {
                // Leading zeros only move the point.
            } else if kept < 15 {
                m = m << 4 | d as u64;
                kept += 1;
            } else {
                sticky |= d != 0;
                exp2 += 4;
            }
            if seen_point {
                exp2 -= 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if i < body.len() {
        // `p` exponent (decimal, saturated far beyond float4's range).
        let exp: i64 = std::str::from_utf8(&body[i + 1..])
            .ok()
            .map(|t| {
                let (negative, digits) = match t.as_bytes().first() {
                    Some(b'-') => (true, &t[1..]),
                    Some(b'+') => (false, &t[1..]),
                    _ => (false, t),
                };
                let magnitude = digits
                    .bytes()
                    .fold(0i64, |n, c| (n * 10 + (c - b'0') as i64).min(1 << 20));
                if negative {
                    -magnitude
                } else {
                    magnitude
                }
            })
            .unwrap_or(0);
        exp2 += exp;
    }
    round_to_f32(m, exp2, sticky)
}

/// `(m + ε) × 2^exp2` rounded to the nearest float4, ties to even (`ε` is a positive amount
/// below one unit of `m` when `sticky`).
fn round_to_f32(m: u64, exp2: i64, sticky: bool) -> f32 {
    if m == 0 {
        return 0.0;
    }
    let bits = 64 - m.leading_zeros() as i64;
    // Exponent of the leading bit, and how many bits float4 keeps from there: 24 for a
    // normal number, fewer down to 2^-149 for a subnormal.
    let top = exp2 + bits - 1;
    if top > 127 {
        return f32::INFINITY;
    }
    let keep = (top + 150).min(24);
    if keep < 0 {
        return 0.0;
    }
    let drop = bits - keep;
    let (mut kept, low_exp) = if drop > 0 {
        let kept = m >> drop;
        let half = 1u64 << (drop - 1);
        let rest = m & ((1u64 << drop) - 1);
        let above_half = rest > half || (rest == half && sticky);
        let round_up = above_half || (rest == half && !sticky && kept & 1 == 1);
        (kept + u64::from(round_up), exp2 + drop)
    } else {
        (m, exp2)
    };
    let mut low_exp = low_exp;
    if kept >> 24 != 0 {
        // Rounding carried into a 25th bit.
        kept >>= 1;
        low_exp += 1;
    }
    // kept < 2^24 and the result is a float4 (or 2^128 after a carry), so this is exact.
    let value = kept as f64 * 2f64.powi(low_exp as i32);
    if value >= 2f64.powi(128) {
        f32::INFINITY
    } else {
        value as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_like_strtof() {
        assert_eq!(scan(b"0x10,"), 4);
        assert_eq!(scan(b"0X1.8p3]"), 7);
        assert_eq!(scan(b"0x.8p-1"), 7);
        assert_eq!(scan(b"0x1p"), 3);
        assert_eq!(scan(b"0x1p+"), 3);
        assert_eq!(scan(b"0x"), 0);
        assert_eq!(scan(b"0x."), 0);
        assert_eq!(scan(b"0xg"), 0);
        assert_eq!(scan(b"10"), 0);
    }

    #[test]
    fn reads_exact_and_rounded_values() {
        assert_eq!(read("0x10"), 16.0);
        assert_eq!(read("0x1.8p3"), 12.0);
        assert_eq!(read("0x.8"), 0.5);
        assert_eq!(read("0x1p-149"), f32::from_bits(1));
        assert_eq!(read("0x1p-150"), 0.0); // a tie between 0 and the smallest subnormal
        assert_eq!(read("0x1.0000000001p-150"), f32::from_bits(1));
        assert_eq!(read("0x1p-151"), 0.0);
        assert_eq!(read("0x1.fffffep127"), f32::MAX);
        assert_eq!(read("0x1.ffffffp127"), f32::INFINITY); // rounds up past FLT_MAX
        assert_eq!(read("0x1p128"), f32::INFINITY);
        assert_eq!(read("0x1.000001p0"), 1.0); // tie, even
        assert_eq!(read("0x1.000003p0"), 1.000_000_2); // tie, even upwards
        assert_eq!(read("0x1.0000010000000000001p0"), 1.000_000_1); // just above a tie
        assert_eq!(read("0x0000000000000000000001p0"), 1.0);
        assert_eq!(read("0x1p99999999999"), f32::INFINITY);
        assert_eq!(read("0x1p-99999999999"), 0.0);
    }
}
