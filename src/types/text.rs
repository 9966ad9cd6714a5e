//! Text form of vectors, `[1,2.5,-3e-2]`: parsing and formatting with no Postgres in it.
//!
//! The grammar and the order of the checks follow pgvector's `vector_in`: optional
//! whitespace, `[`, comma-separated float literals (each may be surrounded by
//! whitespace), `]`, optional whitespace. An element is the longest prefix C's `strtof`
//! would read (sign, digits with an optional point and exponent, `inf`, `infinity`,
//! `nan`, `nan(...)`, hexadecimal `0x1.8p3`), rounded once to the nearest float4. NaN,
//! infinity and values beyond float4 are errors; values below the smallest float4 read
//! as zero. Formatting prints each element as PostgreSQL's
//! `float4out` does with `extra_float_digits = 1` (see `float_format.rs`), so text
//! round-trips are exact and byte-identical to pgvector's.

pub use crate::types::float_format::write_f32;
use crate::types::hex_float;

/// Most dimensions a vector may have (same limit as pgvector).
pub const MAX_DIMS: usize = 16000;

/// Why a text vector was rejected; the SQL layer maps each kind to a SQLSTATE and DETAIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not of the form `[a,b,...]` (no more specific detail).
    Syntax,
    /// The first non-space character is not `[`.
    MissingOpenBracket,
    /// Something other than whitespace follows the closing `]`.
    JunkAfterClose,
    /// An element is NaN.
    NotANumber,
    /// An element is +/- infinity.
    Infinite,
    /// An element does not fit in a float4 (the offending text).
    OutOfRange(String),
    /// `[]`.
    NoDimensions,
    /// More than [`MAX_DIMS`] elements.
    TooManyDimensions,
}

/// True for the whitespace Postgres' `scanner_isspace` accepts.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Index of the first non-space byte at or after `i`.
fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    i
}

/// Parses the text form of a vector into its elements.
pub fn parse_vector(input: &str) -> Result<Vec<f32>, ParseError> {
    let bytes = input.as_bytes();
    let mut i = skip_spaces(bytes, 0);
    if bytes.get(i) != Some(&b'[') {
        return Err(ParseError::MissingOpenBracket);
    }
    i = skip_spaces(bytes, i + 1);
    if bytes.get(i) == Some(&b']') {
        return Err(ParseError::NoDimensions);
    }
    let mut out = Vec::new();
    loop {
        if out.len() == MAX_DIMS {
            return Err(ParseError::TooManyDimensions);
        }
        i = skip_spaces(bytes, i);
        let len = scan_float(&bytes[i..]);
        if len == 0 {
            return Err(ParseError::Syntax);
        }
        // The scanned prefix is ASCII, so slicing the str there is on a char boundary.
        let token = &input[i..i + len];
        out.push(checked_f32(read_float(token), token)?);
        i = skip_spaces(bytes, i + len);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {
                i += 1;
                break;
            }
            _ => return Err(ParseError::Syntax),
        }
    }
    if skip_spaces(bytes, i) != bytes.len() {
        return Err(ParseError::JunkAfterClose);
    }
    Ok(out)
}

/// Length of the float literal at the start of `s` (0 if there is none), with
/// `strtof`'s grammar.
pub fn scan_float(s: &[u8]) -> usize {
    let sign = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let rest = &s[sign..];
    let starts_with =
        |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts_with(b"infinity") {
        return sign + 8;
    }
    if starts_with(b"inf") {
        return sign + 3;
    }
    if starts_with(b"nan") {
        // `nan(chars)` is one literal when the parenthesis closes.
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if rest.get(4 + inner) == Some(&b')') {
                return sign + 5 + inner;
            }
        }
        return sign + 3;
    }
    let hex = hex_float::scan(rest);
    if hex > 0 {
        return sign + hex;
    }
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let whole = digits(0);
    let mut i = whole;
    let mut fraction = 0;
    if rest.get(i) == Some(&b'.') {
        fraction = digits(i + 1);
        i += 1 + fraction;
    }
    if whole + fraction == 0 {
        return 0;
    }
    if matches!(rest.get(i), Some(b'e' | b'E')) {
        let exp_sign = usize::from(matches!(rest.get(i + 1), Some(b'+' | b'-')));
        let exp_digits = digits(i + 1 + exp_sign);
        if exp_digits > 0 {
            i += 1 + exp_sign + exp_digits;
        }
    }
    sign + i
}

/// Reads a literal accepted by [`scan_float`], rounding once to the nearest float4
/// (overflow reads as infinity, underflow as zero, like `strtof`).
fn read_float(token: &str) -> f32 {
    let unsigned = token.trim_start_matches(['+', '-']);
    let negative = token.starts_with('-');
    let lower = unsigned.as_bytes().first().map(|b| b.to_ascii_lowercase());
    let magnitude = match lower {
        Some(b'i') => f32::INFINITY,
        Some(b'n') => f32::NAN,
        _ if unsigned.len() > 1 && unsigned.as_bytes()[1].eq_ignore_ascii_case(&b'x') => {
            hex_float::read(unsigned)
        }
        // Rust's parser rounds correctly; it accepts every digit form scan_float scans.
        _ => unsigned.parse::<f32>().unwrap_or(f32::NAN),
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// Checks one element read from `text`: NaN, infinity and float4 overflow are errors.
fn checked_f32(value: f32, text: &str) -> Result<f32, ParseError> {
    if value.is_nan() {
        return Err(ParseError::NotANumber);
    }
    if value.is_infinite() {
        let literal = matches!(
            text.trim_start_matches(['+', '-']).as_bytes().first(),
            Some(b'i' | b'I')
        );
        return Err(if literal {
            ParseError::Infinite
        } else {
            ParseError::OutOfRange(text.to_string())
        });
    }
    Ok(value)
}

/// Formats elements as `[a,b,...]`, each as PostgreSQL's shortest float4 text.
pub fn format_vector(values: &[f32]) -> String {
    let mut out = String::with_capacity(values.len() * 10 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_f32(&mut out, *v);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_spaced() {
        assert_eq!(
            parse_vector("[1,2.5,-3e-2]").unwrap(),
            vec![1.0, 2.5, -0.03]
        );
        assert_eq!(
            parse_vector("  [ 1 , 2 ,3 ] ").unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!(parse_vector("[+1.5E+2]").unwrap(), vec![150.0]);
        assert_eq!(parse_vector("[1.,.5,-.5e1]").unwrap(), vec![1.0, 0.5, -5.0]);
        // Hexadecimal literals, as strtof reads them.
        assert_eq!(
            parse_vector("[0x10, -0X1.8p1,0x.8p-1]").unwrap(),
            vec![16.0, -3.0, 0.25]
        );
        assert_eq!(
            parse_vector("[0x1p128]"),
            Err(ParseError::OutOfRange("0x1p128".into()))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "[1,2", "[1,,2]", "[a]", "[1;2]", "[1 2]", "[,]", "[1,]", "[0xg]", "[--1]", "[1e]",
            "[1a]", "[", "[ ", "[,", "[1, ,3]", "[.]", "[1.2.3]",
        ] {
            assert_eq!(parse_vector(bad), Err(ParseError::Syntax), "{bad:?}");
        }
        for bad in ["", "1,2", "1,2]", " x[1]"] {
            assert_eq!(
                parse_vector(bad),
                Err(ParseError::MissingOpenBracket),
                "{bad:?}"
            );
        }
        for bad in ["[1,2]x", "[1,2,3]9", "[1] ]"] {
            assert_eq!(
                parse_vector(bad),
                Err(ParseError::JunkAfterClose),
                "{bad:?}"
            );
        }
        assert_eq!(parse_vector("[]"), Err(ParseError::NoDimensions));
        assert_eq!(parse_vector("[ ]"), Err(ParseError::NoDimensions));
    }

    #[test]
    fn rejects_non_finite_and_overflow() {
        assert_eq!(parse_vector("[NaN]"), Err(ParseError::NotANumber));
        assert_eq!(parse_vector("[-nan(0x1)]"), Err(ParseError::NotANumber));
        assert_eq!(parse_vector("[nan(123)]"), Err(ParseError::NotANumber));
        assert_eq!(parse_vector("[1,inf]"), Err(ParseError::Infinite));
        // As with strtof, the element is read (and checked) before what follows it.
        assert_eq!(parse_vector("[infx]"), Err(ParseError::Infinite));
        assert_eq!(parse_vector("[-Infinity]"), Err(ParseError::Infinite));
        assert_eq!(
            parse_vector("[1e39]"),
            Err(ParseError::OutOfRange("1e39".into()))
        );
        assert_eq!(
            parse_vector("[ -4e38 ,1]"),
            Err(ParseError::OutOfRange("-4e38".into()))
        );
        assert_eq!(
            parse_vector("[1e999]"),
            Err(ParseError::OutOfRange("1e999".into()))
        );
    }

    #[test]
    fn rounds_once_and_underflows_to_zero() {
        // Halfway between two float4s only in the 10th digit: a double-rounding parser
        // (text -> f64 -> f32) lands on the wrong neighbour here.
        let v = parse_vector("[1.00000005960464477539062500001]").unwrap()[0];
        assert_eq!(v, 1.000_000_1);
        assert_eq!(parse_vector("[3.4028235e38]").unwrap(), vec![f32::MAX]);
        let tiny = parse_vector("[1e-46,-1e-46]").unwrap();
        assert_eq!(tiny[0].to_bits(), 0);
        assert_eq!(tiny[1].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn rejects_too_many_dimensions() {
        let ok = format!("[{}]", vec!["1"; MAX_DIMS].join(","));
        assert_eq!(parse_vector(&ok).unwrap().len(), MAX_DIMS);
        let bad = format!("[{}]", vec!["1"; MAX_DIMS + 1].join(","));
        assert_eq!(parse_vector(&bad), Err(ParseError::TooManyDimensions));
    }

    #[test]
    fn formats_like_postgres() {
        assert_eq!(format_vector(&[1.0, 2.5, -0.03]), "[1,2.5,-0.03]");
        assert_eq!(
            format_vector(&[1e30, 1.5e-7, 0.0, -0.0]),
            "[1e+30,1.5e-07,0,-0]"
        );
        assert_eq!(
            format_vector(&[0.00001, 123456789.0]),
            "[1e-05,1.2345679e+08]"
        );
        assert_eq!(format_vector(&[f32::MAX]), "[3.4028235e+38]");
    }

    #[test]
    fn text_round_trip_is_exact() {
        let mut x: u32 = 12345;
        for _ in 0..10000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let text = format_vector(&[v]);
            assert_eq!(
                parse_vector(&text).unwrap()[0].to_bits(),
                v.to_bits(),
                "{text}"
            );
        }
    }
}
