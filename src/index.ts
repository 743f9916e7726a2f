// wasm-mmu: Linux's MMU and page-fault path in WebAssembly. The public API.
export { createMmu, Mmu, PhysicalMemory, HardwareTlb } from './mmu.js';
export type { MmuOptions, WalkOptions, WalkResult, MmuStats } from './mmu.js';
export { TlbView } from './tlb-view.js';
export type { Access } from './tlb-view.js';
export { LinuxError, SegmentationFault, BusError, OutOfMemoryError, CoreCrashedError } from './errors.js';
export * from './constants.js';
