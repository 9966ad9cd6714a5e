//! SQL types: `qvector` (float4 elements) and `sq8vector` (one byte per element plus a
//! per-vector offset and scale), with their operators, casts and aggregates.
//!
//! `text.rs`, `binary.rs` and `sq8.rs` hold the Postgres-free formats (tested by plain
//! `cargo test`); the other files are the thin V1-function layer over them.

pub mod aggregates;
pub mod binary;
pub mod operators;
pub mod qvector;
pub mod sq8;
pub mod sq8vector;
pub mod text;
pub mod vector_type;

pub use qvector::{qvector_arg, qvector_datum};
