//! Datasets: the project's seeded synthetic generator, or base/query/ground-truth
//! files in .npy (float32/float64/float16 2-D), .fvecs, .bvecs and .ivecs.

use crate::datagen;
use crate::distance::{metric_distance, Metric};
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::Path;

/// Base rows, queries and exact top-k ids of every query.
pub struct Dataset {
    pub name: String,
    pub dims: usize,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
    pub truth: Vec<Vec<u32>>,
    /// Identifies the base rows (source, count, dims): a loaded table is reused when it matches.
    pub fingerprint: String,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.base.len() / self.dims
    }
    pub fn nqueries(&self) -> usize {
        self.queries.len() / self.dims
    }
    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dims..(i + 1) * self.dims]
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.base[i * self.dims..(i + 1) * self.dims]
    }
}

pub fn bar(len: u64, prefix: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>18} [{bar:36.cyan/blue}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

/// Synthetic rows shaped like sentence embeddings (the project's `datagen`).
pub fn synthetic(rows: usize, dims: usize, nq: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let pb = bar(2, "generate");
    pb.set_message(format!("{rows} x {dims} (seed {seed})"));
    let base = datagen::embeddings_like(rows, dims, seed);
    pb.inc(1);
    let queries = datagen::queries_like(nq, dims, seed);
    pb.inc(1);
    pb.finish();
    (base, queries)
}

/// Writes a row-major float32 matrix of `dims` columns as a 2-D .npy file.
pub fn write_npy(path: &Path, values: &[f32], dims: usize) -> Result<()> {
    let rows = values.len() / dims;
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dims}), }}");
    // Magic (6) + version (2) + header length (2) + header + newline: a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Reads a 2-D matrix from .npy, .fvecs or .bvecs; at most `limit` rows.
pub fn read_matrix(path: &Path, limit: Option<usize>) -> Result<(Vec<f32>, usize, usize)> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match ext.as_str() {
        "npy" => read_npy(&bytes, limit),
        "fvecs" => read_xvecs(&bytes, 4, limit),
        "bvecs" => read_xvecs(&bytes, 1, limit),
        _ => bail!(
            "{}: unknown extension (want .npy, .fvecs or .bvecs)",
            path.display()
        ),
    }
}

fn read_npy(bytes: &[u8], limit: Option<usize>) -> Result<(Vec<f32>, usize, usize)> {
    ensure!(
        bytes.len() >= 12 && &bytes[..6] == b"\x93NUMPY",
        "not a .npy file"
    );
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen])?;
    let field = |key: &str| -> Result<&str> {
        let i = header
            .find(key)
            .with_context(|| format!("npy header lacks {key}"))?;
        Ok(header[i + key.len()..].trim_start_matches([':', ' ']))
    };
    let descr = field("'descr'")?;
    let descr = descr[1..].split('\'').next().unwrap_or("");
    ensure!(
        field("'fortran_order'")?.starts_with("False"),
        "npy: fortran_order arrays are not supported"
    );
    let shape = field("'shape'")?;
    let shape = &shape[1..shape.find(')').context("npy shape")?];
    let dims: Vec<usize> = shape
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    ensure!(dims.len() == 2, "npy: want a 2-D array, got shape {dims:?}");
    let (n, d) = (dims[0], dims[1]);
    let n_take = limit.map_or(n, |l| l.min(n));
    let data = &bytes[start + hlen..];
    let out: Vec<f32> = match descr {
        "<f4" | "=f4" => data[..n_take * d * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        "<f8" | "=f8" => data[..n_take * d * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        "<f2" | "=f2" => data[..n_take * d * 2]
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => bail!("npy: dtype {other} not supported (want float32, float64 or float16)"),
    };
    Ok((out, n_take, d))
}

fn read_xvecs(bytes: &[u8], elem: usize, limit: Option<usize>) -> Result<(Vec<f32>, usize, usize)> {
    ensure!(bytes.len() >= 4, "empty vecs file");
    let d = i32::from_le_bytes(bytes[..4].try_into()?) as usize;
    let rec = 4 + d * elem;
    ensure!(
        d > 0 && bytes.len().is_multiple_of(rec),
        "vecs file: inconsistent record size"
    );
    let n = bytes.len() / rec;
    let n_take = limit.map_or(n, |l| l.min(n));
    let mut out = Vec::with_capacity(n_take * d);
    for r in bytes.chunks_exact(rec).take(n_take) {
        ensure!(
            i32::from_le_bytes(r[..4].try_into()?) as usize == d,
            "vecs file: rows of different dimensions"
        );
        if elem == 4 {
            out.extend(
                r[4..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
            );
        } else {
            out.extend(r[4..].iter().map(|&b| b as f32));
        }
    }
    Ok((out, n_take, d))
}

/// Reads ground truth ids from .ivecs or .npy (integer 2-D).
pub fn read_truth(path: &Path, limit: usize) -> Result<Vec<Vec<u32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().and_then(|e| e.to_str()) == Some("ivecs") {
        let mut out = Vec::new();
        let mut off = 0;
        while off + 4 <= bytes.len() && out.len() < limit {
            let k = i32::from_le_bytes(bytes[off..off + 4].try_into()?) as usize;
            let row = &bytes[off + 4..off + 4 + 4 * k];
            out.push(
                row.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            );
            off += 4 + 4 * k;
        }
        Ok(out)
    } else {
        bail!("{}: ground truth must be .ivecs", path.display())
    }
}

/// Exact top-k by brute force (rayon), with a progress bar.
pub fn exact_truth(
    base: &[f32],
    queries: &[f32],
    dims: usize,
    k: usize,
    metric: Metric,
) -> Vec<Vec<u32>> {
    let nq = queries.len() / dims;
    let pb = bar(nq as u64, "ground truth");
    pb.set_message(format!("brute force over {} rows", base.len() / dims));
    let mut out = Vec::with_capacity(nq);
    for chunk in queries.chunks(dims * 50) {
        out.extend(datagen::exact_knn(base, chunk, dims, k, metric));
        pb.inc((chunk.len() / dims) as u64);
    }
    pb.finish();
    out
}

/// Recall@k of `got` for every query, by distance: a returned row counts when its exact
/// distance is no larger than that of the k-th true neighbour (robust to ties).
pub fn recall(ds: &Dataset, metric: Metric, k: usize, got: &[Vec<i32>]) -> f64 {
    let total: f64 = got
        .par_iter()
        .enumerate()
        .map(|(qi, ids)| {
            let q = ds.query(qi);
            let t = &ds.truth[qi];
            let kk = k.min(t.len());
            if kk == 0 {
                return 0.0;
            }
            let kth = metric_distance(metric, q, ds.row(t[kk - 1] as usize));
            let tol = 1e-6 * kth.abs().max(1e-3);
            let mut seen = std::collections::HashSet::new();
            let hits = ids
                .iter()
                .take(kk)
                .filter(|&&id| id >= 0 && (id as usize) < ds.rows() && seen.insert(id))
                .filter(|&&id| metric_distance(metric, q, ds.row(id as usize)) <= kth + tol)
                .count();
            hits as f64 / kk as f64
        })
        .sum();
    total / got.len().max(1) as f64
}
