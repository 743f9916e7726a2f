// NodeFile sequential mapped read (issue 17): a 200 MB file in os.tmpdir() (created here,
// deleted after), read once through a private read-only mapping (map, touch every page,
// unmap, close the File so the next repetition reads the disk file again) and once with
// fs.readFileSync, alternately in one process. The row is ns per 4 KiB page of the mapped
// read; `ratio` is its throughput over readFileSync's (target >= 0.9).
import { writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timed } from './timing.mjs';

const PAGE = 4096;

export async function runNodeFileRead({ api, node, bytes = 200e6, budgetMs, log }) {
  const path = join(tmpdir(), `wasm-mmu-bench-${process.pid}.bin`);
  const pages = Math.ceil(bytes / PAGE);
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += PAGE) { data[i + 7] = (i / PAGE) & 255; data[i + 2000] = ((i / PAGE) >> 8) & 255; }
  writeFileSync(path, data);
  try {
    const mmu = await api.createMmu({ ramBytes: Math.ceil((bytes + (64 << 20)) / (2 << 20)) * (2 << 20) });
    const mm = mmu.createAddressSpace();
    const mapped = (check) => {
      const nf = new node.NodeFile(path, { readOnly: true });
      let ok = true;
      const ns = timed(() => {
        const file = mmu.openFile(nf);
        const va = mm.mmap({ length: bytes, prot: 1, flags: 2, file, offset: 0 }); // PROT_READ, MAP_PRIVATE
        mm.touch(va, bytes, 'read');
        if (check) {
          for (const k of [0, 1, 4097, pages >> 1, pages - 1]) {
            const off = k * PAGE, len = Math.min(2001, bytes - off);
            const b = mm.read(va + off, len);
            ok &&= b.every((v, i) => v === data[off + i]);
          }
        }
        mm.munmap(va, bytes);
        file.close();
      });
      nf.close();
      return { ns, ok, reads: nf.reads };
    };
    const first = mapped(true);
    if (!first.ok) throw new Error('the mapped read returned bytes the file does not hold');
    if (first.reads !== pages) throw new Error(`NodeFile read ${first.reads} pages of ${pages}`);
    if (mmu.checkInvariants().length) throw new Error(`invariants: ${mmu.checkInvariants().join('; ')}`);
    const m = [], f = [];
    const t0 = Date.now();
    while (m.length < 3 || (Date.now() - t0 < budgetMs && m.length < 20)) {
      f.push(timed(() => { if (readFileSync(path).length !== bytes) throw new Error('short readFileSync'); }));
      m.push(mapped(false).ns);
    }
    mm.destroy();
    const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
    const ratio = med(f) / med(m);
    log(`    mapped read ${(med(m) / 1e6).toFixed(1)} ms, readFileSync ${(med(f) / 1e6).toFixed(1)} ms: ${ratio.toFixed(2)}x its throughput (${m.length} reps)`);
    return {
      ns: med(m) / pages, samples: m.length, unit: 'page', name: 'NodeFile 200 MB sequential mapped read',
      ratioReadFileSync: ratio, readFileSyncNs: med(f) / pages,
      note: `${ratio.toFixed(2)}x the throughput of fs.readFileSync`,
      method: 'median of alternating repetitions (mapped read, readFileSync) in one process',
    };
  } finally {
    rmSync(path, { force: true });
  }
}
