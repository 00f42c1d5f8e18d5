//! Allocator settings for the example and benchmark programs.
//!
//! burn's CPU backend writes every operation's result into a fresh buffer. With glibc's
//! default malloc, buffers above 128 KiB (or above the size of the last freed one, up to
//! 32 MiB) are `mmap`ed and returned to the kernel when freed, and the top of the heap is
//! trimmed once more than twice that is free; the next step then takes a page fault, and the
//! kernel zeroes the page, for every 4 KiB it writes. Keeping freed memory in the process
//! avoids that (`docs/performance.md` has the measurements).
//!
//! Programs (not libraries) choose their allocator, so this is the examples' choice, and one
//! that users can copy into their own `main`, or get without code from the environment:
//! `MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647`.

/// Serves buffers up to 32 MiB from the heap and never trims it (glibc only; elsewhere a
/// no-op). Returns whether the settings were applied.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator tunables; it is called before the program
        // allocates from other threads.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::keep_freed_memory());
    }
}
