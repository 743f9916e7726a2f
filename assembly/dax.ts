// What the fault path needs to know of DAX / XIP fault handlers (seed 004, R7.1):
//
// - the i_mmap lock of each file, as a fault sees it. A handler that performed the COW
//   itself may return VM_FAULT_LOCKED with no page: it then holds its mapping's i_mmap
//   lock instead of a page lock, and the core (__do_fault / do_cow_fault) releases that
//   lock, never a page lock. The core is single-threaded, so the lock is a per-file flag
//   plus counters a test can read; a lock still held when the fault ends is released by
//   do_fault and counted as leaked (a backend bug, e.g. it threw after locking).
// - whether the handler mapped the cow page itself (finish_fault through vmf_finish_cow):
//   do_cow_fault then owns nothing more, whatever the handler returned.

import { MAX_FILES } from "./mapping";

const held: usize = memory.data(MAX_FILES);
let nLocks: f64 = 0;
let nUnlocks: f64 = 0;
let nLeaked: f64 = 0;
let cowDone: bool = false;

@inline export function immap_is_locked(file: u32): bool {
  return file < MAX_FILES && load<u8>(held + <usize>file) != 0;
}

// Take `file`'s i_mmap lock for the running fault; false if it is already held (a second
// taker would deadlock in Linux).
export function immap_lock(file: u32): bool {
  if (file == 0 || file >= MAX_FILES || immap_is_locked(file)) return false;
  store<u8>(held + <usize>file, 1);
  nLocks++;
  return true;
}

export function immap_unlock(file: u32): void {
  if (!immap_is_locked(file)) return;
  store<u8>(held + <usize>file, 0);
  nUnlocks++;
}

// End of a fault on `file`: a lock the handler left behind is released and counted.
export function immap_fault_end(file: u32): void {
  if (!immap_is_locked(file)) return;
  nLeaked++;
  immap_unlock(file);
}

// 0 locks taken, 1 unlocks, 2 locks found still held at the end of a fault.
export function immap_stat(what: i32): f64 {
  if (what == 0) return nLocks;
  if (what == 1) return nUnlocks;
  if (what == 2) return nLeaked;
  return -1;
}

export function set_cow_done(): void { cowDone = true; }
// Whether the handler mapped the cow page since the last call (and forget it).
export function take_cow_done(): bool {
  const d = cowDone;
  cowDone = false;
  return d;
}
