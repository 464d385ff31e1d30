//! Counters that every serving thread writes, split so that no two
//! threads write the same cache line.
//!
//! Why: each serving thread runs on its own core (`admin::run`), and a
//! counter shared by all of them (requests per release, requests open per
//! target, a round-robin position) moved its cache line between the cores
//! on every request. Each thread now writes its own slot; readers (the
//! control API, a drain) add the slots up, which is rare.

use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Slots per counter: serving threads are one per core, and threads
/// beyond this share slots (still correct, only less spread).
pub const SLOTS: usize = 16;

/// One cache line (two on CPUs that fetch lines in pairs) per slot.
#[repr(align(128))]
#[derive(Default)]
pub struct Padded<T>(pub T);

/// This thread's slot, fixed for its lifetime.
pub fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

/// A count that goes up and down, possibly on different threads.
#[derive(Default)]
pub struct Count {
    slots: [Padded<AtomicIsize>; SLOTS],
}

impl Count {
    /// Sequentially consistent, like `sum`: a drain that marks a target
    /// and then reads its count cannot miss a request that counted itself
    /// and then read the mark (`Proxy::pick`).
    pub fn add(&self, n: isize) {
        self.slots[slot()].0.fetch_add(n, Ordering::SeqCst);
    }

    pub fn sum(&self) -> usize {
        let total: isize = self.slots.iter().map(|s| s.0.load(Ordering::SeqCst)).sum();
        total.max(0) as usize
    }
}

/// A next value per thread, for picking targets in turn.
pub fn next_turn() -> usize {
    thread_local! {
        static TURN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    TURN.with(|t| {
        let n = t.get();
        t.set(n.wrapping_add(1));
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_raised_on_one_thread_and_lowered_on_another_adds_up() {
        let c = std::sync::Arc::new(Count::default());
        c.add(3);
        let other = c.clone();
        std::thread::spawn(move || other.add(-2)).join().unwrap();
        assert_eq!(c.sum(), 1);
        c.add(-1);
        assert_eq!(c.sum(), 0);
    }

    #[test]
    fn turns_go_round() {
        let a = next_turn();
        assert_eq!(next_turn(), a + 1);
    }
}
