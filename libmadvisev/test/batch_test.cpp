// SPDX-License-Identifier: MIT
// The C++ batch in madvisev.hpp.
#include "madvisev.hpp"

#include <system_error>

#include "test_util.h"

using namespace mvtest;

namespace {

TEST(Batch, FlushAdvisesEverythingInOneGo) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    fill(m.get(), m.size(), 0x31);
    madv::batch b;
    b.add(m.page(0), ps);
    b.add(std::span<std::byte>(reinterpret_cast<std::byte *>(m.page(3)), 2 * ps));
    b.add(m.page(7), 0); // empty: not queued
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
    b.add(m.page(0), ps);
    b.add(m.page(1), ps);
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
        b.add(m.page(1), ps);
    }
    EXPECT_TRUE(all_equal(m.page(1), ps, 0));
    EXPECT_TRUE(all_equal(m.page(0), ps, 0x33));
}

TEST(Batch, UnalignedAddThrows) {
    Mapping m(page_size());
    madv::batch b;
    EXPECT_THROW(b.add(m.get() + 1, 16), std::system_error);
    EXPECT_TRUE(b.empty());
}

// A failed flush keeps the ranges it could not advise and names the error;
// the destructor hands them to the error handler rather than dropping them.
TEST(Batch, FailureKeepsUnadvisedRanges) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    fill(m.get(), m.size(), 0x34);
    ASSERT_EQ(munmap(m.page(1), ps), 0);
    size_t handed = 0;
    int handed_err = 0;
    {
        madv::batch b;
        b.on_error([&](std::span<const iovec> left, int err) {
            handed = left.size();
            handed_err = err;
        });
        b.add(m.page(0), ps);
        b.add(m.page(1), ps); // unmapped
        b.add(m.page(2), ps);
        madv::flush_result r = b.flush();
        EXPECT_FALSE(r);
        EXPECT_EQ(r.error, ENOMEM);
        EXPECT_EQ(r.ranges, 1u);
        EXPECT_EQ(b.size(), 2u);
        EXPECT_EQ(b.pending()[0].iov_base, m.page(1));
    }
    EXPECT_EQ(handed, 2u);
    EXPECT_EQ(handed_err, ENOMEM);
    EXPECT_TRUE(all_equal(m.page(0), ps, 0));
    if (madvisev_backend() != MADVISEV_BACKEND_IO_URING) { // see PartialProgress
        EXPECT_TRUE(all_equal(m.page(2), ps, 0x34)) << "advised past the failure";
    }
}

TEST(BatchDeathTest, DestructorWithoutHandlerAbortsOnFailure) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const size_t ps = page_size();
    EXPECT_DEATH(
        {
            Mapping m(ps);
            void *addr = m.get();
            munmap(addr, ps);
            m.release();
            madv::batch b;
            b.add(addr, ps);
        },
        "not advised");
}

} // namespace
