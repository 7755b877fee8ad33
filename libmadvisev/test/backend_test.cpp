// SPDX-License-Identifier: MIT
// Backend detection and selection.
#include <sys/syscall.h>

#include "test_util.h"

namespace {

TEST(Backend, NamesRoundTrip) {
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++)
        EXPECT_EQ(madvisev_backend_from_str(madvisev_backend_str(b)), b);
}

TEST(Backend, ProbeIsCachedAndExplained) {
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++) {
        const char *r1 = nullptr, *r2 = nullptr;
        int a1 = madvisev_backend_probe(b, &r1), a2 = madvisev_backend_probe(b, &r2);
        EXPECT_TRUE(a1 == 0 || a1 == 1);
        EXPECT_EQ(a1, a2);
        ASSERT_NE(r1, nullptr);
        EXPECT_EQ(r1, r2);
        EXPECT_GT(strlen(r1), 0u);
    }
}

// Without MADVISEV_BACKEND, the best available of syscall, process_madvise,
// sequential is used; io_uring never.
TEST(Backend, AutoPicksBestAvailable) {
    if (getenv("MADVISEV_BACKEND"))
        GTEST_SKIP() << "MADVISEV_BACKEND is set";
    int want = -1;
    for (int b :
         {MADVISEV_BACKEND_SYSCALL, MADVISEV_BACKEND_PROCESS_MADVISE, MADVISEV_BACKEND_SEQUENTIAL})
        if (madvisev_backend_probe(b, nullptr) == 1) {
            want = b;
            break;
        }
    ASSERT_NE(want, -1) << "not even madvise(2) works";
    EXPECT_EQ(madvisev_backend(), want);
    EXPECT_STREQ(madvisev_backend_name(), madvisev_backend_str(want));
}

// The syscall backend is detected only by its positive answer.  If the
// kernel has no madvisev, the number must give ENOSYS, and the probe must
// say unavailable; if it has one, the query returns the magic value.
TEST(Backend, SyscallDetectionIsPositive) {
    errno = 0;
    long r = syscall(__NR_madvisev, nullptr, 0, 0, MADVISEV_QUERY);
    int available = madvisev_backend_probe(MADVISEV_BACKEND_SYSCALL, nullptr);
    if (r == MADVISEV_QUERY_MAGIC)
        EXPECT_EQ(available, 1);
    else
        EXPECT_EQ(available, 0);
}

// madvise(2) itself must be there on any kernel these tests run on.
TEST(Backend, SequentialAlwaysAvailable) {
    const char *why = nullptr;
    EXPECT_EQ(madvisev_backend_probe(MADVISEV_BACKEND_SEQUENTIAL, &why), 1) << why;
}

} // namespace
