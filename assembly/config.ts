// Geometry and tunables of one emulated machine.
//
// Constants describe x86-64 with 4 KiB pages; the `g*` globals are fixed once by
// `boot()` (phys.ts) and the tunables may be changed at run time by the host, like
// Linux's sysctl / debugfs knobs.

export const PAGE_SHIFT: u32 = 12;
export const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;
export const PAGE_MASK: u64 = ~(<u64>PAGE_SIZE - 1);
export const PTRS_PER_TABLE: u32 = 512;
export const PMD_SHIFT: u32 = 21;
export const PMD_SIZE: u64 = 1 << PMD_SHIFT;
export const PUD_SHIFT: u32 = 30;
export const PGD_SHIFT: u32 = 39;
export const HPAGE_PMD_ORDER: u32 = 9;
export const HPAGE_PMD_NR: u32 = 512;

// Buddy orders 0..MAX_ORDER inclusive; order 9 is one 2 MiB huge page.
export const MAX_ORDER: u32 = 9;

// User address space: 47 bits, like x86-64 without LA57.
export const TASK_SIZE: u64 = 0x0000_8000_0000_0000 - <u64>PAGE_SIZE;
// Top-down mmap placement starts below this (a stack gap under TASK_SIZE).
export const MMAP_BASE: u64 = 0x0000_7f00_0000_0000;
export const MMAP_MIN_ADDR: u64 = 0x10000;

// Physical address width the walker enforces (bits above are reserved, SDM 4.5).
export const MAXPHYADDR: u32 = 40;

// Largest RAM the wasm32 address space leaves room for.
export const MAX_RAM_BYTES: u64 = <u64>3 << 30;

// ---- geometry, set once by boot() ----
export let gRamBase: usize = 0; // linear address of PFN 0 (2 MiB aligned)
export let gNrFrames: u32 = 0; // RAM frames; PFNs >= this have no struct page
export let gMemmapBase: usize = 0; // struct page array, one per RAM frame
export let gZeroPfn: u32 = 0; // the shared zero page
export let gBooted: bool = false;

export function setGeometry(ramBase: usize, nrFrames: u32, memmapBase: usize): void {
  gRamBase = ramBase;
  gNrFrames = nrFrames;
  gMemmapBase = memmapBase;
}

// ---- physical memory beyond RAM (issue #5), set once by boot() ----
// PFNs [gNrFrames, gDevBasePfn): execute-in-place memory, bytes in linear memory right after
// RAM, so linear = gRamBase + pa holds there too; PFNs >= gDevBasePfn: device (MMIO) space,
// every byte a host call. Neither has a struct page (pfn_valid is false).
export let gXipFrames: u32 = 0;
export let gDevBasePfn: u32 = 0xffff_ffff;
// Largest RAM + XIP the wasm32 address space leaves room for (beside memmap, TLB, tables).
export const MAX_RAM_XIP_BYTES: u64 = <u64>3584 << 20;
// PFNs the walker accepts: below 2^(MAXPHYADDR - 12).
export const MAX_PHYS_PFN: u32 = 1 << (MAXPHYADDR - PAGE_SHIFT);
export function setSpecialGeometry(xipFrames: u32): void {
  gXipFrames = xipFrames;
  gDevBasePfn = gNrFrames + xipFrames;
}
@inline export function pfn_is_xip(pfn: u32): bool { return pfn >= gNrFrames && pfn < gDevBasePfn; }
@inline export function pfn_is_device(pfn: u32): bool { return pfn >= gDevBasePfn; }

export function setZeroPfn(pfn: u32): void {
  gZeroPfn = pfn;
  gBooted = true;
}

// ---- tunables ----
// Linux's fault_around_bytes, in pages (R2.2). 1 disables fault-around.
export let gFaultAroundPages: u32 = 16;
// arch_wants_old_prefaulted_pte() (seed 001, R2.6).
export let gPrefaultOld: bool = false;
// false = a kernel without the shared zero page: anonymous read faults allocate.
export let gUseZeroPage: bool = true;
// false = vm_normal_page uses the linear rule of architectures without pte_special (R6.2).
export let gHasPteSpecial: bool = true;

export function setFaultAroundBytes(bytes: u32): void {
  let pages = bytes >> PAGE_SHIFT;
  if (pages < 1) pages = 1;
  if (pages > PTRS_PER_TABLE) pages = PTRS_PER_TABLE;
  // R2.2: rounded down to a power of two.
  gFaultAroundPages = 1 << (31 - clz(pages));
}

// The read-around / readahead window in pages (R2.9's ra_pages; Linux's default 32).
export let gRaPages: u32 = 32;
export function setRaPages(pages: u32): void { gRaPages = pages < 1 ? 1 : pages; }

// Behaviour that differs between kernel versions or file systems (issue 15: profile keys,
// createMmu options). 6.16+: a page-cache miss in a VM_EXEC mapping reads forward from the
// faulting page to the VMA's end, no marker (R2.9); before, it reads around like any other.
export let gExecReadForward: bool = true;
// A disk file system (ext4) zeroes the tail of the new last page through the page cache when
// ftruncate ends inside it, so that page is cached afterwards (R10.2); tmpfs-like: untouched.
export let gTruncateCachesTail: bool = true;
// Readahead allocates large folios (ext4 from 6.16, xfs …): page_cache_ra_order places the
// marker in the uncut window and grows the folio order by 2 per asynchronous window; false
// (ext4 before 6.16): order-0 pages, the window cut at EOF before the marker is placed.
export let gLargeFolioRa: bool = true;
export function setLargeFolioRa(on: bool): void { gLargeFolioRa = on; }
// 7.x (recorded on 7.3, absent on 6.18): a readahead window that reaches end of file gets no
// PG_readahead marker, as there is nothing left to read ahead; false (6.18 and before): the
// marker is placed as usual (cut window for order-0 pages, uncut for large folios).
export let gRaEofNoMark: bool = true;
export function setRaEofNoMark(on: bool): void { gRaEofNoMark = on; }
// exec_folio_order(): the folio order a VM_EXEC miss reads in (6.16+ with execReadForward).
// 0 on x86-64; arm64 asks for 64 KiB (order 4), so the read starts at the 16-page block.
export let gExecFolioOrder: u32 = 0;
export function setExecFolioOrder(order: u32): void { gExecFolioOrder = order > HPAGE_PMD_ORDER ? HPAGE_PMD_ORDER : order; }
// MADV_GUARD_INSTALL / MADV_GUARD_REMOVE exist from 6.13 (before: EINVAL, an unknown advice).
export let gGuardRegions: bool = true;
export function setGuardRegions(on: bool): void { gGuardRegions = on; }
// 6.12+: MADV_POPULATE_* retries a fault that dropped the lock for I/O with FAULT_FLAG_TRIED
// (counted major); 6.1 starts the page afresh (minor), like mlock's populate.
export let gPopulateRetryTried: bool = true;
export function setPopulateRetryTried(on: bool): void { gPopulateRetryTried = on; }
// Before 6.7 a user fault on a file VMA ran under the mmap lock only: any VM_FAULT_RETRY (the
// lock dropped for a readahead marker or a read_folio) was retried with FAULT_FLAG_TRIED, which
// mm_account_fault counts major (R11.5, R11.6). 6.7+ (per-VMA locks, 6.8's accounting fix)
// sets TRIED only after a MAJOR result, so such a retry counts minor.
export let gUserRetryTried: bool = false;
export function setUserRetryTried(on: bool): void { gUserRetryTried = on; }
// Linux 6.18 (and 6.12.y stable): filemap_map_pages installs a PTE table only where a PMD could
// map, and a disk file's PMD may not cross i_size, so a first ready folio that reaches EOF gets
// no table (finish_fault installs it). false = 6.1: the table is installed and the folio mapped.
export let gFaultAroundIsize: bool = true;
export function setFaultAroundIsize(on: bool): void { gFaultAroundIsize = on; }
// ext4 growing a file whose old size ends inside a block zeroes the rest of that block through
// the page cache, caching an uncached page ("partial zero eof block on unaligned inode size
// extension": 6.13, stable 6.6.y / 6.12.y). false = 6.1: growing zeroes and caches nothing.
export let gTruncExtendZeroesTail: bool = true;
export function setTruncExtendZeroesTail(on: bool): void { gTruncExtendZeroesTail = on; }
// 6.15+: the pages of a DAX file system (ext4 / xfs -o dax) are refcounted folios, mapped like
// page-cache pages: pagemap reports them as file pages (exclusive when mapped once), smaps
// counts them. Before: raw DAX pfns with no page vm_normal_page would return (R6.1, R7.2).
export let gDaxFolios: bool = true;
export function setDaxFolios(on: bool): void { gDaxFolios = on; }
// Linux 6.16+ (is_mergeable_anon_vma rewritten, "fix incorrectly disallowed anonymous VMA
// merges"): a VMA with an anon_vma merges into a neighbour that has none (dup_anon_vma),
// unless it is a fork child. false = 6.1, 6.12: refused (the neighbour's empty
// anon_vma_chain is not singular). Issue 14, scenario mlock-merge-faulted-into-unfaulted.
export let gMergeFaultedIntoUnfaulted: bool = true;
export function setMergeFaultedIntoUnfaulted(on: bool): void { gMergeFaultedIntoUnfaulted = on; }
export function setExecReadForward(on: bool): void { gExecReadForward = on; }
export function setTruncateCachesTail(on: bool): void { gTruncateCachesTail = on; }

export function setPrefaultOld(on: bool): void { gPrefaultOld = on; }
export function setUseZeroPage(on: bool): void { gUseZeroPage = on; }
export function setHasPteSpecial(on: bool): void { gHasPteSpecial = on; }

// Linux errno values, returned negated by every system call.
export const EPERM: i32 = 1;
export const ENOENT: i32 = 2;
export const EINTR: i32 = 4;
export const EIO: i32 = 5;
export const EBADF: i32 = 9;
export const EAGAIN: i32 = 11;
export const ENOMEM: i32 = 12;
export const EACCES: i32 = 13;
export const EFAULT: i32 = 14;
export const EBUSY: i32 = 16;
export const EEXIST: i32 = 17;
export const ENODEV: i32 = 19;
export const EINVAL: i32 = 22;
export const ENFILE: i32 = 23;
export const EFBIG: i32 = 27;
export const ENOSPC: i32 = 28;
export const EOVERFLOW: i32 = 75;
export const EOPNOTSUPP: i32 = 95;
export const EHWPOISON: i32 = 133;
