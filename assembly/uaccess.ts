// User accesses, as the CPU makes them: the TLB, then the hardware walk, then the page
// fault and a retry (x86 semantics: accessed/dirty bits are set by the walker, so an old
// or clean PTE costs no fault). Bulk forms keep the loop inside Wasm: touch N pages,
// copy a buffer in or out, one call each.

import { PAGE_SHIFT, PAGE_SIZE } from "./config";
import { gRamBase } from "./config";
import { tlb_lookup } from "./tlb";
import { walk, walk_user_psc, fill_from_walk, walkPa, MODE_LINUX_USER, MODE_PSC, WALK_OK, WALK_FULL } from "./mmu";
import { mm_pgd } from "./mm";
import { count, ST_TLB_HIT, ST_TLB_MISS } from "./stats";
import { do_user_addr_fault, fault_no_progress } from "./fault";
import { pa_is_device, mmio_access, mmio_touch } from "./mmio";

// Physical address for a user access at `va`, faulting it in if needed. Negative on
// failure: -(signal number) or FAULT_OOM / FAULT_RETRY (-1 / -2 from fault.ts) - 100.
export function user_access(mm: u32, va: u64, access: u32): i64 {
  const hit = tlb_lookup(mm, va, access, true);
  if (hit >= 0) {
    count(ST_TLB_HIT);
    return (hit << PAGE_SHIFT) | <i64>(va & 0xfff);
  }
  count(ST_TLB_MISS);
  const pgd = mm_pgd(mm);
  for (let tries = 0; tries < 4; tries++) {
    let r = walk_user_psc(pgd, va, access); // the leaf table the last walk used (mmu.ts)
    if (r == WALK_FULL) r = walk(pgd, va, access, MODE_LINUX_USER | MODE_PSC);
    if (r == WALK_OK) {
      fill_from_walk(mm, pgd, va);
      return <i64>walkPa;
    }
    const s = do_user_addr_fault(mm, va, access, <u32>r);
    if (s > 0) return -<i64>s;
    if (s < 0) return <i64>s - 100;
  }
  return -<i64>fault_no_progress(va); // no progress: SIGBUS BUS_OBJERR (fault.ts)
}

// Touch one byte of every page in [va, va + len): `access` 0 read, 1 write, 2 exec.
// Returns 0 or the failure code of user_access (fault.ts's sigAddr says where).
export function touch(mm: u32, va: u64, len: u64, access: u32): i64 {
  if (len == 0) return 0;
  let p = va & ~(<u64>PAGE_SIZE - 1);
  const end = va + len;
  while (p < end) {
    const a = p < va ? va : p;
    const r = user_access(mm, a, access);
    if (r < 0) return r;
    if (pa_is_device(<u64>r)) mmio_touch(<u64>r, access == 1); // MMIO: the device sees it
    else if (access == 1) store<u8>(gRamBase + <usize>r, load<u8>(gRamBase + <usize>r)); // the store itself
    p += PAGE_SIZE;
  }
  return 0;
}

// Copy `n` bytes between linear memory at `buf` and user memory at `va`.
// toUser: write into the address space; else read from it. Returns bytes done or failure.
export function copy_user(mm: u32, va: u64, buf: usize, n: u32, toUser: bool): i64 {
  let done: u32 = 0;
  while (done < n) {
    const a = va + done;
    const r = user_access(mm, a, toUser ? 1 : 0);
    if (r < 0) return r;
    const inPage = PAGE_SIZE - <u32>(a & (PAGE_SIZE - 1));
    const chunk = n - done < inPage ? n - done : inPage;
    if (pa_is_device(<u64>r)) { mmio_access(<u64>r, buf + done, chunk, toUser); done += chunk; continue; }
    const phys = gRamBase + <usize>r;
    if (toUser) memory.copy(phys, buf + done, chunk);
    else memory.copy(buf + done, phys, chunk);
    done += chunk;
  }
  return <i64>done;
}

