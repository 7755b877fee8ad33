// SPDX-License-Identifier: MIT
// The C++ batch in madvisev.hpp.
#include "madvisev.hpp"

#include <sys/syscall.h>

#include <climits>
#include <cstdint>
#include <system_error>
#include <utility>

#include "test_util.h"

using namespace mvtest;

namespace {

// A page MADV_DONTNEED refuses (EINVAL): mlock'ed, through the raw system
// call since the sanitizers make mlock() a no-op.  (An unmapped hole would
// not do: another thread's mmap, the sanitizer's among them, can fill it.)
bool lock_page(void *p) {
    return syscall(SYS_mlock, p, page_size()) == 0;
}

TEST(Batch, FlushAdvisesEverythingInOneGo) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    fill(m.get(), m.size(), 0x31);
    madv::batch b;
    EXPECT_TRUE(b.add(m.page(0), ps));
    EXPECT_TRUE(b.add(std::span<std::byte>(reinterpret_cast<std::byte *>(m.page(3)), 2 * ps)));
    EXPECT_TRUE(b.add(m.page(7), 0));                 // empty: not queued
    EXPECT_EQ(b.add(m.page(7) + 1, 0).error, EINVAL); // empty but unaligned
    EXPECT_EQ(b.size(), 2u);
    madv::flush_result r = b.flush();
    EXPECT_TRUE(r);
    EXPECT_EQ(r.bytes, 3 * ps);
    EXPECT_EQ(r.ranges, 2u);
    EXPECT_TRUE(b.empty());
    EXPECT_TRUE(all_equal(m.page(0), ps, 0));
    EXPECT_TRUE(all_equal(m.page(3), 2 * ps, 0));
    EXPECT_TRUE(all_equal(m.page(1), 2 * ps, 0x31));
}

TEST(Batch, FlushesWhenFull) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    fill(m.get(), m.size(), 0x32);
    madv::batch b(MADV_DONTNEED, 2);
    EXPECT_TRUE(b.add(m.page(0), ps));
    EXPECT_TRUE(b.add(m.page(1), ps));
    madv::flush_result r = b.add(m.page(2), ps); // third: the first two go
    EXPECT_TRUE(r);
    EXPECT_EQ(r.ranges, 2u);
    EXPECT_TRUE(all_equal(m.page(0), 2 * ps, 0));
    EXPECT_TRUE(all_equal(m.page(2), ps, 0x32));
    EXPECT_EQ(b.size(), 1u);
}

TEST(Batch, DestructorFlushes) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    fill(m.get(), m.size(), 0x33);
    {
        madv::batch b;
        EXPECT_TRUE(b.add(m.page(1), ps));
    }
    EXPECT_TRUE(all_equal(m.page(1), ps, 0));
    EXPECT_TRUE(all_equal(m.page(0), ps, 0x33));
}

// add() refuses what madvisev() would refuse, before queuing it, so one bad
// range cannot poison the ranges queued with it.
TEST(Batch, AddRefusesBadRanges) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    fill(m.get(), m.size(), 0x35);
    madv::batch b;
    for (auto [addr, len] : {std::pair<void *, size_t>{m.get() + 1, 16},
                             {m.get(), static_cast<size_t>(SSIZE_MAX) + 1},
                             {m.get(), SIZE_MAX - ps},
                             {reinterpret_cast<void *>(UINTPTR_MAX & ~(ps - 1)), ps}}) {
        madv::flush_result r = b.add(addr, len);
        EXPECT_EQ(r.error, EINVAL) << addr << " + " << len;
    }
    EXPECT_TRUE(b.empty());
    EXPECT_TRUE(b.add(m.get(), ps));
    madv::flush_result r = b.flush();
    EXPECT_TRUE(r) << strerror(r.error);
    EXPECT_TRUE(all_equal(m.get(), ps, 0));
    EXPECT_TRUE(all_equal(m.page(1), ps, 0x35));
}

// A batch whose flushes keep failing never grows past its capacity: add()
// says ENOBUFS (the flush's own error is flush()'s to tell) and the range
// is not queued.
TEST(Batch, StaysWithinCapacityWhileFlushesFail) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    ASSERT_TRUE(lock_page(m.page(0))); // the first range will always fail
    madv::batch b(MADV_DONTNEED, 4);
    b.on_error([](std::span<const iovec>, int) {});
    for (size_t i = 0; i < 8; i++) {
        madv::flush_result r = b.add(m.page(i), ps);
        if (i >= 4) {
            EXPECT_EQ(r.error, ENOBUFS) << "add " << i;
        }
        EXPECT_LE(b.size(), 4u);
    }
    EXPECT_EQ(b.size(), 4u);
    b.clear();
}

// Ranges whose lengths sum past SSIZE_MAX: madvisev() returns the part that
// fits, and flush() calls again for the rest; every range is advised and
// none is left behind as if it had failed.
TEST(Batch, FlushFinishesAVectorLongerThanOneCallCounts) {
    const size_t len = size_t{1} << 43; // 8 TiB
    void *p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) // ThreadSanitizer's shadow takes most of the address space
        GTEST_SKIP() << "could not reserve 8 TiB of address space";
    const size_t n = static_cast<size_t>(SSIZE_MAX) / len + 2;
    madv::batch b(MADV_DONTNEED, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_TRUE(b.add(p, len));
    madv::flush_result r = b.flush();
    EXPECT_TRUE(r) << strerror(r.error);
    EXPECT_EQ(r.ranges, n);
    EXPECT_TRUE(b.empty());
    munmap(p, len);
}

// A failed flush keeps the ranges it could not advise and names the error;
// the destructor hands them to the error handler rather than dropping them.
TEST(Batch, FailureKeepsUnadvisedRanges) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    fill(m.get(), m.size(), 0x34);
    ASSERT_TRUE(lock_page(m.page(1)));
    size_t handed = 0;
    int handed_err = 0;
    {
        madv::batch b;
        b.on_error([&](std::span<const iovec> left, int err) {
            handed = left.size();
            handed_err = err;
        });
        EXPECT_TRUE(b.add(m.page(0), ps));
        EXPECT_TRUE(b.add(m.page(1), ps)); // locked: refused at flush
        EXPECT_TRUE(b.add(m.page(2), ps));
        madv::flush_result r = b.flush();
        EXPECT_FALSE(r);
        EXPECT_EQ(r.error, EINVAL);
        EXPECT_EQ(r.ranges, 1u);
        EXPECT_EQ(b.size(), 2u);
        EXPECT_EQ(b.pending()[0].iov_base, m.page(1));
    }
    EXPECT_EQ(handed, 2u);
    EXPECT_EQ(handed_err, EINVAL);
    EXPECT_TRUE(all_equal(m.page(0), ps, 0));
    if (madvisev_backend() != MADVISEV_BACKEND_IO_URING) { // see PartialProgress
        EXPECT_TRUE(all_equal(m.page(2), ps, 0x34)) << "advised past the failure";
    }
}

// Without a handler, a destructor that cannot advise a range does not
// abort the process (the caller who cares flushes and checks first).
TEST(Batch, DestructorWithoutHandlerDoesNotAbort) {
    const size_t ps = page_size();
    Mapping m(2 * ps);
    fill(m.get(), m.size(), 0x36);
    ASSERT_TRUE(lock_page(m.page(0)));
    {
        madv::batch b;
        EXPECT_TRUE(b.add(m.page(0), ps));
        EXPECT_TRUE(b.add(m.page(1), ps));
    }
    EXPECT_TRUE(all_equal(m.page(1), ps, 0x36)) << "advised past the failure";
}

} // namespace
