// The event path allocates many small, short-lived strings on several
// threads; mimalloc's per-thread heaps spend about a third less CPU on that
// than glibc malloc (benches/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e` of the
/// bundled mimalloc v3, which libmimalloc-sys does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays mapped before mimalloc returns it.
const PURGE_DELAY_MS: std::os::raw::c_long = 100;

fn main() {
    // Give freed pages back after 100 ms. With a delay of 0, pages freed
    // between two batches were returned and faulted in again at once: 4-5 s
    // of system time on the 1 GB benchmark for `parse` and `summary`. At
    // 10 ms, `parse` with two threads still made thousands of `madvise`
    // calls per second, each a TLB shootdown on the other core and the
    // pages faulted in again (1.8-1.9 s of system time on 1 GB); at 100 ms
    // 0.65-0.9 s, for 8-19 MB more peak RSS (see benches/RESULTS.md).
    // (Built with `no_thp`: refaulting 2 MiB transparent huge pages after
    // each purge cost more than it saved.)
    // `MIMALLOC_PURGE_DELAY` in the environment still wins (tuning).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called before any other thread exists; the option is an integer.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    std::process::exit(pgtrail::cli::main());
}
