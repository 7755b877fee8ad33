// SPDX-License-Identifier: MIT
// The library's first call, each time in a fresh process (madvisev-first-use):
// this test binary has probed every backend long before its tests run.
#include <sys/wait.h>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace {

struct Outcome {
    int status = -1;
    std::string output;
};

// The helper: where the build put it, else beside this binary (the guests
// carry both in /tests).
std::string helper_path() {
    if (const char *e = getenv("MADVISEV_FIRST_USE_BIN"))
        return e;
    if (access(MADVISEV_FIRST_USE_BIN, X_OK) == 0)
        return MADVISEV_FIRST_USE_BIN;
    char self[4096] = {};
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    std::string dir = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(".");
    return dir.substr(0, dir.rfind('/') + 1) + "madvisev-first-use";
}

Outcome run_scenario(const char *scenario) {
    Outcome o;
    std::string cmd = helper_path() + " " + scenario + " 2>&1";
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
                                           "seccomp-late", "seccomp-kill-unknown", "errno-kept",
                                           "fork-first-use"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                             std::string n = i.param;
                             for (char &c : n)
                                 if (c == '-')
                                     c = '_';
                             return n;
                         });

} // namespace
