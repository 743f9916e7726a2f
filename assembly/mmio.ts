// Device (MMIO) memory: physical addresses at or above gDevBasePfn have no bytes in linear
// memory; every access is a call to the host, which routes it to the device registered
// there (src/device.ts). The TLB never holds such a page (mmu.ts fill_from_walk), so each
// access walks and reaches the device.

import { PAGE_SHIFT, PAGE_SIZE, gDevBasePfn } from "./config";
import { host_mmio } from "./host";

const scratch: usize = memory.data(8);

@inline export function pa_is_device(pa: u64): bool { return <u32>(pa >> PAGE_SHIFT) >= gDevBasePfn; }

// Read or write `len` bytes (within one page) of device memory at `pa` through `buf`.
// Returns 0 or -errno; a failed read leaves all ones in `buf`, as an absent device reads.
export function mmio_access(pa: u64, buf: usize, len: u32, write: bool): i32 {
  if (len == 0) return 0;
  const r = host_mmio(<f64>pa, buf, len, write ? 1 : 0);
  if (r < 0 && !write) memory.fill(buf, 0xff, len);
  return r;
}

// touch() on a device page does what a CPU byte access does: a load for read and exec,
// a load then a store of the same byte for write (the same pair the RAM path performs).
export function mmio_touch(pa: u64, write: bool): void {
  mmio_access(pa, scratch, 1, false);
  if (write) mmio_access(pa, scratch, 1, true);
}

// The whole page at device PFN `pfn` into linear memory at `dst` (a COW copy of a private
// device mapping, R5.4): zero-filled if the device read fails.
export function mmio_copy_page(dst: usize, pfn: u32): void {
  if (host_mmio(<f64>(<u64>pfn << PAGE_SHIFT), dst, PAGE_SIZE, 0) < 0) memory.fill(dst, 0, PAGE_SIZE);
}
