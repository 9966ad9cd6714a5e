//! Backend-local hints of which shared buffer holds each block of the indexes a backend
//! scans, and the cache prefetch built on them.
//!
//! Design: a scan's cost is memory latency, not arithmetic: each visit touches a buffer
//! descriptor, the page header, a line pointer and the element, most of them cache
//! misses, and the shared buffer-table lookup behind `ReadBufferExtended` is one more.
//! - [`pin`] pins a block through its hinted buffer with `ReadRecentBuffer`, which checks
//!   the buffer's tag under its header lock and skips the buffer-table lookup; a stale
//!   hint (the buffer now holds another page, the relation file changed) falls back to
//!   the ordinary read and refreshes the hint. One hinted read in `FULL_READ_EVERY` takes
//!   the ordinary path anyway, because a recent-buffer pin does not raise the usage count
//!   that keeps hot pages cached under eviction.
//! - [`prefetch_items`] starts loading what reading a batch of items will touch, for
//!   hinted blocks, so the misses overlap instead of queueing.
//! - Only shared buffers are hinted: a temporary index (local buffers) is read plainly.
//! - Hints are kept per relation file (database, relfilenode) for the last
//!   `MAX_FILES` files used, 4 bytes per block, at most `MAX_HINTED_BLOCKS` blocks each (an
//!   8 GB index: 4 MB per backend); a REINDEX or TRUNCATE makes a new file, hence new hints.
//!   Nothing here decides what a scan reads: the page is read under its pin and share
//!   lock exactly as before.

use super::pages::node_location;
use pgrx::pg_sys;

/// Most blocks hinted per file; later blocks are read plainly.
const MAX_HINTED_BLOCKS: usize = 1 << 20;

/// Relation files whose hints are kept (the least recently used is dropped).
const MAX_FILES: usize = 4;

/// One hinted read in this many takes the ordinary path (usage counts, see above).
const FULL_READ_EVERY: u32 = 32;

/// The hints of one relation file.
struct FileHints {
    /// (database, relation file).
    file: (u32, u32),
    /// Buffer per block (0: none known).
    buffers: Vec<pg_sys::Buffer>,
    /// When it was last used (the table's clock).
    used: u64,
}

/// Every file's hints and the read counter.
struct RecentBuffers {
    files: Vec<FileHints>,
    clock: u64,
    reads: u32,
}

impl RecentBuffers {
    /// The hints of `file`, if kept, marked as just used.
    fn find(&mut self, file: (u32, u32)) -> Option<&mut FileHints> {
        self.clock += 1;
        let clock = self.clock;
        let hints = self.files.iter_mut().find(|h| h.file == file)?;
        hints.used = clock;
        Some(hints)
    }

    /// The hints of `file`, created (replacing the least recently used file's) if needed.
    fn find_or_add(&mut self, file: (u32, u32)) -> &mut FileHints {
        let clock = self.clock + 1;
        let at = match self.files.iter().position(|h| h.file == file) {
            Some(at) => at,
            None if self.files.len() < MAX_FILES => {
                self.files.push(FileHints {
                    file,
                    buffers: Vec::new(),
                    used: clock,
                });
                self.files.len() - 1
            }
            None => {
                let (at, _) = self
                    .files
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, h)| h.used)
                    .expect("MAX_FILES > 0");
                self.files[at].file = file;
                self.files[at].buffers.clear();
                at
            }
        };
        self.clock = clock;
        self.files[at].used = clock;
        &mut self.files[at]
    }
}

thread_local! {
    static RECENT: std::cell::RefCell<RecentBuffers> = const {
        std::cell::RefCell::new(RecentBuffers { files: Vec::new(), clock: 0, reads: 0 })
    };
}

/// The hinted buffer of `block` of `file` (None: no hint, or time for an ordinary read).
fn hint(file: (u32, u32), block: u32) -> Option<pg_sys::Buffer> {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        r.reads = r.reads.wrapping_add(1);
        let ordinary = r.reads % FULL_READ_EVERY == 0;
        let buffer = *r.find(file)?.buffers.get(block as usize)?;
        (buffer != 0 && !ordinary).then_some(buffer)
    })
}

/// Remembers that `buffer` holds `block` of `file`.
fn remember(file: (u32, u32), block: u32, buffer: pg_sys::Buffer) {
    let at = block as usize;
    if at >= MAX_HINTED_BLOCKS {
        return;
    }
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        let hints = r.find_or_add(file);
        if at >= hints.buffers.len() {
            hints.buffers.resize(at + 1, 0);
        }
        hints.buffers[at] = buffer;
    })
}

/// Pins `block` of `rel`'s main fork through its hinted buffer, else with `read` (the
/// ordinary read, whose buffer becomes the hint).
pub fn pin(
    rel: pg_sys::Relation,
    block: u32,
    read: impl FnOnce() -> pg_sys::Buffer,
) -> pg_sys::Buffer {
    let file = crate::compat::relation_file_id(rel);
    if let Some(buffer) = hint(file, block) {
        if crate::compat::read_recent_buffer(rel, block, buffer) {
            return buffer;
        }
    }
    let buffer = read();
    if buffer > 0 {
        // Shared buffers only: a temporary index's local buffers are read plainly (they
        // need no buffer-table lookup, and ReadRecentBuffer's local path is not relied on).
        remember(file, block, buffer);
    }
    buffer
}

/// Asks the CPU to start loading what reading the elements of `nodes` (node ids, the
/// first 64) of `rel` will touch, for blocks whose buffer is hinted: the buffer
/// descriptor, the line pointer and the special space; then, from each line pointer as it
/// is now (read without a lock: only an address hint, checked to stay inside the page),
/// the item's first line and its bytes `within`. Nothing is pinned or locked and no result
/// depends on it.
pub fn prefetch_items(rel: pg_sys::Relation, nodes: &[u32], within: std::ops::Range<usize>) {
    const BLOCK: usize = pg_sys::BLCKSZ as usize;
    /// The line pointer of item `offset` (1-based) follows the 24-byte page header.
    fn line_pointer(page: *const u8, offset: u16) -> *const u8 {
        page.wrapping_add(20 + 4 * offset as usize)
    }
    let file = crate::compat::relation_file_id(rel);
    // (page, item offset) of each hinted node, for the second pass
    let mut pages = [(std::ptr::null::<u8>(), 0u16); 64];
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        let Some(hints) = r.find(file) else {
            return;
        };
        for (slot, &node) in pages.iter_mut().zip(nodes) {
            let (block, offset) = node_location(node);
            let buffer = hints.buffers.get(block as usize).copied().unwrap_or(0);
            if buffer <= 0 || offset == 0 {
                continue; // no hint
            }
            // SAFETY: address arithmetic only: a shared buffer number this backend was
            // given lies in 1..=NBuffers, so both addresses are inside their arrays.
            let (desc, page) = unsafe {
                (
                    pg_sys::BufferDescriptors.add(buffer as usize - 1) as *const u8,
                    (pg_sys::BufferBlocks as *const u8).add((buffer as usize - 1) * BLOCK),
                )
            };
            crate::distance::prefetch_address(desc);
            crate::distance::prefetch_address(line_pointer(page, offset));
            crate::distance::prefetch_address(
                page.wrapping_add(BLOCK - super::buffer::SPECIAL_BYTES),
            );
            *slot = (page, offset);
        }
    });
    for &(page, offset) in &pages[..nodes.len().min(pages.len())] {
        if page.is_null() {
            continue;
        }
        // SAFETY: a 4-byte read inside a mapped shared buffer (offset <= 255 items, so
        // within the page). The page may be changing (no lock is held): the value only
        // forms prefetch addresses, checked to stay inside the page, and never decides
        // what is read.
        let word = unsafe { std::ptr::read_volatile(line_pointer(page, offset) as *const u32) };
        let (off, len) = ((word & 0x7fff) as usize, (word >> 17) as usize);
        if off == 0 || off + len > BLOCK {
            continue;
        }
        let item = page.wrapping_add(off);
        crate::distance::prefetch_address(item);
        for at in within.clone().step_by(64).take_while(|&at| at < len) {
            crate::distance::prefetch_address(item.wrapping_add(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints are kept per file; a fifth file replaces the least recently used one, whose
    /// hints are gone, while the others keep theirs.
    #[test]
    fn hints_are_kept_for_the_most_recently_used_files() {
        let mut r = RecentBuffers {
            files: Vec::new(),
            clock: 0,
            reads: 0,
        };
        for file in 1..=4u32 {
            let hints = r.find_or_add((1, file));
            hints.buffers = vec![0, file as i32 * 10];
        }
        // touch files 1, 3 and 4: file 2 is now the least recently used
        for file in [1u32, 3, 4] {
            assert_eq!(
                r.find((1, file)).map(|h| h.buffers[1]),
                Some(file as i32 * 10)
            );
        }
        let fifth = r.find_or_add((1, 5));
        assert!(fifth.buffers.is_empty(), "a new file starts without hints");
        assert_eq!(r.files.len(), MAX_FILES);
        assert!(
            r.find((1, 2)).is_none(),
            "the least recently used file was dropped"
        );
        for file in [1u32, 3, 4] {
            assert_eq!(
                r.find((1, file)).map(|h| h.buffers[1]),
                Some(file as i32 * 10)
            );
        }
        // same relfilenode number in another database is another file
        assert!(r.find((2, 1)).is_none());
    }
}
