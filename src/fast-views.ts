// Typed-array views for the per-access fast path (issue 16): the TLB as f64 tags and i32
// words (the addend), its int32 side table (key32 tags and the addend: the usual hit), all of linear memory as bytes and as a DataView (a hit reads at
// va + addend), and all of RAM + XIP as bytes indexed by physical address (Mmu.ram, the
// miss path). Shared by every AddressSpace of a core and by Mmu.ram; for the first core of
// the process also captured as constants by AddressSpace's hit-method subclass (spaceClass,
// address-space.ts fastClass). The memory is made at its final size (core-memory.ts), so
// they normally live as long as the core; growth past that detaches them (length 0) and
// get() hands out fresh ones (and spaceClass is chosen again). The layout they read is
// documented in assembly/tlb.ts.
import type { Core } from './core.js';
import { CoreCrashedError } from './errors.js';

export class FastViews {
  tags = new Float64Array(0);
  words = new Int32Array(0);
  /** The int32 side table, 4 words per slot: key32 read, write, exec, addend (assembly/tlb.ts). */
  side = new Int32Array(0);
  /** The same table from +0, +4, +8, +12 of its first slot, all of one length: indexed by
   *  slot * 4 they read one field each, and V8 checks that one index once for all four. */
  sideRead = new Int32Array(0);
  sideWrite = new Int32Array(0);
  sideExec = new Int32Array(0);
  sideAddend = new Int32Array(0);
  ram = new Uint8Array(0);
  linear = new Uint8Array(0);
  linearView = new DataView(new ArrayBuffer(0));
  mask = 0;
  /** mask << 2: the side table's index of va is (va >>> 10) & mask4. */
  mask4 = 0;
  /** AddressSpace's subclass whose hit methods close over these views, null for none, undefined: not chosen yet (address-space.ts fastClass). */
  spaceClass: unknown = undefined;
  /** Holders of copies of these views, told to drop them when the core dies. */
  readonly users = new Set<{ fastDrop(): void }>();
  private constructor(private readonly core: Core) {
    core.onDeath(() => {
      this.tags = new Float64Array(0); this.words = new Int32Array(0); this.ram = new Uint8Array(0); this.linear = new Uint8Array(0);
      this.side = this.sideRead = this.sideWrite = this.sideExec = this.sideAddend = new Int32Array(0);
      this.spaceClass = null;
      for (const u of this.users) u.fastDrop();
    });
  }

  private static readonly byCore = new WeakMap<Core, FastViews>();

  /** The views of `core`, fresh if memory grew since they were made. Throws if the core died. */
  static get(core: Core): FastViews {
    let v = FastViews.byCore.get(core);
    if (v === undefined) { v = new FastViews(core); FastViews.byCore.set(core, v); }
    if (core.dead !== null) throw new CoreCrashedError(core.dead);
    if (v.ram.length === 0 || v.ram.buffer !== core.x.memory.buffer) v.make();
    return v;
  }

  private make(): void {
    const x = this.core.x;
    const buf = x.memory.buffer;
    const entries = x.mmu_tlb_entries();
    // usize exports arrive as signed i32: read them unsigned (above 2 GiB).
    const tlb = x.mmu_tlb_base() >>> 0;
    this.mask = entries - 1;
    this.mask4 = (entries - 1) << 2;
    this.spaceClass = undefined;
    this.tags = new Float64Array(buf, tlb, entries * 8);
    this.words = new Int32Array(buf, tlb, entries * 16);
    const side = tlb + entries * 64; // right after the entries (assembly/tlb.ts)
    this.side = new Int32Array(buf, side, entries * 4);
    this.sideRead = new Int32Array(buf, side, entries * 4 - 3);
    this.sideWrite = new Int32Array(buf, side + 4, entries * 4 - 3);
    this.sideExec = new Int32Array(buf, side + 8, entries * 4 - 3);
    this.sideAddend = new Int32Array(buf, side + 12, entries * 4 - 3);
    this.linear = new Uint8Array(buf);
    this.linearView = new DataView(buf);
    // RAM, then execute-in-place memory: both at linear ram_base + pa (assembly/config.ts).
    this.ram = new Uint8Array(buf, x.mmu_ram_base() >>> 0, x.mmu_dev_base_pfn() * 4096);
  }
}
