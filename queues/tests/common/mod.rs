//! Helpers shared by the test files: a value that counts its drops, and a macro that instantiates
//! a generic test for each variant.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts how many times values made from one counter are dropped.
#[derive(Debug)]
pub struct DropCounter {
    pub id: u64,
    drops: Arc<AtomicUsize>,
}

impl DropCounter {
    pub fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            id,
            drops: drops.clone(),
        }
    }
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// `for_each_variant!(test_fn)` writes one `#[test]` per variant calling `test_fn::<Variant>()`.
#[macro_export]
macro_rules! for_each_variant {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn lamport() {
                    super::$name::<piccolo_queues::lamport::Lamport>();
                }
                #[test]
                fn cached() {
                    super::$name::<piccolo_queues::cached::Cached>();
                }
                #[test]
                fn batched() {
                    super::$name::<piccolo_queues::batched::Batched>();
                }
                #[test]
                fn mutex() {
                    super::$name::<piccolo_queues::mutex::Locked>();
                }
            }
        )*
    };
}
