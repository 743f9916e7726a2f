// Typed errors: what Linux would deliver, as JavaScript exceptions.
import { ERRNO, type ErrnoName } from './constants.js';

const ERRNO_NAMES: Record<number, ErrnoName> = Object.fromEntries(
  Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoName]),
) as Record<number, ErrnoName>;

/** One line saying what a backend's error was (for messages; the error itself is `cause`). */
export function describeCause(e: unknown): string {
  if (e instanceof Error) return e.message ? `${e.name}: ${e.message}` : e.name;
  return `${typeof e === 'string' ? JSON.stringify(e) : String(e)} was thrown`;
}

/**
 * A system call failed; `code` is Linux's errno name and `errno` its number. When a
 * backend caused it (an I/O error: EIO from msync, fsync, pwrite …), `cause` is the
 * backend's error and the message says it.
 */
export class LinuxError extends Error {
  readonly code: ErrnoName;
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string, detail?: string, cause?: unknown) {
    const code = ERRNO_NAMES[errno] ?? ('EINVAL' as ErrnoName);
    const why = detail ?? (cause !== undefined ? `the backend failed: ${describeCause(cause)}` : undefined);
    super(`${syscall}: ${code}${why ? ` (${why})` : ''}`, cause !== undefined ? { cause } : undefined);
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

/**
 * The si_code of a SIGBUS, as x86-64 Linux's do_sigbus sets it for a user page fault:
 * BUS_MCEERR_AR for a poisoned page (VM_FAULT_HWPOISON), BUS_ADRERR for every other
 * VM_FAULT_SIGBUS — past EOF and a failed read alike. (BUS_OBJERR is never produced.)
 */
export type BusCode = 'BUS_ADRERR' | 'BUS_MCEERR_AR';
/**
 * SIGBUS: e.g. beyond the end of a mapped file, or an I/O error reading it. When a
 * backend's failure caused it (readPage threw or returned nonsense, fault() returned no
 * VM_FAULT_* value, an HTTP request failed …), `cause` is that error and the message says it.
 */
export class BusError extends Error {
  readonly signal = 'SIGBUS';
  constructor(readonly address: number, readonly code: BusCode = 'BUS_ADRERR', detail?: string, cause?: unknown) {
    const why = detail ?? (cause !== undefined ? `the backend failed: ${describeCause(cause)}` : undefined);
    super(`SIGBUS (${code}) at 0x${address.toString(16)}${why ? `: ${why}` : ''}`, cause !== undefined ? { cause } : undefined);
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

/** A value as an error message shows it: a string quoted and named as one ('4096' is not 4096). */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}n`;
  if (v !== null && typeof v === 'object') return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
  return String(v);
}

export function errnoName(errno: number): ErrnoName | undefined {
  return ERRNO_NAMES[errno];
}
