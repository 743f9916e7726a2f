// The calls the core makes into the host, and the only file with @external.
// Each is made only where a backend must act (DESIGN.md: "across the boundary").

// Read `index` of file `fileId` into the frame at linear address `dst` (4096 bytes).
// Returns bytes read (0..4096; the rest is zero-filled by the core) or -errno.
@external("host", "readPage")
export declare function host_read_page(fileId: u32, index: f64, dst: usize): i32;

// Write one page of `fileId` back from linear address `src`; `len` bytes (EOF-clamped).
@external("host", "writePage")
export declare function host_write_page(fileId: u32, index: f64, src: usize, len: u32): i32;
