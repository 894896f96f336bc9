//! SPSC ring buffers (being built).
