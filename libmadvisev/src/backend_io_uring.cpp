// SPDX-License-Identifier: MIT
// One io_uring submission of linked IORING_OP_MADVISE requests.  Each
// request is still its own madvise() in an io-wq worker, with its own TLB
// flush: this backend exists to be measured, never picked automatically.
//
// liburing is loaded with dlopen() at first use, so the shared library does
// not need it at run time; static builds (MADVISEV_URING_LINKED) call it
// directly.  Only liburing's inline helpers and the functions in UringApi
// are used.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "internal.h"

#ifndef MADVISEV_NO_IO_URING
#include <liburing.h>
#ifndef MADVISEV_URING_LINKED
#include <dlfcn.h>
#endif
#include <mutex>
#include <type_traits>
#endif

namespace madvisev_internal {
namespace {

#ifdef MADVISEV_NO_IO_URING

ssize_t uring_chunk(const iovec *, size_t, int) {
    errno = ENOSYS;
    return -1;
}

Answer uring_probe(const char **reason) {
    *reason = "built without liburing";
    return Answer::no;
}

#else

struct UringApi {
    int (*queue_init)(unsigned, io_uring *, unsigned);
    void (*queue_exit)(io_uring *);
    int (*submit)(io_uring *);
    int (*get_cqe)(io_uring *, io_uring_cqe **, unsigned, unsigned, sigset_t *);
    io_uring_probe *(*get_probe_ring)(io_uring *);
    void (*free_probe)(io_uring_probe *);
};

UringApi g_api{};
std::atomic<bool> g_api_ok{false};
bool g_api_failed = false; // definitely: not there, or not usable
int g_api_errno = EMFILE;  // why not yet, while not failed
const char *g_api_why = "liburing not loaded";
std::mutex g_api_lock;

void load_api() {
#ifdef MADVISEV_URING_LINKED
    g_api = {io_uring_queue_init, io_uring_queue_exit,     io_uring_submit,
             __io_uring_get_cqe,  io_uring_get_probe_ring, io_uring_free_probe};
    g_api_ok.store(true, std::memory_order_release);
#else
    // dlopen() needs a descriptor; with none free its failure says nothing
    // about liburing, so it is tried again later.
    int probe_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe_fd < 0) {
        g_api_why = "no free descriptor to load liburing.so.2; asked again at the next call";
        g_api_errno = EMFILE;
        return;
    }
    close(probe_fd);
    void *h = dlopen("liburing.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
        // Only "no such file" is a definite no.  Anything else (no memory
        // to map it: ENOMEM under RLIMIT_AS or a full address space, a
        // descriptor taken by another thread meanwhile...) may pass: the
        // load is tried again at the next call.  dlerror() ends with
        // strerror() of the cause, in the locale strerror() uses here.
        const char *err = dlerror();
        if (err != nullptr && strstr(err, strerror(ENOENT)) != nullptr) {
            g_api_why = "liburing.so.2 cannot be loaded (package liburing2)";
            g_api_failed = true;
        } else {
            g_api_why = "liburing.so.2 could not be loaded now (no memory?); asked again at the "
                        "next call";
            g_api_errno = ENOMEM;
        }
        return;
    }
    bool ok = true;
    auto sym = [&](auto &fn, const char *name) {
        void *p = dlsym(h, name);
        ok = ok && p != nullptr;
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    sym(g_api.queue_init, "io_uring_queue_init");
    sym(g_api.queue_exit, "io_uring_queue_exit");
    sym(g_api.submit, "io_uring_submit");
    sym(g_api.get_cqe, "__io_uring_get_cqe");
    sym(g_api.get_probe_ring, "io_uring_get_probe_ring");
    sym(g_api.free_probe, "io_uring_free_probe");
    if (!ok) {
        g_api_why = "liburing.so.2 lacks a function the backend needs";
        g_api_failed = true;
        return; // the handle stays open: nothing is unloaded behind a caller
    }
    g_api_ok.store(true, std::memory_order_release);
#endif
}

// liburing's functions are loaded: true; else false with errno ENOSYS when
// they never will be, EMFILE or ENOMEM when they could not be yet.
bool api() {
    if (g_api_ok.load(std::memory_order_acquire))
        return true;
    ForkGate gate; // dlopen() runs under g_api_lock: no fork() meanwhile
    std::lock_guard<std::mutex> guard(g_api_lock);
    if (!g_api_ok.load(std::memory_order_relaxed) && !g_api_failed)
        load_api();
    if (g_api_ok.load(std::memory_order_relaxed))
        return true;
    errno = g_api_failed ? ENOSYS : g_api_errno;
    return false;
}

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
    // Only ever called with no request in flight.
    void reset() {
        if (owner != 0)
            g_api.queue_exit(&ring);
        owner = 0;
    }
    io_uring *get() {
        pid_t me = getpid();
        if (owner == me)
            return &ring;
        if (owner != 0) // inherited across fork(): the parent's, not ours
            reset();
        int r = g_api.queue_init(kRingEntries, &ring, 0);
        if (r < 0) {
            errno = -r;
            return nullptr;
        }
        owner = me;
        return &ring;
    }
};

thread_local ThreadRing t_ring;

// Waits for one completion.  A signal does not end the wait: the caller
// returns only when every request it submitted has completed, or data the
// application writes after the return could still be zapped.
int wait_one(io_uring *ring, io_uring_cqe **cqe) {
    for (;;) {
        int r = g_api.get_cqe(ring, cqe, 0, 1, nullptr);
        if (r != -EINTR && r != -EAGAIN)
            return r;
    }
}

// Submits @iov as one linked chain and reaps every completion: sets the
// index of the first request that failed (n if none) and its error.
// Returns false, with errno, if the ring itself failed.
bool run_chain(ThreadRing &tr, io_uring *ring, const iovec *iov, size_t n, int advice,
               size_t *first_bad, int *bad_err) {
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
    syscalls_made++;
    int submitted;
    do
        submitted = g_api.submit(ring);
    while (submitted == -EINTR);
    if (submitted < 0) {
        tr.reset(); // nothing in flight; unsubmitted SQEs must not linger
        errno = -submitted;
        return false;
    }
    *first_bad = n;
    *bad_err = 0;
    for (int k = 0; k < submitted; k++) {
        io_uring_cqe *cqe = nullptr;
        int r = wait_one(ring, &cqe);
        if (r < 0) { // cannot happen with a ring of our own; reported
            tr.reset();
            errno = -r;
            return false;
        }
        size_t idx = static_cast<size_t>(cqe->user_data);
        if (cqe->res < 0 && idx < *first_bad) {
            *first_bad = idx;
            *bad_err = -cqe->res;
        }
        io_uring_cqe_seen(ring, cqe);
    }
    if (static_cast<size_t>(submitted) < n) {
        tr.reset(); // every submitted request has completed
        if (static_cast<size_t>(submitted) < *first_bad) {
            *first_bad = static_cast<size_t>(submitted);
            *bad_err = EAGAIN;
        }
    }
    return true;
}

// A request cut short by something other than its range (a signal, a
// cancelled link, a ring that took fewer requests): worth running again.
bool transient(int err) {
    return err == EINTR || err == ECANCELED || err == EAGAIN;
}

ssize_t uring_chunk(const iovec *iov, size_t n, int advice) {
    if (!api())
        return -1;
    ThreadRing once; // only set up when this thread's ring is gone
    once.per_thread = false;
    ThreadRing &tr = t_ring_gone ? once : t_ring;
    size_t start = 0, done = 0;
    int err = 0;
    for (int attempt = 0; start < n; attempt++) {
        io_uring *ring = tr.get();
        if (ring == nullptr) {
            err = errno;
            break;
        }
        size_t bad = 0;
        if (!run_chain(tr, ring, iov + start, n - start, advice, &bad, &err)) {
            err = errno;
            break;
        }
        for (size_t i = start; i < start + bad; i++)
            done += iov[i].iov_len;
        start += bad;
        // Every request has completed: what was cut short can run again.
        if (start == n || !transient(err) || attempt >= 64)
            break;
    }
    if (start < n && done == 0) {
        errno = err;
        return -1;
    }
    return static_cast<ssize_t>(done);
}

Answer uring_probe(const char **reason) {
    if (!api()) {
        *reason = g_api_why;
        return errno == ENOSYS ? Answer::no : Answer::undecided;
    }
    io_uring ring{};
    int r = g_api.queue_init(2, &ring, 0);
    if (r == -EMFILE || r == -ENFILE || r == -ENOMEM) {
        *reason = "could not set up an io_uring (no free descriptor or memory); asked again "
                  "at the next call";
        return Answer::undecided;
    }
    if (r < 0) {
        *reason = "io_uring is not available (kernel, sysctl or seccomp)";
        return Answer::no;
    }
    io_uring_probe *probe = g_api.get_probe_ring(&ring);
    bool has_op = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_MADVISE);
    if (probe)
        g_api.free_probe(probe);
    g_api.queue_exit(&ring);
    if (probe == nullptr) {
        *reason = "could not ask io_uring which operations it has; asked again at the next call";
        return Answer::undecided;
    }
    if (!has_op) {
        *reason = "io_uring lacks IORING_OP_MADVISE";
        return Answer::no;
    }
    *reason = "io_uring IORING_OP_MADVISE: one submission, one TLB flush per range";
    return Answer::yes;
}

#endif

} // namespace

const Backend &backend_io_uring() {
    // sqe->len is 32 bits wide: a longer range goes to madvise(2) whole.
    // A chunk is what the ring holds.
    static const Backend b{"io_uring", uring_chunk, uring_probe, {128, size_t{1} << 31, 0, true}};
    return b;
}

} // namespace madvisev_internal
