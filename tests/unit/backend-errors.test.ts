// Issue 18 items 3 and 6: a backend's failure reaches the user with its reason. The access
// gets SIGBUS with x86-64's si_code (BUS_ADRERR for every VM_FAULT_SIGBUS, R1.1 step 4), the
// backend's error as `cause`, and a message that says it; a system call that failed because
// of it (msync's write-back: EIO) carries it too. A fault() result that is no VM_FAULT_*
// value is the backend's bug: SIGBUS with a cause naming the value, never OutOfMemoryError.
import { describe, it, expect } from 'vitest';
import { BusError, LinuxError, MemoryFile, OutOfMemoryError, MAP_SHARED, PROT_READ, MS_SYNC, VM_FAULT_LOCKED,
  type Backend, type Mmu, type AddressSpace } from '../../src/index.js';
import { machine, RW, PG } from './mm-helpers.js';

function mapped(mmu: Mmu, mm: AddressSpace, backend: Backend, prot = PROT_READ): number {
  const f = mmu.openFile(backend);
  return mm.mmap({ length: 4 * PG, prot, flags: MAP_SHARED, file: f });
}
function sigbus(fn: () => unknown): BusError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(BusError);
  return err as BusError;
}
const fill = (_i: number, d: Uint8Array) => { d.fill(9); return PG; };

describe('backend failures carry their reason (issue 18 items 3, 6)', () => {
  it('R1.1: readPage that throws: SIGBUS BUS_ADRERR at the address, the thrown error as cause and in the message', async () => {
    const { mmu, mm } = await machine();
    const disk = new Error('disk on fire');
    const at = mapped(mmu, mm, { size: () => 4 * PG, readPage: () => { throw disk; } });
    const e = sigbus(() => mm.read(at + 10, 1));
    expect(e.code).toBe('BUS_ADRERR');
    expect(e.address).toBe(at + 10);
    expect(e.cause).toBe(disk);
    expect(e.message).toMatch(/disk on fire/);
    expect(mmu.backendErrors).toContain(disk);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('readPage returning undefined: the cause says so', async () => {
    const { mmu, mm } = await machine();
    const at = mapped(mmu, mm, { size: () => 4 * PG, readPage: () => undefined as unknown as number });
    const e = sigbus(() => mm.read(at, 1));
    expect(e.cause).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/readPage returned undefined/);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('fault() returning 12345 (not VM_FAULT_* bits) or undefined: BusError whose cause names the value, not OutOfMemoryError', async () => {
    const { mmu, mm } = await machine();
    let at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill, fault: () => 12345 });
    let e = sigbus(() => mm.read(at, 1));
    expect(e).not.toBeInstanceOf(OutOfMemoryError);
    expect(e.code).toBe('BUS_ADRERR');
    expect(e.message).toMatch(/fault\(\) returned 12345 \(0x3039/);
    at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill, fault: () => undefined as unknown as number });
    e = sigbus(() => mm.read(at, 1));
    expect(String((e.cause as Error).message)).toMatch(/fault\(\) returned undefined/);
    // 0 ("handled") without handing a page back: the cause says what was missing.
    at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill, fault: () => 0 });
    e = sigbus(() => mm.read(at, 1));
    expect(String((e.cause as Error).message)).toMatch(/without a page/);
    // A well-behaved fault() still works.
    at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill,
      fault: (vmf) => { vmf.fillPage(vmf.pgoff, new Uint8Array([5])); return VM_FAULT_LOCKED; } });
    expect(mm.read(at, 1)[0]).toBe(5);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('pageMkwrite returning a string: SIGBUS on the write, the cause says it was a string', async () => {
    const { mmu, mm } = await machine();
    const at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill, writePage: () => {},
      pageMkwrite: () => 'ok' as unknown as number }, RW);
    expect(mm.read(at, 1)[0]).toBe(9);
    const e = sigbus(() => mm.write(at, new Uint8Array([1])));
    expect(e.message).toMatch(/pageMkwrite\(\) returned the string "ok"/);
    expect(mm.read(at, 1)[0]).toBe(9);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.0: msync whose writePage throws: LinuxError EIO with the backend error as cause', async () => {
    const { mmu, mm } = await machine();
    const full = new Error('ENOSPC: no space left on device');
    const at = mapped(mmu, mm, { size: () => 4 * PG, readPage: fill, writePage: () => { throw full; } }, RW);
    mm.write(at, new Uint8Array([1]));
    let err: unknown;
    try { mm.msync(at, PG, MS_SYNC); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(LinuxError);
    expect((err as LinuxError).code).toBe('EIO');
    expect((err as LinuxError).cause).toBe(full);
    expect((err as LinuxError).message).toMatch(/no space left/);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.1: a later SIGBUS past EOF carries no stale cause from an earlier failure', async () => {
    const { mmu, mm } = await machine();
    const bad = mapped(mmu, mm, { size: () => 4 * PG, readPage: () => { throw new Error('once'); } });
    sigbus(() => mm.read(bad, 1));
    const f = mmu.openFile(new MemoryFile(PG));
    const at = mm.mmap({ length: 2 * PG, prot: PROT_READ, flags: MAP_SHARED, file: f });
    const e = sigbus(() => mm.read(at + PG, 1));
    expect(e.code).toBe('BUS_ADRERR');
    expect(e.cause).toBeUndefined();
    expect(e.message).toBe(`SIGBUS (BUS_ADRERR) at 0x${(at + PG).toString(16)}`);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
