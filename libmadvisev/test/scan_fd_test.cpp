// SPDX-License-Identifier: MIT
// The scan's /proc/self/pagemap descriptor (issue 27, item 7): a child
// made without atfork handlers (_Fork(), a raw clone) scans its own page
// tables; a descriptor number the application took over is neither read
// nor closed by the library.  And the pagemap read's cost on a large,
// mostly empty range (item 12): figures printed, only correctness checked.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "page_scan.h"
#include "test_util.h"

using namespace mvtest;

namespace {

// The number of the library's cached pagemap descriptor, or -1 when it
// holds none open.
int library_pagemap_fd() {
    const std::string mine = "/proc/" + std::to_string(getpid()) + "/pagemap";
    for (int fd = 0; fd < 1024; fd++) {
        char link[256] = {};
        std::string path = "/proc/self/fd/" + std::to_string(fd);
        ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
        if (n > 0 && std::string(link, static_cast<size_t>(n)) == mine)
            return fd;
    }
    return -1;
}

std::string fd_target(int fd) {
    char link[256] = {};
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
    return n > 0 ? std::string(link, static_cast<size_t>(n)) : std::string("(closed)");
}

// Makes the library open (and, where it caches one, keep) its descriptor.
void warm_up_scan() {
    Mapping m(page_size());
    madvisev_page_run run{};
    size_t next = 0;
    fill(m.get(), page_size(), 1);
    ASSERT_EQ(madvisev_scan_data(m.get(), page_size(), &run, 1, &next, 0), 1);
}

// In the child: write pages of a fresh mapping, check the scan sees them,
// zero them through the emulation and check they read zero.  The exit
// status says which step failed (0: none).
int child_zero_own_pages() {
    const size_t ps = page_size();
    constexpr size_t kPages = 8;
    void *p =
        mmap(nullptr, kPages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 10;
    fill(p, kPages * ps, 0xa5);
    madvisev_page_run run{};
    size_t next = 0;
    ssize_t n = madvisev_scan_data(p, kPages * ps, &run, 1, &next, 0);
    int scan_wrong = n != 1 || run.offset != 0 || run.length != kPages * ps;
    madvisev_zero_force_emulation(1);
    iovec iov{p, kPages * ps};
    if (madvisev(&iov, 1, MADVISEV_ZERO, 0) != static_cast<ssize_t>(kPages * ps))
        return 11;
    int not_zero = !all_equal(p, kPages * ps, 0);
    return scan_wrong * 1 + not_zero * 2;
}

std::string child_verdict(int status) {
    if (!WIFEXITED(status))
        return "child died: status " + std::to_string(status);
    switch (WEXITSTATUS(status)) {
    case 0:
        return "ok";
    case 1:
        return "scan missed the child's written pages (zeroing worked)";
    case 2:
        return "emulated MADVISEV_ZERO left the child's pages unzeroed";
    case 3:
        return "scan missed the child's written pages and emulated MADVISEV_ZERO zeroed nothing";
    default:
        return "child failed at step " + std::to_string(WEXITSTATUS(status));
    }
}

// _Fork() (glibc 2.34+) runs no atfork handler: the child inherits the
// cached descriptor, which names the parent's address space.
TEST(ScanFd, UnderscoreForkChildScansAndZeroesItsOwnPages) {
    warm_up_scan();
    pid_t pid = _Fork();
    ASSERT_GE(pid, 0) << strerror(errno);
    if (pid == 0)
        _exit(child_zero_own_pages());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(child_verdict(status), "ok");
}

// A raw clone(SIGCHLD): the same, without glibc knowing of it at all.
TEST(ScanFd, RawCloneChildScansAndZeroesItsOwnPages) {
    warm_up_scan();
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    ASSERT_GE(pid, 0) << strerror(errno);
    if (pid == 0)
        syscall(SYS_exit_group, child_zero_own_pages());
    int status = 0;
    ASSERT_EQ(waitpid(static_cast<pid_t>(pid), &status, 0), pid);
    EXPECT_EQ(child_verdict(status), "ok");
}

// The application closes the library's descriptor (a bug of its own, or a
// close-every-descriptor loop) and the number goes to another file: the
// scan must not read that file, nor close or otherwise touch it.
TEST(ScanFd, DescriptorNumberReusedByTheApplication) {
    warm_up_scan();
    int fd = library_pagemap_fd();
    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(zero, 0);
    if (fd >= 0) {
        ASSERT_EQ(close(fd), 0);
        ASSERT_EQ(dup2(zero, fd), fd);
        close(zero);
    } else {
        fd = zero; // no cached descriptor: the scan is checked all the same
    }
    const size_t ps = page_size();
    Mapping m(4 * ps);
    fill(m.page(1), ps, 7);
    for (bool read_path : {false, true}) {
        bool was = madvisev_internal::scan_force_pagemap_read(read_path);
        madvisev_page_run run{};
        size_t next = 0;
        ssize_t n = madvisev_scan_data(m.get(), 4 * ps, &run, 1, &next, 0);
        madvisev_internal::scan_force_pagemap_read(was);
        EXPECT_EQ(n, 1) << (read_path ? "pagemap read" : "PAGEMAP_SCAN") << ": "
                        << (n < 0 ? strerror(errno) : "a wrong count");
        EXPECT_EQ(run.offset, ps);
        EXPECT_EQ(run.length, ps);
    }
    EXPECT_EQ(fd_target(fd), "/dev/zero");
    EXPECT_NE(fcntl(fd, F_GETFD), -1);
    close(fd);
}

// After fork() the child's descriptor at the library's old number is the
// application's: it must still be open in the child.
TEST(ScanFd, ForkChildKeepsTheApplicationsDescriptor) {
    warm_up_scan();
    int fd = library_pagemap_fd();
    int null = open("/dev/null", O_RDONLY); // inherited, as the app wants
    ASSERT_GE(null, 0);
    if (fd >= 0) {
        ASSERT_EQ(close(fd), 0);
        ASSERT_EQ(dup2(null, fd), fd);
        close(null);
    } else {
        fd = null;
    }
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        _exit(fcntl(fd, F_GETFD) == -1 ? 1 : fd_target(fd) == "/dev/null" ? 0 : 2);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "1: the child's descriptor was closed; 2: it names another file";
    // The library works on in the parent, and in a child after all this.
    warm_up_scan();
    close(fd);
}

double scan_ms(const void *p, size_t len, std::vector<madvisev_page_run> &runs) {
    auto t0 = std::chrono::steady_clock::now();
    size_t next = 0;
    ssize_t n = madvisev_scan_data(p, len, runs.data(), runs.size(), &next, 0);
    auto t1 = std::chrono::steady_clock::now();
    runs.resize(n < 0 ? 0 : static_cast<size_t>(n));
    EXPECT_GE(n, 0) << strerror(errno);
    EXPECT_EQ(next, len);
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

// A 64 GiB PROT_NONE reservation with 4 written pages, scanned on both
// paths, 3 times each; the times are printed, never checked.  Twice: with
// only the written pages made writable (the rest stays PROT_NONE), and
// with the whole reservation made writable.
TEST(ScanFd, LargeReservationOnBothPathsPrintsTimes) {
    const size_t ps = page_size();
    const size_t len = size_t{64} << 30;
    void *v = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v == MAP_FAILED)
        GTEST_SKIP() << "no 64 GiB of address space: " << strerror(errno);
    char *base = static_cast<char *>(v);
    // One page a run: under THP "always" (Debian's kernels) a write to the
    // read-write reservation would fault in a 2 MiB page.  EINVAL where the
    // kernel has no THP, and then no huge page to keep out.
    if (madvise(base, len, MADV_NOHUGEPAGE) != 0) {
        ASSERT_EQ(errno, EINVAL) << strerror(errno);
    }
    const size_t at[4] = {0, len / 3 / ps * ps, len / 2 / ps * ps, len - ps};
    for (bool whole : {false, true}) {
        if (whole) {
            ASSERT_EQ(mprotect(base, len, PROT_READ | PROT_WRITE), 0);
        }
        for (size_t off : at) {
            if (!whole) {
                ASSERT_EQ(mprotect(base + off, ps, PROT_READ | PROT_WRITE), 0);
            }
            base[off] = 1;
        }
        for (bool read_path : {false, true}) {
            bool was = madvisev_internal::scan_force_pagemap_read(read_path);
            std::string times;
            for (int i = 0; i < 3; i++) {
                std::vector<madvisev_page_run> runs(16);
                char t[32];
                snprintf(t, sizeof(t), " %.3f ms", scan_ms(base, len, runs));
                times += t;
                ASSERT_EQ(runs.size(), 4u);
                for (size_t k = 0; k < 4; k++) {
                    EXPECT_EQ(runs[k].offset, at[k]);
                    EXPECT_EQ(runs[k].length, ps);
                    EXPECT_EQ(runs[k].flags, 0u);
                }
            }
            madvisev_internal::scan_force_pagemap_read(was);
            printf("64 GiB, 4 pages written, %s, %s:%s\n",
                   whole ? "all read-write" : "rest PROT_NONE",
                   read_path ? "pagemap read" : "PAGEMAP_SCAN", times.c_str());
        }
    }
    munmap(v, len);
}

// The pagemap read of a large range (where it consults smaps) against
// PAGEMAP_SCAN: a hole, a page written then made PROT_NONE (still data),
// a page only read (the zero page), a shared page (file).
TEST(ScanFd, LargeRangeOnBothPathsGivesTheSameRuns) {
    const size_t ps = page_size();
    const size_t len = size_t{1} << 30;
    void *v = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(v, MAP_FAILED);
    char *base = static_cast<char *>(v);
    auto rw = [&](size_t off) { return mprotect(base + off, ps, PROT_READ | PROT_WRITE); };
    ASSERT_EQ(rw(ps), 0);
    base[ps] = 1;
    ASSERT_EQ(rw(len / 4), 0);
    base[len / 4] = 1;
    ASSERT_EQ(mprotect(base + len / 4, ps, PROT_NONE), 0);  // data behind PROT_NONE
    ASSERT_EQ(munmap(base + len / 2, size_t{16} << 20), 0); // a hole
    ASSERT_EQ(mprotect(base + len / 2 + (size_t{32} << 20), ps, PROT_READ), 0);
    volatile const char *zero_page = base + len / 2 + (size_t{32} << 20);
    (void)*zero_page;
    void *shared = mmap(base + len - 2 * ps, ps, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    ASSERT_NE(shared, MAP_FAILED);
    static_cast<char *>(shared)[0] = 1;
    std::vector<madvisev_page_run> want(16), got(16);
    scan_ms(base, len, want);
    bool was = madvisev_internal::scan_force_pagemap_read(true);
    scan_ms(base, len, got);
    madvisev_internal::scan_force_pagemap_read(was);
    ASSERT_EQ(want.size(), 3u);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); k++) {
        EXPECT_EQ(got[k].offset, want[k].offset) << k;
        EXPECT_EQ(got[k].length, want[k].length) << k;
        EXPECT_EQ(got[k].flags, want[k].flags) << k;
    }
    EXPECT_EQ(want[2].flags, unsigned{MADVISEV_RUN_FILE});
    munmap(v, len);
}

} // namespace
