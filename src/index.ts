// wasm-mmu: Linux's MMU and page-fault path in WebAssembly. The public API.
export { createMmu, Mmu, PhysicalMemory, HardwareTlb, MemorySwap } from './mmu.js';
export type { MmuOptions, WalkOptions, WalkResult, MmuStats, SwapDevice } from './mmu.js';
export { TlbView } from './tlb-view.js';
export { AddressSpace } from './address-space.js';
export type { MmapOptions, PageInfo, VmaInfo, SmapsEntry } from './address-space.js';
export { File, MemoryFile, VmFault } from './file.js';
export type { Backend, OpenOptions, CachedPage } from './file.js';
export { FetchFile, isAsyncBackend, READ_AGAIN } from './fetch-file.js';
export type { AsyncBackend, FetchFileOptions, FetchFileRequest } from './fetch-file.js';
export { XipMemory, XipFile } from './xip.js';
export type { XipRange, XipFileOptions, XipCounts } from './xip.js';
export { DeviceSpace, DeviceFile } from './device.js';
export type { MmioHandler, DeviceOptions } from './device.js';
export type { Access } from './tlb-view.js';
export { LinuxError, SegmentationFault, BusError, OutOfMemoryError, CoreCrashedError } from './errors.js';
export * from './constants.js';
