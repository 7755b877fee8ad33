// SPDX-License-Identifier: MIT
// What a successful or partly successful madvisev() does to memory, for
// every backend the kernel offers.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include <atomic>
#include <thread>
#include <vector>

#include "internal.h"
#include "test_util.h"

using namespace mvtest;

namespace {

class Semantics : public BackendTest {};

// Non-contiguous ranges over three separate mappings: exactly the ranges
// read zero afterwards, the gaps keep their data.
TEST_P(Semantics, DontneedZeroesNonContiguousRangesAcrossVmas) {
    const size_t ps = page_size();
    Mapping a(8 * ps), b(8 * ps), c(8 * ps);
    ASSERT_TRUE(a.get() && b.get() && c.get());
    for (Mapping *m : {&a, &b, &c})
        fill(m->get(), m->size(), 0xab);
    std::vector<iovec> iov = {{a.page(0), ps},
                              {a.page(2), 3 * ps},
                              {b.page(1), ps},
                              {c.page(4), 4 * ps},
                              {b.page(7), ps}};
    ssize_t r = call(iov.data(), iov.size(), MADV_DONTNEED);
    ASSERT_EQ(r, static_cast<ssize_t>(10 * ps)) << strerror(errno);
    for (const iovec &v : iov)
        EXPECT_TRUE(all_equal(v.iov_base, v.iov_len, 0));
    EXPECT_TRUE(all_equal(a.page(1), ps, 0xab));
    EXPECT_TRUE(all_equal(a.page(5), 3 * ps, 0xab));
    EXPECT_TRUE(all_equal(b.page(0), ps, 0xab));
    EXPECT_TRUE(all_equal(b.page(2), 5 * ps, 0xab));
    EXPECT_TRUE(all_equal(c.page(0), 4 * ps, 0xab));
}

// A length that is not a page multiple covers its last page whole, as in
// madvise(2), and the return value counts the bytes asked for.
TEST_P(Semantics, UnalignedLengthRoundsUpToPage) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    fill(m.get(), m.size(), 0x11);
    iovec v{m.get(), ps + 1};
    ASSERT_EQ(call(&v, 1, MADV_DONTNEED), static_cast<ssize_t>(ps + 1));
    EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0));
    EXPECT_TRUE(all_equal(m.page(2), 2 * ps, 0x11));
}

// MADV_FREE: accepted on private anonymous memory, each page then holds
// either its old data or zeros, and a page written afterwards keeps the new
// data.  Refused on shared memory (EINVAL), like madvise(2).
TEST_P(Semantics, FreeOnPrivateAnonymous) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    fill(m.get(), m.size(), 0x5c);
    iovec iov[] = {{m.page(0), 2 * ps}, {m.page(4), 3 * ps}};
    ASSERT_EQ(call(iov, 2, MADV_FREE), static_cast<ssize_t>(5 * ps)) << strerror(errno);
    for (size_t i = 0; i < 8; i++)
        EXPECT_TRUE(all_equal(m.page(i), ps, 0x5c) || all_equal(m.page(i), ps, 0)) << "page " << i;
    fill(m.page(4), ps, 0x77);
    EXPECT_TRUE(all_equal(m.page(4), ps, 0x77));

    Mapping shared(2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    iovec sv{shared.get(), 2 * ps};
    EXPECT_EQ(call(&sv, 1, MADV_FREE), -1);
    EXPECT_EQ(errno, EINVAL);
}

// Shared anonymous memory: DONTNEED only drops this mapping's view; the
// data is still in the shared object and reads back.
TEST_P(Semantics, DontneedOnSharedAnonymousKeepsObject) {
    const size_t ps = page_size();
    Mapping m(2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    fill(m.get(), m.size(), 0x3d);
    iovec v{m.get(), 2 * ps};
    ASSERT_EQ(call(&v, 1, MADV_DONTNEED), static_cast<ssize_t>(2 * ps));
    EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0x3d));
}

// Partial progress: the bytes of the ranges before the first failure, the
// ranges after it untouched.
TEST_P(Semantics, PartialProgressStopsAtFirstFailure) {
    const size_t ps = page_size();
    Mapping m(6 * ps);
    fill(m.get(), m.size(), 0x42);
    ASSERT_EQ(munmap(m.page(2), ps), 0); // a hole at page 2
    iovec iov[] = {{m.page(0), ps}, {m.page(1), ps}, {m.page(2), ps}, {m.page(4), ps}};
    ssize_t r = call(iov, 4, MADV_DONTNEED);
    EXPECT_EQ(r, static_cast<ssize_t>(2 * ps));
    EXPECT_TRUE(all_equal(m.page(0), 2 * ps, 0));
    // IORING_OP_MADVISE does not break its link chain on error, so with
    // io_uring the ranges after a failure may be advised too (documented).
    const bool stops = GetParam() != MADVISEV_BACKEND_IO_URING;
    if (stops) {
        EXPECT_TRUE(all_equal(m.page(4), ps, 0x42)) << "range after the failure was advised";
    }

    // Failure at the first range: -1 and ENOMEM.
    iovec first[] = {{m.page(2), ps}, {m.page(3), ps}};
    fill(m.page(3), ps, 0x42);
    EXPECT_EQ(call(first, 2, MADV_DONTNEED), -1);
    EXPECT_EQ(errno, ENOMEM);
    if (stops) {
        EXPECT_TRUE(all_equal(m.page(3), ps, 0x42));
    }
}

// A range with a hole in the middle fails with ENOMEM, and the bytes before
// it are what is reported.
TEST_P(Semantics, RangeWithHoleIsNotCounted) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    fill(m.get(), m.size(), 0x21);
    ASSERT_EQ(munmap(m.page(5), ps), 0);
    iovec iov[] = {{m.page(0), 2 * ps}, {m.page(3), 4 * ps}};
    EXPECT_EQ(call(iov, 2, MADV_DONTNEED), static_cast<ssize_t>(2 * ps));
    EXPECT_TRUE(all_equal(m.page(0), 2 * ps, 0));
}

// More ranges than one kernel call takes (UIO_MAXIOV = 1024).
TEST_P(Semantics, MoreThanIovMaxRanges) {
    const size_t ps = page_size();
    constexpr size_t kRanges = 2500;
    Mapping m(2 * kRanges * ps);
    fill(m.get(), m.size(), 0x99);
    std::vector<iovec> iov(kRanges);
    for (size_t i = 0; i < kRanges; i++)
        iov[i] = {m.page(2 * i), ps};
    ASSERT_EQ(call(iov.data(), iov.size(), MADV_DONTNEED), static_cast<ssize_t>(kRanges * ps))
        << strerror(errno);
    for (size_t i = 0; i < kRanges; i++) {
        ASSERT_TRUE(all_equal(m.page(2 * i), ps, 0)) << "range " << i;
        ASSERT_TRUE(all_equal(m.page(2 * i + 1), ps, 0x99)) << "gap " << i;
    }
}

// A failure past the first kernel call still reports whole-range progress.
TEST_P(Semantics, PartialProgressPastIovMax) {
    const size_t ps = page_size();
    constexpr size_t kRanges = 1500, kBad = 1200;
    Mapping m(2 * kRanges * ps);
    std::vector<iovec> iov(kRanges);
    for (size_t i = 0; i < kRanges; i++)
        iov[i] = {m.page(2 * i), ps};
    ASSERT_EQ(munmap(m.page(2 * kBad), ps), 0);
    EXPECT_EQ(call(iov.data(), iov.size(), MADV_DONTNEED), static_cast<ssize_t>(kBad * ps));
}

// Zero-length ranges at page-aligned addresses (NULL among them) are
// skipped without being examined, even where they point at nothing.
TEST_P(Semantics, AlignedZeroLengthRangesAreSkipped) {
    const size_t ps = page_size();
    Mapping m(3 * ps);
    fill(m.get(), m.size(), 0x61);
    ASSERT_EQ(munmap(m.page(2), ps), 0); // an empty range at a hole is still skipped
    iovec iov[] = {{nullptr, 0}, {m.page(1), 0}, {m.get(), ps}, {m.page(2), 0}};
    EXPECT_EQ(call(iov, 4, MADV_DONTNEED), static_cast<ssize_t>(ps)) << strerror(errno);
    EXPECT_TRUE(all_equal(m.get(), ps, 0));
    EXPECT_TRUE(all_equal(m.page(1), ps, 0x61));
    iovec only_empty[] = {{nullptr, 0}, {m.page(1), 0}};
    EXPECT_EQ(call(only_empty, 2, MADV_DONTNEED), 0) << strerror(errno);
    EXPECT_EQ(call(iov, 0, MADV_DONTNEED), 0);
}

// An empty range at an unaligned address is EINVAL, as madvise(p + 1, 0)
// is, and fails the whole vector: the call returns -1 and nothing is
// advised, wherever the range stands (first, between, last, past the
// ranges of one kernel call).
TEST_P(Semantics, UnalignedEmptyRangeFailsTheWholeVector) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    fill(m.get(), m.size(), 0x62);
    void *const odd[] = {m.get() + 3, m.page(1) + ps / 2, reinterpret_cast<void *>(1)};
    for (void *at : odd) {
        // A page with data before it, and another after it.
        iovec between[] = {{m.get(), ps}, {at, 0}, {m.page(1), ps}};
        errno = 0;
        EXPECT_EQ(call(between, 3, MADV_DONTNEED), -1) << "empty range at " << at;
        EXPECT_EQ(errno, EINVAL) << strerror(errno);
        iovec last[] = {{m.get(), ps}, {nullptr, 0}, {at, 0}};
        errno = 0;
        EXPECT_EQ(call(last, 3, MADV_DONTNEED), -1) << "empty range at " << at;
        EXPECT_EQ(errno, EINVAL) << strerror(errno);
        iovec first[] = {{at, 0}, {m.get(), ps}};
        errno = 0;
        EXPECT_EQ(call(first, 2, MADV_DONTNEED), -1) << "empty range at " << at;
        EXPECT_EQ(errno, EINVAL) << strerror(errno);
        iovec alone{at, 0};
        errno = 0;
        EXPECT_EQ(call(&alone, 1, MADV_DONTNEED), -1) << "empty range at " << at;
        EXPECT_EQ(errno, EINVAL) << strerror(errno);
        EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0x62)) << "a page was advised";
    }

    // Past the first kernel call's 1024 ranges: still nothing advised.
    constexpr size_t kRanges = 1500, kOdd = 1300;
    Mapping many(kRanges * ps);
    fill(many.get(), many.size(), 0x63);
    std::vector<iovec> iov;
    for (size_t i = 0; i < kRanges; i++) {
        if (i == kOdd)
            iov.push_back({many.page(i) + 1, 0});
        iov.push_back({many.page(i), ps});
    }
    errno = 0;
    EXPECT_EQ(call(iov.data(), iov.size(), MADV_DONTNEED), -1);
    EXPECT_EQ(errno, EINVAL) << strerror(errno);
    EXPECT_TRUE(all_equal(many.get(), many.size(), 0x63)) << "a range was advised";
}

// Ranges larger than process_madvise takes in one vector (MAX_RW_COUNT,
// about 2 GiB) and than an io_uring request takes (4 GiB): the library
// cuts them, and still reports and zeroes all of it.
TEST_P(Semantics, HugeRangeIsAdvisedWhole) {
    const size_t ps = page_size();
    const size_t len = size_t{5} << 30; // reserved, never populated but for 3 pages
    Mapping m(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    ASSERT_NE(m.get(), nullptr);
    char *mid = m.get() + (size_t{3} << 30);
    m.get()[0] = 1;
    mid[0] = 2;
    m.get()[len - ps] = 3;
    Mapping small(ps);
    fill(small.get(), ps, 4);
    iovec iov[] = {{m.get(), len}, {small.get(), ps}};
    ASSERT_EQ(call(iov, 2, MADV_DONTNEED), static_cast<ssize_t>(len + ps)) << strerror(errno);
    EXPECT_EQ(m.get()[0], 0);
    EXPECT_EQ(mid[0], 0);
    EXPECT_EQ(m.get()[len - ps], 0);
    EXPECT_TRUE(all_equal(small.get(), ps, 0));
}

// MADV_DONTNEED_LOCKED works on mlock'ed memory, where DONTNEED is refused.
TEST_P(Semantics, LockedMemory) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    fill(m.get(), m.size(), 0x13);
    // The raw system call: AddressSanitizer turns mlock() into a no-op.
    if (syscall(SYS_mlock, m.get(), m.size()) != 0)
        GTEST_SKIP() << "mlock: " << strerror(errno);
    iovec v{m.get(), 2 * ps};
    EXPECT_EQ(call(&v, 1, MADV_DONTNEED), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0x13));
    EXPECT_EQ(call(&v, 1, 24 /* MADV_DONTNEED_LOCKED */), static_cast<ssize_t>(2 * ps));
    EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0));
    syscall(SYS_munlock, m.get(), m.size());
}

// Every advice value madvise(2) takes gives the same result through the
// backend as through madvise(2) itself, on identical fresh mappings.  Each
// is a VMA of its own between PROT_NONE pages: one that merged with a
// neighbour could answer differently (MADV_COLLAPSE is refused, EINVAL, in
// a VMA too small to hold a huge page, and succeeds, with nothing to do,
// in one that merged into a larger one).
TEST_P(Semantics, EveryAdviceMatchesMadvise) {
    const size_t ps = page_size();
    // HWPOISON and SOFT_OFFLINE damage real pages: not exercised.
    for (int advice : {0,  1,  2,  3,  4,  8,  9,  10, 11, 12, 13,  14, 15,
                       16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 102, 103}) {
        Mapping ref_area(6 * ps, PROT_NONE), mine_area(6 * ps, PROT_NONE);
        ASSERT_NE(ref_area.get(), nullptr);
        ASSERT_NE(mine_area.get(), nullptr);
        char *ref = ref_area.page(1), *mine = mine_area.page(1);
        ASSERT_EQ(mprotect(ref, 4 * ps, PROT_READ | PROT_WRITE), 0);
        ASSERT_EQ(mprotect(mine, 4 * ps, PROT_READ | PROT_WRITE), 0);
        fill(ref, 4 * ps, 7);
        fill(mine, 4 * ps, 7);
        errno = 0;
        int want = madvise(ref, 4 * ps, advice) == 0 ? 0 : errno;
        iovec v{mine, 4 * ps};
        errno = 0;
        ssize_t r = call(&v, 1, advice);
        int got = r < 0 ? errno : 0;
        EXPECT_EQ(got, want) << "advice " << advice << ": madvise says " << strerror(want)
                             << ", backend says " << strerror(got);
        if (r >= 0) {
            EXPECT_EQ(r, static_cast<ssize_t>(4 * ps)) << "advice " << advice;
        }
        if (advice == 103 || advice == 102) // leave no guard behind
            madvise(mine, 4 * ps, 103);
    }
}

// A child after fork() advises its own memory, never its parent's.
void expect_fork_isolated(int backend) {
    const size_t ps = page_size();
    Mapping m(ps);
    fill(m.get(), ps, 'P');
    iovec warm{m.get(), ps};
    // Make sure whatever the backend caches (a pidfd, a ring) exists before
    // the fork, so the child inherits it.
    Mapping scratch(ps);
    scratch.get()[0] = 1;
    iovec sv{scratch.get(), ps};
    ASSERT_EQ(madvisev_via(backend, &sv, 1, MADV_DONTNEED, 0), static_cast<ssize_t>(ps));

    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        fill(m.get(), ps, 'C');
        ssize_t r = madvisev_via(backend, &warm, 1, MADV_DONTNEED, 0);
        _exit(r == static_cast<ssize_t>(ps) && all_equal(m.get(), ps, 0) ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child could not advise its own page";
    EXPECT_TRUE(all_equal(m.get(), ps, 'P')) << "the child's call reached the parent";
}

TEST_P(Semantics, ForkedChildAdvisesOnlyItself) {
    expect_fork_isolated(GetParam());
}

// Many threads advising their own ranges at once, each checking zero-fill.
TEST_P(Semantics, ManyThreadsAtOnce) {
    const size_t ps = page_size();
    constexpr int kThreads = 8, kRounds = 200, kRanges = 8;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++)
        threads.emplace_back([&, t] {
            Mapping m(2 * kRanges * ps);
            iovec iov[kRanges];
            for (int i = 0; i < kRanges; i++)
                iov[i] = {m.page(2 * i), ps};
            for (int round = 0; round < kRounds; round++) {
                fill(m.get(), m.size(), static_cast<unsigned char>(t + 1));
                if (call(iov, kRanges, MADV_DONTNEED) != static_cast<ssize_t>(kRanges * ps))
                    failures++;
                for (int i = 0; i < kRanges; i++)
                    if (!all_equal(m.page(2 * i), ps, 0) ||
                        !all_equal(m.page(2 * i + 1), ps, static_cast<unsigned char>(t + 1)))
                        failures++;
            }
        });
    for (auto &th : threads)
        th.join();
    EXPECT_EQ(failures.load(), 0);
}

// True if the page at @p is in memory.
bool resident(const void *p) {
    unsigned char v = 0;
    return mincore(const_cast<void *>(p), page_size(), &v) == 0 && (v & 1);
}

// MADV_PAGEOUT from a forked child must act on the child's memory only.
// The kernel takes PAGEOUT from one process on another, so a backend that
// aimed at the parent would be seen: at the address the child advises, the
// parent has a clean page of a file (mapped by it alone, so PAGEOUT would
// reclaim it), and the parent's page must still be resident afterwards.
TEST_P(Semantics, ForkedChildPageoutLeavesTheParentsPages) {
    const size_t ps = page_size();
    std::string path = "madvisev-pageout-XXXXXX";
    int fd = mkstemp(path.data());
    ASSERT_GE(fd, 0) << strerror(errno);
    unlink(path.c_str());
    std::string block(ps, 'F');
    ASSERT_EQ(write(fd, block.data(), ps), static_cast<ssize_t>(ps));
    ASSERT_EQ(fsync(fd), 0); // clean: reclaim may drop it
    // Check that PAGEOUT can evict such a page here at all.
    void *self = mmap(nullptr, ps, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(self, MAP_FAILED);
    (void)*static_cast<volatile const char *>(self);
    ASSERT_TRUE(resident(self));
    bool evictable = madvise(self, ps, 21 /* MADV_PAGEOUT */) == 0 && !resident(self);
    munmap(self, ps);
    if (!evictable) {
        close(fd);
        GTEST_SKIP() << "MADV_PAGEOUT does not evict a clean file page on this filesystem";
    }

    Mapping spot(ps); // an address both processes will reuse
    char *at = spot.get();
    spot.release();
    munmap(at, ps);
    int to_child[2];
    ASSERT_EQ(pipe(to_child), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char go;
        void *mine = mmap(at, ps, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (mine != at || read(to_child[0], &go, 1) != 1)
            _exit(3);
        memset(at, 'C', ps);
        iovec v{at, ps};
        ssize_t r = madvisev_via(GetParam(), &v, 1, 21 /* MADV_PAGEOUT */, 0);
        _exit(r == static_cast<ssize_t>(ps) ? 0 : 1);
    }
    void *theirs = mmap(at, ps, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    ASSERT_EQ(theirs, at);
    (void)*static_cast<volatile const char *>(at);
    ASSERT_TRUE(resident(at));
    ASSERT_EQ(write(to_child[1], "g", 1), 1);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    EXPECT_TRUE(resident(at)) << "the child's MADV_PAGEOUT reclaimed the parent's page";
    munmap(at, ps);
    close(to_child[0]);
    close(to_child[1]);
    close(fd);
}

INSTANTIATE_TEST_SUITE_P(Backends, Semantics, MADVISEV_ALL_BACKENDS, backend_param_name);

// The pidfd path of process_madvise (Linux 6.13 and 6.14 have no
// PIDFD_SELF): the kept pidfd names the parent after fork(), so the backend
// must open a new one in the child.
TEST(ProcessMadvisePidfd, ForkedChildDoesNotUseParentsPidfd) {
    const char *why = nullptr;
    if (madvisev_backend_probe(MADVISEV_BACKEND_PROCESS_MADVISE, &why) != 1)
        GTEST_SKIP() << "process_madvise unavailable: " << why;
    // Restored afterwards: before Linux 6.15 the probe chose a pidfd per
    // call for good, there being no PIDFD_SELF.
    const bool was_per_call = madvisev_internal::process_madvise_force_pidfd(true);
    expect_fork_isolated(MADVISEV_BACKEND_PROCESS_MADVISE);
    madvisev_internal::process_madvise_force_pidfd(was_per_call);
}

} // namespace
