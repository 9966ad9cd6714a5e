//! Every locking rule of a qhnsw index, in one place (the design is in docs/locking.md).
//!
//! Two kinds of locks are used:
//! - **buffer locks** (LWLocks) on one page at a time, through the guards of `buffer.rs`:
//!   share to read, exclusive + GenericXLog to write. No code path holds two buffer locks
//!   at once, and no heavyweight lock is requested while a buffer lock is held, so buffer
//!   locks cannot deadlock (LWLocks have no deadlock detector).
//! - **index-level heavyweight locks**: `LockPage` on block numbers past any real page
//!   (the lock manager does not care whether the page exists), like pgvector's
//!   update/scan locks. They are released explicitly when the guard drops, and by the
//!   lock manager at (sub)transaction abort after an ERROR.
//!
//! | lock      | who, mode                                             | excludes                      |
//! |-----------|-------------------------------------------------------|-------------------------------|
//! | UPDATE    | insert: Share for its whole store + link phase        | VACUUM's graph surgery        |
//! |           | VACUUM: Exclusive while it re-marks, moves the entry  | every insert                  |
//! |           | point, reconnects and repairs; staging conversion: Ex |                               |
//! | LINK      | insert: Exclusive while it prunes a full list         | other inserts' pruning        |
//! | SCAN      | scan: Share while it searches (first beam, each resume)| link drops, VACUUM's free pass|
//! |           | insert/VACUUM: Exclusive, acquired and released at once| (waits for in-flight beams)  |
//! |           | before a write that drops a layer-0 link, and before  |                               |
//! |           | VACUUM frees deleted elements                         |                               |
//! | STAGING   | staging insert: Exclusive until transaction end       | other staging inserts         |
//!
//! Order (never the reverse): STAGING → UPDATE → LINK → SCAN → buffer lock. A beam holds
//! SCAN Share and waits for no heavyweight lock, so waiting for beams cannot deadlock; a
//! backend with an open cursor holds nothing between fetches.
//!
//! Why this is enough:
//! - Meta page: every change is a read-modify-write under its exclusive buffer lock
//!   (`meta::update_meta`) with monotone rules, so no writer overwrites another's change.
//! - Inserts vs. inserts: appending to a list with room is one locked page write and
//!   removes nothing. Removing a neighbour (Algorithm 4 pruning) happens only under LINK,
//!   which makes "the dropped node is still linked from a kept one" true when written.
//! - Inserts vs. scans: a node's back-links are written bottom-up after all its own lists,
//!   so a beam never reaches a node with empty lists below; a write that drops a link
//!   first links the node elsewhere, then waits for the beams in flight, so no beam reads
//!   the covering list from before and the dropping list from after (it would miss the
//!   node). VACUUM waits the same way between its reconnect and its repair.
//! - Inserts vs. VACUUM: an insert reads the entry point under UPDATE Share, so it never
//!   starts from a node VACUUM is about to free; VACUUM's reconnect and repair run under
//!   UPDATE Exclusive, so they see a graph no insert is changing, and once UPDATE is
//!   released no live node links to a deleted one and no insert links to one again
//!   (inserts never link to deleted nodes they see, and the marks were set before).
//! - Scans vs. VACUUM: a beam only reaches deleted nodes through links that existed before
//!   the repair; VACUUM waits for every beam in flight (SCAN Exclusive) before it turns
//!   deleted elements into tombstones whose slots inserts may reuse.
//! - Iterative scans keep node ids between calls without the lock. A slot freed meanwhile
//!   reads as a tombstone (a dead end, never returned), and a slot reused meanwhile holds a
//!   row inserted after the scan started, which its snapshot cannot see; following either
//!   never returns a wrong row (see docs/locking.md).

use super::meta::META_BLOCK;
use pgrx::pg_sys;

/// Lock tag of the update lock (not a real page).
const UPDATE_LOCK: u32 = u32::MAX - 1;
/// Lock tag of the scan lock (not a real page).
const SCAN_LOCK: u32 = u32::MAX - 2;
/// Lock tag of the link lock (not a real page).
const LINK_LOCK: u32 = u32::MAX - 3;

/// A held index-level lock, released on drop (or by the lock manager after an ERROR).
pub struct IndexLock {
    index: pg_sys::Relation,
    tag: u32,
    mode: pg_sys::LOCKMODE,
}

impl IndexLock {
    /// Acquires the lock `tag` on `index` in `mode`, waiting for conflicting holders.
    fn acquire(index: pg_sys::Relation, tag: u32, mode: u32) -> IndexLock {
        let mode = mode as pg_sys::LOCKMODE;
        // SAFETY: index is an open relation; the lock manager checks for deadlocks.
        unsafe { pg_sys::LockPage(index, tag, mode) };
        IndexLock { index, tag, mode }
    }
}

impl Drop for IndexLock {
    /// Releases the lock, except while unwinding from an ERROR (abort releases it then).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // SAFETY: we hold this lock once, acquired in `acquire`.
        unsafe { pg_sys::UnlockPage(self.index, self.tag, self.mode) };
    }
}

/// An insert's update lock (Share): held while it stores and links one element.
pub fn insert_lock(index: pg_sys::Relation) -> IndexLock {
    IndexLock::acquire(index, UPDATE_LOCK, pg_sys::ShareLock)
}

/// Excludes every insert (UPDATE Exclusive): VACUUM's graph surgery, staging conversion.
pub fn exclude_inserts(index: pg_sys::Relation) -> IndexLock {
    IndexLock::acquire(index, UPDATE_LOCK, pg_sys::ExclusiveLock)
}

/// Serialises neighbour-list pruning among inserts (LINK Exclusive).
pub fn link_lock(index: pg_sys::Relation) -> IndexLock {
    IndexLock::acquire(index, LINK_LOCK, pg_sys::ExclusiveLock)
}

/// A scan's lock (Share) while one beam search runs.
pub fn scan_lock(index: pg_sys::Relation) -> IndexLock {
    IndexLock::acquire(index, SCAN_LOCK, pg_sys::ShareLock)
}

/// Waits until every beam search in flight has finished (SCAN Exclusive, then released):
/// before a write that drops a link, and before VACUUM frees deleted elements.
pub fn wait_for_scans(index: pg_sys::Relation) {
    drop(IndexLock::acquire(index, SCAN_LOCK, pg_sys::ExclusiveLock));
}

/// Serialises staging inserts and the staging conversion until transaction end.
pub fn staging_lock(index: pg_sys::Relation) {
    // SAFETY: LockPage on an open index; the lock manager releases it at commit/abort.
    unsafe { pg_sys::LockPage(index, META_BLOCK, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) };
}
