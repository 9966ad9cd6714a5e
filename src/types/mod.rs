//! SQL types: `qvector` (float4 elements) and `sq8vector` (one byte per element plus a
//! per-vector offset and scale), with their operators, casts and aggregates.
//!
//! `text.rs`, `float_format.rs`, `binary.rs`, `vecops.rs` and `sq8.rs` hold the Postgres-free formats (tested by plain
//! `cargo test`); the other files are the thin V1-function layer over them.

pub mod aggregates;
pub mod binary;
pub mod float_format;
pub mod hex_float;
pub mod operators;
pub mod pgvector;
pub mod qvector;
pub mod sq8;
pub mod sq8vector;
pub mod subvector;
pub mod text;
pub mod vecops;
pub mod vector_type;

pub use qvector::{qvector_arg, qvector_datum};
