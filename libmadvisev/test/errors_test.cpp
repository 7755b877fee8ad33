// SPDX-License-Identifier: MIT
// Argument errors: refused as a whole, before any range is touched, with
// the same errno on every backend.
#include <climits>
#include <cstdint>

#include "test_util.h"

using namespace mvtest;

namespace {

class Errors : public BackendTest {
  protected:
    // Expect -1/err and that the valid first range kept its data.
    void expect_refused(const iovec *iov, size_t n, int advice, unsigned flags, int err) {
        fill(m_.get(), page_size(), 0xee);
        errno = 0;
        EXPECT_EQ(call(iov, n, advice, flags), -1);
        EXPECT_EQ(errno, err) << strerror(errno);
        EXPECT_TRUE(all_equal(m_.get(), page_size(), 0xee)) << "a range was advised";
    }
    Mapping m_{4 * page_size()};
};

TEST_P(Errors, UnknownFlags) {
    iovec v{m_.get(), page_size()};
    for (unsigned flags : {1u, 2u, 0x100u, MADVISEV_QUERY, ~0u})
        expect_refused(&v, 1, MADV_DONTNEED, flags, EINVAL);
}

TEST_P(Errors, UnknownAdvice) {
    iovec v{m_.get(), page_size()};
    for (int advice : {-1, 5, 6, 7, 26, 99, 104, 999, 1001, INT_MAX, INT_MIN})
        expect_refused(&v, 1, advice, 0, EINVAL);
}

TEST_P(Errors, UnalignedBaseAnywhereInVector) {
    iovec iov[] = {{m_.get(), page_size()}, {m_.page(2) + 8, page_size()}};
    expect_refused(iov, 2, MADV_DONTNEED, 0, EINVAL);
}

TEST_P(Errors, LengthWrapsAddressSpace) {
    const size_t ps = page_size();
    iovec wrap[] = {{m_.get(), ps}, {m_.page(1), SIZE_MAX - ps}};
    expect_refused(wrap, 2, MADV_DONTNEED, 0, EINVAL);
    // Wraps only once rounded up to a page.
    uintptr_t last_page = UINTPTR_MAX & ~(ps - 1);
    iovec round[] = {{m_.get(), ps}, {reinterpret_cast<void *>(last_page), ps - 1}};
    expect_refused(round, 2, MADV_DONTNEED, 0, EINVAL);
}

// Above SSIZE_MAX a length is invalid even where it does not wrap (the
// kernel refuses such an iovec).
TEST_P(Errors, LengthAboveSsizeMax) {
    iovec v[] = {{m_.get(), page_size()},
                 {reinterpret_cast<void *>(page_size()), static_cast<size_t>(SSIZE_MAX) + 1}};
    expect_refused(v, 2, MADV_DONTNEED, 0, EINVAL);
}

TEST_P(Errors, NullVector) {
    errno = 0;
    EXPECT_EQ(call(nullptr, 1, MADV_DONTNEED), -1);
    EXPECT_EQ(errno, EFAULT);
    EXPECT_EQ(call(nullptr, 0, MADV_DONTNEED), 0);
}

TEST_P(Errors, UnmappedRangeIsEnomem) {
    const size_t ps = page_size();
    // A first call sets up what the backend keeps (an io_uring's rings are
    // mapped then, and could land in the hole made below).
    iovec warm{m_.get(), ps};
    ASSERT_EQ(call(&warm, 1, MADV_DONTNEED), static_cast<ssize_t>(ps)) << strerror(errno);
    Mapping hole(ps);
    void *addr = hole.get();
    ASSERT_EQ(munmap(addr, ps), 0);
    hole.release();
    iovec v{addr, ps};
    errno = 0;
    EXPECT_EQ(call(&v, 1, MADV_DONTNEED), -1);
    EXPECT_EQ(errno, ENOMEM);
}

TEST_P(Errors, KernelAddressIsRefused) {
    // Not user memory: madvise(2) calls it unmapped (ENOMEM) or invalid.
    iovec v{reinterpret_cast<void *>(0xffff888000000000ull), page_size()};
    errno = 0;
    EXPECT_EQ(call(&v, 1, MADV_DONTNEED), -1);
    EXPECT_TRUE(errno == ENOMEM || errno == EINVAL || errno == EFAULT) << strerror(errno);
}

INSTANTIATE_TEST_SUITE_P(Backends, Errors, MADVISEV_ALL_BACKENDS, backend_param_name);

TEST(ErrorsApi, UnknownBackend) {
    iovec v{nullptr, 0};
    errno = 0;
    EXPECT_EQ(madvisev_via(42, &v, 1, MADV_DONTNEED, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(madvisev_via(-1, &v, 1, MADV_DONTNEED, 0), -1);
    EXPECT_EQ(madvisev_backend_probe(42, nullptr), -1);
    EXPECT_EQ(madvisev_backend_str(42), nullptr);
    EXPECT_EQ(madvisev_backend_from_str(nullptr), -1);
    EXPECT_EQ(madvisev_backend_from_str("Syscall"), -1);
    EXPECT_EQ(madvisev_backend_from_str(""), -1);
}

} // namespace
