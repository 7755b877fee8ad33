// SPDX-License-Identifier: MIT
// madvisev-ipi-cost: what one TLB-shootdown round costs, the input of
// docs/scaling.md's model.  The main thread advises away one dirtied page
// per madvise(MADV_DONTNEED) call while 0, 1, ... other threads of the
// process spin, each pinned to its own CPU: every spinner is a CPU the
// flush must interrupt.  Per number of receivers it reports the sender's
// time per call, the shootdowns per call (the TLB row of /proc/interrupts,
// all CPUs) and what each receiver loses per IPI: how much less spinning
// it got done than when nobody sent it anything.
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cpus.h"
#include "tlb_stat.h"

namespace {

using madvisev_tools::allowed_cpus;
using madvisev_tools::pin_to;

using Clock = std::chrono::steady_clock;

struct Options {
    size_t calls = 20000;
    int max_receivers = -1; // -1: one per allowed CPU but the sender's
    std::string json;
};

struct Row {
    size_t receivers, calls;
    double ns_per_call, shootdowns_per_call, receiver_ns_per_ipi;
};

void usage(FILE *out) {
    fprintf(out,
            "Usage: madvisev-ipi-cost [options]\n"
            "Time madvise(MADV_DONTNEED) of one dirtied page per call with 0, 1, ... receivers\n"
            "(threads of the process spinning on other CPUs) and print, per receiver count, ns\n"
            "per call, TLB shootdowns per call and ns each receiver loses per IPI.\n"
            "  -c, --calls N          calls per receiver count (default 20000)\n"
            "  -r, --receivers N      at most N receivers (default: every other allowed CPU)\n"
            "  -j, --json FILE        also write the rows as a JSON array\n"
            "  -h, --help             this text\n");
}

[[noreturn]] void die(const std::string &msg) {
    fprintf(stderr, "madvisev-ipi-cost: %s (try --help)\n", msg.c_str());
    exit(2);
}

size_t parse_count(const char *arg, const char *what) {
    char *end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (*arg == '\0' || *arg == '-' || *end || errno || v > (1ULL << 30))
        die(std::string("bad ") + what + " '" + arg + "'");
    return v;
}

// Threads spinning on the given CPUs, each counting the rounds of a fixed
// loop it completes: an interrupt it takes is time it does not count.
class Spinners {
  public:
    explicit Spinners(const std::vector<int> &cpus) : counts_(cpus.size()) {
        for (size_t i = 0; i < cpus.size(); i++)
            threads_.emplace_back([this, i, cpu = cpus[i]] {
                pin_to(cpu);
                uint64_t n = 0;
                while (!stop_.load(std::memory_order_relaxed)) {
                    for (int k = 0; k < 64; k++)
                        asm volatile("" ::: "memory");
                    if ((++n & 63) == 0)
                        counts_[i].value.store(n, std::memory_order_relaxed);
                }
            });
    }
    ~Spinners() {
        stop_ = true;
        for (auto &t : threads_)
            t.join();
    }
    Spinners(const Spinners &) = delete;
    Spinners &operator=(const Spinners &) = delete;
    size_t size() const { return threads_.size(); }
    uint64_t count(size_t i) const { return counts_[i].value.load(std::memory_order_relaxed); }

  private:
    struct alignas(64) Count {
        std::atomic<uint64_t> value{0};
    };
    std::vector<Count> counts_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rounds each spinner completes per second while the sender sleeps 50 ms.
std::vector<double> idle_rates(const Spinners &s) {
    std::vector<uint64_t> c0(s.size());
    for (size_t i = 0; i < s.size(); i++)
        c0[i] = s.count(i);
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    double dt = seconds_since(t0);
    std::vector<double> rate(s.size());
    for (size_t i = 0; i < s.size(); i++)
        rate[i] = (s.count(i) - c0[i]) / dt;
    return rate;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// kPhases busy phases of calls / kPhases calls each, every one between two
// idle windows: a receiver's loss per IPI is judged against the rate it
// had just before and just after, so that a drift of the shared machine
// between phases does not count as IPI cost; the median over the phases.
constexpr int kPhases = 7;

bool measure(size_t receivers, const std::vector<int> &cpus, size_t calls, char *page,
             size_t page_bytes, Row *row) {
    Spinners spin(std::vector<int>(cpus.begin() + 1, cpus.begin() + 1 + receivers));
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // let them start
    std::vector<double> before = idle_rates(spin), per_ipi;
    std::chrono::nanoseconds in_calls{0};
    double shootdowns = 0;
    bool counted = true;
    size_t done = 0;
    for (int phase = 0; phase < kPhases; phase++) {
        size_t n_calls = calls / kPhases + (static_cast<size_t>(phase) < calls % kPhases ? 1 : 0);
        std::vector<uint64_t> c0(spin.size());
        for (size_t i = 0; i < spin.size(); i++)
            c0[i] = spin.count(i);
        int64_t tlb0 = madvisev_tools::tlb_shootdowns();
        auto t0 = Clock::now();
        for (size_t n = 0; n < n_calls; n++) {
            page[0] = 1; // present and dirty: the call must zap it and flush
            auto c = Clock::now();
            if (madvise(page, page_bytes, MADV_DONTNEED) != 0) {
                fprintf(stderr, "madvisev-ipi-cost: madvise: %s\n", strerror(errno));
                return false;
            }
            in_calls += Clock::now() - c;
        }
        double elapsed = seconds_since(t0);
        std::vector<uint64_t> c1(spin.size());
        for (size_t i = 0; i < spin.size(); i++)
            c1[i] = spin.count(i);
        int64_t tlb1 = madvisev_tools::tlb_shootdowns();
        std::vector<double> after = idle_rates(spin);
        done += n_calls;
        if (tlb0 < 0 || tlb1 < 0) {
            counted = false;
            before = after;
            continue;
        }
        double ipis = static_cast<double>(tlb1 - tlb0);
        shootdowns += ipis;
        double lost_ns = 0;
        for (size_t i = 0; i < spin.size(); i++) {
            double rate = (before[i] + after[i]) / 2;
            if (rate > 0)
                lost_ns += (rate * elapsed - static_cast<double>(c1[i] - c0[i])) / rate * 1e9;
        }
        if (receivers > 0 && ipis > 0)
            per_ipi.push_back(lost_ns / ipis);
        before = after;
    }
    *row = {receivers, done, static_cast<double>(in_calls.count()) / static_cast<double>(done),
            counted ? shootdowns / static_cast<double>(done) : -1, median(per_ipi)};
    return true;
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    static const option opts[] = {{"calls", required_argument, nullptr, 'c'},
                                  {"receivers", required_argument, nullptr, 'r'},
                                  {"json", required_argument, nullptr, 'j'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:r:j:h", opts, nullptr)) != -1) {
        switch (c) {
        case 'c':
            o.calls = parse_count(optarg, "--calls");
            if (o.calls == 0)
                die("--calls must be at least 1");
            break;
        case 'r':
            o.max_receivers = static_cast<int>(parse_count(optarg, "--receivers"));
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            die(std::string("option '") + argv[optind - 1] + "' needs a value");
        default:
            die(std::string("unknown option '") + argv[optind - 1] + "'");
        }
    }
    if (optind < argc)
        die(std::string("unexpected argument '") + argv[optind] + "'");

    std::vector<int> cpus = allowed_cpus();
    if (cpus.empty())
        die("no allowed CPU");
    size_t most = cpus.size() - 1;
    if (o.max_receivers >= 0)
        most = std::min(most, static_cast<size_t>(o.max_receivers));
    const size_t page_bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *m = mmap(nullptr, page_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "madvisev-ipi-cost: mmap: %s\n", strerror(errno));
        return 1;
    }
    pin_to(cpus[0]);
    printf("# madvisev-ipi-cost: madvise(MADV_DONTNEED) of one dirtied page, %zu calls per row; "
           "receivers: threads spinning on other CPUs; TLB counter %s\n",
           o.calls, madvisev_tools::tlb_shootdowns() < 0 ? "unavailable" : "/proc/interrupts");
    printf("%9s %12s %16s %20s\n", "receivers", "ns/call", "shootdowns/call", "receiver-ns/IPI");
    std::vector<Row> rows;
    for (size_t k = 0; k <= most; k++) {
        Row r;
        if (!measure(k, cpus, o.calls, static_cast<char *>(m), page_bytes, &r))
            return 1;
        printf("%9zu %12.1f %16.3f %20.1f\n", r.receivers, r.ns_per_call, r.shootdowns_per_call,
               r.receiver_ns_per_ipi);
        fflush(stdout);
        rows.push_back(r);
    }
    munmap(m, page_bytes);
    if (!o.json.empty()) {
        FILE *f = fopen(o.json.c_str(), "w");
        if (f == nullptr) {
            fprintf(stderr, "madvisev-ipi-cost: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
        fprintf(f, "[\n");
        for (size_t i = 0; i < rows.size(); i++) {
            const Row &r = rows[i];
            fprintf(f,
                    "  {\"receivers\": %zu, \"cpus\": %zu, \"calls\": %zu, \"ns_per_call\": %.1f, "
                    "\"shootdowns_per_call\": %.3f, \"receiver_ns_per_ipi\": %.1f}%s\n",
                    r.receivers, cpus.size(), r.calls, r.ns_per_call, r.shootdowns_per_call,
                    r.receiver_ns_per_ipi, i + 1 < rows.size() ? "," : "");
        }
        fprintf(f, "]\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "madvisev-ipi-cost: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
    }
    return 0;
}
