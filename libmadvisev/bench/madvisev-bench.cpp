// SPDX-License-Identifier: MIT
// madvisev-bench: cost per range and TLB shootdowns per call of each
// backend, with a sibling thread of the process spinning on another CPU so
// that every flush really has to reach a second CPU.
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
                 "                        IPI rounds it attributes to each benchmark call\n"
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

// One configuration: vlen ranges of range_bytes each, one page apart so no
// two ranges are adjacent, dirtied before each call.
Record run_one(int backend, size_t vlen, size_t range_bytes, const Options &o, size_t page) {
    Record rec{madvisev_backend_str(backend), vlen, range_bytes, 0, 0, 0, false};
    size_t stride = range_bytes + page;
    size_t span = stride * vlen;
    char *base = static_cast<char *>(
        mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) {
        fprintf(stderr, "madvisev-bench: mmap %zu bytes: %s\n", span, strerror(errno));
        return rec;
    }
    // Keep THP out of the picture: 4 KiB pages, one zap per page.
    madvise(base, span, MADV_NOHUGEPAGE);
    std::vector<iovec> iov(vlen);
    for (size_t i = 0; i < vlen; i++)
        iov[i] = {base + i * stride, range_bytes};
    size_t calls = std::max(o.min_calls, o.ranges_per_config / vlen);
    std::chrono::nanoseconds spent{0};
    madvisev_tools::TraceClient tracer;
    if (!o.tracer.empty() && !tracer.start(o.tracer)) {
        munmap(base, span);
        return rec;
    }
    int64_t tlb_before = madvisev_tools::tlb_shootdowns();
    for (size_t c = 0; c < calls; c++) {
        for (size_t i = 0; i < vlen; i++)
            for (size_t off = 0; off < range_bytes; off += page)
                base[i * stride + off] = 1;
        auto t0 = std::chrono::steady_clock::now();
        ssize_t r = madvisev_via(backend, iov.data(), vlen, MADV_DONTNEED, 0);
        spent += std::chrono::steady_clock::now() - t0;
        if (r != static_cast<ssize_t>(vlen * range_bytes)) {
            fprintf(stderr, "madvisev-bench: %s: madvisev returned %zd: %s\n", rec.backend, r,
                    r < 0 ? strerror(errno) : "short count");
            munmap(base, span);
            return rec;
        }
    }
    int64_t tlb_after = madvisev_tools::tlb_shootdowns();
    munmap(base, span);
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
    printf("%-16s %10s %6s %7s %14s %18s%s\n", "backend", "range", "vlen", "calls", "ns/range",
           "shootdowns/call",
           o.tracer.empty() ? "" : "  traced: syscalls/call ipi-rounds/call pages/call");
    std::vector<Record> records;
    bool all_ok = true;
    for (size_t size : o.sizes)
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
