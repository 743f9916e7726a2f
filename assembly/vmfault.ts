// struct vm_fault: the one record a fault fills and hands down the dispatch (mm/memory.c's
// shape), and the VM_FAULT_* results and FAULT_FLAG_* flags with Linux's values.
//
// The record is 64 bytes, one cache line (seed 004), at a fixed address the host can read
// while a backend's fault / map_pages / page_mkwrite runs (src/vm-fault.ts):
//   +0  u32 flags        FAULT_FLAG_*
//   +4  u32 vma          the VMA id
//   +8  u64 address      page-aligned faulting address
//   +16 u64 pgoff        file page of the address
//   +24 u32 cow_page     pfn + 1 of the preallocated COW target (0 = none) (R7.1)
//   +28 u32 page         pfn + 1 of the page the handler returns (0 = none; none with
//                        VM_FAULT_LOCKED: the handler holds the i_mmap lock instead, seed 004)
//   +32 u32 pte          linear address of the PTE slot (0 = no PTE table yet)
//   +36 u32 pmd          linear address of the PMD slot
//   +40 u64 orig_pte     the PTE as seen at fault start
//   +48 u32 prealloc_pte pfn + 1 of a table preallocated for this fault (R3.1, R3.5)
//   +52 u32 mm           the address space
//   +56 u32 max_pgoff    last file page map_pages may map (seed 000), as pages after
//                        pgoff (a window of at most 512: fits although pgoff is 51-bit)
//   +60 u32 result       VM_FAULT_* accumulated by the handlers

export const VM_FAULT_OOM: u32 = 0x000001;
export const VM_FAULT_SIGBUS: u32 = 0x000002;
export const VM_FAULT_MAJOR: u32 = 0x000004;
export const VM_FAULT_HWPOISON: u32 = 0x000010;
export const VM_FAULT_HWPOISON_LARGE: u32 = 0x000020;
export const VM_FAULT_SIGSEGV: u32 = 0x000040;
export const VM_FAULT_NOPAGE: u32 = 0x000100;
export const VM_FAULT_LOCKED: u32 = 0x000200;
export const VM_FAULT_RETRY: u32 = 0x000400;
export const VM_FAULT_FALLBACK: u32 = 0x000800;
export const VM_FAULT_DONE_COW: u32 = 0x001000;
export const VM_FAULT_NEEDDSYNC: u32 = 0x002000;
export const VM_FAULT_COMPLETED: u32 = 0x004000;
export const VM_FAULT_ERROR: u32 = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV |
  VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK;

export const FAULT_FLAG_WRITE: u32 = 1 << 0;
export const FAULT_FLAG_MKWRITE: u32 = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY: u32 = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT: u32 = 1 << 3;
export const FAULT_FLAG_KILLABLE: u32 = 1 << 4;
export const FAULT_FLAG_TRIED: u32 = 1 << 5;
export const FAULT_FLAG_USER: u32 = 1 << 6;
export const FAULT_FLAG_REMOTE: u32 = 1 << 7;
export const FAULT_FLAG_INSTRUCTION: u32 = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE: u32 = 1 << 9;
export const FAULT_FLAG_UNSHARE: u32 = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID: u32 = 1 << 11;
export const FAULT_FLAG_VMA_LOCK: u32 = 1 << 12;

export const VMF_SIZE: u32 = 64;
export const vmf: usize = memory.data(VMF_SIZE, 64);

@inline export function vmf_flags(): u32 { return load<u32>(vmf); }
@inline export function vmf_vma(): u32 { return load<u32>(vmf, 4); }
@inline export function vmf_address(): u64 { return load<u64>(vmf, 8); }
@inline export function vmf_pgoff(): u64 { return load<u64>(vmf, 16); }
@inline export function vmf_cow_page(): u32 { return load<u32>(vmf, 24); }
@inline export function vmf_page(): u32 { return load<u32>(vmf, 28); }
@inline export function vmf_pte(): usize { return load<usize>(vmf, 32); }
@inline export function vmf_pmd(): usize { return load<usize>(vmf, 36); }
@inline export function vmf_orig_pte(): u64 { return load<u64>(vmf, 40); }
@inline export function vmf_prealloc(): u32 { return load<u32>(vmf, 48); }
@inline export function vmf_mm(): u32 { return load<u32>(vmf, 52); }
@inline export function vmf_max_pgoff(): u64 { return load<u64>(vmf, 16) + load<u32>(vmf, 56); }
@inline export function set_vmf_flags(x: u32): void { store<u32>(vmf, x); }
@inline export function set_vmf_cow_page(x: u32): void { store<u32>(vmf, x, 24); }
@inline export function set_vmf_page(x: u32): void { store<u32>(vmf, x, 28); }
@inline export function set_vmf_pte(x: usize): void { store<usize>(vmf, x, 32); }
@inline export function set_vmf_pmd(x: usize): void { store<usize>(vmf, x, 36); }
@inline export function set_vmf_orig_pte(x: u64): void { store<u64>(vmf, x, 40); }
@inline export function set_vmf_prealloc(x: u32): void { store<u32>(vmf, x, 48); }
@inline export function set_vmf_max_pgoff(x: u64): void { store<u32>(vmf, <u32>(x - load<u64>(vmf, 16)), 56); }

export function vmf_fill(mm: u32, vma: u32, address: u64, pgoff: u64, flags: u32): void {
  store<u32>(vmf, flags);
  store<u32>(vmf, vma, 4);
  store<u64>(vmf, address, 8);
  store<u64>(vmf, pgoff, 16);
  store<u64>(vmf, 0, 24); // cow_page, page
  store<u64>(vmf, 0, 32); // pte, pmd
  store<u64>(vmf, 0, 40);
  store<u32>(vmf, 0, 48);
  store<u32>(vmf, mm, 52);
  store<u64>(vmf, 0, 56); // max_pgoff, result
}
