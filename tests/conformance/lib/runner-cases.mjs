// Hand-written scenarios that more than one test runs: the same case checked against the
// runner alone (emulator.test.ts) and against the live kernel (fuzz.test.ts), so the two
// can never drift apart (duplicates D1).
import { normalizeScenario } from './scenario.mjs';

/**
 * R9.10, issue 14 item 15: fadvise(DONTNEED) of page 0 writes back page 0 only. Pages 0 and
 * 3 of a shared file mapping are written; after the advice page 3 is still writable (no
 * fault) and page 0 write-faults again (one minor fault): minflt [0, 1] over the last two steps.
 */
export function fadviseRangeScenario() {
  return normalizeScenario({
    name: 'runner-fadvise-range', rules: ['R9.10'], description: 'fadvise DONTNEED of page 0 only cleans page 0',
    file: { pages: 4, cached: true },
    steps: [
      { op: 'mmap', id: 'f', pages: 4, prot: 'rw', flags: 'shared', anon: false },
      { op: 'touch', map: 'f', page: 0, access: 'write' },
      { op: 'touch', map: 'f', page: 3, access: 'write' },
      { op: 'fadvise', advice: 'dontneed', from: 0, pages: 1 },
      { op: 'touch', map: 'f', page: 3, access: 'write', expect: 'f' },
      { op: 'touch', map: 'f', page: 0, access: 'write', expect: 'f' },
    ],
  });
}
