// The per-page observation rules, written once in JS for the emulator runner (the kernel
// harness implements the same rules in C: state_char, sample_all, record_map).
//
// A page entry is { present, swapped?, guard?, file, exclusive, pfn, pageCache? }:
//   file       pagemap bit 61 (page-cache or shmem page)
//   exclusive  pagemap bit 56 (that page is mapped by exactly one PTE in the system)
//   pageCache  the PFN is the page-cache page of this page's file offset (file mappings only)

/**
 * One character of a mapping's `state` string (see README "Per-page state"). `zeroPfn`: the
 * shared zero page's PFN, or null when there is none. PFN 0 is a valid frame (the emulator's
 * zero page is frame 0), so "none" is null, never 0.
 */
export function stateChar(e, zeroPfn = null) {
  if (!e.present) return e.guard ? 'G' : e.swapped ? 'S' : '.';
  if (zeroPfn != null && zeroPfn >= 0 && e.pfn === zeroPfn && !e.file) return 'Z';
  if (e.file) return e.exclusive ? 'F' : 'f';
  return e.exclusive ? 'A' : 'a';
}

/**
 * PFN identity history of one process. Call sample() for every mapping after every step
 * (and whenever the process resumes), record() at an expect; clone() at fork (the child
 * inherits the parent's history).
 */
export class PfnTracker {
  constructor(hist = new Map()) {
    this.hist = hist; // map id -> { pfn: number[], stable: boolean[] }
  }

  clone() {
    const h = new Map();
    for (const [id, v] of this.hist) h.set(id, { pfn: [...v.pfn], stable: [...v.stable] });
    return new PfnTracker(h);
  }

  /** A new mmap of `id` forgets everything known about it. */
  reset(id, pages) {
    this.hist.set(id, { pfn: new Array(pages).fill(0), stable: new Array(pages).fill(false) });
  }

  /** Between expects: a page stays stable only while present with the same PFN. */
  sample(id, entries) {
    const h = this.hist.get(id);
    if (!h) return;
    entries.forEach((e, i) => {
      if (!e.present || e.pfn !== h.pfn[i]) h.stable[i] = false;
    });
  }

  /**
   * Returns { state, pfn } for an expect and makes it the new reference point.
   * isFileMapping: the mapping is file-backed (not anonymous, not shared-anonymous).
   */
  record(id, entries, { isFileMapping, zeroPfn = null }) {
    if (!this.hist.has(id)) this.reset(id, entries.length);
    const h = this.hist.get(id);
    let state = '';
    let pfn = '';
    entries.forEach((e, i) => {
      state += stateChar(e, zeroPfn);
      if (!e.present) pfn += '.';
      else if (isFileMapping && e.file && e.pageCache !== false) pfn += 'C';
      else if (h.stable[i] && h.pfn[i] === e.pfn) pfn += '=';
      else pfn += 'n';
      h.pfn[i] = e.present ? e.pfn : 0;
      h.stable[i] = !!e.present;
    });
    return { state, pfn };
  }
}
