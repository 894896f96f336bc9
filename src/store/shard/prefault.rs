//! Memory made ready ahead of need, for a worker with nothing else to do: pre-faulting the
//! pages writes will fill next, and the spare segments kept for reuse.

use super::Shard;

impl Shard {
    /// Give the spare segments (see [`Config::spare_segments`](crate::store::Config::spare_segments)) back to the operating system,
    /// for a worker that has been idle for a while. Returns how many were released.
    pub fn release_spare_segments(&mut self) -> usize {
        self.arena.release_spares()
    }

    /// One bounded step of pre-faulting, for a worker with nothing else to do: touch up to
    /// `max_pages` pages (4 KiB) of memory that writes will soon fill, so that their page
    /// faults are taken here rather than inside a later write. First the head segment ahead of
    /// its allocated part, then the spare that will be the next head (allocated here if there
    /// is none, [`Config::spare_segments`](crate::store::Config::spare_segments) is not 0 and the cleaner has no work: segments it
    /// frees become spares), then the next table of a partition close to full (see
    /// `Table::prepare_step`). Keeps at most one segment (the spare) and one table per
    /// partition allocated ahead of need. Returns the pages touched; 0 once
    /// [`Shard::is_prefaulted`]. See docs/store.md, "Pre-faulting".
    pub fn prefault_step(&mut self, max_pages: usize) -> usize {
        // No spare segment is allocated ahead while the cleaner works: the segment it frees
        // next becomes the spare (already mapped), and one allocated now would push a freed
        // one over the spare limit, back to the system, inside a write.
        let allocate = !self.needs_garbage_cleaning();
        let touched = self.arena.prefault_step(max_pages, allocate);
        if touched >= max_pages {
            return touched;
        }
        touched + self.table.prepare_step(max_pages - touched)
    }

    /// Whether [`Shard::prefault_step`] has nothing to do. Cheap (a few comparisons).
    pub fn is_prefaulted(&self) -> bool {
        self.table.is_prepared() && self.arena.is_prefaulted(|| !self.needs_garbage_cleaning())
    }
}
