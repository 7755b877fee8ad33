/* SPDX-License-Identifier: MIT */
/*
 * madvisev.h - vectored madvise(2): one call, and one TLB flush, for a
 * whole batch of address ranges.
 *
 * madvisev() applies one advice value to every range of an iovec array.
 * It uses the fastest primitive the running kernel offers, detected once:
 *
 *   "syscall"          the madvisev(2) system call of the kernel-patch/
 *                      series: one mmap_lock hold and one TLB flush per call
 *   "process_madvise"  process_madvise(2) on the caller itself (Linux 6.13+;
 *                      one TLB flush per vector from 6.16)
 *   "io_uring"         one submission of linked IORING_OP_MADVISE requests;
 *                      never chosen automatically, it exists to be measured
 *   "sequential"       one madvise(2) per range
 *
 * The MADVISEV_BACKEND environment variable forces one of these names
 * (ignored in set-user-ID programs); MADVISEV_DEBUG=1 prints the choice.
 *
 * Besides the kernel's advice values it takes MADVISEV_ZERO (below): zero
 * the ranges or fail, in place where the kernel can, emulated where not.
 */
#ifndef MADVISEV_H
#define MADVISEV_H

#include <stddef.h>
#include <sys/mman.h> /* MADV_* */
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Strict ISO modes (-std=c89, -std=c11 with no feature-test macro) make
 * <sys/mman.h> hide the MADV_* values.  The one this header's
 * documentation and most callers use is defined here with Linux's value,
 * token for token as <sys/mman.h> and <linux/mman.h> define it, so that a
 * later inclusion of either is no redefinition.  (Alpha numbers it 6.)
 */
#if !defined(MADV_DONTNEED) && defined(__linux__) && !defined(__alpha__)
#define MADV_DONTNEED 4
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MADVISEV_VERSION_MAJOR 0
#define MADVISEV_VERSION_MINOR 3

/* Exported functions; the library is built with hidden visibility. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define MADVISEV_API __attribute__((visibility("default")))
#else
#define MADVISEV_API
#endif

/*
 * madvisev(2) flags, as the patched kernel's <linux/mman.h> spells them
 * (the same tokens, so including both is not a redefinition).
 * MADVISEV_QUERY with iov == NULL, iovcnt == 0 and advice == 0 touches no
 * memory and returns MADVISEV_QUERY_MAGIC.  The library finds the system
 * call's number in /sys/kernel/mm/madvisev/syscall_nr and never calls a
 * number the kernel has not said is madvisev(2).
 */
#ifndef MADVISEV_QUERY
#define MADVISEV_QUERY 0x80000000U
#endif
#ifndef MADVISEV_QUERY_MAGIC
#define MADVISEV_QUERY_MAGIC 0x4d414456 /* "MADV" */
#endif

/*
 * MADVISEV_ZERO: after the call every byte of every range reads zero, or
 * the call fails.  Only private anonymous memory can be zeroed (private
 * MAP_HUGETLB memory included, in whole huge pages: the kernel refuses
 * part of one with EINVAL): a range in a MAP_SHARED mapping
 * (shmem, memfd, a shared file, shared hugetlb) or a private file mapping
 * is refused with EINVAL, since discarding such pages does not make them
 * read zero.  Locked (mlock()ed) memory is zeroed like any other.
 *
 * A kernel that has it (the kernel-patch/ series, version 2 or later in
 * /sys/kernel/mm/madvisev/version) clears each page present and exclusive
 * to the process in place: no page-table change, no fault when it is
 * touched again, resident memory unchanged, and no TLB flush, on x86 and
 * other architectures whose data caches do not alias, provided no other
 * thread of the process has a zap of the same range whose flush is still
 * pending (a concurrent MADV_DONTNEED or munmap()) and no flush that
 * reclaim deferred for the process is pending.  Swap entries are dropped.
 * Pages that cannot be cleared in place (shared with a child after
 * fork(), KSM pages, pages pinned or referenced by I/O in flight,
 * swap-cache pages under writeback...) are discarded as by MADV_DONTNEED
 * (in locked memory, as by MADV_DONTNEED_LOCKED): one TLB flush per call.
 * The kernel checks the ranges in order, so a refused range after zeroed
 * ones ends the call with a short count (see madvisev()).
 *
 * On any other kernel the library emulates it (madvisev_zero_native()
 * says which).  It first reads the mappings under the whole vector from
 * /proc/self/maps (PROCMAP_QUERY from Linux 6.11), so that a refused call
 * zeroes nothing; where that file cannot be read the call fails (ENOSYS
 * without /proc, else the error met, EMFILE say).  Then PAGEMAP_SCAN
 * (Linux 6.7+; before, /proc/self/pagemap) finds the pages holding data in
 * each range: present ones the process may write are cleared with
 * memset(), the others (swapped out, PROT_READ, PROT_NONE) dropped with one
 * MADV_DONTNEED call for the whole vector (MADV_DONTNEED_LOCKED where
 * locked memory refuses that).  Without PAGEMAP_SCAN the whole vector is
 * dropped so.  The emulation does not report an unmapped range (ENOMEM)
 * as the kernel does, and when a drop fails, ranges after the failed one
 * may have been zeroed too.
 *
 * The value is the patched kernel's.  The library never passes it to a
 * kernel that has not announced it, and does not define MADV_ZERO: another
 * system may give that name another value.
 */
#define MADVISEV_ZERO 1000

/* Largest iovcnt a single madvisev(2) system call takes (UIO_MAXIOV). */
#define MADVISEV_IOV_MAX 1024

/* Backends, best first.  MADVISEV_BACKEND_AUTO picks the best available. */
enum madvisev_backend {
    MADVISEV_BACKEND_AUTO = 0,
    MADVISEV_BACKEND_SYSCALL = 1,
    MADVISEV_BACKEND_PROCESS_MADVISE = 2,
    MADVISEV_BACKEND_IO_URING = 3,
    MADVISEV_BACKEND_SEQUENTIAL = 4
};
#define MADVISEV_BACKEND_MAX MADVISEV_BACKEND_SEQUENTIAL

/*
 * Apply @advice to each of the @iovcnt ranges in @iov, in order.
 *
 * Returns the number of bytes advised.  Returns -1 with errno set only when
 * nothing was advised; when a range fails after earlier ones succeeded, the
 * bytes of the ranges before it are returned.  The range that failed may
 * itself have been partly advised (as with madvise(2) over a hole).
 *
 * The arguments are checked before any range is touched:
 *   EINVAL  @flags != 0, @advice unknown, an iov_base not page-aligned, a
 *           range that wraps the address space, or an iov_len above SSIZE_MAX;
 *   EFAULT  @iov == NULL with @iovcnt > 0.
 * Then, per range: ENOMEM (not mapped) and every error madvise(2) gives;
 * for MADVISEV_ZERO, EINVAL where a mapping cannot be zeroed (above).
 * Zero-length ranges at an aligned address are skipped; at an unaligned
 * one they are EINVAL, as for madvise(2).  Any @iovcnt is accepted.
 * When the lengths sum past SSIZE_MAX the call stops before the range that
 * would take it there and returns the sum so far (EOVERFLOW if that is
 * none).  ENOSYS: the backend forced by MADVISEV_BACKEND is not available.
 * A signal never cuts a call short: it returns once every request it made
 * has finished.  With the automatic backend, a batching backend's ENOSYS,
 * EPERM, EBADF, EMFILE or ENFILE is not returned: the call is redone with
 * the next backend, down to one madvise(2) per range.
 */
MADVISEV_API ssize_t madvisev(const struct iovec *iov, size_t iovcnt, int advice,
                              unsigned int flags);

/* Name of the backend madvisev() uses: "syscall", "process_madvise",
 * "io_uring" or "sequential"; "none" if MADVISEV_BACKEND names an
 * unavailable or unknown backend. */
MADVISEV_API const char *madvisev_backend_name(void);

/* The backend madvisev() uses (never MADVISEV_BACKEND_AUTO), or -1 as for
 * "none" above. */
MADVISEV_API int madvisev_backend(void);

/* Like madvisev(), through one given backend (MADVISEV_BACKEND_AUTO is the
 * same as madvisev()).  ENOSYS if the kernel lacks it; no fallback. */
MADVISEV_API ssize_t madvisev_via(int backend, const struct iovec *iov, size_t iovcnt, int advice,
                                  unsigned int flags);

/*
 * Probe one backend.  Returns 1 if available, 0 if not, -1 with errno
 * EINVAL for an unknown backend.  A definite answer is cached for the life
 * of the process; a probe that could not decide (no memory, no free
 * descriptor) answers 0 and is tried again next time.  If @reason is not
 * NULL it receives a static one-line explanation.
 */
MADVISEV_API int madvisev_backend_probe(int backend, const char **reason);

/*
 * Never use @backend in this process from now on: madvisev() picks another,
 * madvisev_via() on it fails ENOSYS.  For sandboxes: a seccomp policy that
 * kills on system calls it does not know disables MADVISEV_BACKEND_SYSCALL
 * before the first call.  Returns 0, or -1 with errno EINVAL.
 */
MADVISEV_API int madvisev_backend_disable(int backend);

/*
 * 1 if the running kernel clears MADVISEV_ZERO ranges in place, 0 if the
 * library emulates MADVISEV_ZERO (see above).  The kernel's answer is read
 * once; MADVISEV_ZERO_EMULATE=1 in the environment (ignored in set-user-ID
 * programs) makes the library emulate on any kernel, for comparison.
 * Since 0.2 (LIBMADVISEV_0.2).
 */
MADVISEV_API int madvisev_zero_native(void);

/*
 * Emulate MADVISEV_ZERO from now on, on any kernel, while @on is nonzero;
 * 0 returns to the kernel's answer.  For tests and benchmarks that run
 * both paths in one process (MADVISEV_ZERO_EMULATE=1 does it for a whole
 * process).  Returns the previous setting, 1 or 0; never fails.
 * Since 0.3 (LIBMADVISEV_0.3).
 */
MADVISEV_API int madvisev_zero_force_emulation(int on);

/*
 * One run of pages that can hold data, as madvisev_scan_data() reports it:
 * @offset and @length in bytes, page multiples, from the start of the
 * range scanned.  Adjacent pages of one kind form one run.
 */
struct madvisev_page_run {
    size_t offset;
    size_t length;
    unsigned int flags; /* MADVISEV_RUN_* */
};
/* Swapped out (else present in memory). */
#define MADVISEV_RUN_SWAPPED 0x1U
/* A file's or shared memory's page (else private anonymous memory). */
#define MADVISEV_RUN_FILE 0x2U

/*
 * Find the pages of [@addr, @addr + @len) that can hold data: present and
 * not the shared zero page, or swapped out.  Untouched pages, pages only
 * read (the zero page) and holes hold none.  PAGEMAP_SCAN (Linux 6.7+)
 * answers; before 6.7 /proc/self/pagemap's entries, read page by page
 * (from 256 MiB on, holes and mappings without a page, per smaps, are
 * skipped).  The pagemap descriptor is kept open and checked at each call:
 * a forked child (_Fork() and clone() included) opens its own, and a
 * descriptor number the program took over is left alone.
 *
 * Stores up to @max_runs runs in @runs, in address order, and returns how
 * many.  @next_offset (may be NULL) receives where the first run that did
 * not fit begins, or the length scanned (@len rounded up to a page, as
 * madvise(2) rounds it) when all fitted: to go on, call again at
 * @addr + *next_offset (offsets are then from there).  @flags must be 0.
 *
 * Returns -1 with errno: EINVAL for @flags, an @addr not page-aligned, a
 * range that wraps, or @runs NULL with @max_runs > 0; ENOSYS where the
 * system cannot tell at all (no /proc/self/pagemap, or not readable);
 * EFAULT past the address space; any other errno for a call that failed
 * this time.  Since 0.3 (LIBMADVISEV_0.3).
 */
MADVISEV_API ssize_t madvisev_scan_data(const void *addr, size_t len,
                                        struct madvisev_page_run *runs, size_t max_runs,
                                        size_t *next_offset, unsigned int flags);

/* Name of a backend value, or NULL if unknown. */
MADVISEV_API const char *madvisev_backend_str(int backend);

/* Backend value for a name, or -1 if unknown. */
MADVISEV_API int madvisev_backend_from_str(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MADVISEV_H */
