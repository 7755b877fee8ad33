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
#include <cstdint>
#include <mutex>

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
    if (!registered)
        return -1; // without the handler a child could scan the wrong mm
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

// The same answer as PAGEMAP_SCAN below, for kernels before 6.7: one
// pagemap entry per page, read in blocks.  A present page is data unless
// its frame is the zero page's; where frame numbers are hidden that
// cannot be told, and a zero page counts as data (cleared for nothing:
// slower, never a leak).  O(pages) where PAGEMAP_SCAN skips empty page
// tables, so only the fallback.
ScanStatus read_data_pages(int fd, uintptr_t start, size_t len, std::vector<PageRun> &out) {
    const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const uint64_t zero = zero_pfn(fd);
    uint64_t entries[512];
    const size_t pages = len / ps;
    for (size_t done = 0; done < pages;) {
        const size_t want = std::min(pages - done, sizeof(entries) / sizeof(entries[0]));
        const off_t at = static_cast<off_t>((start / ps + done) * sizeof(uint64_t));
        ssize_t n = pread(fd, entries, want * sizeof(uint64_t), at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || n % sizeof(uint64_t))
            return ScanStatus::failed;
        const size_t got = static_cast<size_t>(n) / sizeof(uint64_t);
        for (size_t i = 0; i < got; i++) {
            const uint64_t e = entries[i];
            const bool swapped = (e & kPmSwapped) != 0;
            const bool present = (e & kPmPresent) != 0;
            if (!swapped && !(present && (zero == 0 || (e & kPmPfnMask) != zero)))
                continue;
            const bool file = (e & kPmFileOrShared) != 0;
            const size_t offset = (done + i) * ps;
            if (!out.empty() && out.back().offset + out.back().bytes == offset &&
                out.back().swapped == swapped && out.back().file == file)
                out.back().bytes += ps;
            else
                out.push_back({offset, ps, swapped, file});
        }
        done += got;
    }
    return ScanStatus::ok;
}

} // namespace

ScanStatus scan_data_pages(const void *base, size_t len, std::vector<PageRun> &out) {
    out.clear();
    if (g_force_unsupported.load(std::memory_order_relaxed))
        return ScanStatus::unsupported;
    int fd = pagemap_fd();
    if (fd < 0)
        return ScanStatus::failed;
    if (g_no_ioctl.load(std::memory_order_relaxed) || g_force_read.load(std::memory_order_relaxed))
        return read_data_pages(fd, reinterpret_cast<uintptr_t>(base), len, out);
    const auto start = reinterpret_cast<uintptr_t>(base);
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
                out.clear();
                return read_data_pages(fd, start, len, out);
            }
            return ScanStatus::failed;
        }
        for (int i = 0; i < n; i++) {
            const page_region &r = regions[i];
            out.push_back(
                {static_cast<size_t>(r.start - start), static_cast<size_t>(r.end - r.start),
                 (r.categories & PAGE_IS_PRESENT) == 0, (r.categories & PAGE_IS_FILE) != 0});
        }
        // The walk stops early when the vector is full; go on from there.
        if (arg.walk_end <= arg.start)
            return ScanStatus::failed; // no progress: never loop forever
        arg.start = arg.walk_end;
    }
    return ScanStatus::ok;
}

bool scan_force_unsupported(bool on) {
    return g_force_unsupported.exchange(on, std::memory_order_relaxed);
}

bool scan_force_pagemap_read(bool on) {
    return g_force_read.exchange(on, std::memory_order_relaxed);
}

} // namespace madvisev_internal
