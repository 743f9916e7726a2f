// The two memories the interpreter runs on, and the machine setup for each.
//   PlainMemory: one Uint8Array indexed by guest address (the baseline).
//   An AddressSpace of wasm-mmu: the guest's code and data are real mappings (code
//   read+exec, data anonymous read/write, faulted in on first touch), accessed through
//   load*/store*/fetch* (the TLB hit path in JavaScript, a miss faults through the core).
// Both read single bytes from a Uint8Array and wider values through a DataView
// (little-endian), so the ratio of their run times is the cost of the MMU.
import { CODE_BASE, DATA_BASE } from './program.mjs';

// Linux's uapi values (as exported by wasm-mmu).
const PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;

export class PlainMemory {
  constructor(bytes) { this.u8 = new Uint8Array(bytes); this.dv = new DataView(this.u8.buffer); }
  load8(a) { return this.u8[a]; }
  load16(a) { return this.dv.getUint16(a, true); }
  load32(a) { return this.dv.getUint32(a, true); }
  fetch32(a) { return this.dv.getUint32(a, true); }
  store8(a, v) { this.u8[a] = v; }
  store16(a, v) { this.dv.setUint16(a, v, true); }
  store32(a, v) { this.dv.setUint32(a, v, true); }
}

const round = (n) => Math.ceil(n / 4096) * 4096;

/** Bytes of data the program needs: the sieve, then the hash table. */
export function dataBytes({ sieveBytes, slots }) { return round(sieveBytes) + round(slots * 4); }

/** A plain memory holding the program. */
export function plainMachine(program, params) {
  const mem = new PlainMemory(DATA_BASE + dataBytes(params));
  mem.u8.set(program, CODE_BASE);
  return mem;
}

/** Map the program into `mm` (code r-x, data rw- anonymous), as a loader would. */
export function loadIntoAddressSpace(mm, program, params) {
  const codeLen = round(program.length);
  mm.mmap({ addr: CODE_BASE, length: codeLen, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
  mm.write(CODE_BASE, program);
  mm.mprotect(CODE_BASE, codeLen, PROT_READ | PROT_EXEC);
  mm.mmap({ addr: DATA_BASE, length: dataBytes(params), prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED });
  return mm;
}

/** The argument registers the program starts with. */
export function startRegisters(cpu, { sieveBytes, slots, keys }) {
  cpu.x[10] = sieveBytes; cpu.x[11] = DATA_BASE; cpu.x[12] = slots; cpu.x[13] = keys;
}
