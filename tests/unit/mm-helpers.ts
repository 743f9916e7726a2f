// Shared helpers for the address-space suites (anon, cow, syscalls, vma): a small machine,
// anonymous mappings, and matchers for Linux's errors and signals.
import { expect } from 'vitest';
import {
  createMmu, LinuxError, SegmentationFault, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE,
  MAP_ANONYMOUS, type Mmu, type MmuOptions, type AddressSpace, type ErrnoName,
} from '../../src/index.js';

export const PG = PAGE_SIZE;
export const RW = PROT_READ | PROT_WRITE;

/** A 16 MiB machine and one address space. */
export async function machine(opts: MmuOptions = {}): Promise<{ mmu: Mmu; mm: AddressSpace }> {
  const mmu = await createMmu({ ramBytes: 16 << 20, ...opts });
  return { mmu, mm: mmu.createAddressSpace() };
}

/** mmap(NULL or addr, pages, prot, MAP_PRIVATE|MAP_ANONYMOUS|extra). */
export function anon(mm: AddressSpace, pages: number, prot = RW, extra = 0, addr?: number): number {
  return mm.mmap({ addr, length: pages * PG, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | extra });
}

/** The call throws LinuxError with this errno name. */
export function expectErrno(fn: () => unknown, code: ErrnoName): LinuxError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, `expected ${code}`).toBeInstanceOf(LinuxError);
  expect((err as LinuxError).code).toBe(code);
  return err as LinuxError;
}

/** The access raises SIGSEGV with this si_code at this address. */
export function expectSegv(fn: () => unknown, code: 'SEGV_MAPERR' | 'SEGV_ACCERR', address: number): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err, `expected SIGSEGV ${code}`).toBeInstanceOf(SegmentationFault);
  expect((err as SegmentationFault).code).toBe(code);
  expect((err as SegmentationFault).address).toBe(address);
}

/** `n` bytes of `v`. */
export function bytes(n: number, v: number): Uint8Array { return new Uint8Array(n).fill(v); }

/** Fault counters of an address space. */
export function faults(mm: AddressSpace): number { const r = mm.rusage(); return r.minflt + r.majflt; }

/** Selected stats() counters now minus `before`. */
export function delta<K extends string>(mmu: Mmu, before: Record<K, number>): Record<K, number> {
  const now = mmu.stats() as unknown as Record<K, number>;
  return Object.fromEntries(Object.keys(before).map((k) => [k, now[k as K] - before[k as K]])) as Record<K, number>;
}

/** A snapshot of some stats() counters, for delta(). */
export function snap<K extends string>(mmu: Mmu, keys: K[]): Record<K, number> {
  const s = mmu.stats() as unknown as Record<K, number>;
  return Object.fromEntries(keys.map((k) => [k, s[k]])) as Record<K, number>;
}

/** The VMAs as [start, end, perms] triples, for compact structure checks. */
export function layout(mm: AddressSpace): [number, number, string][] {
  return mm.maps().map((v) => [v.start, v.end, v.perms]);
}

/** Every byte of `a` is `v` (reports the first offset that is not: fast on big buffers). */
export function expectFilled(a: Uint8Array, v: number): void {
  const bad = a.findIndex((x) => x !== v);
  expect(bad, bad < 0 ? '' : `byte ${bad} is ${a[bad]}, not ${v}`).toBe(-1);
}

type WalkRecord = { hw_walk_pa(): number; hw_walk_level(): number; hw_walk_perms(): number };
/**
 * Two machines that ran one scenario with a switch on and off (issue 17's direct paths):
 * what a program or the checker can see must agree: the counters, rusage, status, the
 * walk's last-result record (`walk` true) and every byte of the core's linear memory.
 */
export function expectSameMachines(a: { mmu: Mmu; mm: AddressSpace }, b: { mmu: Mmu; mm: AddressSpace }, walk = true): void {
  expect(a.mmu.stats()).toEqual(b.mmu.stats());
  expect(a.mm.rusage()).toEqual(b.mm.rusage());
  expect(a.mm.status()).toEqual(b.mm.status());
  if (walk) {
    const xa = a.mmu.core.x as unknown as WalkRecord, xb = b.mmu.core.x as unknown as WalkRecord;
    expect([xa.hw_walk_pa(), xa.hw_walk_level(), xa.hw_walk_perms()]).toEqual([xb.hw_walk_pa(), xb.hw_walk_level(), xb.hw_walk_perms()]);
  }
  const ma = a.mmu.core.bytes(), mb = b.mmu.core.bytes();
  expect(ma.length).toBe(mb.length);
  const diff: number[] = [];
  for (let i = 0; i < ma.length && diff.length < 8; i++) if (ma[i] !== mb[i]) diff.push(i);
  expect(diff).toEqual([]);
}
