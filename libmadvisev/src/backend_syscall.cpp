// SPDX-License-Identifier: MIT
// The madvisev(2) system call of the kernel-patch/ series.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "internal.h"
#include "madvisev.h"

namespace madvisev_internal {
namespace {

ssize_t sys_chunk(const iovec *iov, size_t n, int advice) {
    return syscall(__NR_madvisev, iov, n, advice, 0u);
}

int sys_probe(const char **reason) {
    // Positive detection: only madvisev(2) answers this query with the
    // magic value.  ENOSYS alone would prove nothing, since the number may
    // belong to another system call on another kernel.
    errno = 0;
    long r = syscall(__NR_madvisev, nullptr, 0, 0, MADVISEV_QUERY);
    if (r == MADVISEV_QUERY_MAGIC) {
        *reason = "madvisev(2): one mmap_lock hold and one TLB flush per call";
        return 1;
    }
    if (r < 0 && errno == ENOSYS)
        *reason = "this kernel has no madvisev(2) (it needs the kernel-patch/ series)";
    else if (r < 0 && errno == EPERM)
        *reason = "the madvisev(2) query is refused (seccomp?)";
    else
        *reason = "the syscall number does not answer the madvisev(2) query: not madvisev";
    return 0;
}

} // namespace

const Backend &backend_syscall() {
    // The kernel skips empty ranges and takes any length itself.
    static const Backend b{"syscall", sys_chunk, sys_probe, {MADVISEV_IOV_MAX, 0, 0, false}};
    return b;
}

} // namespace madvisev_internal
