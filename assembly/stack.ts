// expand_stack (Linux's expand_downwards in mm/mmap.c): a VM_GROWSDOWN VMA grows down to a
// faulting address below it (R1.1 step 1). Its own file, below fault.ts, which calls it
// from do_user_addr_fault as the arch fault handler does; mmap.ts is above the fault path
// (it populates through gup.ts), so the stack cannot live there.

import { MMAP_MIN_ADDR } from "./config";
import { VM_LOCKED, VM_GROWSDOWN, VM_SOFTDIRTY, VM_ACCESS_FLAGS, STACK_GUARD_GAP, vma_start,
  vma_end, vma_prev, vma_flags, vma_pgoff, set_vma_start, set_vma_pgoff, set_vma_flags,
  vma_gap_changed } from "./vma";
import { mm_locked_vm, mm_memlock_limit, mm_add_total_vm, mm_add_locked_vm, mm_root_at } from "./mm";

// RLIMIT_STACK's default soft limit: a grows-down VMA is at most this big.
export const STACK_LIMIT: u64 = 8 << 20;

// R1.1 step 1 (expand_downwards): grow the VM_GROWSDOWN VMA `v` down to cover `va` (below
// it). Refused (false: the access is SIGSEGV SEGV_MAPERR) below mmap_min_addr, beyond the
// stack limit, past the memlock limit of a locked stack, or to within the guard gap of an
// accessible, non-stack VMA below. The grown part is new memory: soft-dirty (R9.9).
export function expand_stack(mm: u32, v: u32, va: u64): bool {
  const addr = va & ~(<u64>4095);
  if (addr >= vma_start(v) || addr < MMAP_MIN_ADDR) return false;
  const prev = vma_prev(v);
  if (prev != 0) {
    if (vma_end(prev) > addr) return false;
    const pf = vma_flags(prev);
    if ((pf & VM_GROWSDOWN) == 0 && (pf & VM_ACCESS_FLAGS) != 0 && addr - vma_end(prev) < STACK_GUARD_GAP) return false;
  }
  if (vma_end(v) - addr > STACK_LIMIT) return false;
  const grow = (vma_start(v) - addr) >> 12;
  const locked = (vma_flags(v) & VM_LOCKED) != 0;
  if (locked && mm_memlock_limit(mm) != 0xffff_ffff && <u64>mm_locked_vm(mm) + grow > <u64>mm_memlock_limit(mm)) return false;
  set_vma_start(v, addr);
  set_vma_pgoff(v, vma_pgoff(v) - grow);
  set_vma_flags(v, vma_flags(v) | VM_SOFTDIRTY);
  vma_gap_changed(mm_root_at(mm), v);
  mm_add_total_vm(mm, <i64>grow);
  if (locked) mm_add_locked_vm(mm, <i64>grow);
  return true;
}
