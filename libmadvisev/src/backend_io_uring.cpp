// SPDX-License-Identifier: MIT
// One io_uring submission of linked IORING_OP_MADVISE requests.  Each
// request is still its own madvise() in an io-wq worker, with its own TLB
// flush: this backend exists to be measured, never picked automatically.
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "internal.h"

namespace madvisev_internal {
namespace {

constexpr unsigned kRingEntries = 128;

// Set when this thread's ring is destroyed at thread exit.  A plain bool
// (nothing to destroy), so it can be read by a later thread_local
// destructor that calls madvisev(): that call uses a ring of its own.
thread_local bool t_ring_gone = false;

// One ring per thread, created on first use.  A forked child must not
// share its parent's ring, so the ring remembers the process that made it.
struct ThreadRing {
    io_uring ring{};
    pid_t owner = 0;
    bool per_thread = true;

    ~ThreadRing() {
        reset();
        if (per_thread)
            t_ring_gone = true;
    }
    void reset() {
        if (owner != 0)
            io_uring_queue_exit(&ring);
        owner = 0;
    }
    io_uring *get() {
        pid_t me = getpid();
        if (owner == me)
            return &ring;
        reset();
        int r = io_uring_queue_init(kRingEntries, &ring, 0);
        if (r < 0) {
            errno = -r;
            return nullptr;
        }
        owner = me;
        return &ring;
    }
};

thread_local ThreadRing t_ring;

ssize_t uring_chunk(const iovec *iov, size_t n, int advice) {
    ThreadRing once; // only set up when this thread's ring is gone
    once.per_thread = false;
    ThreadRing &tr = t_ring_gone ? once : t_ring;
    io_uring *ring = tr.get();
    if (ring == nullptr)
        return -1;
    for (size_t i = 0; i < n; i++) {
        io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_madvise(sqe, iov[i].iov_base, static_cast<off_t>(iov[i].iov_len), advice);
        // Linked, so the requests run one after another, in order.  The
        // kernel does not break the chain when a madvise request fails, so
        // ranges after a failure may be advised too; the count returned
        // still stops at the first failure.
        if (i + 1 < n)
            sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = i;
    }
    int submitted = io_uring_submit_and_wait(ring, static_cast<unsigned>(n));
    if (submitted < 0) {
        tr.reset(); // unsubmitted SQEs must not leak into the next call
        errno = -submitted;
        return -1;
    }
    size_t first_bad = n;
    int bad_err = 0;
    for (int k = 0; k < submitted; k++) {
        io_uring_cqe *cqe = nullptr;
        int r = io_uring_wait_cqe(ring, &cqe);
        if (r < 0) {
            tr.reset();
            errno = -r;
            return -1;
        }
        size_t idx = static_cast<size_t>(cqe->user_data);
        if (cqe->res < 0 && idx < first_bad) {
            first_bad = idx;
            bad_err = -cqe->res;
        }
        io_uring_cqe_seen(ring, cqe);
    }
    if (static_cast<size_t>(submitted) < n) {
        tr.reset();
        if (static_cast<size_t>(submitted) < first_bad) {
            first_bad = static_cast<size_t>(submitted);
            bad_err = EAGAIN;
        }
    }
    size_t done = 0;
    for (size_t i = 0; i < first_bad; i++)
        done += iov[i].iov_len;
    if (first_bad < n && done == 0) {
        errno = bad_err;
        return -1;
    }
    return static_cast<ssize_t>(done);
}

int uring_advise_page(void *p, size_t len) {
    iovec v{p, len};
    ssize_t r = uring_chunk(&v, 1, MADV_DONTNEED);
    if (r < 0)
        return errno;
    return static_cast<size_t>(r) == len ? 0 : EIO;
}

int uring_probe(const char **reason) {
    io_uring_probe *probe = io_uring_get_probe();
    if (probe == nullptr) {
        *reason = "io_uring is not available (kernel, sysctl or seccomp)";
        return 0;
    }
    bool has_op = io_uring_opcode_supported(probe, IORING_OP_MADVISE);
    io_uring_free_probe(probe);
    if (!has_op) {
        *reason = "io_uring lacks IORING_OP_MADVISE";
        return 0;
    }
    if (probe_dontneed_page(uring_advise_page) != 0) {
        *reason = "IORING_OP_MADVISE did not zero a probe page";
        return 0;
    }
    *reason = "io_uring IORING_OP_MADVISE: one submission, one TLB flush per range";
    return 1;
}

} // namespace

const Backend &backend_io_uring() {
    // sqe->len is 32 bits wide; a chunk is what the ring holds.
    static const Backend b{
        "io_uring", uring_chunk, uring_probe, {kRingEntries, size_t{1} << 31, 0, true}};
    return b;
}

} // namespace madvisev_internal
