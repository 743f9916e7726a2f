// The x86-64 page-table entry, bit for bit, plus Linux's software bits.
//
// Present entry (P = 1), as the SDM defines it:
//   0 P   1 RW   2 US   3 PWT   4 PCD   5 A   6 D   7 PS (PAT in a 4 KiB leaf)   8 G
//   12..51 PFN (a 2 MiB leaf: 21..51, bit 12 = PAT; a 1 GiB leaf: 30..51)   63 NX
// Linux's software bits (ignored by the hardware):
//   9 SPECIAL (no refcounted struct page behind it, R6.1)
//   10 UFFD_WP   11 SOFT_DIRTY   57 DEVMAP
//
// Non-present entry (P = 0) that is not zero:
//   protnone (mprotect PROT_NONE): bit 8 set, otherwise laid out like a present entry
//     (PFN kept) so the hardware faults on it and Linux still knows the page.
//   swap entry: bit 8 clear; bits 1..5 swap type (0..31); bit 6 SWP_EXCLUSIVE (the page
//     was exclusive when it was swapped out); bit 10 UFFD_WP; bit 11 SOFT_DIRTY;
//     bits 12..50 swap offset (a slot number, 39 bits). Type 31 is reserved for
//     markers (R1.5): offset 1 = uffd-wp marker, 2 = guard, 3 = poison.

export const _PAGE_PRESENT: u64 = 1 << 0;
export const _PAGE_RW: u64 = 1 << 1;
export const _PAGE_USER: u64 = 1 << 2;
export const _PAGE_PWT: u64 = 1 << 3;
export const _PAGE_PCD: u64 = 1 << 4;
export const _PAGE_ACCESSED: u64 = 1 << 5;
export const _PAGE_DIRTY: u64 = 1 << 6;
export const _PAGE_PSE: u64 = 1 << 7;
export const _PAGE_GLOBAL: u64 = 1 << 8;
export const _PAGE_SPECIAL: u64 = 1 << 9;
export const _PAGE_UFFD_WP: u64 = 1 << 10;
export const _PAGE_SOFT_DIRTY: u64 = 1 << 11;
export const _PAGE_DEVMAP: u64 = <u64>1 << 57;
export const _PAGE_NX: u64 = <u64>1 << 63;
export const _PAGE_PROTNONE: u64 = _PAGE_GLOBAL; // only meaningful with P clear

export const PTE_PFN_MASK: u64 = 0x000f_ffff_ffff_f000;
// Upper-level entries pointing at a table: present, writable, user (A set by walks).
export const _PAGE_TABLE: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER;

// ---- present entries ----
@inline export function pte_none(pte: u64): bool { return pte == 0; }
@inline export function pte_present(pte: u64): bool {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0;
}
@inline export function pte_hw_present(pte: u64): bool { return (pte & _PAGE_PRESENT) != 0; }
@inline export function pte_protnone(pte: u64): bool {
  return (pte & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE;
}
@inline export function pte_pfn(pte: u64): u32 { return <u32>((pte & PTE_PFN_MASK) >> 12); }
@inline export function pfn_pte(pfn: u32, prot: u64): u64 {
  return ((<u64>pfn << 12) & PTE_PFN_MASK) | prot;
}
@inline export function pte_write(pte: u64): bool { return (pte & _PAGE_RW) != 0; }
@inline export function pte_dirty(pte: u64): bool { return (pte & _PAGE_DIRTY) != 0; }
@inline export function pte_young(pte: u64): bool { return (pte & _PAGE_ACCESSED) != 0; }
@inline export function pte_special(pte: u64): bool { return (pte & _PAGE_SPECIAL) != 0; }
@inline export function pte_soft_dirty(pte: u64): bool { return (pte & _PAGE_SOFT_DIRTY) != 0; }
@inline export function pte_uffd_wp(pte: u64): bool { return (pte & _PAGE_UFFD_WP) != 0; }
@inline export function pte_mkwrite(pte: u64): u64 { return pte | _PAGE_RW; }
@inline export function pte_wrprotect(pte: u64): u64 { return pte & ~_PAGE_RW; }
// x86: making a PTE dirty also makes it soft-dirty (R9.9).
@inline export function pte_mkdirty(pte: u64): u64 { return pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY; }
@inline export function pte_mkclean(pte: u64): u64 { return pte & ~_PAGE_DIRTY; }
@inline export function pte_mkyoung(pte: u64): u64 { return pte | _PAGE_ACCESSED; }
@inline export function pte_mkold(pte: u64): u64 { return pte & ~_PAGE_ACCESSED; }
@inline export function pte_mkspecial(pte: u64): u64 { return pte | _PAGE_SPECIAL; }
@inline export function pte_clear_soft_dirty(pte: u64): u64 { return pte & ~_PAGE_SOFT_DIRTY; }

// The protection bits of an entry (everything but the PFN).
@inline export function pte_prot(pte: u64): u64 { return pte & ~PTE_PFN_MASK; }
// Replace the protection, keep pfn, young, dirty and soft-dirty (R9.6).
export function pte_modify(pte: u64, newprot: u64): u64 {
  const keep = PTE_PFN_MASK | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFT_DIRTY |
    _PAGE_SPECIAL | _PAGE_UFFD_WP | _PAGE_DEVMAP;
  return (pte & keep) | (newprot & ~keep);
}

// ---- swap entries ----
export const SWP_TYPE_SHIFT: u32 = 1;
export const SWP_TYPE_MASK: u64 = 0x1f;
export const _PAGE_SWP_EXCLUSIVE: u64 = 1 << 6;
export const SWP_OFFSET_SHIFT: u32 = 12;
export const SWP_OFFSET_MASK: u64 = (<u64>1 << 39) - 1;
export const SWP_MARKER_TYPE: u32 = 31;
export const PTE_MARKER_UFFD_WP: u32 = 1;
export const PTE_MARKER_GUARD: u32 = 2;
export const PTE_MARKER_POISON: u32 = 3;

@inline export function is_swap_pte(pte: u64): bool { return pte != 0 && !pte_present(pte); }
@inline export function swp_entry(type: u32, offset: u64): u64 {
  return ((<u64>type & SWP_TYPE_MASK) << SWP_TYPE_SHIFT) |
    ((offset & SWP_OFFSET_MASK) << SWP_OFFSET_SHIFT);
}
@inline export function swp_type(pte: u64): u32 {
  return <u32>((pte >> SWP_TYPE_SHIFT) & SWP_TYPE_MASK);
}
@inline export function swp_offset(pte: u64): u64 {
  return (pte >> SWP_OFFSET_SHIFT) & SWP_OFFSET_MASK;
}
@inline export function is_pte_marker(pte: u64): bool {
  return is_swap_pte(pte) && swp_type(pte) == SWP_MARKER_TYPE;
}
@inline export function pte_swp_exclusive(pte: u64): bool { return (pte & _PAGE_SWP_EXCLUSIVE) != 0; }
