//! Live QPS and mean latency over time: a background task reads the cumulative counters
//! of qhnsw_stat_indexes every interval into a ring buffer per index; rates are the
//! differences between consecutive samples.

use deadpool_postgres::Pool;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples kept per index (at the default 2 s interval: 10 minutes).
pub const CAPACITY: usize = 300;

/// One reading of the cumulative counters.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub unix_ms: f64,
    pub scans: i64,
    pub total_ms: f64,
}

/// One point of the derived series.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub unix_ms: f64,
    pub qps: f64,
    pub mean_latency_ms: Option<f64>,
}

/// Ring buffers of counter samples, keyed by index OID.
#[derive(Default)]
pub struct Sampler {
    rings: Mutex<HashMap<u32, VecDeque<Sample>>>,
}

impl Sampler {
    /// Appends a sample, dropping the oldest beyond CAPACITY.
    pub fn push(&self, oid: u32, s: Sample) {
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let ring = rings.entry(oid).or_default();
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(s);
    }

    /// QPS and mean latency between consecutive samples (a counter reset starts afresh).
    pub fn points(&self, oid: u32) -> Vec<Point> {
        let rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ring) = rings.get(&oid) else {
            return Vec::new();
        };
        ring.iter()
            .zip(ring.iter().skip(1))
            .filter_map(|(a, b)| {
                let dt = (b.unix_ms - a.unix_ms) / 1000.0;
                let ds = b.scans - a.scans;
                if dt <= 0.0 || ds < 0 {
                    return None;
                }
                let mean = (ds > 0).then(|| (b.total_ms - a.total_ms) / ds as f64);
                Some(Point {
                    unix_ms: b.unix_ms,
                    qps: ds as f64 / dt,
                    mean_latency_ms: mean,
                })
            })
            .collect()
    }

    /// The series as JSON for the API.
    pub fn series(&self, oid: u32) -> Value {
        let pts: Vec<Value> = self
            .points(oid)
            .iter()
            .map(|p| json!({"unix_ms": p.unix_ms, "qps": p.qps, "mean_latency_ms": p.mean_latency_ms}))
            .collect();
        Value::Array(pts)
    }

    /// Reads qhnsw_stat_indexes once and records every index.
    pub async fn sample_once(&self, pool: &Pool) -> Result<(), crate::error::ApiError> {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT indexrelid, scans, total_scan_time_ms FROM qhnsw_stat_indexes",
                &[],
            )
            .await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        for r in rows {
            self.push(
                r.get(0),
                Sample {
                    unix_ms: now,
                    scans: r.get(1),
                    total_ms: r.get(2),
                },
            );
        }
        Ok(())
    }

    /// Samples forever every `interval`; errors are reported on stderr and retried.
    pub async fn run(&self, pool: Pool, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if let Err(e) = self.sample_once(&pool).await {
                eprintln!("vq: sampling qhnsw_stat_indexes failed: {}", e.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_between_samples() {
        let s = Sampler::default();
        s.push(
            1,
            Sample {
                unix_ms: 0.0,
                scans: 10,
                total_ms: 5.0,
            },
        );
        s.push(
            1,
            Sample {
                unix_ms: 2000.0,
                scans: 30,
                total_ms: 15.0,
            },
        );
        s.push(
            1,
            Sample {
                unix_ms: 4000.0,
                scans: 30,
                total_ms: 15.0,
            },
        );
        s.push(
            1,
            Sample {
                unix_ms: 6000.0,
                scans: 2,
                total_ms: 1.0,
            },
        ); // reset
        let p = s.points(1);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].qps, 10.0);
        assert_eq!(p[0].mean_latency_ms, Some(0.5));
        assert_eq!(p[1].qps, 0.0);
        assert_eq!(p[1].mean_latency_ms, None);
    }

    #[test]
    fn ring_is_bounded() {
        let s = Sampler::default();
        for i in 0..(CAPACITY + 50) {
            s.push(
                7,
                Sample {
                    unix_ms: i as f64 * 1000.0,
                    scans: i as i64,
                    total_ms: 0.0,
                },
            );
        }
        assert_eq!(s.points(7).len(), CAPACITY - 1);
    }
}
