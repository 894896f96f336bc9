//! One shard of the key:value store (being built; see issue 3).
