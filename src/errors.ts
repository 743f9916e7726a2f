// Typed errors: what Linux would deliver, as JavaScript exceptions.
import { ERRNO, type ErrnoName } from './constants.js';

const ERRNO_NAMES: Record<number, ErrnoName> = Object.fromEntries(
  Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]),
) as Record<number, ErrnoName>;

/** A system call failed; `code` is Linux's errno name and `errno` its number. */
export class LinuxError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string, detail?: string) {
    const code = ERRNO_NAMES[errno] ?? ('EINVAL' as ErrnoName);
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'LinuxError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

export type SegvCode = 'SEGV_MAPERR' | 'SEGV_ACCERR';
/** SIGSEGV: no mapping at `address` (MAPERR) or the mapping forbids the access (ACCERR). */
export class SegmentationFault extends Error {
  readonly signal = 'SIGSEGV';
  constructor(readonly address: number, readonly code: SegvCode, readonly access?: string) {
    super(`SIGSEGV (${code}) at 0x${address.toString(16)}${access ? ` on ${access}` : ''}`);
    this.name = 'SegmentationFault';
  }
}

export type BusCode = 'BUS_ADRERR' | 'BUS_OBJERR' | 'BUS_MCEERR_AR';
/** SIGBUS: e.g. beyond the end of a mapped file, or an I/O error reading it. */
export class BusError extends Error {
  readonly signal = 'SIGBUS';
  constructor(readonly address: number, readonly code: BusCode = 'BUS_ADRERR', detail?: string) {
    super(`SIGBUS (${code}) at 0x${address.toString(16)}${detail ? `: ${detail}` : ''}`);
    this.name = 'BusError';
  }
}

/** No frame could be allocated and nothing could be reclaimed. */
export class OutOfMemoryError extends Error {
  constructor(detail = 'out of emulated RAM') {
    super(detail);
    this.name = 'OutOfMemoryError';
  }
}

/** The core trapped or aborted: the instance may be half-updated, so the MMU refuses all work. */
export class CoreCrashedError extends Error {
  constructor(readonly reason: string, cause?: unknown) {
    super(`wasm-mmu core is unusable after an internal failure: ${reason}`, cause === undefined ? undefined : { cause });
    this.name = 'CoreCrashedError';
  }
}

export function errnoName(errno: number): ErrnoName | undefined {
  return ERRNO_NAMES[errno];
}
