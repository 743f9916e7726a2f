// Shapes of conformance scenarios and observations, for runners written in TypeScript (the
// emulator runner). The canonical form is what lib/scenario.mjs normalizeScenario() returns;
// the prose is in README.md.

export type Prot = 'none' | 'r' | 'w' | 'x' | 'rw' | 'rx' | 'wx' | 'rwx';
export type Who = 'parent' | 'child';

/** What to record after a step. Faults, signal, errno and value are always recorded. */
export interface Expect {
  maps: string[];       // map ids whose per-page state is recorded
  softDirty: boolean;   // also record pagemap bit 55 per page
  mlocked: boolean;     // also record PG_mlocked per present page (kpageflags bit 33)
  vmlck: boolean;       // also record VmLck (KiB) of the process
  referenced?: true;    // also record each map's smaps Referenced: (KiB), seed 001
}

interface StepBase { in: Who; expect?: Expect }

export type Step = StepBase & (
  | { op: 'mmap'; id: string; pages: number; prot: Prot; flags: 'private' | 'shared'; anon: boolean;
      fileOffsetPages: number; align: number; populate: boolean; locked: boolean }
  | { op: 'munmap' | 'munlock'; map: string; from: number; pages: number }
  | { op: 'touch'; map: string; page: number; access: 'read' | 'write'; offset: number; value?: number }
  | { op: 'touchRange'; map: string; from: number; to: number; access: 'read' | 'write'; offset: number; value?: number }
  | { op: 'fork' | 'exit' | 'evict' | 'clearRefs' | 'nop' | 'munlockall' | 'fsync' }
  // flags: MCL_* names joined by "|": "current", "future", "current|future|onfault", …
  | { op: 'mlockall'; flags: string }
  | { op: 'mprotect'; map: string; from: number; pages: number; prot: Prot }
  | { op: 'madvise'; map: string; from: number; pages: number; advice: string }
  | { op: 'mlock' | 'mlock2'; map: string; from: number; pages: number; onfault: boolean }
  | { op: 'msync'; map: string; from: number; pages: number; sync: 'sync' | 'async' | 'invalidate' }
  | { op: 'truncate'; pages?: number; bytes?: number }
  | { op: 'fadvise'; advice: string; from: number; pages: number }
  | { op: 'cache'; from: number; to: number }
  | { op: 'pwrite'; page: number; offset: number; value: number }
  | { op: 'pread'; page: number; offset: number }
);

export interface Scenario {
  name: string;
  rules: string[];
  description: string;
  requires: ('softDirty' | 'zeroPage' | 'noZeroPage' | 'swap' | 'dax')[];
  file?: { pages: number; bytesInLastPage: number; cached: boolean; cachedRange?: [number, number] };
  steps: Step[];
  mapSlots: Record<string, number>; // added by normalizeScenario: map id -> slot (0..30)
}

export interface MapObservation {
  state: string;      // one char per page: . A a F f Z S G
  pfn: string;        // one char per page: . C = n
  softDirty?: string; // d or - per page
  mlocked?: string;   // . L or - per page
  referenced?: number; // smaps Referenced: of the map's VMA, KiB (expect.referenced)
}

export interface Observation {
  step: number;       // index into scenario.steps
  op: Step['op'];
  in: Who;
  minflt: number | null;  // null: not measured (fork, exit, clearRefs)
  majflt: number | null;
  signal: 'SIGSEGV' | 'SIGBUS' | null;
  sigCode: 'SEGV_MAPERR' | 'SEGV_ACCERR' | 'BUS_ADRERR' | string | null;
  sigPage: number | null; // page index (in the step's map) of the faulting address
  errno: string | null;   // 'EINVAL', 'ENOMEM', 'EFAULT', …
  value: number | null;   // byte read by touch(read) / pread
  vmlck?: number;         // KiB, when expect.vmlck
  maps: Record<string, MapObservation>;
}

export interface ObservationDoc {
  scenario: string;
  source: 'kernel' | 'emulator';
  kernel?: string;
  observations: Observation[];
}

export interface GoldenDoc {
  scenario: string;
  rules: string[];
  kernel: string;
  scenarioHash: string;
  skipped?: string;
  runs?: number;
  repeatable?: boolean;
  unstable?: { step: number; field: string; map?: string; page?: number }[];
  observations?: Observation[];
}

export interface Mismatch {
  step: number;
  in: Who;
  op: string;
  field: string;
  map?: string;
  page?: number;
  kernel: unknown;
  emulator: unknown;
}
