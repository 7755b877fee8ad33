// SPDX-License-Identifier: MIT
// The madvisev(2) system call of the kernel-patch/ series.  Its number comes
// from /sys/kernel/mm/madvisev/syscall_nr: a kernel without the series has
// no such file, and the library never calls a number the kernel has not
// named, since a sandbox may kill the process for an unknown one.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "internal.h"
#include "madvisev.h"

namespace madvisev_internal {
namespace {

constexpr const char kNrFile[] = "/sys/kernel/mm/madvisev/syscall_nr";

std::atomic<long> g_nr{-1};

ssize_t sys_chunk(const iovec *iov, size_t n, int advice) {
    long nr = g_nr.load(std::memory_order_relaxed);
    if (nr < 0) { // the kernel never named the call
        errno = ENOSYS;
        return -1;
    }
    syscalls_made++;
    return syscall(nr, iov, n, advice, 0u);
}

Answer sys_probe(const char **reason) {
    int fd = open(kNrFile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR) {
            *reason = "could not open /sys/kernel/mm/madvisev/syscall_nr (no free descriptor "
                      "or memory); asked again at the next call";
            return Answer::undecided;
        }
        *reason = "this kernel has no madvisev(2) (no /sys/kernel/mm/madvisev/syscall_nr; it "
                  "needs the kernel-patch/ series)";
        return Answer::no;
    }
    char buf[32] = {};
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    char *end = nullptr;
    long nr = got > 0 ? strtol(buf, &end, 10) : -1;
    if (got <= 0 || end == buf || nr <= 0 || nr > 4095) {
        *reason = "/sys/kernel/mm/madvisev/syscall_nr does not hold a system call number";
        return Answer::no;
    }
#if defined(__x86_64__) && defined(__ILP32__)
    nr |= 0x40000000L; // x32 callers enter through the x32 numbers
#endif
    // The kernel named the call; its query answer confirms it.
    syscalls_made++;
    long r = syscall(nr, nullptr, 0, 0, MADVISEV_QUERY);
    if (r != MADVISEV_QUERY_MAGIC) {
        *reason = errno == EPERM || errno == ENOSYS
                      ? "madvisev(2) is refused (seccomp?)"
                      : "the number in /sys/kernel/mm/madvisev/syscall_nr does not answer the "
                        "madvisev(2) query";
        return Answer::no;
    }
    g_nr.store(nr, std::memory_order_relaxed);
    *reason = "madvisev(2): one mmap_lock hold and one TLB flush per call";
    return Answer::yes;
}

} // namespace

const Backend &backend_syscall() {
    // The kernel skips empty ranges and takes any length itself.
    static const Backend b{"syscall", sys_chunk, sys_probe, {MADVISEV_IOV_MAX, 0, 0, false}};
    return b;
}

} // namespace madvisev_internal
