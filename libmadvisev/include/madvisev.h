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
 * The MADVISEV_BACKEND environment variable forces one of these names.
 */
#ifndef MADVISEV_H
#define MADVISEV_H

#include <stddef.h>
#include <sys/mman.h> /* MADV_* */
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MADVISEV_VERSION_MAJOR 0
#define MADVISEV_VERSION_MINOR 1

/*
 * System call number of madvisev(2) in the kernel-patch/ series, the same
 * on x86_64 and on asm-generic architectures.  Far above the numbers
 * upstream hands out, so that it never collides with a future syscall.
 */
#ifndef __NR_madvisev
#define __NR_madvisev 1000
#endif

/*
 * madvisev(2) flags.  MADVISEV_QUERY with iov == NULL, iovcnt == 0 and
 * advice == 0 touches no memory and returns MADVISEV_QUERY_MAGIC; this
 * positive answer is how the library tells the real madvisev(2) from
 * whatever else the number might mean on another kernel.
 */
#define MADVISEV_QUERY 0x80000000u
#define MADVISEV_QUERY_MAGIC 0x4d414456L /* "MADV" */

/* Largest iovcnt a single madvisev(2) system call takes (UIO_MAXIOV). */
#define MADVISEV_IOV_MAX 1024

/* Backends, best first.  MADVISEV_BACKEND_AUTO picks the best available. */
enum madvisev_backend {
    MADVISEV_BACKEND_AUTO = 0,
    MADVISEV_BACKEND_SYSCALL = 1,
    MADVISEV_BACKEND_PROCESS_MADVISE = 2,
    MADVISEV_BACKEND_IO_URING = 3,
    MADVISEV_BACKEND_SEQUENTIAL = 4,
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
 * Then, per range: ENOMEM (not mapped) and every error madvise(2) gives.
 * Zero-length ranges are skipped unexamined.  Any @iovcnt is accepted.
 * ENOSYS: the backend forced by MADVISEV_BACKEND is not available.
 */
ssize_t madvisev(const struct iovec *iov, size_t iovcnt, int advice, unsigned int flags);

/* Name of the backend madvisev() uses: "syscall", "process_madvise",
 * "io_uring" or "sequential"; "none" if MADVISEV_BACKEND names an
 * unavailable or unknown backend. */
const char *madvisev_backend_name(void);

/* The backend madvisev() uses (never MADVISEV_BACKEND_AUTO), or -1 as for
 * "none" above. */
int madvisev_backend(void);

/* Like madvisev(), through one given backend (MADVISEV_BACKEND_AUTO is the
 * same as madvisev()).  ENOSYS if the kernel lacks it; no fallback. */
ssize_t madvisev_via(int backend, const struct iovec *iov, size_t iovcnt, int advice,
                     unsigned int flags);

/*
 * Probe one backend (cached after the first call).  Returns 1 if available,
 * 0 if not, -1 with errno EINVAL for an unknown backend.  If @reason is not
 * NULL it receives a static one-line explanation.
 */
int madvisev_backend_probe(int backend, const char **reason);

/* Name of a backend value, or NULL if unknown. */
const char *madvisev_backend_str(int backend);

/* Backend value for a name, or -1 if unknown. */
int madvisev_backend_from_str(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MADVISEV_H */
