// SPDX-License-Identifier: MIT
// Argument checks, backend selection and chunking.  The checks run before
// any range is touched, so a bad vector is refused as a whole and every
// backend gives the same answer for the same input.
#include "madvisev.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "internal.h"

using namespace madvisev_internal;

namespace {

const Backend *backend_ops(int b) {
    switch (b) {
    case MADVISEV_BACKEND_SYSCALL:
        return &backend_syscall();
    case MADVISEV_BACKEND_PROCESS_MADVISE:
        return &backend_process_madvise();
    case MADVISEV_BACKEND_IO_URING:
        return &backend_io_uring();
    case MADVISEV_BACKEND_SEQUENTIAL:
        return &backend_sequential();
    default:
        return nullptr;
    }
}

// Probes run once per backend and are cached for the life of the process.
struct ProbeCache {
    std::once_flag once;
    int available = 0;
    const char *reason = nullptr;
};
ProbeCache g_probe[MADVISEV_BACKEND_MAX + 1];

int probe_cached(int b, const char **reason) {
    ProbeCache &c = g_probe[b];
    std::call_once(c.once, [&] {
        const char *r = "unknown";
        c.available = backend_ops(b)->probe(&r);
        c.reason = r;
    });
    if (reason)
        *reason = c.reason;
    return c.available;
}

// The backend madvisev() uses: chosen once, from MADVISEV_BACKEND or by
// probing the best first.  -1 with an errno when the forced one is unusable.
struct Selection {
    std::once_flag once;
    int backend = -1;
    int err = 0;
} g_sel;

void select_backend() {
    const char *env = getenv("MADVISEV_BACKEND");
    if (env != nullptr && *env != '\0' && strcmp(env, "auto") != 0) {
        int b = madvisev_backend_from_str(env);
        if (b < 0) {
            fprintf(stderr,
                    "libmadvisev: MADVISEV_BACKEND=%s: unknown backend "
                    "(use syscall, process_madvise, io_uring, sequential or auto)\n",
                    env);
            g_sel.err = EINVAL;
            return;
        }
        const char *why = nullptr;
        if (!probe_cached(b, &why)) {
            fprintf(stderr, "libmadvisev: MADVISEV_BACKEND=%s: backend not available: %s\n", env,
                    why);
            g_sel.err = ENOSYS;
            return;
        }
        g_sel.backend = b;
        return;
    }
    // io_uring is never picked: it still flushes once per range.
    for (int b : {MADVISEV_BACKEND_SYSCALL, MADVISEV_BACKEND_PROCESS_MADVISE,
                  MADVISEV_BACKEND_SEQUENTIAL}) {
        if (probe_cached(b, nullptr)) {
            g_sel.backend = b;
            return;
        }
    }
    g_sel.err = ENOSYS; // not even madvise(2)
}

int selected(int *err) {
    std::call_once(g_sel.once, select_backend);
    *err = g_sel.err;
    return g_sel.backend;
}

bool advice_known(int advice) {
    switch (advice) {
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_DONTNEED:
    case 8:   // MADV_FREE
    case 9:   // MADV_REMOVE
    case 10:  // MADV_DONTFORK
    case 11:  // MADV_DOFORK
    case 12:  // MADV_MERGEABLE
    case 13:  // MADV_UNMERGEABLE
    case 14:  // MADV_HUGEPAGE
    case 15:  // MADV_NOHUGEPAGE
    case 16:  // MADV_DONTDUMP
    case 17:  // MADV_DODUMP
    case 18:  // MADV_WIPEONFORK
    case 19:  // MADV_KEEPONFORK
    case 20:  // MADV_COLD
    case 21:  // MADV_PAGEOUT
    case 22:  // MADV_POPULATE_READ
    case 23:  // MADV_POPULATE_WRITE
    case 24:  // MADV_DONTNEED_LOCKED
    case 25:  // MADV_COLLAPSE
    case 100: // MADV_HWPOISON
    case 101: // MADV_SOFT_OFFLINE
    case 102: // MADV_GUARD_INSTALL
    case 103: // MADV_GUARD_REMOVE
        return true;
    default:
        return false;
    }
}

// EINVAL/EFAULT checks of the whole vector; 0 if it may be advised.
int check_args(const iovec *iov, size_t iovcnt, int advice, unsigned int flags) {
    if (flags != 0 || !advice_known(advice))
        return EINVAL;
    if (iovcnt == 0)
        return 0;
    if (iov == nullptr)
        return EFAULT;
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    for (size_t i = 0; i < iovcnt; i++) {
        uintptr_t start = reinterpret_cast<uintptr_t>(iov[i].iov_base);
        size_t len = iov[i].iov_len;
        if (len == 0)
            continue;
        if (start & (page - 1))
            return EINVAL;
        // start + len rounded up to a page must not wrap, and, as for any
        // iovec the kernel copies, len must fit in an ssize_t.
        if (len > static_cast<size_t>(SSIZE_MAX) || len > UINTPTR_MAX - start ||
            ((start + len + page - 1) & ~(page - 1)) == 0)
            return EINVAL;
    }
    return 0;
}

ssize_t finish(size_t done, ssize_t r) {
    if (r < 0 && done == 0)
        return -1;
    return static_cast<ssize_t>(done);
}

// A backend that takes ranges as they are: hand it slices of the caller's
// vector, no copy.
ssize_t run_passthrough(const Backend &be, const iovec *iov, size_t iovcnt, int advice) {
    size_t done = 0;
    for (size_t off = 0; off < iovcnt;) {
        size_t n = std::min(iovcnt - off, be.limits.max_iov);
        size_t want = 0;
        for (size_t i = off; i < off + n; i++)
            want += iov[i].iov_len; // no wrap: each range was checked
        if (want > static_cast<size_t>(SSIZE_MAX) - done)
            return static_cast<ssize_t>(done); // keep the result representable
        ssize_t r = be.chunk(iov + off, n, advice);
        if (r < 0)
            return finish(done, r);
        done += static_cast<size_t>(r);
        if (static_cast<size_t>(r) < want)
            return static_cast<ssize_t>(done);
        off += n;
    }
    return static_cast<ssize_t>(done);
}

// A piece of a caller's range, cut to the backend's limits.
struct Piece {
    iovec v;
    bool ends_range; // the last piece of its caller range
};

// Backends with per-range or per-call byte limits: cut ranges into pieces,
// drop empty ones, and count progress in whole caller ranges.
ssize_t run_shaped(const Backend &be, const iovec *iov, size_t iovcnt, int advice) {
    // Per call, not thread_local: madvisev() must work from a thread_local
    // destructor too (a pool flushing at thread exit), after this thread's
    // other thread_locals are gone.
    std::vector<Piece> pieces;
    std::vector<iovec> vec;
    const Limits &lim = be.limits;
    size_t done = 0;       // bytes of whole caller ranges advised
    size_t partial = 0;    // bytes of the current caller range advised so far
    size_t i = 0, off = 0; // next caller range and offset in it

    while (i < iovcnt) {
        pieces.clear();
        size_t total = 0;
        while (i < iovcnt && pieces.size() < lim.max_iov) {
            size_t len = iov[i].iov_len - off;
            if (len == 0) {
                i++, off = 0;
                continue;
            }
            size_t cut = len;
            if (lim.max_seg)
                cut = std::min(cut, lim.max_seg);
            if (lim.max_total) {
                if (total >= lim.max_total)
                    break;
                cut = std::min(cut, lim.max_total - total); // both page multiples
            }
            char *base = static_cast<char *>(iov[i].iov_base) + off;
            bool last = cut == len;
            pieces.push_back({{base, cut}, last});
            total += cut;
            if (last)
                i++, off = 0;
            else
                off += cut;
        }
        if (pieces.empty())
            break;
        if (total > static_cast<size_t>(SSIZE_MAX) - done - partial)
            return static_cast<ssize_t>(done);
        vec.resize(pieces.size());
        for (size_t k = 0; k < pieces.size(); k++)
            vec[k] = pieces[k].v;
        ssize_t r = be.chunk(vec.data(), vec.size(), advice);
        size_t got = r < 0 ? 0 : static_cast<size_t>(r);
        size_t k = 0;
        for (; k < pieces.size() && got >= pieces[k].v.iov_len; k++) {
            got -= pieces[k].v.iov_len;
            partial += pieces[k].v.iov_len;
            if (pieces[k].ends_range) {
                done += partial;
                partial = 0;
            }
        }
        if (k == pieces.size())
            continue;
        // Stopped at piece k.  Its error is only known if the call failed
        // outright; after a short count, ask for it with that piece alone.
        if (done > 0)
            return static_cast<ssize_t>(done);
        if (r >= 0) {
            ssize_t again = be.chunk(&pieces[k].v, 1, advice);
            if (again >= 0)
                errno = EAGAIN;
        }
        return -1;
    }
    return static_cast<ssize_t>(done);
}

ssize_t run(int b, const iovec *iov, size_t iovcnt, int advice) {
    const Backend &be = *backend_ops(b);
    if (!be.limits.drop_empty && be.limits.max_seg == 0 && be.limits.max_total == 0)
        return run_passthrough(be, iov, iovcnt, advice);
    return run_shaped(be, iov, iovcnt, advice);
}

} // namespace

extern "C" {

ssize_t madvisev_via(int backend, const struct iovec *iov, size_t iovcnt, int advice,
                     unsigned int flags) {
    if (backend < MADVISEV_BACKEND_AUTO || backend > MADVISEV_BACKEND_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (int err = check_args(iov, iovcnt, advice, flags)) {
        errno = err;
        return -1;
    }
    if (backend == MADVISEV_BACKEND_AUTO) {
        int err = 0;
        backend = selected(&err);
        if (backend < 0) {
            errno = err;
            return -1;
        }
    } else if (!probe_cached(backend, nullptr)) {
        errno = ENOSYS;
        return -1;
    }
    if (iovcnt == 0)
        return 0;
    return run(backend, iov, iovcnt, advice);
}

ssize_t madvisev(const struct iovec *iov, size_t iovcnt, int advice, unsigned int flags) {
    return madvisev_via(MADVISEV_BACKEND_AUTO, iov, iovcnt, advice, flags);
}

int madvisev_backend(void) {
    int err = 0;
    return selected(&err);
}

const char *madvisev_backend_name(void) {
    const char *name = madvisev_backend_str(madvisev_backend());
    return name ? name : "none";
}

int madvisev_backend_probe(int backend, const char **reason) {
    if (backend_ops(backend) == nullptr) {
        errno = EINVAL;
        return -1;
    }
    return probe_cached(backend, reason);
}

const char *madvisev_backend_str(int backend) {
    const Backend *be = backend_ops(backend);
    return be ? be->name : nullptr;
}

int madvisev_backend_from_str(const char *name) {
    if (name == nullptr)
        return -1;
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++)
        if (strcmp(name, backend_ops(b)->name) == 0)
            return b;
    return -1;
}

} // extern "C"
