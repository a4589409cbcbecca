//! Cache hints for the hot path: asking the CPU to load an object's memory
//! before the code reads or writes it.
//!
//! An event is built on one thread and read on another thousands of events
//! later, by which time it has left the caches; its box, too, is memory the
//! allocator last handed out long ago. Each first touch then waited for the
//! event's lines one by one: on the dense benchmark log the stages that
//! first read or wrote an event took about a quarter of the time for 6 % of
//! the instructions (`docs/engine-next.md`). A prefetch issued a few events
//! ahead overlaps those waits. Hints only: they change no result.

/// Starts loading every cache line of `value` into the caches.
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = (value as *const T).cast::<i8>();
        for offset in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch never faults and never reads or writes
            // memory as far as the program can observe; the addresses are
            // inside `value` anyway. SSE is part of every x86-64 CPU.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
