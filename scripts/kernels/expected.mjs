#!/usr/bin/env node
// Writes golden/<dir>/expected-mismatches.json: the emulator-vs-kernel differences of each
// golden dir that the emulator does not model yet, each with its diagnosis. A mismatch is
// written only when DIAGNOSES below explains it; anything else is printed and the script
// exits 1 (diagnose it first, or fix the emulator). Rerun after the emulator learns a
// difference: entries that no longer occur disappear (the emulator test fails on stale ones).
//
//   npm run build && node scripts/kernels/expected.mjs [golden dir …]
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, loadScenarios } from '../../tests/conformance/lib/scenario.mjs';
import { kernelVersion } from '../../tests/conformance/lib/kernel.mjs';
import { EXPECTED_FILE, applyDeltas, checkScenario, expectedDeltas, goldenKernels, loadGolden } from '../../tests/conformance/emulator.mjs';

/**
 * Known kernel behaviours the emulator lacks. when(profile, mismatch) selects; reason and
 * issue are written into the entry.
 */
const ra128 = (p) => p.readAheadKb === 128;
const largeFolios = (p) => kernelVersion(p.release) >= 700 && p.fileSystem === 'ext4';
const counts = (m) => m.field === 'minflt' || m.field === 'majflt';
const RA_MARKER = {
  reason: 'read_ahead_kb 128: the kernel cuts the read-around window at EOF before placing the PG_readahead marker (start + size - async_size of the cut window), and fault-around skips the marker page; wasm-mmu places the marker from the uncut window, so a different page is left unmapped',
  issue: '15: readahead modelled at read_ahead_kb 128 (marker after the EOF cut)',
};
const LARGE_FOLIOS = {
  reason: '7.x ext4 caches files in large folios: readahead allocates multi-page folios (one marker per folio) and fault-around maps whole folios, so fewer faults and other pages are mapped than wasm-mmu (order-0 page cache) gives',
  issue: '15: large folios in the page cache (7.x ext4)',
};
const SWAP_CACHE = {
  reason: 'after MADV_PAGEOUT the written-back anonymous folio is still in the swap cache, so the swap-in is a minor swap-cache hit (R11.6, R9.2); wasm-mmu frees the frame at pageout and counts a major fault',
  issue: '15: swap cache kept after MADV_PAGEOUT',
};
const pre64 = (p) => kernelVersion(p.release) < 604;
const DIAGNOSES = [
  {
    scenario: 'madv-remove-shared-file',
    when: (p) => p.fileSystem === 'tmpfs',
    reason: 'on tmpfs the read of a punched page allocates one zeroed shmem page (minor, no read-around), so the neighbouring hole page stays unmapped; the runner opens the tmpfs file as a MemoryFile with read-around',
    issue: '15: tmpfs profile (shmem page-cache misses in the emulator runner)',
  },
  ...['exec-cold-read-forward', 'exec-random-reads-forward'].map((scenario) => ({
    scenario,
    when: (p) => p.machine === 'aarch64' && kernelVersion(p.release) >= 700,
    reason: 'arm64 asks for 64 KiB folios for executable memory (exec_folio_order): the VM_EXEC read starts at the 16-page aligned block of the fault, not at the faulting page; wasm-mmu models x86 (order 0)',
    issue: '15: profile key for exec_folio_order (arm64)',
  })),
  {
    scenario: 'fa-eof-folio-no-table',
    when: (p) => pre64(p),
    reason: '6.1 fault-around maps the EOF folio even when it must install the PTE table; the rule that installs a table only where a PMD could map (never across i_size) is newer (6.12.118 and 6.18 have it), and wasm-mmu models it always',
    issue: '15: profile key for fault-around at EOF before the i_size PMD rule',
  },
  {
    scenario: 'madv-pageout-dirty-file-kept',
    when: (p, m) => pre64(p) && counts(m),
    reason: 'on 6.1 (no per-VMA locks, mm_account_fault counts a fault retried with FAULT_FLAG_TRIED as major) the write fault on the dirty page MADV_PAGEOUT left cached and unmapped waits for the folio lock, is retried and counts major; 6.12, 7.3 and 6.18 count it minor, as wasm-mmu does (diagnosis by that accounting rule, the same as the 6.1 retry entries below; not traced in the 6.1 source line by line)',
    issue: '15: profile key for user-fault retry accounting before 6.4',
  },
  ...['trunc-inside-page-caches', 'populate-after-grow', 'pwrite-extend-caches-eof-block'].map((scenario) => ({
    scenario,
    when: (p, m) => pre64(p) && counts(m),
    reason: 'on 6.1 (no per-VMA locks) a user fault that drops the mmap lock for read_folio of the not-uptodate EOF page is retried with FAULT_FLAG_TRIED and counts major; wasm-mmu models 6.4+, where the per-VMA-lock retry counts minor',
    issue: '15: profile key for user-fault retry accounting before 6.4',
  })),
  {
    scenario: 'guard-region',
    when: (p) => p.guardRegions === false,
    reason: 'MADV_GUARD_INSTALL/REMOVE arrived in 6.13: this kernel answers EINVAL and keeps the pages; wasm-mmu always installs guard markers (needs an emulator option from profile.guardRegions)',
    issue: '15: profile key guardRegions → core option (guard regions off before 6.13)',
  },
  {
    scenario: 'madv-populate-read-cold',
    when: (p, m) => p.populateAccounting === 'minor' && counts(m),
    reason: 'before 6.12 a MADV_POPULATE_READ whose fault dropped the mmap lock for I/O counts the retried fault as minor (2 minor, 0 major at 8 MiB readahead; 3 minor at 128 KiB); 6.12+ counts the miss as major; wasm-mmu models 6.12+',
    issue: '15: profile key populateAccounting → core option (pre-6.12 GUP retry accounting)',
  },
  {
    scenario: 'madv-populate-read-cold',
    when: (p, m) => ra128(p) && largeFolios(p) && counts(m),
    reason: '7.x ext4 at read_ahead_kb 128: readahead in large folios leaves the populate one marker hit fewer than wasm-mmu models for 6.16-6.18 (1 major where wasm-mmu counts 2)',
    issue: '15: large folios in the page cache (7.x ext4)',
  },
  {
    scenario: 'fa-cold-cache',
    when: (p, m) => ra128(p) && kernelVersion(p.release) < 604 && counts(m),
    reason: 'on 6.1 (no per-VMA locks) a user fault that drops the mmap lock for readahead at a PG_readahead marker is retried with FAULT_FLAG_TRIED and counts major; wasm-mmu models 6.4+, where the per-VMA-lock retry counts minor',
    issue: '15: profile key for user-fault retry accounting before 6.4',
  },
  ...['cache-evict-unmapped', 'file-private-cold-write', 'trunc-extend-zero'].map((scenario) => ({
    scenario, when: (p, m) => ra128(p) && !largeFolios(p) && (m.field === 'state' || m.field === 'pfn'), ...RA_MARKER,
  })),
  {
    scenario: 'swap-pageout-file-private',
    when: (p, m) => ra128(p) && !largeFolios(p) && (m.field === 'state' || m.field === 'pfn'), ...RA_MARKER,
  },
  ...['cache-evict-unmapped', 'mlock-cold-file', 'populate-cold-file', 'trunc-extend-zero', 'populate-after-grow'].map((scenario) => ({
    scenario, when: (p) => ra128(p) && largeFolios(p), ...LARGE_FOLIOS,
  })),
  // The re-read after MADV_PAGEOUT: one 16-page folio, no marker page left unmapped.
  { scenario: 'swap-pageout-file-private', when: (p, m) => ra128(p) && largeFolios(p) && (m.field === 'state' || m.field === 'pfn'), ...LARGE_FOLIOS },
  ...['swap-pageout-anon', 'swap-pageout-file-private', 'swap-fork', 'swap-in-write'].map((scenario) => ({
    scenario, when: (p, m) => p.swap && counts(m), ...SWAP_CACHE,
  })),
  ...['swap-pageout-shared-anon', 'madv-pageout-shmem-no-swap'].map((scenario) => ({
    scenario,
    when: (p) => p.swap,
    reason: 'MADV_PAGEOUT of shared anonymous (shmem) memory with a swap device: the kernel unmaps the pages and shmem\'s writeout moves them to swap, so the shmem mapping holds swap entries, which fault-around skips: each later touch maps only its own page (swap-cache hit, minor); wasm-mmu unmaps them but keeps them in the shmem cache as a kernel without swap does (writeout fails), so the next fault maps the whole fault-around window',
    issue: '15: MADV_PAGEOUT of shmem to swap',
  })),
  {
    scenario: 'swap-pageout-file-private',
    when: (p, m) => p.fileSystem === 'tmpfs' && (m.field === 'state' || m.field === 'pfn'),
    reason: 'on tmpfs MADV_PAGEOUT swaps the clean shmem file pages out too (the page cache then holds swap entries, which fault-around skips), so the read of page 1 maps only that page; wasm-mmu keeps the file pages cached and faults the window around',
    issue: '15: tmpfs profile (shmem file pages swapped by MADV_PAGEOUT)',
  },
  ...['file-shared-msync-rewrite', 'msync-async-no-writeprotect'].map((scenario) => ({
    scenario,
    when: (p, m) => p.fileSystem === 'tmpfs' && m.field === 'minflt',
    reason: 'on tmpfs msync(MS_SYNC) writes nothing back and leaves the dirty PTE writable (no dirty accounting), so the rewrite takes no fault; wasm-mmu\'s msync write-protects the PTE also without dirty accounting',
    issue: '15: tmpfs profile (msync without writeback)',
  })),
  {
    scenario: 'guard-survives-zap',
    when: (p, m) => p.fileSystem === 'tmpfs' && m.step >= 10,
    reason: 'on tmpfs a read past the old EOF after the file was truncated to 2 pages and extended again allocates one zeroed shmem page (minor, no read-around), so only the touched page is mapped; the runner opens the tmpfs file as a MemoryFile with read-around (one major fault, the whole window mapped); the guard markers themselves match',
    issue: '15: tmpfs profile (shmem page-cache misses in the emulator runner)',
  },
  {
    scenario: 'trunc-extend-zero',
    when: (p) => p.fileSystem === 'tmpfs',
    reason: 'on tmpfs a miss past the old EOF allocates one zeroed shmem page (minor, no read-around), so only the touched page is mapped; the runner opens the tmpfs file as a MemoryFile with read-around (one major fault, the whole window mapped)',
    issue: '15: tmpfs profile (shmem page-cache misses in the emulator runner)',
  },
];

const dirs = process.argv.slice(2).length ? process.argv.slice(2) : goldenKernels();
const scenarios = loadScenarios();
let unexplained = 0;
for (const kernel of dirs) {
  const { profile, golden } = loadGolden(kernel);
  const entries = [];
  for (const s of scenarios) {
    const r = await checkScenario(s, { profile, golden: golden(s.name), kernel });
    if (r.skipped) continue;
    // Only what the scenario's own expectedDeltas do not already cover.
    const { unexpected } = applyDeltas([...r.mismatches, ...r.accepted], expectedDeltas(s, kernel));
    const groups = new Map();
    for (const m of unexpected) {
      const d = DIAGNOSES.find((x) => x.scenario === s.name && x.when(profile, m));
      if (!d) {
        unexplained++;
        console.log(`${kernel} ${s.name}: no diagnosis for step ${m.step} ${m.field}${m.map ? ` ${m.map}[${m.page}]` : ''}: emulator ${m.emulator} vs kernel ${m.kernel}`);
        continue;
      }
      const key = `${m.step} ${m.field} ${m.map ?? ''}`;
      const g = groups.get(key) ?? { scenario: s.name, step: m.step, field: m.field, ...(m.map !== undefined ? { map: m.map } : {}), reason: d.reason, issue: d.issue };
      if (m.page !== undefined) g.pages = g.pages ? [Math.min(g.pages[0], m.page), Math.max(g.pages[1], m.page)] : [m.page, m.page];
      groups.set(key, g);
    }
    entries.push(...groups.values());
  }
  const f = join(GOLDEN_DIR, kernel, EXPECTED_FILE);
  if (!entries.length) {
    if (existsSync(f)) rmSync(f);
    console.log(`${kernel}: no expected mismatches (v${kernelVersion(profile.release)})`);
    continue;
  }
  const lines = entries.map((e) => `    ${JSON.stringify(e)}`);
  writeFileSync(f, `{\n  "note": "emulator-vs-kernel differences the emulator does not model yet (scripts/kernels/expected.mjs); the conformance test fails on any other mismatch and on an entry that no longer occurs",\n  "mismatches": [\n${lines.join(',\n')}\n  ]\n}\n`);
  console.log(`${kernel}: ${entries.length} expected mismatch entries in ${new Set(entries.map((e) => e.scenario)).size} scenario(s)`);
}
if (unexplained) process.exitCode = 1;
