// The guest program: a sieve of Eratosthenes over `sieveBytes` bytes, then an open-addressing
// hash table of `slots` 32-bit words filled with `keys` pseudo-random keys, then a checksum of
// the table read back as halfwords. Its working set is sieveBytes + 4 * slots (several MiB by
// default): byte, halfword and word loads and stores, and one instruction fetch per step.
// Output (ecall a7=1, one number each): primes below sieveBytes, probes, duplicates, checksum.
import { Assembler } from './asm.mjs';

export const CODE_BASE = 0x10000;
export const DATA_BASE = 0x400000;
export const DEFAULTS = { sieveBytes: 4 << 20, slots: 1 << 18, keys: 200000 };

/** The program's bytes (load at CODE_BASE, start there). */
export function assembleProgram() {
  const a = new Assembler();
  // Arguments: a0 sieve bytes, a1 data base, a2 slots (a power of two), a3 keys.
  a.mv('s0', 'a0').mv('s1', 'a1').mv('s9', 'a2').mv('s10', 'a3');
  // ---- sieve: flags[i] = 1 for composite i ----
  a.li('t0', 2).li('t3', 4).li('t5', 1);
  a.label('outer').bgeu('t3', 's0', 'count');
  a.add('t1', 's1', 't0').lbu('t2', 0, 't1').bnez('t2', 'next');
  a.mv('t4', 't3');
  a.label('inner').bgeu('t4', 's0', 'next');
  a.add('t1', 's1', 't4').sb('t5', 0, 't1').add('t4', 't4', 't0').j('inner');
  a.label('next').add('t3', 't3', 't0').add('t3', 't3', 't0').addi('t3', 't3', 1).addi('t0', 't0', 1).j('outer');
  a.label('count').li('t0', 2).li('a0', 0);
  a.label('cl').bgeu('t0', 's0', 'counted');
  a.add('t1', 's1', 't0').lbu('t2', 0, 't1').bnez('t2', 'skip').addi('a0', 'a0', 1);
  a.label('skip').addi('t0', 't0', 1).j('cl');
  a.label('counted').li('a7', 1).ecall();
  // ---- hash table at s2 = s1 + s0, s3 = slots - 1 ----
  a.add('s2', 's1', 's0').addi('s3', 's9', -1).mv('s4', 's10');
  a.li('s5', 0x12345678).li('s6', 0).li('s7', 0).li('s8', 0xfffff);
  a.label('hloop').beqz('s4', 'hsum');
  a.slli('t0', 's5', 13).xor('s5', 's5', 't0').srli('t0', 's5', 17).xor('s5', 's5', 't0')
    .slli('t0', 's5', 5).xor('s5', 's5', 't0');
  a.and('t1', 's5', 's8').ori('t1', 't1', 1); // the key: 20 bits, never 0 (0 = empty slot)
  a.srli('t2', 't1', 7).xor('t2', 't2', 't1').and('t2', 't2', 's3');
  a.label('probe').slli('t3', 't2', 2).add('t3', 't3', 's2').lw('t4', 0, 't3');
  a.beqz('t4', 'empty').beq('t4', 't1', 'dup');
  a.addi('s6', 's6', 1).addi('t2', 't2', 1).and('t2', 't2', 's3').j('probe');
  a.label('empty').sw('t1', 0, 't3').j('hnext');
  a.label('dup').addi('s7', 's7', 1);
  a.label('hnext').addi('s4', 's4', -1).j('hloop');
  a.label('hsum').mv('a0', 's6').li('a7', 1).ecall().mv('a0', 's7').ecall();
  // ---- checksum: c = rotl(c, 1) ^ halfword, over the table ----
  a.li('t0', 0).slli('t6', 's9', 1).li('a0', 0).mv('t3', 's2');
  a.label('sl').bgeu('t0', 't6', 'out');
  a.lhu('t1', 0, 't3').slli('t2', 'a0', 1).srli('a0', 'a0', 31).or('a0', 'a0', 't2').xor('a0', 'a0', 't1');
  a.addi('t3', 't3', 2).addi('t0', 't0', 1).j('sl');
  a.label('out').li('a7', 1).ecall();
  a.li('a0', 0).li('a7', 93).ecall(); // exit(0)
  return a.assemble();
}

/** The same computation in plain JavaScript: the answer the guest must print. */
export function referenceOutput({ sieveBytes, slots, keys } = DEFAULTS) {
  const flags = new Uint8Array(sieveBytes);
  for (let i = 2; i * i < sieveBytes; i++) if (!flags[i]) for (let j = i * i; j < sieveBytes; j += i) flags[j] = 1;
  let primes = 0;
  for (let i = 2; i < sieveBytes; i++) if (!flags[i]) primes++;
  const table = new Uint32Array(slots);
  let x = 0x12345678, probes = 0, dups = 0;
  for (let k = 0; k < keys; k++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const key = ((x & 0xfffff) | 1) >>> 0;
    let h = ((key >>> 7) ^ key) & (slots - 1);
    for (;;) {
      if (table[h] === 0) { table[h] = key; break; }
      if (table[h] === key) { dups++; break; }
      probes++; h = (h + 1) & (slots - 1);
    }
  }
  const half = new Uint16Array(table.buffer);
  let c = 0;
  for (let i = 0; i < half.length; i++) c = (((c << 1) | (c >>> 31)) ^ half[i]) >>> 0;
  return [primes, probes, dups, c];
}
