// SPDX-License-Identifier: MIT
// The library's first call, each time in a fresh process (madvisev-first-use):
// this test binary has probed every backend long before its tests run.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_util.h"

namespace {

struct Outcome {
    int status = -1;
    std::string output;
};

Outcome run_scenario(const char *scenario) {
    Outcome o;
    std::string cmd = std::string(MADVISEV_FIRST_USE_BIN) + " " + scenario + " 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    if (!p)
        return o;
    std::array<char, 256> buf{};
    while (fgets(buf.data(), buf.size(), p))
        o.output += buf.data();
    o.status = pclose(p);
    return o;
}

class FirstUse : public ::testing::TestWithParam<const char *> {};

TEST_P(FirstUse, InAFreshProcess) {
    Outcome o = run_scenario(GetParam());
    ASSERT_TRUE(WIFEXITED(o.status))
        << GetParam() << " died (status " << o.status << "): " << o.output;
    if (WEXITSTATUS(o.status) == 77)
        GTEST_SKIP() << o.output;
    EXPECT_EQ(WEXITSTATUS(o.status), 0) << o.output;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, FirstUse,
                         ::testing::Values("as-limit", "fd-full", "pidfd-emfile", "threads",
                                           "seccomp-late", "seccomp-kill-unknown"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                             std::string n = i.param;
                             for (char &c : n)
                                 if (c == '-')
                                     c = '_';
                             return n;
                         });

} // namespace
