// SPDX-License-Identifier: MIT
// MADVISEV_ZERO: every byte of every range reads zero after the call, on
// both paths: the kernel's in-place clear (where
// /sys/kernel/mm/madvisev/version says 2) and the library's emulation,
// forced here on every kernel through the test seam.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "internal.h"
#include "madvisev.hpp"
#include "page_scan.h"
#include "sanitizer.h"
#include "test_util.h"

using namespace mvtest;

namespace {

// The emulation reads the mappings through PROCMAP_QUERY where the kernel
// has it (6.11+), else the text of /proc/self/maps: maps_text forces the
// latter here.
enum class Path { emulated, emulated_maps_text, native };

// /proc/self/pagemap's entry for the page at @p (bit 63 present, bit 62
// swapped), 0 where it cannot be read.
uint64_t pagemap_entry(const void *p) {
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t e = 0;
    off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / page_size() * sizeof(e));
    if (fd < 0 || pread(fd, &e, sizeof(e), at) != static_cast<ssize_t>(sizeof(e)))
        e = 0;
    if (fd >= 0)
        close(fd);
    return e;
}
bool present(const void *p) {
    return pagemap_entry(p) >> 63 & 1;
}
bool swapped(const void *p) {
    return pagemap_entry(p) >> 62 & 1;
}

long kernel_version() {
    std::ifstream f("/sys/kernel/mm/madvisev/version");
    long v = 0;
    return f >> v ? v : 0;
}

size_t swap_total_kb() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    size_t v = 0;
    while (f >> key >> v) {
        if (key == "SwapTotal:")
            return v;
        f.ignore(64, '\n');
    }
    return 0;
}

// The emulation (and its /proc/self/maps text path) forced for one test,
// both switches put back as they were afterwards.
class ForcedEmulation {
  public:
    void force(Path p) {
        was_forced_ = madvisev_internal::zero_force_emulation(true);
        was_text_ = madvisev_internal::maps_force_text(p == Path::emulated_maps_text);
        forced_ = true;
    }
    void restore() {
        if (forced_) {
            madvisev_internal::zero_force_emulation(was_forced_);
            madvisev_internal::maps_force_text(was_text_);
            forced_ = false;
        }
    }

  private:
    bool forced_ = false, was_forced_ = false, was_text_ = false;
};

// Each test runs on one path: the emulation forced, or the kernel's
// (skipped where the kernel has not announced MADVISEV_ZERO).
class Zero : public ::testing::TestWithParam<Path> {
  protected:
    void SetUp() override {
        if (GetParam() == Path::native) {
            if (madvisev_zero_native() != 1)
                GTEST_SKIP() << "the kernel does not clear in place "
                             << "(/sys/kernel/mm/madvisev/version " << kernel_version()
                             << ", not 2 or more)";
        } else {
            emulation_.force(GetParam());
            ASSERT_EQ(madvisev_zero_native(), 0);
        }
    }
    void TearDown() override { emulation_.restore(); }

  private:
    ForcedEmulation emulation_;
};

const char *path_str(Path p) {
    return p == Path::native ? "native" : p == Path::emulated ? "emulated" : "emulated_maps_text";
}
std::string path_name(const ::testing::TestParamInfo<Path> &info) {
    return path_str(info.param);
}
void PrintTo(Path p, std::ostream *os) {
    *os << path_str(p);
}

// 64 ranges of 4 pages, with a page between them that is not in the
// vector: per range a dirty page, a page written with zeros, a page only
// read (the shared zero page) and one never touched.
TEST_P(Zero, ManyRangesOfEveryKindOfPageReadZero) {
    const size_t ps = page_size();
    constexpr size_t kRanges = 64, kPer = 4;
    Mapping m(kRanges * (kPer + 1) * ps);
    ASSERT_NE(m.get(), nullptr);
    std::vector<iovec> iov;
    volatile char sink = 0;
    for (size_t r = 0; r < kRanges; r++) {
        char *base = m.page(r * (kPer + 1));
        fill(base, ps, 0xa5);
        fill(base + ps, ps, 0);
        sink = sink + base[2 * ps];
        fill(base + kPer * ps, ps, 0x3c); // the gap: not in the vector
        iov.push_back({base, kPer * ps});
    }
    (void)sink;
    ASSERT_EQ(madvisev(iov.data(), iov.size(), MADVISEV_ZERO, 0),
              static_cast<ssize_t>(kRanges * kPer * ps));
    for (size_t r = 0; r < kRanges; r++) {
        char *base = m.page(r * (kPer + 1));
        EXPECT_TRUE(all_equal(base, kPer * ps, 0)) << "range " << r << " still holds data";
        EXPECT_TRUE(all_equal(base + kPer * ps, ps, 0x3c)) << "the page after range " << r;
    }
}

// The pages a range held stay mapped: nothing to fault in again.  (The
// emulation keeps them too: memset() writes where they are.)
TEST_P(Zero, ExclusivePagesStayResident) {
    const size_t ps = page_size();
    constexpr size_t kPages = 32;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), kPages * ps, 0x77);
    for (size_t i = 0; i < kPages; i++)
        ASSERT_TRUE(present(m.page(i)));
    iovec v{m.get(), kPages * ps};
    ASSERT_EQ(madvisev(&v, 1, MADVISEV_ZERO, 0), static_cast<ssize_t>(kPages * ps));
    size_t gone = 0;
    for (size_t i = 0; i < kPages; i++)
        gone += !present(m.page(i));
    EXPECT_EQ(gone, 0u) << "pages were unmapped, not cleared in place";
    EXPECT_TRUE(all_equal(m.get(), kPages * ps, 0));
}

// After fork() the pages are shared copy-on-write: the parent's zeroing
// must leave the child's copy alone, and the parent must read zero.
TEST_P(Zero, ForkedChildKeepsItsData) {
    const size_t ps = page_size();
    constexpr size_t kPages = 8;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), kPages * ps, 0x5a);
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        bool ok = read(go[0], &c, 1) == 1 && all_equal(m.get(), kPages * ps, 0x5a);
        _exit(ok ? 0 : 1);
    }
    close(go[0]);
    iovec v{m.get(), kPages * ps};
    ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
    EXPECT_EQ(write(go[1], "x", 1), 1);
    close(go[1]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_EQ(r, static_cast<ssize_t>(kPages * ps));
    EXPECT_TRUE(all_equal(m.get(), kPages * ps, 0)) << "the parent still reads its data";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "the child lost its copy of the data";
}

// The child zeroes; the parent keeps its data.
TEST_P(Zero, ParentKeepsItsDataWhenTheChildZeroes) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 4 * ps, 0x42);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        iovec v{m.get(), 4 * ps};
        bool ok = madvisev(&v, 1, MADVISEV_ZERO, 0) == static_cast<ssize_t>(4 * ps) &&
                  all_equal(m.get(), 4 * ps, 0);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child did not read zero";
    EXPECT_TRUE(all_equal(m.get(), 4 * ps, 0x42)) << "the child's call reached the parent";
}

// Bad vectors are refused before anything is touched, as for any advice.
TEST_P(Zero, BadInputIsRefusedAndNothingTouched) {
    const size_t ps = page_size();
    Mapping m(4 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 4 * ps, 0x99);
    iovec unaligned[] = {{m.get(), ps}, {m.page(2) + 8, ps}};
    errno = 0;
    EXPECT_EQ(madvisev(unaligned, 2, MADVISEV_ZERO, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    iovec wrap[] = {{m.get(), ps}, {m.page(1), SIZE_MAX - ps}};
    errno = 0;
    EXPECT_EQ(madvisev(wrap, 2, MADVISEV_ZERO, 0), -1);
    EXPECT_EQ(errno, EINVAL);
    iovec one{m.get(), ps};
    errno = 0;
    EXPECT_EQ(madvisev(&one, 1, MADVISEV_ZERO, 1), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(madvisev(nullptr, 1, MADVISEV_ZERO, 0), -1);
    EXPECT_EQ(errno, EFAULT);
    EXPECT_TRUE(all_equal(m.get(), 4 * ps, 0x99)) << "a refused call changed memory";
    EXPECT_EQ(madvisev(nullptr, 0, MADVISEV_ZERO, 0), 0);
    iovec empty{m.get(), 0};
    EXPECT_EQ(madvisev(&empty, 1, MADVISEV_ZERO, 0), 0);
}

// Pages pushed out to swap read zero after the call, and stay out: no swap
// read-in is needed to zero them.  Needs swap (the test guests make a zram
// device); without it the test skips (allowed on the host only).
TEST_P(Zero, SwappedOutPagesReadZero) {
    if (swap_total_kb() == 0)
        GTEST_SKIP() << "no swap on this machine";
    cpu_set_t was, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof(was), &was), 0);
    // MADV_PAGEOUT drains only this CPU's LRU-add batch: stay on one CPU.
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    const size_t ps = page_size();
    constexpr size_t kPages = 16;
    Mapping m(2 * kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 2 * kPages * ps, 0xe1);
    std::vector<iovec> iov;
    bool all = false;
    for (int round = 0; round < 20 && !all; round++) {
        for (size_t i = 0; i < kPages; i++)
            madvise(m.page(2 * i), ps, 21 /* MADV_PAGEOUT */);
        all = true;
        for (size_t i = 0; i < kPages; i++)
            all = all && swapped(m.page(2 * i));
        if (!all)
            usleep(10000);
    }
    sched_setaffinity(0, sizeof(was), &was);
    ASSERT_TRUE(all) << "the pages did not go out to swap";
    // Every other page swapped, the ones between present: one range.
    iovec v{m.get(), 2 * kPages * ps};
    ASSERT_EQ(madvisev(&v, 1, MADVISEV_ZERO, 0), static_cast<ssize_t>(2 * kPages * ps));
    size_t still = 0;
    for (size_t i = 0; i < kPages; i++)
        still += swapped(m.page(2 * i));
    EXPECT_EQ(still, 0u) << "swap entries were left behind";
    EXPECT_TRUE(all_equal(m.get(), 2 * kPages * ps, 0)) << "data came back from swap";
}

// C++: madv::zero() and a batch of MADVISEV_ZERO.
TEST_P(Zero, CxxBatchZeroes) {
    const size_t ps = page_size();
    Mapping m(8 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 8 * ps, 0x21);
    {
        madv::batch b(MADVISEV_ZERO, 2);
        for (size_t i = 0; i < 4; i++)
            ASSERT_TRUE(b.add(m.page(2 * i), ps));
        ASSERT_TRUE(b.flush());
    }
    for (size_t i = 0; i < 8; i++)
        EXPECT_TRUE(all_equal(m.page(i), ps, i % 2 ? 0x21 : 0)) << "page " << i;
    iovec v{m.get(), 8 * ps};
    madv::flush_result r = madv::zero({&v, 1});
    EXPECT_TRUE(r);
    EXPECT_EQ(r.bytes, 8 * ps);
    EXPECT_TRUE(all_equal(m.get(), 8 * ps, 0));
    EXPECT_EQ(madv::zero_native(), madvisev_zero_native() == 1);
}

// Bytes of [p, p + len) that do not read @v.
size_t changed(const void *p, size_t len, unsigned char v) {
    const unsigned char *b = static_cast<const unsigned char *>(p);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += b[i] != v;
    return n;
}

// mlock() through the raw system call (AddressSanitizer makes mlock() a
// no-op), raising RLIMIT_MEMLOCK for it where the limit is in the way
// (the hard limit too as root); @lim receives the limit to put back.
// Empty on success, else why not.
std::string lock(void *p, size_t len, rlimit &lim) {
    getrlimit(RLIMIT_MEMLOCK, &lim);
    if (syscall(SYS_mlock, p, len) == 0)
        return {};
    int err = errno;
    if ((err == ENOMEM || err == EAGAIN || err == EPERM) && lim.rlim_cur != RLIM_INFINITY) {
        rlimit more = lim;
        more.rlim_cur += len;
        if (more.rlim_max != RLIM_INFINITY && more.rlim_max < more.rlim_cur) {
            if (geteuid() == 0)
                more.rlim_max = more.rlim_cur;
            else
                more.rlim_cur = more.rlim_max;
        }
        if (setrlimit(RLIMIT_MEMLOCK, &more) == 0 && syscall(SYS_mlock, p, len) == 0)
            return {};
        err = errno;
    }
    std::string why = std::string("mlock: ") + strerror(err) + " (RLIMIT_MEMLOCK " +
                      std::to_string(lim.rlim_cur) + ")";
    setrlimit(RLIMIT_MEMLOCK, &lim);
    return why;
}

// Locked (mlock()ed) private anonymous memory is zeroed like any other:
// in place where the process may write it, discarded where it may not
// (MADV_DONTNEED refuses locked memory: MADV_DONTNEED_LOCKED's discard),
// and discarded whole where no page scan can be had.
TEST_P(Zero, LockedMemoryIsZeroed) {
    const size_t ps = page_size();
    constexpr size_t kPages = 8;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), kPages * ps, 0x4c);
    rlimit was{};
    if (std::string why = lock(m.get(), kPages * ps, was); !why.empty())
        GTEST_SKIP() << why;
    iovec v{m.get(), kPages * ps};
    auto zero = [&](const char *what) {
        errno = 0;
        ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
        int err = errno;
        EXPECT_EQ(r, static_cast<ssize_t>(kPages * ps))
            << what << ": returned " << r << ", errno " << err << " (" << strerror(err) << ")";
    };
    zero("writable");
    size_t gone = 0;
    for (size_t i = 0; i < kPages; i++)
        gone += !present(m.page(i));
    EXPECT_EQ(gone, 0u) << "writable: locked pages were discarded, not cleared in place";
    EXPECT_EQ(changed(m.get(), kPages * ps, 0), 0u) << "writable: bytes left with data";

    fill(m.get(), kPages * ps, 0x4d);
    ASSERT_EQ(mprotect(m.page(kPages / 2), kPages / 2 * ps, PROT_READ), 0);
    zero("half PROT_READ");
    ASSERT_EQ(mprotect(m.get(), kPages * ps, PROT_READ | PROT_WRITE), 0);
    EXPECT_EQ(changed(m.get(), kPages * ps, 0), 0u) << "half PROT_READ: bytes left with data";

    fill(m.get(), kPages * ps, 0x4e);
    bool scan_was = madvisev_internal::scan_force_unsupported(true);
    zero("without a page scan");
    madvisev_internal::scan_force_unsupported(scan_was);
    EXPECT_EQ(changed(m.get(), kPages * ps, 0), 0u) << "without a page scan: bytes left with data";

    syscall(SYS_munlock, m.get(), kPages * ps);
    setrlimit(RLIMIT_MEMLOCK, &was);
}

// Private anonymous MAP_HUGETLB memory is zeroed, whole huge pages: its
// VMA has a file behind it (the kernel's own unlinked hugetlbfs one),
// which must not count as file-backed.  A private mapping of a hugetlb
// memfd is file-backed (a discarded page reads the memfd again): refused,
// by the emulation at least.  Needs a reserved 2 MiB page.
// One more default-size hugetlb page in the pool for a test, where the
// process may grow it (root), given back afterwards.
class ExtraHugePage {
  public:
    ExtraHugePage() : saved_(read()) {
        if (saved_ >= 0)
            grown_ = write(saved_ + 1);
    }
    ~ExtraHugePage() {
        if (grown_)
            write(saved_);
    }
    ExtraHugePage(const ExtraHugePage &) = delete;
    ExtraHugePage &operator=(const ExtraHugePage &) = delete;

  private:
    static constexpr const char *kPath = "/proc/sys/vm/nr_hugepages";
    static long read() {
        FILE *f = fopen(kPath, "re");
        long n = -1;
        if (f) {
            if (fscanf(f, "%ld", &n) != 1)
                n = -1;
            fclose(f);
        }
        return n;
    }
    static bool write(long n) {
        FILE *f = fopen(kPath, "we");
        if (!f)
            return false;
        bool ok = fprintf(f, "%ld\n", n) > 0;
        return fclose(f) == 0 && ok;
    }
    long saved_;
    bool grown_ = false;
};

TEST_P(Zero, PrivateHugetlbIsZeroed) {
    constexpr size_t kHuge = size_t{2} << 20;
    ExtraHugePage reserve;
    void *p = mmap(nullptr, kHuge, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p == MAP_FAILED)
        GTEST_SKIP() << "no 2 MiB hugetlb page to be had: " << strerror(errno);
    char *c = static_cast<char *>(p);
    fill(c, kHuge, 0x68);
    iovec v{c, kHuge};
    errno = 0;
    ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
    int err = errno;
    EXPECT_EQ(r, static_cast<ssize_t>(kHuge))
        << "returned " << r << ", errno " << err << " (" << strerror(err) << ")";
    EXPECT_EQ(changed(c, kHuge, 0), 0u) << "bytes left with data";
    munmap(p, kHuge);
    if (GetParam() == Path::native)
        return;
    int fd = memfd_create("madvisev-zero-test", MFD_CLOEXEC | MFD_HUGETLB);
    if (fd < 0 || ftruncate(fd, kHuge) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    p = mmap(nullptr, kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return; // no second huge page
    c = static_cast<char *>(p);
    fill(c, kHuge, 0x69);
    v = {c, kHuge};
    errno = 0;
    r = madvisev(&v, 1, MADVISEV_ZERO, 0);
    err = errno;
    EXPECT_EQ(r, -1) << "hugetlb memfd, MAP_PRIVATE: returned " << r;
    EXPECT_EQ(err, EINVAL) << strerror(err);
    EXPECT_EQ(changed(c, kHuge, 0x69), 0u) << "hugetlb memfd, MAP_PRIVATE: bytes changed";
    munmap(p, kHuge);
}

INSTANTIATE_TEST_SUITE_P(Paths, Zero,
                         ::testing::Values(Path::emulated, Path::emulated_maps_text, Path::native),
                         path_name);

// Mappings where discarding pages does not make them read zero: they
// live on in the shared object, or a private file mapping reads the file
// again.  MADVISEV_ZERO must fail there, EINVAL.
enum class Refused { memfd_shared, shared_anonymous, private_file };

const char *refused_name(Refused k) {
    switch (k) {
    case Refused::memfd_shared:
        return "memfd_shared";
    case Refused::shared_anonymous:
        return "shared_anonymous";
    case Refused::private_file:
        return "private_file";
    }
    return "?";
}
void PrintTo(Refused k, std::ostream *os) {
    *os << refused_name(k);
}

// A regular file of our own, unlinked: O_TMPFILE where the file system
// has it.
int temp_file() {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    std::string path = std::string(dir) + "/madvisev-zero-XXXXXX";
    fd = mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0)
        unlink(path.c_str());
    return fd;
}

// One such mapping, @pages long, whose object (file or memfd) holds
// kFile: pages 0 and 1 are written through the mapping, page 2 only
// read, the rest untouched.  expect(i): what page i must go on reading.
class RefusedMapping {
  public:
    static constexpr unsigned char kFile = 0x46, kWritten = 0x72;

    RefusedMapping(Refused kind, size_t pages) : kind_(kind), len_(pages * page_size()) {
        int fd = -1, flags = MAP_SHARED;
        if (kind == Refused::memfd_shared)
            fd = memfd_create("madvisev-zero-test", MFD_CLOEXEC);
        else if (kind == Refused::private_file)
            fd = temp_file(), flags = MAP_PRIVATE;
        else
            flags = MAP_SHARED | MAP_ANONYMOUS;
        if (kind != Refused::shared_anonymous) {
            std::string data(len_, static_cast<char>(kFile));
            if (fd < 0 || pwrite(fd, data.data(), len_, 0) != static_cast<ssize_t>(len_)) {
                why_ = std::string("no file: ") + strerror(errno);
                if (fd >= 0)
                    close(fd);
                return;
            }
        }
        void *p = mmap(nullptr, len_, PROT_READ | PROT_WRITE, flags, fd, 0);
        if (fd >= 0)
            close(fd);
        if (p == MAP_FAILED) {
            why_ = std::string("mmap: ") + strerror(errno);
            return;
        }
        p_ = static_cast<char *>(p);
        fill(p_, 2 * page_size(), kWritten);
        volatile char sink = p_[2 * page_size()];
        (void)sink;
    }
    ~RefusedMapping() {
        if (p_)
            munmap(p_, len_);
    }
    RefusedMapping(const RefusedMapping &) = delete;
    RefusedMapping &operator=(const RefusedMapping &) = delete;

    char *get() const { return p_; }
    const std::string &why() const { return why_; }
    unsigned char expect(size_t page) const {
        return page < 2 ? kWritten : kind_ == Refused::shared_anonymous ? 0 : kFile;
    }

  private:
    Refused kind_;
    size_t len_;
    char *p_ = nullptr;
    std::string why_;
};

// (path, mapping, whether a private anonymous range comes first)
using RefusedParam = std::tuple<Path, Refused, bool>;

class ZeroRefused : public ::testing::TestWithParam<RefusedParam> {
  protected:
    void SetUp() override {
        if (std::get<0>(GetParam()) == Path::native) {
            if (madvisev_zero_native() != 1)
                GTEST_SKIP() << "the kernel does not clear in place";
        } else {
            emulation_.force(std::get<0>(GetParam()));
        }
    }
    void TearDown() override { emulation_.restore(); }

  private:
    ForcedEmulation emulation_;
};

// Alone, or after a private anonymous range: -1/EINVAL, and every byte of
// every range keeps its data.  The emulation checks the whole vector's
// mappings before it clears anything; the kernel checks range by range,
// so it may instead zero the anonymous range and return its length (a
// short count), never touching the refused one.
TEST_P(ZeroRefused, FailsWithEinvalAndKeepsEveryByte) {
    const auto [path, kind, after_anonymous] = GetParam();
    const size_t ps = page_size();
    constexpr size_t kPages = 4;
    constexpr unsigned char kAnon = 0x61;
    Mapping anon(kPages * ps);
    ASSERT_NE(anon.get(), nullptr);
    fill(anon.get(), kPages * ps, kAnon);
    RefusedMapping m(kind, kPages);
    ASSERT_NE(m.get(), nullptr) << m.why();
    std::vector<iovec> iov;
    if (after_anonymous)
        iov.push_back({anon.get(), kPages * ps});
    iov.push_back({m.get(), kPages * ps});
    errno = 0;
    ssize_t r = madvisev(iov.data(), iov.size(), MADVISEV_ZERO, 0);
    int err = errno;
    if (path == Path::native && after_anonymous && r == static_cast<ssize_t>(kPages * ps)) {
        EXPECT_EQ(changed(anon.get(), kPages * ps, 0), 0u)
            << "the anonymous range was counted but holds data";
    } else {
        EXPECT_EQ(r, -1) << "returned " << r << ", errno " << err << " (" << strerror(err) << ")";
        EXPECT_EQ(err, EINVAL) << strerror(err);
        EXPECT_EQ(changed(anon.get(), kPages * ps, kAnon), 0u)
            << "bytes of the anonymous range changed";
    }
    for (size_t i = 0; i < kPages; i++)
        EXPECT_EQ(changed(m.get() + i * ps, ps, m.expect(i)), 0u)
            << "bytes of page " << i << " of the " << refused_name(kind) << " mapping changed";
}

std::string refused_param_name(const ::testing::TestParamInfo<RefusedParam> &info) {
    const auto &[path, kind, after_anonymous] = info.param;
    return std::string(path_str(path)) + "_" + refused_name(kind) +
           (after_anonymous ? "_after_anonymous" : "_alone");
}

INSTANTIATE_TEST_SUITE_P(
    Mappings, ZeroRefused,
    ::testing::Combine(::testing::Values(Path::emulated, Path::emulated_maps_text, Path::native),
                       ::testing::Values(Refused::memfd_shared, Refused::shared_anonymous,
                                         Refused::private_file),
                       ::testing::Bool()),
    refused_param_name);

// The emulation through every backend: present pages are zeroed with no
// system call at all; swapped ones would take one MADV_DONTNEED call.
class ZeroEmulatedVia : public BackendTest {
  protected:
    void SetUp() override {
        BackendTest::SetUp();
        was_ = madvisev_internal::zero_force_emulation(true);
    }
    void TearDown() override { madvisev_internal::zero_force_emulation(was_); }
    bool was_ = false;
};

TEST_P(ZeroEmulatedVia, PresentPagesNeedNoSystemCall) {
    const size_t ps = page_size();
    Mapping m(16 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 16 * ps, 0xcd);
    iovec iov[] = {{m.get(), 4 * ps}, {m.page(8), 8 * ps}};
    madvisev_internal::syscalls_made = 0;
    ASSERT_EQ(call(iov, 2, MADVISEV_ZERO), static_cast<ssize_t>(12 * ps));
    EXPECT_EQ(madvisev_internal::syscalls_made, 0ul);
    EXPECT_TRUE(all_equal(m.get(), 4 * ps, 0));
    EXPECT_TRUE(all_equal(m.page(4), 4 * ps, 0xcd));
    EXPECT_TRUE(all_equal(m.page(8), 8 * ps, 0));
}

// Without PAGEMAP_SCAN (before Linux 6.7) the emulation drops the whole
// vector with MADV_DONTNEED: one vectored call, through the backend.
TEST_P(ZeroEmulatedVia, WithoutPagemapScanTheWholeVectorIsDroppedInOneCall) {
    const size_t ps = page_size();
    constexpr size_t kRanges = 16;
    Mapping m(2 * kRanges * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 2 * kRanges * ps, 0xb7);
    std::vector<iovec> iov;
    for (size_t i = 0; i < kRanges; i++)
        iov.push_back({m.page(2 * i), ps});
    bool was = madvisev_internal::scan_force_unsupported(true);
    madvisev_internal::syscalls_made = 0;
    ssize_t r = call(iov.data(), iov.size(), MADVISEV_ZERO);
    unsigned long calls = madvisev_internal::syscalls_made;
    madvisev_internal::scan_force_unsupported(was);
    ASSERT_EQ(r, static_cast<ssize_t>(kRanges * ps));
    for (size_t i = 0; i < kRanges; i++) {
        EXPECT_TRUE(all_equal(m.page(2 * i), ps, 0)) << "range " << i << " still holds data";
        EXPECT_TRUE(all_equal(m.page(2 * i + 1), ps, 0xb7)) << "the page after range " << i;
    }
    // One batching call; one madvise(2) per range for sequential (and
    // io_uring submits once, with a request per range).
    if (GetParam() == MADVISEV_BACKEND_SEQUENTIAL)
        EXPECT_EQ(calls, kRanges);
    else
        EXPECT_EQ(calls, 1ul);
}

INSTANTIATE_TEST_SUITE_P(Backends, ZeroEmulatedVia, MADVISEV_ALL_BACKENDS, backend_param_name);

// The kernel reports a hole; the emulation does not look for one
// (documented): the kernel's path only.
TEST(ZeroNativeOnly, ReportsUnmappedRanges) {
    if (madvisev_zero_native() != 1)
        GTEST_SKIP() << "the kernel does not clear in place, and the emulation does not check "
                        "for unmapped ranges (madvisev.3)";
    const size_t ps = page_size();
    Mapping m(4 * ps);
    ASSERT_NE(m.get(), nullptr);
    ASSERT_EQ(munmap(m.page(3), ps), 0);
    iovec hole{m.page(2), 2 * ps};
    errno = 0;
    EXPECT_EQ(madvisev(&hole, 1, MADVISEV_ZERO, 0), -1);
    EXPECT_EQ(errno, ENOMEM);
}

// The pool resets slots from thread-exit destructors: MADVISEV_ZERO must
// work there, its emulation included, after the thread has used it (no
// thread-local state of the library's may be gone by then).  ASan saw a
// use after free here.
struct ZeroAtThreadExit {
    char *p = nullptr;
    bool *ok = nullptr;
    ~ZeroAtThreadExit() {
        iovec v{p, page_size()};
        *ok = madvisev(&v, 1, MADVISEV_ZERO, 0) == static_cast<ssize_t>(page_size()) &&
              all_equal(p, page_size(), 0);
    }
};
thread_local ZeroAtThreadExit t_zero_at_exit;

TEST(ZeroEmulated, WorksInThreadExitDestructors) {
    bool was = madvisev_internal::zero_force_emulation(true);
    Mapping m(2 * page_size());
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 2 * page_size(), 0x6b);
    bool ok = false;
    std::thread([&] {
        t_zero_at_exit.p = m.get(); // constructed first, destroyed last
        t_zero_at_exit.ok = &ok;
        iovec v{m.page(1), page_size()};
        EXPECT_EQ(madvisev(&v, 1, MADVISEV_ZERO, 0), static_cast<ssize_t>(page_size()));
    }).join();
    madvisev_internal::zero_force_emulation(was);
    EXPECT_TRUE(ok);
    EXPECT_TRUE(all_equal(m.get(), 2 * page_size(), 0));
}

// madvisev_zero_native() is the kernel's announcement, unless forced off.
TEST(ZeroNative, FollowsTheKernelsAnnouncementAndTheSeam) {
    bool was = madvisev_internal::zero_force_emulation(false);
    int expect = kernel_version() >= 2 ? 1 : 0;
    if (getenv("MADVISEV_ZERO_EMULATE") && std::string(getenv("MADVISEV_ZERO_EMULATE")) == "1")
        expect = 0;
    errno = 12345;
    EXPECT_EQ(madvisev_zero_native(), expect);
    EXPECT_EQ(errno, 12345);
    madvisev_internal::zero_force_emulation(true);
    EXPECT_EQ(madvisev_zero_native(), 0);
    madvisev_internal::zero_force_emulation(was);
}

} // namespace

// Before Linux 6.7 the scan behind the emulation and the pool's reset
// reads /proc/self/pagemap's entries instead of asking PAGEMAP_SCAN.
// Both must name exactly the pages that can hold data: written ones (and
// one written, then discarded, is not), not untouched ones, and not those
// that only read the shared zero page where frame numbers are visible
// (root); where they are hidden a zero page counts as data.  600 pages
// cross the read path's 512-entry blocks.
TEST(PageScan, PagemapReadNamesTheSamePagesAsPagemapScan) {
    using madvisev_internal::PageRun;
    using madvisev_internal::ScanStatus;
    const size_t ps = page_size();
    constexpr size_t kPages = 600;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    ASSERT_EQ(madvise(m.get(), kPages * ps, MADV_NOHUGEPAGE), 0); // one entry a page
    // Page i: 0, 1, 5 written; 2, 6 read (the zero page); 3 untouched;
    // 4 written, then discarded.
    for (size_t i = 0; i < kPages; i++) {
        volatile char *p = m.page(i);
        switch (i % 7) {
        case 0:
        case 1:
        case 5:
            *p = 1;
            break;
        case 2:
        case 6:
            (void)*p;
            break;
        case 4:
            *p = 1;
            ASSERT_EQ(madvise(m.page(i), ps, MADV_DONTNEED), 0);
            break;
        default:
            break;
        }
    }
    const bool frames_visible = (pagemap_entry(m.page(2)) & ((1ULL << 55) - 1)) != 0;
    std::vector<bool> want(kPages);
    for (size_t i = 0; i < kPages; i++) {
        const size_t k = i % 7;
        want[i] = k == 0 || k == 1 || k == 5 || (!frames_visible && (k == 2 || k == 6));
    }
    auto pages_of = [&](const std::vector<PageRun> &runs) {
        std::vector<bool> got(kPages);
        for (const PageRun &r : runs) {
            EXPECT_FALSE(r.swapped);
            EXPECT_FALSE(r.file);
            for (size_t off = r.offset; off < r.offset + r.bytes; off += ps)
                got.at(off / ps) = true;
        }
        return got;
    };
    std::vector<PageRun> runs;
    bool was = madvisev_internal::scan_force_pagemap_read(true);
    ScanStatus read = madvisev_internal::scan_data_pages(m.get(), kPages * ps, runs);
    madvisev_internal::scan_force_pagemap_read(was);
    ASSERT_EQ(read, ScanStatus::ok);
    std::vector<bool> by_read = pages_of(runs);
    ASSERT_EQ(madvisev_internal::scan_data_pages(m.get(), kPages * ps, runs), ScanStatus::ok);
    std::vector<bool> by_scan = pages_of(runs);
    for (size_t i = 0; i < kPages; i++) {
        EXPECT_EQ(by_read[i], want[i]) << "pagemap read, page " << i << " (kind " << i % 7 << ")";
        EXPECT_EQ(by_scan[i], want[i]) << "scan, page " << i << " (kind " << i % 7 << ")";
    }
}

namespace {

// Runs @child in a forked process and returns its wait status; @child's
// result is the exit code (0: it behaved).  A crash or abort there shows
// as a signal instead of killing the test binary; so does an exception
// escaping the library, which a C caller could not catch either.
template <class F>
int in_child(F child) {
    pid_t pid = fork();
    if (pid == 0)
        _exit([&]() noexcept { return child(); }());
    int status = -1;
    waitpid(pid, &status, 0);
    return status;
}

std::string describe(int status) {
    if (WIFEXITED(status))
        return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return std::string("killed by ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// The emulation's allocations fail (the address space is used up): the C
// API says ENOMEM, it does not let std::bad_alloc end the process.
TEST(ZeroEmulated, OutOfMemoryIsEnomemNotAnAbort) {
    if (under_sanitizer())
        GTEST_SKIP() << "a sanitizer's allocator does not fail under RLIMIT_AS";
    const size_t ps = page_size();
    constexpr size_t kPages = 8192; // every other page written: 4096 runs
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    for (size_t i = 0; i < kPages; i += 2)
        fill(m.page(i), ps, 0x42);
    int status = in_child([&] {
        madvisev_internal::zero_force_emulation(true);
        madv::batch b(MADVISEV_ZERO, 4); // its vector allocated now
        if (b.add(m.get(), kPages * ps).error != 0)
            return 2;
        rlimit lim{};
        getrlimit(RLIMIT_AS, &lim);
        size_t vm = 0;
        if (FILE *f = fopen("/proc/self/statm", "r")) {
            if (fscanf(f, "%zu", &vm) != 1)
                vm = 0;
            fclose(f);
        }
        lim.rlim_cur = vm * ps;
        if (vm == 0 || setrlimit(RLIMIT_AS, &lim) != 0)
            return 2;
        // Use up what the heap has left, so that any allocation fails.
        size_t sizes[] = {65536, 4096, 256, 16};
        for (size_t sz : sizes)
            for (void *volatile p = malloc(sz); p != nullptr;)
                p = malloc(sz);
        iovec v{m.get(), kPages * ps};
        errno = 0;
        ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
        if (r == -1 && errno == ENOMEM) {
            // The C++ batch's noexcept flush() reports it too.
            return b.flush().error == ENOMEM ? 0 : 5;
        }
        // Some allocation happened to fit: then the call must have worked.
        return r == static_cast<ssize_t>(kPages * ps) && all_equal(m.get(), kPages * ps, 0) ? 3 : 4;
    });
    ASSERT_TRUE(WIFEXITED(status)) << "the child was " << describe(status);
    EXPECT_NE(WEXITSTATUS(status), 2) << "could not set RLIMIT_AS";
    EXPECT_NE(WEXITSTATUS(status), 3) << "nothing failed to allocate: the test proves nothing";
    EXPECT_NE(WEXITSTATUS(status), 5) << "madv::batch::flush() did not say ENOMEM";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "not -1/ENOMEM, nor a successful call";
}

// Private anonymous pages the process may not write (PROT_READ, PROT_NONE;
// alone or beside writable ones in the same range): the kernel's
// MADVISEV_ZERO discards them, and the emulation must clear them too,
// without writing through the protection (SIGSEGV).
TEST(ZeroEmulated, ReadOnlyAndInaccessiblePagesReadZero) {
    const size_t ps = page_size();
    constexpr size_t kPages = 8;
    struct Case {
        const char *name;
        int prot;
        size_t from; // the pages [from, kPages) get @prot
    } cases[] = {{"PROT_READ", PROT_READ, 0},
                 {"PROT_NONE", PROT_NONE, 0},
                 {"half PROT_READ", PROT_READ, kPages / 2},
                 {"half PROT_NONE", PROT_NONE, kPages / 2}};
    for (const Case &c : cases) {
        int status = in_child([&] {
            madvisev_internal::zero_force_emulation(true);
            Mapping m(kPages * ps);
            if (m.get() == nullptr)
                return 2;
            fill(m.get(), kPages * ps, 0x5a);
            if (mprotect(m.page(c.from), (kPages - c.from) * ps, c.prot) != 0)
                return 2;
            iovec v{m.get(), kPages * ps};
            if (madvisev(&v, 1, MADVISEV_ZERO, 0) != static_cast<ssize_t>(kPages * ps))
                return 3;
            if (mprotect(m.get(), kPages * ps, PROT_READ | PROT_WRITE) != 0)
                return 2;
            return all_equal(m.get(), kPages * ps, 0) ? 0 : 4;
        });
        ASSERT_TRUE(WIFEXITED(status)) << c.name << ": the child was " << describe(status);
        EXPECT_EQ(WEXITSTATUS(status), 0)
            << c.name << ": 2 setup failed, 3 the call failed, 4 data left";
    }
}

// Swapped-out runs are dropped with MADV_DONTNEED (memset() would swap
// them in only to clear them).  The host has no swap, so the scan's answer
// is faked through the seam: the run it calls swapped must be dropped
// (not present afterwards) and read zero; neither skipped nor memset.
TEST(ZeroEmulated, SwappedRunsAreDropped) {
    using madvisev_internal::PageRun;
    using madvisev_internal::ScanStatus;
    const size_t ps = page_size();
    Mapping m(8 * ps);
    ASSERT_NE(m.get(), nullptr);
    fill(m.get(), 8 * ps, 0x9c);
    bool was = madvisev_internal::zero_force_emulation(true);
    // Pages 2-3 "swapped", 5 present, the rest "empty".
    auto fake = [](const void *, size_t, std::vector<PageRun> &out) {
        const size_t p = page_size();
        out = {{2 * p, 2 * p, true, false}, {5 * p, p, false, false}};
        return ScanStatus::ok;
    };
    auto old = madvisev_internal::zero_scan_seam(fake);
    iovec v{m.get(), 8 * ps};
    ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
    madvisev_internal::zero_scan_seam(old);
    madvisev_internal::zero_force_emulation(was);
    ASSERT_EQ(r, static_cast<ssize_t>(8 * ps));
    EXPECT_FALSE(present(m.page(2)) || present(m.page(3))) << "the swapped run was not dropped";
    EXPECT_TRUE(present(m.page(5))) << "the present run was not cleared in place";
    EXPECT_TRUE(all_equal(m.page(2), 2 * ps, 0));
    EXPECT_TRUE(all_equal(m.page(5), ps, 0));
    // The pages the scan called empty were left alone: it is their answer.
    EXPECT_TRUE(all_equal(m.get(), 2 * ps, 0x9c));
    EXPECT_TRUE(all_equal(m.page(4), ps, 0x9c));
    EXPECT_TRUE(all_equal(m.page(6), 2 * ps, 0x9c));
}

} // namespace

namespace {

// Without /proc/self/maps the emulation cannot tell private anonymous
// memory from shared or file-backed: it fails, touching nothing, rather
// than discard pages that might not read zero.  A full descriptor table
// in a fresh child (no descriptor kept from the parent) stands in for a
// missing /proc: EMFILE.
TEST(ZeroEmulated, UnreadableMapsFailsAndTouchesNothing) {
    const size_t ps = page_size();
    constexpr size_t kPages = 4;
    Mapping m(kPages * ps);
    ASSERT_NE(m.get(), nullptr);
    int status = in_child([&] {
        madvisev_internal::zero_force_emulation(true);
        fill(m.get(), kPages * ps, 0x3d);
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); // the lowest free number
        if (fd < 0)
            return 2;
        close(fd);
        rlimit lim{};
        getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = static_cast<rlim_t>(fd);
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            return 2;
        iovec v{m.get(), kPages * ps};
        errno = 0;
        ssize_t r = madvisev(&v, 1, MADVISEV_ZERO, 0);
        int err = errno;
        if (r != -1 || err != EMFILE)
            return 3;
        return all_equal(m.get(), kPages * ps, 0x3d) ? 0 : 4;
    });
    ASSERT_TRUE(WIFEXITED(status)) << "the child was " << describe(status);
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "2 setup failed, 3 not -1/EMFILE, 4 the memory was changed";
}

} // namespace
