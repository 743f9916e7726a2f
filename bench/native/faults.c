/*
 * bench/native/faults.c: the benchmark loops of bench/cases/, run on the real kernel
 * of this machine, so the emulator's numbers can be printed beside the kernel's.
 *
 * Written fresh for wasm-mmu (MIT). The shape is will-it-scale's (map a region, store one
 * byte per page, unmap, repeat), but no will-it-scale code is used.
 *
 * Usage: faults <region_mib> <budget_ms_per_case> <dir for the temp file>
 * Prints one JSON object on stdout: per case the median ns per operation (per page for the
 * fault cases), the fastest repetition, the repetitions run and the minor faults per page
 * counted by getrusage on a checking run. Diagnostics go to stderr.
 *
 * Pinned configuration: 4 KiB pages only (every region gets MADV_NOHUGEPAGE), and the file
 * cases run over a page cache of order-0 folios (the file is written, dropped with
 * POSIX_FADV_DONTNEED, and re-read with 4 KiB preads under POSIX_FADV_RANDOM: a file
 * written in big writes lands in large folios, which changes what fault-around maps).
 * Fault-around is the kernel's debugfs knob; it is changed only when the file is writable,
 * and restored before exit. When it is not, the "fault-around off" case is reported as n/a.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAX_REPS 1000
#define FAULT_AROUND_KNOB "/sys/kernel/debug/fault_around_bytes"

static size_t region;          /* bytes mapped per repetition */
static size_t pages;           /* region / PAGE */
static double budget_ns;       /* time spent per case (after one warm-up repetition) */
static int file_fd = -1;       /* the order-0 page-cache file */
static long saved_fault_around = -1; /* knob value to restore, -1 = untouched */
static volatile unsigned long sink; /* keeps read loops from being optimised away */

/* Monotonic time in ns. */
static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Minor faults of this process so far. */
static long minflt(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

static void die(const char *what) {
  fprintf(stderr, "faults: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- the fault-around knob (debugfs); only touched when writable, always restored ---- */

/* The knob's value, or -1 if it cannot be read (debugfs not mounted, no permission). */
static long read_fault_around(void) {
  FILE *f = fopen(FAULT_AROUND_KNOB, "r");
  long v = -1;
  if (!f) return -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

/* Set the knob; returns 0 on success, -1 if it is not writable. Remembers the first value. */
static int set_fault_around(long bytes) {
  long old = read_fault_around();
  if (old < 0 || access(FAULT_AROUND_KNOB, W_OK) != 0) return -1;
  FILE *f = fopen(FAULT_AROUND_KNOB, "w");
  if (!f) return -1;
  int ok = fprintf(f, "%ld\n", bytes) > 0;
  if (fclose(f) != 0) ok = 0;
  if (!ok) return -1;
  if (saved_fault_around < 0) saved_fault_around = old;
  return read_fault_around() == bytes ? 0 : -1;
}

static void restore_fault_around(void) {
  if (saved_fault_around < 0) return;
  FILE *f = fopen(FAULT_AROUND_KNOB, "w");
  if (f) {
    fprintf(f, "%ld\n", saved_fault_around);
    fclose(f);
  }
  saved_fault_around = -1;
}

static void on_signal(int sig) {
  restore_fault_around();
  signal(sig, SIG_DFL);
  raise(sig);
}

/* ---- regions ---- */

/* A private anonymous region of `len` bytes, 4 KiB pages only. */
static char *map_anon(size_t len) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap anonymous");
  if (madvise(p, len, MADV_NOHUGEPAGE) != 0) die("madvise NOHUGEPAGE");
  return p;
}

/* A mapping of the temp file, 4 KiB pages only. */
static char *map_file(size_t len, int prot, int flags) {
  char *p = mmap(NULL, len, prot, flags, file_fd, 0);
  if (p == MAP_FAILED) die("mmap file");
  if (madvise(p, len, MADV_NOHUGEPAGE) != 0) die("madvise NOHUGEPAGE");
  return p;
}

/* Store one byte at the start of every page (a write fault on each). */
static void touch_write(char *p, size_t len) {
  for (size_t off = 0; off < len; off += PAGE) ((volatile char *)p)[off] = 0;
}

/* Load one byte from the start of every page (a read fault on each, or fault-around). */
static void touch_read(const char *p, size_t len) {
  unsigned long s = 0;
  for (size_t off = 0; off < len; off += PAGE) s += ((const volatile char *)p)[off];
  sink += s;
}

/*
 * The temp file: `len` bytes of a non-zero pattern in `dir`, unlinked at once, then dropped
 * from the page cache and read back 4 KiB at a time so the cache holds order-0 folios.
 */
static void make_file(const char *dir, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/wasm-mmu-bench-XXXXXX", dir);
  file_fd = mkstemp(path);
  if (file_fd < 0) die("mkstemp");
  unlink(path);
  char *buf = malloc(1 << 20);
  if (!buf) die("malloc");
  for (size_t i = 0; i < (1 << 20); i++) buf[i] = (char)(i * 7 + 1);
  for (size_t off = 0; off < len; off += 1 << 20) {
    size_t n = len - off < (1 << 20) ? len - off : (1 << 20);
    if (pwrite(file_fd, buf, n, (off_t)off) != (ssize_t)n) die("pwrite");
  }
  if (fsync(file_fd) != 0) die("fsync");
  if (posix_fadvise(file_fd, 0, 0, POSIX_FADV_DONTNEED) != 0) die("fadvise DONTNEED");
  if (posix_fadvise(file_fd, 0, 0, POSIX_FADV_RANDOM) != 0) die("fadvise RANDOM");
  for (size_t off = 0; off < len; off += PAGE) {
    if (pread(file_fd, buf, PAGE, (off_t)off) != (ssize_t)PAGE) die("pread");
  }
  free(buf);
}

/* ---- timing ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct result {
  double median, min;   /* ns per operation */
  int reps;
  double faults_per_op; /* minor faults per operation on the checking run; < 0 = not counted */
};

/*
 * Run `rep` once to warm up (its fault count is the check), then repeatedly until the
 * budget is spent (at least 3, at most MAX_REPS times). `rep` returns the ns it timed
 * and the operations it did; the result is per operation.
 */
typedef double (*rep_fn)(size_t *ops, long *faults);

static struct result run_case(rep_fn rep) {
  static double per_op[MAX_REPS];
  struct result r = {0, 0, 0, -1};
  size_t ops = 0;
  long faults = -1;
  rep(&ops, &faults);
  if (faults >= 0 && ops > 0) r.faults_per_op = (double)faults / (double)ops;
  double start = now_ns();
  int n = 0;
  while (n < MAX_REPS && (n < 3 || now_ns() - start < budget_ns)) {
    double ns = rep(&ops, &faults);
    per_op[n++] = ns / (double)ops;
  }
  qsort(per_op, (size_t)n, sizeof per_op[0], cmp_double);
  r.median = n % 2 ? per_op[n / 2] : (per_op[n / 2 - 1] + per_op[n / 2]) / 2;
  r.min = per_op[0];
  r.reps = n;
  return r;
}

/* ---- the cases: each times one repetition and reports its operation count ---- */

#define REF_ITERS 200000
static char ref_buf[2 * PAGE] __attribute__((aligned(64)));

/* memset of one 4 KiB page: the reference for a zeroing fault (beside memory.fill). */
static double rep_memset(size_t *ops, long *faults) {
  double t0 = now_ns();
  for (int i = 0; i < REF_ITERS; i++) {
    memset(ref_buf, i, PAGE);
    __asm__ volatile("" ::"r"(ref_buf) : "memory");
  }
  double t1 = now_ns();
  *ops = REF_ITERS;
  *faults = -1;
  return t1 - t0;
}

/* memcpy of one 4 KiB page: the reference for a COW copy (beside memory.copy). */
static double rep_memcpy(size_t *ops, long *faults) {
  double t0 = now_ns();
  for (int i = 0; i < REF_ITERS; i++) {
    memcpy(ref_buf + PAGE, ref_buf, PAGE);
    __asm__ volatile("" ::"r"(ref_buf) : "memory");
  }
  double t1 = now_ns();
  *ops = REF_ITERS;
  *faults = -1;
  return t1 - t0;
}

/* A populated region for the hardware-TLB references. */
static char *tlb_region;
#define TLB_HIT_PAGES 256
#define TLB_ITERS 4000000

/* A load from one of 256 present pages, round robin: the CPU's own TLB hit. Each page is
 * read at a different cache line so the loads do not fight over one L1 set. */
static double rep_tlb_hit(size_t *ops, long *faults) {
  unsigned long s = 0;
  double t0 = now_ns();
  for (size_t i = 0; i < TLB_ITERS; i++) s += ((const volatile char *)tlb_region)[(i & (TLB_HIT_PAGES - 1)) * (PAGE + 64)];
  double t1 = now_ns();
  sink += s;
  *ops = TLB_ITERS;
  *faults = -1;
  return t1 - t0;
}

/* A load from each page of the whole populated region, once: the CPU's TLB miss and page
 * walk. An approximation: paging-structure caches shorten the walk, and each load's
 * data-cache miss (and any nested-paging cost of a VM) adds to it. */
static double rep_tlb_miss(size_t *ops, long *faults) {
  double t0 = now_ns();
  touch_read(tlb_region, region);
  double t1 = now_ns();
  *ops = pages;
  *faults = -1;
  return t1 - t0;
}

/* getppid(): what one system call costs on this machine (a calibration, not a case). */
static double rep_syscall(size_t *ops, long *faults) {
  double t0 = now_ns();
  for (int i = 0; i < 100000; i++) getppid();
  double t1 = now_ns();
  *ops = 100000;
  *faults = -1;
  return t1 - t0;
}

/* page_fault1: map anonymous memory, write one byte per page, unmap. */
static double rep_anon_write(size_t *ops, long *faults) {
  long f0 = minflt();
  double t0 = now_ns();
  char *p = map_anon(region);
  touch_write(p, region);
  munmap(p, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* Anonymous read: every page maps the shared zero page. */
static double rep_anon_read(size_t *ops, long *faults) {
  long f0 = minflt();
  double t0 = now_ns();
  char *p = map_anon(region);
  touch_read(p, region);
  munmap(p, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* page_fault2: private file mapping, write one byte per page (a COW from the page cache). */
static double rep_file_private_write(size_t *ops, long *faults) {
  long f0 = minflt();
  double t0 = now_ns();
  char *p = map_file(region, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  touch_write(p, region);
  munmap(p, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* page_fault3: shared file mapping, write one byte per page (dirties the page cache). */
static double rep_file_shared_write(size_t *ops, long *faults) {
  long f0 = minflt();
  double t0 = now_ns();
  char *p = map_file(region, PROT_READ | PROT_WRITE, MAP_SHARED);
  touch_write(p, region);
  munmap(p, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* Private file read: one byte per page; per page mapped (fault-around maps most of them). */
static double rep_file_read(size_t *ops, long *faults) {
  long f0 = minflt();
  double t0 = now_ns();
  char *p = map_file(region, PROT_READ, MAP_PRIVATE);
  touch_read(p, region);
  munmap(p, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* The populated parent of the fork cases (mapped once, written once). */
static char *parent_region;

/* COW after fork: the child writes every page of the populated region; timed in the child. */
static double rep_cow_after_fork(size_t *ops, long *faults) {
  int fds[2];
  if (pipe(fds) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    long f0 = minflt();
    double t0 = now_ns();
    touch_write(parent_region, region);
    double out[2] = {now_ns() - t0, (double)(minflt() - f0)};
    if (write(fds[1], out, sizeof out) != sizeof out) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  double in[2] = {0, 0};
  if (read(fds[0], in, sizeof in) != sizeof in) die("read from child");
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  *faults = (long)in[1];
  *ops = pages;
  return in[0];
}

/* Write-protect reuse: fork, let the child exit, then the parent writes every page again. */
static double rep_wp_reuse(size_t *ops, long *faults) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) _exit(0);
  int st;
  waitpid(pid, &st, 0);
  long f0 = minflt();
  double t0 = now_ns();
  touch_write(parent_region, region);
  double t1 = now_ns();
  *faults = minflt() - f0;
  *ops = pages;
  return t1 - t0;
}

/* fork of the populated address space, timed in the parent until fork returns; per page. */
static double rep_fork(size_t *ops, long *faults) {
  double t0 = now_ns();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) _exit(0);
  double t1 = now_ns();
  int st;
  waitpid(pid, &st, 0);
  *faults = -1;
  *ops = pages;
  return t1 - t0;
}

/* mmap + munmap of one page while the address space holds as many VMAs as it may. */
static size_t probe_iters;
static double rep_mmap_munmap(size_t *ops, long *faults) {
  double t0 = now_ns();
  for (size_t i = 0; i < probe_iters; i++) {
    char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("probe mmap");
    munmap(p, PAGE);
  }
  double t1 = now_ns();
  *faults = -1;
  *ops = probe_iters;
  return t1 - t0;
}

/* Lines of /proc/self/maps: the VMAs this process holds now. */
static long count_vmas(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

static long read_long_file(const char *path) {
  FILE *f = fopen(path, "r");
  long v = -1;
  if (!f) return -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

/* ---- output ---- */

static int first_case = 1;

static void print_result(const char *id, struct result r, const char *unit) {
  printf("%s\n    \"%s\": {\"ns\": %.3f, \"min\": %.3f, \"reps\": %d, \"unit\": \"%s\"", first_case ? "" : ",",
         id, r.median, r.min, r.reps, unit);
  if (r.faults_per_op >= 0) printf(", \"faultsPerOp\": %.5f", r.faults_per_op);
  printf("}");
  first_case = 0;
  fflush(stdout);
}

static void print_na(const char *id, const char *why) {
  printf("%s\n    \"%s\": {\"na\": \"%s\"}", first_case ? "" : ",", id, why);
  first_case = 0;
  fflush(stdout);
}

/* Progress on stderr, so a human sees the run move while stdout stays pure JSON. */
static struct result timed(const char *id, rep_fn rep) {
  fprintf(stderr, "  native %-24s", id);
  struct result r = run_case(rep);
  fprintf(stderr, " %10.2f ns/op  (%d reps)\n", r.median, r.reps);
  return r;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <region_mib> <budget_ms_per_case> <tmpdir>\n", argv[0]);
    return 2;
  }
  region = (size_t)atol(argv[1]) << 20;
  pages = region / PAGE;
  budget_ns = atof(argv[2]) * 1e6;
  if (region < (2UL << 20) || budget_ns <= 0) { /* the TLB-hit loop spans 1 MiB */
    fprintf(stderr, "faults: bad arguments\n");
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  struct utsname u;
  uname(&u);
  long fab0 = read_fault_around();
  printf("{\n  \"kernel\": \"%s\",\n  \"regionBytes\": %zu,\n  \"thp\": ", u.release, region);
  {
    char thp[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
      if (!fgets(thp, sizeof thp, f)) thp[0] = 0;
      fclose(f);
    }
    thp[strcspn(thp, "\n\"\\")] = 0;
    printf("\"%s\",\n", thp);
  }
  printf("  \"faultAroundKnob\": %ld,\n  \"cases\": {", fab0);

  print_result("fill", timed("memset 4 KiB", rep_memset), "page");
  print_result("copy", timed("memcpy 4 KiB", rep_memcpy), "page");
  tlb_region = map_anon(region);
  touch_write(tlb_region, region);
  print_result("tlb_hit", timed("load, TLB hit", rep_tlb_hit), "load");
  print_result("tlb_miss", timed("load, TLB miss", rep_tlb_miss), "load");
  munmap(tlb_region, region);
  print_result("syscall", timed("getppid syscall", rep_syscall), "call");
  print_result("anon_write", timed("page_fault1", rep_anon_write), "fault");
  print_result("anon_read", timed("anonymous read", rep_anon_read), "fault");

  make_file(argv[3], region);
  print_result("file_private_write", timed("page_fault2", rep_file_private_write), "fault");
  print_result("file_shared_write", timed("page_fault3", rep_file_shared_write), "fault");

  /* Fault-around at 64 KiB: set it if we can; if the knob is unreadable, the kernel's
   * default (64 KiB) is in force unless someone changed it, and the JSON says so. */
  int fa_set = set_fault_around(65536) == 0;
  if (fa_set || fab0 < 0 || fab0 == 65536) {
    print_result("file_read_fa", timed("file read, fault-around", rep_file_read), "page");
  } else {
    print_na("file_read_fa", "fault_around_bytes is not 64 KiB and the knob is not writable");
  }
  if (set_fault_around(4096) == 0) {
    print_result("file_read_nofa", timed("file read, no fault-around", rep_file_read), "page");
  } else {
    print_na("file_read_nofa", fab0 < 0 ? "debugfs knob " FAULT_AROUND_KNOB " not present (debugfs not mounted?)"
                                        : "debugfs knob " FAULT_AROUND_KNOB " not writable");
  }
  restore_fault_around();
  close(file_fd);

  parent_region = map_anon(region);
  touch_write(parent_region, region);
  print_result("cow_fork", timed("COW after fork", rep_cow_after_fork), "fault");
  print_result("wp_reuse", timed("write-protect reuse", rep_wp_reuse), "fault");
  print_result("fork", timed("fork (per page)", rep_fork), "page");
  munmap(parent_region, region);

  /* As many one-page VMAs as max_map_count allows, leaving room for the probe: alternate
   * PROT_READ and PROT_NONE so neighbours never merge, and the probe's PROT_READ|WRITE
   * merges with neither. */
  long max_maps = read_long_file("/proc/sys/vm/max_map_count");
  if (max_maps < 0) max_maps = 65530;
  long have = count_vmas();
  long want = max_maps - have - 1;
  if (want > 65530) want = 65530;
  long made = 0;
  for (; made < want; made++) {
    void *p = mmap(NULL, PAGE, made & 1 ? PROT_NONE : PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
  }
  long total = count_vmas();
  probe_iters = budget_ns < 500e6 ? 2000 : 10000;
  print_result("mmap_munmap", timed("mmap+munmap, full VMA set", rep_mmap_munmap), "call");
  printf("\n  },\n  \"vmasPresent\": %ld,\n  \"maxMapCount\": %ld\n}\n", total, max_maps);
  return 0;
}
