// SPDX-License-Identifier: MIT
// Backend detection and selection.
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <cstdio>

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

// What automatic detection must pick here, pinned from outside the
// library: MADVISEV_EXPECT_BACKEND where the environment knows (the guests
// set syscall or sequential), else this kernel's version (process_madvise
// from 6.13 on) unless it names madvisev(2) in sysfs.
int expected_auto_backend() {
    if (const char *e = getenv("MADVISEV_EXPECT_BACKEND"))
        return madvisev_backend_from_str(e);
    if (access("/sys/kernel/mm/madvisev/syscall_nr", F_OK) == 0)
        return MADVISEV_BACKEND_SYSCALL;
    utsname u{};
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return -1;
    return ma > 6 || (ma == 6 && mi >= 13) ? MADVISEV_BACKEND_PROCESS_MADVISE
                                           : MADVISEV_BACKEND_SEQUENTIAL;
}

TEST(Backend, AutoPicksTheExpectedBackend) {
    if (getenv("MADVISEV_BACKEND"))
        GTEST_SKIP() << "MADVISEV_BACKEND is set";
    int want = expected_auto_backend();
    ASSERT_GE(want, 0);
    EXPECT_STREQ(madvisev_backend_name(), madvisev_backend_str(want));
    EXPECT_EQ(madvisev_backend_probe(want, nullptr), 1);
}

// The syscall backend is there exactly when the kernel names the call in
// sysfs, and the number it names answers the query.
TEST(Backend, SyscallBackendFollowsTheKernelsFile) {
    long nr = -1;
    if (FILE *f = fopen("/sys/kernel/mm/madvisev/syscall_nr", "r")) {
        if (fscanf(f, "%ld", &nr) != 1)
            nr = -1;
        fclose(f);
    }
    int available = madvisev_backend_probe(MADVISEV_BACKEND_SYSCALL, nullptr);
    if (nr < 0) {
        EXPECT_EQ(available, 0);
        return;
    }
    EXPECT_EQ(syscall(nr, nullptr, 0, 0, MADVISEV_QUERY), MADVISEV_QUERY_MAGIC);
    EXPECT_EQ(available, 1);
}

// The process_madvise backend is there from Linux 6.13 on, and on a 6.12
// kernel whose madvisev series says in sysfs (version 1 or later) that
// process_madvise(2) takes MADV_DONTNEED from the caller itself.
TEST(Backend, ProcessMadviseBackendFollowsTheKernel) {
    long version = 0;
    if (FILE *f = fopen("/sys/kernel/mm/madvisev/version", "r")) {
        if (fscanf(f, "%ld", &version) != 1)
            version = 0;
        fclose(f);
    }
    utsname u{};
    int ma = 0, mi = 0;
    ASSERT_EQ(uname(&u), 0);
    ASSERT_EQ(sscanf(u.release, "%d.%d", &ma, &mi), 2) << u.release;
    const bool upstream = ma > 6 || (ma == 6 && mi >= 13);
    const char *why = nullptr;
    EXPECT_EQ(madvisev_backend_probe(MADVISEV_BACKEND_PROCESS_MADVISE, &why),
              upstream || version >= 1 ? 1 : 0)
        << "Linux " << u.release << ", sysfs version " << version << ": " << (why ? why : "");
}

// madvise(2) itself must be there on any kernel these tests run on.
TEST(Backend, SequentialAlwaysAvailable) {
    const char *why = nullptr;
    EXPECT_EQ(madvisev_backend_probe(MADVISEV_BACKEND_SEQUENTIAL, &why), 1) << why;
}

} // namespace
