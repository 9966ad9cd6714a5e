//! Visited sets for graph searches.
//!
//! Design: a search marks every node whose distance it has computed. Generic ids
//! (on-disk item pointers) use a `HashSet` with a small multiplicative hasher
//! ([`IdHasher`], much cheaper than SipHash for integer ids; ids are not attacker
//! controlled). Dense `u32` ids (in-memory graphs) use [`DenseVisited`], an
//! epoch-stamped array that clears in O(1), which is what the hot loop wants.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A set of node ids already seen by a search.
pub trait VisitedSet<Id> {
    /// Marks `id`; returns true if it was not marked before.
    fn insert(&mut self, id: Id) -> bool;
    /// Forgets every mark.
    fn clear(&mut self);
    /// Number of marked ids.
    fn len(&self) -> usize;
    /// True if nothing is marked.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<Id: Hash + Eq, S: BuildHasher> VisitedSet<Id> for HashSet<Id, S> {
    /// Marks `id` in the hash set.
    fn insert(&mut self, id: Id) -> bool {
        HashSet::insert(self, id)
    }
    /// Empties the hash set, keeping its allocation.
    fn clear(&mut self) {
        HashSet::clear(self)
    }
    /// Number of ids in the hash set.
    fn len(&self) -> usize {
        HashSet::len(self)
    }
}

/// Multiplicative hasher for small integer ids (Fx-style: rotate, xor, multiply).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher {
    hash: u64,
}

/// Odd 64-bit constant with well-spread bits used by [`IdHasher`].
const ID_HASH_MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

impl IdHasher {
    /// Mixes one word into the state.
    #[inline]
    fn add_word(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(ID_HASH_MULTIPLIER);
    }
}

impl Hasher for IdHasher {
    /// Mixes arbitrary bytes, eight at a time.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add_word(u64::from_le_bytes(word));
        }
    }
    /// Mixes a byte.
    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add_word(value as u64);
    }
    /// Mixes a u16.
    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.add_word(value as u64);
    }
    /// Mixes a u32.
    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add_word(value as u64);
    }
    /// Mixes a u64.
    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add_word(value);
    }
    /// Mixes a usize.
    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add_word(value as u64);
    }
    /// Returns the hash, rotated so the well-mixed high bits also land in the low bits.
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// A hash set of ids using [`IdHasher`].
pub type IdHashSet<Id> = HashSet<Id, IdBuildHasher>;

/// A deterministic pseudo-random key for `(base, id)`, used to break distance ties without favouring small ids.
pub(crate) fn tie_break_key<Id: Hash>(base: Id, id: Id) -> u64 {
    let mut hasher = IdHasher::default();
    base.hash(&mut hasher);
    id.hash(&mut hasher);
    hasher.finish().wrapping_mul(ID_HASH_MULTIPLIER)
}

/// A 32-bit pseudo-random key for `id` under `salt`, stored in search candidates to order equal distances.
#[inline]
pub(crate) fn salted_tie_key<Id: Hash>(salt: u64, id: Id) -> u32 {
    let mut hasher = IdHasher { hash: salt };
    id.hash(&mut hasher);
    (hasher.hash.wrapping_mul(ID_HASH_MULTIPLIER) >> 32) as u32
}

/// Visited marks for dense `u32` ids: one epoch stamp per node, cleared in O(1).
#[derive(Clone, Debug, Default)]
pub struct DenseVisited {
    stamps: Vec<u32>,
    epoch: u32,
    marked: usize,
}

impl DenseVisited {
    /// Creates a set sized for ids `0..capacity` (it grows on demand past that).
    pub fn with_capacity(capacity: usize) -> DenseVisited {
        DenseVisited {
            stamps: vec![0; capacity],
            epoch: 1,
            marked: 0,
        }
    }
}

impl VisitedSet<u32> for DenseVisited {
    /// Stamps `id` with the current epoch.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let index = id as usize;
        if index >= self.stamps.len() {
            self.stamps.resize((index + 1).next_power_of_two(), 0);
        }
        if self.epoch == 0 {
            self.epoch = 1;
        }
        let stamp = &mut self.stamps[index];
        if *stamp == self.epoch {
            false
        } else {
            *stamp = self.epoch;
            self.marked += 1;
            true
        }
    }
    /// Starts a new epoch (rewriting the stamps only when the epoch counter wraps).
    fn clear(&mut self) {
        self.marked = 0;
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamps.iter_mut().for_each(|stamp| *stamp = 0);
            self.epoch = 1;
        }
    }
    /// Number of ids stamped in the current epoch.
    fn len(&self) -> usize {
        self.marked
    }
}
