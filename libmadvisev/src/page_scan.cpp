// SPDX-License-Identifier: MIT
#include "page_scan.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <mutex>

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

// /proc/self/pagemap, opened once.  The open file names the address space
// it was opened in, not "self" at each use: a forked child must open its
// own, or it would scan its parent's page tables.  The atfork handler
// drops the inherited one in the child (it is still ours there: no code
// of the child has run yet).
std::mutex g_open_lock;
std::atomic<int> g_fd{-1};
std::atomic<bool> g_no_ioctl{false}; // ENOTTY seen: read the entries instead
std::atomic<bool> g_force_unsupported{false};
std::atomic<bool> g_force_read{false};

void drop_in_child() {
    int fd = g_fd.exchange(-1);
    if (fd >= 0)
        close(fd);
}

int pagemap_fd() {
    int fd = g_fd.load(std::memory_order_acquire);
    if (fd >= 0)
        return fd;
    std::lock_guard<std::mutex> g(g_open_lock);
    static bool registered = pthread_atfork(nullptr, nullptr, drop_in_child) == 0;
    if (!registered) {
        errno = ENOMEM; // pthread_atfork()'s only failure
        return -1;      // without the handler a child could scan the wrong mm
    }
    fd = g_fd.load(std::memory_order_acquire);
    if (fd < 0) {
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            g_fd.store(fd, std::memory_order_release);
    }
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
// pagemap entry per page, read in blocks.  A present page is data unless
// its frame is the zero page's; where frame numbers are hidden that
// cannot be told, and a zero page counts as data (cleared for nothing:
// slower, never a leak).  O(pages) where PAGEMAP_SCAN skips empty page
// tables, so only the fallback.  A partial last page counts whole, as
// PAGEMAP_SCAN and madvise(2) count it.
template <class Runs>
ScanStatus read_data_pages(int fd, uintptr_t start, size_t len, Runs &runs, size_t &stop) {
    const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const uint64_t zero = zero_pfn(fd);
    uint64_t entries[512];
    const size_t pages = len / ps + (len % ps != 0);
    for (size_t done = 0; done < pages;) {
        const size_t want = std::min(pages - done, sizeof(entries) / sizeof(entries[0]));
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
                return ScanStatus::ok;
            }
        }
        done += got;
    }
    stop = len;
    return ScanStatus::ok;
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
