//! The process's memory allocator: mimalloc for small blocks, the system
//! allocator (glibc malloc) for large ones.
//!
//! A proxied request allocates and frees a few dozen small blocks (header
//! maps, buffers, futures); mimalloc's per-thread free lists serve them in
//! fewer instructions than glibc's (callgrind: 36.9 k → 34.7 k user-space
//! instructions per proxied request). Large blocks stay with glibc, which
//! gives each its own mapping and returns it on free: with mimalloc alone a
//! costly definition (`tests/cue_adversarial.rs`, a string doubled until
//! the budget stops it) peaked at 41.7 MiB, with glibc alone 37.1 MiB, and
//! split this way 36.9 MiB (`/usr/bin/time -f %M substrate defs eval`).
//! mimalloc is built without transparent huge pages (`no_thp`): with them,
//! each 2 MiB region it touches became resident whole, and the same
//! evaluation peaked at 46.4 MiB.
//!
//! The size of a block decides its allocator, on allocation and free alike
//! (`GlobalAlloc` passes the same layout to both), so each block returns to
//! the allocator it came from.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this many bytes or more come from the system allocator.
/// Above every per-request block (hyper's 8 KiB read buffers included).
pub const LARGE_BLOCK: usize = 64 * 1024;

/// mimalloc below [`LARGE_BLOCK`], the system allocator from there up.
pub struct SizeRouted;

fn is_large(size: usize) -> bool {
    size >= LARGE_BLOCK
}

// SAFETY: every block is allocated and freed by the same allocator, chosen
// by its size, which `GlobalAlloc` callers must pass unchanged to
// `dealloc` and `realloc`; a `realloc` that crosses the threshold moves the
// block between allocators with an allocation, a copy and a free.
unsafe impl GlobalAlloc for SizeRouted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees `new_size`, rounded up to
                // `layout.align()`, does not overflow.
                let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                let new_ptr = unsafe { self.alloc(new_layout) };
                if !new_ptr.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new_ptr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks grown and shrunk across the threshold keep their contents.
    #[test]
    fn blocks_keep_their_bytes_across_the_threshold() {
        let a = SizeRouted;
        for align in [1usize, 8, 64, 4096] {
            let small = Layout::from_size_align(1000, align).unwrap();
            unsafe {
                let p = a.alloc(small);
                assert!(!p.is_null());
                for i in 0..1000 {
                    *p.add(i) = (i % 251) as u8;
                }
                let big = a.realloc(p, small, LARGE_BLOCK * 2);
                assert!(!big.is_null());
                assert_eq!(big as usize % align, 0);
                for i in 0..1000 {
                    assert_eq!(*big.add(i), (i % 251) as u8);
                }
                let big_layout = Layout::from_size_align(LARGE_BLOCK * 2, align).unwrap();
                let back = a.realloc(big, big_layout, 500);
                assert!(!back.is_null());
                assert_eq!(back as usize % align, 0);
                for i in 0..500 {
                    assert_eq!(*back.add(i), (i % 251) as u8);
                }
                a.dealloc(back, Layout::from_size_align(500, align).unwrap());
            }
        }
    }
}
