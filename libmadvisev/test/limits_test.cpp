// SPDX-License-Identifier: MIT
// Vectors that cross every limit a backend has inside (ranges per call,
// bytes per call, bytes per request, IOV_MAX), with lengths that are not
// page multiples; calls interrupted by signals; byte sums past SSIZE_MAX;
// descriptors after fork().  The expected outcome comes from the geometry
// of the vector alone, never from the library's own arithmetic.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "internal.h"
#include "test_util.h"

using namespace mvtest;

namespace {

constexpr size_t kGiB = size_t{1} << 30;

// The flags of a large reservation (a Mapping) that costs nothing until a
// page is written.
constexpr int kReserve = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
constexpr int kReadWrite = PROT_READ | PROT_WRITE;

// The oracle: a page reads zero after the call exactly when some non-empty
// range covers it, from its base up to base + len rounded up to a page.
bool covered(const std::vector<iovec> &vec, const char *page) {
    const uintptr_t ps = page_size();
    const uintptr_t p = reinterpret_cast<uintptr_t>(page);
    for (const iovec &v : vec) {
        uintptr_t start = reinterpret_cast<uintptr_t>(v.iov_base);
        if (v.iov_len == 0)
            continue;
        uintptr_t end = (start + v.iov_len + ps - 1) & ~(ps - 1);
        if (p >= start && p < end)
            return true;
    }
    return false;
}

// Marks pages (first and last byte), advises the vector, and holds every
// mark to the oracle.  Returns the number of marks that disagree.
class VectorCase {
  public:
    void mark(char *page) {
        const size_t ps = page_size();
        page[0] = static_cast<char>(0xa5);
        page[ps - 1] = static_cast<char>(0x5a);
        marks_.push_back(page);
    }
    // Marks the first and last page of every range, and the page after it.
    void mark_edges(const iovec &v) {
        const size_t ps = page_size();
        char *b = static_cast<char *>(v.iov_base);
        if (v.iov_len == 0)
            return;
        size_t pages = (v.iov_len + ps - 1) / ps;
        mark(b);
        mark(b + (pages - 1) * ps);
        mark(b + pages * ps);
    }
    std::vector<iovec> vec;

    void run(int backend) {
        size_t want = 0;
        for (const iovec &v : vec)
            want += v.iov_len;
        errno = 0;
        ssize_t r = madvisev_via(backend, vec.data(), vec.size(), MADV_DONTNEED, 0);
        EXPECT_EQ(r, static_cast<ssize_t>(want))
            << madvisev_backend_str(backend) << ": " << strerror(errno);
        const size_t ps = page_size();
        size_t wrong = 0;
        for (char *page : marks_) {
            bool zero = page[0] == 0 && page[ps - 1] == 0;
            bool kept = page[0] == static_cast<char>(0xa5) && page[ps - 1] == 0x5a;
            bool expect_zero = covered(vec, page);
            if (expect_zero ? !zero : !kept) {
                if (wrong++ < 5)
                    ADD_FAILURE() << "page " << static_cast<void *>(page)
                                  << (expect_zero ? " kept its data" : " was zeroed");
            }
        }
        EXPECT_EQ(wrong, 0u) << "of " << marks_.size() << " marked pages";
    }

  private:
    std::vector<char *> marks_;
};

class Limits : public BackendTest {};

// A short range first, then one longer than the bytes one process_madvise
// call takes: every page of the long one is advised.
TEST_P(Limits, ShortRangeThenOneLargerThanTheByteCap) {
    const size_t ps = page_size();
    Mapping r(4 * kGiB, kReadWrite, kReserve);
    ASSERT_NE(r.get(), nullptr);
    VectorCase c;
    c.vec = {{r.get(), 100}, {r.get() + 16 * ps, 2 * kGiB + 3 * ps + 7}};
    for (const iovec &v : c.vec)
        c.mark_edges(v);
    for (size_t off : {kGiB - ps, kGiB, kGiB + ps, 2 * kGiB - ps, 2 * kGiB})
        c.mark(r.get() + 16 * ps + off);
    c.mark(r.get() + ps);
    c.run(GetParam());
}

// Ranges of odd lengths whose sum crosses the 1 GiB per-call cap several
// times, none of them a page multiple.
TEST_P(Limits, UnalignedRangesAcrossTheByteCap) {
    const size_t ps = page_size();
    Mapping r(5 * kGiB, kReadWrite, kReserve);
    ASSERT_NE(r.get(), nullptr);
    VectorCase c;
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        size_t len = 700 * (size_t{1} << 20) + 123 + static_cast<size_t>(i) * 517;
        c.vec.push_back({r.get() + off, len});
        off += (len + ps - 1) / ps * ps + 2 * ps; // a gap page after each
    }
    for (const iovec &v : c.vec)
        c.mark_edges(v);
    c.run(GetParam());
}

// More ranges than IOV_MAX, of lengths 1 .. 3 pages plus odd bytes, with
// empty ranges in between (at page-aligned addresses: an unaligned one
// would fail the whole vector, see Semantics.UnalignedEmptyRangeFailsTheWholeVector).
TEST_P(Limits, ManyUnalignedRangesAcrossIovMax) {
    const size_t ps = page_size();
    constexpr size_t kRanges = 2600;
    Mapping r(kRanges * 5 * ps, kReadWrite, kReserve);
    ASSERT_NE(r.get(), nullptr);
    VectorCase c;
    for (size_t i = 0; i < kRanges; i++) {
        if (i % 97 == 5) {
            // In the gap after this range, on a page that keeps its data.
            c.vec.push_back({r.get() + (i * 5 + 4) * ps, 0});
            c.mark(r.get() + (i * 5 + 4) * ps);
        }
        size_t len = (i % 3) * ps + (i % 7) * 131 + 1;
        c.vec.push_back({r.get() + i * 5 * ps, len});
    }
    for (const iovec &v : c.vec)
        c.mark_edges(v);
    c.run(GetParam());
}

// 1023 short unaligned ranges, then a range larger than the byte cap, then
// more short ones: the limits of count and of size meet in one vector.
TEST_P(Limits, IovMaxMeetsTheByteCap) {
    const size_t ps = page_size();
    Mapping r(3 * kGiB, kReadWrite, kReserve);
    ASSERT_NE(r.get(), nullptr);
    VectorCase c;
    size_t off = 0;
    for (size_t i = 0; i < 1023; i++, off += 2 * ps)
        c.vec.push_back({r.get() + off, 1 + i});
    c.vec.push_back({r.get() + off, kGiB + kGiB / 2 + 1});
    const size_t big = off;
    off += kGiB + kGiB / 2 + 2 * ps;
    for (size_t i = 0; i < 3; i++, off += 2 * ps)
        c.vec.push_back({r.get() + off, ps - 1});
    for (const iovec &v : c.vec)
        c.mark_edges(v);
    c.mark(r.get() + big + kGiB);
    c.run(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Backends, Limits, MADVISEV_ALL_BACKENDS, backend_param_name);

// --- signals -----------------------------------------------------------------

std::atomic<int> g_alarms{0};
void on_alarm(int) {
    g_alarms.fetch_add(1, std::memory_order_relaxed);
}

class Signals : public BackendTest {};

// A signal arriving during a call must not let it return while any of its
// requests still runs: memory written right after the call returns keeps
// what was written.  An interval timer fires every 50 us, its handler
// installed without SA_RESTART.
TEST_P(Signals, CallReturnsOnlyAfterEveryRequestFinished) {
    const size_t ps = page_size();
#if defined(__SANITIZE_THREAD__)
    constexpr size_t kRanges = 64, kPagesPerRange = 2; // every byte check is instrumented
#else
    constexpr size_t kRanges = 64, kPagesPerRange = 16;
#endif
    constexpr int kCalls = 200;
    Mapping m(kRanges * kPagesPerRange * ps);
    ASSERT_NE(m.get(), nullptr);
    std::vector<iovec> vec(kRanges);
    for (size_t i = 0; i < kRanges; i++)
        vec[i] = {m.page(i * kPagesPerRange), kPagesPerRange * ps};

    struct sigaction sa = {}, old = {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
    itimerval tick{{0, 50}, {0, 50}}, stop{};
    g_alarms = 0;
    ASSERT_EQ(setitimer(ITIMER_REAL, &tick, nullptr), 0);
    int short_calls = 0, zapped_after_return = 0;
    int first_errno = 0;
    for (int i = 0; i < kCalls; i++) {
        fill(m.get(), m.size(), 0x11);
        ssize_t r = call(vec.data(), vec.size(), MADV_DONTNEED);
        if (r != static_cast<ssize_t>(m.size())) {
            short_calls++;
            if (!first_errno)
                first_errno = r < 0 ? errno : -1;
        }
        fill(m.get(), m.size(), 0x77);
        // Give a request that outlived the call time to land.
        for (int spin = 0; spin < 20000; spin++)
            asm volatile("" ::: "memory");
        if (!all_equal(m.get(), m.size(), 0x77))
            zapped_after_return++;
    }
    setitimer(ITIMER_REAL, &stop, nullptr);
    sigaction(SIGALRM, &old, nullptr);
    EXPECT_GT(g_alarms.load(), kCalls) << "the timer hardly fired: the test proved nothing";
    EXPECT_EQ(short_calls, 0) << "of " << kCalls << " calls; first errno/short: "
                              << (first_errno > 0 ? strerror(first_errno) : "short count");
    EXPECT_EQ(zapped_after_return, 0)
        << "of " << kCalls << " calls: data written after the call returned was zapped";
}

INSTANTIATE_TEST_SUITE_P(Backends, Signals, MADVISEV_ALL_BACKENDS, backend_param_name);

// --- byte sums past SSIZE_MAX -------------------------------------------------

class Overflow : public BackendTest {};

// Overlapping ranges over one huge PROT_NONE reservation whose lengths sum
// past SSIZE_MAX: the call advises the ranges that fit and returns their
// sum; the caller calls again for the rest.  Each range is one system
// call at most: a huge reservation is never cut into thousands.
TEST_P(Overflow, SumPastSsizeMaxReturnsThePrefixThatFits) {
    size_t range = 0;
    std::unique_ptr<Mapping> r;
    for (int shift : {45, 44, 43}) { // 32, 16, 8 TiB: what the address space allows
        r = std::make_unique<Mapping>(size_t{1} << shift, PROT_NONE, kReserve);
        if (r->get() != nullptr) {
            range = size_t{1} << shift;
            break;
        }
    }
    if (range == 0) // ThreadSanitizer's shadow takes most of the address space
        GTEST_SKIP() << "could not reserve 8 TiB of address space";
    const size_t fit = static_cast<size_t>(SSIZE_MAX) / range; // ranges whose sum fits
    std::vector<iovec> vec(fit + 3, iovec{r->get(), range});
    madvisev_internal::syscalls_made = 0;
    errno = 0;
    ssize_t got = call(vec.data(), vec.size(), MADV_DONTNEED);
    unsigned long calls = madvisev_internal::syscalls_made;
    EXPECT_EQ(got, static_cast<ssize_t>(fit * range)) << strerror(errno);
    EXPECT_LE(calls, fit + 1) << "system calls for " << fit << " ranges";
    // The rest, called again, fits.
    got = call(vec.data() + fit, 3, MADV_DONTNEED);
    EXPECT_EQ(got, static_cast<ssize_t>(3 * range)) << strerror(errno);
}

// One reservation far larger than any per-call cap costs one system call.
TEST_P(Overflow, HugeReservationIsOneCall) {
    const size_t len = size_t{1} << 36; // 64 GiB: 64 process_madvise calls if cut
    Mapping r(len, PROT_NONE, kReserve);
    ASSERT_NE(r.get(), nullptr);
    iovec v{r.get(), len};
    madvisev_internal::syscalls_made = 0;
    EXPECT_EQ(call(&v, 1, MADV_DONTNEED), static_cast<ssize_t>(len)) << strerror(errno);
    EXPECT_LE(madvisev_internal::syscalls_made, 2ul);
}

INSTANTIATE_TEST_SUITE_P(Backends, Overflow, MADVISEV_ALL_BACKENDS, backend_param_name);

// --- descriptors after fork() -------------------------------------------------

// The fds of this process that are pidfds.
std::vector<int> pidfds() {
    std::vector<int> out;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return out;
    while (dirent *e = readdir(d)) {
        char link[256];
        std::string path = std::string("/proc/self/fd/") + e->d_name;
        ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = 0;
            if (strstr(link, "pidfd"))
                out.push_back(atoi(e->d_name));
        }
    }
    closedir(d);
    return out;
}

// On a kernel without PIDFD_SELF the process_madvise backend advises
// through a pidfd.  It must never keep one the application can see: a
// forked child that reuses the number for a file of its own keeps that
// file, whatever the library does in the child.
TEST(ProcessMadvisePidfd, NoDescriptorOutlivesACall) {
    const char *why = nullptr;
    if (madvisev_backend_probe(MADVISEV_BACKEND_PROCESS_MADVISE, &why) != 1)
        GTEST_SKIP() << "process_madvise unavailable: " << why;
    const size_t ps = page_size();
    // Restored afterwards: before Linux 6.15 the probe chose a pidfd per
    // call for good, there being no PIDFD_SELF.
    const bool was_per_call = madvisev_internal::process_madvise_force_pidfd(true);
    Mapping m(ps);
    fill(m.get(), ps, 'P');
    iovec v{m.get(), ps};
    std::vector<int> before = pidfds();
    ASSERT_EQ(madvisev_via(MADVISEV_BACKEND_PROCESS_MADVISE, &v, 1, MADV_DONTNEED, 0),
              static_cast<ssize_t>(ps))
        << strerror(errno);
    std::vector<int> after = pidfds();
    EXPECT_EQ(after.size(), before.size()) << "a pidfd was left open by the call";
    int target = after.empty() ? 100 : after.back();
    fill(m.get(), ps, 'P');

    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The application closes what it does not know and reuses the number.
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, target) != target)
            _exit(3);
        fill(m.get(), ps, 'C');
        ssize_t r = madvisev_via(MADVISEV_BACKEND_PROCESS_MADVISE, &v, 1, MADV_DONTNEED, 0);
        char link[64] = {};
        std::string path = "/proc/self/fd/" + std::to_string(target);
        bool kept =
            readlink(path.c_str(), link, sizeof(link) - 1) > 0 && strcmp(link, "/dev/null") == 0;
        if (!kept)
            _exit(2);
        _exit(r == static_cast<ssize_t>(ps) && all_equal(m.get(), ps, 0) ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    madvisev_internal::process_madvise_force_pidfd(was_per_call);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_NE(WEXITSTATUS(status), 2) << "the library closed the child's fd " << target;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_TRUE(all_equal(m.get(), ps, 'P')) << "the child's call reached the parent";
}

} // namespace
