//! Text form of vectors, `[1,2.5,-3e-2]`: parsing and formatting with no Postgres in it.
//!
//! The grammar follows pgvector: optional whitespace, `[`, comma-separated float
//! literals (each may be surrounded by whitespace), `]`, optional whitespace.
//! Values must be finite and fit in `f32`; formatting prints the shortest text that
//! parses back to the same `f32`, so text round-trips are exact.

use std::fmt::Write;

/// Most dimensions a vector may have (same limit as pgvector).
pub const MAX_DIMS: usize = 16000;

/// Why a text vector was rejected; the SQL layer maps each kind to a SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not of the form `[a,b,...]`.
    Syntax,
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

/// Parses the text form of a vector into its elements.
pub fn parse_vector(input: &str) -> Result<Vec<f32>, ParseError> {
    let trimmed = input.trim_matches(is_space);
    let inner = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(ParseError::Syntax)?;
    if inner.trim_matches(is_space).is_empty() {
        return Err(ParseError::NoDimensions);
    }
    let mut out = Vec::new();
    for item in inner.split(',') {
        let item = item.trim_matches(is_space);
        if item.is_empty() || !looks_numeric(item) {
            return Err(ParseError::Syntax);
        }
        let value: f64 = item.parse().map_err(|_| ParseError::Syntax)?;
        out.push(checked_f32(value, item)?);
        if out.len() > MAX_DIMS {
            return Err(ParseError::TooManyDimensions);
        }
    }
    Ok(out)
}

/// Converts an f64 element to f32, rejecting NaN, infinity and overflow.
pub fn checked_f32(value: f64, text: &str) -> Result<f32, ParseError> {
    if value.is_nan() {
        return Err(ParseError::NotANumber);
    }
    if value.is_infinite() {
        // "1e999" parses to inf in Rust: that is overflow, not a literal infinity.
        let lower = text.to_ascii_lowercase();
        return if lower.contains("inf") {
            Err(ParseError::Infinite)
        } else {
            Err(ParseError::OutOfRange(text.to_string()))
        };
    }
    let narrowed = value as f32;
    if narrowed.is_infinite() {
        return Err(ParseError::OutOfRange(text.to_string()));
    }
    Ok(narrowed)
}

/// True for the whitespace Postgres' `scanner_isspace` accepts.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// True if the literal is a float Postgres would accept (digits, sign, dot, exponent, or NaN/Infinity words).
fn looks_numeric(item: &str) -> bool {
    let lower = item.to_ascii_lowercase();
    let word = lower.trim_start_matches(['+', '-']);
    if matches!(word, "nan" | "inf" | "infinity") {
        return true;
    }
    item.bytes().any(|b| b.is_ascii_digit())
        && item
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

/// Formats elements as `[a,b,...]` with the shortest round-tripping text for each.
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

/// Appends one element: plain notation for ordinary magnitudes, exponent otherwise.
pub fn write_f32(out: &mut String, v: f32) {
    let magnitude = v.abs();
    if v != 0.0 && !(1e-4..1e15).contains(&magnitude) {
        // Rust's `{:e}` is the shortest round-trip digits; add an explicit '+' like Postgres.
        let text = format!("{v:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exp}");
            }
            _ => out.push_str(&text),
        }
    } else {
        let _ = write!(out, "{v}");
    }
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
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "1,2", "[1,2", "1,2]", "[1,2]x", "[1,,2]", "[a]", "[1;2]", "[1 2]", "[,]", "[1,]",
            "[0x10]", "[--1]", "[1e]",
        ] {
            assert_eq!(parse_vector(bad), Err(ParseError::Syntax), "{bad:?}");
        }
        assert_eq!(parse_vector("[]"), Err(ParseError::NoDimensions));
        assert_eq!(parse_vector("[ ]"), Err(ParseError::NoDimensions));
    }

    #[test]
    fn rejects_non_finite_and_overflow() {
        assert_eq!(parse_vector("[NaN]"), Err(ParseError::NotANumber));
        assert_eq!(parse_vector("[1,inf]"), Err(ParseError::Infinite));
        assert_eq!(parse_vector("[-Infinity]"), Err(ParseError::Infinite));
        assert_eq!(
            parse_vector("[1e39]"),
            Err(ParseError::OutOfRange("1e39".into()))
        );
        assert_eq!(
            parse_vector("[1e999]"),
            Err(ParseError::OutOfRange("1e999".into()))
        );
    }

    #[test]
    fn rejects_too_many_dimensions() {
        let ok = format!("[{}]", vec!["1"; MAX_DIMS].join(","));
        assert_eq!(parse_vector(&ok).unwrap().len(), MAX_DIMS);
        let bad = format!("[{}]", vec!["1"; MAX_DIMS + 1].join(","));
        assert_eq!(parse_vector(&bad), Err(ParseError::TooManyDimensions));
    }

    #[test]
    fn formats_shortest_round_trip() {
        assert_eq!(format_vector(&[1.0, 2.5, -0.03]), "[1,2.5,-0.03]");
        assert_eq!(
            format_vector(&[1e30, 1.5e-7, 0.0, -0.0]),
            "[1e+30,1.5e-7,0,-0]"
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
