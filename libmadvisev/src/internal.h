// SPDX-License-Identifier: MIT
// Internal interface between the dispatcher (madvisev.cpp) and the backends.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace madvisev_internal {

// A backend advises a chunk the dispatcher has already validated and shaped
// to the backend's limits (see Limits).  Same return convention as
// madvisev(): bytes advised, or -1 with errno when nothing was.
using ChunkFn = ssize_t (*)(const iovec *iov, size_t n, int advice);
// Positive probe: 1 available, 0 not; *reason explains either way.
using ProbeFn = int (*)(const char **reason);

struct Limits {
    size_t max_iov;   // ranges per call
    size_t max_seg;   // bytes per range (page multiple), 0 = unlimited
    size_t max_total; // bytes per call, 0 = unlimited
    bool drop_empty;  // zero-length ranges must not reach the kernel
};

struct Backend {
    const char *name;
    ChunkFn chunk;
    ProbeFn probe;
    Limits limits;
};

const Backend &backend_syscall();
const Backend &backend_process_madvise();
const Backend &backend_io_uring();
const Backend &backend_sequential();

// Maps one anonymous page, dirties it, lets @advise reset it and checks that
// it reads zero again.  Returns 0 on success, else the errno @advise gave
// (or EIO if the page kept its data).  Backends use it as a positive probe.
int probe_dontneed_page(int (*advise)(void *page, size_t len));

// Test hook: make the process_madvise backend use a pidfd of the process
// instead of PIDFD_SELF, as on Linux 6.13 and 6.14.
void process_madvise_force_pidfd(bool on);

} // namespace madvisev_internal
