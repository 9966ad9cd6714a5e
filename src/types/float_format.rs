//! Text form of one float4 element, byte-identical to PostgreSQL's
//! `float_to_shortest_decimal_bufn` (what pgvector's `vector_out` prints and what
//! `float4out` prints under `extra_float_digits > 0`), with no Postgres in it.
//!
//! Digits: PostgreSQL's Ryū picks the shortest decimal strictly inside the rounding
//! interval of the float (both bounds excluded), the closest to the exact value among
//! those, and the even one on an exact tie. Rust's `{:e}` computes the shortest digits
//! too, but includes the bounds of an even mantissa and breaks ties upwards; so we take
//! Rust's digits, and only when they lie exactly on a bound or are one side of an exact
//! tie (both cheap exact integer tests) we redo the choice on exact decimal expansions.
//! Layout: plain notation when the decimal exponent is in -4..6 (`0.0001`, `123456`),
//! otherwise one digit, an optional fraction and a signed exponent of at least two
//! digits (`1e-05`, `1.2345679e+08`); zero prints as `0` or `-0`.

use std::fmt::Write;

/// Decimal exponents printed in plain notation (PostgreSQL's thresholds for float4).
const PLAIN_EXPONENTS: std::ops::Range<i32> = -4..6;

/// A positive decimal `0.d1 d2 ... × 10^(exp + 1)`, i.e. `d1.d2... × 10^exp`: ASCII
/// digits without leading or trailing zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Decimal {
    digits: Vec<u8>,
    exp: i32,
}

impl Decimal {
    /// Parses Rust's `{:e}` output of a positive finite value (`d.ddde-5`).
    fn from_sci(text: &str) -> Decimal {
        let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
        let mut exp: i32 = exp.parse().unwrap_or(0);
        let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        while digits.len() > 1 && digits[0] == b'0' {
            digits.remove(0);
            exp -= 1;
        }
        while digits.len() > 1 && digits.last() == Some(&b'0') {
            digits.pop();
        }
        Decimal { digits, exp }
    }

    /// The exact decimal expansion of a positive finite f64 (at most ~770 digits; the
    /// values used here need far fewer).
    fn exact(x: f64) -> Decimal {
        Decimal::from_sci(&format!("{x:.800e}"))
    }

    /// Digit `i` (0 beyond the end).
    fn digit(&self, i: usize) -> u8 {
        self.digits.get(i).map_or(0, |d| d - b'0')
    }

    /// Orders two positive decimals.
    fn compare(&self, other: &Decimal) -> std::cmp::Ordering {
        self.exp.cmp(&other.exp).then_with(|| {
            let n = self.digits.len().max(other.digits.len());
            (0..n)
                .map(|i| self.digit(i).cmp(&other.digit(i)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }

    /// The first `p` digits of `self` as an integer (its first digit weighs `10^exp`).
    fn truncated(&self, p: usize) -> u64 {
        (0..p).fold(0u64, |n, i| n * 10 + self.digit(i) as u64)
    }

    /// `n` (a `p`-digit integer, or `10^p` after a carry) whose first digit has weight
    /// `10^exp`, as a decimal.
    fn from_int(mut n: u64, p: usize, exp: i32) -> Decimal {
        let mut exp = exp;
        if n >= 10u64.pow(p as u32) {
            exp += 1;
        }
        while n > 0 && n.is_multiple_of(10) {
            n /= 10;
        }
        Decimal {
            digits: n.to_string().into_bytes(),
            exp,
        }
    }
}

/// A float4 as `m2 × 2^e2` with Ryū's bounds: the rounding interval is
/// `((4·m2 - 1 - mm_shift) × 2^(e2-2), (4·m2 + 2) × 2^(e2-2))`.
struct Binary {
    m2: u64,
    e2: i32,
    mm_shift: u64,
}

impl Binary {
    /// Decodes a finite, non-zero float4 (sign ignored).
    fn of(v: f32) -> Binary {
        let bits = v.to_bits() & 0x7fff_ffff;
        let (exponent, mantissa) = (bits >> 23, (bits & 0x7f_ffff) as u64);
        let (m2, e2) = if exponent == 0 {
            (mantissa, -149)
        } else {
            (mantissa | 1 << 23, exponent as i32 - 150)
        };
        let mm_shift = u64::from(mantissa != 0 || exponent <= 1);
        Binary { m2, e2, mm_shift }
    }

    /// Lower bound numerator (times `2^(e2-2)`).
    fn low(&self) -> u64 {
        4 * self.m2 - 1 - self.mm_shift
    }

    /// Upper bound numerator (times `2^(e2-2)`).
    fn high(&self) -> u64 {
        4 * self.m2 + 2
    }
}

/// `c × 10^k == n × 2^e` exactly?
fn exact_eq(mut c: u64, mut k: i32, mut n: u64, mut e: i32) -> bool {
    if c == 0 || n == 0 {
        return c == n;
    }
    let twos = n.trailing_zeros();
    n >>= twos;
    e += twos as i32;
    while c.is_multiple_of(10) {
        c /= 10;
        k += 1;
    }
    let a = c.trailing_zeros();
    c >>= a;
    let mut b = 0;
    while c.is_multiple_of(5) {
        c /= 5;
        b += 1;
    }
    // c·2^(a+k)·5^(b+k) with c coprime to 10, against odd n·2^e.
    if b + k < 0 || a as i32 + k != e {
        return false;
    }
    5u64.checked_pow((b + k) as u32)
        .and_then(|p| c.checked_mul(p))
        == Some(n)
}

/// `m × 2^e` as an exact f64 (`m < 2^53`, the result a normal f64).
fn f64_of(m: u64, e: i32) -> f64 {
    m as f64 * f64::from_bits(((e + 1023) as u64) << 52)
}

/// PostgreSQL's choice of digits for a finite, non-zero `|v|` when Rust's candidate is
/// in doubt: the shortest decimal strictly inside the rounding interval, the closest,
/// ties to even — computed on exact expansions.
fn exact_choice(v: f32) -> Decimal {
    let b = Binary::of(v);
    let value = Decimal::exact(v.abs() as f64);
    let low = Decimal::exact(f64_of(b.low(), b.e2 - 2));
    let high = Decimal::exact(f64_of(b.high(), b.e2 - 2));
    let inside = |d: &Decimal| low.compare(d).is_lt() && d.compare(&high).is_lt();
    for p in 1..=17 {
        let down = value.truncated(p);
        if value.digits.len() <= p {
            // `value` itself has p digits: nothing is closer.
            return value;
        }
        let up = down + 1;
        let (down_d, up_d) = (
            Decimal::from_int(down, p, value.exp),
            Decimal::from_int(up, p, value.exp),
        );
        // Compare the dropped tail with one half of the last kept digit.
        let tail = &value.digits[p..];
        let half = tail[0].cmp(&b'5').then(if tail.len() > 1 {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        });
        let prefer_up = match half {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => down % 2 == 1,
        };
        let (first, second) = if prefer_up {
            (up_d, down_d)
        } else {
            (down_d, up_d)
        };
        if inside(&first) {
            return first;
        }
        if inside(&second) {
            return second;
        }
    }
    value
}

/// A fixed stack buffer that `write!` can fill (no allocation per element).
struct StackBuf {
    bytes: [u8; 32],
    len: usize,
}

impl Write for StackBuf {
    /// Appends `s`, failing if it does not fit.
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Up to 9 significant digits (ASCII) and the decimal exponent of the first one.
struct Digits {
    bytes: [u8; 16],
    count: usize,
    exp: i32,
}

impl Digits {
    /// Rust's shortest round-trip digits of a finite, non-zero `|v|` (`{:e}` prints
    /// them without trailing zeros, e.g. `1.2345679e8`).
    fn shortest(v: f32) -> Digits {
        let mut buf = StackBuf {
            bytes: [0; 32],
            len: 0,
        };
        // At most 15 bytes ("1.1754942e-38"), so this cannot fail.
        let _ = write!(buf, "{:e}", v.abs());
        let text = &buf.bytes[..buf.len];
        let e = text.iter().position(|b| *b == b'e').unwrap_or(text.len());
        let mut d = Digits {
            bytes: [0; 16],
            count: 0,
            exp: 0,
        };
        for b in text[..e].iter().filter(|b| b.is_ascii_digit()) {
            d.bytes[d.count] = *b;
            d.count += 1;
        }
        let (negative, magnitude) = match text.get(e + 1) {
            Some(b'-') => (true, &text[e + 2..]),
            _ => (false, &text[(e + 1).min(text.len())..]),
        };
        let magnitude = magnitude
            .iter()
            .fold(0i32, |n, b| n * 10 + (b - b'0') as i32);
        d.exp = if negative { -magnitude } else { magnitude };
        d
    }

    /// The digits as an integer.
    fn value(&self) -> u64 {
        self.bytes[..self.count]
            .iter()
            .fold(0u64, |n, b| n * 10 + (b - b'0') as u64)
    }

    /// Copies a decimal (at most 16 digits) into digit form.
    fn from_decimal(d: &Decimal) -> Digits {
        let mut out = Digits {
            bytes: [0; 16],
            count: d.digits.len().min(16),
            exp: d.exp,
        };
        out.bytes[..out.count].copy_from_slice(&d.digits[..out.count]);
        out
    }
}

/// PostgreSQL's digits for a finite, non-zero `|v|`.
fn postgres_digits(v: f32) -> Digits {
    let d = Digits::shortest(v);
    let b = Binary::of(v);
    let c = d.value();
    // Weight of the last digit.
    let k = d.exp - d.count as i32 + 1;
    let on_bound = exact_eq(c, k, b.low(), b.e2 - 2) || exact_eq(c, k, b.high(), b.e2 - 2);
    let tie = exact_eq(10 * c + 5, k - 1, b.m2, b.e2)
        || (c > 0 && exact_eq(10 * c - 5, k - 1, b.m2, b.e2));
    if on_bound || tie {
        Digits::from_decimal(&exact_choice(v))
    } else {
        d
    }
}

/// Appends one finite element in PostgreSQL's shortest float4 text form.
pub fn write_f32(out: &mut String, v: f32) {
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    let d = postgres_digits(v);
    let (digits, count, exp) = (&d.bytes[..d.count], d.count, d.exp);
    let push = |out: &mut String, d: &[u8]| d.iter().for_each(|b| out.push(*b as char));
    if PLAIN_EXPONENTS.contains(&exp) {
        // Digits before the decimal point (zero or negative: a leading "0.000").
        let point = exp + 1;
        if point <= 0 {
            out.push_str("0.");
            (0..-point).for_each(|_| out.push('0'));
            push(out, digits);
        } else if point as usize >= count {
            push(out, digits);
            (count..point as usize).for_each(|_| out.push('0'));
        } else {
            push(out, &digits[..point as usize]);
            out.push('.');
            push(out, &digits[point as usize..]);
        }
    } else {
        push(out, &digits[..1]);
        if count > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of one element.
    fn text(v: f32) -> String {
        let mut s = String::new();
        write_f32(&mut s, v);
        s
    }

    #[test]
    fn plain_and_exponent_forms_match_postgres() {
        let cases: &[(f32, &str)] = &[
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00001, "1e-05"),
            (-0.00001, "-1e-05"),
            (123456.0, "123456"),
            (100000.0, "100000"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.2345679e+08"),
            (16777216.0, "1.6777216e+07"),
            (1.5e38, "1.5e+38"),
            (-1.5e-38, "-1.5e-38"),
            (1e30, "1e+30"),
            (1.5e-7, "1.5e-07"),
            (f32::MAX, "3.4028235e+38"),
            (f32::MIN_POSITIVE, "1.1754944e-38"),
            (f32::from_bits(1), "1e-45"),
            (f32::from_bits(0x007f_ffff), "1.1754942e-38"),
            (1.23456, "1.23456"),
            (0.3, "0.3"),
            (1.0 / 3.0, "0.33333334"),
            (12345.678, "12345.678"),
            // An exact tie between 0.00024414062 and ...63 (2^-12): PostgreSQL takes
            // the even digit.
            (1.0 / 4096.0, "0.00024414062"),
            // 33556490 lies exactly on the upper bound of 33556488's interval, which
            // PostgreSQL excludes.
            (33_556_488.0, "3.3556488e+07"),
        ];
        for (v, want) in cases {
            assert_eq!(text(*v), *want, "{v:e}");
        }
    }

    #[test]
    fn exact_equality_test() {
        assert!(exact_eq(244140625, -12, 1, -12));
        assert!(!exact_eq(244140624, -12, 1, -12));
        assert!(exact_eq(5, 0, 5, 0));
        assert!(exact_eq(3355649, 1, 33556490, 0));
        assert!(exact_eq(15, -1, 3, -1));
        assert!(!exact_eq(1, -1, 1, -3));
    }

    #[test]
    fn output_reads_back_exactly() {
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if v.is_finite() {
                assert_eq!(text(v).parse::<f32>().unwrap().to_bits(), x, "{}", text(v));
            }
        }
    }
}
