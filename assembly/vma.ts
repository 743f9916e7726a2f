// VMAs: the records of an address space's mappings, an AVL tree per address space keyed
// by vm_start (O(log n) lookup, insert, remove) threaded by a sorted prev/next list
// (neighbours for split and merge, iteration), and Linux's vm_flags. Like Linux's maple
// tree, the tree also knows the largest free gap under each node, so that finding the
// highest free range of a given size (top-down mmap placement) is O(log n) too.
//
// A VMA is an id (1 .. gVmaCapacity) into a pool of 96-byte records, allocated in
// chunks of 4096 as address spaces need them (never freed back to the runtime: ids
// are recycled through a free list).
//   +0  u64 vm_start   +8 u64 vm_end   +16 u64 vm_pgoff (file page of vm_start)
//   +24 u32 vm_flags   +28 u32 mm      +32 u32 file (0 = anonymous)
//   +36 u32 anon_vma   (0 = none was ever prepared here; else the anon_vma's id, anon_vma_prepare)
//   +40 u32 left  +44 u32 right  +48 i32 height      (tree)
//   +52 u32 prev  +56 u32 next                       (sorted list of the mm)
//   +60 u32 file_prev  +64 u32 file_next             (the file's i_mmap list)
//   +68 u32 internal flags (VMA_* below)
//   +72 u64 the largest gap in this node's subtree (tree); a node's own gap is the free
//       range below it: [vm_end of its list predecessor (0 if none), vm_start_gap)

export const VM_NONE: u32 = 0x00000000;
export const VM_READ: u32 = 0x00000001;
export const VM_WRITE: u32 = 0x00000002;
export const VM_EXEC: u32 = 0x00000004;
export const VM_SHARED: u32 = 0x00000008;
export const VM_MAYREAD: u32 = 0x00000010;
export const VM_MAYWRITE: u32 = 0x00000020;
export const VM_MAYEXEC: u32 = 0x00000040;
export const VM_MAYSHARE: u32 = 0x00000080;
export const VM_GROWSDOWN: u32 = 0x00000100;
export const VM_UFFD_MISSING: u32 = 0x00000200;
export const VM_PFNMAP: u32 = 0x00000400;
export const VM_UFFD_WP: u32 = 0x00001000;
export const VM_LOCKED: u32 = 0x00002000;
export const VM_IO: u32 = 0x00004000;
export const VM_SEQ_READ: u32 = 0x00008000;
export const VM_RAND_READ: u32 = 0x00010000;
export const VM_DONTCOPY: u32 = 0x00020000;
export const VM_DONTEXPAND: u32 = 0x00040000;
export const VM_LOCKONFAULT: u32 = 0x00080000;
export const VM_ACCOUNT: u32 = 0x00100000;
export const VM_NORESERVE: u32 = 0x00200000;
export const VM_HUGETLB: u32 = 0x00400000;
export const VM_SYNC: u32 = 0x00800000;
export const VM_WIPEONFORK: u32 = 0x02000000;
export const VM_DONTDUMP: u32 = 0x04000000;
export const VM_SOFTDIRTY: u32 = 0x08000000;
export const VM_MIXEDMAP: u32 = 0x10000000;
export const VM_HUGEPAGE: u32 = 0x20000000;
export const VM_NOHUGEPAGE: u32 = 0x40000000;
export const VM_MERGEABLE: u32 = 0x80000000;

export const VM_ACCESS_FLAGS: u32 = VM_READ | VM_WRITE | VM_EXEC;
export const VM_SPECIAL: u32 = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_LOCKED_MASK: u32 = VM_LOCKED | VM_LOCKONFAULT;

// Internal flags (+68).
export const VMA_WRITENOTIFY: u32 = 1; // shared writable, but PTEs start read-only (R9.10)
export const VMA_SHMEM: u32 = 2; // MAP_SHARED|MAP_ANONYMOUS: an internal shmem file
export const VMA_DAX: u32 = 4; // an XIP/DAX file: no page cache, no fault-around
// The VMA's anon_vma_chain is not singular: fork gave it its own anon_vma linked to its
// parent's (Linux's vma_is_fork_child). Merge and anon_vma reuse refuse such a VMA where
// the other side has no anon_vma (issue 14). Not compared by the merge flag test.
export const VMA_FORK_CHILD: u32 = 8;
// Linux's VM_MAYBE_GUARD: MADV_GUARD_INSTALL ran on the VMA. Its page tables hold markers a
// fault would not rebuild, so fork copies them (vma_needs_copy) although the VMA need have
// no anon_vma; sticky: not compared by the merge flag test, kept by the merged VMA (R11.x,
// fuzz seed 1528920987 case 1568: a guarded file VMA merges with its unguarded neighbour).
export const VMA_MAYBE_GUARD: u32 = 16;

// Linux's default vm.max_map_count.
export const MAX_MAP_COUNT: u32 = 65530;

const VMA_SIZE: u32 = 96;
const CHUNK_SHIFT: u32 = 12;
const CHUNK: u32 = 1 << CHUNK_SHIFT;
const MAX_CHUNKS: u32 = 128; // 524288 VMAs in all
const chunks: usize = memory.data(MAX_CHUNKS * 4);
let nrChunks: u32 = 0;
let freeList: u32 = 0;
let nextFresh: u32 = 1; // id 0 is "none"
let nrLive: u32 = 0;

@inline export function vma_addr(v: u32): usize {
  return load<usize>(chunks + (<usize>(v >> CHUNK_SHIFT) << 2)) + <usize>(v & (CHUNK - 1)) * VMA_SIZE;
}

@inline export function vma_start(v: u32): u64 { return load<u64>(vma_addr(v)); }
@inline export function vma_end(v: u32): u64 { return load<u64>(vma_addr(v), 8); }
@inline export function vma_pgoff(v: u32): u64 { return load<u64>(vma_addr(v), 16); }
@inline export function vma_flags(v: u32): u32 { return load<u32>(vma_addr(v), 24); }
@inline export function vma_mm(v: u32): u32 { return load<u32>(vma_addr(v), 28); }
@inline export function vma_file(v: u32): u32 { return load<u32>(vma_addr(v), 32); }
@inline export function vma_anon_vma(v: u32): u32 { return load<u32>(vma_addr(v), 36); }
@inline export function vma_prev(v: u32): u32 { return load<u32>(vma_addr(v), 52); }
@inline export function vma_next(v: u32): u32 { return load<u32>(vma_addr(v), 56); }
@inline export function vma_file_next(v: u32): u32 { return load<u32>(vma_addr(v), 64); }
@inline export function vma_iflags(v: u32): u32 { return load<u32>(vma_addr(v), 68); }
@inline export function set_vma_start(v: u32, x: u64): void { store<u64>(vma_addr(v), x); }
@inline export function set_vma_end(v: u32, x: u64): void { store<u64>(vma_addr(v), x, 8); }
@inline export function set_vma_pgoff(v: u32, x: u64): void { store<u64>(vma_addr(v), x, 16); }
@inline export function set_vma_flags(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 24); }
@inline export function set_vma_anon_vma(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 36); }
@inline export function set_vma_iflags(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 68); }
@inline function left(v: u32): u32 { return load<u32>(vma_addr(v), 40); }
@inline function right(v: u32): u32 { return load<u32>(vma_addr(v), 44); }
@inline function height(v: u32): i32 { return v == 0 ? 0 : load<i32>(vma_addr(v), 48); }
@inline function setLeft(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 40); }
@inline function setRight(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 44); }
@inline function setPrev(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 52); }
@inline function maxGap(v: u32): u64 { return v == 0 ? 0 : load<u64>(vma_addr(v), 72); }
// The free range below v: from its predecessor's end (or 0) to its start, less the guard
// gap below a stack (vm_start_gap); 0 if they overlap.
@inline function ownGap(v: u32): u64 {
  const p = vma_prev(v);
  const lo: u64 = p != 0 ? vma_end(p) : 0;
  const hi = vm_start_gap(v);
  return hi > lo ? hi - lo : 0;
}
@inline function setNext(v: u32, x: u32): void { store<u32>(vma_addr(v), x, 56); }

@inline export function vma_pages(v: u32): u64 { return (vma_end(v) - vma_start(v)) >> 12; }

// Linux's stack_guard_gap (256 pages): placement keeps this much free below a grows-down
// VMA, and a stack does not grow to within it of an accessible VMA below.
export const STACK_GUARD_GAP: u64 = 256 << 12;
// Where the free space below v must end (vm_start_gap): a stack's guard gap below it.
@inline export function vm_start_gap(v: u32): u64 {
  const s = vma_start(v);
  if ((vma_flags(v) & VM_GROWSDOWN) == 0) return s;
  return s > STACK_GUARD_GAP ? s - STACK_GUARD_GAP : 0;
}
@inline export function vma_is_anonymous(v: u32): bool { return vma_file(v) == 0; }
// A COW mapping: private but may become writable.
@inline export function is_cow_mapping(flags: u32): bool {
  return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}
// File page offset of `va` inside the VMA.
@inline export function linear_page_index(v: u32, va: u64): u64 {
  return vma_pgoff(v) + ((va - vma_start(v)) >> 12);
}

export function nr_vmas(): u32 { return nrLive; }

// A fresh record with every field zero, or 0 when the pool is exhausted.
export function vma_alloc(): u32 {
  let v = freeList;
  if (v != 0) {
    freeList = load<u32>(vma_addr(v), 56);
  } else {
    if ((nextFresh >> CHUNK_SHIFT) >= nrChunks) {
      if (nrChunks == MAX_CHUNKS) return 0;
      store<usize>(chunks + (<usize>nrChunks << 2), heap.alloc(<usize>CHUNK * VMA_SIZE));
      nrChunks++;
    }
    v = nextFresh++;
  }
  memory.fill(vma_addr(v), 0, VMA_SIZE);
  nrLive++;
  return v;
}

export function vma_free(v: u32): void {
  memory.fill(vma_addr(v), 0, VMA_SIZE);
  store<u32>(vma_addr(v), freeList, 56);
  freeList = v;
  nrLive--;
}

// A copy of `src`'s fields (not its links) in a new record.
export function vma_dup(src: u32): u32 {
  const v = vma_alloc();
  if (v == 0) return 0;
  memory.copy(vma_addr(v), vma_addr(src), 40);
  set_vma_iflags(v, vma_iflags(src));
  return v;
}

export function vma_init(v: u32, mm: u32, start: u64, end: u64, pgoff: u64, flags: u32, file: u32): void {
  set_vma_start(v, start);
  set_vma_end(v, end);
  set_vma_pgoff(v, pgoff);
  set_vma_flags(v, flags);
  store<u32>(vma_addr(v), mm, 28);
  store<u32>(vma_addr(v), file, 32);
}

// ---- the AVL tree; `root` lives in the mm (a u32 at address `rootAt`) ----

// Recompute v's height and subtree gap from its children (and its own gap).
@inline function fix(v: u32): void {
  const l = left(v), r = right(v);
  const hl = height(l), hr = height(r);
  store<i32>(vma_addr(v), (hl > hr ? hl : hr) + 1, 48);
  let g = ownGap(v);
  const gl = maxGap(l), gr = maxGap(r);
  if (gl > g) g = gl;
  if (gr > g) g = gr;
  store<u64>(vma_addr(v), g, 72);
}
function rotRight(v: u32): u32 {
  const l = left(v);
  setLeft(v, right(l));
  setRight(l, v);
  fix(v);
  fix(l);
  return l;
}
function rotLeft(v: u32): u32 {
  const r = right(v);
  setRight(v, left(r));
  setLeft(r, v);
  fix(v);
  fix(r);
  return r;
}
function balance(v: u32): u32 {
  fix(v);
  const bf = height(left(v)) - height(right(v));
  if (bf > 1) {
    if (height(left(left(v))) < height(right(left(v)))) setLeft(v, rotLeft(left(v)));
    return rotRight(v);
  }
  if (bf < -1) {
    if (height(right(right(v))) < height(left(right(v)))) setRight(v, rotRight(right(v)));
    return rotLeft(v);
  }
  return v;
}
function insertAt(n: u32, v: u32): u32 {
  if (n == 0) {
    setLeft(v, 0);
    setRight(v, 0);
    fix(v);
    return v;
  }
  if (vma_start(v) < vma_start(n)) setLeft(n, insertAt(left(n), v));
  else setRight(n, insertAt(right(n), v));
  return balance(n);
}
function removeMin(n: u32): u32 {
  if (left(n) == 0) return right(n);
  setLeft(n, removeMin(left(n)));
  return balance(n);
}
function minOf(n: u32): u32 {
  while (left(n) != 0) n = left(n);
  return n;
}
function removeAt(n: u32, v: u32): u32 {
  if (n == 0) return 0;
  if (n == v) {
    const l = left(n), r = right(n);
    if (r == 0) return l;
    const m = minOf(r);
    setRight(m, removeMin(r));
    setLeft(m, l);
    return balance(m);
  }
  if (vma_start(v) < vma_start(n)) setLeft(n, removeAt(left(n), v));
  else setRight(n, removeAt(right(n), v));
  return balance(n);
}

// Recompute the subtree gaps on the path from the root down to `t` (whose own gap
// changed: its predecessor came or went, or its start moved).
function refresh(n: u32, t: u32): void {
  if (n == 0) return;
  if (n != t) refresh(vma_start(t) < vma_start(n) ? left(n) : right(n), t);
  fix(n);
}
export function vma_gap_changed(rootAt: usize, v: u32): void {
  if (v != 0) refresh(load<u32>(rootAt), v);
}

// Top-down search for free space: the highest `a` with lo <= a, a + len <= hi and
// [a, a + len) inside the gap below some VMA of the subtree `n`; 0 if there is none.
// Subtrees whose largest gap is too small are skipped, so this is O(log n) in practice.
function gapSearch(n: u32, len: u64, lo: u64, hi: u64): u64 {
  if (n == 0 || maxGap(n) < len) return 0;
  // Higher addresses first: every gap in the right subtree lies above vm_end(n).
  const e = vma_end(n);
  if (e < hi && hi - e >= len) {
    const r = gapSearch(right(n), len, lo, hi);
    if (r != 0) return r;
  }
  const p = vma_prev(n);
  let bottom = p != 0 ? vma_end(p) : 0;
  if (bottom < lo) bottom = lo;
  let top = vm_start_gap(n);
  if (top > hi) top = hi;
  if (top > bottom && top - bottom >= len) return top - len;
  // Every gap in the left subtree lies below vm_start(n).
  if (vma_start(n) <= lo || vma_start(n) - lo < len) return 0;
  return gapSearch(left(n), len, lo, hi);
}
export function vma_gap_topdown(root: u32, len: u64, lo: u64, hi: u64): u64 {
  return len == 0 || hi <= lo ? 0 : gapSearch(root, len, lo, hi);
}

// The first VMA with vm_end > addr (Linux's find_vma), or 0.
export function vma_find(root: u32, addr: u64): u32 {
  let n = root;
  let best: u32 = 0;
  while (n != 0) {
    if (addr < vma_end(n)) {
      best = n;
      if (addr >= vma_start(n)) return n;
      n = left(n);
    } else {
      n = right(n);
    }
  }
  return best;
}

// Link `v` into the tree at `rootAt` and the list whose head/tail are at `firstAt`/`lastAt`.
export function vma_link(rootAt: usize, firstAt: usize, lastAt: usize, v: u32): void {
  const next = vma_find(load<u32>(rootAt), vma_start(v));
  const prev = next != 0 ? vma_prev(next) : load<u32>(lastAt);
  setPrev(v, prev);
  setNext(v, next);
  if (prev != 0) setNext(prev, v); else store<u32>(firstAt, v);
  if (next != 0) setPrev(next, v); else store<u32>(lastAt, v);
  store<u32>(rootAt, insertAt(load<u32>(rootAt), v));
  vma_gap_changed(rootAt, next); // its gap now ends at v
}

export function vma_unlink(rootAt: usize, firstAt: usize, lastAt: usize, v: u32): void {
  store<u32>(rootAt, removeAt(load<u32>(rootAt), v));
  const prev = vma_prev(v), next = vma_next(v);
  if (prev != 0) setNext(prev, next); else store<u32>(firstAt, next);
  if (next != 0) setPrev(next, prev); else store<u32>(lastAt, prev);
  setPrev(v, 0);
  setNext(v, 0);
  vma_gap_changed(rootAt, next); // its gap now reaches down to prev
}

// The largest gap recorded at the root (for the invariant check).
export function vma_tree_max_gap(root: u32): u64 { return maxGap(root); }

// Tree height (for the invariant check: an AVL of n nodes is at most ~1.44 log2 n high).
export function vma_tree_height(root: u32): i32 { return height(root); }

// ---- a file's i_mmap list (the VMAs that map it), head stored by the file ----
export function vma_file_link(headAt: usize, v: u32): void {
  const first = load<u32>(headAt);
  store<u32>(vma_addr(v), 0, 60);
  store<u32>(vma_addr(v), first, 64);
  if (first != 0) store<u32>(vma_addr(first), v, 60);
  store<u32>(headAt, v);
}
export function vma_file_unlink(headAt: usize, v: u32): void {
  const p = load<u32>(vma_addr(v), 60), n = load<u32>(vma_addr(v), 64);
  if (p != 0) store<u32>(vma_addr(p), n, 64); else store<u32>(headAt, n);
  if (n != 0) store<u32>(vma_addr(n), p, 60);
  store<u32>(vma_addr(v), 0, 60);
  store<u32>(vma_addr(v), 0, 64);
}

// ---- vm_get_page_prot: the base protection new PTEs of a VMA get ----
import { _PAGE_PRESENT, _PAGE_USER, _PAGE_ACCESSED, _PAGE_RW, _PAGE_NX, _PAGE_PROTNONE } from "./pte";

// Present, user, young; writable only for a shared writable VMA without write-notify
// (private VMAs take a write fault to COW, R9.7); NX unless VM_EXEC. PROT_NONE VMAs get
// protnone entries: the hardware faults on them, Linux still knows the page (R9.6).
export function vma_page_prot(v: u32): u64 {
  const f = vma_flags(v);
  if ((f & VM_ACCESS_FLAGS) == 0) return _PAGE_PROTNONE | _PAGE_ACCESSED;
  let prot: u64 = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((f & (VM_SHARED | VM_WRITE)) == (VM_SHARED | VM_WRITE) && (vma_iflags(v) & VMA_WRITENOTIFY) == 0) {
    prot |= _PAGE_RW;
  }
  if ((f & VM_EXEC) == 0) prot |= _PAGE_NX;
  return prot;
}

// ---- anon_vma identity (issue 14: merges refuse different anon_vmas) ----
// The reverse map finds anonymous pages through the address space's family (mm.ts); a VMA
// only needs to know which anon_vma it has, for the merge rule. An anon_vma is an id: a
// VMA gets one at its first anonymous fault (anon_vma_prepare), split pieces share it, a
// fork child gets a new one (VMA_FORK_CHILD), a merge keeps the one of either side.
let nextAnonVma: u32 = 1;

// A new anon_vma (anon_vma_alloc): ids are not reused (2^32 of them before wrapping).
export function anon_vma_alloc(): u32 {
  const a = nextAnonVma++;
  if (nextAnonVma == 0) nextAnonVma = 1;
  return a;
}

// anon_vma_compatible: `b` continues `a` (adjacent, same file, consecutive offsets) and
// their flags differ at most in the access bits and soft-dirty.
function anon_vma_compatible(a: u32, b: u32): bool {
  return vma_end(a) == vma_start(b) && vma_file(a) == vma_file(b) &&
    ((vma_flags(a) ^ vma_flags(b)) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY)) == 0 &&
    vma_pgoff(b) == vma_pgoff(a) + ((vma_start(b) - vma_start(a)) >> 12);
}

// reusable_anon_vma: `old`'s anon_vma, if it has one that no fork complicates.
function reusable_anon_vma(old: u32, a: u32, b: u32): u32 {
  if (!anon_vma_compatible(a, b)) return 0;
  if ((vma_iflags(old) & VMA_FORK_CHILD) != 0) return 0;
  return vma_anon_vma(old);
}

// anon_vma_prepare: give `v` an anon_vma before its first anonymous page (or guard marker,
// or failing private write fault): a compatible neighbour's (next first, then prev; Linux's
// find_mergeable_anon_vma, so mprotect splits that fault later still merge), else a new one.
// Inline check, out-of-line setup (as Linux splits anon_vma_prepare / __anon_vma_prepare):
// every anonymous fault calls it, almost always for a VMA that has one already.
@inline export function anon_vma_prepare(v: u32): void {
  if (vma_anon_vma(v) == 0) __anon_vma_prepare(v);
}

function __anon_vma_prepare(v: u32): void {
  let a: u32 = 0;
  const n = vma_next(v);
  if (n != 0) a = reusable_anon_vma(n, v, n);
  if (a == 0) {
    const p = vma_prev(v);
    if (p != 0) a = reusable_anon_vma(p, p, v);
  }
  set_vma_anon_vma(v, a != 0 ? a : anon_vma_alloc());
}

