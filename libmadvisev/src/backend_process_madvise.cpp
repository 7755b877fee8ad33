// SPDX-License-Identifier: MIT
// process_madvise(2) on the caller itself.  Linux 6.13 lets a process give
// itself any advice this way, 6.15 adds PIDFD_SELF and takes mmap_lock once
// per vector, 6.16 flushes the TLB once per vector.  A 6.12 or 6.1 kernel
// with the kernel-patch/ series flushes once per vector too, and takes
// PIDFD_SELF from the series' patch 11 on.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "internal.h"

namespace madvisev_internal {
namespace {

constexpr int kPidfdSelf = -10000; // PIDFD_SELF (Linux 6.15)

// Before 6.15 the backend opens a pidfd of the process for each call and
// closes it after: a descriptor kept between calls could be closed or
// reused by the application, and after fork() it names the parent.
std::atomic<bool> g_pidfd_per_call{false};

long pm_call(int pidfd, const iovec *iov, size_t n, int advice) {
    syscalls_made++;
    return syscall(SYS_process_madvise, pidfd, iov, n, advice, 0u);
}

long pm_self(const iovec *iov, size_t n, int advice) {
    if (!g_pidfd_per_call.load(std::memory_order_relaxed))
        return pm_call(kPidfdSelf, iov, n, advice);
    int fd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)); // close-on-exec
    if (fd < 0)
        return -1;
    long r = pm_call(fd, iov, n, advice);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

ssize_t pm_chunk(const iovec *iov, size_t n, int advice) {
    long r = pm_self(iov, n, advice);
    // import_iovec() refuses the whole vector when one range lies outside
    // the user address space, where madvise(2) advises the ranges before
    // it and fails that one with ENOMEM: do the same, range by range.
    if (r < 0 && errno == EFAULT)
        return backend_sequential().chunk(iov, n, advice);
    return r;
}

// The series announces itself in sysfs; its process_madvise() shares one
// TLB flush per vector whatever the kernel's version.
bool series_present() {
    return access("/sys/kernel/mm/madvisev/version", F_OK) == 0;
}

bool kernel_at_least(int major, int minor) {
    utsname u{};
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

Answer pm_probe(const char **reason) {
    // One empty range: the kernel checks the advice and the target, and
    // advises nothing, so the probe needs no memory.
    iovec empty{nullptr, 0};
    long r = pm_self(&empty, 1, MADV_DONTNEED);
    if (r < 0 && errno == EBADF && !g_pidfd_per_call.load(std::memory_order_relaxed)) {
        // No PIDFD_SELF before 6.15: a pidfd of the process per call.
        g_pidfd_per_call.store(true, std::memory_order_relaxed);
        r = pm_self(&empty, 1, MADV_DONTNEED);
    }
    bool pidfd = g_pidfd_per_call.load(std::memory_order_relaxed);
    if (r == 0) {
        if (kernel_at_least(6, 16) || series_present())
            *reason = pidfd ? "process_madvise(2) on a pidfd per call: one TLB flush per vector"
                            : "process_madvise(PIDFD_SELF): one TLB flush per vector";
        else
            *reason = pidfd ? "process_madvise(2) on a pidfd per call: one TLB flush per range "
                              "(Linux < 6.16 without the madvisev series)"
                            : "process_madvise(PIDFD_SELF): one TLB flush per range (Linux < 6.16 "
                              "without the madvisev series)";
        return Answer::yes;
    }
    switch (errno) {
    case ENOSYS:
        *reason = "this kernel has no process_madvise(2) (Linux < 5.10)";
        return Answer::no;
    case EINVAL:
        *reason = "process_madvise(2) refuses MADV_DONTNEED on the caller itself (Linux < 6.13)";
        return Answer::no;
    case EPERM:
        *reason = "process_madvise(2) is refused (seccomp or capabilities)";
        return Answer::no;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        *reason = "could not open a pidfd of the process (no free descriptor or memory); asked "
                  "again at the next call";
        return Answer::undecided;
    default:
        *reason = "process_madvise(2) gave an unexpected answer to an empty vector";
        return Answer::undecided;
    }
}

} // namespace

bool process_madvise_force_pidfd(bool on) {
    return g_pidfd_per_call.exchange(on, std::memory_order_relaxed);
}

const Backend &backend_process_madvise() {
    // import_iovec() caps a vector at MAX_RW_COUNT bytes and silently drops
    // the rest, so a call carries at most 1 GiB; a longer range goes to
    // madvise(2) whole (one call, one flush, whatever its size), so no range
    // is ever cut.  An empty range would still have its start checked.
    static const Backend b{
        "process_madvise", pm_chunk, pm_probe, {1024, size_t{1} << 30, size_t{1} << 30, true}};
    return b;
}

} // namespace madvisev_internal
