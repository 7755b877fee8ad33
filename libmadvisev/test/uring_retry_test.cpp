// SPDX-License-Identifier: MIT
// Runs madvisev-uring-retry (uring_retry.cpp): a load of liburing that
// failed for want of memory is tried again later (issue 27, item 10).
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "test_util.h"

namespace {

TEST(UringRetry, LoadFailedForWantOfMemoryIsTriedAgain) {
    FILE *p = popen(MADVISEV_URING_RETRY_BIN " 2>&1", "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[256];
    while (fgets(buf, sizeof(buf), p))
        out += buf;
    int status = pclose(p);
    ASSERT_TRUE(WIFEXITED(status)) << out;
    if (WEXITSTATUS(status) == 77)
        GTEST_SKIP() << out;
    EXPECT_EQ(WEXITSTATUS(status), 0) << out;
}

} // namespace
