// SPDX-License-Identifier: MIT
#include "page_scan.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "internal.h"
#include "madvisev.h"

// Debian 12's <linux/fs.h> predates PAGEMAP_SCAN (Linux 6.7): the ABI
// below is the kernel's, spelled out here under the same names.
#ifndef PAGEMAP_SCAN
struct page_region {
    __u64 start;
    __u64 end;
    __u64 categories;
};
struct pm_scan_arg {
    __u64 size;
    __u64 flags;
    __u64 start;
    __u64 end;
    __u64 walk_end;
    __u64 vec;
    __u64 vec_len;
    __u64 max_pages;
    __u64 category_inverted;
    __u64 category_mask;
    __u64 category_anyof_mask;
    __u64 return_mask;
};
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
static_assert(sizeof(pm_scan_arg) == 96 && sizeof(page_region) == 24, "PAGEMAP_SCAN ABI");

namespace madvisev_internal {

namespace {

// /proc/self/pagemap, opened once and checked at each use.  The open file
// names the address space it was opened in, not "self" at each use: a
// child made by fork(), _Fork() or a raw clone() (no atfork handler runs
// for the last two) inherits its parent's, and must open its own, or it
// would scan its parent's page tables.  The application may also have
// closed the number and put a file of its own there.  So each use checks
// the opener's pid and the file's identity (fstat: a third of a small
// scan's cost, where an open and close per scan would be four times it).
// A descriptor that fails the check is left alone, never closed: it is
// the application's now, or, in a child, an inherited copy that the
// child's code may have taken over as well (O_CLOEXEC: gone at exec).
std::mutex g_open_lock;
std::atomic<int> g_fd{-1};
std::atomic<pid_t> g_fd_pid{0};
std::atomic<dev_t> g_fd_dev{0};
std::atomic<ino_t> g_fd_ino{0};
std::atomic<bool> g_no_ioctl{false}; // ENOTTY seen: read the entries instead
std::atomic<bool> g_force_unsupported{false};
std::atomic<bool> g_force_read{false};

// @fd is the pagemap file this process opened for itself.
bool still_ours(int fd, pid_t me) {
    struct stat st;
    return fd >= 0 && g_fd_pid.load(std::memory_order_relaxed) == me && fstat(fd, &st) == 0 &&
           st.st_dev == g_fd_dev.load(std::memory_order_relaxed) &&
           st.st_ino == g_fd_ino.load(std::memory_order_relaxed);
}

// After fork(), whatever the pids: a child in a new pid namespace can have
// its parent's pid number.  Forgets, never closes (see above).  _Fork()
// and clone() run no handler: the pid check covers them.
void forget_in_child() {
    g_fd_pid.store(0, std::memory_order_relaxed);
}

int pagemap_fd() {
    const pid_t me = getpid();
    int fd = g_fd.load(std::memory_order_acquire);
    if (still_ours(fd, me))
        return fd;
    ForkGate gate; // open() runs under g_open_lock: no fork() meanwhile
    std::lock_guard<std::mutex> g(g_open_lock);
    fd = g_fd.load(std::memory_order_acquire);
    if (still_ours(fd, me))
        return fd;
    static bool registered [[maybe_unused]] =
        pthread_atfork(nullptr, nullptr, forget_in_child) == 0;
    fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    // Readers take the identity after the descriptor (acquire): a reader
    // that sees the new number sees its identity too.
    g_fd.store(-1, std::memory_order_release);
    g_fd_pid.store(me, std::memory_order_relaxed);
    g_fd_dev.store(st.st_dev, std::memory_order_relaxed);
    g_fd_ino.store(st.st_ino, std::memory_order_relaxed);
    g_fd.store(fd, std::memory_order_release);
    return fd;
}

// /proc/self/pagemap's entry of a page (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = 1ULL << 63;
constexpr uint64_t kPmSwapped = 1ULL << 62;
constexpr uint64_t kPmFileOrShared = 1ULL << 61;
constexpr uint64_t kPmPfnMask = (1ULL << 55) - 1;

// The shared zero page's frame number as this process sees it in its
// pagemap entries: 0 where frame numbers are hidden (no CAP_SYS_ADMIN).
// Found once by reading an untouched anonymous page, which maps it.
uint64_t zero_pfn(int fd) {
    // The static's guard is a lock held across the reads below.
    ForkGate gate;
    static const uint64_t pfn = [fd] {
        const long ps = sysconf(_SC_PAGESIZE);
        void *p = mmap(nullptr, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return uint64_t{0};
        volatile const char *c = static_cast<const char *>(p);
        (void)*c;
        uint64_t e = 0;
        const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / ps * sizeof(e));
        ssize_t n;
        do
            n = pread(fd, &e, sizeof(e), at);
        while (n < 0 && errno == EINTR);
        munmap(p, ps);
        return n == sizeof(e) && (e & kPmPresent) ? e & kPmPfnMask : uint64_t{0};
    }();
    return pfn;
}

// Where a scan puts its runs.  add() extends the last run when the new
// one follows it and is of its kind (both paths, and PAGEMAP_SCAN's
// batches, then give the same runs), else appends it: false when there is
// no room for it, and the scan stops before it.
struct VectorRuns {
    std::vector<PageRun> &out;
    bool add(size_t offset, size_t bytes, bool swapped, bool file) {
        if (!out.empty() && out.back().offset + out.back().bytes == offset &&
            out.back().swapped == swapped && out.back().file == file)
            out.back().bytes += bytes;
        else
            out.push_back({offset, bytes, swapped, file});
        return true;
    }
    void clear() { out.clear(); }
};

// Takes every run and keeps none.
struct NoRuns {
    bool add(size_t, size_t, bool, bool) { return true; }
};

struct ArrayRuns {
    madvisev_page_run *out;
    size_t max;
    size_t n = 0;
    bool add(size_t offset, size_t bytes, bool swapped, bool file) {
        const unsigned flags =
            (swapped ? MADVISEV_RUN_SWAPPED : 0u) | (file ? MADVISEV_RUN_FILE : 0u);
        if (n > 0 && out[n - 1].offset + out[n - 1].length == offset && out[n - 1].flags == flags) {
            out[n - 1].length += bytes;
            return true;
        }
        if (n == max)
            return false;
        out[n++] = {offset, bytes, flags};
        return true;
    }
    void clear() { n = 0; }
};

// The same answer as PAGEMAP_SCAN below, for kernels before 6.7: one
// pagemap entry per page.  A present page is data unless its frame is the
// zero page's; where frame numbers are hidden that cannot be told, and a
// zero page counts as data (cleared for nothing: slower, never a leak).  A
// partial last page counts whole, as PAGEMAP_SCAN and madvise(2) count it.
//
// The kernel walks page tables for a pagemap read, but fills and copies an
// entry for every page, empty or not: O(pages), where PAGEMAP_SCAN skips
// empty page tables.  So entries are read 32 KiB at a time (a pread costs
// more than the entries it copies), and a large range is first matched
// against /proc/self/smaps: holes between mappings, and mappings that
// hold no page (Rss, Swap and hugetlb pages all 0 kB, as in an untouched
// PROT_NONE reservation) are skipped.  A mapping with a page in it is read
// whole, whatever its protection: a page written, swapped out and then
// made PROT_NONE is still there, and shows in Swap.

constexpr size_t kEntriesPerRead = 4096;
// From this many pages on (256 MiB of 4 KiB pages) reading smaps, tens of
// microseconds in a small process, costs less than the entries it saves.
constexpr size_t kSmapsMinPages = size_t{1} << 16;

struct EntryReader {
    int fd;
    uintptr_t start; // of the range, page-aligned
    size_t ps;
    uint64_t zero; // the zero page's frame, 0 where hidden
    size_t stop = 0;
    bool full = false; // @runs had no room: @stop says where

    // Pages [first, last) of the range, counted from its start.
    template <class Runs>
    ScanStatus read(size_t first, size_t last, Runs &runs) {
        uint64_t entries[kEntriesPerRead];
        for (size_t done = first; done < last;) {
            const size_t want = std::min(last - done, kEntriesPerRead);
            const off_t at = static_cast<off_t>((start / ps + done) * sizeof(uint64_t));
            ssize_t n = pread(fd, entries, want * sizeof(uint64_t), at);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || n % sizeof(uint64_t)) {
                // End of file: past the address space, where PAGEMAP_SCAN
                // says EFAULT.
                if (n >= 0)
                    errno = n == 0 ? EFAULT : EIO;
                return ScanStatus::failed;
            }
            const size_t got = static_cast<size_t>(n) / sizeof(uint64_t);
            for (size_t i = 0; i < got; i++) {
                const uint64_t e = entries[i];
                const bool swapped = (e & kPmSwapped) != 0;
                const bool present = (e & kPmPresent) != 0;
                if (!swapped && !(present && (zero == 0 || (e & kPmPfnMask) != zero)))
                    continue;
                const size_t offset = (done + i) * ps;
                if (!runs.add(offset, ps, swapped, (e & kPmFileOrShared) != 0)) {
                    stop = offset;
                    full = true;
                    return ScanStatus::ok;
                }
            }
            done += got;
        }
        return ScanStatus::ok;
    }
};

// One mapping of /proc/self/smaps, as far as the scan cares.
struct SmapsVma {
    uintptr_t start = 0, end = 0;
    bool rss_seen = false, swap_seen = false;
    unsigned long long held_kb = 0; // Rss + Swap + hugetlb pages

    bool may_hold_data() const { return !rss_seen || !swap_seen || held_kb != 0; }
};

unsigned long long parse_number(const char *p, const char *end, int base, const char **stop) {
    unsigned long long v = 0;
    for (; p < end; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : 99;
        if (d >= base)
            break;
        v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    }
    *stop = p;
    return v;
}

bool starts_with(const char *p, const char *end, const char *word) {
    const size_t n = strlen(word);
    return static_cast<size_t>(end - p) >= n && memcmp(p, word, n) == 0;
}

// One line of smaps (perhaps only the start of a long one) into @cur;
// true when it began a new mapping, and @done holds the one before it.
bool smaps_line(const char *p, const char *end, SmapsVma &cur, SmapsVma &done, bool &have) {
    if (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
        const char *q;
        SmapsVma next;
        next.start = static_cast<uintptr_t>(parse_number(p, end, 16, &q));
        if (q < end && *q == '-')
            next.end = static_cast<uintptr_t>(parse_number(q + 1, end, 16, &q));
        const bool had = have;
        done = cur;
        cur = next;
        have = true;
        return had;
    }
    static const char *const kHeld[] = {"Rss:", "Swap:", "Shared_Hugetlb:", "Private_Hugetlb:"};
    for (const char *field : kHeld) {
        if (!have || !starts_with(p, end, field))
            continue;
        p += strlen(field);
        while (p < end && *p == ' ')
            p++;
        const char *q;
        cur.held_kb += parse_number(p, end, 10, &q);
        if (q == p)
            cur.held_kb += 1; // not a number: count it as data
        cur.rss_seen |= field == kHeld[0];
        cur.swap_seen |= field == kHeld[1];
    }
    return false;
}

// The pagemap read of a range of @pages pages, skipping what smaps (@sfd)
// says holds nothing.  Where smaps cannot be read to its end, the rest of
// the range is read whole.
template <class Runs>
ScanStatus read_by_vma(int sfd, EntryReader &rd, size_t pages, Runs &runs) {
    size_t next = 0; // pages before it: read or skipped
    // Reads the part of @v in the range, if it may hold data; skips the
    // hole before it.
    auto vma = [&](const SmapsVma &v) {
        if (v.end <= rd.start || v.start >= v.end)
            return ScanStatus::ok;
        const size_t first = v.start <= rd.start ? 0 : (v.start - rd.start) / rd.ps;
        const size_t last = std::min(pages, (v.end - rd.start + rd.ps - 1) / rd.ps);
        if (first >= pages || last <= next)
            return ScanStatus::ok;
        ScanStatus st = ScanStatus::ok;
        if (v.may_hold_data())
            st = rd.read(std::max(first, next), last, runs);
        next = last;
        return st;
    };
    char buf[4096];
    size_t kept = 0;       // bytes of a line not yet whole, at buf's start
    bool skipping = false; // in the rest of a line too long for buf
    SmapsVma cur, done;
    bool have = false;
    for (;;) {
        ssize_t n = read(sfd, buf + kept, sizeof(buf) - kept);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) // smaps cannot tell: the rest is read whole
            return next < pages && !rd.full ? rd.read(next, pages, runs) : ScanStatus::ok;
        if (n == 0)
            break;
        const char *p = buf, *end = buf + kept + n;
        for (;;) {
            const char *nl = static_cast<const char *>(memchr(p, '\n', end - p));
            if (nl == nullptr) {
                if (p == buf && end == buf + sizeof(buf)) { // a line longer than buf
                    if (!skipping && smaps_line(p, end, cur, done, have))
                        if (ScanStatus st = vma(done); st != ScanStatus::ok || rd.full)
                            return st;
                    skipping = true;
                    p = end;
                }
                break;
            }
            if (!skipping && smaps_line(p, nl, cur, done, have))
                if (ScanStatus st = vma(done); st != ScanStatus::ok || rd.full)
                    return st;
            skipping = false;
            p = nl + 1;
            if (have && cur.start >= rd.start + pages * rd.ps)
                return ScanStatus::ok; // past the range: the rest is a hole
        }
        kept = static_cast<size_t>(end - p);
        memmove(buf, p, kept);
    }
    if (have)
        if (ScanStatus st = vma(cur); st != ScanStatus::ok || rd.full)
            return st;
    return ScanStatus::ok; // after the last mapping: a hole
}

template <class Runs>
ScanStatus read_data_pages(int fd, uintptr_t start, size_t len, Runs &runs, size_t &stop) {
    const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    EntryReader rd{fd, start, ps, zero_pfn(fd)};
    const size_t pages = len / ps + (len % ps != 0);
    ScanStatus st = ScanStatus::ok;
    bool whole = true;
    if (pages >= kSmapsMinPages) {
        // The last page's entry first: past the address space the read
        // fails EFAULT as it would without smaps.
        NoRuns none;
        if (st = rd.read(pages - 1, pages, none); st != ScanStatus::ok)
            return st;
        int sfd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
        if (sfd >= 0) {
            st = read_by_vma(sfd, rd, pages, runs);
            close(sfd);
            whole = false;
        }
    }
    if (whole)
        st = rd.read(0, pages, runs);
    if (st == ScanStatus::ok)
        stop = rd.full ? rd.stop : len;
    return st;
}

// The runs of [base, base + len) that can hold data, into @runs, until it
// is full; @stop: where the first run that did not fit begins, else len.
// errno says why when the answer is not ok.
template <class Runs>
ScanStatus scan(const void *base, size_t len, Runs &runs, size_t &stop) {
    runs.clear();
    if (g_force_unsupported.load(std::memory_order_relaxed)) {
        errno = ENOSYS;
        return ScanStatus::unsupported;
    }
    int fd = pagemap_fd();
    if (fd < 0) {
        // No pagemap file (no /proc, or a kernel without it), or not ours
        // to read (a process made non-dumpable): no call will do better.
        if (errno == ENOENT || errno == EACCES || errno == EPERM) {
            errno = ENOSYS;
            return ScanStatus::unsupported;
        }
        return ScanStatus::failed;
    }
    const auto start = reinterpret_cast<uintptr_t>(base);
    if (g_no_ioctl.load(std::memory_order_relaxed) || g_force_read.load(std::memory_order_relaxed))
        return read_data_pages(fd, start, len, runs, stop);
    page_region regions[64];
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.start = start;
    arg.end = start + len;
    arg.vec = reinterpret_cast<uintptr_t>(regions);
    arg.vec_len = sizeof(regions) / sizeof(regions[0]);
    // Present or swapped, and not the zero page: inverting PFNZERO and
    // requiring it makes "not the zero page" a required category.
    arg.category_inverted = PAGE_IS_PFNZERO;
    arg.category_mask = PAGE_IS_PFNZERO;
    arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE;
    while (arg.start < arg.end) {
        int n = ioctl(fd, PAGEMAP_SCAN, &arg);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOTTY) { // before Linux 6.7
                g_no_ioctl.store(true, std::memory_order_relaxed);
                runs.clear();
                return read_data_pages(fd, start, len, runs, stop);
            }
            return ScanStatus::failed;
        }
        for (int i = 0; i < n; i++) {
            const page_region &r = regions[i];
            const size_t offset = static_cast<size_t>(r.start - start);
            if (!runs.add(offset, static_cast<size_t>(r.end - r.start),
                          (r.categories & PAGE_IS_PRESENT) == 0,
                          (r.categories & PAGE_IS_FILE) != 0)) {
                stop = offset;
                return ScanStatus::ok;
            }
        }
        // The walk stops early when the vector is full; go on from there.
        if (arg.walk_end <= arg.start) {
            errno = EIO;
            return ScanStatus::failed; // no progress: never loop forever
        }
        arg.start = arg.walk_end;
    }
    stop = len;
    return ScanStatus::ok;
}

} // namespace

ScanStatus scan_data_pages(const void *base, size_t len, std::vector<PageRun> &out) {
    VectorRuns runs{out};
    size_t stop = 0;
    return scan(base, len, runs, stop);
}

bool scan_force_unsupported(bool on) {
    return g_force_unsupported.exchange(on, std::memory_order_relaxed);
}

bool scan_force_pagemap_read(bool on) {
    return g_force_read.exchange(on, std::memory_order_relaxed);
}

} // namespace madvisev_internal

// The public face of the scan: arguments checked as madvise(2) would, the
// runs written straight into the caller's array (no allocation: the pool
// scans from thread-exit destructors too).
extern "C" ssize_t madvisev_scan_data(const void *addr, size_t len, struct madvisev_page_run *runs,
                                      size_t max_runs, size_t *next_offset, unsigned int flags) {
    using namespace madvisev_internal;
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto start = reinterpret_cast<uintptr_t>(addr);
    // As for madvise(2): the end, rounded up to a page, must not wrap.
    if (flags != 0 || (runs == nullptr && max_runs > 0) || (start & (page - 1)) != 0 ||
        (len > 0 && (len > UINTPTR_MAX - start || ((start + len + page - 1) & ~(page - 1)) == 0))) {
        errno = EINVAL;
        return -1;
    }
    ArrayRuns out{runs, std::min(max_runs, static_cast<size_t>(SSIZE_MAX))};
    size_t stop = 0;
    if (len > 0) {
        len = ((start + len + page - 1) & ~(page - 1)) - start;
        // scan() has set errno where the answer is not ok.
        if (ScanStatus st = scan(addr, len, out, stop); st != ScanStatus::ok) {
            if (st == ScanStatus::unsupported)
                errno = ENOSYS;
            return -1;
        }
    }
    if (next_offset != nullptr)
        *next_offset = stop;
    return static_cast<ssize_t>(out.n);
}
