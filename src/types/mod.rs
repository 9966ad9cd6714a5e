//! SQL types: `qvector` (float4 elements) and its operators, casts and aggregates.
//!
//! `text.rs` and `binary.rs` hold the Postgres-free wire formats (tested by plain
//! `cargo test`); the other files are the thin V1-function layer over them.

pub mod aggregates;
pub mod binary;
pub mod operators;
pub mod qvector;
pub mod text;

pub use qvector::{qvector_arg, qvector_datum};
