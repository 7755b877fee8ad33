// SPDX-License-Identifier: MIT
// process_madvise(2) on the caller itself.  Linux 6.13 lets a process give
// itself any advice this way, 6.15 adds PIDFD_SELF and takes mmap_lock once
// per vector, 6.16 flushes the TLB once per vector.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <mutex>

#include "internal.h"

namespace madvisev_internal {
namespace {

constexpr int kPidfdSelf = -10000; // PIDFD_SELF (Linux 6.15)

// Before 6.15 the backend keeps a pidfd of its own process.  A forked child
// inherits that descriptor, which still names the parent: the (pid, fd) pair
// is checked on every call so that a child never advises its parent.
std::atomic<bool> g_use_pidfd{false};
std::atomic<uint64_t> g_pidfd{0}; // pid << 32 | fd, 0 = none
std::mutex g_pidfd_lock;

long sys_process_madvise(int pidfd, const iovec *iov, size_t n, int advice) {
    return syscall(SYS_process_madvise, pidfd, iov, n, advice, 0u);
}

int own_pidfd() {
    pid_t me = getpid();
    uint64_t v = g_pidfd.load(std::memory_order_acquire);
    if (v != 0 && static_cast<pid_t>(v >> 32) == me)
        return static_cast<int>(v & 0xffffffffu);
    std::lock_guard<std::mutex> guard(g_pidfd_lock);
    v = g_pidfd.load(std::memory_order_relaxed);
    if (v != 0 && static_cast<pid_t>(v >> 32) == me)
        return static_cast<int>(v & 0xffffffffu);
    if (v != 0)
        close(static_cast<int>(v & 0xffffffffu)); // inherited: names the parent
    // pidfds are always close-on-exec.
    int fd = static_cast<int>(syscall(SYS_pidfd_open, me, 0));
    if (fd < 0) {
        g_pidfd.store(0, std::memory_order_release);
        return -1;
    }
    g_pidfd.store(static_cast<uint64_t>(me) << 32 | static_cast<uint32_t>(fd),
                  std::memory_order_release);
    return fd;
}

int self_target() {
    return g_use_pidfd.load(std::memory_order_relaxed) ? own_pidfd() : kPidfdSelf;
}

ssize_t pm_chunk(const iovec *iov, size_t n, int advice) {
    int target = self_target();
    if (target == -1)
        return -1;
    return sys_process_madvise(target, iov, n, advice);
}

int pm_advise_page(void *p, size_t len) {
    iovec v{p, len};
    int target = self_target();
    if (target == -1)
        return errno;
    long r = sys_process_madvise(target, &v, 1, MADV_DONTNEED);
    if (r < 0)
        return errno;
    return static_cast<size_t>(r) == len ? 0 : EIO;
}

bool kernel_at_least(int major, int minor) {
    utsname u{};
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

int pm_probe(const char **reason) {
    int err = probe_dontneed_page(pm_advise_page);
    if (err == EBADF && !g_use_pidfd.load(std::memory_order_relaxed)) {
        // No PIDFD_SELF before 6.15: fall back to a pidfd of the process.
        g_use_pidfd.store(true, std::memory_order_relaxed);
        err = probe_dontneed_page(pm_advise_page);
    }
    bool pidfd = g_use_pidfd.load(std::memory_order_relaxed);
    switch (err) {
    case 0:
        if (kernel_at_least(6, 16))
            *reason = pidfd
                          ? "process_madvise(2) on a pidfd of the process: one TLB flush per vector"
                          : "process_madvise(PIDFD_SELF): one TLB flush per vector";
        else
            *reason = pidfd ? "process_madvise(2) on a pidfd of the process: one TLB flush per "
                              "range (Linux < 6.16)"
                            : "process_madvise(PIDFD_SELF): one TLB flush per range (Linux < 6.16)";
        return 1;
    case ENOSYS:
        *reason = "this kernel has no process_madvise(2) (Linux < 5.10)";
        return 0;
    case EINVAL:
        *reason = "process_madvise(2) refuses MADV_DONTNEED on the caller itself (Linux < 6.13)";
        return 0;
    case EPERM:
        *reason = "process_madvise(2) is refused (seccomp or capabilities)";
        return 0;
    default:
        *reason = "process_madvise(MADV_DONTNEED) did not zero a probe page";
        return 0;
    }
}

} // namespace

void process_madvise_force_pidfd(bool on) {
    g_use_pidfd.store(on, std::memory_order_relaxed);
}

const Backend &backend_process_madvise() {
    // import_iovec() caps a vector at MAX_RW_COUNT bytes (silently
    // truncating the rest), so ranges and chunks stay at 1 GiB, and an
    // empty range would still have its start checked for alignment.
    static const Backend b{
        "process_madvise", pm_chunk, pm_probe, {1024, size_t{1} << 30, size_t{1} << 30, true}};
    return b;
}

} // namespace madvisev_internal
