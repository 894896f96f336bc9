//! Arena segments: where record bytes live. All of the store's `unsafe` code is here but one
//! `getrandom` call in `hash.rs`.
//!
//! A [`Segment`] is one `bumpalo::Bump` holding exactly one chunk of memory (an allocation limit
//! stops it from ever growing a second one). bumpalo bumps *downwards*: the first record sits at
//! the top of the chunk and each later record sits directly below the one before, with no gap
//! (records are allocated with alignment 4 and sizes that are multiples of 4, so the bump
//! pointer never has to skip bytes). A record's position in its segment is therefore the number
//! of bytes allocated in the segment before it, counted down from the top:
//!
//! ```text
//!   chunk start                                                     chunk top (bumpalo footer)
//!   |<---------- free ---------->|<- record 2 ->|<- record 1 ->|<- record 0 ->|
//!                                ^ top - used   ^ top - 2nd pos ^ top - 1st pos ^ top - 0
//! ```
//!
//! A [`Handle`] names a record by (segment slot, position) in 4 bytes (see [`Handle`] for the
//! split and the limit it puts on a shard). Position grows with allocation order,
//! so walking a segment in log order means walking *down* in memory; that is why a record keeps
//! its header at its high end (see `record.rs`): the walker reads the header just below the
//! previous record's start and learns the size of the record below it.
//!
//! [`Arena`] keeps the segments in slots (a `Vec<Option<Segment>>`; a handle stores the slot
//! index), gives each segment a stretch of the virtual log (its `base`), and knows which segment
//! is the *head* (the one that receives new records). Records larger than `large_record_bytes`
//! get a segment of their own.
//!
//! Safety argument, in one place: a segment hands out slices over `[top - used, top)` only; every
//! byte in that range was written by [`Segment::push`] when it was allocated, the memory is owned
//! by the segment's `Bump` (which is never reset and lives as long as the segment), and the
//! borrow of `&self`/`&mut self` on the segment is the borrow of the bytes. All record access goes
//! through bounds-checked slices, so even a stale handle can at worst read the wrong bytes of a
//! live segment or panic, never touch freed memory; debug builds check that no handle survives the
//! segment it points into (see `Shard::free_segment`).

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::{self, NonNull};

use bumpalo::Bump;

use super::record::RECORD_ALIGN;

/// The page size pre-faulting steps by (`Segment::prefault`, and `table.rs` for prepared
/// tables). 4 KiB on x86-64 and most arm64 Linux systems; with larger pages some writes are
/// redundant, never missing (each write maps its page).
pub(crate) const PAGE_BYTES: usize = 4096;

/// Where a record lives, in 4 bytes: `slot << offset_bits | position / 4`.
///
/// ```text
///   31                      offset_bits                                   0
///  +---------------------------+------------------------------------------+
///  | slot (32 - offset_bits)   | position in 4-byte units (offset_bits)   |
///  +---------------------------+------------------------------------------+
///   with 1 MiB segments: 14 bits of slot (16,384 segments), 18 bits of position
/// ```
///
/// `slot` indexes [`Arena`]'s segment slots; `position` is the distance in bytes from the
/// segment's top to the record's top end (see the module doc), always a multiple of
/// [`RECORD_ALIGN`]. `offset_bits` is fixed per arena by the segment size: just enough for a
/// position inside an ordinary segment. A large segment holds one record, at position 0, so it
/// costs one slot whatever its size. Consequence: a shard addresses at most
/// `2^32 * 4 bytes = 16 GiB` of ordinary segments, whatever the segment size; beyond that (or
/// beyond `2^(32 - offset_bits)` segments counting large ones) [`Arena::allocate`] refuses
/// and the shard answers out of memory. Only [`Arena`] can split a handle, because only it
/// knows `offset_bits`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Handle(u32);

const _: () = assert!(size_of::<Handle>() == 4);

impl Handle {
    /// A handle no arena hands out (the last position of the last slot with 24 offset bits is
    /// past any segment's end). Only placed in spare tables being prepared (`table.rs`), which
    /// are emptied before they are used.
    pub(crate) const PLACEHOLDER: Handle = Handle(u32::MAX);
}

/// Where the bytes of a part of a new record come from.
#[derive(Clone, Copy)]
pub(crate) enum Part<'a> {
    /// Bytes from outside the arena (the caller's key or value, a formatted header).
    Bytes(&'a [u8]),
    /// Bytes of a stored record: `tail[start..start + len]` where `tail` is
    /// [`Arena::tail`] of `handle`. Used to relocate records and to build a new value from an
    /// old one (append) without a temporary buffer.
    Stored {
        handle: Handle,
        start: usize,
        len: usize,
    },
}

impl Part<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Part::Bytes(bytes) => bytes.len(),
            Part::Stored { len, .. } => *len,
        }
    }
}

/// One fixed-size chunk of memory that records are bump-allocated into.
pub(crate) struct Segment {
    /// Owns the chunk. Never reset, never grows a second chunk (allocation limit).
    bump: Bump,
    /// The chunk's top: records are allocated downwards from here.
    top: NonNull<u8>,
    /// Bytes that can be allocated in the chunk, `used ..= capacity`.
    capacity: usize,
    /// Bytes allocated so far; every one of them was initialised by `push`. Range `0 ..= capacity`.
    used: usize,
    /// Bytes requested from the global allocator for this segment (chunk plus bumpalo footer).
    footprint_bytes: usize,
    /// Where the segment starts in the *virtual log*: a byte offset that only grows. Each new
    /// segment takes `[base, base + capacity)` of it, so a record's virtual offset
    /// (`base + position`) orders the log; scan and active expiry walk segments in `base` order.
    pub(crate) base: u64,
    /// Bytes of live (not dead) records in this segment, headers included.
    pub(crate) live_bytes: usize,
    /// Number of live records in this segment.
    pub(crate) live_records: usize,
    /// Number of live records that carry a deadline (active expiry skips segments with none).
    pub(crate) volatile_records: usize,
    /// The shard's version counter when this segment stopped being the head: the cleaner's
    /// clock for the segment's age.
    pub(crate) sealed_version: u64,
    /// True for a segment made for one large record.
    pub(crate) large: bool,
    /// Bytes below the top whose pages are known to be mapped (written at least once): the
    /// allocated part, and whatever [`Segment::prefault`] touched ahead of it. Kept across
    /// reuse as a spare (the memory stays mapped). Only a hint: nothing reads memory through it.
    faulted: usize,
}

// SAFETY: `top` points into the chunk owned by `bump`, which moves with the segment; `Bump` is
// `Send`. A segment is owned by one shard and reached only through `&`/`&mut` of that shard, so
// moving it to another thread moves the only way to reach the memory.
unsafe impl Send for Segment {}

impl Segment {
    /// A segment with room for at least `capacity` bytes (and at most `max_capacity`), or `None`
    /// if the allocator refuses.
    fn new(capacity: usize, max_capacity: usize, base: u64, large: bool) -> Option<Segment> {
        let bump = Bump::try_with_capacity(capacity).ok()?;
        // One chunk only: a record must never be split, and the handle names one chunk.
        bump.set_allocation_limit(Some(bump.allocated_bytes()));
        let chunk_capacity = bump.chunk_capacity();
        debug_assert!(chunk_capacity >= capacity);
        // SAFETY: the iterator lives only for this statement and no allocation happens while it
        // is alive; we read the bump pointer of the (only, still empty) chunk, nothing else.
        let (bump_pointer, allocated) = unsafe { bump.iter_allocated_chunks_raw() }.next()?;
        debug_assert_eq!(allocated, 0, "a new chunk has nothing allocated");
        let top = NonNull::new(bump_pointer)?;
        // Positions are counted in RECORD_ALIGN units from the top, so the top must be aligned
        // (bumpalo aligns its chunk footer to 16 bytes).
        assert_eq!(
            top.as_ptr() as usize % RECORD_ALIGN,
            0,
            "segment top is aligned"
        );
        let footprint_bytes = bump.allocated_bytes_including_metadata();
        Some(Segment {
            bump,
            top,
            capacity: chunk_capacity.min(max_capacity),
            used: 0,
            footprint_bytes,
            base,
            live_bytes: 0,
            live_records: 0,
            volatile_records: 0,
            sealed_version: 0,
            large,
            faulted: 0,
        })
    }

    /// Whether every page of the allocatable part is known to be mapped.
    fn is_prefaulted(&self) -> bool {
        self.faulted.max(self.used) >= self.capacity
    }

    /// Write one byte in each of up to `max_pages` pages of the free part, from just below the
    /// allocated part downwards (the order records will fill it), so that the page faults of
    /// fresh memory are taken here, in a step the caller schedules, and not by a later write.
    /// Returns the pages touched.
    fn prefault(&mut self, max_pages: usize) -> usize {
        let mut faulted = self.faulted.max(self.used);
        let mut touched = 0;
        while touched < max_pages && faulted < self.capacity {
            // The highest free byte not known to be mapped: `top - faulted - 1`, inside the
            // chunk because `faulted < capacity` and `[top - capacity, top)` is the chunk's
            // allocatable part. It is in the free part (`faulted >= used`).
            // No slice covers the free part (slices cover `[top - used, top)`, and `&mut self`
            // excludes them anyway), and `push` writes every byte it hands out, so the zero
            // written here is never read as data.
            let address = self.top.as_ptr() as usize - faulted - 1;
            // SAFETY: `address` is in the free part of the chunk `self.bump` owns (above).
            unsafe { ptr::write_volatile(address as *mut u8, 0) };
            let page_start = address & !(PAGE_BYTES - 1);
            faulted = self.top.as_ptr() as usize - page_start;
            touched += 1;
        }
        self.faulted = faulted.min(self.capacity);
        touched
    }

    /// Empty the segment for reuse as a new head: same chunk, same top, nothing allocated.
    fn reset(&mut self, base: u64) {
        debug_assert!(!self.large);
        self.bump.reset();
        // SAFETY: as in `new`: the iterator lives only for this statement and nothing is
        // allocated while it is alive.
        let top = unsafe { self.bump.iter_allocated_chunks_raw() }
            .next()
            .map(|(pointer, _)| pointer);
        // `reset` keeps the last (here the only) chunk, so records start at the same top.
        assert_eq!(top, Some(self.top.as_ptr()), "reset keeps the chunk");
        // The pages records used stay mapped.
        self.faulted = self.faulted.max(self.used);
        self.used = 0;
        self.base = base;
        self.live_bytes = 0;
        self.live_records = 0;
        self.volatile_records = 0;
        self.sealed_version = 0;
    }

    pub(crate) fn used(&self) -> usize {
        self.used
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn free_bytes(&self) -> usize {
        self.capacity - self.used
    }

    /// The allocated bytes `[top - used, top)`, lowest address first.
    pub(crate) fn region(&self) -> &[u8] {
        debug_assert!(self.used <= self.capacity);
        // `[top - used, top)` lies inside the chunk owned by `self.bump` (used <= capacity, and the
        // chunk's free space ends where the allocated bytes begin).
        // SAFETY: that range is in bounds and every byte was initialised by `push`; the chunk lives
        // as long as `self`, and `&self` keeps `push` (`&mut self`) out while the slice lives.
        unsafe { std::slice::from_raw_parts(self.top.as_ptr().sub(self.used), self.used) }
    }

    /// The allocated bytes, writable: used for in-place overwrites and header updates.
    pub(crate) fn region_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.used <= self.capacity);
        // SAFETY: as in `region`; `&mut self` makes this the only reference to these bytes.
        unsafe { std::slice::from_raw_parts_mut(self.top.as_ptr().sub(self.used), self.used) }
    }

    /// Allocate `size` bytes below the previous record and fill them: first `size - sum of
    /// lengths` zero bytes of padding, then `sources`, a list of `(pointer, length)` pairs copied
    /// in order (lowest address first). Returns the record's position, or `None` if it does not
    /// fit.
    ///
    /// # Safety
    ///
    /// Each source pointer must be valid for reads of its length; the lengths must add up to at
    /// most `size`, and `size` must be a multiple of `RECORD_ALIGN`. The sources must not
    /// overlap the free part of this segment (they may point into the allocated part of any live
    /// segment, this one included: that memory is not touched).
    unsafe fn push(&mut self, size: usize, sources: &[(*const u8, usize)]) -> Option<usize> {
        let padding = size - sources.iter().map(|s| s.1).sum::<usize>();
        debug_assert!(size % RECORD_ALIGN == 0 && padding < RECORD_ALIGN);
        if size > self.free_bytes() {
            return None;
        }
        let layout = Layout::from_size_align(size, RECORD_ALIGN).ok()?;
        let start = self.bump.try_alloc_layout(layout).ok()?;
        // The top is aligned and every size is a multiple of the alignment, so bumpalo places
        // the allocation directly below the previous one; the position arithmetic of every
        // handle depends on it.
        debug_assert_eq!(
            start.as_ptr() as usize + size,
            self.top.as_ptr() as usize - self.used
        );
        let mut destination = start.as_ptr();
        // SAFETY: `padding < size` bytes at the start of the new allocation, which is ours.
        unsafe {
            ptr::write_bytes(destination, 0, padding);
            destination = destination.add(padding);
        }
        for &(source, length) in sources {
            // SAFETY: the caller guarantees `source` is readable for `length` bytes and lies
            // outside the bytes just allocated; the destination range is inside the new
            // allocation of `size` bytes because the lengths add up to `size`.
            unsafe {
                ptr::copy_nonoverlapping(source, destination, length);
                destination = destination.add(length);
            }
        }
        let position = self.used;
        self.used += size;
        Some(position)
    }
}

/// The set of segments of one shard, in slots, with the log order and the head.
pub(crate) struct Arena {
    slots: Vec<Option<Segment>>,
    free_slots: Vec<u32>,
    /// Log order: virtual base offset to slot. Segments are visited in this order by scan and
    /// active expiry; a record only ever moves to a higher virtual offset (`base + position`).
    by_base: BTreeMap<u64, u32>,
    /// The slot that receives new small records.
    head: Option<u32>,
    /// The virtual offset the next segment starts at (the sum of all capacities handed out).
    next_base: u64,
    segment_bytes: usize,
    large_record_bytes: usize,
    /// Bits of a handle that hold the position (in `RECORD_ALIGN` units); the rest hold the slot.
    offset_bits: u32,
    /// Sum of `footprint_bytes` of the live segments.
    footprint_bytes: usize,
    /// Segments installed since the arena was made.
    segments_opened: u64,
    /// Segments obtained from the global allocator since the arena was made.
    segments_allocated: u64,
    /// Segments given back to the global allocator since the arena was made.
    segments_released: u64,
    /// Freed ordinary segments kept for reuse, at most `spare_limit`; none is in `slots`, so
    /// no handle can reach one.
    spares: Vec<Segment>,
    spare_limit: usize,
    /// Pages touched by `prefault_step` since the arena was made.
    pages_prefaulted: u64,
}

impl Arena {
    pub(crate) fn new(
        segment_bytes: usize,
        large_record_bytes: usize,
        spare_limit: usize,
    ) -> Arena {
        assert!(large_record_bytes <= segment_bytes);
        let units = (segment_bytes / RECORD_ALIGN).next_power_of_two();
        let offset_bits = units.trailing_zeros();
        assert!(offset_bits <= 24, "segments are at most 64 MiB");
        Arena {
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_base: BTreeMap::new(),
            head: None,
            next_base: 0,
            segment_bytes,
            large_record_bytes,
            offset_bits,
            footprint_bytes: 0,
            segments_opened: 0,
            segments_allocated: 0,
            segments_released: 0,
            spares: Vec::with_capacity(spare_limit),
            spare_limit,
            pages_prefaulted: 0,
        }
    }

    /// How many segments (ordinary and large) the handle can name.
    pub(crate) fn max_segments(&self) -> usize {
        1 << (32 - self.offset_bits)
    }

    /// The most bytes an ordinary segment can use: positions must fit in `offset_bits` units.
    fn max_segment_capacity(&self) -> usize {
        RECORD_ALIGN << self.offset_bits
    }

    fn handle(&self, slot: u32, position: usize) -> Handle {
        debug_assert!(position % RECORD_ALIGN == 0);
        let units = position / RECORD_ALIGN;
        debug_assert!(units < 1 << self.offset_bits, "position fits the handle");
        debug_assert!(
            (slot as usize) < self.max_segments(),
            "slot fits the handle"
        );
        Handle((slot << self.offset_bits) | units as u32)
    }

    /// The segment slot a handle names.
    pub(crate) fn slot_of(&self, handle: Handle) -> u32 {
        handle.0 >> self.offset_bits
    }

    /// The position (bytes from the segment's top to the record's end) a handle names.
    pub(crate) fn position_of(&self, handle: Handle) -> usize {
        (handle.0 & ((1 << self.offset_bits) - 1)) as usize * RECORD_ALIGN
    }

    pub(crate) fn segment(&self, slot: u32) -> &Segment {
        self.slots[slot as usize]
            .as_ref()
            .expect("handle points into a freed segment")
    }

    pub(crate) fn segment_mut(&mut self, slot: u32) -> &mut Segment {
        self.slots[slot as usize]
            .as_mut()
            .expect("handle points into a freed segment")
    }

    /// The allocated bytes of the record's segment up to the record's top end: the record is
    /// the last `size` bytes of this slice, its header the last bytes of all.
    pub(crate) fn tail(&self, handle: Handle) -> &[u8] {
        let segment = self.segment(self.slot_of(handle));
        let position = self.position_of(handle);
        debug_assert!(position < segment.used, "handle past the segment's end");
        &segment.region()[..segment.used - position]
    }

    pub(crate) fn tail_mut(&mut self, handle: Handle) -> &mut [u8] {
        let position = self.position_of(handle);
        let segment = self.segment_mut(self.slot_of(handle));
        debug_assert!(position < segment.used, "handle past the segment's end");
        let end = segment.used - position;
        &mut segment.region_mut()[..end]
    }

    /// Allocate a record of `size` bytes (a multiple of `RECORD_ALIGN`) made of padding and then
    /// `parts` (lowest address first). Opens a new head segment if the head is full; gives a
    /// large record a segment of its own. Returns `None` if the allocator refuses memory or if
    /// every slot a handle can name is taken. `version_now` stamps a segment sealed here.
    // `inline(always)`: with the partitioned table LLVM stopped inlining this into
    // `Shard::set`, and `#[inline]` did not bring it back; the `set_new` count of
    // `benches/iai_store.rs` shows what the call costs (docs/PERFORMANCE.md has the figures).
    #[inline(always)]
    pub(crate) fn allocate(
        &mut self,
        size: usize,
        parts: &[Part<'_>],
        version_now: u64,
    ) -> Option<Handle> {
        debug_assert!(size % RECORD_ALIGN == 0);
        debug_assert!(size - parts.iter().map(Part::len).sum::<usize>() < RECORD_ALIGN);
        debug_assert!(parts.len() <= 4);
        let slot = if size > self.large_record_bytes {
            self.open_large(size, version_now)?
        } else {
            match self.head {
                Some(head) if self.segment(head).free_bytes() >= size => head,
                _ => self.open_head(version_now)?,
            }
        };
        let mut sources = [(ptr::null::<u8>(), 0usize); 4];
        for (source, part) in sources.iter_mut().zip(parts) {
            *source = match *part {
                Part::Bytes(bytes) => (bytes.as_ptr(), bytes.len()),
                Part::Stored { handle, start, len } => {
                    let tail = self.tail(handle);
                    let bytes = &tail[start..start + len];
                    (bytes.as_ptr(), bytes.len())
                }
            };
        }
        let segment = self.segment_mut(slot);
        // Each source comes from a live slice (caller bytes, or the allocated region of a live
        // segment, bounds-checked just above); the lengths add up to `size` (asserted above).
        // SAFETY: so every source is readable for its length, and allocated regions never
        // overlap the free part of a segment, which is the only memory `push` writes.
        let position = unsafe { segment.push(size, &sources[..parts.len()]) }?;
        debug_assert!(
            position == 0 || !segment.large,
            "a large record is alone at the top"
        );
        Some(self.handle(slot, position))
    }

    /// Seal the current head (if any) and open a new one.
    fn open_head(&mut self, version_now: u64) -> Option<u32> {
        if !self.has_free_slot() {
            return None;
        }
        let segment = match self.spares.pop() {
            Some(mut spare) => {
                spare.reset(self.next_base);
                spare
            }
            None => {
                let segment = Segment::new(
                    self.segment_bytes,
                    self.max_segment_capacity(),
                    self.next_base,
                    false,
                )?;
                self.segments_allocated += 1;
                segment
            }
        };
        if let Some(old) = self.head.take() {
            self.segment_mut(old).sealed_version = version_now;
        }
        self.next_base += segment.capacity().next_multiple_of(RECORD_ALIGN) as u64;
        let slot = self.install(segment);
        self.head = Some(slot);
        Some(slot)
    }

    /// A segment for one large record. It takes the next stretch of the virtual log, and the
    /// head (if any) is moved after it (a new base; its records move forward in the log) so
    /// that records written later are always later in the log.
    fn open_large(&mut self, size: usize, version_now: u64) -> Option<u32> {
        if !self.has_free_slot() {
            return None;
        }
        let mut segment = Segment::new(size, usize::MAX, self.next_base, true)?;
        self.segments_allocated += 1;
        segment.sealed_version = version_now;
        self.next_base += segment.capacity().next_multiple_of(RECORD_ALIGN) as u64;
        let slot = self.install(segment);
        if let Some(head) = self.head {
            let old_base = self.segment(head).base;
            self.by_base.remove(&old_base);
            let new_base = self.next_base;
            self.next_base += self.segment(head).capacity().next_multiple_of(RECORD_ALIGN) as u64;
            self.segment_mut(head).base = new_base;
            self.by_base.insert(new_base, head);
        }
        Some(slot)
    }

    fn has_free_slot(&self) -> bool {
        !self.free_slots.is_empty() || self.slots.len() < self.max_segments()
    }

    fn install(&mut self, segment: Segment) -> u32 {
        debug_assert!(self.has_free_slot());
        self.segments_opened += 1;
        let base = segment.base;
        self.footprint_bytes += segment.footprint_bytes;
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(segment);
                slot
            }
            None => {
                self.slots.push(Some(segment));
                u32::try_from(self.slots.len() - 1).expect("slots fit the handle")
            }
        };
        self.by_base.insert(base, slot);
        slot
    }

    /// Take a segment out of its slot. An ordinary segment is kept as a spare if there is room
    /// (see `Config::spare_segments`); any other is dropped and its memory given back to the
    /// allocator (glibc unmaps chunks this large).
    pub(crate) fn free(&mut self, slot: u32) {
        let segment = self.slots[slot as usize]
            .take()
            .expect("freeing a free slot");
        debug_assert_eq!(
            segment.live_records, 0,
            "freeing a segment with live records"
        );
        if self.head == Some(slot) {
            self.head = None;
        }
        self.by_base.remove(&segment.base);
        self.footprint_bytes -= segment.footprint_bytes;
        self.free_slots.push(slot);
        if !segment.large && self.spares.len() < self.spare_limit {
            self.spares.push(segment);
        } else {
            self.segments_released += 1;
            drop(segment);
        }
    }

    /// One bounded step of pre-faulting (see `Shard::prefault_step`): touch up to `max_pages`
    /// pages of the head segment ahead of its allocated part, then of the spare the next head
    /// will be (the last one: `open_head` pops from the end), first allocating that spare if
    /// there is none, spares are allowed (`spare_limit > 0`) and `allocate` is true. Returns
    /// the pages touched (an allocation counts as one: bumpalo writes its footer at the
    /// chunk's top).
    pub(crate) fn prefault_step(&mut self, max_pages: usize, allocate: bool) -> usize {
        let touched = self.prefault_pages(max_pages, allocate);
        self.pages_prefaulted += touched as u64;
        touched
    }

    /// The body of [`Arena::prefault_step`].
    fn prefault_pages(&mut self, max_pages: usize, allocate: bool) -> usize {
        let mut touched = 0;
        if let Some(head) = self.head {
            touched += self.segment_mut(head).prefault(max_pages);
        }
        if touched >= max_pages || self.spare_limit == 0 || (self.spares.is_empty() && !allocate) {
            return touched;
        }
        if self.spares.is_empty() {
            let Some(segment) = Segment::new(
                self.segment_bytes,
                self.max_segment_capacity(),
                self.next_base,
                false,
            ) else {
                return touched; // the allocator refused: the next head will try again
            };
            self.segments_allocated += 1;
            self.spares.push(segment);
            touched += 1;
        }
        let spare = self.spares.last_mut().expect("a spare was just ensured");
        touched + spare.prefault(max_pages.saturating_sub(touched))
    }

    pub(crate) fn pages_prefaulted(&self) -> u64 {
        self.pages_prefaulted
    }

    /// Whether `prefault_step(_, allocate())` has nothing to do: the head and the next spare
    /// (if there is one, or if one would be allocated) are mapped. `allocate` is asked only
    /// when there is no spare.
    pub(crate) fn is_prefaulted(&self, allocate: impl FnOnce() -> bool) -> bool {
        self.head
            .is_none_or(|head| self.segment(head).is_prefaulted())
            && match self.spares.last() {
                Some(spare) => spare.is_prefaulted(),
                None => self.spare_limit == 0 || !allocate(),
            }
    }

    /// Give every spare segment back to the allocator; returns how many.
    pub(crate) fn release_spares(&mut self) -> usize {
        let released = self.spares.len();
        self.spares.clear();
        self.segments_released += released as u64;
        released
    }

    /// Drop every segment, spares included. The virtual log keeps growing (bases are never
    /// reused), so old scan cursors stay harmless.
    pub(crate) fn clear(&mut self) {
        self.segments_released += self.by_base.len() as u64;
        self.release_spares();
        self.slots.clear();
        self.free_slots.clear();
        self.by_base.clear();
        self.head = None;
        self.footprint_bytes = 0;
    }

    pub(crate) fn head(&self) -> Option<u32> {
        self.head
    }

    /// The segment holding a record at virtual offset `offset` or, if none does (the offset is
    /// in a freed segment or past a segment's used part), the first segment after it in log
    /// order: `(base, slot)`. `None` past the end of the log.
    pub(crate) fn segment_for(&self, offset: u64) -> Option<(u64, u32)> {
        if let Some((&base, &slot)) = self.by_base.range(..=offset).next_back() {
            if offset - base < self.segment(slot).used() as u64 {
                return Some((base, slot));
            }
        }
        self.by_base
            .range(offset.saturating_add(1)..)
            .next()
            .map(|(&base, &slot)| (base, slot))
    }

    /// The virtual offset of the end of the log (just past the last record of the last
    /// segment), or where the next segment would start if there is none.
    pub(crate) fn end_offset(&self) -> u64 {
        match self.by_base.last_key_value() {
            Some((&base, &slot)) => base + self.segment(slot).used() as u64,
            None => self.next_base,
        }
    }

    /// The oldest segment in log order: `(base, slot)`.
    pub(crate) fn first_segment(&self) -> Option<(u64, u32)> {
        self.by_base
            .first_key_value()
            .map(|(&base, &slot)| (base, slot))
    }

    /// Live segments as `(slot, segment)`.
    pub(crate) fn segments(&self) -> impl Iterator<Item = (u32, &Segment)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.as_ref().map(|s| (slot as u32, s)))
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.by_base.len()
    }

    pub(crate) fn segments_opened(&self) -> u64 {
        self.segments_opened
    }

    pub(crate) fn segments_allocated(&self) -> u64 {
        self.segments_allocated
    }

    pub(crate) fn segments_released(&self) -> u64 {
        self.segments_released
    }

    /// Bytes of the spare segments.
    pub(crate) fn spare_bytes(&self) -> usize {
        self.spares.iter().map(|s| s.footprint_bytes).sum()
    }

    pub(crate) fn footprint_bytes(&self) -> usize {
        self.footprint_bytes
    }

    /// Bytes of the slot table and the log index (small next to the segments).
    pub(crate) fn index_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Option<Segment>>()
            + self.free_slots.capacity() * 4
            + self.by_base.len() * 2 * 16
    }

    /// The handle of a record at `position` of `slot` (used by log walkers).
    pub(crate) fn handle_at(&self, slot: u32, position: usize) -> Handle {
        debug_assert!(position < self.segment(slot).used);
        self.handle(slot, position)
    }
}
