// MADV_COLLAPSE (issue 14 N3): a valid advice, walked VMA by VMA like the others (R9.1's
// madvise_walk_vmas). Checked against Linux 6.18 (conformance scenario madv-collapse-no-pmd):
// length 0 is 0, a VMA where no PMD THP may be collapsed is EINVAL, unmapped memory ENOMEM.
import { describe, it, expect } from 'vitest';
import { MADV_COLLAPSE, MADV_NOHUGEPAGE, MAP_FIXED } from '../../src/index.js';
import { machine, anon, PG, RW, bytes, expectErrno, expectFilled } from './mm-helpers.js';

const AT = 0x4000_0000; // 2 MiB aligned
const PMD = 512 * PG;

describe('R9.1 MADV_COLLAPSE', () => {
  it('R9.1 is a valid advice: length 0 is 0, a range over unmapped memory only is ENOMEM', async () => {
    const { mmu, mm } = await machine();
    const va = anon(mm, 1, RW, MAP_FIXED, AT);
    mm.write(va, bytes(PG, 3));
    mm.madvise(va, 0, MADV_COLLAPSE);
    expectErrno(() => mm.madvise(AT + 4 * PMD, PG, MADV_COLLAPSE), 'ENOMEM');
    expectFilled(mm.read(va, PG), 3);
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 a VMA too small for an aligned 2 MiB block, or with VM_NOHUGEPAGE, is EINVAL and stops the walk', async () => {
    const { mmu, mm } = await machine();
    const small = anon(mm, 1, RW, MAP_FIXED, AT);
    expectErrno(() => mm.madvise(small, PG, MADV_COLLAPSE), 'EINVAL');
    // [small][hole]: the first VMA's EINVAL wins over the hole's ENOMEM.
    expectErrno(() => mm.madvise(small, 3 * PG, MADV_COLLAPSE), 'EINVAL');
    const big = anon(mm, 1100, RW, MAP_FIXED, AT + 4 * PMD);
    mm.madvise(big, 1100 * PG, MADV_NOHUGEPAGE);
    expectErrno(() => mm.madvise(big + PG, 600 * PG, MADV_COLLAPSE), 'EINVAL');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('R9.1 a THP-eligible VMA: rounded inward to 2 MiB, no block to do is 0; a range inside one block is EINVAL', async () => {
    const { mmu, mm } = await machine();
    const big = anon(mm, 1100, RW, MAP_FIXED, AT);
    mm.write(big, bytes(4 * PG, 9));
    // Across a block edge, holding no whole block: hstart == hend, 0 blocks of 0 (Linux 6.18: 0).
    mm.madvise(big + 2 * PMD - 4 * PG, 8 * PG, MADV_COLLAPSE);
    // Ending on a block edge or starting on one: likewise 0.
    mm.madvise(big + PG, 511 * PG, MADV_COLLAPSE);
    mm.madvise(big + PMD, 4 * PG, MADV_COLLAPSE);
    // Inside one block, touching neither edge: hstart > hend, EINVAL (Linux 6.18 too).
    expectErrno(() => mm.madvise(big + PG, 510 * PG, MADV_COLLAPSE), 'EINVAL');
    expectFilled(mm.read(big, 4 * PG), 9);
    // A whole block is a collapse the emulator does not perform (4 KiB pages only): EINVAL,
    // as Linux reports a block it could not collapse (SCAN_FAIL).
    expectErrno(() => mm.madvise(big, PMD, MADV_COLLAPSE), 'EINVAL');
    expectFilled(mm.read(big, 4 * PG), 9);
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
