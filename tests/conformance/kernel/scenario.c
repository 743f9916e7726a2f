/*
 * scenario.c — run ONE wasm-mmu conformance scenario on the host Linux kernel and print
 * what the kernel did: per-page pagemap state, PFN identity classes, minor/major fault
 * deltas, signals, errno and values read.
 *
 * Written from scratch for wasm-mmu (MIT). Input/output formats: tests/conformance/README.md.
 *
 *   scenario <workdir>            reads a scenario (line format) on stdin, runs it
 *   scenario --profile <workdir>  prints what this kernel is like (zero page, soft-dirty, …)
 *
 * Measuring must not perturb what is measured, so:
 *  - no malloc, no stdio after start: every buffer is static, output is formatted into a
 *    static buffer and written once at the end;
 *  - before the scenario, a built-in warm-up scenario runs every code path once (every op,
 *    a SIGSEGV, a SIGBUS, pagemap/kpageflags/status reads) so that the harness's own code,
 *    data, stack and libc paths are present;
 *  - a step's fault counts are getrusage(RUSAGE_SELF) taken immediately before and after
 *    the one system call or access loop; pagemap is read afterwards with pread on a file
 *    descriptor opened beforehand;
 *  - after fork (and after clear_refs, which write-protects everything) both processes
 *    re-touch every harness page that was present, so the harness's own COW / re-faults
 *    happen outside every measured window;
 *  - scenario mappings live in a private arena: 2 MiB-aligned slots with unmapped gaps on
 *    both sides (no VMA merging), placed with MAP_FIXED_NOREPLACE;
 *  - THP is disabled for the process (PR_SET_THP_DISABLE) and every mapping gets
 *    MADV_NOHUGEPAGE; the file's page cache is made of order-0 folios (written, synced,
 *    dropped with POSIX_FADV_DONTNEED, re-read with 4 KiB preads under POSIX_FADV_RANDOM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAXSTEPS 400
#define MAXKV 24
#define MAXMAPS 31            /* scenario maps 0..30; slot MAXMAPS is the warm-up slot */
#define MAXPAGES 1536         /* pages + align of one mapping must stay below this */
#define SLOT (16UL << 20)     /* each slot: 2 MiB reserved, 12 MiB hole, 2 MiB reserved */
#define HOLE_OFF (2UL << 20)
#define HOLE_LEN (12UL << 20)
#define MAP_OFF (4UL << 20)   /* 2 MiB-aligned base of a mapping inside its slot */
#define MAXWARM 65536

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* ---------- output: one static buffer, written at the end (or sent to the parent) ---------- */
static char out[1 << 20];
static size_t outlen;
static int quiet; /* warm-up: format but discard */

static void emit(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + outlen, sizeof out - outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof out - outlen) return;
	if (quiet) return;
	outlen += (size_t)n;
}

static void flush_fd(int fd)
{
	size_t off = 0;
	while (off < outlen) {
		ssize_t w = write(fd, out + off, outlen - off);
		if (w <= 0) { if (errno == EINTR) continue; break; }
		off += (size_t)w;
	}
	outlen = 0;
}

static int in_child;
static int to_parent = -1;

static void fatal(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	quiet = 0;
	emit("error %s (errno=%d %s)\n", msg, errno, strerror(errno));
	if (in_child) { flush_fd(to_parent); _exit(3); }
	flush_fd(1);
	exit(2);
}

/* ---------- the scenario, parsed ---------- */
struct kv { char k[16]; char v[40]; };
struct step { int idx; int who; char op[24]; int nkv; struct kv kv[MAXKV]; };

static struct step steps[MAXSTEPS];
static int nsteps;
static long file_pages = -1, file_size, file_cfrom = -1, file_cto = -1;

static const char *sget(const struct step *s, const char *k, const char *d)
{
	for (int i = 0; i < s->nkv; i++)
		if (!strcmp(s->kv[i].k, k)) return s->kv[i].v;
	return d;
}

static long iget(const struct step *s, const char *k, long d)
{
	const char *v = sget(s, k, NULL);
	return v ? strtol(v, NULL, 0) : d;
}

static char inbuf[1 << 20];

/* Parses "key=value" tokens of one line into a step record. */
static void parse_kvs(char *line, struct step *s)
{
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(t, '=');
		if (!eq) continue;
		*eq = 0;
		if (s->nkv >= MAXKV) fatal("too many keys in a step");
		snprintf(s->kv[s->nkv].k, sizeof s->kv[0].k, "%s", t);
		snprintf(s->kv[s->nkv].v, sizeof s->kv[0].v, "%s", eq + 1);
		s->nkv++;
	}
}

/* Parses the line format: "file k=v…" and "step k=v…" lines; '#' starts a comment. */
static void parse_script(char *text, int for_warmup)
{
	char *save = NULL;
	nsteps = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t') line++;
		if (!*line || *line == '#') continue;
		if (!strncmp(line, "file ", 5)) {
			struct step tmp;
			memset(&tmp, 0, sizeof tmp);
			parse_kvs(line + 5, &tmp);
			if (!for_warmup) {
				file_pages = iget(&tmp, "pages", 0);
				file_size = iget(&tmp, "size", file_pages * (long)PAGE);
				file_cfrom = iget(&tmp, "cfrom", -1);
				file_cto = iget(&tmp, "cto", -1);
			}
		} else if (!strncmp(line, "step ", 5)) {
			if (nsteps >= MAXSTEPS) fatal("too many steps");
			struct step *s = &steps[nsteps];
			memset(s, 0, sizeof *s);
			parse_kvs(line + 5, s);
			s->idx = (int)iget(s, "i", nsteps);
			s->who = (int)iget(s, "who", 0);
			snprintf(s->op, sizeof s->op, "%s", sget(s, "op", "nop"));
			nsteps++;
		} else {
			fatal("bad input line: %.60s", line);
		}
	}
}

/* ---------- process-wide state ---------- */
struct map { int made; char *addr; long pages; int anon, shared, prot; long off; };
static struct map maps[MAXMAPS + 1];
static uint64_t hpfn[MAXMAPS + 1][MAXPAGES];       /* PFN at this map's previous expect */
static unsigned char hstable[MAXMAPS + 1][MAXPAGES]; /* present with that PFN ever since */
static uint64_t pmbuf[MAXPAGES];
static char sbuf[MAXPAGES + 1], cbuf[MAXPAGES + 1], xbuf[MAXPAGES + 1];

static char *arena;
static size_t arena_len;
static int pmfd = -1, kpffd = -1, crfd = -1;
static int fd0 = -1, fdmap = -1;      /* setup fd (FADV_RANDOM) and mapping fd of the file */
static char workdir[512];
static uint64_t zero_pfn;             /* 0: this kernel has no shared zero page (or unknown) */
static int on_dax;                    /* the work dir's files are DAX (ext4 -o dax): no page cache */
static pid_t child;
static int to_child = -1, from_child = -1;

static char *slot_addr(int m) { return arena + (size_t)m * SLOT + MAP_OFF; }

static void open_proc_files(void)
{
	if (pmfd >= 0) close(pmfd);
	if (kpffd >= 0) close(kpffd);
	if (crfd >= 0) close(crfd);
	pmfd = open("/proc/self/pagemap", O_RDONLY);
	if (pmfd < 0) fatal("open /proc/self/pagemap");
	kpffd = open("/proc/kpageflags", O_RDONLY);      /* optional */
	crfd = open("/proc/self/clear_refs", O_WRONLY);  /* optional */
}

static void read_pagemap(const char *addr, long pages, uint64_t *dst)
{
	size_t len = (size_t)pages * 8;
	off_t off = (off_t)((uintptr_t)addr / PAGE) * 8;
	ssize_t n = pread(pmfd, dst, len, off);
	if (n != (ssize_t)len) fatal("pread pagemap");
}

static uint64_t kpageflags(uint64_t pfn)
{
	uint64_t f = 0;
	if (kpffd < 0 || pread(kpffd, &f, 8, (off_t)(pfn * 8)) != 8) return 0;
	return f;
}

#define PM_PRESENT(e) (((e) >> 63) & 1)
#define PM_SWAP(e) (((e) >> 62) & 1)
#define PM_FILE(e) (((e) >> 61) & 1)
#define PM_GUARD(e) (((e) >> 58) & 1)
#define PM_EXCL(e) (((e) >> 56) & 1)
#define PM_SOFTDIRTY(e) (((e) >> 55) & 1)
#define PM_PFN(e) ((e) & ((1ULL << 55) - 1))

static char state_char(uint64_t e)
{
	if (!PM_PRESENT(e)) return PM_GUARD(e) ? 'G' : PM_SWAP(e) ? 'S' : '.'; /* guard markers also set bit 62 */
	if (zero_pfn && PM_PFN(e) == zero_pfn && !PM_FILE(e)) return 'Z';
	if (PM_FILE(e)) return PM_EXCL(e) ? 'F' : 'f';
	return PM_EXCL(e) ? 'A' : 'a';
}

/* Between expects: a page stays "stable" only while present with the same PFN. */
static void sample_all(void)
{
	for (int m = 0; m < MAXMAPS; m++) {
		if (!maps[m].made) continue;
		read_pagemap(maps[m].addr, maps[m].pages, pmbuf);
		for (long i = 0; i < maps[m].pages; i++) {
			uint64_t e = pmbuf[i];
			if (!PM_PRESENT(e) || PM_PFN(e) != hpfn[m][i]) hstable[m][i] = 0;
		}
	}
}

/* Prints one "map" line for map m and makes this expect the map's new reference point. */
static long smaps_referenced_kb(void *addr);
static void record_map(int k, int m, int want_sd, int want_mlk, int want_ref)
{
	struct map *mp = &maps[m];
	read_pagemap(mp->addr, mp->pages, pmbuf);
	int nopfn = 0;
	for (long i = 0; i < mp->pages; i++) {
		uint64_t e = pmbuf[i];
		sbuf[i] = state_char(e);
		if (!PM_PRESENT(e)) {
			cbuf[i] = '.';
		} else if (!mp->anon && PM_FILE(e) && !on_dax) { /* DAX: no page cache, no C */
			cbuf[i] = 'C';
		} else if (hstable[m][i] && hpfn[m][i] == PM_PFN(e)) {
			cbuf[i] = '=';
		} else {
			cbuf[i] = 'n';
		}
		if (PM_PRESENT(e) && PM_PFN(e) == 0) nopfn = 1;
		hpfn[m][i] = PM_PRESENT(e) ? PM_PFN(e) : 0;
		hstable[m][i] = PM_PRESENT(e) ? 1 : 0;
	}
	sbuf[mp->pages] = cbuf[mp->pages] = 0;
	emit("map step=%d id=%d state=%s pfn=%s", k, m, sbuf, cbuf);
	if (want_sd) {
		for (long i = 0; i < mp->pages; i++) xbuf[i] = PM_SOFTDIRTY(pmbuf[i]) ? 'd' : '-';
		xbuf[mp->pages] = 0;
		emit(" sd=%s", xbuf);
	}
	if (want_mlk) {
		for (long i = 0; i < mp->pages; i++) {
			uint64_t e = pmbuf[i];
			xbuf[i] = !PM_PRESENT(e) ? '.' : ((kpageflags(PM_PFN(e)) >> 33) & 1) ? 'L' : '-';
		}
		xbuf[mp->pages] = 0;
		emit(" mlk=%s", xbuf);
	}
	if (want_ref) emit(" ref=%ld", smaps_referenced_kb(mp->addr));
	emit("%s\n", nopfn ? " nopfn=1" : "");
}

static long vmlck_kb(void)
{
	static char st[8192];
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0) return -1;
	ssize_t n = read(fd, st, sizeof st - 1);
	close(fd);
	if (n <= 0) return -1;
	st[n] = 0;
	char *p = strstr(st, "VmLck:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

/* ---------- signals ---------- */
static sigjmp_buf jb;
static volatile int got_sig, got_code;
static volatile uintptr_t got_addr;
static char altstack[256 * 1024] __attribute__((aligned(4096)));

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_code = si->si_code;
	got_addr = (uintptr_t)si->si_addr;
	siglongjmp(jb, 1);
}

static void install_handlers(void)
{
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
	memset(altstack, 0, sizeof altstack);
	if (sigaltstack(&ss, NULL)) fatal("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL)) fatal("sigaction");
}

static const char *sig_name(int s) { return s == SIGSEGV ? "SIGSEGV" : s == SIGBUS ? "SIGBUS" : "none"; }

static const char *code_name(int s, int c)
{
	if (s == SIGSEGV) return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : c == 4 ? "SEGV_PKUERR" : "SEGV_OTHER";
	if (s == SIGBUS) return c == BUS_ADRERR ? "BUS_ADRERR" : c == BUS_ADRALN ? "BUS_ADRALN" : c == BUS_OBJERR ? "BUS_OBJERR" : c == 4 ? "BUS_MCEERR_AR" : "BUS_OTHER";
	return "none";
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EINTR: return "EINTR";
	case EIO: return "EIO"; case EBADF: return "EBADF"; case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM"; case EACCES: return "EACCES"; case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST"; case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL"; case EFBIG: return "EFBIG"; case ENOSPC: return "ENOSPC";
	case ENOSYS: return "ENOSYS"; case EOVERFLOW: return "EOVERFLOW"; case ETXTBSY: return "ETXTBSY";
	case EOPNOTSUPP: return "EOPNOTSUPP"; case EHWPOISON: return "EHWPOISON";
	default: return "EUNKNOWN";
	}
}

/* ---------- the file ---------- */
static unsigned char pagebuf[PAGE] __attribute__((aligned(4096)));

/* Byte j of file page i is 0x80 | (i & 0x7f) (so never 0 and never a default write value). */
static void fill_page(long i) { memset(pagebuf, 0x80 | (int)(i & 0x7f), PAGE); }

static void drop_cache(int fd) { fsync(fd); posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); }

/* Reads pages [from, to] with one 4 KiB pread each on fd0 (FADV_RANDOM: no readahead), so
 * each becomes an order-0 page-cache folio. */
static void cache_range(long from, long to)
{
	for (long i = from; i <= to; i++)
		if (pread(fd0, pagebuf, PAGE, (off_t)(i * (long)PAGE)) < 0) fatal("pread cache");
}

/* Counts the cached pages of the file in [0, pages) with mincore on a throwaway mapping. */
static long cached_pages(long pages)
{
	static unsigned char vec[MAXPAGES];
	if (pages <= 0) return 0;
	/* PROT_NONE: under a scenario's mlockall(MCL_FUTURE) a readable mapping would be
	 * populated (the whole file read in); mincore sees the page cache either way. */
	void *p = mmap(NULL, (size_t)pages * PAGE, PROT_NONE, MAP_SHARED, fdmap, 0);
	if (p == MAP_FAILED) fatal("mmap for mincore");
	if (mincore(p, (size_t)pages * PAGE, vec)) fatal("mincore");
	munmap(p, (size_t)pages * PAGE);
	long n = 0;
	for (long i = 0; i < pages; i++) n += vec[i] & 1;
	return n;
}

/* Reads again each page of [from, to] that is not in the page cache (see make_file). */
static void recache_missing(long pages, long from, long to)
{
	static unsigned char vec[MAXPAGES];
	void *p = mmap(NULL, (size_t)pages * PAGE, PROT_NONE, MAP_SHARED, fdmap, 0);
	if (p == MAP_FAILED) fatal("mmap for mincore");
	if (mincore(p, (size_t)pages * PAGE, vec)) fatal("mincore");
	munmap(p, (size_t)pages * PAGE);
	for (long i = from; i <= to; i++)
		if (!(vec[i] & 1) && pread(fd0, pagebuf, PAGE, (off_t)(i * (long)PAGE)) < 0) fatal("pread cache");
}

static int on_tmpfs; /* the work dir is tmpfs (shmem): no cache to drop */

/* After POSIX_FADV_WILLNEED: waits (up to 2 s) until pages [from, from+n) (n = 0: to EOF) are
 * in the page cache, so the readahead I/O is done before the next step (pages brought in by
 * readahead are not PG_referenced: the smaps `Referenced:` scenarios rely on it). */
static void wait_cached(long from, long n)
{
	static unsigned char vec[MAXPAGES];
	struct stat st;
	if (fstat(fdmap, &st) || st.st_size <= 0) return;
	long total = (st.st_size + (long)PAGE - 1) / (long)PAGE;
	long to = n ? from + n : total;
	if (total > MAXPAGES) total = MAXPAGES;
	if (to > total) to = total;
	for (int tries = 0; tries < 400; tries++) {
		void *p = mmap(NULL, (size_t)total * PAGE, PROT_NONE, MAP_SHARED, fdmap, 0); /* see cached_pages */
		if (p == MAP_FAILED) return;
		int bad = mincore(p, (size_t)total * PAGE, vec);
		munmap(p, (size_t)total * PAGE);
		if (bad) return;
		long i = from;
		while (i < to && (vec[i] & 1)) i++;
		if (i >= to) return;
		usleep(5000);
	}
}

/* smaps `Referenced:` (KiB) of the VMA that starts at addr: PTEs with the accessed bit, or
 * folios marked referenced. -1 if there is no such VMA. */
static char sm[1 << 20];

/* Reads /proc/self/smaps into sm; 0 or -1. */
static int read_smaps(void)
{
	int fd = open("/proc/self/smaps", O_RDONLY);
	if (fd < 0) return -1;
	long n = 0, r;
	while (n < (long)sizeof sm - 1 && (r = read(fd, sm + n, sizeof sm - 1 - (size_t)n)) > 0) n += r;
	close(fd);
	sm[n] = 0;
	return 0;
}

static long smaps_referenced_kb(void *addr)
{
	char head[32];
	if (read_smaps()) return -1;
	snprintf(head, sizeof head, "%lx-", (unsigned long)(uintptr_t)addr);
	for (char *line = sm; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, head, strlen(head))) continue;
		char *ref = strstr(line, "\nReferenced:");
		return ref ? strtol(ref + 12, NULL, 10) : -1;
	}
	return -1;
}

static int mlockall_used; /* this process ran an mlockall step: harness VMAs may be locked */

/* KiB of VM_LOCKED VMAs (smaps VmFlags "lo") that are not inside a scenario map: after an
 * mlockall the harness's own VMAs and the arena's PROT_NONE reserve are locked too, and
 * VmLck counts them; the observation is the scenario maps' share (issue 14, mlockall). */
static long locked_outside_kb(void)
{
	long kb = 0;
	unsigned long lo = 0, hi = 0;
	if (read_smaps()) return 0;
	for (char *line = sm; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2) { lo = a; hi = b; continue; }
		if (strncmp(line, "VmFlags:", 8)) continue;
		char *eol = strchr(line, '\n');
		int locked = 0;
		for (char *f = line + 8; f && (!eol || f < eol); f = strchr(f + 1, ' '))
			if (!strncmp(f, " lo", 3) && (f[3] == ' ' || f[3] == '\n' || !f[3])) locked = 1;
		if (!locked) continue;
		int inside = 0;
		for (int q = 0; q < MAXMAPS && !inside; q++)
			if (maps[q].made && lo >= (uintptr_t)maps[q].addr && hi <= (uintptr_t)maps[q].addr + (uintptr_t)maps[q].pages * PAGE)
				inside = 1;
		if (!inside) kb += (long)((hi - lo) / 1024);
	}
	return kb;
}

/* Creates the file, leaves exactly pages [cfrom, cto] cached as order-0 folios. */
static void make_file(const char *tag, long pages, long size, long cfrom, long cto)
{
	char path[700];
	snprintf(path, sizeof path, "%s/wasm-mmu-conformance-%d-%s", workdir, (int)getpid(), tag);
	if (fd0 >= 0) close(fd0);
	if (fdmap >= 0) close(fdmap);
	fd0 = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd0 < 0) fatal("create %s", path);
	for (long i = 0; i < pages; i++) {
		fill_page(i);
		long len = (i == pages - 1) ? size - i * (long)PAGE : (long)PAGE;
		if (pwrite(fd0, pagebuf, (size_t)len, (off_t)(i * (long)PAGE)) != len) fatal("write file");
	}
	fdmap = open(path, O_RDWR);
	if (fdmap < 0) fatal("reopen file");
	unlink(path);
	if (on_tmpfs) {
		/* shmem pages cannot be dropped: only a fully cached file is possible (the
		 * runners skip the other scenarios on tmpfs, lib/kernel.mjs unmetRequirement) */
		if (cfrom != 0 || cto != pages - 1) fatal("tmpfs: the page cache cannot be dropped");
		return;
	}
	/* DAX: reads and faults go straight to persistent memory; there is no cache to drop or
	 * fill, so a scenario's cached / cachedRange mean nothing here (seeds 002, 004). */
	if (on_dax) return;
	drop_cache(fd0);
	long left = cached_pages(pages);
	for (int tries = 0; left && tries < 20; tries++) {
		usleep(2000);
		drop_cache(fd0);
		left = cached_pages(pages);
	}
	if (left) fatal("could not drop the page cache of the file (%ld pages left)", left);
	posix_fadvise(fd0, 0, 0, POSIX_FADV_RANDOM);
	if (cfrom >= 0 && cto >= cfrom) {
		cache_range(cfrom, cto);
		long want = cto - cfrom + 1, have = cached_pages(pages);
		/* Under host memory pressure reclaim can take a page just read: read the missing
		 * ones again (only those, so the others are not referenced twice). */
		for (int tries = 0; have < want && tries < 5; tries++) {
			recache_missing(pages, cfrom, cto);
			have = cached_pages(pages);
		}
		if (have != want) fatal("file cache has %ld pages, wanted %ld", have, want);
	}
}

/* ---------- keeping the harness's own pages present (outside the measured windows) ---------- */
static uintptr_t warm_pages[MAXWARM]; /* page address | 1 if private-writable */
static long nwarm;
static char mapsbuf[1 << 16];

/* /proc/self/maps into mapsbuf, NUL-terminated. */
static void read_self_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0) fatal("open maps");
	size_t len = 0;
	ssize_t n;
	while ((n = read(fd, mapsbuf + len, sizeof mapsbuf - 1 - len)) > 0) len += (size_t)n;
	close(fd);
	mapsbuf[len] = 0;
}

/* Lists every present page of every readable harness VMA (everything outside the arena). */
static void collect_harness_pages(void)
{
	static uint64_t pm[512];
	nwarm = 0;
	read_self_maps();
	uintptr_t alo = (uintptr_t)arena - (2UL << 20), ahi = (uintptr_t)arena + arena_len;
	for (char *l = mapsbuf; l && *l; ) {
		char *nl = strchr(l, '\n');
		if (nl) *nl = 0;
		unsigned long lo, hi;
		char perms[8] = "", path[256] = "";
		if (sscanf(l, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) >= 3 &&
		    perms[0] == 'r' && !(lo >= alo && hi <= ahi) && strncmp(path, "[v", 2)) {
			int wr = perms[1] == 'w' && perms[3] == 'p';
			for (unsigned long a = lo; a < hi; a += 512 * PAGE) {
				unsigned long cnt = (hi - a) / PAGE;
				if (cnt > 512) cnt = 512;
				if (pread(pmfd, pm, cnt * 8, (off_t)(a / PAGE * 8)) != (ssize_t)(cnt * 8)) break;
				for (unsigned long i = 0; i < cnt && nwarm < MAXWARM; i++)
					if (PM_PRESENT(pm[i])) warm_pages[nwarm++] = (a + i * PAGE) | (uintptr_t)wr;
			}
		}
		l = nl ? nl + 1 : NULL;
	}
}

/* Reads every listed page; rewrites one byte (same value) of every private-writable one. */
static void retouch_harness_pages(void)
{
	for (long i = 0; i < nwarm; i++) {
		volatile unsigned char *p = (volatile unsigned char *)(warm_pages[i] & ~(uintptr_t)(PAGE - 1));
		unsigned char v = *p;
		if (warm_pages[i] & 1) *p = v;
	}
}

/* Calls fn(lo, hi, perms, path, arg) for every VMA of the harness itself: all but the
 * arena (with its 2 MiB alignment slack) and [vsyscall]. */
static void for_each_harness_vma(void (*fn)(unsigned long, unsigned long, const char *, const char *, int), int arg)
{
	read_self_maps();
	uintptr_t alo = (uintptr_t)arena - (2UL << 20), ahi = (uintptr_t)arena + arena_len + (2UL << 20);
	for (char *l = mapsbuf; l && *l; ) {
		char *nl = strchr(l, '\n');
		if (nl) *nl = 0;
		unsigned long lo, hi;
		char perms[8] = "", path[256] = "";
		if (sscanf(l, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) >= 3 &&
		    !(lo >= alo && hi <= ahi) && strcmp(path, "[vsyscall]"))
			fn(lo, hi, perms, path, arg);
		l = nl ? nl + 1 : NULL;
	}
}

static void lock_one(unsigned long lo, unsigned long hi, const char *perms, const char *path, int how)
{
	(void)path;
	/* errors (a PROT_NONE VMA cannot be populated) do not matter: the flags are set */
	if (how == 0) munlock((void *)lo, hi - lo);
	else if (how == 2) {
		/* Lock-on-fault maps nothing now: the harness's later first touches of its own
		 * pages would each queue an mlock entry the scenario cannot know (fuzz seed
		 * 1200101973 case 2605). Fault them all in first, unlocked. */
		if (perms[0] == 'r') madvise((void *)lo, hi - lo, perms[1] == 'w' && perms[3] == 'p' ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
		syscall(SYS_mlock2, (void *)lo, hi - lo, MLOCK_ONFAULT);
	}
	else mlock((void *)lo, hi - lo);
}

/* Gives every harness VMA (all but the arena) the lock state a scenario's mlockall(MCL_CURRENT)
 * (how 1; 2 with MCL_ONFAULT) or munlockall (how 0) is about to give it, before the measured
 * window: the call then finds the harness's VMAs unchanged and neither faults harness pages
 * in (populate) nor queues them in the mlock batch; only the scenario's maps (and the
 * arena's empty PROT_NONE reserve) change in the window. */
static void harness_lock(int how) { for_each_harness_vma(lock_one, how); }

/* Empties this CPU's page batches (lru_add_drain: the LRU-add batch, then the mlock batch)
 * before the scenario's first step: mlock and munlock of an untouched PROT_NONE page each
 * run lru_add_drain and queue nothing. The harness's set-up (its file, the warm-up) leaves
 * pages in the LRU-add batch, which the emulator, starting from empty batches, cannot know:
 * a folio still in it when its mlock entry is handled keeps mlock_count 0 (issue 14, run X). */
static void drain_local_batches(void)
{
	void *p = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) fatal("mmap for drain");
	mlock(p, PAGE); /* fails (nothing can be populated), but the VMA's fixup drained */
	munlock(p, PAGE);
	munmap(p, PAGE);
}

/* Faults in every page of the harness's own private writable memory (its buffers, heap
 * and stack as mapped now), so that no first touch of one during the scenario puts a fresh
 * page on the LRU-add batch between steps (fuzz seed 1528920987 case 1306: the output
 * buffer growing into a new page between two steps moved the batch by one entry). */
static void populate_one(unsigned long lo, unsigned long hi, const char *perms, const char *path, int arg)
{
	(void)path; (void)arg;
	if (perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p') madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

static void populate_harness(void) { for_each_harness_vma(populate_one, 0); }

/* ---------- steps ---------- */
static struct rusage ru0, ru1;
static volatile unsigned char sink;
static volatile long sig_page;

static int parse_madv(const char *a)
{
	static const struct { const char *n; int v; } t[] = {
		{"normal", 0}, {"random", 1}, {"sequential", 2}, {"willneed", 3}, {"dontneed", 4},
		{"free", 8}, {"remove", 9}, {"dontfork", 10}, {"dofork", 11}, {"mergeable", 12},
		{"unmergeable", 13}, {"hugepage", 14}, {"nohugepage", 15}, {"dontdump", 16},
		{"dodump", 17}, {"wipeonfork", 18}, {"keeponfork", 19}, {"cold", 20}, {"pageout", 21},
		{"populate_read", 22}, {"populate_write", 23}, {"dontneed_locked", 24}, {"collapse", 25},
		{"guard_install", 102}, {"guard_remove", 103},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(a, t[i].n)) return t[i].v;
	fatal("unknown madvise advice %s", a);
	return -1;
}

static int parse_fadv(const char *a)
{
	if (!strcmp(a, "normal")) return POSIX_FADV_NORMAL;
	if (!strcmp(a, "random")) return POSIX_FADV_RANDOM;
	if (!strcmp(a, "sequential")) return POSIX_FADV_SEQUENTIAL;
	if (!strcmp(a, "willneed")) return POSIX_FADV_WILLNEED;
	if (!strcmp(a, "dontneed")) return POSIX_FADV_DONTNEED;
	if (!strcmp(a, "noreuse")) return POSIX_FADV_NOREUSE;
	fatal("unknown fadvise advice %s", a);
	return -1;
}

static void child_loop(int cmdfd);

enum opcode {
	OP_NOP, OP_MMAP, OP_MUNMAP, OP_TOUCH, OP_TOUCHRANGE, OP_FORK, OP_EXIT, OP_MPROTECT,
	OP_MADVISE, OP_MLOCK, OP_MUNLOCK, OP_MSYNC, OP_TRUNCATE, OP_FADVISE, OP_EVICT, OP_CACHE,
	OP_PWRITE, OP_PREAD, OP_CLEARREFS, OP_MLOCKALL, OP_MUNLOCKALL, OP_FSYNC,
};

static const char *const opnames[] = {
	"nop", "mmap", "munmap", "touch", "touchRange", "fork", "exit", "mprotect",
	"madvise", "mlock", "munlock", "msync", "truncate", "fadvise", "evict", "cache",
	"pwrite", "pread", "clearRefs", "mlockall", "munlockall", "fsync",
};

/* Everything a step needs, decoded before its measured window. Static, so that nothing
 * is lost when a signal handler siglongjmps back into run_step. */
static struct args {
	enum opcode op;
	int m;
	struct map *mp;
	char *base, *raddr, *want;
	long from, to, page, offset, pages, mpages, align, off, tbytes;
	size_t rlen;
	int acc, prot, shared, anon, mflags, madv, fadv, msflags, onfault, mcl;
	unsigned char value;
	/* results */
	int measured, ret, err;
	long val;
	pid_t forked;
	int cmd_pipe[2], rep_pipe[2];
} A;

static void decode_step(int k)
{
	struct step *s = &steps[k];
	memset(&A, 0, sizeof A);
	A.op = OP_NOP;
	int found = 0;
	for (size_t i = 0; i < sizeof opnames / sizeof opnames[0]; i++)
		if (!strcmp(s->op, opnames[i])) { A.op = (enum opcode)i; found = 1; }
	if (!found) fatal("step %d: unknown op %s", k, s->op);
	A.m = (int)iget(s, "map", -1);
	A.mp = (A.m >= 0 && A.m <= MAXMAPS) ? &maps[A.m] : NULL;
	A.base = A.mp ? A.mp->addr : NULL;
	A.from = iget(s, "from", 0);
	A.to = iget(s, "to", A.from);
	A.page = iget(s, "page", 0);
	A.offset = iget(s, "offset", 0);
	A.pages = iget(s, "pages", A.mp ? A.mp->pages - A.from : 0);
	A.rlen = (size_t)A.pages * PAGE;
	A.raddr = A.base ? A.base + A.from * (long)PAGE : NULL;
	A.acc = (int)iget(s, "acc", 0);
	A.value = (unsigned char)iget(s, "value", 0x5a);
	A.prot = (int)iget(s, "prot", PROT_READ);
	A.shared = (int)iget(s, "shared", 0);
	A.anon = (int)iget(s, "anon", 1);
	A.off = iget(s, "off", 0);
	A.align = iget(s, "align", 0);
	A.mpages = iget(s, "pages", 0);
	A.onfault = (int)iget(s, "onfault", 0);
	A.mcl = (int)iget(s, "mcl", MCL_CURRENT);
	A.tbytes = iget(s, "bytes", iget(s, "tpages", 0) * (long)PAGE);
	A.measured = 1;
	A.val = -1;
	A.forked = -1;
	A.cmd_pipe[0] = A.cmd_pipe[1] = A.rep_pipe[0] = A.rep_pipe[1] = -1;
	const char *sync = sget(s, "sync", "sync");
	A.msflags = !strcmp(sync, "async") ? MS_ASYNC : !strcmp(sync, "invalidate") ? MS_INVALIDATE : MS_SYNC;
	if (A.op == OP_MADVISE) A.madv = parse_madv(sget(s, "advice", ""));
	if (A.op == OP_FADVISE) A.fadv = parse_fadv(sget(s, "advice", ""));
	switch (A.op) {
	case OP_MMAP: case OP_MUNMAP: case OP_TOUCH: case OP_TOUCHRANGE: case OP_MPROTECT:
	case OP_MADVISE: case OP_MLOCK: case OP_MUNLOCK: case OP_MSYNC:
		if (!A.mp) fatal("step %d (%s) needs a valid map", k, s->op);
		break;
	default:
		break;
	}
	if (A.op == OP_MMAP) {
		if (A.align < 0 || A.align > 511 || A.mpages <= 0 || A.mpages + A.align > MAXPAGES)
			fatal("step %d: bad mmap size/align", k);
		A.want = slot_addr(A.m) + A.align * (long)PAGE;
		A.mflags = (A.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE;
		if (A.anon) A.mflags |= MAP_ANONYMOUS;
		if (iget(s, "populate", 0)) A.mflags |= MAP_POPULATE;
		if (iget(s, "locked", 0)) A.mflags |= MAP_LOCKED;
	}
	if (A.op == OP_EXIT && !in_child) fatal("step %d: exit is a child step", k);
	if ((A.op == OP_TOUCH || A.op == OP_TOUCHRANGE) && !A.mp->made && !A.mp->addr)
		fatal("step %d touches a map that was never created", k);
}

/* The measured part of a step: exactly one system call or one access loop. */
static void __attribute__((noinline)) exec_op(void)
{
	switch (A.op) {
	case OP_TOUCH: {
		volatile unsigned char *p = (volatile unsigned char *)(A.base + A.page * (long)PAGE + A.offset);
		if (A.acc) *p = A.value; else A.val = *p;
		break;
	}
	case OP_TOUCHRANGE:
		for (long i = A.from; i <= A.to; i++) {
			volatile unsigned char *p = (volatile unsigned char *)(A.base + i * (long)PAGE + A.offset);
			if (A.acc) *p = A.value; else sink = *p;
		}
		break;
	case OP_MMAP: {
		void *r = mmap(A.want, (size_t)A.mpages * PAGE, A.prot, A.mflags, A.anon ? -1 : fdmap, (off_t)(A.off * (long)PAGE));
		if (r == MAP_FAILED) { A.ret = -1; A.err = errno; }
		else if (r != A.want) { munmap(r, (size_t)A.mpages * PAGE); A.ret = -1; A.err = EEXIST; }
		break;
	}
	case OP_MUNMAP: A.ret = munmap(A.raddr, A.rlen); A.err = errno; break;
	case OP_MPROTECT: A.ret = mprotect(A.raddr, A.rlen, A.prot); A.err = errno; break;
	case OP_MADVISE: A.ret = madvise(A.raddr, A.rlen, A.madv); A.err = errno; break;
	case OP_MLOCK:
		A.ret = A.onfault ? (int)syscall(SYS_mlock2, A.raddr, A.rlen, MLOCK_ONFAULT) : mlock(A.raddr, A.rlen);
		A.err = errno;
		break;
	case OP_MUNLOCK: A.ret = munlock(A.raddr, A.rlen); A.err = errno; break;
	case OP_MLOCKALL: A.ret = mlockall(A.mcl); A.err = errno; break;
	case OP_MUNLOCKALL: A.ret = munlockall(); A.err = errno; break;
	case OP_FSYNC: A.ret = fsync(fdmap); A.err = errno; break;
	case OP_MSYNC: A.ret = msync(A.raddr, A.rlen, A.msflags); A.err = errno; break;
	case OP_TRUNCATE: A.ret = ftruncate(fdmap, (off_t)A.tbytes); A.err = errno; break;
	case OP_FADVISE:
		A.err = posix_fadvise(fdmap, (off_t)(A.from * (long)PAGE), (off_t)(A.pages * (long)PAGE), A.fadv);
		A.ret = A.err ? -1 : 0;
		break;
	case OP_EVICT: drop_cache(fd0); break; /* fsync + DONTNEED: unmapped clean pages leave */
	case OP_CACHE: cache_range(A.from, A.to); break;
	case OP_PWRITE:
		pagebuf[0] = A.value;
		/* Only a return of -1 sets errno; a short count is not an error (issue 14 item 16). */
		A.ret = pwrite(fdmap, pagebuf, 1, (off_t)(A.page * (long)PAGE + A.offset)) < 0 ? -1 : 0;
		A.err = A.ret ? errno : 0;
		break;
	case OP_PREAD:
	{
		ssize_t n = pread(fdmap, pagebuf, 1, (off_t)(A.page * (long)PAGE + A.offset));
		A.ret = n < 0 ? -1 : 0;
		A.err = n < 0 ? errno : 0;
		A.val = n == 1 ? pagebuf[0] : -1; /* 0 bytes at or past EOF: no value, no errno */
		break;
	}
	case OP_CLEARREFS:
		A.ret = crfd >= 0 && write(crfd, "4", 1) == 1 ? 0 : -1;
		A.err = errno;
		A.measured = 0; /* write-protects the harness too: its next stack write faults */
		break;
	case OP_FORK:
		A.forked = fork();
		A.measured = 0; /* the first stack write after fork is a COW fault of the harness */
		if (A.forked < 0) { A.ret = -1; A.err = errno; }
		break;
	case OP_EXIT: A.measured = 0; break;
	case OP_NOP: break;
	}
}

/* Runs step k in this process and prints its observation if it has an expect. */
static void run_step(int k)
{
	struct step *s = &steps[k];
	decode_step(k);
	if (A.op == OP_FORK) {
		if (child) fatal("step %d: only one child at a time", k);
		collect_harness_pages();
		if (pipe(A.cmd_pipe) || pipe(A.rep_pipe)) fatal("pipe");
	}
	if (A.op == OP_MLOCKALL && (A.mcl & MCL_CURRENT)) harness_lock(A.mcl & MCL_ONFAULT ? 2 : 1);
	if (A.op == OP_MUNLOCKALL) harness_lock(0);
	if (A.op == OP_MLOCKALL) mlockall_used = 1;
	/* A child that ran mlockall exits with its harness VMAs unlocked, so its exit queues only
	 * the scenario's pages on the mlock batch (not thousands of harness pages, which would
	 * push them through it). */
	if (A.op == OP_EXIT && mlockall_used) harness_lock(0);
	if (k == 0 && !quiet) {
		populate_harness();
		drain_local_batches(); /* see drain_local_batches */
	}
	got_sig = 0;
	got_code = 0;
	sig_page = -1;
	if (sigsetjmp(jb, 1) == 0) {
		getrusage(RUSAGE_SELF, &ru0);
		exec_op();
	}
	getrusage(RUSAGE_SELF, &ru1);
	/* outside the measured window: the wait itself touches harness memory */
	if (A.op == OP_FADVISE && A.ret == 0 && A.fadv == POSIX_FADV_WILLNEED && !on_tmpfs && !on_dax) wait_cached(A.from, A.pages);
	if (A.ret == 0) A.err = 0;
	if (got_sig && A.mp && got_addr >= (uintptr_t)A.mp->addr)
		sig_page = (long)((got_addr - (uintptr_t)A.mp->addr) / PAGE);

	if (A.op == OP_FORK && A.forked == 0) {
		in_child = 1;
		outlen = 0;
		close(A.cmd_pipe[1]);
		close(A.rep_pipe[0]);
		to_parent = A.rep_pipe[1];
		open_proc_files(); /* /proc/self files opened by the parent still describe the parent */
		retouch_harness_pages();
		/* ready: the parent waits for this byte (see below) */
		if (write(to_parent, "r", 1) != 1) _exit(1);
		child_loop(A.cmd_pipe[0]);
		_exit(0);
	}
	if (A.op == OP_FORK && A.forked > 0) {
		child = A.forked;
		to_child = A.cmd_pipe[1];
		from_child = A.rep_pipe[0];
		close(A.cmd_pipe[0]);
		close(A.rep_pipe[1]);
		retouch_harness_pages();
		/* Both processes' retouches COW-fault harness pages: fresh pages on the LRU-add batch,
		 * and, where wp_can_reuse_anon_folio finds one off the LRU, an lru_add_drain (with the
		 * mlock batch). Whether and where that happened depended on how the two processes
		 * interleaved on the CPU. The parent waits for the child's retouch and then drains,
		 * so every fork step ends with both batches empty (issue 14, run W case 1592). */
		char ready;
		if (read(from_child, &ready, 1) != 1 || ready != 'r') fatal("child not ready after fork");
		drain_local_batches();
	}
	if (A.op == OP_CLEARREFS) {
		collect_harness_pages();
		retouch_harness_pages();
	}
	if (A.op == OP_MMAP && A.ret == 0) {
		struct map *mp = A.mp;
		madvise(A.want, (size_t)A.mpages * PAGE, MADV_NOHUGEPAGE);
		mp->made = 1;
		mp->addr = A.want;
		mp->pages = A.mpages;
		mp->anon = A.anon;
		mp->shared = A.shared;
		mp->prot = A.prot;
		mp->off = A.off;
		for (long i = 0; i < A.mpages; i++) { hpfn[A.m][i] = 0; hstable[A.m][i] = 0; }
	}
	if (A.op == OP_MPROTECT && A.ret == 0) A.mp->prot = A.prot;

	if (iget(s, "exp", 0)) {
		long minflt = A.measured ? ru1.ru_minflt - ru0.ru_minflt : -1;
		long majflt = A.measured ? ru1.ru_majflt - ru0.ru_majflt : -1;
		emit("obs step=%d who=%s op=%s minflt=%ld majflt=%ld sig=%s code=%s sigpage=%ld errno=%s value=%ld",
		     k, in_child ? "child" : "parent", s->op, minflt, majflt, sig_name(got_sig),
		     code_name(got_sig, got_code), (long)sig_page, errno_name(A.err), A.val);
		if (iget(s, "evmlck", 0)) emit(" vmlck=%ld", vmlck_kb() - (mlockall_used ? locked_outside_kb() : 0));
		emit("\n");
		unsigned long em = (unsigned long)iget(s, "emaps", 0);
		for (int q = 0; q < MAXMAPS; q++)
			if ((em >> q) & 1) {
				if (!maps[q].made) fatal("step %d expects map %d, which this process never mapped", k, q);
				record_map(k, q, (int)iget(s, "esd", 0), (int)iget(s, "emlk", 0), (int)iget(s, "eref", 0));
			}
	}
	sample_all();
	if (A.op == OP_EXIT) {
		emit("done next=%d exited=1\n", k + 1);
		flush_fd(to_parent);
		_exit(0);
	}
}

/* The child: waits for "run k", runs its steps from k, reports back; "quit" ends it. */
static void child_loop(int cmdfd)
{
	char cmd[64];
	for (;;) {
		size_t len = 0;
		for (;;) {
			ssize_t n = read(cmdfd, cmd + len, 1);
			if (n <= 0) _exit(0);
			if (cmd[len] == '\n' || len + 2 >= sizeof cmd) break;
			len++;
		}
		cmd[len] = 0;
		if (strncmp(cmd, "run ", 4)) _exit(0);
		int k = atoi(cmd + 4);
		sample_all();
		while (k < nsteps && steps[k].who == 1) run_step(k++);
		emit("done next=%d exited=0\n", k);
		flush_fd(to_parent);
	}
}

/* Parent side: lets the child run its steps from k; returns the next step index. */
static int run_child_steps(int k)
{
	static char line[1 << 16];
	char cmd[32];
	int n = snprintf(cmd, sizeof cmd, "run %d\n", k);
	if (!child) fatal("step %d is for the child, but there is no child", k);
	if (write(to_child, cmd, (size_t)n) != n) fatal("write to child");
	size_t len = 0;
	for (;;) {
		ssize_t r = read(from_child, line + len, 1);
		if (r <= 0) {
			int st = 0;
			waitpid(child, &st, 0);
			child = 0;
			fatal("child ended without reporting (status %d)", st);
		}
		if (line[len] != '\n' && len + 2 < sizeof line) { len++; continue; }
		line[len + 1] = 0;
		if (!strncmp(line, "done ", 5)) {
			int next = 0, exited = 0;
			sscanf(line, "done next=%d exited=%d", &next, &exited);
			if (exited) {
				int st = 0;
				waitpid(child, &st, 0);
				child = 0;
				close(to_child);
				close(from_child);
			}
			return next;
		}
		if (!strncmp(line, "error ", 6)) {
			emit("%s", line);
			flush_fd(1);
			exit(2);
		}
		emit("%s", line);
		len = 0;
	}
}

static void run_scenario(void)
{
	int k = 0;
	while (k < nsteps) {
		if (steps[k].who == 1) {
			k = run_child_steps(k);
			continue;
		}
		sample_all();
		run_step(k);
		k++;
	}
	if (child) {
		if (write(to_child, "quit\n", 5) != 5) { /* child gone already */ }
		waitpid(child, NULL, 0);
		child = 0;
	}
}

/* ---------- setup ---------- */
static void reserve_arena(void)
{
	arena_len = (size_t)(MAXMAPS + 1) * SLOT;
	char *r = mmap(NULL, arena_len + (2UL << 20), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) fatal("reserve arena");
	arena = (char *)(((uintptr_t)r + (2UL << 20) - 1) & ~((uintptr_t)(2UL << 20) - 1));
	for (int m = 0; m <= MAXMAPS; m++)
		if (munmap(arena + (size_t)m * SLOT + HOLE_OFF, HOLE_LEN)) fatal("punch arena hole");
}

/* Grows and touches the stack once, so deep calls never fault on a new stack page. */
static void __attribute__((noinline)) pretouch_stack(void)
{
	volatile char big[192 * 1024];
	for (size_t i = 0; i < sizeof big; i += 512) big[i] = 0;
}

static void reset_maps(void)
{
	for (int m = 0; m <= MAXMAPS; m++) {
		if (maps[m].made) munmap(maps[m].addr, (size_t)maps[m].pages * PAGE);
		maps[m].made = 0;
	}
}

/* Finds the shared zero page: two read faults on fresh private anonymous memory. Returns
 * its PFN, or 0 when reads allocate pages (no zero page) — *how tells what happened. */
static uint64_t detect_zero_page(const char **how)
{
	char *p = slot_addr(MAXMAPS);
	uint64_t pm[2];
	if (mmap(p, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != p)
		fatal("mmap zero probe");
	sink = *(volatile char *)p;
	sink = *(volatile char *)(p + PAGE);
	read_pagemap(p, 2, pm);
	munmap(p, 2 * PAGE);
	if (!PM_PRESENT(pm[0]) || !PM_PRESENT(pm[1])) { *how = "not-present"; return 0; }
	if (PM_PFN(pm[0]) == 0) { *how = "no-pfn"; return 0; }
	if (PM_PFN(pm[0]) == PM_PFN(pm[1]) && !PM_FILE(pm[0]) && !PM_EXCL(pm[0])) { *how = "shared-zero-page"; return PM_PFN(pm[0]); }
	*how = PM_EXCL(pm[0]) ? "allocates-anon-page" : "other";
	return 0;
}

/* Every op once (both outcomes of touch, both signals), so the harness's pages are present. */
static const char warm_script[] =
	"step op=mmap map=31 pages=8 prot=3 shared=0 anon=1\n"
	"step op=touch map=31 page=0 acc=1 exp=1 emaps=0\n"
	"step op=touch map=31 page=1 acc=0\n"
	"step op=touchRange map=31 from=0 to=7 acc=1\n"
	"step op=touchRange map=31 from=0 to=7 acc=0\n"
	"step op=mprotect map=31 from=0 pages=8 prot=1\n"
	"step op=touch map=31 page=0 acc=1 exp=1\n"
	"step op=mprotect map=31 from=0 pages=8 prot=3\n"
	"step op=madvise map=31 from=0 pages=2 advice=dontneed\n"
	"step op=madvise map=31 from=0 pages=2 advice=willneed\n"
	"step op=madvise map=31 from=0 pages=2 advice=populate_write\n"
	"step op=madvise map=31 from=0 pages=2 advice=populate_read\n"
	"step op=mlock map=31 from=0 pages=2\n"
	"step op=munlock map=31 from=0 pages=2\n"
	"step op=mlock map=31 from=0 pages=2 onfault=1\n"
	"step op=munlock map=31 from=0 pages=2 exp=1 evmlck=1\n"
	"step op=msync map=31 from=0 pages=2\n"
	"step op=munmap map=31 from=0 pages=8\n"
	"step op=touch map=31 page=0 acc=0 exp=1\n"
	"step op=mmap map=31 pages=4 prot=3 shared=1 anon=0\n"
	"step op=touch map=31 page=3 acc=0 exp=1\n"
	"step op=touch map=31 page=0 acc=0\n"
	"step op=touch map=31 page=0 acc=1\n"
	"step op=msync map=31 from=0 pages=1 sync=sync\n"
	"step op=fsync\n"
	"step op=mlockall mcl=2\n"
	"step op=munlockall exp=1 evmlck=1\n"
	"step op=fadvise advice=normal\n"
	"step op=pwrite page=0 value=1\n"
	"step op=pread page=0 exp=1\n"
	"step op=cache from=0 to=0\n"
	"step op=truncate tpages=2\n"
	"step op=evict\n"
	"step op=nop exp=1 evmlck=1\n"
	"step op=munmap map=31 from=0 pages=4\n";

static void warmup(void)
{
	static char script[sizeof warm_script];
	memcpy(script, warm_script, sizeof warm_script);
	make_file("warm", 3, 2 * PAGE + 100, 0, 2); /* 3 pages: the last one partial */
	quiet = 1;
	parse_script(script, 1);
	/* warm map is 31 = MAXMAPS: record_map only loops below MAXMAPS, so call it directly */
	for (int k = 0; k < nsteps; k++) {
		sample_all();
		run_step(k);
		if (maps[MAXMAPS].made) record_map(k, MAXMAPS, 1, 1, 1);
	}
	reset_maps();
	mlockall_used = 0;
	quiet = 0;
	outlen = 0;
	for (int m = 0; m <= MAXMAPS; m++) memset(&maps[m], 0, sizeof maps[m]);
}

static const char *fs_name(long t)
{
	switch ((unsigned long)t) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x794c7630: return "overlayfs";
	case 0x2FC12FC1: return "zfs";
	case 0x6969: return "nfs";
	default: return "other";
	}
}

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

/* Are regular files made in the work dir DAX (statx's STATX_ATTR_DAX, Linux 5.8+)? */
static int detect_dax(void)
{
	char path[700];
	struct statx sx;
	snprintf(path, sizeof path, "%s/wasm-mmu-conformance-%d-daxprobe", workdir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) return 0;
	int dax = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) == 0 &&
		(sx.stx_attributes_mask & STATX_ATTR_DAX) && (sx.stx_attributes & STATX_ATTR_DAX);
	close(fd);
	unlink(path);
	return dax;
}

static void common_setup(const char *dir)
{
	struct statfs sf;
	snprintf(workdir, sizeof workdir, "%s", dir);
	on_tmpfs = statfs(workdir, &sf) == 0 && (unsigned long)sf.f_type == 0x01021994UL;
	on_dax = !on_tmpfs && detect_dax();
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	pretouch_stack();
	reserve_arena();
	open_proc_files();
	install_handlers();
}

static void profile(void)
{
	struct utsname u;
	uname(&u);
	emit("profile release=%s\n", u.release);
	emit("profile machine=%s\n", u.machine);
	emit("profile pageSize=%ld\n", sysconf(_SC_PAGESIZE));
	struct statfs sf;
	emit("profile fileSystem=%s%s\n", statfs(workdir, &sf) == 0 ? fs_name((long)sf.f_type) : "unknown", on_dax ? "-dax" : "");

	const char *how = "";
	uint64_t z = detect_zero_page(&how);
	emit("profile zeroPage=%d\n", z != 0);
	emit("profile anonReadFault=%s\n", how);
	if (z) emit("profile zeroPfnKpageflagsZeroBit=%d\n", (int)((kpageflags(z) >> 24) & 1));

	/* PFNs visible? */
	{
		char *p = slot_addr(MAXMAPS);
		uint64_t pm[1];
		if (mmap(p, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != p) fatal("mmap");
		*(volatile char *)p = 1;
		read_pagemap(p, 1, pm);
		emit("profile pagemapPfn=%d\n", PM_PRESENT(pm[0]) && PM_PFN(pm[0]) != 0);
		emit("profile kpageflags=%d\n", kpffd >= 0 && PM_PFN(pm[0]) && kpageflags(PM_PFN(pm[0])) != 0);
		/* soft-dirty: set on a fresh write, cleared by clear_refs 4, set again by a write */
		int sd0 = (int)PM_SOFTDIRTY(pm[0]), sd1 = -1, sd2 = -1;
		if (crfd >= 0 && write(crfd, "4", 1) == 1) {
			read_pagemap(p, 1, pm);
			sd1 = (int)PM_SOFTDIRTY(pm[0]);
			*(volatile char *)p = 2;
			read_pagemap(p, 1, pm);
			sd2 = (int)PM_SOFTDIRTY(pm[0]);
		}
		emit("profile softDirty=%d\n", sd0 == 1 && sd1 == 0 && sd2 == 1);
		/* MADV_GUARD_INSTALL (102) exists from 6.13; older kernels answer EINVAL */
		emit("profile guardRegions=%d\n", madvise(p, PAGE, 102) == 0);
		munmap(p, PAGE);
	}

	/* fault_around_bytes: debugfs if readable, else one read fault on an aligned, fully
	 * cached 64-page file mapping (count the pages it mapped). */
	{
		char b[64] = "";
		int fd = open("/sys/kernel/debug/fault_around_bytes", O_RDONLY);
		long fab = -1;
		if (fd >= 0) {
			ssize_t n = read(fd, b, sizeof b - 1);
			if (n > 0) { b[n] = 0; fab = strtol(b, NULL, 10); }
			close(fd);
		}
		make_file("profile", 64, 64 * PAGE, 0, 63);
		char *p = slot_addr(MAXMAPS);
		uint64_t pm[64];
		if (mmap(p, 64 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fdmap, 0) != p) fatal("mmap file");
		madvise(p, 64 * PAGE, MADV_NOHUGEPAGE);
		sink = *(volatile char *)(p + 20 * PAGE);
		read_pagemap(p, 64, pm);
		munmap(p, 64 * PAGE);
		long lo = 20, hi = 20;
		while (lo > 0 && PM_PRESENT(pm[lo - 1])) lo--;
		while (hi < 63 && PM_PRESENT(pm[hi + 1])) hi++;
		long n = hi - lo + 1;
		emit("profile faultAroundPages=%ld\n", n);
		emit("profile faultAroundBytes=%ld\n", fab > 0 ? fab : n * (long)PAGE);
		emit("profile faultAroundSource=%s\n", fab > 0 ? "debugfs" : "inferred");
		close(fd0); close(fdmap); fd0 = fdmap = -1;
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--profile")) {
		common_setup(argv[2]);
		profile();
		flush_fd(1);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: scenario <workdir> < scenario.txt\n       scenario --profile <workdir>\n");
		return 64;
	}
	size_t len = 0;
	ssize_t n;
	while ((n = read(0, inbuf + len, sizeof inbuf - 1 - len)) > 0) len += (size_t)n;
	inbuf[len] = 0;
	static char script[sizeof inbuf];
	memcpy(script, inbuf, len + 1);

	/* One CPU for the scenario and its child: the per-CPU mlock folio batch (deferred
	 * munlock, R8.6) is then drained by whichever process runs a drain, as in the
	 * emulator's single batch; unpinned, a child's munlocks could sit on another CPU. */
	{
		cpu_set_t one;
		int cpu = sched_getcpu();
		CPU_ZERO(&one);
		CPU_SET(cpu >= 0 ? cpu : 0, &one);
		sched_setaffinity(0, sizeof one, &one);
	}
	common_setup(argv[1]);
	const char *how = "";
	zero_pfn = detect_zero_page(&how);
	warmup();
	parse_script(script, 0);
	if (file_pages > 0) {
		make_file("scenario", file_pages, file_size, file_cfrom, file_cto);
	} else {
		if (fd0 >= 0) close(fd0);
		if (fdmap >= 0) close(fdmap);
		fd0 = fdmap = -1;
	}
	emit("begin zeroPage=%d anonReadFault=%s steps=%d\n", zero_pfn != 0, how, nsteps);
	run_scenario();
	emit("end\n");
	flush_fd(1);
	return 0;
}
