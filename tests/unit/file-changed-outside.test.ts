// Issue 18 item 2: a real file truncated and extended from outside while a NodeFile maps it.
// Linux follows truncate(2) from another process at once (R10.2: i_size, then every mapping
// zapped past the new end, even private copies, and the page cache there dropped); an access
// past the new end is SIGBUS BUS_ADRERR (R10.1), and write-back never grows the file back.
// The emulator notices lazily: a short read, a write-back or a fault past the size it last
// saw re-checks the backend's size (fstat) and then does what truncate(2) does.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync, statSync, truncateSync, readFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMmu, BusError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MS_SYNC } from '../../src/index.js';
import { NodeFile } from '../../src/node.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-outside-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

/** A file of `pages` pages, page i filled with i + 1. */
function makeFile(pages: number): string {
  const p = join(dir, 'f.bin');
  const b = Buffer.alloc(pages * PG);
  for (let i = 0; i < pages; i++) b.fill((i + 1) & 0xff, i * PG, (i + 1) * PG);
  writeFileSync(p, b);
  return p;
}
function sigbus(fn: () => unknown): BusError {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(BusError);
  return err as BusError;
}

async function setup(pages: number) {
  const path = makeFile(pages);
  const mmu = await createMmu({ ramBytes: 16 << 20, readaheadBytes: 4 * PG });
  const mm = mmu.createAddressSpace();
  const nf = new NodeFile(path);
  const file = mmu.openFile(nf);
  const at = mm.mmap({ length: pages * PG, prot: RW, flags: MAP_SHARED, file });
  return { path, mmu, mm, nf, file, at };
}

describe('a NodeFile changed from outside while mapped (issue 18 item 2)', () => {
  it('R10.1/R10.2: truncated outside: an uncached page past the new end is SIGBUS with the reason; the size follows', async () => {
    const { path, mmu, mm, file, at } = await setup(64);
    expect(mm.read(at, 1)[0]).toBe(1);
    truncateSync(path, 32 * PG); // another process shrinks it
    const e = sigbus(() => mm.read(at + 48 * PG, 1));
    expect(e.code).toBe('BUS_ADRERR');
    expect(e.address).toBe(at + 48 * PG);
    expect(e.message).toMatch(/shrank to 131072 bytes outside the emulator \(it had 262144\)/);
    expect(file.size).toBe(32 * PG); // i_size followed as the call returned
    // Every page past the new end is SIGBUS now, without asking the backend; below it reads work.
    expect(sigbus(() => mm.read(at + 40 * PG, 1)).cause).toBeUndefined();
    expect(mm.read(at + 31 * PG, 1)[0]).toBe(32);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2: shrunk outside with dirty mapped pages past the new end: msync never grows the file back', async () => {
    const { path, mmu, mm, file, at } = await setup(64);
    for (let i = 0; i < 64; i += 8) mm.write(at + i * PG, new Uint8Array([0xee]));
    expect(file.dirtyPages).toBeGreaterThan(4);
    truncateSync(path, 20 * PG + 100); // mid-page: page 20 keeps 100 bytes
    mm.msync(at, 64 * PG, MS_SYNC);
    expect(statSync(path).size).toBe(20 * PG + 100); // not grown back
    const disk = readFileSync(path);
    expect(disk[16 * PG]).toBe(0xee); // dirty pages inside the new size were written
    expect(file.size).toBe(20 * PG + 100);
    // The zapped mappings past the end: SIGBUS, even for a page that was mapped and dirty.
    expect(sigbus(() => mm.read(at + 24 * PG, 1)).code).toBe('BUS_ADRERR');
    expect(mm.read(at + 20 * PG, 1)[0]).toBe(21); // the page straddling the end stays
    expect(mm.pagemap(at + 24 * PG, 1)[0].present).toBe(false);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2: a private copy past the new end is zapped too (even cows)', async () => {
    const path = makeFile(16);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const mm = mmu.createAddressSpace();
    const file = mmu.openFile(new NodeFile(path));
    const shared = mm.mmap({ length: 16 * PG, prot: RW, flags: MAP_SHARED, file });
    const priv = mm.mmap({ length: 16 * PG, prot: RW, flags: MAP_PRIVATE, file });
    mm.write(priv + 12 * PG, new Uint8Array([0x77])); // a private COW copy of page 12
    mm.write(shared + 12 * PG, new Uint8Array([0x55]));
    truncateSync(path, 8 * PG);
    file.sync(); // write-back notices: page 12 is past the end
    expect(statSync(path).size).toBe(8 * PG);
    expect(file.size).toBe(8 * PG);
    expect(sigbus(() => mm.read(priv + 12 * PG, 1)).code).toBe('BUS_ADRERR');
    expect(sigbus(() => mm.read(shared + 12 * PG, 1)).code).toBe('BUS_ADRERR');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R10.2: extended outside: a fault past the old size re-checks the size and maps the new bytes', async () => {
    const { path, mmu, mm, file } = await setup(8);
    const big = mm.mmap({ length: 16 * PG, prot: PROT_READ, flags: MAP_SHARED, file });
    expect(sigbus(() => mm.read(big + 10 * PG, 1)).code).toBe('BUS_ADRERR'); // past EOF: still SIGBUS
    appendFileSync(path, Buffer.alloc(4 * PG, 0x42)); // another process appends 4 pages
    expect(mm.read(big + 10 * PG, 2)).toEqual(new Uint8Array([0x42, 0x42]));
    expect(file.size).toBe(12 * PG);
    expect(sigbus(() => mm.read(big + 12 * PG, 1)).code).toBe('BUS_ADRERR'); // past the new end
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('File.refreshSize() sees a change at once; our own pwrite past EOF is not mistaken for one', async () => {
    const { path, mmu, mm, file, at } = await setup(8);
    expect(file.refreshSize()).toBe(false);
    file.pwrite(10 * PG, new Uint8Array([9])); // extends i_size; the disk learns it on write-back
    expect(file.refreshSize()).toBe(false);
    expect(file.size).toBe(10 * PG + 1);
    file.sync();
    expect(statSync(path).size).toBe(10 * PG + 1);
    truncateSync(path, 2 * PG);
    expect(file.refreshSize()).toBe(true);
    expect(file.size).toBe(2 * PG);
    expect(sigbus(() => mm.read(at + 3 * PG, 1)).code).toBe('BUS_ADRERR');
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
