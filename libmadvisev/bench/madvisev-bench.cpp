// SPDX-License-Identifier: MIT
// madvisev-bench: cost per range and TLB shootdowns per call of each
// backend, with a sibling thread of the process spinning on another CPU so
// that every flush really has to reach a second CPU.  A second section,
// "overhead", sets madvisev() against the bare process_madvise(2) system
// call it makes on this kernel, on the same vector.  A third, "memory
// kinds", counts the IPI rounds per call where the memory is not private
// anonymous base pages: THP, shmem, userfaultfd, hugetlb.
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cpus.h"
#include "madvisev.h"
#include "tlb_stat.h"
#include "trace_client.h"

namespace {

using madvisev_tools::allowed_cpus;
using madvisev_tools::pin_to;

struct Options {
    std::vector<int> backends;
    std::vector<size_t> vlens{1, 16, 64, 256, 1024};
    std::vector<size_t> sizes{4096, 65536};
    size_t ranges_per_config = 16384; // calls = this / vlen, within [min_calls, max_calls]
    size_t min_calls = 16;
    bool sibling = true;
    std::string json;
    std::string tracer; // madvisev-trace, run on this process per configuration
    bool vlens_given = false;
    // Sections: the backend table, the overhead section and the memory-kinds
    // section (by default all three; --overhead and --memory-kinds run only
    // theirs, --no-overhead and --no-memory-kinds leave theirs out).
    bool table = true, overhead = true, kinds = true;
};

struct Record {
    const char *backend;
    size_t vlen, range_bytes, calls;
    double ns_per_range, shootdowns_per_call;
    bool ok;
    // From madvisev-trace, when --trace, per benchmark call: the backend's
    // system calls seen, the IPI rounds sent and the pages zapped by them
    // (and by io_uring's madvise operations).  -1 when not traced.
    double traced_syscalls_per_call = -1, traced_ipi_per_call = -1, traced_pages_per_call = -1;
    // From the overhead section, when it measured this configuration: the
    // JSON "overhead" object (empty when not).
    std::string overhead_json = {};
    // From the memory-kinds section, in the automatic backend's row of 64
    // ranges of a page: its JSON members (empty when not).
    std::string memory_kinds_json = {};
};

void usage(FILE *out) {
    fprintf(out, "Usage: madvisev-bench [options]\n"
                 "Time MADV_DONTNEED through each libmadvisev backend and count TLB shootdowns\n"
                 "(/proc/interrupts, TLB row, all CPUs) per call.  Each range is dirtied before\n"
                 "every call; a sibling thread spins on another CPU.\n"
                 "  -b, --backends LIST   comma-separated backends (default: all available)\n"
                 "  -v, --vlens LIST      ranges per call (default 1,16,64,256,1024)\n"
                 "  -s, --sizes LIST      bytes per range, page multiples (default 4096,65536)\n"
                 "  -r, --ranges N        ranges advised per configuration (default 16384)\n"
                 "      --no-sibling      no spinning sibling thread\n"
                 "  -j, --json FILE       also write the records as a JSON array\n"
                 "  -t, --trace TRACER    run TRACER (madvisev-trace, needs root) on this process\n"
                 "                        for each configuration and print the system calls and\n"
                 "                        IPI rounds it attributes to each benchmark call (the\n"
                 "                        overhead and memory-kinds sections are left out: the\n"
                 "                        tracer slows calls)\n"
                 "      --overhead        run only the overhead section: madvisev() (automatic\n"
                 "                        backend) against a direct process_madvise(PIDFD_SELF)\n"
                 "                        on the same vector of 4 KiB ranges, in interleaved ABBA\n"
                 "                        rounds, medians per call; at --vlens (default 64,1024).\n"
                 "                        The default run ends with it, at the --vlens among 64\n"
                 "                        and 1024; skipped where the kernel lacks PIDFD_SELF\n"
                 "                        (Linux < 6.15).  JSON: an \"overhead\" object in the\n"
                 "                        automatic backend's 4 KiB row of that vlen\n"
                 "      --no-overhead     leave out the overhead section\n"
                 "      --memory-kinds    run only the memory-kinds section: TLB-shootdown IPIs\n"
                 "                        (TLB row) and ns per call by kind of memory, through\n"
                 "                        madvisev() and each of --backends but io_uring, 16\n"
                 "                        calls each: anon-4k DONTNEED and FREE (64 one-page\n"
                 "                        ranges); thp-partial DONTNEED (16 ranges, each half a\n"
                 "                        PMD-mapped THP); thp-whole FREE (16 whole THPs);\n"
                 "                        shmem-dirty (16 dirty pages of a MAP_SHARED memfd);\n"
                 "                        uffd-remove (16 pages of a userfaultfd VMA with\n"
                 "                        UFFD_EVENT_REMOVE); hugetlb (up to 16 huge pages).\n"
                 "                        A kind this host cannot set up is left out with a line\n"
                 "                        saying why.  The default run ends with it when the\n"
                 "                        table has 64 ranges of a page.  JSON: a\n"
                 "                        \"memory_kinds\" array (and \"memory_kinds_skipped\")\n"
                 "                        in the automatic backend's row of 64 ranges of a page\n"
                 "      --no-memory-kinds leave out the memory-kinds section\n"
                 "  -h, --help            this text\n");
}

[[noreturn]] void die_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "madvisev-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

std::vector<size_t> parse_sizes(const char *arg, const char *what) {
    std::vector<size_t> out;
    std::string s(arg);
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t comma = s.find(',', pos);
        std::string tok =
            s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        char *end = nullptr;
        errno = 0;
        unsigned long long v = strtoull(tok.c_str(), &end, 10);
        if (tok.empty() || *end != '\0' || errno || v == 0 || tok[0] == '-')
            die_usage(what, arg);
        out.push_back(static_cast<size_t>(v));
        if (comma == std::string::npos)
            break;
        pos = comma + 1;
    }
    return out;
}

const char *syscall_of(int backend) {
    switch (backend) {
    case MADVISEV_BACKEND_SYSCALL:
        return "madvisev";
    case MADVISEV_BACKEND_PROCESS_MADVISE:
        return "process_madvise";
    case MADVISEV_BACKEND_IO_URING:
        return "io_uring_enter";
    default:
        return "madvise";
    }
}

// The vector both sections measure: vlen ranges of range_bytes each, one
// page apart so no two ranges are adjacent, in a mapping that unmaps
// itself.
class Ranges {
  public:
    Ranges(size_t vlen, size_t range_bytes, size_t page)
        : vlen_(vlen), range_bytes_(range_bytes), page_(page), stride_(range_bytes + page),
          span_(stride_ * vlen), iov_(vlen) {
        void *p = mmap(nullptr, span_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            fprintf(stderr, "madvisev-bench: mmap %zu bytes: %s\n", span_, strerror(errno));
            return;
        }
        base_ = static_cast<char *>(p);
        // Keep THP out of the picture: 4 KiB pages, one zap per page.
        madvise(base_, span_, MADV_NOHUGEPAGE);
        for (size_t i = 0; i < vlen; i++)
            iov_[i] = {base_ + i * stride_, range_bytes};
    }
    ~Ranges() {
        if (base_)
            munmap(base_, span_);
    }
    Ranges(const Ranges &) = delete;
    Ranges &operator=(const Ranges &) = delete;
    bool ok() const { return base_ != nullptr; }
    const iovec *iov() const { return iov_.data(); }

    // Dirties every page of every range (untimed), then times @call, which
    // advises the vector and returns what the call returned; adds the time
    // to @spent.  False, with a message "madvisev-bench: @who: @name
    // returned ...", when the call did not advise every byte.
    template <typename Call>
    bool timed_call(Call call, std::chrono::nanoseconds *spent, const char *who, const char *name) {
        for (size_t i = 0; i < vlen_; i++)
            for (size_t off = 0; off < range_bytes_; off += page_)
                base_[i * stride_ + off] = 1;
        auto t0 = std::chrono::steady_clock::now();
        ssize_t r = call();
        *spent += std::chrono::steady_clock::now() - t0;
        if (r == static_cast<ssize_t>(vlen_ * range_bytes_))
            return true;
        fprintf(stderr, "madvisev-bench: %s: %s returned %zd: %s\n", who, name, r,
                r < 0 ? strerror(errno) : "short count");
        return false;
    }

  private:
    size_t vlen_, range_bytes_, page_, stride_, span_;
    char *base_ = nullptr;
    std::vector<iovec> iov_;
};

// One configuration: the table's row of @backend, every range dirtied
// before each call.
Record run_one(int backend, size_t vlen, size_t range_bytes, const Options &o, size_t page) {
    Record rec{madvisev_backend_str(backend), vlen, range_bytes, 0, 0, 0, false};
    size_t calls = std::max(o.min_calls, o.ranges_per_config / vlen);
    std::chrono::nanoseconds spent{0};
    madvisev_tools::TraceClient tracer;
    int64_t tlb_before, tlb_after;
    { // the ranges are unmapped before the tracer stops
        Ranges v(vlen, range_bytes, page);
        if (!v.ok())
            return rec;
        if (!o.tracer.empty() && !tracer.start(o.tracer))
            return rec;
        tlb_before = madvisev_tools::tlb_shootdowns();
        for (size_t c = 0; c < calls; c++)
            if (!v.timed_call(
                    [&] { return madvisev_via(backend, v.iov(), vlen, MADV_DONTNEED, 0); }, &spent,
                    rec.backend, "madvisev"))
                return rec;
        tlb_after = madvisev_tools::tlb_shootdowns();
    }
    if (tracer.running()) {
        madvisev_tools::TraceReport report;
        if (!tracer.stop(&report)) {
            fprintf(stderr, "madvisev-bench: no report from %s\n", o.tracer.c_str());
            return rec;
        }
        // io_uring's flushes and zaps happen in its workers, charged to the
        // madvise operations rather than to io_uring_enter.
        const auto &sys = report.calls[syscall_of(backend)];
        const auto &ops = report.calls["io_uring_madvise"];
        double n = static_cast<double>(calls);
        rec.traced_syscalls_per_call = sys.calls / n;
        rec.traced_ipi_per_call = (sys.ipi_rounds + ops.ipi_rounds) / n;
        if (sys.pages_zapped >= 0)
            rec.traced_pages_per_call = (sys.pages_zapped + std::max(ops.pages_zapped, 0.0)) / n;
    }
    rec.calls = calls;
    rec.ns_per_range = static_cast<double>(spent.count()) / static_cast<double>(calls * vlen);
    rec.shootdowns_per_call =
        tlb_before < 0 ? -1.0
                       : static_cast<double>(tlb_after - tlb_before) / static_cast<double>(calls);
    rec.ok = true;
    return rec;
}

// The overhead section: madvisev() through the library's automatic backend
// (A) against the bare system call that backend makes on Linux 6.15+,
// process_madvise(PIDFD_SELF, iov, n, MADV_DONTNEED, 0) (B), on the same
// vector of one-page ranges, a page apart as in the table.  Every range is
// dirtied before every call, untimed; the TLB counter is read before the
// dirtying and after the call, untimed too, the same for A and B.  Calls
// alternate in ABBA rounds, so that drift and the noise of a shared host
// fall on both alike; the figures are medians per call.
constexpr double kOverheadGoal = 1.05; // library at most 5% slower
constexpr int kPidfdSelf = -10000;     // PIDFD_SELF (Linux 6.15)

long direct_process_madvise(const iovec *iov, size_t n) {
#ifdef SYS_process_madvise
    return syscall(SYS_process_madvise, kPidfdSelf, iov, n, MADV_DONTNEED, 0u);
#else
    (void)iov, (void)n;
    errno = ENOSYS;
    return -1;
#endif
}

// nullptr when the direct call works here (it zeroes a dirty page), else why
// not.
const char *direct_unavailable(size_t page) {
    char *p = static_cast<char *>(
        mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED)
        return "cannot map a probe page";
    p[0] = 1;
    iovec v{p, page};
    long r = direct_process_madvise(&v, 1);
    int err = errno;
    bool zeroed = p[0] == 0;
    munmap(p, page);
    if (r == static_cast<long>(page))
        return zeroed ? nullptr : "process_madvise(PIDFD_SELF) did not zero a probe page";
    switch (r < 0 ? err : 0) {
    case ENOSYS:
        return "this kernel (or build) has no process_madvise(2)";
    case EBADF:
        return "process_madvise(2) does not know PIDFD_SELF (Linux < 6.15)";
    case EINVAL:
        return "process_madvise(2) refuses MADV_DONTNEED on the caller itself (Linux < 6.13)";
    case EPERM:
        return "process_madvise(2) is refused (seccomp or capabilities)";
    default:
        return "process_madvise(PIDFD_SELF) failed on a probe page";
    }
}

struct Overhead {
    size_t vlen = 0, rounds = 0;
    double library_ns = 0, direct_ns = 0; // medians per call
    double paired_ratio = 0;              // median over rounds of (A + A) / (B + B)
    double library_shootdowns = -1, direct_shootdowns = -1; // per call; -1: no counter
    bool ok = false;
    double ratio() const { return library_ns / direct_ns; }
};

double median(std::vector<double> v) {
    if (v.empty())
        return 0;
    size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0)
        m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
    return m;
}

// ABBA rounds: enough for about 8 * --ranges ranges on each side, at least
// 256 rounds (512 calls each side).
size_t overhead_rounds(size_t vlen, const Options &o) {
    return std::max<size_t>(256, o.ranges_per_config * 4 / vlen);
}

Overhead run_overhead(size_t vlen, const Options &o, size_t page) {
    Overhead res;
    res.vlen = vlen;
    res.rounds = overhead_rounds(vlen, o);
    Ranges v(vlen, page, page);
    if (!v.ok())
        return res;
    const std::string who = "overhead vlen=" + std::to_string(vlen);
    const bool counted = madvisev_tools::tlb_shootdowns() >= 0;

    std::vector<double> ns[2]; // [0] library, [1] direct
    int64_t shootdowns[2] = {0, 0};
    for (auto &v : ns)
        v.reserve(2 * res.rounds);
    // One call of side @direct; false (and a message) if it failed.
    auto call = [&](int direct, bool keep) {
        int64_t before = counted ? madvisev_tools::tlb_shootdowns() : 0;
        std::chrono::nanoseconds took{0};
        bool advised = v.timed_call(
            [&]() -> ssize_t {
                return direct ? direct_process_madvise(v.iov(), vlen)
                              : madvisev(v.iov(), vlen, MADV_DONTNEED, 0);
            },
            &took, who.c_str(), direct ? "process_madvise" : "madvisev");
        int64_t after = counted ? madvisev_tools::tlb_shootdowns() : 0;
        if (!advised)
            return false;
        if (keep) {
            ns[direct].push_back(static_cast<double>(took.count()));
            shootdowns[direct] += after - before;
        }
        return true;
    };
    bool ok = true;
    // Warm up both paths (the library picks its backend on its first call).
    for (int w = 0; w < 8 && ok; w++)
        ok = call(0, false) && call(1, false);
    for (size_t round = 0; round < res.rounds && ok; round++)
        ok = call(0, true) && call(1, true) && call(1, true) && call(0, true);
    if (!ok)
        return res;
    res.library_ns = median(ns[0]);
    res.direct_ns = median(ns[1]);
    std::vector<double> paired(res.rounds);
    for (size_t round = 0; round < res.rounds; round++)
        paired[round] =
            (ns[0][2 * round] + ns[0][2 * round + 1]) / (ns[1][2 * round] + ns[1][2 * round + 1]);
    res.paired_ratio = median(paired);
    if (counted) {
        res.library_shootdowns = static_cast<double>(shootdowns[0]) / ns[0].size();
        res.direct_shootdowns = static_cast<double>(shootdowns[1]) / ns[1].size();
    }
    res.ok = res.direct_ns > 0;
    return res;
}

std::string overhead_json(const Overhead &r, const char *backend) {
    char buf[640];
    snprintf(buf, sizeof(buf),
             "{\"library\": \"madvisev (%s)\", \"direct\": \"process_madvise(PIDFD_SELF)\", "
             "\"rounds\": %zu, \"calls_each\": %zu, \"library_ns_per_call\": %.1f, "
             "\"direct_ns_per_call\": %.1f, \"ratio\": %.4f, \"paired_ratio\": %.4f, "
             "\"goal_ratio\": %.2f, "
             "\"within_goal\": %s, \"library_shootdowns_per_call\": %.3f, "
             "\"direct_shootdowns_per_call\": %.3f}",
             backend, r.rounds, 2 * r.rounds, r.library_ns, r.direct_ns, r.ratio(), r.paired_ratio,
             kOverheadGoal, r.ratio() <= kOverheadGoal ? "true" : "false", r.library_shootdowns,
             r.direct_shootdowns);
    return buf;
}

// The memory-kinds section: IPI rounds per call by the kind of memory the
// ranges lie in.  One call costs one flush only for private anonymous
// memory in base pages; THP splits, MADV_FREE over PMD-mapped THPs, dirty
// shared pages, userfaultfd's remove events and hugetlb ranges cost more
// (kernel-patch/README.md, "Flushes per call").  Each kind holds a vector
// of ranges in memory of that kind and makes it ready before every call,
// untimed and outside the count; the TLB counter is read around the call
// alone.
constexpr size_t kKindCalls = 16;  // calls per kind and backend, after a warm-up call
constexpr size_t kAnonRanges = 64; // ranges per call of the anon-* kinds
constexpr size_t kKindRanges = 16; // of the others

// The first line of @path, or "" if it cannot be read.
std::string first_line(const char *path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// A figure of /proc/meminfo ("Hugepagesize" is in kB), or -1.
long meminfo(const char *key) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    const std::string want = std::string(key) + ":";
    while (std::getline(in, line))
        if (line.compare(0, want.size(), want) == 0)
            return strtol(line.c_str() + want.size(), nullptr, 10);
    return -1;
}

// AnonHugePages (kB of PMD-mapped anonymous THPs) of the VMA of
// /proc/self/smaps that contains @addr, or -1 if none does.
long anon_huge_kb(const void *addr) {
    std::ifstream in("/proc/self/smaps");
    const auto a = reinterpret_cast<uintptr_t>(addr);
    bool inside = false;
    std::string line;
    while (std::getline(in, line)) {
        unsigned long lo, hi;
        if (sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2)
            inside = lo <= a && a < hi;
        else if (inside && line.compare(0, 14, "AnonHugePages:") == 0)
            return strtol(line.c_str() + 14, nullptr, 10);
    }
    return -1;
}

std::string errno_text(const char *what) {
    return std::string(what) + ": " + strerror(errno);
}

// Ranges in memory of one kind, in a mapping it owns.
class KindMemory {
  public:
    virtual ~KindMemory() {
        if (base_ != nullptr)
            munmap(base_, span_);
    }
    KindMemory() = default;
    KindMemory(const KindMemory &) = delete;
    KindMemory &operator=(const KindMemory &) = delete;
    // Makes the ranges ready for one call (dirty pages, PMD-mapped THPs):
    // "" when they are, else why not.
    virtual std::string prepare() = 0;
    // After @calls calls: "" if the kernel did what the kind is about.
    virtual std::string verify(size_t calls) {
        (void)calls;
        return {};
    }
    const std::vector<iovec> &iov() const { return iov_; }
    size_t bytes() const {
        size_t sum = 0;
        for (const iovec &v : iov_)
            sum += v.iov_len;
        return sum;
    }

  protected:
    // Maps @span bytes (@flags, @fd) and makes @n ranges of @len bytes,
    // @stride apart; "" or why not.
    std::string map(size_t span, int flags, int fd, size_t n, size_t len, size_t stride) {
        void *p = mmap(nullptr, span, PROT_READ | PROT_WRITE, flags, fd, 0);
        if (p == MAP_FAILED)
            return errno_text("mmap");
        base_ = static_cast<char *>(p);
        span_ = span;
        for (size_t i = 0; i < n; i++)
            iov_.push_back({base_ + i * stride, len});
        return {};
    }
    // Writes one byte every @step bytes of every range.
    void touch(size_t step) {
        for (const iovec &v : iov_)
            for (size_t off = 0; off < v.iov_len; off += step)
                static_cast<volatile char *>(v.iov_base)[off] = 1;
    }
    std::vector<iovec> iov_;
    char *base_ = nullptr;
    size_t span_ = 0;
};

// anon-4k: @n one-page ranges, a page apart, no THP, every page written
// before every call; private anonymous, or as @flags and @fd map them.
class PageRanges : public KindMemory {
  public:
    PageRanges(size_t page, size_t n) : page_(page), n_(n) {}
    std::string init(int flags = MAP_PRIVATE | MAP_ANONYMOUS, int fd = -1) {
        std::string why = map(2 * page_ * n_, flags, fd, n_, page_, 2 * page_);
        if (why.empty())
            madvise(base_, span_, MADV_NOHUGEPAGE);
        return why;
    }
    std::string prepare() override {
        touch(page_);
        return {};
    }

  protected:
    size_t page_, n_;
};

// thp-partial: each range the first half of a PMD-mapped THP, the area
// mapped anew and faulted in before every call (a split THP cannot be
// PMD-mapped again in place); thp-whole: each range a whole PMD-mapped THP,
// written again before every call.  Either checks /proc/self/smaps that
// every THP is PMD-mapped before every call.
class ThpArea : public KindMemory {
  public:
    explicit ThpArea(bool partial) : partial_(partial) {}
    std::string init() {
        pmd_ = strtoul(first_line("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size").c_str(),
                       nullptr, 10);
        if (pmd_ == 0)
            return "THP not available: no /sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
        // A PMD-aligned area: map one PMD more, give back the ends.
        const size_t span = kKindRanges * pmd_;
        void *p = mmap(nullptr, span + pmd_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return errno_text("mmap");
        char *raw = static_cast<char *>(p);
        char *aligned = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(raw) + pmd_ - 1) &
                                                 ~(uintptr_t{pmd_} - 1));
        if (aligned > raw)
            munmap(raw, static_cast<size_t>(aligned - raw));
        munmap(aligned + span, static_cast<size_t>(raw + pmd_ - aligned));
        base_ = aligned;
        span_ = span;
        for (size_t i = 0; i < kKindRanges; i++)
            iov_.push_back({base_ + i * pmd_, partial_ ? pmd_ / 2 : pmd_});
        return {};
    }
    std::string prepare() override {
        if (partial_ || !faulted_) {
            if (mmap(base_, span_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
                return errno_text("mmap");
            if (madvise(base_, span_, MADV_HUGEPAGE) != 0)
                return errno_text("THP not available: madvise(MADV_HUGEPAGE)");
            faulted_ = true;
        }
        for (size_t i = 0; i < kKindRanges; i++)
            static_cast<volatile char *>(base_)[i * pmd_] = 1;
        long kb = anon_huge_kb(base_);
        const long want = static_cast<long>(span_ / 1024);
        if (kb >= want)
            return {};
        const std::string sys = "/sys/kernel/mm/transparent_hugepage/";
        const std::string size = "hugepages-" + std::to_string(pmd_ / 1024) + "kB/enabled";
        return "THP not available: AnonHugePages " + std::to_string(kb) + " of " +
               std::to_string(want) + " kB in /proc/self/smaps after faulting the area in (" + sys +
               "enabled: " + first_line((sys + "enabled").c_str()) + "; " + size + ": " +
               first_line((sys + size).c_str()) +
               (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 ? "; PR_SET_THP_DISABLE is set" : "") +
               ")";
    }

  private:
    bool partial_, faulted_ = false;
    size_t pmd_ = 0;
};

// shmem-dirty: the same in a memfd mapped MAP_SHARED.
class ShmemPages : public PageRanges {
  public:
    explicit ShmemPages(size_t page) : PageRanges(page, kKindRanges) {}
    std::string init() {
        int fd = memfd_create("madvisev-bench", MFD_CLOEXEC);
        if (fd < 0)
            return errno_text("memfd_create");
        std::string why = ftruncate(fd, static_cast<off_t>(2 * page_ * n_)) == 0
                              ? PageRanges::init(MAP_SHARED, fd)
                              : errno_text("ftruncate");
        close(fd);
        return why;
    }
};

// uffd-remove: the anonymous ones in a VMA registered with a userfaultfd
// that asked for UFFD_EVENT_REMOVE.  A monitor thread reads the events (the
// advising call waits until each is read) and fills the pages the writes
// before each call fault on.
class UffdPages : public PageRanges {
  public:
    explicit UffdPages(size_t page) : PageRanges(page, kKindRanges), fill_(page, 0) {}
    ~UffdPages() override {
        if (monitor_.joinable()) {
            uint64_t one = 1;
            if (write(stop_, &one, sizeof(one)) == sizeof(one))
                monitor_.join();
            else
                monitor_.detach(); // cannot happen with an eventfd
        }
        if (stop_ >= 0)
            close(stop_);
        if (uffd_ >= 0)
            close(uffd_);
    }
    std::string init() {
#ifdef UFFD_USER_MODE_ONLY
        uffd_ = static_cast<int>(
            syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
        if (uffd_ < 0 && errno == EINVAL) // before Linux 5.11
#endif
            uffd_ = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
        if (uffd_ < 0)
            return errno == EPERM ? "userfaultfd not permitted (vm.unprivileged_userfaultfd 0, "
                                    "no CAP_SYS_PTRACE, or a seccomp filter)"
                                  : errno_text("userfaultfd not available: userfaultfd()");
        uffdio_api api{};
        api.api = UFFD_API;
        api.features = UFFD_FEATURE_EVENT_REMOVE;
        if (ioctl(uffd_, UFFDIO_API, &api) != 0)
            return errno_text("userfaultfd: UFFDIO_API with UFFD_FEATURE_EVENT_REMOVE");
        std::string why = PageRanges::init();
        if (!why.empty())
            return why;
        uffdio_register reg{};
        reg.range = {reinterpret_cast<uintptr_t>(base_), span_};
        reg.mode = UFFDIO_REGISTER_MODE_MISSING;
        if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0)
            return errno_text("userfaultfd: UFFDIO_REGISTER");
        stop_ = eventfd(0, EFD_CLOEXEC);
        if (stop_ < 0)
            return errno_text("eventfd");
        // The monitor inherits this thread's CPU: the sibling keeps its own.
        monitor_ = std::thread([this] { monitor(); });
        return {};
    }
    std::string prepare() override {
        if (failed_.load())
            return "userfaultfd monitor: " + failure_;
        return PageRanges::prepare();
    }
    std::string verify(size_t calls) override {
        // The monitor counts an event just after reading it, that is just
        // after the call it held up goes on: wait for the last count.
        const size_t want = calls * kKindRanges;
        for (int ms = 0; ms < 1000 && removes_.load() < want && !failed_.load(); ms++)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        size_t seen = removes_.exchange(0);
        if (seen == want)
            return {};
        return "userfaultfd: " + std::to_string(seen) + " UFFD_EVENT_REMOVE events for " +
               std::to_string(calls) + " calls of " + std::to_string(kKindRanges) + " ranges";
    }

  private:
    // Until told to stop.  After a failure the range is unregistered, so
    // that no fault or remove event waits on it, and events are still read.
    void monitor() {
        while (true) {
            pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_, POLLIN, 0}};
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                fail(errno_text("poll"));
                return;
            }
            if (fds[1].revents != 0)
                return;
            uffd_msg msgs[16];
            ssize_t got = read(uffd_, msgs, sizeof(msgs));
            if (got < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    fail(errno_text("read"));
                continue;
            }
            for (size_t i = 0; i < static_cast<size_t>(got) / sizeof(uffd_msg); i++) {
                if (msgs[i].event == UFFD_EVENT_REMOVE) {
                    removes_++; // read: the advising call goes on
                } else if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                    uffdio_copy copy{};
                    copy.dst = msgs[i].arg.pagefault.address & ~uint64_t{page_ - 1};
                    copy.src = reinterpret_cast<uintptr_t>(fill_.data());
                    copy.len = page_;
                    if (ioctl(uffd_, UFFDIO_COPY, &copy) == 0)
                        continue;
                    if (errno != EEXIST && errno != EAGAIN)
                        fail(errno_text("UFFDIO_COPY"));
                    uffdio_range wake{copy.dst, page_}; // the fault is tried again
                    ioctl(uffd_, UFFDIO_WAKE, &wake);
                }
            }
        }
    }
    void fail(std::string why) {
        if (failed_.load())
            return;
        failure_ = std::move(why);
        failed_ = true;
        uffdio_range all{reinterpret_cast<uintptr_t>(base_), span_};
        ioctl(uffd_, UFFDIO_UNREGISTER, &all);
    }
    std::vector<char> fill_;
    int uffd_ = -1, stop_ = -1;
    std::thread monitor_;
    std::atomic<size_t> removes_{0};
    std::atomic<bool> failed_{false};
    std::string failure_;
};

// hugetlb: ranges of one huge page of the default size each, in a
// MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB mapping (its pages stay in the
// mapping's file when zapped, so a write never waits on the pool), one
// byte of each written before every call.  Takes at most kKindRanges of
// the pool's free pages; never grows the pool.
class HugetlbPages : public KindMemory {
  public:
    std::string init() {
        const long kb = meminfo("Hugepagesize"), free_pages = meminfo("HugePages_Free");
        if (kb <= 0)
            return "no hugetlb pages: no Hugepagesize in /proc/meminfo";
        huge_ = static_cast<size_t>(kb) * 1024;
        const int flags = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB;
        std::string why = map(kKindRanges * huge_, flags, -1, kKindRanges, huge_, huge_);
        if (why.empty())
            return {};
        if (free_pages > 0 && free_pages < static_cast<long>(kKindRanges)) { // as many as there are
            const auto n = static_cast<size_t>(free_pages);
            why = map(n * huge_, flags, -1, n, huge_, huge_);
            if (why.empty())
                return {};
        }
        return "no hugetlb pages of " + std::to_string(kb) + " kB to be had (" + why +
               "; HugePages_Total " + std::to_string(meminfo("HugePages_Total")) +
               ", HugePages_Free " + std::to_string(free_pages) +
               "; /proc/sys/vm/nr_hugepages is left as it is)";
    }
    std::string prepare() override {
        touch(huge_);
        return {};
    }

  private:
    size_t huge_ = 0;
};

struct KindRecord {
    std::string kind;
    const char *advice;   // "DONTNEED" or "FREE"
    std::string backend;  // "auto" (madvisev()) or a backend's name
    std::string selected; // the backend that made the calls
    size_t ranges, range_bytes, calls;
    double ipi_per_call; // -1: no TLB counter
    double ns_per_call;
};

struct KindSkipped {
    std::string kind;
    const char *advice;
    std::string reason;
};

// @calls calls through @backend (MADVISEV_BACKEND_AUTO: madvisev()) on @m,
// after one warm-up call, each made ready before it.  False with @why set
// when the memory could not be made ready or was not what the kind is
// about; false with @why empty when a call failed (said on stderr).
bool measure_kind(KindMemory &m, int advice, int backend, KindRecord *rec, std::string *why) {
    const bool counted = madvisev_tools::tlb_shootdowns() >= 0;
    const auto &iov = m.iov();
    const auto want = static_cast<ssize_t>(m.bytes());
    std::chrono::nanoseconds spent{0};
    int64_t rounds = 0;
    for (size_t c = 0; c <= kKindCalls; c++) { // call 0 warms up
        *why = m.prepare();
        if (!why->empty())
            return false;
        int64_t before = counted ? madvisev_tools::tlb_shootdowns() : 0;
        auto t0 = std::chrono::steady_clock::now();
        ssize_t r = madvisev_via(backend, iov.data(), iov.size(), advice, 0);
        auto took = std::chrono::steady_clock::now() - t0;
        int err = errno;
        int64_t after = counted ? madvisev_tools::tlb_shootdowns() : 0;
        if (r != want) {
            fprintf(stderr, "madvisev-bench: memory kind %s MADV_%s via %s: returned %zd: %s\n",
                    rec->kind.c_str(), rec->advice, rec->backend.c_str(), r,
                    r < 0 ? strerror(err) : "short count");
            return false;
        }
        if (c > 0) {
            spent += took;
            rounds += after - before;
        }
    }
    *why = m.verify(kKindCalls + 1);
    if (!why->empty())
        return false;
    const auto n = static_cast<double>(kKindCalls);
    rec->ranges = iov.size();
    rec->range_bytes = iov.empty() ? 0 : iov[0].iov_len;
    rec->calls = kKindCalls;
    rec->ipi_per_call = counted ? static_cast<double>(rounds) / n : -1;
    rec->ns_per_call = static_cast<double>(spent.count()) / n;
    return true;
}

template <typename T>
std::unique_ptr<KindMemory> set_up(std::unique_ptr<T> m, std::string *why) {
    *why = m->init();
    if (!why->empty())
        return nullptr;
    return m;
}

// The section: every kind through the automatic backend and each of
// @backends but io_uring.  False if a call failed.
bool run_memory_kinds(const std::vector<int> &backends, size_t page, bool have_sibling,
                      std::vector<KindRecord> *out, std::vector<KindSkipped> *skipped) {
    struct Kind {
        std::string name;
        int advice;
        const char *advice_name;
        std::function<std::unique_ptr<KindMemory>(std::string *)> make;
    };
    const std::string anon = "anon-" + std::to_string(page / 1024) + "k";
    const std::vector<Kind> kinds = {
        {anon, MADV_DONTNEED, "DONTNEED",
         [&](std::string *why) {
             return set_up(std::make_unique<PageRanges>(page, kAnonRanges), why);
         }},
        {anon, MADV_FREE, "FREE",
         [&](std::string *why) {
             return set_up(std::make_unique<PageRanges>(page, kAnonRanges), why);
         }},
        {"thp-partial", MADV_DONTNEED, "DONTNEED",
         [](std::string *why) { return set_up(std::make_unique<ThpArea>(true), why); }},
        {"thp-whole", MADV_FREE, "FREE",
         [](std::string *why) { return set_up(std::make_unique<ThpArea>(false), why); }},
        {"shmem-dirty", MADV_DONTNEED, "DONTNEED",
         [&](std::string *why) { return set_up(std::make_unique<ShmemPages>(page), why); }},
        {"uffd-remove", MADV_DONTNEED, "DONTNEED",
         [&](std::string *why) { return set_up(std::make_unique<UffdPages>(page), why); }},
        {"hugetlb", MADV_DONTNEED, "DONTNEED",
         [](std::string *why) { return set_up(std::make_unique<HugetlbPages>(), why); }},
    };

    std::vector<int> via;
    if (madvisev_backend() >= 0)
        via.push_back(MADVISEV_BACKEND_AUTO);
    else
        printf("# memory kinds: no automatic backend row: madvisev() has no backend (%s)\n",
               madvisev_backend_name());
    for (int b : backends)
        if (b != MADVISEV_BACKEND_IO_URING)
            via.push_back(b);
    if (std::find(backends.begin(), backends.end(), MADVISEV_BACKEND_IO_URING) != backends.end())
        printf("# memory kinds: io_uring left out (one flush per madvise operation anyway, in "
               "its workers)\n");

    printf("# memory kinds: TLB-shootdown IPIs per call = the TLB row of /proc/interrupts, "
           "summed over CPUs, read around each call alone (%s); mean of %zu calls after a "
           "warm-up, each range made ready (dirtied, THPs faulted in) untimed before each; "
           "ns per call\n",
           have_sibling ? "one IPI round each, a sibling thread spinning on another CPU"
                        : "no sibling thread: few IPIs to count",
           kKindCalls);
    printf("%-12s %-8s %-24s %6s %7s %5s %10s %12s\n", "kind", "advice", "backend", "ranges",
           "range", "calls", "ipi/call", "ns/call");
    fflush(stdout);
    bool ok = true;
    for (const Kind &k : kinds) {
        std::string why;
        std::unique_ptr<KindMemory> m = k.make(&why);
        for (size_t i = 0; m && i < via.size() && why.empty(); i++) {
            const int b = via[i];
            const char *name =
                b == MADVISEV_BACKEND_AUTO ? madvisev_backend_name() : madvisev_backend_str(b);
            KindRecord rec{
                k.name, k.advice_name, b == MADVISEV_BACKEND_AUTO ? "auto" : name, name, 0, 0, 0, 0,
                0};
            if (!measure_kind(*m, k.advice, b, &rec, &why)) {
                ok = ok && !why.empty(); // a failed call (said) is an error
                continue;                // a kind left out ends the loop
            }
            const std::string label =
                b == MADVISEV_BACKEND_AUTO ? "auto (" + rec.selected + ")" : rec.backend;
            char ipi[32] = "n/a";
            if (rec.ipi_per_call >= 0)
                snprintf(ipi, sizeof(ipi), "%.2f", rec.ipi_per_call);
            printf("%-12s %-8s %-24s %6zu %6zuK %5zu %10s %12.0f\n", rec.kind.c_str(), rec.advice,
                   label.c_str(), rec.ranges, rec.range_bytes / 1024, rec.calls, ipi,
                   rec.ns_per_call);
            fflush(stdout);
            out->push_back(rec);
        }
        if (!why.empty()) {
            printf("# memory kinds: %s MADV_%s left out: %s\n", k.name.c_str(), k.advice_name,
                   why.c_str());
            fflush(stdout);
            skipped->push_back({k.name, k.advice_name, why});
        }
    }
    return ok;
}

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// The JSON of the section: a "memory_kinds" array, and a
// "memory_kinds_skipped" one if a kind was left out.
std::string memory_kinds_json(const std::vector<KindRecord> &recs,
                              const std::vector<KindSkipped> &skipped, bool sibling) {
    std::string out = "\"memory_kinds\": [";
    for (size_t i = 0; i < recs.size(); i++) {
        const KindRecord &r = recs[i];
        char buf[512];
        snprintf(buf, sizeof(buf),
                 "%s{\"kind\": %s, \"advice\": \"MADV_%s\", \"backend\": %s, \"selected\": %s, "
                 "\"ranges\": %zu, \"range_bytes\": %zu, \"calls\": %zu, "
                 "\"ipi_rounds_per_call\": %.3f, \"ns_per_call\": %.1f, \"sibling\": %s}",
                 i ? ", " : "", json_string(r.kind).c_str(), r.advice,
                 json_string(r.backend).c_str(), json_string(r.selected).c_str(), r.ranges,
                 r.range_bytes, r.calls, r.ipi_per_call, r.ns_per_call, sibling ? "true" : "false");
        out += buf;
    }
    out += "]";
    if (skipped.empty())
        return out;
    out += ", \"memory_kinds_skipped\": [";
    for (size_t i = 0; i < skipped.size(); i++)
        out += std::string(i ? ", " : "") + "{\"kind\": " + json_string(skipped[i].kind) +
               ", \"advice\": \"MADV_" + skipped[i].advice +
               "\", \"reason\": " + json_string(skipped[i].reason) + "}";
    return out + "]";
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    static const option opts[] = {{"backends", required_argument, nullptr, 'b'},
                                  {"vlens", required_argument, nullptr, 'v'},
                                  {"sizes", required_argument, nullptr, 's'},
                                  {"ranges", required_argument, nullptr, 'r'},
                                  {"no-sibling", no_argument, nullptr, 'n'},
                                  {"json", required_argument, nullptr, 'j'},
                                  {"trace", required_argument, nullptr, 't'},
                                  {"overhead", no_argument, nullptr, 'O'},
                                  {"no-overhead", no_argument, nullptr, 'N'},
                                  {"memory-kinds", no_argument, nullptr, 'K'},
                                  {"no-memory-kinds", no_argument, nullptr, 'M'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    opterr = 0;
    int c;
    std::string backends_arg;
    bool only_overhead = false, only_kinds = false;
    while ((c = getopt_long(argc, argv, ":b:v:s:r:j:t:h", opts, nullptr)) != -1) {
        switch (c) {
        case 'b':
            backends_arg = optarg;
            break;
        case 'v':
            o.vlens = parse_sizes(optarg, "bad --vlens '%s'");
            o.vlens_given = true;
            break;
        case 's':
            o.sizes = parse_sizes(optarg, "bad --sizes '%s'");
            break;
        case 'r':
            o.ranges_per_config = parse_sizes(optarg, "bad --ranges '%s'").at(0);
            break;
        case 'n':
            o.sibling = false;
            break;
        case 'j':
            o.json = optarg;
            break;
        case 't':
            o.tracer = optarg;
            if (access(optarg, X_OK) != 0)
                die_usage("--trace '%s' is not an executable", optarg);
            break;
        case 'O':
            only_overhead = true;
            break;
        case 'N':
            o.overhead = false;
            break;
        case 'K':
            only_kinds = true;
            break;
        case 'M':
            o.kinds = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            die_usage("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt != 0 && strncmp(argv[optind - 1], "--", 2) == 0 &&
                strchr(argv[optind - 1], '=') != nullptr)
                die_usage("option '%s' takes no value", argv[optind - 1]);
            die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (only_overhead && !o.overhead)
        die_usage("%s", "--overhead and --no-overhead exclude each other");
    if (only_kinds && !o.kinds)
        die_usage("%s", "--memory-kinds and --no-memory-kinds exclude each other");
    if (only_overhead || only_kinds) {
        o.table = false;
        o.overhead = only_overhead;
        o.kinds = only_kinds;
    }
    if (!o.table && !o.tracer.empty())
        die_usage("%s is not traced: leave out --trace",
                  only_overhead ? "--overhead" : "--memory-kinds");
    if (!o.table && o.overhead)
        for (size_t v : o.vlens)
            if (v > MADVISEV_IOV_MAX) // the direct call's limit, UIO_MAXIOV
                die_usage("--overhead: vlen %s is above 1024, the most process_madvise(2) takes",
                          std::to_string(v).c_str());

    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (size_t s : o.sizes)
        if (s % page != 0)
            die_usage("range size %s is not a multiple of the page size",
                      std::to_string(s).c_str());

    if (backends_arg.empty()) {
        for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++)
            if (madvisev_backend_probe(b, nullptr) == 1)
                o.backends.push_back(b);
    } else {
        std::string s = backends_arg;
        size_t pos = 0;
        while (true) {
            size_t comma = s.find(',', pos);
            std::string name = s.substr(pos, comma == std::string::npos ? comma : comma - pos);
            int b = madvisev_backend_from_str(name.c_str());
            if (b < 0)
                die_usage("unknown backend '%s'", name.c_str());
            const char *why = nullptr;
            if (madvisev_backend_probe(b, &why) != 1) {
                fprintf(stderr, "madvisev-bench: backend %s not available: %s\n", name.c_str(),
                        why);
                return 1;
            }
            o.backends.push_back(b);
            if (comma == std::string::npos)
                break;
            pos = comma + 1;
        }
    }

    // Main thread on the first allowed CPU, sibling spinning on the second.
    std::vector<int> cpus = allowed_cpus();
    std::atomic<bool> stop{false};
    std::thread sibling;
    if (o.sibling && cpus.size() >= 2) {
        pin_to(cpus[0]);
        sibling = std::thread([&] {
            pin_to(cpus[1]);
            while (!stop.load(std::memory_order_relaxed))
                ;
        });
    } else if (o.sibling) {
        fprintf(stderr, "madvisev-bench: only one CPU allowed: no sibling thread\n");
    }

    const bool have_sibling = sibling.joinable();
    int64_t probe_tlb = madvisev_tools::tlb_shootdowns();
    printf("# madvisev-bench: MADV_DONTNEED, sibling thread %s, TLB counter %s\n",
           have_sibling ? "spinning on another CPU" : "none",
           probe_tlb < 0 ? "unavailable" : "/proc/interrupts");
    if (o.table)
        printf("%-16s %10s %6s %7s %14s %18s%s\n", "backend", "range", "vlen", "calls", "ns/range",
               "shootdowns/call",
               o.tracer.empty() ? "" : "  traced: syscalls/call ipi-rounds/call pages/call");
    std::vector<Record> records;
    bool all_ok = true;
    for (size_t size : o.table ? o.sizes : std::vector<size_t>{})
        for (size_t vlen : o.vlens)
            for (int b : o.backends) {
                Record r = run_one(b, vlen, size, o, page);
                all_ok &= r.ok;
                if (!r.ok)
                    continue;
                records.push_back(r);
                printf("%-16s %9zuK %6zu %7zu %14.1f %18.2f", r.backend, size / 1024, vlen, r.calls,
                       r.ns_per_range, r.shootdowns_per_call);
                if (r.traced_syscalls_per_call >= 0)
                    printf("  %21.2f %16.2f %10.2f", r.traced_syscalls_per_call,
                           r.traced_ipi_per_call, r.traced_pages_per_call);
                printf("\n");
                fflush(stdout);
            }

    // The overhead section: alone at --vlens (default 64,1024), or after the
    // table at the --vlens among 64 and 1024.
    std::vector<size_t> overhead_vlens;
    if (!o.table && o.overhead)
        overhead_vlens = o.vlens_given ? o.vlens : std::vector<size_t>{64, 1024};
    else if (o.overhead && o.tracer.empty())
        for (size_t v : {size_t{64}, size_t{1024}})
            if (std::find(o.vlens.begin(), o.vlens.end(), v) != o.vlens.end())
                overhead_vlens.push_back(v);
    if (o.overhead && !o.tracer.empty())
        printf("# overhead: left out under --trace (the tracer slows every system call)\n");
    if (!overhead_vlens.empty()) {
        const char *why = direct_unavailable(page);
        const char *backend = madvisev_backend_name();
        if (why != nullptr) {
            printf("# overhead: skipped: %s\n", why);
        } else if (madvisev_backend() < 0) {
            printf("# overhead: skipped: madvisev() has no backend (%s)\n", backend);
        } else {
            printf("# overhead: madvisev() (backend %s) against syscall(SYS_process_madvise, "
                   "PIDFD_SELF, iov, n, MADV_DONTNEED, 0) on the same %zu KiB ranges, dirtied "
                   "untimed before each call; ABBA rounds, medians per call\n",
                   backend, page / 1024);
            if (madvisev_backend() != MADVISEV_BACKEND_PROCESS_MADVISE)
                printf("# overhead: the library's backend is not process_madvise: the ratio "
                       "includes the difference between the two system calls\n");
            fflush(stdout);
        }
        for (size_t vlen :
             why == nullptr && madvisev_backend() >= 0 ? overhead_vlens : std::vector<size_t>{}) {
            Overhead r = run_overhead(vlen, o, page);
            all_ok &= r.ok;
            if (!r.ok)
                continue;
            printf(
                "overhead vlen=%zu: library %.2f us, direct %.2f us, ratio %.3f (goal <= %.2f%s), "
                "shootdowns/call %.2f vs %.2f (%zu ABBA rounds; per-round ratio, median: "
                "%.3f)\n",
                vlen, r.library_ns / 1000, r.direct_ns / 1000, r.ratio(), kOverheadGoal,
                r.ratio() <= kOverheadGoal ? ", holds" : ", MISSED", r.library_shootdowns,
                r.direct_shootdowns, r.rounds, r.paired_ratio);
            fflush(stdout);
            // Into the JSON: the automatic backend's row of this configuration,
            // made from the library's side of the section if the table lacks it.
            std::string json = overhead_json(r, backend);
            auto row = std::find_if(records.begin(), records.end(), [&](const Record &rec) {
                return strcmp(rec.backend, backend) == 0 && rec.vlen == vlen &&
                       rec.range_bytes == page;
            });
            if (row == records.end()) {
                Record rec{madvisev_backend_str(madvisev_backend()),
                           vlen,
                           page,
                           2 * r.rounds,
                           r.library_ns / static_cast<double>(vlen),
                           r.library_shootdowns,
                           true};
                records.push_back(rec);
                row = records.end() - 1;
            }
            row->overhead_json = json;
        }
    }

    // The memory-kinds section: alone, or after the others when the table
    // has 64 ranges of a page (the anon kind's vector).
    auto has = [](const std::vector<size_t> &v, size_t x) {
        return std::find(v.begin(), v.end(), x) != v.end();
    };
    if (o.kinds && o.table && !o.tracer.empty())
        printf("# memory kinds: left out under --trace (the tracer slows every system call)\n");
    if (o.kinds &&
        (!o.table || (o.tracer.empty() && has(o.vlens, kAnonRanges) && has(o.sizes, page)))) {
        std::vector<KindRecord> kinds;
        std::vector<KindSkipped> skipped;
        all_ok &= run_memory_kinds(o.backends, page, have_sibling, &kinds, &skipped);
        // Into the JSON: the row of the backend of the first anon row
        // (madvisev()'s when it has one), 64 ranges of a page, made from that
        // anon row if the table lacks it.
        auto anon = std::find_if(kinds.begin(), kinds.end(), [](const KindRecord &k) {
            return k.ranges == kAnonRanges && strcmp(k.advice, "DONTNEED") == 0;
        });
        if (anon != kinds.end() || !skipped.empty()) {
            const char *backend =
                anon != kinds.end() ? anon->selected.c_str() : madvisev_backend_name();
            auto row = std::find_if(records.begin(), records.end(), [&](const Record &rec) {
                return strcmp(rec.backend, backend) == 0 && rec.vlen == kAnonRanges &&
                       rec.range_bytes == page;
            });
            if (row == records.end() && anon != kinds.end()) {
                Record rec{madvisev_backend_str(madvisev_backend_from_str(backend)),
                           kAnonRanges,
                           page,
                           anon->calls,
                           anon->ns_per_call / static_cast<double>(kAnonRanges),
                           anon->ipi_per_call,
                           true};
                records.push_back(rec);
                row = records.end() - 1;
            }
            if (row != records.end())
                row->memory_kinds_json = memory_kinds_json(kinds, skipped, have_sibling);
        }
    }
    stop = true;
    if (sibling.joinable())
        sibling.join();

    if (!o.json.empty()) {
        FILE *f = fopen(o.json.c_str(), "w");
        if (f == nullptr) {
            fprintf(stderr, "madvisev-bench: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
        fprintf(f, "[\n");
        for (size_t i = 0; i < records.size(); i++) {
            const Record &r = records[i];
            fprintf(f,
                    "  {\"backend\": \"%s\", \"vlen\": %zu, \"range_bytes\": %zu, \"calls\": %zu, "
                    "\"ns_per_range\": %.1f, \"shootdowns_per_call\": %.3f, \"sibling\": %s",
                    r.backend, r.vlen, r.range_bytes, r.calls, r.ns_per_range,
                    r.shootdowns_per_call, have_sibling ? "true" : "false");
            if (r.traced_syscalls_per_call >= 0)
                fprintf(
                    f,
                    ", \"traced_syscalls_per_call\": %.3f, \"traced_ipi_rounds_per_call\": %.3f, "
                    "\"traced_pages_zapped_per_call\": %.3f",
                    r.traced_syscalls_per_call, r.traced_ipi_per_call, r.traced_pages_per_call);
            if (!r.overhead_json.empty())
                fprintf(f, ", \"overhead\": %s", r.overhead_json.c_str());
            if (!r.memory_kinds_json.empty())
                fprintf(f, ", %s", r.memory_kinds_json.c_str());
            fprintf(f, "}%s\n", i + 1 < records.size() ? "," : "");
        }
        fprintf(f, "]\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "madvisev-bench: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
    }
    return all_ok ? 0 : 1;
}
