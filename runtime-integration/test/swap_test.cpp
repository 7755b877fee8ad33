// SPDX-License-Identifier: MIT
// wasmpool-swap-test: a tenant's pages are swapped out and dropped from the
// swap cache, then the slot is released and leased again: under every
// reset policy the next tenant reads zeros (zero_in_place both with the
// kernel's MADVISEV_ZERO, where it has one, and with the library's
// emulation).  Needs swap (the test guests
// make a zram device, vm-images/guest/guest-run.sh); without swap it
// fails, it does not skip.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "madvisev.h"
#include "wasmpool/pool.h"

using wasmpool::Config;
using wasmpool::Kind;
using wasmpool::Pool;
using wasmpool::Reset;

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
constexpr size_t kSlotBytes = size_t{8} << 20;
constexpr size_t kPages = 16; // written sparsely over the 8 MiB slot
constexpr int kMadvPageout = 21;

size_t swap_total_kb() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    size_t v = 0;
    while (f >> key >> v) {
        if (key == "SwapTotal:")
            return v;
        f.ignore(64, '\n');
    }
    return 0;
}

// /proc/self/pagemap's entry for the page at @p: bit 63 present, bit 62
// swapped.
uint64_t pagemap_entry(const void *p) {
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t e = 0;
    off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / kPage * sizeof(e));
    if (fd < 0 || pread(fd, &e, sizeof(e), at) != static_cast<ssize_t>(sizeof(e)))
        e = 0;
    if (fd >= 0)
        close(fd);
    return e;
}

bool swapped_out(const void *p) {
    uint64_t e = pagemap_entry(p);
    bool present = e >> 63 & 1, swapped = e >> 62 & 1;
    unsigned char v = 0;
    bool resident = mincore(const_cast<void *>(p), kPage, &v) == 0 && (v & 1);
    // Swapped, and out of the swap cache: mincore() no longer sees it.
    return swapped && !present && !resident;
}

// Push @pages out to swap and out of the swap cache: page them out, then
// create memory pressure until the kernel drops them from the cache.
// Returns how many rounds of pressure it took, or -1.
//
// A page just faulted in waits in its CPU's LRU-add batch, which
// MADV_PAGEOUT drains only on the CPU it runs on: the test runs pinned to
// one CPU, and a round that still finds pages in memory first drains every
// CPU's batch (writing to drop_caches does, as root).
int push_out(const std::vector<std::byte *> &pages) {
    for (int round = 0; round < 20; round++) {
        for (std::byte *p : pages)
            madvise(p, kPage, kMadvPageout);
        bool all = true;
        for (std::byte *p : pages)
            all = all && swapped_out(p);
        if (all)
            return round;
        if (FILE *f = fopen("/proc/sys/vm/drop_caches", "w")) {
            fputs("1", f);
            fclose(f);
        }
        // Pressure: dirty 64 MiB more each round, then give it back.
        size_t bytes = size_t{64} << 20 << std::min(round, 4);
        void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            continue;
        for (size_t off = 0; off < bytes; off += kPage)
            static_cast<char *>(m)[off] = 1;
        madvise(m, bytes, kMadvPageout);
        munmap(m, bytes);
    }
    return -1;
}

// The slot in 4 KiB pages: the tests that count what the reset found
// would otherwise see each written page fault in a 2 MiB one under THP
// "always" (Debian's kernels); HugePagesSwappedOutReadZeroAfterReuse asks
// for huge pages instead.  EINVAL means the kernel has no THP, and so no
// huge page to keep out.
void small_pages(std::byte *base) {
    if (madvise(base, kSlotBytes, MADV_NOHUGEPAGE) != 0) {
        ASSERT_EQ(errno, EINVAL) << strerror(errno);
    }
}

// THP's mode as /sys/kernel/mm/transparent_hugepage/enabled names it
// ("always", "madvise", "never"), or "" without THP.
std::string thp_mode() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string word;
    while (f >> word)
        if (word.size() > 2 && word.front() == '[' && word.back() == ']')
            return word.substr(1, word.size() - 2);
    return "";
}

// kB of the mapping around @p backed by transparent huge pages
// (/proc/self/smaps' AnonHugePages of the VMA that holds it).
size_t anon_huge_kb(const void *p) {
    std::ifstream f("/proc/self/smaps");
    std::string line;
    const auto at = reinterpret_cast<uintptr_t>(p);
    bool in = false;
    while (std::getline(f, line)) {
        unsigned long lo = 0, hi = 0;
        if (sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) { // a VMA's first line
            in = lo <= at && at < hi;
            continue;
        }
        size_t kb = 0;
        if (in && sscanf(line.c_str(), "AnonHugePages: %zu kB", &kb) == 1)
            return kb;
    }
    return 0;
}

struct Policy {
    const char *name;
    Config cfg;
    bool emulate_zero = false; // libmadvisev emulates MADVISEV_ZERO, whatever the kernel
};
void PrintTo(const Policy &p, std::ostream *os) {
    *os << p.name;
}

std::vector<Policy> policies() {
    Config base;
    base.memory_slots = 1; // the next lease is the same slot
    base.table_slots = base.stack_slots = 1;
    base.memory_max_bytes = kSlotBytes;
    base.memory_guard_bytes = kSlotBytes;
    base.memory_bounds = wasmpool::Bounds::checked; // the test checks its own accesses
    base.sharded = false;
    base.background_flush = false;
    std::vector<Policy> v;
    Config c = base;
    c.reset = Reset::decommit;
    v.push_back({"decommit", c});
    c = base;
    c.reset = Reset::keep_resident;
    c.keep_resident_bytes = kSlotBytes / 2; // half zeroed in place, half decommitted
    v.push_back({"keep_resident", c});
    c.keep_resident_scan = true; // the data pages: half zeroed, the rest decommitted
    v.push_back({"keep_resident_scan", c});
    c = base;
    c.reset = Reset::adaptive;
    v.push_back({"adaptive", c});
    c.pagemap_scan = false;
    v.push_back({"adaptive_no_pagemap_scan", c});
    c = base;
    c.reset = Reset::zero_in_place;
    v.push_back({"zero_in_place", c}); // the kernel's clear where it has one
    v.push_back({"zero_in_place_emulated", c, true});
    return v;
}

class Swapped : public ::testing::TestWithParam<Policy> {
  protected:
    void SetUp() override {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
        ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0) << strerror(errno);
        if (GetParam().emulate_zero)
            was_ = madvisev_zero_force_emulation(1);
    }
    void TearDown() override {
        if (GetParam().emulate_zero)
            madvisev_zero_force_emulation(was_);
    }
    int was_ = 0;
};

// 16 pages written over the slot, all swapped out and out of the swap
// cache; released; the next lease of the slot must read zeros.
TEST_P(Swapped, SwappedOutPagesReadZeroAfterReuse) {
    ASSERT_GT(swap_total_kb(), 0u) << "no swap: this test needs a swap device";
    Pool pool(GetParam().cfg);
    auto a = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(a);
    ASSERT_NO_FATAL_FAILURE(small_pages(a->base()));
    std::vector<std::byte *> pages;
    for (size_t i = 0; i < kPages; i++) {
        std::byte *p = a->base() + i * (kSlotBytes / kPages) + 8 * kPage;
        memset(p, 0xa5, kPage);
        pages.push_back(p);
    }
    int rounds = push_out(pages);
    ASSERT_GE(rounds, 0) << "the pages could not be pushed out of the swap cache";
    printf("[ swap     ] %s: 16 pages swapped out and out of the swap cache after %d rounds of "
           "pressure\n",
           GetParam().name, rounds);
    pool.release(std::move(*a));
    auto b = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->index(), a->index());
    if (GetParam().cfg.reset == Reset::zero_in_place) { // looked at before the reads below
        for (std::byte *p : pages) {
            EXPECT_FALSE(pagemap_entry(p) >> 62 & 1) << "a swap entry survived MADVISEV_ZERO";
        }
    }
    size_t stale = 0;
    for (std::byte *p : pages)
        for (size_t j = 0; j < kPage; j++)
            stale += p[j] != std::byte{0};
    EXPECT_EQ(stale, 0u) << "bytes of the previous tenant came back from swap";
    auto st = pool.stats();
    if (GetParam().cfg.reset == Reset::adaptive && GetParam().cfg.pagemap_scan) {
        EXPECT_EQ(st.swapped_resets, 1u) << "the swapped pages were not found by the scan";
        EXPECT_EQ(st.zeroed_in_place, 1u);
    }
    if (GetParam().cfg.reset == Reset::zero_in_place) {
        EXPECT_EQ(st.zero_calls, 1u);
        EXPECT_EQ(st.decommit_calls, 0u);
    }
    pool.release(std::move(*b));
}

// Some pages swapped out, some written again after (present), some
// swapped and then read back in (present and in the swap cache): all of
// them are reset, and the present ones in place.
TEST_P(Swapped, MixedPresentAndSwappedPages) {
    ASSERT_GT(swap_total_kb(), 0u) << "no swap: this test needs a swap device";
    Pool pool(GetParam().cfg);
    auto a = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(a);
    ASSERT_NO_FATAL_FAILURE(small_pages(a->base()));
    std::vector<std::byte *> pages;
    for (size_t i = 0; i < kPages; i++) {
        std::byte *p = a->base() + i * (kSlotBytes / kPages);
        memset(p, 0x5a, kPage);
        pages.push_back(p);
    }
    ASSERT_GE(push_out(pages), 0);
    volatile std::byte sink{};
    for (size_t i = 0; i < 4; i++)
        sink = pages[i][0]; // swapped in again, still in the swap cache
    for (size_t i = 0; i < 4; i++)
        memset(pages[4 + i] + kPage, 0x77, kPage); // a new page beside
    (void)sink;
    pool.release(std::move(*a));
    auto b = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->index(), a->index());
    size_t stale = 0;
    for (std::byte *p : pages)
        for (size_t j = 0; j < 2 * kPage; j++)
            stale += p[j] != std::byte{0};
    EXPECT_EQ(stale, 0u) << "bytes of the previous tenant survived the reset";
    pool.release(std::move(*b));
}

// The tenant's memory in transparent huge pages (MADV_HUGEPAGE, as a
// runtime may ask, or THP "always"): 4 MiB written, paged out (whole or
// split, as the kernel swaps huge pages), pushed out of the swap cache; the
// next lease reads zeros in all of it.  Where THP is on, the test first
// holds that huge pages did back the writes: otherwise it would not test
// what it says.
TEST_P(Swapped, HugePagesSwappedOutReadZeroAfterReuse) {
    ASSERT_GT(swap_total_kb(), 0u) << "no swap: this test needs a swap device";
    constexpr size_t kHuge = size_t{2} << 20, kBytes = 2 * kHuge;
    Pool pool(GetParam().cfg);
    auto a = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(a);
    const auto base = reinterpret_cast<uintptr_t>(a->base());
    auto *region = reinterpret_cast<std::byte *>((base + kHuge - 1) / kHuge * kHuge);
    ASSERT_LE(region + kBytes, a->base() + kSlotBytes);
    const std::string mode = thp_mode();
    if (!mode.empty()) {
        ASSERT_EQ(madvise(region, kBytes, MADV_HUGEPAGE), 0) << strerror(errno);
    }
    memset(region, 0x3c, kBytes);
    const size_t huge_kb = anon_huge_kb(region);
    printf("[ swap     ] %s: THP %s, %zu kB of the tenant's 4 MiB in huge pages\n", GetParam().name,
           mode.empty() ? "not built" : mode.c_str(), huge_kb);
    if (mode == "always" || mode == "madvise") {
        ASSERT_GT(huge_kb, 0u) << "no huge page backs the tenant's memory";
    }
    ASSERT_EQ(madvise(region, kBytes, kMadvPageout), 0) << strerror(errno);
    std::vector<std::byte *> pages;
    for (size_t off = 0; off < kBytes; off += 32 * kPage)
        pages.push_back(region + off);
    int rounds = push_out(pages);
    ASSERT_GE(rounds, 0) << "the pages could not be pushed out of the swap cache";
    pool.release(std::move(*a));
    auto b = pool.acquire(Kind::memory, 1, kSlotBytes);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->index(), a->index());
    size_t stale = 0;
    for (size_t j = 0; j < kBytes; j++)
        stale += region[j] != std::byte{0};
    EXPECT_EQ(stale, 0u) << "bytes of the previous tenant came back from swap";
    pool.release(std::move(*b));
}

INSTANTIATE_TEST_SUITE_P(Policies, Swapped, ::testing::ValuesIn(policies()),
                         [](const auto &info) { return std::string(info.param.name); });

} // namespace
