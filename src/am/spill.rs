//! Spill files of the memory-bounded build (issue 15): when even the rows' codes do not
//! fit `maintenance_work_mem`, they are appended to a temporary file and read back
//! through a read-only memory map while the graph is linked. The mapped pages are the
//! kernel's file cache (reclaimable, `RssFile`), not the backend's memory, exactly like a
//! sort that spills to disk past `work_mem`; the backend itself holds only the graph.
//!
//! The file lives in `base/pgsql_tmp` of the data directory under Postgres's temporary
//! file prefix (so a crash leaves nothing that startup does not remove), is unlinked as
//! soon as it is created (so an ERROR or a cancel frees it with the descriptor), counts
//! against `temp_file_limit`, and its descriptor is reserved with `AcquireExternalFD`.

use crate::fmgr::raise;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes buffered before each write to the file.
const WRITE_BUFFER: usize = 1 << 20;

/// Spill files made by this backend (part of each file's name).
static SPILLS: AtomicU32 = AtomicU32::new(0);

/// Row data appended one row at a time: in memory, or to a spill file.
pub enum CodeStore {
    /// Held in the backend's memory.
    Memory(Vec<u8>),
    /// Appended to a spill file.
    Spill(SpillWriter),
}

impl Default for CodeStore {
    /// An empty in-memory store.
    fn default() -> Self {
        CodeStore::Memory(Vec::new())
    }
}

impl CodeStore {
    /// A store for `rows` rows of `len` bytes: a spill file when `spill`, else memory.
    pub fn new(spill: bool, rows: usize, len: usize) -> CodeStore {
        if spill && len > 0 {
            CodeStore::Spill(SpillWriter::create())
        } else {
            CodeStore::Memory(Vec::with_capacity(rows * len))
        }
    }

    /// Appends one row's bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        match self {
            CodeStore::Memory(v) => v.extend_from_slice(bytes),
            CodeStore::Spill(w) => w.push(bytes),
        }
    }

    /// Everything appended, readable as one slice.
    pub fn finish(self) -> Codes {
        match self {
            CodeStore::Memory(v) => Codes::Memory(v),
            CodeStore::Spill(w) => w.finish(),
        }
    }
}

/// Row data ready to read: a vector, or a memory map of the spill file.
pub enum Codes {
    /// In memory.
    Memory(Vec<u8>),
    /// A read-only map of the (unlinked) spill file; None when it is empty.
    Mapped(Option<memmap2::Mmap>),
}

impl std::ops::Deref for Codes {
    type Target = [u8];

    /// The bytes.
    fn deref(&self) -> &[u8] {
        match self {
            Codes::Memory(v) => v,
            Codes::Mapped(Some(m)) => m,
            Codes::Mapped(None) => &[],
        }
    }
}

/// An unlinked temporary file being appended to.
pub struct SpillWriter {
    out: std::io::BufWriter<std::fs::File>,
    written: u64,
    /// temp_file_limit in bytes (None: unlimited).
    limit: Option<u64>,
    /// The descriptor's reservation, given back when the file is closed.
    _fd: FdReservation,
}

impl SpillWriter {
    /// Creates and unlinks a new spill file in `base/pgsql_tmp`; raises 53000 when no
    /// descriptor is left and 58030 when the file cannot be made.
    fn create() -> SpillWriter {
        // SAFETY: plain fd.c bookkeeping on the backend thread; released in Drop.
        if !unsafe { pg_sys::AcquireExternalFD() } {
            raise(
                Code::ERRCODE_INSUFFICIENT_RESOURCES,
                "qhnsw build: no file descriptor left for a spill file",
            );
        }
        let guard = FdReservation;
        let dir = std::path::Path::new("base/pgsql_tmp");
        // SAFETY: MyProcPid is set at backend start.
        let pid = unsafe { pg_sys::MyProcPid };
        let n = SPILLS.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("pgsql_tmp{pid}.qhnsw{n}"));
        let file = std::fs::create_dir_all(dir)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
            })
            .and_then(|f| std::fs::remove_file(&path).map(|_| f));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                raise(
                    Code::ERRCODE_IO_ERROR,
                    format!(
                        "qhnsw build: could not create spill file \"{}\": {e}",
                        path.display()
                    ),
                )
            }
        };
        // SAFETY: temp_file_limit is a plain GUC integer (kB), read on the backend thread.
        let kb = unsafe { pg_sys::temp_file_limit };
        SpillWriter {
            out: std::io::BufWriter::with_capacity(WRITE_BUFFER, file),
            written: 0,
            limit: (kb >= 0).then(|| kb as u64 * 1024),
            _fd: guard,
        }
    }

    /// Appends bytes; raises 53400 past temp_file_limit and 58030 on a write error.
    fn push(&mut self, bytes: &[u8]) {
        self.written += bytes.len() as u64;
        if self.limit.is_some_and(|limit| self.written > limit) {
            raise(
                Code::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                format!(
                    "qhnsw build: spill file size exceeds temp_file_limit ({}kB)",
                    self.limit.unwrap_or(0) / 1024
                ),
            );
        }
        if let Err(e) = self.out.write_all(bytes) {
            write_failed(e);
        }
    }

    /// Flushes the file and maps it read-only.
    fn finish(self) -> Codes {
        let SpillWriter {
            out, written, _fd, ..
        } = self;
        let file = match out.into_inner() {
            Ok(f) => f,
            Err(e) => write_failed(e.into_error()),
        };
        if written == 0 {
            return Codes::Mapped(None);
        }
        // SAFETY: the file is private to this backend (unlinked) and never written again
        // while mapped, so the slice the map derefs to does not change under it.
        let map = unsafe { memmap2::Mmap::map(&file) };
        drop(file); // the map keeps the file alive; `_fd` is given back on return
        match map {
            Ok(m) => Codes::Mapped(Some(m)),
            Err(e) => raise(
                Code::ERRCODE_OUT_OF_MEMORY,
                format!("qhnsw build: could not map the spill file: {e}"),
            ),
        }
    }
}

/// Raises 58030 for a failed spill file write (e.g. a full disk).
fn write_failed(e: std::io::Error) -> ! {
    raise(
        Code::ERRCODE_IO_ERROR,
        format!("qhnsw build: could not write spill file: {e}"),
    )
}

/// One AcquireExternalFD reservation, released when dropped (on an early ERROR).
struct FdReservation;

impl Drop for FdReservation {
    /// Gives the descriptor back to fd.c's budget.
    fn drop(&mut self) {
        // SAFETY: pairs with the AcquireExternalFD that made this value.
        unsafe { pg_sys::ReleaseExternalFD() };
    }
}
