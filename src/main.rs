// The event path allocates many small, short-lived strings on several
// threads; mimalloc's per-thread heaps spend about a third less CPU on that
// than glibc malloc (benches/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e` of the
/// bundled mimalloc v3, which libmimalloc-sys does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Give freed pages back at once instead of after the default delay: with
    // it, batches in flight on two threads kept ~30 % more memory resident.
    // (Built with `no_thp`: refaulting 2 MiB transparent huge pages after
    // each purge cost more than it saved.)
    // `MIMALLOC_PURGE_DELAY` in the environment still wins (tuning).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called before any other thread exists; the option is an integer.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    std::process::exit(pgtrail::cli::main());
}
