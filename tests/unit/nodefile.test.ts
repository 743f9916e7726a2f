// NodeFile (wasm-mmu/node): a real file as a backend. Round trips through a temporary
// file: shared writes reach the disk on msync and on eviction (R5.9, R9.11), private
// writes never do (R5.1), truncation follows the file (R10).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createMmu, BusError, LinuxError, PAGE_SIZE, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED,
  MAP_FIXED_NOREPLACE, MS_SYNC, type AddressSpace, type File,
} from '../../src/index.js';
import { NodeFile } from '../../src/node.js';

const PG = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const BASE = 0x4000_0000;
const text = (s: string) => new TextEncoder().encode(s);

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wasm-mmu-nodefile-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

function makeFile(name: string, pages: number, bytes = pages * PG): string {
  const p = join(dir, name);
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (Math.floor(i / PG) + 1) & 0xff;
  writeFileSync(p, b);
  return p;
}

function map(mm: AddressSpace, file: File, pages: number, flags: number, prot = RW, addr = BASE): number {
  return mm.mmap({ addr, length: pages * PG, prot, flags: flags | MAP_FIXED_NOREPLACE, file });
}

describe('NodeFile backend', () => {
  it('is exported from wasm-mmu/node and the main entry stays free of node: imports', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.exports['./node'].default).toBe('./dist/node.js');
    const main = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
    expect(main).not.toMatch(/node:|\.\/node\.js/);
    const node = await import('../../src/node.js');
    expect(node.NodeFile).toBe(NodeFile);
  });

  it('size() is fstat\'s, readPage is a positional 4 KiB read (short at EOF)', () => {
    const p = makeFile('a.bin', 3, 2 * PG + 100);
    const f = new NodeFile(p);
    expect(f.size()).toBe(2 * PG + 100);
    const dst = new Uint8Array(PG).fill(0xee);
    expect(f.readPage(1, dst)).toBe(PG);
    expect(dst.every((b) => b === 2)).toBe(true);
    expect(f.readPage(2, dst)).toBe(100);
    expect(dst[99]).toBe(3);
    expect(f.readPage(7, dst)).toBe(0);
    f.close();
    expect(f.closed).toBe(true);
    expect(() => f.size()).toThrow(LinuxError);
  });

  it('R5.9 shared write + msync reaches the disk; private write never does', async () => {
    const p = makeFile('b.bin', 8);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const backend = new NodeFile(p);
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const vs = map(mm, file, 8, MAP_SHARED);
    const vp = map(mm, file, 8, MAP_PRIVATE, RW, BASE + (16 << 20));
    expect(mm.read(vs + 5 * PG, 2)).toEqual(new Uint8Array([6, 6]));
    expect(mm.rusage().majflt).toBe(1); // read from the disk (R11.6)

    mm.write(vp + 2 * PG, text('private'));
    mm.write(vs + 3 * PG + 7, text('shared'));
    expect(readFileSync(p).subarray(3 * PG + 7, 3 * PG + 13)).toEqual(Buffer.alloc(6, 4)); // not yet
    mm.msync(vs, 8 * PG, MS_SYNC);
    mm.msync(vp, 8 * PG, MS_SYNC);
    const disk = readFileSync(p);
    expect(disk.subarray(3 * PG + 7, 3 * PG + 13).toString()).toBe('shared');
    expect(disk.subarray(2 * PG, 2 * PG + 7)).toEqual(Buffer.alloc(7, 3)); // private stayed private
    expect(backend.writes).toBe(1);
    expect(statSync(p).size).toBe(8 * PG);

    mm.destroy();
    file.close(); // writes back whatever is dirty: nothing of the private copy
    backend.close();
    expect(readFileSync(p).subarray(2 * PG, 2 * PG + 7)).toEqual(Buffer.alloc(7, 3));
    expect(mmu.checkInvariants()).toEqual([]);
    expect(mmu.stats().freeFrames).toBe(mmu.stats().ramFrames - 1);
  });

  it('R9.11 eviction of a dirty shared page (after munmap) writes it back', async () => {
    const p = makeFile('c.bin', 4);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const backend = new NodeFile(p);
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.write(va + PG + 1, text('evict me'));
    mm.munmap(va, 4 * PG);
    expect(file.page(1)!.dirty).toBe(true);
    expect(readFileSync(p).subarray(PG + 1, PG + 9)).toEqual(Buffer.alloc(8, 2));
    expect(file.evict()).toBe(4);
    expect(file.cachedPages).toBe(0);
    expect(readFileSync(p).subarray(PG + 1, PG + 9).toString()).toBe('evict me');
    expect(backend.writes).toBe(1);
    // And it reads back from the disk.
    const vb = map(mm, file, 4, MAP_SHARED, PROT_READ);
    expect(new TextDecoder().decode(mm.read(vb + PG + 1, 8))).toBe('evict me');
    expect(mmu.checkInvariants()).toEqual([]);
    backend.close();
  });

  it('R10.2 File.truncate shrinks the real file; beyond EOF is SIGBUS; extending faults in zeros', async () => {
    const p = makeFile('d.bin', 4);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const backend = new NodeFile(p);
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 4, MAP_SHARED);
    mm.touch(va, 4 * PG);
    file.truncate(PG + 10);
    expect(statSync(p).size).toBe(PG + 10);
    expect(() => mm.read(va + 2 * PG, 1)).toThrow(BusError);
    expect(mm.read(va + PG + 8, 4)).toEqual(new Uint8Array([2, 2, 0, 0]));
    file.truncate(3 * PG);
    expect(statSync(p).size).toBe(3 * PG);
    expect(mm.read(va + 2 * PG, 8)).toEqual(new Uint8Array(8));
    mm.write(va + 2 * PG, text('grown'));
    mm.msync(va, 4 * PG);
    expect(readFileSync(p).subarray(2 * PG, 2 * PG + 5).toString()).toBe('grown');
    expect(readFileSync(p).subarray(PG + 8, PG + 12)).toEqual(Buffer.from([2, 2, 0, 0]));
    expect(mmu.checkInvariants()).toEqual([]);
    backend.close();
  });

  it('R9.5 a read-only NodeFile refuses shared writable mappings (EACCES) and writes', async () => {
    const p = makeFile('e.bin', 2);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const backend = new NodeFile(p, { readOnly: true });
    const file = mmu.openFile(backend);
    const mm = mmu.createAddressSpace();
    let err: unknown;
    try { map(mm, file, 2, MAP_SHARED); } catch (e) { err = e; }
    expect((err as LinuxError).code).toBe('EACCES');
    const va = map(mm, file, 2, MAP_PRIVATE); // private copies are fine
    mm.write(va, text('copy'));
    expect(readFileSync(p)[0]).toBe(1);
    expect(() => backend.writePage(0, new Uint8Array(1))).toThrow(LinuxError);
    expect(mmu.checkInvariants()).toEqual([]);
    backend.close();
  });

  it('create: true makes an empty file that grows through truncate', async () => {
    const p = join(dir, 'new.bin');
    expect(existsSync(p)).toBe(false);
    const backend = new NodeFile(p, { create: true });
    expect(backend.size()).toBe(0);
    const mmu = await createMmu({ ramBytes: 16 << 20 });
    const file = mmu.openFile(backend);
    file.truncate(2 * PG);
    const mm = mmu.createAddressSpace();
    const va = map(mm, file, 2, MAP_SHARED);
    mm.write(va + PG, text('hi'));
    file.sync();
    const disk = readFileSync(p);
    expect(disk.length).toBe(2 * PG);
    expect(disk.subarray(PG, PG + 2).toString()).toBe('hi');
    expect(mmu.checkInvariants()).toEqual([]);
    backend.close();
  });
});
