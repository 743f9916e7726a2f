// msync (LTP msync01-03, R10.0): MS_SYNC writes shared dirty pages of the range back to their files.

import { EINVAL, ENOMEM, EBUSY } from "./config";
import { VM_SHARED, VM_LOCKED, vma_flags, vma_start, vma_end, vma_file, vma_pgoff } from "./vma";
import { find_vma } from "./mm";
import { filemap_write_range } from "./filemap";
import { file_flags, AS_SHMEM } from "./mapping";

export const MS_ASYNC: u32 = 1;
export const MS_INVALIDATE: u32 = 2;
export const MS_SYNC: u32 = 4;

// Returns 0 or -errno (EIO-like errors from the backend come back as they are).
// As Linux's msync since 2.6.19 (R10.0): only MS_SYNC on a shared file mapping writes back
// (vfs_fsync_range: the dirty pages are written and their PTEs cleaned and write-protected);
// MS_ASYNC and MS_INVALIDATE leave page tables and the cache alone (dirty pages are found
// through write-notify), and shmem has nothing to write. A hole is skipped and reported as
// ENOMEM at the end; plain MS_ASYNC stops at the first hole.
export function do_msync(mm: u32, start: u64, len: u64, flags: u32): i32 {
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) != 0) return -EINVAL;
  if ((start & 4095) != 0) return -EINVAL;
  if ((flags & MS_ASYNC) != 0 && (flags & MS_SYNC) != 0) return -EINVAL;
  const end = start + ((len + 4095) & ~(<u64>4095));
  if (end < start) return -ENOMEM;
  if (end == start) return 0;
  let unmapped: i32 = 0;
  let at = start;
  let v = find_vma(mm, start);
  while (true) {
    if (v == 0) return -ENOMEM;
    if (vma_start(v) > at) {
      if (flags == MS_ASYNC) return -ENOMEM;
      at = vma_start(v);
      if (at >= end) return -ENOMEM;
      unmapped = -ENOMEM;
    }
    if ((flags & MS_INVALIDATE) != 0 && (vma_flags(v) & VM_LOCKED) != 0) return -EBUSY;
    const e = vma_end(v) < end ? vma_end(v) : end;
    const file = vma_file(v);
    if ((flags & MS_SYNC) != 0 && file != 0 && (vma_flags(v) & VM_SHARED) != 0 && (file_flags(file) & AS_SHMEM) == 0) {
      const first = vma_pgoff(v) + ((at - vma_start(v)) >> 12);
      const r = filemap_write_range(file, first, first + ((e - at) >> 12) - 1);
      if (r < 0) return r;
    }
    at = vma_end(v);
    if (at >= end) return unmapped;
    v = find_vma(mm, at);
  }
}
