// Linux's uapi constants (same names, same values), and the kernel-internal ones a
// backend sees: VM_* flags, VM_FAULT_* results, FAULT_FLAG_* fault flags.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_DROPPABLE = 0x08;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_ANON = MAP_ANONYMOUS;
export const MAP_32BIT = 0x40;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_DENYWRITE = 0x0800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_SYNC = 0x80000;
export const MAP_FIXED_NOREPLACE = 0x100000;

export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const MADV_DONTNEED_LOCKED = 24;
export const MADV_COLLAPSE = 25;
export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;
export const MADV_GUARD_INSTALL = 102;
export const MADV_GUARD_REMOVE = 103;

export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

export const MLOCK_ONFAULT = 0x01;
export const MCL_CURRENT = 1;
export const MCL_FUTURE = 2;
export const MCL_ONFAULT = 4;

export const VM_NONE = 0x00000000;
export const VM_READ = 0x00000001;
export const VM_WRITE = 0x00000002;
export const VM_EXEC = 0x00000004;
export const VM_SHARED = 0x00000008;
export const VM_MAYREAD = 0x00000010;
export const VM_MAYWRITE = 0x00000020;
export const VM_MAYEXEC = 0x00000040;
export const VM_MAYSHARE = 0x00000080;
export const VM_GROWSDOWN = 0x00000100;
export const VM_UFFD_MISSING = 0x00000200;
export const VM_PFNMAP = 0x00000400;
export const VM_UFFD_WP = 0x00001000;
export const VM_LOCKED = 0x00002000;
export const VM_IO = 0x00004000;
export const VM_SEQ_READ = 0x00008000;
export const VM_RAND_READ = 0x00010000;
export const VM_DONTCOPY = 0x00020000;
export const VM_DONTEXPAND = 0x00040000;
export const VM_LOCKONFAULT = 0x00080000;
export const VM_ACCOUNT = 0x00100000;
export const VM_NORESERVE = 0x00200000;
export const VM_HUGETLB = 0x00400000;
export const VM_SYNC = 0x00800000;
export const VM_WIPEONFORK = 0x02000000;
export const VM_DONTDUMP = 0x04000000;
export const VM_SOFTDIRTY = 0x08000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_MERGEABLE = 0x80000000;

export const VM_FAULT_OOM = 0x000001;
export const VM_FAULT_SIGBUS = 0x000002;
export const VM_FAULT_MAJOR = 0x000004;
export const VM_FAULT_HWPOISON = 0x000010;
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
export const VM_FAULT_SIGSEGV = 0x000040;
export const VM_FAULT_NOPAGE = 0x000100;
export const VM_FAULT_LOCKED = 0x000200;
export const VM_FAULT_RETRY = 0x000400;
export const VM_FAULT_FALLBACK = 0x000800;
export const VM_FAULT_DONE_COW = 0x001000;
export const VM_FAULT_NEEDDSYNC = 0x002000;
export const VM_FAULT_COMPLETED = 0x004000;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV |
  VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK;

export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_MKWRITE = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
export const FAULT_FLAG_KILLABLE = 1 << 4;
export const FAULT_FLAG_TRIED = 1 << 5;
export const FAULT_FLAG_USER = 1 << 6;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
export const FAULT_FLAG_UNSHARE = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
export const FAULT_FLAG_VMA_LOCK = 1 << 12;

// x86 #PF error code bits, as mmu.walk reports them.
export const PF_PROT = 1;
export const PF_WRITE = 2;
export const PF_USER = 4;
export const PF_RSVD = 8;
export const PF_INSTR = 16;

// Linux's errno numbers.
export const ERRNO = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EFAULT: 14, EBUSY: 16, EEXIST: 17, ENODEV: 19, EINVAL: 22, ENFILE: 23, EFBIG: 27,
  ENOSPC: 28, EOVERFLOW: 75, EOPNOTSUPP: 95, EHWPOISON: 133,
} as const;
export type ErrnoName = keyof typeof ERRNO;

/**
 * Linux's MAX_RW_COUNT (INT_MAX rounded down to a page): the most one read(2)/write(2)
 * moves. AddressSpace.read/readAsync of more is a RangeError naming it (checked before
 * allocating); File.pread is short at it, as pread(2).
 */
export const MAX_RW_COUNT = 0x7fff_f000;

/**
 * The largest file size (bytes) the host accepts: 2^53, where a JS number stops counting
 * every byte. Linux's MAX_LFS_FILESIZE is 2^63 - 1; the core keeps 64-bit sizes and 51-bit
 * page indexes, so only the number type of this API is the narrower bound.
 */
export const MAX_FILE_BYTES = 2 ** 53;
/**
 * The most pages one pagemap() or getUserPages() call returns as an array (2^20: 4 GiB of
 * address space, ~10^6 objects). Larger ranges: AddressSpace.pagemapEntries(), which streams.
 */
export const MAX_PAGES_PER_CALL = 2 ** 20;
