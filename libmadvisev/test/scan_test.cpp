// SPDX-License-Identifier: MIT
// madvisev_scan_data(): the pages that can hold data, on both of the
// scan's paths (PAGEMAP_SCAN, and the pagemap read kernels before 6.7
// take, forced here through the internal seam); resumption with a small
// array; argument checks.  And madvisev_zero_force_emulation().
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "madvisev.hpp"
#include "page_scan.h"
#include "test_util.h"

using namespace mvtest;

namespace {

enum class Path { pagemap_scan, pagemap_read };

std::string path_name(const ::testing::TestParamInfo<Path> &info) {
    return info.param == Path::pagemap_scan ? "pagemap_scan" : "pagemap_read";
}

// Whether this process sees frame numbers in its pagemap entries (root
// does): without them the pagemap read cannot tell the zero page from
// data, and counts it as data.
bool frames_visible() {
    static const bool visible = [] {
        Mapping m(page_size(), PROT_READ);
        volatile const char *p = m.get();
        (void)*p; // maps the zero page
        int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        uint64_t e = 0;
        off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(m.get()) / page_size() * 8);
        bool got = fd >= 0 && pread(fd, &e, sizeof(e), at) == static_cast<ssize_t>(sizeof(e));
        if (fd >= 0)
            close(fd);
        return got && (e & ((1ULL << 55) - 1)) != 0;
    }();
    return visible;
}

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

// Every run of the range, in one call with room to spare.
std::vector<madvisev_page_run> scan_all(const void *p, size_t len) {
    std::vector<madvisev_page_run> runs(4096);
    size_t next = 12345;
    ssize_t n = madvisev_scan_data(p, len, runs.data(), runs.size(), &next, 0);
    EXPECT_GE(n, 0) << strerror(errno);
    EXPECT_LT(static_cast<size_t>(n), runs.size()) << "the test's array was too small";
    EXPECT_EQ(next, (len + page_size() - 1) / page_size() * page_size());
    runs.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return runs;
}

std::string describe(const std::vector<madvisev_page_run> &runs) {
    std::string s;
    for (const madvisev_page_run &r : runs)
        s += " [page " + std::to_string(r.offset / page_size()) + " +" +
             std::to_string(r.length / page_size()) + " flags " + std::to_string(r.flags) + "]";
    return s.empty() ? " (none)" : s;
}

// Each test on one path; the pagemap read forced by the library's seam.
class ScanData : public ::testing::TestWithParam<Path> {
  protected:
    void SetUp() override {
        was_ = madvisev_internal::scan_force_pagemap_read(GetParam() == Path::pagemap_read);
    }
    void TearDown() override { madvisev_internal::scan_force_pagemap_read(was_); }
    bool was_ = false;
};

// A mapping with one page of each kind: written pages, written with zeros
// included, are data, adjacent ones one run; a page only read (the zero
// page), one never touched and one written then discarded are not.
TEST_P(ScanData, FindsWrittenPagesOnlyAndMergesNeighbours) {
    const size_t ps = page_size();
    constexpr size_t kPages = 16;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    ASSERT_EQ(madvise(m.get(), kPages * ps, MADV_NOHUGEPAGE), 0); // one entry a page
    fill(m.page(0), 3 * ps, 0x5a);                                // pages 0-2: one run
    volatile const char *read_only = m.page(4);
    (void)*read_only;       // page 4: the zero page
    fill(m.page(7), ps, 1); // page 7 alone; 5, 6 and 8 untouched
    fill(m.page(9), ps, 1);
    ASSERT_EQ(madvise(m.page(9), ps, MADV_DONTNEED), 0); // page 9: gone again
    fill(m.page(10), 2 * ps, 2);
    fill(m.page(12), ps, 0); // written with zeros: still a page of its own
    std::vector<madvisev_page_run> want = {{0, 3 * ps, 0}, {7 * ps, ps, 0}, {10 * ps, 3 * ps, 0}};
    if (GetParam() == Path::pagemap_read && !frames_visible())
        want.insert(want.begin() + 1, {4 * ps, ps, 0}); // cannot be told from data
    std::vector<madvisev_page_run> got = scan_all(m.get(), kPages * ps);
    ASSERT_EQ(got.size(), want.size()) << "got" << describe(got) << ", want" << describe(want);
    for (size_t i = 0; i < want.size(); i++) {
        EXPECT_EQ(got[i].offset, want[i].offset) << "run " << i << ":" << describe(got);
        EXPECT_EQ(got[i].length, want[i].length) << "run " << i << ":" << describe(got);
        EXPECT_EQ(got[i].flags, want[i].flags) << "run " << i << ":" << describe(got);
    }
}

// Untouched memory, a range of only zero-page reads, and a hole: no runs,
// no error.
TEST_P(ScanData, EmptyMemoryAndHolesHoldNoData) {
    if (GetParam() == Path::pagemap_read && !frames_visible())
        GTEST_SKIP() << "frame numbers hidden: the pagemap read counts the zero page as data";
    const size_t ps = page_size();
    Mapping m(64 * ps);
    ASSERT_NE(m.get(), nullptr);
    EXPECT_EQ(scan_all(m.get(), 64 * ps).size(), 0u);
    for (size_t i = 0; i < 32; i++) {
        volatile const char *p = m.page(i);
        (void)*p;
    }
    EXPECT_EQ(scan_all(m.get(), 64 * ps).size(), 0u) << describe(scan_all(m.get(), 64 * ps));
    fill(m.page(40), ps, 3);
    ASSERT_EQ(munmap(m.page(20), 4 * ps), 0);
    std::vector<madvisev_page_run> got = scan_all(m.get(), 64 * ps);
    ASSERT_EQ(got.size(), 1u) << describe(got);
    EXPECT_EQ(got[0].offset, 40 * ps);
    EXPECT_EQ(got[0].length, ps);
}

// 300 pages, every other one written: 150 runs, more than PAGEMAP_SCAN's
// batch of 64 and than the caller's array of 7.  Resuming at *next_offset
// gives the same runs as one call with room for all; the C++ wrapper does
// the resuming itself and agrees.
TEST_P(ScanData, ResumesWhereTheArrayFilled) {
    const size_t ps = page_size();
    constexpr size_t kPages = 300, kMax = 7;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    ASSERT_EQ(madvise(m.get(), kPages * ps, MADV_NOHUGEPAGE), 0);
    for (size_t i = 1; i < kPages; i += 2)
        fill(m.page(i), ps, 0x11);
    std::vector<madvisev_page_run> whole = scan_all(m.get(), kPages * ps);
    ASSERT_EQ(whole.size(), kPages / 2) << describe(whole);

    std::vector<madvisev_page_run> resumed;
    size_t done = 0;
    int calls = 0;
    while (done < kPages * ps && calls++ < 1000) {
        madvisev_page_run runs[kMax];
        size_t next = 0;
        ssize_t n = madvisev_scan_data(m.get() + done, kPages * ps - done, runs, kMax, &next, 0);
        ASSERT_GE(n, 0) << strerror(errno);
        ASSERT_LE(static_cast<size_t>(n), kMax);
        ASSERT_GT(next, 0u) << "no progress";
        for (ssize_t i = 0; i < n; i++) {
            ASSERT_LT(runs[i].offset, next) << "a run past *next_offset";
            resumed.push_back({runs[i].offset + done, runs[i].length, runs[i].flags});
        }
        if (done + next < kPages * ps) {
            EXPECT_EQ(n, static_cast<ssize_t>(kMax)) << "stopped short with room left";
        }
        done += next;
    }
    EXPECT_EQ(done, kPages * ps);
    EXPECT_EQ(calls, static_cast<int>((kPages / 2 + kMax - 1) / kMax));
    ASSERT_EQ(resumed.size(), whole.size()) << "resumed:" << describe(resumed);
    for (size_t i = 0; i < whole.size(); i++) {
        EXPECT_EQ(resumed[i].offset, whole[i].offset) << "run " << i;
        EXPECT_EQ(resumed[i].length, whole[i].length) << "run " << i;
    }

    std::vector<madvisev_page_run> cxx;
    cxx.reserve(5); // smaller than the runs: the wrapper must go round
    ASSERT_EQ(madv::scan_data(m.get(), kPages * ps, cxx), 0);
    ASSERT_EQ(cxx.size(), whole.size()) << "madv::scan_data:" << describe(cxx);
    for (size_t i = 0; i < whole.size(); i++)
        EXPECT_EQ(cxx[i].offset, whole[i].offset) << "run " << i;
}

// No array at all: nothing stored, and *next_offset says where the first
// run begins (the range's length where there is none).
TEST_P(ScanData, NoArrayTellsWhereTheFirstRunBegins) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    ASSERT_NE(m.get(), nullptr);
    size_t next = 0;
    EXPECT_EQ(madvisev_scan_data(m.get(), 8 * ps, nullptr, 0, &next, 0), 0);
    EXPECT_EQ(next, 8 * ps);
    fill(m.page(5), ps, 9);
    EXPECT_EQ(madvisev_scan_data(m.get(), 8 * ps, nullptr, 0, &next, 0), 0);
    EXPECT_EQ(next, 5 * ps);
    EXPECT_EQ(madvisev_scan_data(m.get(), 8 * ps, nullptr, 0, nullptr, 0), 0);
}

// A length that is not a page multiple counts its last page whole, as
// madvise(2) does, on both paths.
TEST_P(ScanData, PartialLastPageCountsWhole) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.page(2), ps, 4);
    madvisev_page_run run{};
    size_t next = 0;
    ASSERT_EQ(madvisev_scan_data(m.get(), 2 * ps + 1, &run, 1, &next, 0), 1) << strerror(errno);
    EXPECT_EQ(run.offset, 2 * ps);
    EXPECT_EQ(run.length, ps);
    EXPECT_EQ(next, 3 * ps);
}

// Shared memory's pages are flagged: MADVISEV_ZERO cannot clear them in
// place, a caller has to know.
TEST_P(ScanData, SharedMemoryIsFlaggedFile) {
    const size_t ps = page_size();
    Mapping m(4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    ASSERT_NE(m.get(), nullptr);
    fill(m.page(0), ps, 1);
    fill(m.page(2), 2 * ps, 1);
    std::vector<madvisev_page_run> got = scan_all(m.get(), 4 * ps);
    ASSERT_EQ(got.size(), 2u) << describe(got);
    EXPECT_EQ(got[0].offset, 0u);
    EXPECT_EQ(got[0].length, ps);
    EXPECT_EQ(got[0].flags, MADVISEV_RUN_FILE);
    EXPECT_EQ(got[1].offset, 2 * ps);
    EXPECT_EQ(got[1].length, 2 * ps);
    EXPECT_EQ(got[1].flags, MADVISEV_RUN_FILE);
}

// Swapped-out pages are data too, flagged: the case mincore() misses
// once they have left the swap cache.  Needs swap; skips without it.
TEST_P(ScanData, SwappedOutPagesAreFlaggedSwapped) {
    if (swap_total_kb() == 0)
        GTEST_SKIP() << "no swap on this machine";
    cpu_set_t was, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof(was), &was), 0);
    // MADV_PAGEOUT drains only this CPU's LRU-add batch: stay on one CPU.
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    const size_t ps = page_size();
    constexpr size_t kPages = 8;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), kPages * ps, 0xe1);
    std::vector<madvisev_page_run> got;
    for (int round = 0; round < 20; round++) {
        madvise(m.get(), 4 * ps, 21 /* MADV_PAGEOUT */);
        got = scan_all(m.get(), kPages * ps);
        if (!got.empty() && got[0].flags == MADVISEV_RUN_SWAPPED && got[0].length == 4 * ps)
            break;
        usleep(10000);
    }
    sched_setaffinity(0, sizeof(was), &was);
    ASSERT_EQ(got.size(), 2u) << describe(got);
    EXPECT_EQ(got[0].offset, 0u);
    EXPECT_EQ(got[0].length, 4 * ps);
    EXPECT_EQ(got[0].flags, MADVISEV_RUN_SWAPPED);
    EXPECT_EQ(got[1].offset, 4 * ps);
    EXPECT_EQ(got[1].length, 4 * ps);
    EXPECT_EQ(got[1].flags, 0u);
}

// Addresses past the process's address space: EFAULT on both paths, and
// *next_offset left alone.
TEST_P(ScanData, PastTheAddressSpaceIsEfault) {
#if defined(__x86_64__) && !defined(__ILP32__)
    const void *kernel = reinterpret_cast<const void *>(uintptr_t{0xffff800000000000});
    madvisev_page_run run{};
    size_t next = 777;
    errno = 0;
    EXPECT_EQ(madvisev_scan_data(kernel, page_size(), &run, 1, &next, 0), -1);
    EXPECT_EQ(errno, EFAULT);
    EXPECT_EQ(next, 777u);
#else
    GTEST_SKIP() << "the address space's end is x86-64's here";
#endif
}

// The library's own callers pass a range's length as it is: on the
// pagemap read too, a partial last page is scanned, so that MADVISEV_ZERO's
// emulation clears the bytes of it that are in the range.
TEST_P(ScanData, EmulatedZeroClearsAPartialLastPage) {
    const size_t ps = page_size();
    Mapping m(3 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 3 * ps, 0x3c);
    std::vector<madvisev_internal::PageRun> runs;
    ASSERT_EQ(madvisev_internal::scan_data_pages(m.get(), ps + 1, runs),
              madvisev_internal::ScanStatus::ok);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].bytes, 2 * ps);
    bool was = madv::zero_force_emulation(true);
    iovec v{m.get(), ps + 1};
    ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
    madv::zero_force_emulation(was);
    EXPECT_EQ(r, static_cast<ssize_t>(ps + 1));
    EXPECT_TRUE(all_equal(m.get(), ps + 1, 0)) << "the range's last byte kept its data";
    EXPECT_TRUE(all_equal(m.page(2), ps, 0x3c)) << "the page after the range";
}

INSTANTIATE_TEST_SUITE_P(Paths, ScanData, ::testing::Values(Path::pagemap_scan, Path::pagemap_read),
                         path_name);

// Bad arguments are EINVAL before anything is read or written.
TEST(ScanDataArgs, BadArgumentsAreEinval) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 2 * ps, 1);
    madvisev_page_run run{99, 99, 99};
    size_t next = 777;
    auto einval = [&](const void *addr, size_t len, madvisev_page_run *runs, size_t max,
                      unsigned flags, const char *what) {
        errno = 0;
        EXPECT_EQ(madvisev_scan_data(addr, len, runs, max, &next, flags), -1) << what;
        EXPECT_EQ(errno, EINVAL) << what;
        EXPECT_EQ(next, 777u) << what << ": *next_offset written";
        EXPECT_EQ(run.offset, 99u) << what << ": the array written";
    };
    einval(m.get(), ps, &run, 1, 1, "flags");
    einval(m.get(), ps, &run, 1, 0x80000000U, "high flags");
    einval(m.get() + 1, ps, &run, 1, 0, "unaligned addr");
    einval(m.get() + 1, 0, &run, 1, 0, "unaligned addr, empty range");
    einval(m.get(), ps, nullptr, 1, 0, "NULL runs, max_runs 1");
    einval(m.get(), SIZE_MAX, &run, 1, 0, "len SIZE_MAX");
    einval(m.get(), UINTPTR_MAX - reinterpret_cast<uintptr_t>(m.get()) - 1, &run, 1, 0,
           "end rounds up past the top");
    const void *top = reinterpret_cast<const void *>(UINTPTR_MAX & ~(uintptr_t{ps} - 1));
    einval(top, ps, &run, 1, 0, "last page of the address space: the end wraps to 0");
    // Valid edge cases: an empty range, and no array at all.
    EXPECT_EQ(madvisev_scan_data(m.get(), 0, &run, 1, &next, 0), 0);
    EXPECT_EQ(next, 0u);
    EXPECT_EQ(madvisev_scan_data(nullptr, 0, nullptr, 0, nullptr, 0), 0);
}

// Where the system cannot tell (forced through the internal seam, as where
// /proc/self/pagemap is missing): ENOSYS, and the C++ wrapper says so too.
TEST(ScanDataArgs, CannotTellIsEnosys) {
    Mapping m(page_size());
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), page_size(), 1);
    madvisev_page_run run{};
    std::vector<madvisev_page_run> runs(3);
    bool was = madvisev_internal::scan_force_unsupported(true);
    errno = 0;
    ssize_t n = madvisev_scan_data(m.get(), page_size(), &run, 1, nullptr, 0);
    int err = errno;
    int cxx = madv::scan_data(m.get(), page_size(), runs);
    madvisev_internal::scan_force_unsupported(was);
    EXPECT_EQ(n, -1);
    EXPECT_EQ(err, ENOSYS);
    EXPECT_EQ(cxx, ENOSYS);
    EXPECT_TRUE(runs.empty());
}

// The public switch is the internal seam's: it returns the previous
// setting, and while on madvisev_zero_native() says 0.
TEST(ZeroForceEmulation, ReturnsThePreviousSettingAndForcesEmulation) {
    int was = madvisev_zero_force_emulation(1);
    EXPECT_TRUE(was == 0 || was == 1);
    EXPECT_EQ(madvisev_zero_native(), 0);
    EXPECT_EQ(madvisev_zero_force_emulation(7), 1); // any nonzero value is on
    EXPECT_EQ(madvisev_zero_native(), 0);
    // Still zeroes, by emulation.
    Mapping m(2 * page_size());
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 2 * page_size(), 0x42);
    iovec v{m.get(), 2 * page_size()};
    EXPECT_EQ(madvisev(&v, 1, MADVISEV_ZERO, 0), static_cast<ssize_t>(2 * page_size()));
    EXPECT_TRUE(all_equal(m.get(), 2 * page_size(), 0));
    EXPECT_EQ(madvisev_zero_force_emulation(0), 1);
    EXPECT_EQ(madv::zero_force_emulation(false), false);
    EXPECT_FALSE(madv::zero_force_emulation(true));
    EXPECT_TRUE(madv::zero_force_emulation(was != 0));
    // Off again: the kernel's answer (which the environment may force too).
    if (!was) {
        const char *env = getenv("MADVISEV_ZERO_EMULATE");
        bool env_forced = env != nullptr && std::string(env) == "1";
        std::ifstream f("/sys/kernel/mm/madvisev/version");
        long v = 0;
        bool kernel = f >> v && v >= 2;
        EXPECT_EQ(madvisev_zero_native(), kernel && !env_forced ? 1 : 0);
    }
}

} // namespace
