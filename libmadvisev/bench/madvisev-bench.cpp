// SPDX-License-Identifier: MIT
// madvisev-bench: cost per range and TLB shootdowns per call of each
// backend, with a sibling thread of the process spinning on another CPU so
// that every flush really has to reach a second CPU.  A second section,
// "overhead", sets madvisev() against the bare process_madvise(2) system
// call it makes on this kernel, on the same vector.
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "madvisev.h"
#include "tlb_stat.h"
#include "trace_client.h"

namespace {

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
    // Sections: the backend table and the overhead section (by default both;
    // --overhead runs only the latter, --no-overhead only the former).
    bool table = true, overhead = true;
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
                 "                        overhead section is left out: the tracer slows calls)\n"
                 "      --overhead        run only the overhead section: madvisev() (automatic\n"
                 "                        backend) against a direct process_madvise(PIDFD_SELF)\n"
                 "                        on the same vector of 4 KiB ranges, in interleaved ABBA\n"
                 "                        rounds, medians per call; at --vlens (default 64,1024).\n"
                 "                        The default run ends with it, at the --vlens among 64\n"
                 "                        and 1024; skipped where the kernel lacks PIDFD_SELF\n"
                 "                        (Linux < 6.15).  JSON: an \"overhead\" object in the\n"
                 "                        automatic backend's 4 KiB row of that vlen\n"
                 "      --no-overhead     run only the backend table\n"
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

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                cpus.push_back(c);
    return cpus;
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
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    opterr = 0;
    int c;
    std::string backends_arg;
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
            o.table = false;
            break;
        case 'N':
            o.overhead = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            die_usage("option '%s' needs a value", argv[optind - 1]);
        default:
            die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!o.table && !o.overhead)
        die_usage("%s", "--overhead and --no-overhead exclude each other");
    if (!o.table && !o.tracer.empty())
        die_usage("%s", "--overhead is not traced: leave out --trace");
    if (!o.table)
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
    if (!o.table)
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
