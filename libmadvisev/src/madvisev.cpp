// SPDX-License-Identifier: MIT
// Argument checks, backend selection, chunking and fallback.  The checks run before
// any range is touched, so a bad vector is refused as a whole and every
// backend gives the same answer for the same input.
#include "madvisev.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
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
#include <new>
#include <system_error>
#include <vector>

#include "internal.h"
#include "page_scan.h"

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

// The order automatic selection tries backends in.  io_uring is never
// picked: it still flushes once per range.
constexpr int kAutoOrder[] = {MADVISEV_BACKEND_SYSCALL, MADVISEV_BACKEND_PROCESS_MADVISE,
                              MADVISEV_BACKEND_SEQUENTIAL};

// fork() in one thread while another is inside first use (a probe, the
// first scan of MADVISEV_ZERO's emulation) must leave the child a library
// it can use: no lock of ours may be held across a system call, since a
// child inherits a held lock with no thread to release it.  Probes run
// unlocked (two threads may both probe; the answers agree) and publish
// atomically.  What runs under locks we do not own (the pagemap file's
// opening, liburing's loading) runs inside the fork gate (ForkGate,
// internal.h) instead: fork() waits, in its prepare handler, until no
// thread is inside, and no thread enters while a fork() is on its way.
// Atomics, not a lock: a lock is what a child must not inherit held (and a
// write-locked rwlock cannot be released in the child, whose thread id the
// lock does not know).
std::atomic<int> g_gate_inside{0};      // threads inside a gate
std::atomic<int> g_gate_forking{0};     // fork()s between prepare and parent
thread_local unsigned t_gate_depth = 0; // trivially destructible

void gate_prepare() {
    g_gate_forking.fetch_add(1);
    while (g_gate_inside.load() != 0)
        sched_yield();
}
void gate_parent() {
    g_gate_forking.fetch_sub(1);
}
void gate_child() {
    // The child has one thread, this one, outside every gate.
    g_gate_inside.store(0);
    g_gate_forking.store(0);
}

// Registered when the library is loaded, before any thread can use it;
// where that fails (no memory), the gate does not hold fork() back.
[[maybe_unused]] const int g_atfork = pthread_atfork(gate_prepare, gate_parent, gate_child);

} // namespace

// A thread inside enters again at once (it would otherwise wait for a
// fork() that waits for it).
ForkGate::ForkGate() noexcept {
    if (t_gate_depth++ > 0)
        return;
    for (;;) {
        while (g_gate_forking.load() != 0)
            sched_yield();
        g_gate_inside.fetch_add(1);
        if (g_gate_forking.load() == 0)
            return;
        g_gate_inside.fetch_sub(1); // a fork() began: let it go first
    }
}

ForkGate::~ForkGate() {
    if (--t_gate_depth == 0)
        g_gate_inside.fetch_sub(1);
}

namespace {

// Per backend: the probe's definite answer once there is one (a probe that
// could not decide is asked again next time), and whether the application
// disabled it.
enum : int { kUnknown = 0, kYes = 1, kNo = 2 };
struct ProbeCache {
    std::atomic<int> state{kUnknown};
    std::atomic<const char *> reason{nullptr};
    std::atomic<bool> disabled{false};
};
ProbeCache g_probe[MADVISEV_BACKEND_MAX + 1];

// Runs the probe now, whatever is cached, and caches a definite answer.
Answer probe_fresh(int b) {
    ProbeCache &c = g_probe[b];
    const char *r = "unknown";
    Answer a;
    {
        ForkGate g;
        a = backend_ops(b)->probe(&r);
    }
    c.reason.store(r, std::memory_order_relaxed);
    if (a != Answer::undecided)
        c.state.store(a == Answer::yes ? kYes : kNo, std::memory_order_release);
    return a;
}

Answer probe(int b, const char **reason = nullptr) {
    ProbeCache &c = g_probe[b];
    Answer a;
    if (c.disabled.load(std::memory_order_relaxed)) {
        if (reason)
            *reason = "disabled by madvisev_backend_disable()";
        return Answer::no;
    }
    int st = c.state.load(std::memory_order_acquire);
    if (st == kUnknown)
        a = probe_fresh(b);
    else
        a = st == kYes ? Answer::yes : Answer::no;
    if (reason)
        *reason = c.reason.load(std::memory_order_relaxed);
    return a;
}

// MADVISEV_BACKEND, read once: -1 when unset or "auto", -2 when unknown.
// An atomic, not a static local, whose initialisation is a lock (see the
// fork gate); two threads reading it at once find the same.
std::atomic<int> g_forced{-3}; // -3: not read yet
int forced_backend() {
    int forced = g_forced.load(std::memory_order_relaxed);
    if (forced != -3)
        return forced;
    const char *env = secure_getenv("MADVISEV_BACKEND");
    int b = env == nullptr || *env == '\0' ? -1 : madvisev_backend_from_str(env);
    if (env == nullptr || *env == '\0' || strcmp(env, "auto") == 0)
        forced = -1;
    else
        forced = b < 0 ? -2 : b;
    g_forced.store(forced, std::memory_order_relaxed);
    return forced;
}

// The automatic choice, once every backend before it has said a definite
// no; -1 while none is settled.
std::atomic<int> g_auto{-1};

// The best backend usable now, or -1 with errno.
int choose(bool *fallback) {
    *fallback = false;
    int f = forced_backend();
    if (f == -2) {
        errno = EINVAL;
        return -1;
    }
    if (f >= 0) {
        if (probe(f) == Answer::no) {
            errno = ENOSYS;
            return -1;
        }
        return f;
    }
    *fallback = true;
    int b = g_auto.load(std::memory_order_acquire);
    if (b >= 0 && !g_probe[b].disabled.load(std::memory_order_relaxed))
        return b;
    bool settled = true;
    for (int cand : kAutoOrder) {
        Answer a = probe(cand);
        if (a == Answer::yes) {
            if (settled)
                g_auto.store(cand, std::memory_order_release);
            return cand;
        }
        if (a == Answer::undecided)
            settled = false;
    }
    errno = ENOSYS; // not even madvise(2)
    return -1;
}

// The backend automatic selection goes to when @b refuses a call.
int next_backend(int b) {
    bool after = false;
    for (int cand : kAutoOrder) {
        if (after && probe(cand) != Answer::no)
            return cand;
        after = after || cand == b;
    }
    return -1;
}

// Errors that say a batching backend cannot be used now (a seccomp filter,
// a full descriptor table), not that a range is bad.
bool refusal(int err) {
    return err == ENOSYS || err == EPERM || err == EBADF || err == EMFILE || err == ENFILE;
}

// Not std::call_once: that is a lock too, held across the probe.
std::atomic<bool> g_debug_done{false};
void debug_once(int b) {
    if (g_debug_done.load(std::memory_order_relaxed) || g_debug_done.exchange(true))
        return;
    const char *d = secure_getenv("MADVISEV_DEBUG");
    if (d == nullptr || strcmp(d, "1") != 0)
        return;
    const char *why = nullptr;
    if (b >= 0)
        probe(b, &why);
    fprintf(stderr, "libmadvisev: backend %s: %s\n", b >= 0 ? backend_ops(b)->name : "none",
            why ? why : "MADVISEV_BACKEND names no usable backend");
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
    case MADVISEV_ZERO:
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
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)); // no syscall
    for (size_t i = 0; i < iovcnt; i++) {
        uintptr_t start = reinterpret_cast<uintptr_t>(iov[i].iov_base);
        size_t len = iov[i].iov_len;
        // As madvise(2): an unaligned start is EINVAL even for an empty
        // range (madvise(p + 1, 0, advice) is); an aligned empty one is
        // skipped.
        if (start & (page - 1))
            return EINVAL;
        if (len == 0)
            continue;
        // start + len rounded up to a page must not wrap, and, as for any
        // iovec the kernel copies, len must fit in an ssize_t.
        if (len > static_cast<size_t>(SSIZE_MAX) || len > UINTPTR_MAX - start ||
            ((start + len + page - 1) & ~(page - 1)) == 0)
            return EINVAL;
    }
    return 0;
}

// How far a backend got through a vector.
struct Progress {
    size_t bytes = 0; // bytes of whole ranges advised
    size_t next = 0;  // first range not advised
    int err = 0;      // why it stopped at @next, 0 if it finished or ran short
};

// One range as one madvise(2), whatever its size.
ssize_t advise_whole(const iovec &v, int advice) {
    return backend_sequential().chunk(&v, 1, advice);
}

// Hands the backend chunks that fit its limits, in order, never cutting a
// range: one longer than a request takes goes to madvise(2) whole, so no
// piece can start off a page boundary.  Stops before a range that would
// take the sum past @budget.
Progress run(int b, const iovec *iov, size_t n, int advice, size_t budget) {
    const Backend &be = *backend_ops(b);
    const Limits &lim = be.limits;
    Progress p;
    std::vector<iovec> packed; // only when empty ranges must be dropped
    size_t i = 0;
    while (i < n) {
        size_t room = budget - p.bytes;
        if (lim.max_range && iov[i].iov_len > lim.max_range) {
            if (iov[i].iov_len > room)
                break;
            if (advise_whole(iov[i], advice) < 0) {
                p.err = errno;
                break;
            }
            p.bytes += iov[i].iov_len;
            p.next = ++i;
            continue;
        }
        size_t j = i, sum = 0, count = 0;
        bool empties = false;
        while (j < n && count < lim.max_iov) {
            size_t len = iov[j].iov_len;
            if (len == 0) {
                empties = empties || lim.drop_empty;
                count += lim.drop_empty ? 0 : 1;
                j++;
                continue;
            }
            if ((lim.max_range && len > lim.max_range) ||
                (lim.max_call && sum + len > lim.max_call) || len > room - sum)
                break;
            sum += len;
            count++;
            j++;
        }
        if (j == i)
            break;      // the next range does not fit in the budget
        if (sum == 0) { // only empty ranges
            p.next = i = j;
            continue;
        }
        const iovec *vec = iov + i;
        size_t vn = j - i;
        if (empties) {
            packed.clear();
            for (size_t k = i; k < j; k++)
                if (iov[k].iov_len)
                    packed.push_back(iov[k]);
            vec = packed.data();
            vn = packed.size();
        }
        ssize_t r = be.chunk(vec, vn, advice);
        if (r < 0) {
            p.err = errno;
            break;
        }
        if (static_cast<size_t>(r) < sum) {
            // Stopped inside the chunk: count the whole ranges before.
            size_t got = static_cast<size_t>(r);
            for (size_t k = i; k < j && iov[k].iov_len <= got; k++) {
                got -= iov[k].iov_len;
                p.bytes += iov[k].iov_len;
                p.next = k + 1;
            }
            if (p.next == i)
                p.err = EAGAIN; // a short count with no whole range: say so
            return p;
        }
        p.bytes += sum;
        p.next = i = j;
    }
    return p;
}

ssize_t result(const Progress &p, size_t n) {
    if (p.bytes > 0 || p.next == n)
        return static_cast<ssize_t>(p.bytes);
    // Nothing advised and ranges left: a range refused, or the first
    // non-empty one does not fit in an ssize_t.
    errno = p.err ? p.err : EOVERFLOW;
    return -1;
}

ssize_t advise(int b, bool fallback, const iovec *iov, size_t n, int advice) {
    constexpr size_t kMax = static_cast<size_t>(SSIZE_MAX);
    Progress total;
    for (;;) {
        Progress p = run(b, iov + total.next, n - total.next, advice, kMax - total.bytes);
        total.bytes += p.bytes;
        total.next += p.next;
        total.err = p.err;
        if (!fallback || p.err == 0 || b == MADVISEV_BACKEND_SEQUENTIAL || !refusal(p.err))
            return result(total, n);
        // A batching backend refused the call: ask its probe again (a
        // definite no is kept, so later calls skip it) and redo the rest
        // with the next backend.
        if (probe_fresh(b) == Answer::no)
            g_auto.store(-1, std::memory_order_release);
        b = next_backend(b);
        if (b < 0)
            return result(total, n);
    }
}

// The scan MADVISEV_ZERO's emulation asks: nullptr, scan_data_pages().
std::atomic<ZeroScanFn> g_zero_scan{nullptr};

struct Span {
    uintptr_t start, end;
};

// PROCMAP_QUERY (Linux 6.11): one VMA of /proc/self/maps by address, as
// the kernel's <linux/fs.h> has it (older headers lack it).
struct ProcmapQuery {
    uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
        vma_offset, inode;
    uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
    uint64_t vma_name_addr, build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104, "PROCMAP_QUERY ABI");
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr uint64_t kVmaWritable = 0x02;    // PROCMAP_QUERY_VMA_WRITABLE
constexpr uint64_t kVmaShared = 0x08;      // PROCMAP_QUERY_VMA_SHARED
constexpr uint64_t kCoveringOrNext = 0x10; // PROCMAP_QUERY_COVERING_OR_NEXT_VMA

// What /proc/self/maps names a private MAP_HUGETLB|MAP_ANONYMOUS mapping:
// the kernel backs it with an unlinked file on its own hugetlbfs mount,
// yet it is anonymous memory (a discarded huge page reads zero).
constexpr char kAnonHugetlb[] = "/anon_hugepage (deleted)";

constexpr int kDontneedLocked = 24; // MADV_DONTNEED_LOCKED (Linux 5.18)

// /proc/self/maps for PROCMAP_QUERY, kept between calls: opening it
// costs more than the queries.  Only ever queried, never read (were the
// number closed and reused for another file, that file would answer
// ENOTTY, and a fresh one is opened), and only by the process that opened
// it: a child opens its own, as the open file names its opener's memory.
// Published without a lock (see the fork gate), the opener's pid and the
// number in one word; a thread that loses the race keeps its own for the
// call.
std::atomic<uint64_t> g_maps{0};      // pid << 32 | fd; 0: none
std::atomic<bool> g_maps_text{false}; // maps_force_text()

// The mappings under a MADVISEV_ZERO vector, read from /proc/self/maps
// before anything is cleared: one PROCMAP_QUERY per VMA the ranges meet,
// or before Linux 6.11 the text, read once for the vector's span.
//
// check() refuses a vector that meets a shared or file-backed mapping,
// where discarding a page does not make it read zero (it lives on in the
// shared object, or the file is read again): the kernel's MADVISEV_ZERO
// says EINVAL there too.  writable() then says which runs memset() may
// clear; elsewhere (PROT_READ, PROT_NONE) it would fault, and the runs
// are discarded instead, which reads zero in private anonymous memory.
class Mappings {
  public:
    Mappings(uintptr_t lo, uintptr_t hi) : lo_(lo), hi_(hi) {}
    ~Mappings() {
        if (fd_ >= 0 && !kept_)
            close(fd_);
    }
    Mappings(const Mappings &) = delete;
    Mappings &operator=(const Mappings &) = delete;

    // 0 when every mapping the first @n ranges meet is private anonymous
    // memory; EINVAL when one is not; otherwise why the mappings could not
    // be read (ENOSYS: no /proc).  Holes are not reported.
    int check(const iovec *iov, size_t n) {
        for (size_t i = 0; i < n; i++) {
            auto a = reinterpret_cast<uintptr_t>(iov[i].iov_base);
            const uintptr_t end = a + iov[i].iov_len;
            if (a == end)
                continue;
            if (mode_ == Mode::unread) {
                if (int err = open_maps(a))
                    return err;
                vma_ = {0, 0}; // the VMA open_maps() met is judged below
            }
            if (mode_ == Mode::text) {
                if (meets(refused_, a, end))
                    return EINVAL;
                continue;
            }
            while (a < end) {
                if (a < vma_.start || a >= vma_.end) {
                    if (!query(a)) {
                        if (errno != ENOENT)
                            return errno;
                        break; // no VMA from @a on
                    }
                    if (vma_.start < end)
                        if (int err = private_anonymous())
                            return err;
                    if (vma_.start >= end)
                        break; // a hole to the end of the range
                }
                if (!vma_writable_)
                    read_only_.push_back({std::max(a, vma_.start), std::min(end, vma_.end)});
                a = vma_.end;
            }
        }
        // Ranges come in any order: sorted and merged for writable().
        std::sort(read_only_.begin(), read_only_.end(),
                  [](const Span &x, const Span &y) { return x.start < y.start; });
        size_t kept = 0;
        for (const Span &s : read_only_) {
            if (kept > 0 && s.start <= read_only_[kept - 1].end)
                read_only_[kept - 1].end = std::max(read_only_[kept - 1].end, s.end);
            else
                read_only_[kept++] = s;
        }
        read_only_.resize(kept);
        return 0;
    }

    // Whether the process may write all of [a, b), once check() said 0.
    bool writable(uintptr_t a, uintptr_t b) const { return !meets(read_only_, a, b); }

  private:
    enum class Mode { unread, query, text };

    // Whether a span of @spans (sorted, disjoint) meets [a, b).
    static bool meets(const std::vector<Span> &spans, uintptr_t a, uintptr_t b) {
        auto it = std::upper_bound(spans.begin(), spans.end(), a,
                                   [](uintptr_t x, const Span &s) { return x < s.end; });
        return it != spans.end() && it->start < b;
    }

    int open_maps(uintptr_t a) {
        const bool text = g_maps_text.load(std::memory_order_relaxed);
        const auto me = static_cast<uint32_t>(getpid());
        mode_ = Mode::query;
        uint64_t kept = g_maps.load(std::memory_order_acquire);
        if (!text && kept >> 32 == me) {
            fd_ = static_cast<int>(kept & 0xffffffff);
            kept_ = true;
            if (query(a) || errno == ENOENT)
                return 0;
            kept_ = false; // not ours any more: a fresh one for this call
        }
        fd_ = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd_ < 0)
            return errno == ENOENT || errno == EACCES || errno == EPERM ? ENOSYS : errno;
        if (!text) {
            if (query(a) || errno == ENOENT) {
                // Kept for later calls; never closed: a descriptor this
                // process (or, after fork(), its parent) opened may be the
                // program's by now.
                uint64_t mine = uint64_t{me} << 32 | static_cast<uint32_t>(fd_);
                kept_ = g_maps.compare_exchange_strong(kept, mine, std::memory_order_acq_rel);
                return 0;
            }
            if (errno != ENOTTY && errno != EINVAL)
                return errno;
        }
        mode_ = Mode::text; // before Linux 6.11
        return read_text();
    }

    // The VMA that holds @a, or else the first one after it, into vma_;
    // false (errno set; ENOENT: there is none) when the query fails.
    // @name: where the VMA's name goes, @name_size bytes at most.
    bool query(uintptr_t a, char *name = nullptr, uint32_t name_size = 0) {
        ProcmapQuery q{};
        q.size = sizeof(q);
        q.query_flags = kCoveringOrNext;
        q.query_addr = a;
        q.vma_name_addr = reinterpret_cast<uintptr_t>(name);
        q.vma_name_size = name_size;
        int r;
        do
            r = ioctl(fd_, kProcmapQuery, &q);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            return false;
        if (q.vma_end <= a || q.vma_start >= q.vma_end) {
            errno = ENOENT;
            return false;
        }
        vma_ = {static_cast<uintptr_t>(q.vma_start), static_cast<uintptr_t>(q.vma_end)};
        vma_writable_ = (q.vma_flags & kVmaWritable) != 0;
        vma_shared_ = (q.vma_flags & kVmaShared) != 0;
        vma_file_ = q.inode != 0 || q.dev_major != 0 || q.dev_minor != 0;
        vma_page_size_ = q.vma_page_size;
        return true;
    }

    // 0 if vma_ is private anonymous memory, EINVAL if not, else the
    // errno of the query that could not tell.  A file VMA with a huge page
    // size is asked again for its name: the anonymous hugetlb file's?  (The
    // answer describes the VMA found then, which vma_ becomes.)
    int private_anonymous() {
        if (!vma_shared_ && vma_file_ &&
            vma_page_size_ > static_cast<uint64_t>(sysconf(_SC_PAGESIZE))) {
            char name[sizeof(kAnonHugetlb)] = {};
            if (!query(vma_.start, name, sizeof(name)))
                return errno == ENAMETOOLONG ? EINVAL : errno; // too long: not the name
            return vma_shared_ || (vma_file_ && strcmp(name, kAnonHugetlb) != 0) ? EINVAL : 0;
        }
        return vma_shared_ || vma_file_ ? EINVAL : 0;
    }

    // The parts of [lo_, hi_) mapped without write permission, and the
    // mappings there that are not private anonymous memory, in address
    // order.  A line: "start-end perms offset dev inode   name".
    int read_text() {
        char buf[4096], line[256];
        size_t used = 0;
        bool cut = false; // the line was longer than @line
        for (;;) {
            ssize_t got = read(fd_, buf, sizeof(buf));
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return errno;
            if (got == 0)
                return 0;
            for (ssize_t i = 0; i < got; i++) {
                if (buf[i] != '\n') {
                    if (used < sizeof(line) - 1)
                        line[used++] = buf[i];
                    else
                        cut = true;
                    continue;
                }
                line[used] = '\0';
                used = 0;
                const bool whole = !cut;
                cut = false;
                char *end = nullptr;
                uintptr_t start = strtoull(line, &end, 16);
                if (*end != '-')
                    continue;
                uintptr_t stop = strtoull(end + 1, &end, 16);
                if (start >= hi_)
                    return 0; // the lines are in address order
                if (stop <= lo_ || *end != ' ' || strlen(end) < 5)
                    continue;
                const char *perms = end + 1;
                const Span span{std::max(start, lo_), std::min(stop, hi_)};
                if (perms[1] != 'w')
                    read_only_.push_back(span);
                // Offset, device and inode; the name after the spaces.
                char *p = end + 5;
                strtoull(p, &p, 16);
                const unsigned long major = strtoul(p, &p, 16);
                const unsigned long minor = *p == ':' ? strtoul(p + 1, &p, 16) : 0;
                const unsigned long long inode = strtoull(p, &p, 10);
                while (*p == ' ')
                    p++;
                const bool file = major != 0 || minor != 0 || inode != 0;
                if (perms[3] == 's' || (file && !(whole && strcmp(p, kAnonHugetlb) == 0)))
                    refused_.push_back(span);
            }
        }
    }

    uintptr_t lo_, hi_;
    Mode mode_ = Mode::unread;
    int fd_ = -1;
    bool kept_ = false; // fd_ is g_maps's
    Span vma_{0, 0};
    bool vma_writable_ = false, vma_shared_ = false, vma_file_ = false;
    uint64_t vma_page_size_ = 0;
    std::vector<Span> read_only_; // sorted and disjoint once check() returns
    std::vector<Span> refused_;   // text mode: not private anonymous
};

// Discards drop[from, end) with @advice through the backend: the index of
// the first run not discarded (drop.size() when all were), its error in
// @err.
size_t discard(int b, bool fallback, const std::vector<iovec> &drop, size_t from, int advice,
               int &err) {
    size_t want = 0;
    for (size_t k = from; k < drop.size(); k++)
        want += drop[k].iov_len;
    ssize_t r = advise(b, fallback, drop.data() + from, drop.size() - from, advice);
    if (r >= 0 && static_cast<size_t>(r) == want)
        return drop.size();
    size_t got = r < 0 ? 0 : static_cast<size_t>(r), j = from;
    while (j < drop.size() && got >= drop[j].iov_len)
        got -= drop[j++].iov_len;
    err = r < 0 ? errno : EAGAIN;
    if (r >= 0 && advise(b, fallback, &drop[j], 1, advice) < 0)
        err = errno; // a short count carries no errno: the run alone says it
    return j;
}

// MADVISEV_ZERO on a kernel that has not announced it.  First the
// mappings under the whole vector are checked (Mappings): one that is not
// private anonymous memory fails the call with EINVAL before anything is
// cleared.  Then, per range, the pages that can hold data (PAGEMAP_SCAN):
// present ones the process may write are cleared with memset(), as the
// kernel would clear them in place, locked ones included; swapped ones
// and present ones it may not write are dropped with one MADV_DONTNEED
// call for the whole vector, through the backend in use (locked memory
// refuses that: what it refuses gets MADV_DONTNEED_LOCKED, as the kernel
// discards locked pages it cannot clear).  A range the scan cannot read
// (no PAGEMAP_SCAN before Linux 6.7, no descriptor) is dropped whole: in
// private anonymous memory that reads zero too.  Where memory runs out
// (the vectors), std::bad_alloc goes up to the C function, which says
// ENOMEM; ranges before may be cleared.
ssize_t zero_emulated(int b, bool fallback, const iovec *iov, size_t n) {
    // Not thread_local: the pool calls this from thread-exit destructors,
    // where such a vector may already be gone.
    std::vector<PageRun> runs;
    std::vector<iovec> drop;
    std::vector<size_t> owner; // the range each dropped run belongs to
    // As for other advice: stop before the range that takes the sum past
    // SSIZE_MAX, and report only what fits.
    constexpr size_t kMax = static_cast<size_t>(SSIZE_MAX);
    size_t total = 0, upto = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (; upto < n; upto++) {
        if (iov[upto].iov_len > kMax - total)
            break;
        total += iov[upto].iov_len;
        if (iov[upto].iov_len) {
            auto start = reinterpret_cast<uintptr_t>(iov[upto].iov_base);
            lo = std::min(lo, start);
            hi = std::max(hi, start + iov[upto].iov_len);
        }
    }
    if (upto == 0 && n > 0) {
        errno = EOVERFLOW;
        return -1;
    }
    Mappings maps(lo, hi);
    if (int err = maps.check(iov, upto)) {
        errno = err;
        return -1;
    }
    for (size_t i = 0; i < upto; i++) {
        auto *base = static_cast<std::byte *>(iov[i].iov_base);
        size_t len = iov[i].iov_len;
        if (len == 0)
            continue;
        ZeroScanFn scan = g_zero_scan.load(std::memory_order_relaxed);
        ScanStatus st;
        {
            ForkGate g; // the first scan opens the pagemap file under a lock
            st = (scan ? scan : scan_data_pages)(base, len, runs);
        }
        if (st != ScanStatus::ok) {
            drop.push_back(iov[i]);
            owner.push_back(i);
            continue;
        }
        for (const PageRun &run : runs) {
            auto at = reinterpret_cast<uintptr_t>(base + run.offset);
            if (run.swapped || run.file || !maps.writable(at, at + run.bytes)) {
                drop.push_back({base + run.offset, run.bytes});
                owner.push_back(i);
            } else {
                memset(base + run.offset, 0, run.bytes);
            }
        }
    }
    if (drop.empty())
        return static_cast<ssize_t>(total);
    int err = 0;
    size_t j = discard(b, fallback, drop, 0, MADV_DONTNEED, err);
    // The mappings were checked: EINVAL here is locked memory (or the rare
    // VM_PFNMAP, or part of a huge page, which fail again).
    if (j < drop.size() && err == EINVAL)
        j = discard(b, fallback, drop, j, kDontneedLocked, err);
    if (j == drop.size())
        return static_cast<ssize_t>(total);
    // The first run not dropped names the range that failed: report the
    // ranges before it, as for any advice.
    size_t before = 0;
    for (size_t i = 0; i < owner[j]; i++)
        before += iov[i].iov_len;
    if (before > 0)
        return static_cast<ssize_t>(before);
    errno = err;
    return -1;
}

} // namespace

ZeroScanFn madvisev_internal::zero_scan_seam(ZeroScanFn fn) {
    return g_zero_scan.exchange(fn, std::memory_order_relaxed);
}

bool madvisev_internal::maps_force_text(bool on) {
    return g_maps_text.exchange(on, std::memory_order_relaxed);
}

namespace {

// The C functions' bodies may allocate (std::vector) and lock; what they
// throw must not cross the C ABI, where it would end the process: a
// failed allocation is ENOMEM, as for any system call short of memory.
// On success errno is as the caller left it, whatever probing met.
template <class R, class F>
R c_entry(R fail, F body) {
    int saved = errno;
    try {
        R r = body();
        if (r != fail)
            errno = saved;
        return r;
    } catch (const std::bad_alloc &) {
        errno = ENOMEM;
    } catch (const std::system_error &e) { // a lock that could not be taken
        errno = e.code().value() > 0 ? e.code().value() : ENOMEM;
    }
    return fail;
}

ssize_t via(int backend, const struct iovec *iov, size_t iovcnt, int advice, unsigned int flags) {
    if (backend < MADVISEV_BACKEND_AUTO || backend > MADVISEV_BACKEND_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (int err = check_args(iov, iovcnt, advice, flags)) {
        errno = err;
        return -1;
    }
    bool fallback = false;
    if (backend == MADVISEV_BACKEND_AUTO) {
        backend = choose(&fallback);
        debug_once(backend);
        if (backend < 0)
            return -1;
    } else if (probe(backend) == Answer::no) {
        // An undecided probe is no reason to refuse: the call itself says
        // what is wrong (EMFILE, say).
        errno = ENOSYS;
        return -1;
    }
    if (iovcnt == 0)
        return 0;
    if (advice == MADVISEV_ZERO && !zero_native())
        return zero_emulated(backend, fallback, iov, iovcnt);
    return advise(backend, fallback, iov, iovcnt, advice);
}

} // namespace

extern "C" {

ssize_t madvisev_via(int backend, const struct iovec *iov, size_t iovcnt, int advice,
                     unsigned int flags) {
    return c_entry<ssize_t>(-1, [&] { return via(backend, iov, iovcnt, advice, flags); });
}

ssize_t madvisev(const struct iovec *iov, size_t iovcnt, int advice, unsigned int flags) {
    return madvisev_via(MADVISEV_BACKEND_AUTO, iov, iovcnt, advice, flags);
}

int madvisev_backend(void) {
    int saved = errno;
    int b = c_entry<int>(-1, [] {
        bool fallback = false;
        return choose(&fallback);
    });
    errno = saved; // no error to report: -1 says none is usable
    return b;
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
    return c_entry<int>(-1, [&] { return probe(backend, reason) == Answer::yes ? 1 : 0; });
}

int madvisev_backend_disable(int backend) {
    if (backend_ops(backend) == nullptr) {
        errno = EINVAL;
        return -1;
    }
    g_probe[backend].disabled.store(true, std::memory_order_relaxed);
    int expected = backend;
    g_auto.compare_exchange_strong(expected, -1, std::memory_order_acq_rel);
    return 0;
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
