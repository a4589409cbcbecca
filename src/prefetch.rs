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

/// How many items ahead of the one being read [`prefetching`] asks for:
/// enough to overlap the loads, few enough that they are still in the
/// cache when read (2 to 16 measured the same; none was 13 % slower,
/// `benches/RESULTS.md`, session 14).
pub const AHEAD: usize = 4;

/// `items` in order, each item's memory asked for ([`AHEAD`]) positions
/// before it is handed out, by `fetch` (e.g. [`prefetch`] of what a box
/// points to).
pub fn prefetching<T>(items: Vec<T>, fetch: impl Fn(&T)) -> impl Iterator<Item = T> {
    items.iter().take(AHEAD).for_each(&fetch);
    let mut items = items.into_iter();
    std::iter::from_fn(move || {
        let item = items.next()?;
        if let Some(ahead) = items.as_slice().get(AHEAD - 1) {
            fetch(ahead);
        }
        Some(item)
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn prefetching_hands_out_every_item_in_order_and_asks_ahead() {
        for n in [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 3 * AHEAD] {
            let asked = RefCell::new(Vec::new());
            let items: Vec<usize> = (0..n).collect();
            let mut order = Vec::new();
            for item in prefetching(items, |&i| asked.borrow_mut().push(i)) {
                // Everything up to AHEAD - 1 past this one was asked for.
                let want = (item + AHEAD).min(n);
                assert!(asked.borrow().len() >= want, "item {item} of {n}");
                order.push(item);
            }
            assert_eq!(order, (0..n).collect::<Vec<_>>());
            // Each item asked for once, in order.
            assert_eq!(*asked.borrow(), (0..n).collect::<Vec<_>>());
        }
    }
}
