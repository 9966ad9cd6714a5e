//! RAII access to index pages: a read guard (pin + share lock) and a write guard
//! (pin + exclusive lock + GenericXLog) whose changes are WAL-logged on `commit()`
//! and discarded if it is dropped uncommitted, including while unwinding from an
//! ERROR. Algorithm code never pairs raw lock/unlock calls.

use super::pages::{LayoutError, PageKind, PAGE_MAGIC};
use crate::fmgr::raise;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode as Code;

/// Special space of every qhnsw page.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PageSpecial {
    /// What the page holds (PageKind as u16).
    pub kind: u16,
    /// PAGE_MAGIC.
    pub magic: u16,
    /// Low 32 bits of the build id of the graph this page belongs to (0 otherwise).
    pub build_tag: u32,
}

/// Size of the special space.
pub const SPECIAL_BYTES: usize = std::mem::size_of::<PageSpecial>();
const _: () = assert!(SPECIAL_BYTES == 8);

thread_local! {
    /// The largest block count seen per relation file (dbNode, relNode): a relation file
    /// never shrinks (TRUNCATE and REINDEX make a new one), so a block below it exists.
    static KNOWN_BLOCKS: std::cell::Cell<(u32, u32, u32)> = const { std::cell::Cell::new((0, 0, 0)) };
}

/// Raises XX002 unless `block` exists: every block number read from a page (neighbour,
/// entry point, insert page, quantizer pages) is checked before bufmgr sees it, which
/// would otherwise fail with "could not read block" or open a segment file that is not there.
fn check_block(rel: pg_sys::Relation, block: u32) {
    let (db, file) = crate::compat::relation_file_id(rel);
    let (cached_db, cached_file, known) = KNOWN_BLOCKS.with(|k| k.get());
    if (cached_db, cached_file) == (db, file) && block < known {
        return;
    }
    let nblocks = block_count(rel);
    KNOWN_BLOCKS.with(|k| k.set((db, file, nblocks)));
    if block >= nblocks {
        raise_corrupt(
            rel,
            block,
            &LayoutError::Corrupt(format!(
                "block {block} is beyond the end of the index ({nblocks} blocks)"
            )),
        );
    }
}

/// Reads the pinned buffer of a block in the main fork (P_NEW extends the relation).
fn read_buffer(rel: pg_sys::Relation, block: u32) -> pg_sys::Buffer {
    if block != pg_sys::InvalidBlockNumber {
        check_block(rel, block);
    }
    // SAFETY: rel is an open index relation; the block exists (checked above) or is P_NEW.
    unsafe {
        pg_sys::ReadBufferExtended(
            rel,
            pg_sys::ForkNumber::MAIN_FORKNUM,
            block,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            std::ptr::null_mut(),
        )
    }
}

/// Returns the item bytes at a 1-based offset, checking the line pointer.
///
/// # Safety
/// `page` must be a valid, locked page.
unsafe fn page_item<'a>(page: pg_sys::Page, offset: u16) -> Result<&'a mut [u8], LayoutError> {
    // SAFETY: bounds are checked against the page's line pointer array before use.
    unsafe {
        let max = pg_sys::PageGetMaxOffsetNumber(page);
        if offset == 0 || offset > max {
            return Err(LayoutError::Corrupt(format!(
                "item {offset} beyond the {max} items of its page"
            )));
        }
        let item_id = pg_sys::PageGetItemId(page, offset);
        let len = (*item_id).lp_len() as usize;
        let off = (*item_id).lp_off() as usize;
        if (*item_id).lp_flags() != pg_sys::LP_NORMAL || off + len > pg_sys::BLCKSZ as usize {
            return Err(LayoutError::Corrupt(format!(
                "item {offset} has a broken line pointer"
            )));
        }
        let ptr = pg_sys::PageGetItem(page, item_id) as *mut u8;
        Ok(std::slice::from_raw_parts_mut(ptr, len))
    }
}

/// Checks the special space of a page against the expected kind.
///
/// # Safety
/// `page` must be a valid, locked page.
unsafe fn check_special(page: pg_sys::Page, want: PageKind) -> Result<(), LayoutError> {
    // SAFETY: the special pointer is within the page; we check its size first.
    unsafe {
        let header = page as *const pg_sys::PageHeaderData;
        let special = (*header).pd_special as usize;
        if pg_sys::PageIsNew(page) || special + SPECIAL_BYTES != pg_sys::BLCKSZ as usize {
            return Err(LayoutError::Corrupt("page is not a qhnsw page".into()));
        }
        let s = *(pg_sys::PageGetSpecialPointer(page) as *const PageSpecial);
        if s.magic != PAGE_MAGIC || PageKind::from_u16(s.kind) != Some(want) {
            return Err(LayoutError::Corrupt(format!(
                "page has kind {} / magic 0x{:04x}, expected {:?}",
                s.kind, s.magic, want
            )));
        }
        Ok(())
    }
}

/// Raises "index corrupted" for a layout error on a block.
pub fn raise_corrupt(rel: pg_sys::Relation, block: u32, err: &LayoutError) -> ! {
    // SAFETY: rel is open; RelationGetRelationName reads rd_rel->relname.
    let name = unsafe { pgrx::name_data_to_str(&(*(*rel).rd_rel).relname) }.to_string();
    raise(
        Code::ERRCODE_INDEX_CORRUPTED,
        format!("qhnsw index \"{name}\" is corrupted at block {block}: {err}"),
    )
}

/// A pinned, share-locked page.
pub struct PageRead {
    rel: pg_sys::Relation,
    buffer: pg_sys::Buffer,
    block: u32,
}

impl PageRead {
    /// Pins and share-locks a block, checking it is a page of the expected kind.
    pub fn new(rel: pg_sys::Relation, block: u32, kind: PageKind) -> PageRead {
        Self::locked(rel, read_buffer(rel, block), block, kind)
    }

    /// Same as `new`, pinning through the backend's hint of the block's buffer (scans).
    pub fn hinted(rel: pg_sys::Relation, block: u32, kind: PageKind) -> PageRead {
        let buffer = super::buffer_hints::pin(rel, block, || read_buffer(rel, block));
        Self::locked(rel, buffer, block, kind)
    }

    /// Share-locks a pinned buffer and checks its kind.
    fn locked(
        rel: pg_sys::Relation,
        buffer: pg_sys::Buffer,
        block: u32,
        kind: PageKind,
    ) -> PageRead {
        // SAFETY: buffer is pinned; share lock is the documented read protocol.
        unsafe { pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32) };
        let guard = PageRead { rel, buffer, block };
        // SAFETY: the page is pinned and locked.
        if let Err(e) = unsafe { check_special(guard.page(), kind) } {
            raise_corrupt(rel, block, &e);
        }
        guard
    }

    /// The page.
    pub fn page(&self) -> pg_sys::Page {
        // SAFETY: the buffer is pinned for the guard's lifetime.
        unsafe { pg_sys::BufferGetPage(self.buffer) }
    }

    /// Number of items on the page.
    pub fn item_count(&self) -> u16 {
        // SAFETY: the page is pinned and locked.
        unsafe { pg_sys::PageGetMaxOffsetNumber(self.page()) }
    }

    /// The bytes of item `offset` (1-based); corruption raises an ERROR.
    pub fn item(&self, offset: u16) -> &[u8] {
        // SAFETY: the page is pinned and locked; page_item checks bounds.
        match unsafe { page_item(self.page(), offset) } {
            Ok(bytes) => bytes,
            Err(e) => raise_corrupt(self.rel, self.block, &e),
        }
    }
}

impl Drop for PageRead {
    /// Unlocks and unpins.
    fn drop(&mut self) {
        // SAFETY: we hold exactly one pin and the share lock.
        unsafe { pg_sys::UnlockReleaseBuffer(self.buffer) };
    }
}

/// A pinned, exclusively locked page being changed under GenericXLog.
pub struct PageWrite {
    rel: pg_sys::Relation,
    buffer: pg_sys::Buffer,
    block: u32,
    state: *mut pg_sys::GenericXLogState,
    page: pg_sys::Page,
}

impl PageWrite {
    /// Locks an existing block of the expected kind for writing.
    pub fn new(rel: pg_sys::Relation, block: u32, kind: PageKind) -> PageWrite {
        let buffer = read_buffer(rel, block);
        // SAFETY: buffer is pinned; exclusive lock before modifying.
        unsafe { pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32) };
        let guard = Self::start(rel, buffer, 0);
        // SAFETY: page is locked.
        if let Err(e) = unsafe { check_special(guard.page, kind) } {
            raise_corrupt(rel, block, &e);
        }
        guard
    }

    /// Extends the relation by one page, initialised as `kind` with `tag`, locked for writing.
    pub fn extend(rel: pg_sys::Relation, kind: PageKind, tag: u32) -> PageWrite {
        // SAFETY: the relation extension lock serialises concurrent extenders.
        let buffer = unsafe {
            pg_sys::LockRelationForExtension(rel, pg_sys::ExclusiveLock as i32);
            let buffer = read_buffer(rel, pg_sys::InvalidBlockNumber);
            pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            pg_sys::UnlockRelationForExtension(rel, pg_sys::ExclusiveLock as i32);
            buffer
        };
        let guard = Self::start(rel, buffer, pg_sys::GENERIC_XLOG_FULL_IMAGE as i32);
        init_page(guard.page, kind, tag);
        guard
    }

    /// Starts GenericXLog on a locked buffer.
    fn start(rel: pg_sys::Relation, buffer: pg_sys::Buffer, flags: i32) -> PageWrite {
        // SAFETY: the buffer is pinned and exclusively locked.
        unsafe {
            let state = pg_sys::GenericXLogStart(rel);
            let page = pg_sys::GenericXLogRegisterBuffer(state, buffer, flags);
            PageWrite {
                rel,
                buffer,
                block: pg_sys::BufferGetBlockNumber(buffer),
                state,
                page,
            }
        }
    }

    /// Block number.
    pub fn block(&self) -> u32 {
        self.block
    }

    /// The working copy of the page.
    pub fn page(&self) -> pg_sys::Page {
        self.page
    }

    /// Number of items on the page.
    pub fn item_count(&self) -> u16 {
        // SAFETY: the working copy is a valid page.
        unsafe { pg_sys::PageGetMaxOffsetNumber(self.page) }
    }

    /// Mutable bytes of item `offset` (1-based); corruption raises an ERROR.
    pub fn item_mut(&mut self, offset: u16) -> &mut [u8] {
        // SAFETY: the working copy is exclusively ours; bounds are checked.
        match unsafe { page_item(self.page, offset) } {
            Ok(bytes) => bytes,
            Err(e) => raise_corrupt(self.rel, self.block, &e),
        }
    }

    /// Free bytes for one more item (after its line pointer).
    pub fn free_space(&self) -> usize {
        // SAFETY: valid page.
        unsafe { pg_sys::PageGetFreeSpace(self.page) }
    }

    /// Appends an item, returning its offset, or None if it does not fit.
    pub fn add_item(&mut self, bytes: &[u8]) -> Option<u16> {
        add_item(self.page, bytes)
    }

    /// WAL-logs and applies the change, then unlocks.
    pub fn commit(mut self) {
        // SAFETY: state was started on this buffer; finishing marks it dirty and logs it.
        unsafe { pg_sys::GenericXLogFinish(self.state) };
        self.state = std::ptr::null_mut();
    }
}

impl Drop for PageWrite {
    /// Aborts an uncommitted change, then unlocks and unpins.
    fn drop(&mut self) {
        // SAFETY: we hold the pin and exclusive lock; abort discards the working copy.
        unsafe {
            if !self.state.is_null() {
                pg_sys::GenericXLogAbort(self.state);
            }
            pg_sys::UnlockReleaseBuffer(self.buffer);
        }
    }
}

/// Initialises a page of the given kind and build tag with our special space.
pub fn init_page(page: pg_sys::Page, kind: PageKind, build_tag: u32) {
    // SAFETY: page points to BLCKSZ writable bytes.
    unsafe {
        pg_sys::PageInit(page, pg_sys::BLCKSZ as usize, SPECIAL_BYTES);
        *(pg_sys::PageGetSpecialPointer(page) as *mut PageSpecial) = PageSpecial {
            kind: kind as u16,
            magic: PAGE_MAGIC,
            build_tag,
        };
    }
}

/// Reads the special space of a block: its kind and build tag, or None if it is not one of ours.
pub fn page_identity(rel: pg_sys::Relation, block: u32) -> Option<(PageKind, u32)> {
    let buffer = read_buffer(rel, block);
    // SAFETY: pinned and share-locked while reading the special space.
    unsafe {
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buffer);
        let header = page as *const pg_sys::PageHeaderData;
        let ours = !pg_sys::PageIsNew(page)
            && (*header).pd_special as usize + SPECIAL_BYTES == pg_sys::BLCKSZ as usize;
        let identity = if ours {
            let s = *(pg_sys::PageGetSpecialPointer(page) as *const PageSpecial);
            PageKind::from_u16(s.kind)
                .filter(|_| s.magic == PAGE_MAGIC)
                .map(|k| (k, s.build_tag))
        } else {
            None
        };
        pg_sys::UnlockReleaseBuffer(buffer);
        identity
    }
}

/// Blocks in the main fork.
pub fn block_count(rel: pg_sys::Relation) -> u32 {
    // SAFETY: rel is open.
    unsafe { pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM) }
}

/// Graph pages of the current build, in block order.
pub fn graph_blocks(rel: pg_sys::Relation, build_tag: u32) -> Vec<u32> {
    (1..block_count(rel))
        .filter(|&b| page_identity(rel, b) == Some((PageKind::Graph, build_tag)))
        .collect()
}

/// Appends an item to a page, returning its offset, or None if it does not fit.
pub fn add_item(page: pg_sys::Page, bytes: &[u8]) -> Option<u16> {
    // SAFETY: PageAddItemExtended copies `bytes` into the page if space allows.
    let offset = unsafe {
        pg_sys::PageAddItemExtended(
            page,
            bytes.as_ptr() as pg_sys::Item,
            bytes.len(),
            pg_sys::InvalidOffsetNumber,
            0,
        )
    };
    (offset != pg_sys::InvalidOffsetNumber).then_some(offset)
}
