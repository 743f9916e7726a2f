// msync (LTP msync01-03): write shared dirty pages of the range back to their files.

import { EINVAL, ENOMEM, EBUSY } from "./config";
import { VM_SHARED, VM_LOCKED, vma_flags, vma_start, vma_end, vma_next, vma_file, vma_pgoff } from "./vma";
import { find_vma } from "./mm";
import { filemap_write_range } from "./filemap";

export const MS_ASYNC: u32 = 1;
export const MS_INVALIDATE: u32 = 2;
export const MS_SYNC: u32 = 4;

// Returns 0 or -errno (EIO-like errors from the backend come back as they are).
// MS_ASYNC writes back too: asynchronous write-back that happens to finish at once.
export function do_msync(mm: u32, start: u64, len: u64, flags: u32): i32 {
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) != 0) return -EINVAL;
  if ((start & 4095) != 0) return -EINVAL;
  if ((flags & MS_ASYNC) != 0 && (flags & MS_SYNC) != 0) return -EINVAL;
  const end = start + ((len + 4095) & ~(<u64>4095));
  if (end < start) return -ENOMEM;
  if (end == start) return 0;
  let err: i32 = 0;
  let hole = false;
  let at = start;
  let v = find_vma(mm, start);
  while (v != 0 && vma_start(v) < end) {
    if (vma_start(v) > at) hole = true;
    if ((flags & MS_INVALIDATE) != 0 && (vma_flags(v) & VM_LOCKED) != 0) return -EBUSY;
    const s = vma_start(v) > start ? vma_start(v) : start;
    const e = vma_end(v) < end ? vma_end(v) : end;
    const file = vma_file(v);
    if (file != 0 && (vma_flags(v) & VM_SHARED) != 0) {
      const first = vma_pgoff(v) + ((s - vma_start(v)) >> 12);
      const last = first + ((e - s) >> 12) - 1;
      const r = filemap_write_range(file, first, last);
      if (r < 0 && err == 0) err = r;
    }
    at = vma_end(v);
    v = vma_next(v);
  }
  if (at < end) hole = true;
  if (err < 0) return err;
  return hole ? -ENOMEM : 0;
}
