// SPDX-License-Identifier: MIT
// One madvise(2) per range: what every kernel has.
#include <sys/mman.h>

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
        if (madvise(iov[i].iov_base, iov[i].iov_len, advice) != 0)
            return done ? static_cast<ssize_t>(done) : -1;
        done += iov[i].iov_len;
    }
    return static_cast<ssize_t>(done);
}

int seq_probe(const char **reason) {
    int err = probe_dontneed_page(
        [](void *p, size_t len) { return madvise(p, len, MADV_DONTNEED) ? errno : 0; });
    switch (err) {
    case 0:
        *reason = "madvise(2), one call and one TLB flush per range";
        return 1;
    case ENOSYS:
        *reason = "madvise(2) is not in this kernel (CONFIG_ADVISE_SYSCALLS off)";
        return 0;
    case EPERM:
        *reason = "madvise(2) is refused (seccomp?)";
        return 0;
    default:
        *reason = "madvise(MADV_DONTNEED) did not zero a probe page";
        return 0;
    }
}

} // namespace

const Backend &backend_sequential() {
    // The loop handles any count, size and empty range itself.
    static const Backend b{"sequential", seq_chunk, seq_probe, {SIZE_MAX, 0, 0, false}};
    return b;
}

} // namespace madvisev_internal
