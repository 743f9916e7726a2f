// The TLB as the host sees it: a typed-array view over the core's table, so a hit can be
// served in JavaScript with no call into Wasm (QEMU's fast path: tag compare plus frame).
// The layout is documented in assembly/tlb.ts.
import type { Core } from './core.js';
import { CoreCrashedError } from './errors.js';

export type Access = 'read' | 'write' | 'exec';
export const ACCESS_CODE: Record<Access, number> = { read: 0, write: 1, exec: 2 };
const KEY_SCALE = 68719476736; // 2^36

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
    this.f64 = new Float64Array(buf, this.base, this.entries * 4);
    this.u32 = new Uint32Array(buf, this.base, this.entries * 8);
  }

  /**
   * The physical address of `va` for `access` (0 read, 1 write, 2 exec) if the TLB holds it,
   * else -1. `user` requires a user-accessible entry. Never calls into Wasm.
   */
  lookup(asid: number, va: number, access: number, user = true): number {
    if (this.f64.length === 0) this.refresh(); // memory grew (views detached), or the core died
    const vpn = Math.floor(va / 4096);
    const i = vpn & this.mask;
    if (this.f64[i * 4 + access] !== asid * KEY_SCALE + vpn) return -1;
    if (user && (this.u32[i * 8 + 7] & 1) === 0) return -1;
    return this.u32[i * 8 + 6] * 4096 + (va - vpn * 4096);
  }

  /** The valid entries, decoded (for inspection and teaching). */
  dump(): Array<{ slot: number; asid: number; va: number; pfn: number; read: boolean; write: boolean; exec: boolean; user: boolean; large: boolean }> {
    if (this.core.dead !== null) throw new CoreCrashedError(this.core.dead);
    if (this.f64.length === 0) this.refresh();
    const out = [];
    for (let i = 0; i < this.entries; i++) {
      const r = this.f64[i * 4], w = this.f64[i * 4 + 1], x = this.f64[i * 4 + 2];
      const key = r >= 0 ? r : w >= 0 ? w : x;
      if (key < 0) continue;
      const asid = Math.floor(key / KEY_SCALE);
      const vpn = key - asid * KEY_SCALE;
      const flags = this.u32[i * 8 + 7];
      out.push({ slot: i, asid, va: vpn * 4096, pfn: this.u32[i * 8 + 6], read: r >= 0, write: w >= 0, exec: x >= 0,
        user: (flags & 1) !== 0, large: (flags & 2) !== 0 });
    }
    return out;
  }
}
