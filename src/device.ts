// Device (MMIO) memory and the files that map it (LINUX-SPEC R6.3, R6.4, R6.6).
//
// Physical addresses from the end of XIP memory up are device space: no byte of it is in
// linear memory. A device registered here owns a page-aligned window of it; every access
// through a mapping of that window is a host call (assembly/host.ts mmio) that reaches the
// device's handler byte for byte, with the offsets and sizes of the access. The TLB never
// holds a device page, so each access walks and reaches the handler.
//
// A DeviceFile is what a character device is to Linux: mmap of it runs its f_op->mmap,
// which maps the window with remap_pfn_range (VM_IO | VM_PFNMAP, special PTEs, never
// refcounted), or, in 'fault' mode, only marks the VMA and lets each fault insert its pfn
// with vmf_insert_pfn. A private mapping of a device is a COW mapping: a write copies the
// page through the handler into a private RAM page (R6.6).
import type { Core } from './core.js';
import { File, type Backend, type VmFault, AS_HAS_FAULT, AS_NO_MAP_PAGES } from './file.js';
import { LinuxError } from './errors.js';
import { PAGE_SIZE, VM_FAULT_SIGBUS } from './constants.js';

/** What a device does with loads and stores to its window. Offsets are from its start. */
export interface MmioHandler {
  /** A naturally aligned load of 1, 2 or 4 bytes: its value, little-endian (unsigned). */
  read?(offset: number, size: 1 | 2 | 4): number;
  /** A naturally aligned store of 1, 2 or 4 bytes. */
  write?(offset: number, size: 1 | 2 | 4, value: number): void;
  /** Or a whole span (at most a page) at once; takes precedence over read. */
  readBytes?(offset: number, dst: Uint8Array): void;
  /** Or a whole span at once; takes precedence over write. */
  writeBytes?(offset: number, src: Uint8Array): void;
}

export interface DeviceOptions {
  /**
   * 'remap' (default): mmap maps the whole window with remap_pfn_range (R6.3), as most
   * drivers' f_op->mmap do. 'fault': mmap only marks the VMA IO|PFNMAP and each fault
   * inserts its pfn with vmf_insert_pfn (R6.4); private (COW) mappings then SIGBUS.
   */
  mapping?: 'remap' | 'fault';
}

const PHYS_LIMIT = 2 ** 40; // MAXPHYADDR

interface Region { pa: number; size: number; handler: MmioHandler }

/** Device space: the windows carved in it and the host side of every MMIO access. */
export class DeviceSpace {
  private regions: Region[] = [];
  private next: number;
  private last: Region | null = null;
  /** Physical address where device space starts (after RAM and XIP memory). */
  readonly base: number;

  /** @internal */
  constructor(private readonly core: Core, private readonly onError: (e: unknown) => void) {
    this.base = core.x.mmu_dev_base_pfn() * PAGE_SIZE;
    this.next = this.base;
  }

  /** @internal Carve a window of `size` bytes (whole pages) for `handler`. */
  add(size: number, handler: MmioHandler): Region {
    const span = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (this.next + span > PHYS_LIMIT) throw new LinuxError(28, 'createDevice', 'device space (2^40 bytes of physical address) is full');
    const r = { pa: this.next, size, handler };
    this.next += span;
    this.regions.push(r);
    return r;
  }

  /** @internal The window is gone (its physical addresses are not handed out again). */
  remove(r: Region): void {
    this.regions = this.regions.filter((x) => x !== r);
    if (this.last === r) this.last = null;
  }

  private find(pa: number): Region | null {
    const l = this.last;
    if (l && pa >= l.pa && pa < l.pa + Math.ceil(l.size / PAGE_SIZE) * PAGE_SIZE) return l;
    for (const r of this.regions) {
      if (pa >= r.pa && pa < r.pa + Math.ceil(r.size / PAGE_SIZE) * PAGE_SIZE) return (this.last = r);
    }
    return null;
  }

  /**
   * @internal The host's mmio import: `len` bytes at physical `pa`, to the device (write)
   * or from it, through linear memory at `buf`. Never throws: a handler's exception is
   * kept (Mmu.backendErrors) and the access gets -EIO. Bytes no device backs read as ones.
   */
  access(pa: number, buf: number, len: number, write: boolean): number {
    const r = this.find(pa);
    const off = r ? pa - r.pa : 0;
    const inDev = r ? Math.max(0, Math.min(len, r.size - off)) : 0;
    const data = write ? this.core.bytes().slice(buf, buf + len) : new Uint8Array(len).fill(0xff);
    let rc = 0;
    if (r && inDev > 0) {
      const h = r.handler;
      const part = data.subarray(0, inDev);
      try {
        if (write && h.writeBytes) h.writeBytes(off, part);
        else if (!write && h.readBytes) h.readBytes(off, part);
        else split(h, off, part, write);
      } catch (e) {
        this.onError(e);
        if (!write) data.fill(0xff);
        rc = -5;
      }
    }
    if (!write) this.core.bytes().set(data, buf); // a fresh view: the handler may have grown memory
    return rc;
  }
}

// Naturally aligned accesses of at most 4 bytes, as a CPU's loads and stores would be.
function split(h: MmioHandler, off: number, bytes: Uint8Array, write: boolean): void {
  for (let i = 0; i < bytes.length;) {
    const o = off + i, left = bytes.length - i;
    const size: 1 | 2 | 4 = o % 4 === 0 && left >= 4 ? 4 : o % 2 === 0 && left >= 2 ? 2 : 1;
    if (write) {
      let v = 0;
      for (let k = size - 1; k >= 0; k--) v = v * 256 + bytes[i + k];
      h.write?.(o, size, v);
    } else {
      let v = h.read ? h.read(o, size) : 2 ** (8 * size) - 1;
      if (!Number.isFinite(v)) v = 0;
      v = ((Math.trunc(v) % 2 ** (8 * size)) + 2 ** (8 * size)) % 2 ** (8 * size);
      for (let k = 0; k < size; k++) { bytes[i + k] = v % 256; v = Math.floor(v / 256); }
    }
    i += size;
  }
}

/** The vm_operations of a DeviceFile. */
class DeviceOps implements Backend {
  file!: DeviceFile;
  size(): number { return this.file.size; }
  readPage(): number { return 0; } // never used: a device has no page cache
  fault(vmf: VmFault): number { return this.file.fault(vmf); }
}

/** A device file: mapping it maps the device's MMIO window (like /dev/fb0 or a UIO device). */
export class DeviceFile extends File {
  /** @internal use mmu.createDevice() */
  constructor(private readonly kx: Core, id: number, ops: DeviceOps, private readonly space: DeviceSpace,
              private readonly region: Region, readonly mode: 'remap' | 'fault', onClose: (f: File) => void) {
    super(kx, id, ops, onClose);
    ops.file = this;
  }

  /** Physical address of the device's window. */
  get pa(): number { return this.region.pa; }
  /** Its first frame. */
  get pfn(): number { return this.region.pa / PAGE_SIZE; }
  /** Pages of the window. */
  get windowPages(): number { return Math.ceil(this.region.size / PAGE_SIZE); }
  get handler(): MmioHandler { return this.region.handler; }

  /** @internal f_op->mmap: map [pgoff, pgoff + pages) of the window. 0 or -errno. */
  mmapHook(mm: number, addr: number, length: number, pgoff: number): number {
    if (pgoff + length / PAGE_SIZE > this.windowPages) return -22; // the driver refuses: EINVAL
    if (this.mode === 'fault') return this.kx.x.mm_special_mmap(mm, addr, 2);
    const r = this.kx.x.mm_remap_pfn_range(mm, addr, this.pfn + pgoff, length);
    return r < 0 ? r : this.kx.x.mm_special_mmap(mm, addr, 0);
  }

  /** ->fault: in 'fault' mode the page's pfn (R6.4); with remap_pfn_range nothing is missing. */
  fault(vmf: VmFault): number {
    if (this.mode !== 'fault' || vmf.pgoff >= this.windowPages) return VM_FAULT_SIGBUS;
    return vmf.insertPfn(this.pfn + vmf.pgoff);
  }

  /** Close the file (it must be unmapped); the window stops answering. */
  override close(discard = false): void {
    super.close(discard);
    this.space.remove(this.region);
  }
}

/** @internal mmu.createDevice(). */
export function createDevice(core: Core, space: DeviceSpace, size: number, handler: MmioHandler, opts: DeviceOptions,
                             register: (make: (onClose: (f: File) => void) => DeviceFile) => DeviceFile): DeviceFile {
  if (!Number.isInteger(size) || size <= 0 || size > 2 ** 36) throw new RangeError(`device size must be an integer in [1, 2^36], got ${size}`);
  if (handler === null || typeof handler !== 'object') throw new RangeError('a device needs a handler object (read/write or readBytes/writeBytes)');
  const mode = opts.mapping ?? 'remap';
  if (mode !== 'remap' && mode !== 'fault') throw new RangeError(`mapping must be 'remap' or 'fault', got ${String(mode)}`);
  const region = space.add(size, handler);
  const id = core.x.file_open(size, AS_HAS_FAULT | AS_NO_MAP_PAGES);
  if (id < 0) {
    space.remove(region);
    throw new LinuxError(23, 'createDevice', 'too many open files');
  }
  return register((onClose) => new DeviceFile(core, id, new DeviceOps(), space, region, mode, onClose));
}

/** @internal mmu.remapPfnRange(). */
export function remapPfnRange(core: Core, mm: number, addr: number, pfn: number, size: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= 2 ** 28) throw new RangeError(`pfn must be an integer in [0, 2^28), got ${pfn}`);
  if (!Number.isInteger(addr) || addr < 0 || !Number.isInteger(size) || size <= 0) throw new RangeError('addr and size must be integers, size > 0');
  const r = core.x.mm_remap_pfn_range(mm, addr, pfn, size);
  if (r < 0) throw new LinuxError(-r, 'remap_pfn_range');
}

/** @internal mmu.vmInsertPage(). */
export function vmInsertPage(core: Core, mm: number, addr: number, pfn: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || !Number.isInteger(addr) || addr < 0) throw new RangeError('addr and pfn must be non-negative integers');
  const r = core.x.mm_vm_insert_page(mm, addr, pfn);
  if (r < 0) throw new LinuxError(-r, 'vm_insert_page');
}
