// The calls the core makes into the host, and the only file with @external.
// Each is made only where a backend must act (DESIGN.md: "across the boundary").

// Read `index` of file `fileId` into the frame at linear address `dst` (4096 bytes).
// Returns bytes read (0..4096; the rest is zero-filled by the core) or -errno.
@external("host", "readPage")
export declare function host_read_page(fileId: u32, index: f64, dst: usize): i32;

// Read pages [index, index + n) of `fileId` with one backend read (a backend with
// readPages: AS_HAS_READ_PAGES) into the frames whose linear addresses are the n u32s at
// `dsts`. Returns the bytes read (0..n*4096, page i gets bytes i*4096.., the rest is
// zero-filled by the core) or -errno.
@external("host", "readPages")
export declare function host_read_pages(fileId: u32, index: f64, n: u32, dsts: usize): i32;

// Write one page of `fileId` back from linear address `src`; `len` bytes (EOF-clamped).
@external("host", "writePage")
export declare function host_write_page(fileId: u32, index: f64, src: usize, len: u32): i32;

// A backend's own vm_operations (seed 000, 002, 004). The fault record is at a fixed
// address the host reads (vmfault.ts); each returns VM_FAULT_* bits.
@external("host", "fault")
export declare function host_fault(fileId: u32): u32;

// Map pages [start, end] the backend already has, without blocking (seed 000).
@external("host", "mapPages")
export declare function host_map_pages(fileId: u32, start: f64, end: f64): void;

// fallocate(PUNCH_HOLE | KEEP_SIZE) of `len` bytes at byte `off` (MADV_REMOVE, R9.1): the
// backend frees or zeroes them. 0 or -errno (EOPNOTSUPP: the backend cannot).
@external("host", "punchHole")
export declare function host_punch_hole(fileId: u32, off: f64, len: f64): i32;

@external("host", "pageMkwrite")
export declare function host_page_mkwrite(fileId: u32): u32;

@external("host", "pfnMkwrite")
export declare function host_pfn_mkwrite(fileId: u32): u32;

// The swap device (in host memory by default, or a file): write or read one 4 KiB slot,
// and forget a slot that is free again. 0 or -errno.
@external("host", "swapWrite")
export declare function host_swap_write(slot: u32, src: usize): i32;

@external("host", "swapRead")
export declare function host_swap_read(slot: u32, dst: usize): i32;

@external("host", "swapFree")
export declare function host_swap_free(slot: u32): void;

// Device memory (MMIO, issue #5): move `len` bytes between linear memory at `buf` and the
// device the host registered at physical address `pa`: to the device when `write` is 1,
// from it when 0. Never more than one page. 0, or -errno (reads then hold all ones).
@external("host", "mmio")
export declare function host_mmio(pa: f64, buf: usize, len: u32, write: i32): i32;
