// SPDX-License-Identifier: MIT
// One madvise(2) per range: what every kernel has.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "internal.h"

namespace madvisev_internal {
namespace {

ssize_t seq_chunk(const iovec *iov, size_t n, int advice) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        syscalls_made++;
        if (madvise(iov[i].iov_base, iov[i].iov_len, advice) != 0)
            return done ? static_cast<ssize_t>(done) : -1;
        done += iov[i].iov_len;
    }
    return static_cast<ssize_t>(done);
}

Answer seq_probe(const char **reason) {
    // An empty range at an aligned address: madvise(2) answers without
    // looking at memory, so the probe needs none.
    void *aligned = reinterpret_cast<void *>(static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)));
    if (madvise(aligned, 0, MADV_DONTNEED) == 0) {
        *reason = "madvise(2), one call and one TLB flush per range";
        return Answer::yes;
    }
    if (errno == ENOSYS) {
        *reason = "madvise(2) is not in this kernel (CONFIG_ADVISE_SYSCALLS off)";
        return Answer::no;
    }
    if (errno == EPERM) {
        *reason = "madvise(2) is refused (seccomp?)";
        return Answer::no;
    }
    *reason = "madvise(2) gave an unexpected answer to an empty range";
    return Answer::undecided;
}

} // namespace

const Backend &backend_sequential() {
    // The loop takes any count and size, and skips empty ranges itself.
    static const Backend b{"sequential", seq_chunk, seq_probe, {SIZE_MAX, 0, 0, false}};
    return b;
}

} // namespace madvisev_internal
