//! Page layout of a qhnsw index, as plain byte encodings with no Postgres in them.
//!
//! Block 0 is the meta page; blocks `quantizer_first .. quantizer_first+quantizer_blocks`
//! hold the serialised quantizer (one item per page); every later block is a graph
//! page of packed elements. Each page's special space carries a [`PageKind`] and a
//! magic number so a stray or corrupted page is detected, not misread.
//!
//! An element is one graph node (one heap row):
//! ```text
//! 0      tag (ELEMENT_TAG_V1)      1  level        2  flags (1 = deleted)   3 reserved
//! 4..8   heap block (u32 LE)       8..10 heap offset (u16 LE)    10..12 reserved
//! 12..   neighbour counts, one u8 per layer 0..=level, padded to 4 bytes
//! ..     neighbour slots: m0 for layer 0, then m per upper layer (u32 LE node ids)
//! ..     code (code_len bytes), then an optional float16 copy (2 * dims bytes)
//! ```
//! Slots are reserved for the maximum neighbour count, so inserts update lists in
//! place. Node ids are `block << 8 | offset`: 4 bytes instead of a 6-byte TID,
//! which matters once codes are a byte per dimension or less.

use crate::distance::Metric;
use crate::quant::QuantizerKind;

/// Magic number at the start of the meta page ("QHNW").
pub const META_MAGIC: u32 = 0x5148_4E57;
/// Format version written by this build; readers reject any other (2: the meta page
/// ends with a CRC-32C of its other bytes).
pub const FORMAT_VERSION: u32 = 2;
/// Magic in every page's special space.
pub const PAGE_MAGIC: u16 = 0x7168;
/// Tag byte of a version-1 element.
pub const ELEMENT_TAG_V1: u8 = 0xE1;
/// Element flag: the heap row is dead; scans pass through the node but never return it.
pub const FLAG_DELETED: u8 = 1;
/// Element flag: VACUUM repaired the node's neighbours and shrank it to a tombstone of
/// ELEMENT_FIXED_BYTES whose line pointer an insert may reuse.
pub const FLAG_FREE: u8 = 2;
/// Bytes before the neighbour counts.
pub const ELEMENT_FIXED_BYTES: usize = 12;
/// "No node" (no entry point / empty slot).
pub const INVALID_NODE: u32 = u32::MAX;
/// Highest level a node may have (keeps element sizes bounded).
pub const MAX_LEVEL: usize = 15;

/// What a page holds; stored in its special space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum PageKind {
    /// Block 0.
    Meta = 1,
    /// Serialised quantizer bytes.
    Quantizer = 2,
    /// Packed graph elements.
    Graph = 3,
}

impl PageKind {
    /// Decodes a stored page kind.
    pub fn from_u16(v: u16) -> Option<PageKind> {
        match v {
            1 => Some(PageKind::Meta),
            2 => Some(PageKind::Quantizer),
            3 => Some(PageKind::Graph),
            _ => None,
        }
    }
}

/// How candidates are re-scored with full precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RerankSource {
    /// Fetch the row's vector from the heap (no extra index space).
    Heap,
    /// Keep a float16 copy in each element (2 bytes per dimension more, no heap access).
    Float16,
    /// Return candidates in quantized-distance order.
    None,
}

impl RerankSource {
    /// Option-string name.
    pub fn name(self) -> &'static str {
        match self {
            RerankSource::Heap => "heap",
            RerankSource::Float16 => "float16",
            RerankSource::None => "none",
        }
    }

    /// Parses an option string.
    pub fn parse(s: &str) -> Option<RerankSource> {
        match s.trim().to_ascii_lowercase().as_str() {
            "heap" => Some(RerankSource::Heap),
            "float16" | "halfvec" => Some(RerankSource::Float16),
            "none" | "off" => Some(RerankSource::None),
            _ => None,
        }
    }

    /// Stored byte.
    fn to_u8(self) -> u8 {
        match self {
            RerankSource::Heap => 0,
            RerankSource::Float16 => 1,
            RerankSource::None => 2,
        }
    }

    /// Decodes a stored byte.
    fn from_u8(v: u8) -> Option<RerankSource> {
        [
            RerankSource::Heap,
            RerankSource::Float16,
            RerankSource::None,
        ]
        .get(v as usize)
        .copied()
    }
}

/// Stored byte of a metric.
fn metric_to_u8(m: Metric) -> u8 {
    match m {
        Metric::L2 => 0,
        Metric::InnerProduct => 1,
        Metric::Cosine => 2,
        Metric::L1 => 3,
    }
}

/// Decodes a stored metric byte.
fn metric_from_u8(v: u8) -> Option<Metric> {
    [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1]
        .get(v as usize)
        .copied()
}

/// Stored byte of a quantizer kind.
fn kind_to_u8(k: QuantizerKind) -> u8 {
    match k {
        QuantizerKind::None => 0,
        QuantizerKind::Sq8 => 1,
        QuantizerKind::Sq4 => 2,
        QuantizerKind::Sq2 => 3,
        QuantizerKind::Pq => 4,
        QuantizerKind::Binary => 5,
    }
}

/// Decodes a stored quantizer kind byte.
fn kind_from_u8(v: u8) -> Option<QuantizerKind> {
    use QuantizerKind::*;
    [None, Sq8, Sq4, Sq2, Pq, Binary].get(v as usize).copied()
}

/// The meta page: everything a reader needs, copied from the options at build time.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaPage {
    /// Vector dimensions.
    pub dims: u32,
    /// Distance the graph was built for.
    pub metric: Metric,
    /// Quantization method of the stored codes.
    pub quantizer: QuantizerKind,
    /// Full-precision source for re-ranking.
    pub rerank: RerankSource,
    /// HNSW m.
    pub m: u16,
    /// HNSW ef_construction.
    pub ef_construction: u16,
    /// Bytes of one code.
    pub code_len: u32,
    /// Entry point node id, or INVALID_NODE for an empty index.
    pub entry_node: u32,
    /// Level of the entry point.
    pub entry_level: u8,
    /// First block of the serialised quantizer.
    pub quantizer_first: u32,
    /// Number of quantizer blocks (0: not trained yet).
    pub quantizer_blocks: u32,
    /// Serialised quantizer length in bytes.
    pub quantizer_bytes: u32,
    /// Last graph page (where inserts try first).
    pub insert_page: u32,
    /// Live nodes.
    pub node_count: u64,
    /// Random id of this build / quantizer, for process-local caches; its low 32 bits
    /// tag every graph page of this build, so pages of an abandoned rebuild are ignored.
    pub build_id: u64,
    /// The index still stages exact (flat) vectors until it has enough rows to train
    /// its configured quantizer (an index created on an empty table).
    pub staging: bool,
    /// Every indexed vector had unit norm at build time (inner product then ranks codes
    /// with the L2 estimator: the same order on unit vectors, and better estimates).
    pub unit_norm: bool,
}

impl MetaPage {
    /// The metric the quantized estimators rank codes with.
    pub fn code_metric(&self) -> Metric {
        if self.metric == Metric::InnerProduct && self.unit_norm {
            Metric::L2
        } else {
            self.metric
        }
    }

    /// Tag stored in the special space of this build's graph pages.
    pub fn build_tag(&self) -> u32 {
        self.build_id as u32
    }
}

/// Encoded size of the meta page body: 64 bytes of fields, then their CRC-32C.
pub const META_BYTES: usize = 68;

/// Bytes of the meta page covered by its checksum.
const META_CHECKED: usize = META_BYTES - 4;

/// CRC-32C (Castagnoli, reflected) of `bytes`, bit by bit: the meta page is 64 bytes.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Why stored bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// Not a qhnsw meta page.
    BadMagic(u32),
    /// Written by another format version.
    UnsupportedVersion(u32),
    /// Some field is out of range or the bytes are short.
    Corrupt(String),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::BadMagic(m) => write!(f, "bad meta page magic 0x{m:08x}"),
            LayoutError::UnsupportedVersion(v) => write!(
                f,
                "qhnsw index format version {v} is not supported (this build reads version {FORMAT_VERSION})"
            ),
            LayoutError::Corrupt(why) => write!(f, "{why}"),
        }
    }
}

/// Little-endian field reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Reads `N` bytes.
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self.bytes[self.pos..self.pos + N]
            .try_into()
            .expect("length checked");
        self.pos += N;
        out
    }
    /// Reads a u8.
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    /// Reads a u16.
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    /// Reads a u32.
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    /// Reads a u64.
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

impl MetaPage {
    /// Encodes the meta page body.
    pub fn encode(&self) -> [u8; META_BYTES] {
        let mut out = [0u8; META_BYTES];
        let mut w = 0;
        let mut put = |b: &[u8]| {
            out[w..w + b.len()].copy_from_slice(b);
            w += b.len();
        };
        put(&META_MAGIC.to_le_bytes());
        put(&FORMAT_VERSION.to_le_bytes());
        put(&self.dims.to_le_bytes());
        put(&[
            metric_to_u8(self.metric),
            kind_to_u8(self.quantizer),
            self.rerank.to_u8(),
            self.entry_level,
        ]);
        put(&self.m.to_le_bytes());
        put(&self.ef_construction.to_le_bytes());
        put(&self.code_len.to_le_bytes());
        put(&self.entry_node.to_le_bytes());
        put(&self.quantizer_first.to_le_bytes());
        put(&self.quantizer_blocks.to_le_bytes());
        put(&self.quantizer_bytes.to_le_bytes());
        put(&self.insert_page.to_le_bytes());
        put(&self.node_count.to_le_bytes());
        put(&self.build_id.to_le_bytes());
        put(&[self.staging as u8 | (self.unit_norm as u8) << 1]);
        let crc = crc32c(&out[..META_CHECKED]);
        out[META_CHECKED..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and validates a meta page body.
    pub fn decode(bytes: &[u8]) -> Result<MetaPage, LayoutError> {
        if bytes.len() < 8 {
            return Err(LayoutError::Corrupt("meta page is truncated".into()));
        }
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.u32();
        if magic != META_MAGIC {
            return Err(LayoutError::BadMagic(magic));
        }
        let version = r.u32();
        if version != FORMAT_VERSION {
            return Err(LayoutError::UnsupportedVersion(version));
        }
        if bytes.len() < META_BYTES {
            return Err(LayoutError::Corrupt("meta page is truncated".into()));
        }
        let stored = u32::from_le_bytes(bytes[META_CHECKED..META_BYTES].try_into().expect("4"));
        if stored != crc32c(&bytes[..META_CHECKED]) {
            return Err(LayoutError::Corrupt("meta page checksum mismatch".into()));
        }
        let dims = r.u32();
        let (metric, kind, rerank, entry_level) = (r.u8(), r.u8(), r.u8(), r.u8());
        let meta = MetaPage {
            dims,
            metric: metric_from_u8(metric)
                .ok_or_else(|| LayoutError::Corrupt(format!("unknown metric {metric}")))?,
            quantizer: kind_from_u8(kind)
                .ok_or_else(|| LayoutError::Corrupt(format!("unknown quantizer {kind}")))?,
            rerank: RerankSource::from_u8(rerank)
                .ok_or_else(|| LayoutError::Corrupt(format!("unknown rerank mode {rerank}")))?,
            entry_level,
            m: r.u16(),
            ef_construction: r.u16(),
            code_len: r.u32(),
            entry_node: r.u32(),
            quantizer_first: r.u32(),
            quantizer_blocks: r.u32(),
            quantizer_bytes: r.u32(),
            insert_page: r.u32(),
            node_count: r.u64(),
            build_id: r.u64(),
            staging: false,
            unit_norm: false,
        };
        let flags = r.u8();
        let meta = MetaPage {
            staging: flags & 1 != 0,
            unit_norm: flags & 2 != 0,
            ..meta
        };
        // dims = 0: built on an empty table, dimensions not known yet.
        if meta.dims > 16000 || meta.m < 2 || meta.m > 100 {
            return Err(LayoutError::Corrupt(format!(
                "meta page has impossible dims {} or m {}",
                meta.dims, meta.m
            )));
        }
        if meta.entry_level as usize > MAX_LEVEL {
            return Err(LayoutError::Corrupt(format!(
                "entry level {} too high",
                meta.entry_level
            )));
        }
        Ok(meta)
    }
}

/// Shape of elements in one index: sizes of every part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementShape {
    /// HNSW m (upper-layer slots).
    pub m: usize,
    /// Code bytes.
    pub code_len: usize,
    /// Dimensions (for the float16 copy).
    pub dims: usize,
    /// Whether a float16 copy follows the code.
    pub float16_copy: bool,
}

impl ElementShape {
    /// Layer-0 slots.
    pub fn m0(&self) -> usize {
        2 * self.m
    }

    /// Bytes of the neighbour-count area for a level.
    fn counts_bytes(level: usize) -> usize {
        (level + 1).div_ceil(4) * 4
    }

    /// Total neighbour slots for a level.
    pub fn slots(&self, level: usize) -> usize {
        self.m0() + level * self.m
    }

    /// Offset of the first neighbour slot.
    fn slots_offset(level: usize) -> usize {
        ELEMENT_FIXED_BYTES + Self::counts_bytes(level)
    }

    /// Offset of the code.
    pub fn code_offset(&self, level: usize) -> usize {
        Self::slots_offset(level) + 4 * self.slots(level)
    }

    /// Total element size for a level.
    pub fn size(&self, level: usize) -> usize {
        self.code_offset(level) + self.code_len + if self.float16_copy { 2 * self.dims } else { 0 }
    }

    /// First slot index and capacity of a layer's list.
    fn layer_slots(&self, layer: usize) -> (usize, usize) {
        if layer == 0 {
            (0, self.m0())
        } else {
            (self.m0() + (layer - 1) * self.m, self.m)
        }
    }
}

/// Read-only view of an element's bytes.
pub struct ElementRef<'a> {
    bytes: &'a [u8],
    shape: ElementShape,
}

impl<'a> ElementRef<'a> {
    /// Validates the bytes of an element (tag, level, length, counts).
    pub fn parse(bytes: &'a [u8], shape: ElementShape) -> Result<ElementRef<'a>, LayoutError> {
        if bytes.len() < ELEMENT_FIXED_BYTES || bytes[0] != ELEMENT_TAG_V1 {
            return Err(LayoutError::Corrupt(
                "graph item is not a qhnsw element".into(),
            ));
        }
        if bytes[2] & FLAG_FREE != 0 {
            if bytes.len() != ELEMENT_FIXED_BYTES {
                return Err(LayoutError::Corrupt(
                    "free element is not a tombstone".into(),
                ));
            }
            return Ok(ElementRef { bytes, shape });
        }
        let level = bytes[1] as usize;
        if level > MAX_LEVEL || bytes.len() != shape.size(level) {
            return Err(LayoutError::Corrupt(format!(
                "element of level {level} has {} bytes, expected {}",
                bytes.len(),
                shape.size(level.min(MAX_LEVEL))
            )));
        }
        let element = ElementRef { bytes, shape };
        for layer in 0..=level {
            if element.count(layer) > shape.layer_slots(layer).1 {
                return Err(LayoutError::Corrupt(
                    "element neighbour count exceeds its slots".into(),
                ));
            }
        }
        Ok(element)
    }

    /// Node level.
    pub fn level(&self) -> usize {
        self.bytes[1] as usize
    }

    /// True if the heap row was deleted (tombstones included).
    pub fn is_deleted(&self) -> bool {
        self.bytes[2] & (FLAG_DELETED | FLAG_FREE) != 0
    }

    /// True for a tombstone (no neighbours, no code; its slot may be reused).
    pub fn is_free(&self) -> bool {
        self.bytes[2] & FLAG_FREE != 0
    }

    /// Heap TID as (block, offset).
    pub fn heap_tid(&self) -> (u32, u16) {
        (
            u32::from_le_bytes(self.bytes[4..8].try_into().expect("fixed")),
            u16::from_le_bytes(self.bytes[8..10].try_into().expect("fixed")),
        )
    }

    /// Number of neighbours on a layer (0 for a tombstone or a layer above the level).
    pub fn count(&self, layer: usize) -> usize {
        if self.is_free() || layer > self.level() {
            return 0;
        }
        self.bytes[ELEMENT_FIXED_BYTES + layer] as usize
    }

    /// Neighbour node ids on a layer.
    pub fn neighbors(&self, layer: usize) -> impl Iterator<Item = u32> + '_ {
        let (first, _) = self.shape.layer_slots(layer);
        let base = ElementShape::slots_offset(self.level()) + 4 * first;
        (0..self.count(layer)).map(move |i| {
            let at = base + 4 * i;
            u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("in bounds"))
        })
    }

    /// The code bytes (empty for a tombstone).
    pub fn code(&self) -> &'a [u8] {
        if self.is_free() {
            return &[];
        }
        let at = self.shape.code_offset(self.level());
        &self.bytes[at..at + self.shape.code_len]
    }

    /// The float16 copy, if the index keeps one.
    pub fn float16(&self) -> Option<&'a [u8]> {
        (self.shape.float16_copy && !self.is_free()).then(|| {
            let at = self.shape.code_offset(self.level()) + self.shape.code_len;
            &self.bytes[at..at + 2 * self.shape.dims]
        })
    }
}

/// Writes a new element into `out` (which must be `shape.size(level)` bytes).
pub fn write_element(
    out: &mut [u8],
    shape: ElementShape,
    level: usize,
    heap_tid: (u32, u16),
    code: &[u8],
    float16: Option<&[half::f16]>,
) {
    out.fill(0);
    out[0] = ELEMENT_TAG_V1;
    out[1] = level as u8;
    out[4..8].copy_from_slice(&heap_tid.0.to_le_bytes());
    out[8..10].copy_from_slice(&heap_tid.1.to_le_bytes());
    let at = shape.code_offset(level);
    out[at..at + code.len()].copy_from_slice(code);
    if let Some(copy) = float16 {
        let base = at + shape.code_len;
        for (i, h) in copy.iter().enumerate() {
            out[base + 2 * i..base + 2 * i + 2].copy_from_slice(&h.to_bits().to_le_bytes());
        }
    }
}

/// Overwrites a layer's neighbour list of an element in place (truncating to capacity);
/// tombstones and layers above the element's level are left alone.
pub fn set_neighbors(element: &mut [u8], shape: ElementShape, layer: usize, ids: &[u32]) {
    let level = element[1] as usize;
    if element[2] & FLAG_FREE != 0 || layer > level || element.len() != shape.size(level) {
        return;
    }
    let (first, cap) = shape.layer_slots(layer);
    let n = ids.len().min(cap);
    element[ELEMENT_FIXED_BYTES + layer] = n as u8;
    let base = ElementShape::slots_offset(level) + 4 * first;
    for (i, id) in ids[..n].iter().enumerate() {
        element[base + 4 * i..base + 4 * i + 4].copy_from_slice(&id.to_le_bytes());
    }
}

/// Marks an element deleted (its slots stay so scans in flight can pass through it).
pub fn mark_deleted(element: &mut [u8]) {
    element[2] |= FLAG_DELETED;
}

/// The tombstone that replaces a repaired, deleted element.
pub fn tombstone() -> [u8; ELEMENT_FIXED_BYTES] {
    let mut t = [0u8; ELEMENT_FIXED_BYTES];
    t[0] = ELEMENT_TAG_V1;
    t[2] = FLAG_DELETED | FLAG_FREE;
    t
}

/// Packs a node id from a block number and a 1-based line pointer offset.
pub fn node_id(block: u32, offset: u16) -> u32 {
    debug_assert!((1..=255).contains(&offset) && block < (1 << 24));
    (block << 8) | offset as u32
}

/// Unpacks a node id into (block, offset).
pub fn node_location(id: u32) -> (u32, u16) {
    (id >> 8, (id & 0xff) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_meta() -> MetaPage {
        MetaPage {
            dims: 768,
            metric: Metric::Cosine,
            quantizer: QuantizerKind::Sq8,
            rerank: RerankSource::Heap,
            m: 16,
            ef_construction: 64,
            code_len: 768,
            entry_node: node_id(7, 3),
            entry_level: 4,
            quantizer_first: 1,
            quantizer_blocks: 2,
            quantizer_bytes: 9000,
            insert_page: 99,
            node_count: 12345,
            build_id: 0xdead_beef,
            staging: true,
            unit_norm: true,
        }
    }

    #[test]
    fn meta_round_trip_and_rejects() {
        let meta = sample_meta();
        let bytes = meta.encode();
        assert_eq!(MetaPage::decode(&bytes).unwrap(), meta);
        let mut bad = bytes;
        bad[4] = 9;
        assert_eq!(
            MetaPage::decode(&bad),
            Err(LayoutError::UnsupportedVersion(9))
        );
        bad = bytes;
        bad[0] ^= 1;
        assert!(matches!(
            MetaPage::decode(&bad),
            Err(LayoutError::BadMagic(_))
        ));
        for len in 0..META_BYTES {
            assert!(MetaPage::decode(&bytes[..len]).is_err(), "len {len}");
        }
        bad = bytes;
        bad[12] = 7; // metric
        assert!(matches!(
            MetaPage::decode(&bad),
            Err(LayoutError::Corrupt(_))
        ));
    }

    #[test]
    fn meta_checksum_catches_every_changed_byte() {
        // Known CRC-32C check value ("123456789" -> 0xE3069283).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        let bytes = sample_meta().encode();
        for at in 8..META_BYTES {
            let mut bad = bytes;
            bad[at] ^= 0x01;
            assert_eq!(
                MetaPage::decode(&bad),
                Err(LayoutError::Corrupt("meta page checksum mismatch".into())),
                "byte {at}"
            );
        }
        // a metric byte changed to another valid metric is caught too
        let mut other = bytes;
        other[12] = 0;
        assert!(MetaPage::decode(&other).is_err());
    }

    #[test]
    fn element_layout_round_trip() {
        let shape = ElementShape {
            m: 4,
            code_len: 5,
            dims: 3,
            float16_copy: true,
        };
        for level in 0..3 {
            let mut buf = vec![0u8; shape.size(level)];
            let f16: Vec<half::f16> = [1.0f32, -2.0, 0.5]
                .iter()
                .map(|v| half::f16::from_f32(*v))
                .collect();
            write_element(
                &mut buf,
                shape,
                level,
                (42, 7),
                &[1, 2, 3, 4, 5],
                Some(&f16),
            );
            set_neighbors(&mut buf, shape, 0, &[10, 11, 12]);
            if level > 0 {
                set_neighbors(&mut buf, shape, level, &[20, 21, 22, 23, 24, 25]);
            }
            let e = ElementRef::parse(&buf, shape).unwrap();
            assert_eq!(e.level(), level);
            assert_eq!(e.heap_tid(), (42, 7));
            assert_eq!(e.code(), &[1, 2, 3, 4, 5]);
            assert_eq!(e.neighbors(0).collect::<Vec<_>>(), vec![10, 11, 12]);
            if level > 0 {
                assert_eq!(e.neighbors(level).collect::<Vec<_>>(), vec![20, 21, 22, 23]);
            }
            assert_eq!(e.float16().unwrap().len(), 6);
            assert!(!e.is_deleted());
            mark_deleted(&mut buf);
            assert!(ElementRef::parse(&buf, shape).unwrap().is_deleted());
        }
    }

    #[test]
    fn element_rejects_corruption() {
        let shape = ElementShape {
            m: 4,
            code_len: 5,
            dims: 3,
            float16_copy: false,
        };
        let mut buf = vec![0u8; shape.size(1)];
        write_element(&mut buf, shape, 1, (1, 1), &[0; 5], None);
        assert!(ElementRef::parse(&buf[..buf.len() - 1], shape).is_err());
        let mut bad = buf.clone();
        bad[0] = 0;
        assert!(ElementRef::parse(&bad, shape).is_err());
        bad = buf.clone();
        bad[ELEMENT_FIXED_BYTES] = 200;
        assert!(ElementRef::parse(&bad, shape).is_err());
        bad = buf.clone();
        bad[1] = 9;
        assert!(ElementRef::parse(&bad, shape).is_err());
    }

    #[test]
    fn tombstones_parse_as_free() {
        let shape = ElementShape {
            m: 4,
            code_len: 5,
            dims: 3,
            float16_copy: true,
        };
        let t = tombstone();
        let e = ElementRef::parse(&t, shape).unwrap();
        assert!(e.is_free() && e.is_deleted());
        assert_eq!(e.count(0), 0);
        assert!(e.code().is_empty() && e.float16().is_none());
        let mut long = vec![0u8; shape.size(0)];
        long[..ELEMENT_FIXED_BYTES].copy_from_slice(&t);
        assert!(ElementRef::parse(&long, shape).is_err());
        let mut t2 = t;
        set_neighbors(&mut t2, shape, 0, &[1, 2]);
        assert_eq!(t2, t);
    }

    #[test]
    fn node_ids_pack() {
        assert_eq!(node_location(node_id(123_456, 200)), (123_456, 200));
    }

    #[test]
    fn sq8_768_elements_pack_eight_per_page() {
        let shape = ElementShape {
            m: 16,
            code_len: 768,
            dims: 768,
            float16_copy: false,
        };
        // 8192-byte page, 24-byte header, 8-byte special, 4-byte line pointer, 8-byte alignment.
        let per_page = (8192 - 24 - 8) / (shape.size(0).div_ceil(8) * 8 + 4);
        assert_eq!(shape.size(0), 12 + 4 + 128 + 768);
        assert_eq!(per_page, 8);
    }
}
