// The TLB as the host sees it: a typed-array view over the core's table, so a hit can be
// served in JavaScript with no call into Wasm (QEMU's fast path: tag compare plus frame).
// The layout is documented in assembly/tlb.ts.
import type { Core } from './core.js';
import { CoreCrashedError } from './errors.js';

export type Access = 'read' | 'write' | 'exec';
export const ACCESS_CODE: Record<Access, number> = { read: 0, write: 1, exec: 2 };

/** The access code (0 read, 1 write, 2 exec) of a name or a code; RangeError for anything else. */
export function accessCodeOf(access: Access | number): number {
  if (access === 0 || access === 1 || access === 2) return access;
  const c = typeof access === 'string' && Object.hasOwn(ACCESS_CODE, access) ? ACCESS_CODE[access] : undefined;
  if (c === undefined) throw new RangeError(`access must be 'read', 'write', 'exec' or 0, 1, 2, got ${String(access)}`);
  return c;
}

/** Entry geometry of assembly/tlb.ts, in f64 and u32 units. */
export const TLB_F64_PER_ENTRY = 8;
export const TLB_PFN_U32 = 6;
export const TLB_FLAGS_U32 = 7;
export const TLB_KERN_F64 = 4;

export class TlbView {
  private f64!: Float64Array;
  private u32!: Uint32Array;
  private base = 0;
  readonly entries: number;
  readonly mask: number;
  constructor(private readonly core: Core) {
    this.entries = core.x.mmu_tlb_entries();
    this.mask = this.entries - 1;
    this.refresh();
    // A dead core's table may be half-updated: empty views send the next lookup to
    // refresh(), which refuses. The hit path keeps one length test for both cases.
    core.onDeath(() => { this.f64 = new Float64Array(0); this.u32 = new Uint32Array(0); });
  }

  private refresh(): void {
    if (this.core.dead !== null) throw new CoreCrashedError(this.core.dead);
    const buf = this.core.x.memory.buffer;
    // A usize export arrives as a signed i32: above 2 GiB it must be read unsigned.
    this.base = this.core.x.mmu_tlb_base() >>> 0;
    this.f64 = new Float64Array(buf, this.base, this.entries * TLB_F64_PER_ENTRY);
    this.u32 = new Uint32Array(buf, this.base, this.entries * TLB_F64_PER_ENTRY * 2);
  }

  /**
   * The physical address of `va` for `access` ('read' | 'write' | 'exec', or 0 | 1 | 2) if
   * the TLB holds it, else -1. `user` asks for a user-mode access (the user tags), else a
   * supervisor one. Never calls into Wasm. RangeError for any other access.
   */
  lookup(asid: number, va: number, access: Access | number, user = true): number {
    const a = access === 0 || access === 1 || access === 2 ? access : accessCodeOf(access);
    if (this.f64.length === 0) this.refresh(); // memory grew (views detached), or the core died
    const off = va & 4095;
    const j = ((va >>> 12) & this.mask) * TLB_F64_PER_ENTRY; // bits 12..31 of va: all a slot uses (<= 2^20 entries)
    // Keys are integers in [0, 2^48): a bad va (non-integer, negative, too big) never matches.
    if (this.f64[j + (user ? 0 : TLB_KERN_F64) + a] !== va + ((asid & 4095) - off)) return -1;
    return this.u32[2 * j + TLB_PFN_U32] * 4096 + off;
  }

  /** The valid entries, decoded (for inspection and teaching). `read`/`write`/`exec` are the supervisor-mode rights; `user` says whether user mode may use them. */
  dump(): Array<{ slot: number; asid: number; va: number; pfn: number; read: boolean; write: boolean; exec: boolean; user: boolean; large: boolean }> {
    if (this.core.dead !== null) throw new CoreCrashedError(this.core.dead);
    if (this.f64.length === 0) this.refresh();
    const out = [];
    for (let i = 0; i < this.entries; i++) {
      const j = i * TLB_F64_PER_ENTRY + TLB_KERN_F64;
      const r = this.f64[j], w = this.f64[j + 1], x = this.f64[j + 2];
      if (r < 0) continue;
      const asid = r % 4096;
      const flags = this.u32[i * 16 + TLB_FLAGS_U32];
      out.push({ slot: i, asid, va: r - asid, pfn: this.u32[i * 16 + TLB_PFN_U32], read: true, write: w >= 0, exec: x >= 0,
        user: (flags & 1) !== 0, large: (flags & 2) !== 0 });
    }
    return out;
  }
}
