// Issue 18 items 5 and 8: createMmu refuses what it does not understand. An unknown option
// (a typo) is a RangeError naming it and the nearest valid name; a value of the wrong kind
// is a RangeError that shows a string as a string ('4096' is not 4096).
import { describe, it, expect } from 'vitest';
import { createMmu, MAP_PRIVATE, MAP_ANONYMOUS, type MmuOptions } from '../../src/index.js';
import { machine, RW } from './mm-helpers.js';

async function refused(opts: unknown): Promise<RangeError> {
  let err: unknown;
  try { await createMmu(opts as MmuOptions); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(RangeError);
  return err as RangeError;
}

describe('createMmu options are checked, never ignored (issue 18)', () => {
  it('a misspelt option names itself and the nearest valid name', async () => {
    expect((await refused({ rambytes: 2 << 20 })).message).toMatch(/unknown option 'rambytes': did you mean 'ramBytes'\?/);
    expect((await refused({ faultAround: 4096 })).message).toMatch(/'faultAround': did you mean 'faultAroundBytes'/);
    expect((await refused({ tlbEntry: 64 })).message).toMatch(/did you mean 'tlbEntries'/);
    expect((await refused({ swapbytes: 0 })).message).toMatch(/did you mean 'swapBytes'/);
  });

  it('a name nothing resembles lists the valid options instead of guessing', async () => {
    const e = await refused({ colour: 'blue' });
    expect(e.message).toMatch(/unknown option 'colour'/);
    expect(e.message).not.toMatch(/did you mean/);
    expect(e.message).toMatch(/ramBytes, faultAroundBytes/);
  });

  it("a string where a number belongs is named as a string: '4096' is not 4096", async () => {
    expect((await refused({ faultAroundBytes: '4096' })).message).toBe('faultAroundBytes must be a power of two from 4096 to 2 MiB, got the string "4096"');
    expect((await refused({ ramBytes: '16777216' })).message).toMatch(/ramBytes .* got the string "16777216"/);
    expect((await refused({ zeroPage: 'false' })).message).toMatch(/zeroPage must be true or false, got the string "false"/);
    expect((await refused(null)).message).toMatch(/options object/);
    expect((await refused({ swapDevice: {} })).message).toMatch(/swapDevice needs readPage/);
  });

  it('the same holds for the system calls: a string length is named as a string', async () => {
    const { mmu, mm } = await machine();
    let err: unknown;
    try { mm.mmap({ length: '4096' as unknown as number, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe('length must be a non-negative integer, got the string "4096"');
    expect(mmu.checkInvariants()).toEqual([]);
  });

  it('every valid option is still accepted', async () => {
    const mmu = await createMmu({ ramBytes: 4 << 20, faultAroundBytes: 4096, prefaultOld: true, tlbEntries: 64, zeroPage: false,
      pteSpecial: false, xipBytes: 0, readaheadBytes: 4096, swapBytes: 0 });
    expect(mmu.options).toMatchObject({ ramBytes: 4 << 20, faultAroundBytes: 4096, prefaultOld: true, zeroPage: false });
    expect(mmu.checkInvariants()).toEqual([]);
  });
});
