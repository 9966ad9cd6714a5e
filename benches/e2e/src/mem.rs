//! Memory of the backend that builds an index, sampled from /proc (the benchmark runs
//! on the server's machine): anonymous RSS of the backend and of its parallel workers,
//! plus the growth of PostgreSQL's dynamic shared memory in /dev/shm (where parallel
//! builds keep shared state, e.g. pgvector's in-memory graph).

use std::os::unix::fs::MetadataExt;
use std::time::Instant;

pub struct Sampler {
    pid: u32,
    workers: Vec<u32>,
    last_scan: Option<Instant>,
    dsm_base: u64,
    pub current: u64,
    pub peak: u64,
    pub peak_anon: u64,
    pub peak_dsm: u64,
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak resident set of a process (VmHWM, includes the shared buffers it touched).
pub fn vmhwm(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM:").map(|k| k * 1024)
}

fn dsm_bytes() -> u64 {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("PostgreSQL."))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

fn parallel_workers_of(pid: u32) -> Vec<u32> {
    let needle = format!("parallel worker for PID {pid}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

impl Sampler {
    pub fn new(pid: u32) -> Sampler {
        Sampler {
            pid,
            workers: Vec::new(),
            last_scan: None,
            dsm_base: dsm_bytes(),
            current: 0,
            peak: 0,
            peak_anon: 0,
            peak_dsm: 0,
        }
    }

    pub fn sample(&mut self) {
        if self
            .last_scan
            .is_none_or(|t| t.elapsed().as_millis() >= 250)
        {
            self.workers = parallel_workers_of(self.pid);
            self.last_scan = Some(Instant::now());
        }
        let anon: u64 = std::iter::once(self.pid)
            .chain(self.workers.iter().copied())
            .filter_map(|p| status_kb(p, "RssAnon:"))
            .sum::<u64>()
            * 1024;
        let dsm = dsm_bytes().saturating_sub(self.dsm_base);
        self.current = anon + dsm;
        self.peak = self.peak.max(self.current);
        self.peak_anon = self.peak_anon.max(anon);
        self.peak_dsm = self.peak_dsm.max(dsm);
    }
}

/// CPU model, cores and memory of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {:.0} GiB RAM",
        mem as f64 / 1048576.0
    )
}

/// The 1-minute load average (other work on the machine skews timings).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}
