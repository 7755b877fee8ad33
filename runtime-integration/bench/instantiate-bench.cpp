// SPDX-License-Identifier: MIT
// instantiate-bench: the seed's workload.  Each thread loops: instantiate
// the wasm2c-compiled echo module, run its init (dirtying N pages of
// linear memory) and echo() on a fiber, free.  Every allocation strategy
// runs in the same process, one after the other, side by side.  With --module, a
// WASI program in C (runtime-integration/wasi) instead: instantiate, its
// _start on a fiber, its stdout checked, free.
#include <getopt.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "echo.h"
#include "madvisev.hpp"
#include "pool_testing.h"
#include "programs.h"
#include "tlb_stat.h"
#include "trace_client.h"
#include "wasm-rt-impl.h"
#include "wasmpool/fiber.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasi.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kStackBytes = 64 << 10;
constexpr size_t kMemoryBytes = 17 * 65536; // echo.wat's memory

struct Strategy {
    std::string name;
    bool stock = false;
    wasmpool::Config cfg;
    bool insecure = false;
    bool emulate_zero = false; // libmadvisev emulates MADVISEV_ZERO even where the kernel has it
};

struct Options {
    std::vector<size_t> threads{1, 2};
    std::vector<size_t> dirty{4, 16, 256};
    double seconds = 1.0;
    size_t repeat = 1; // runs of every row, interleaved
    size_t batch = 32;
    std::vector<std::string> strategies; // empty: all
    std::string json;
    std::string tracer; // madvisev-trace, run on this process per measurement
    size_t budget = 0;  // pool-adaptive's resident budget (0: the pool's default)
    std::vector<std::string> modules{"echo"};
};

// What each iteration runs: the echo module (init dirties N pages, then
// echo) or a WASI program from runtime-integration/wasi (its _start, its
// stdout checked against a reference run).
struct Module {
    std::string name;
    const wasmpool::wasi_programs::Program *prog = nullptr; // nullptr: echo
    size_t memory_bytes = kMemoryBytes; // its largest memory: keep-resident keeps it all
    std::string expected;               // a WASI program's stdout
};

struct Result {
    std::string strategy;
    size_t threads, dirty, batch;
    double per_s, shootdowns, efficiency = -1;
    long long resident;
    size_t pool_resident = 0, budget = 0;
    double p50, p99;
    uint64_t instances, quarantined = 0;
    double decommits = 0; // slots decommitted per instantiation (3 slots each)
    double faults = -1;   // page faults (minor + major) per instantiation, timed part
    bool insecure;
    // From madvisev-trace, per instantiation: madvise-family system calls,
    // the IPI rounds they sent, the pages they zapped (-1: not counted on
    // this kernel), and the flushes outside them (munmap, copy-on-write).
    bool traced = false;
    double t_syscalls = 0, t_ipi = 0, t_pages = -1, t_other_flushes = 0;
    std::string module = "echo"; // dirty is 0 for a WASI program: it decides
    // Pages of the instance's memory and fiber stack holding data just
    // before free, from an untimed pass after the timed one (-1: unknown).
    double memory_dirtied = -1, stack_dirtied = -1;
    // Per instantiation, timed part, in ns: the process's CPU time (user,
    // system), and where the pool spent its time (Stats::*_ns; -1: stock).
    double user_ns = -1, sys_ns = -1;
    double reset_ns = -1, scan_ns = -1, zero_ns = -1, decommit_ns = -1, flusher_ns = -1;
    // Untimed instantiations before the clock started (twice the pool's
    // slots: every slot used and freed), and whether the timed part
    // covered fewer than ten batches per thread (a row that measures cold
    // slots, not the steady state).
    uint64_t warmup = 0;
    bool short_run = false;
    // Over --repeat runs: instantiations/s of each run, in the order run,
    // a 95% bootstrap interval of their median, and the runs that were
    // short.  The other figures are the medians over the runs.
    std::vector<double> per_s_runs;
    std::vector<uint64_t> instances_runs;
    double ci_lo = 0, ci_hi = 0;
    size_t short_runs = 0;
};

void usage(FILE *out) {
    fprintf(out,
            "Usage: instantiate-bench [options]\n"
            "Instantiate, run and free a wasm2c module (echo: init and call; a WASI program:\n"
            "its _start) on N threads, per allocation strategy; print instantiations/s,\n"
            "scaling, TLB shootdowns and pages dirtied per instantiation, resident memory\n"
            "and latency.\n"
            "  -t, --threads LIST      thread counts (default 1,2)\n"
            "  -m, --module LIST       what each iteration runs (default echo): echo, or a WASI\n"
            "                          program (request, compress, grow: its _start, stdout\n"
            "                          checked); each row also gets the pages of memory and\n"
            "                          stack holding data at free, from an untimed pass\n"
            "  -d, --dirty-pages LIST  4 KiB pages echo's init() dirties (default 4,16,256; at\n"
            "                          most 272); a WASI program dirties what it dirties\n"
            "  -s, --seconds S         per measurement (default 1), timed after a warm-up of\n"
            "                          twice the pool's slots; a run under 10 batches per\n"
            "                          thread is marked SHORT\n"
            "  -R, --repeat N          runs of every row (default 1), the strategies of a row\n"
            "                          set interleaved, in reverse order every other round;\n"
            "                          each figure is the median over the runs, the rate with\n"
            "                          a 95%% bootstrap interval\n"
            "  -b, --batch-size N      instances per decommit batch (default 32)\n"
            "  -S, --strategy LIST     strategies (default: all the kernel supports):\n"
            "                          stock, pool-madvise-each and pool-resident-scan (the\n"
            "                          policies of Wasmtime's default and best pooling\n"
            "                          configurations, reimplemented on this pool; real\n"
            "                          Wasmtime is peers/wasmtime-bench), pool-immediate,\n"
            "                          pool-global-queue,\n"
            "                          pool-sharded-<backend> (pool-sharded-auto: the one\n"
            "                          detection picks), pool-sharded-inline,\n"
            "                          pool-keep-resident, pool-adaptive, pool-zero-in-place\n"
            "                          (one madvisev(MADVISEV_ZERO) per batch: the kernel's\n"
            "                          in-place clear where it has one, else libmadvisev's\n"
            "                          emulation), pool-zero-emulated (the emulation forced),\n"
            "                          pool-zero-inline (one call per instance, by the thread\n"
            "                          that frees it),\n"
            "                          pool-adaptive/no-stacks (the default, fiber stacks not\n"
            "                          reset), unsafe-no-reset; a pool strategy's NAME/stacks\n"
            "                          or NAME/no-stacks resets its fiber stacks, or does not\n"
            "  -j, --json FILE         also write the records as JSON\n"
            "  -T, --trace TRACER      run TRACER (madvisev-trace, needs root) on this process\n"
            "                          per measurement and print its figures per instantiation\n"
            "  -r, --resident-budget BYTES\n"
            "                          pool-adaptive's resident budget (suffix K, M, G); below\n"
            "                          the pool's dirty memory it forces decommits, and the\n"
            "                          run ends with adaptive against the best fixed strategy\n"
            "  -h, --help              this text\n");
}

[[noreturn]] void die(const std::string &msg) {
    fprintf(stderr, "instantiate-bench: %s (try --help)\n", msg.c_str());
    exit(2);
}

std::vector<std::string> split(const std::string &s) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (true) {
        size_t c = s.find(',', pos);
        out.push_back(s.substr(pos, c == std::string::npos ? c : c - pos));
        if (c == std::string::npos)
            return out;
        pos = c + 1;
    }
}

std::vector<size_t> parse_list(const char *arg, const char *what, size_t max) {
    std::vector<size_t> out;
    for (const std::string &tok : split(arg)) {
        char *end = nullptr;
        errno = 0;
        unsigned long long v = strtoull(tok.c_str(), &end, 10);
        if (tok.empty() || tok[0] == '-' || *end || errno || v == 0 || v > max)
            die(std::string("bad ") + what + " '" + arg + "'");
        out.push_back(v);
    }
    return out;
}

std::vector<Strategy> all_strategies(size_t batch, size_t budget) {
    std::vector<Strategy> s;
    // stock has no pool; it warms up as a pool with --batch-size would.
    wasmpool::Config none;
    none.batch_size = batch;
    s.push_back({"stock", true, none, false});
    // pool-madvise-each: the policy of Wasmtime's pooling allocator as
    // configured by default, on this pool (not Wasmtime): every memory
    // and table decommitted when freed, by the thread that frees it
    // (decommit_batch_size 1: one madvise per slot), nothing kept resident,
    // stacks not reset (async_stack_zeroing off).  Per-thread shards: the
    // pool flushes one shard's queue at a time, while Wasmtime's threads
    // decommit side by side, outside its allocator lock.
    wasmpool::Config w;
    w.stack_bytes = kStackBytes;
    w.reset = wasmpool::Reset::decommit;
    w.batch_size = 1;
    w.background_flush = false;
    w.backend = MADVISEV_BACKEND_SEQUENTIAL;
    w.reset_stacks = false;
    s.push_back({"pool-madvise-each", false, w, false});
    // pool-resident-scan: the policy of its best configuration today, on
    // this pool: memory_keep_resident and
    // table_keep_resident covering the whole slot with pagemap_scan (only
    // the pages written are zeroed), decommit_batch_size 32 through
    // process_madvise(PIDFD_SELF) where the kernel takes MADV_DONTNEED
    // there (else one madvise per range, as Wasmtime falls back) by the
    // thread whose release fills the batch, per-thread shards, stacks not
    // reset.
    w.reset = wasmpool::Reset::keep_resident;
    w.keep_resident_scan = true;
    w.keep_resident_bytes = kMemoryBytes;
    w.batch_size = batch;
    w.backend = madvisev_backend_probe(MADVISEV_BACKEND_PROCESS_MADVISE, nullptr) == 1
                    ? MADVISEV_BACKEND_PROCESS_MADVISE
                    : MADVISEV_BACKEND_SEQUENTIAL;
    s.push_back({"pool-resident-scan", false, w, false});
    wasmpool::Config c;
    c.stack_bytes = kStackBytes;
    c.reset = wasmpool::Reset::decommit;
    c.batch_size = 1;
    c.backend = MADVISEV_BACKEND_SEQUENTIAL;
    s.push_back({"pool-immediate", false, c, false});
    c.batch_size = batch;
    c.backend = MADVISEV_BACKEND_AUTO;
    c.sharded = false;
    s.push_back({"pool-global-queue", false, c, false});
    c.sharded = true;
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++) {
        if (madvisev_backend_probe(b, nullptr) != 1)
            continue;
        c.backend = b;
        std::string name = madvisev_backend_str(b);
        std::replace(name.begin(), name.end(), '_', '-');
        s.push_back({"pool-sharded-" + name, false, c, false});
    }
    // As pool-sharded with the automatic backend, but each full queue is
    // flushed by the release() that fills it, on the request path.
    c.backend = MADVISEV_BACKEND_AUTO;
    c.background_flush = false;
    s.push_back({"pool-sharded-inline", false, c, false});
    wasmpool::Config k;
    k.stack_bytes = kStackBytes;
    k.reset = wasmpool::Reset::keep_resident;
    k.keep_resident_bytes = kMemoryBytes; // all of it: memset only
    k.stack_keep_resident_bytes = kStackBytes;
    k.batch_size = batch;
    s.push_back({"pool-keep-resident", false, k, false});
    wasmpool::Config a;
    a.stack_bytes = kStackBytes;
    a.batch_size = batch;
    a.resident_budget_bytes = budget;
    s.push_back({"pool-adaptive", false, a, false});
    // The default with its fiber stacks left as the last tenant left them,
    // as Wasmtime's policies leave them: what resetting them costs.
    a.reset_stacks = false;
    s.push_back({"pool-adaptive/no-stacks", false, a, false});
    wasmpool::Config z;
    z.stack_bytes = kStackBytes;
    z.reset = wasmpool::Reset::zero_in_place;
    z.batch_size = batch;
    s.push_back({"pool-zero-in-place", false, z, false});
    s.push_back({"pool-zero-emulated", false, z, false, true});
    // A clear needs no IPI, so nothing asks for a batch but the system
    // call's cost: each instance's slots cleared by the thread that frees
    // it, while their lines are still in its cache.
    z.batch_size = 1;
    z.background_flush = false;
    s.push_back({"pool-zero-inline", false, z, false});
    wasmpool::Config n;
    n.stack_bytes = kStackBytes;
    s.push_back({"unsafe-no-reset", false, n, true});
    return s;
}

long long rss_bytes() {
    std::ifstream f("/proc/self/statm");
    long long size = 0, resident = 0;
    f >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

struct ThreadOut {
    uint64_t count = 0, wrong = 0;
    std::atomic<uint64_t> all{0}; // warm-up included, read by the main thread
    std::vector<uint32_t> lat_ns;
    // One iteration, begun at @t0, is done; it counts once the clock runs.
    void note(Clock::time_point t0, bool timed) {
        all.fetch_add(1, std::memory_order_relaxed);
        if (!timed)
            return;
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
        if (lat_ns.size() < (size_t{4} << 20))
            lat_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(ns.count(), UINT32_MAX)));
        count++;
    }
};

// A Boost.Context stack allocator that notes where the stack it hands out
// lies, for the page scan.
template <class Alloc>
struct NotedStack {
    Alloc inner;
    boost::context::stack_context *noted;
    boost::context::stack_context allocate() { return *noted = inner.allocate(); }
    void deallocate(boost::context::stack_context &sctx) noexcept { inner.deallocate(sctx); }
};

// Pages of [base, base + len) that hold data just now: swapped out, or
// present (not the zero page, says PAGEMAP_SCAN) with a byte that is not
// zero: a page an in-place reset zeroed for an earlier tenant stays
// present, and only its content tells that this instance left it alone.
// -1 where the system cannot say.
double data_pages(const void *base, size_t len) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    std::vector<madvisev_page_run> runs;
    if (madv::scan_data(base, len, runs) != 0)
        return -1;
    size_t pages = 0;
    for (const madvisev_page_run &r : runs) {
        if (r.flags & MADVISEV_RUN_SWAPPED) {
            pages += r.length / page;
            continue;
        }
        const auto *p = static_cast<const unsigned char *>(base) + r.offset;
        for (size_t off = 0; off < r.length; off += page)
            pages += std::any_of(p + off, p + off + page, [](unsigned char c) { return c != 0; });
    }
    return static_cast<double>(pages);
}

// One WASI instance per thread: its storage, its context.
struct WasiRunner {
    explicit WasiRunner(const Module &m)
        : mod(m), inst(m.prog->instance_bytes / sizeof(std::max_align_t) + 1),
          ctx(wasmpool::wasi_programs::make_context(*m.prog)) {
        if (!ctx) {
            fprintf(stderr, "instantiate-bench: %s: no WASI context: %s\n", m.name.c_str(),
                    strerror(errno));
            exit(1);
        }
    }
    ~WasiRunner() { wasmpool_wasi_destroy(ctx); }
    WasiRunner(const WasiRunner &) = delete;
    WasiRunner &operator=(const WasiRunner &) = delete;

    void instantiate() {
        mod.prog->instantiate(inst.data(), ctx);
        wasmpool_wasi_bind_memory(ctx, memory());
    }
    wasm_rt_memory_t *memory() { return mod.prog->memory(inst.data()); }
    // On the stack the guest runs on: _start, then whether it printed
    // what the reference run did.  A trap is caught and counts as wrong.
    bool start() {
        if (wasm_rt_impl_try() != 0)
            return false;
        uint32_t status = wasmpool_wasi_run(ctx, mod.prog->start, inst.data());
        size_t len = 0;
        const char *out = wasmpool_wasi_output(ctx, 1, &len);
        return status == 0 && std::string_view(out, len) == mod.expected;
    }
    void free() {
        mod.prog->free(inst.data());
        wasmpool_wasi_reset(ctx);
    }

    const Module &mod;
    std::vector<std::max_align_t> inst;
    wasmpool_wasi_t *ctx;
};

// The untimed pass: @rounds instantiations on this thread, each scanned
// just before free; sets r.memory_dirtied and r.stack_dirtied (averages).
void measure_dirtied(const Module &mod, size_t dirty, wasmpool::Pool *pool, Result &r) {
    constexpr int kRounds = 8;
    wasm_rt_pooled_set_module(1);
    double mem = 0, stack = 0;
    for (int i = 0; i < kRounds; i++) {
        boost::context::stack_context sctx{};
        double m = -1, s = -1;
        std::optional<WasiRunner> wasi;
        Z_echo_instance_t echo;
        wasm_rt_memory_t *memory;
        if (mod.prog) {
            wasi.emplace(mod);
            wasi->instantiate();
            memory = wasi->memory();
        } else {
            Z_echo_instantiate(&echo);
            memory = Z_echoZ_memory(&echo);
        }
        bool ok = true;
        auto body = [&] {
            if (mod.prog) {
                ok = wasi->start();
            } else {
                Z_echoZ_init(&echo, static_cast<uint32_t>(dirty));
                ok = Z_echoZ_echo(&echo, 1, 2) == 1;
            }
            if (sctx.sp) // not under TSan, which runs the body on this thread's stack
                s = data_pages(static_cast<char *>(sctx.sp) - sctx.size, sctx.size);
        };
        if (pool)
            wasmpool::run_on_fiber(
                NotedStack<wasmpool::PooledStack>{wasmpool::PooledStack(*pool, 1), &sctx}, body);
        else
            wasmpool::run_on_fiber(
                NotedStack<boost::context::protected_fixedsize_stack>{
                    boost::context::protected_fixedsize_stack(kStackBytes), &sctx},
                body);
        if (!ok) {
            fprintf(stderr, "instantiate-bench: %s: wrong result in the page-scan pass\n",
                    mod.name.c_str());
            exit(1);
        }
        m = data_pages(memory->data, memory->size);
        if (mod.prog)
            wasi->free();
        else
            Z_echo_free(&echo);
        // Once unknown (-1), unknown for the row.
        mem = m < 0 || mem < 0 ? -1 : mem + m;
        stack = s < 0 || stack < 0 ? -1 : stack + s;
    }
    r.memory_dirtied = mem < 0 ? -1 : mem / kRounds;
    r.stack_dirtied = stack < 0 ? -1 : stack / kRounds;
}

// A WASI program once, through the stock runtime on a fiber stack as
// small as the benchmark's: its stdout becomes the reference every
// iteration must print, its memory size keep-resident's extent.
void reference_run(Module &m) {
    wasm_rt_pooled_use_stock();
    WasiRunner w(m);
    w.instantiate();
    uint32_t status = 0;
    int trap = 0;
    wasmpool::run_on_fiber(boost::context::protected_fixedsize_stack(kStackBytes), [&] {
        trap = wasm_rt_impl_try();
        if (trap == 0)
            status = wasmpool_wasi_run(w.ctx, m.prog->start, w.inst.data());
    });
    size_t out_len = 0, err_len = 0;
    const char *out = wasmpool_wasi_output(w.ctx, 1, &out_len);
    const char *err = wasmpool_wasi_output(w.ctx, 2, &err_len);
    if (trap || status != 0 || out_len == 0) {
        fprintf(stderr, "instantiate-bench: %s: the reference run %s%s: %.*s\n", m.name.c_str(),
                trap ? "trapped: " : "failed", trap ? wasm_rt_strerror(wasm_rt_trap_t(trap)) : "",
                static_cast<int>(err_len), err);
        exit(1);
    }
    m.expected.assign(out, out_len);
    m.memory_bytes = w.memory()->size;
    w.free();
}

Result run(const Strategy &st, const Module &mod, size_t threads, size_t dirty, double seconds,
           const std::string &tracer_path) {
    std::unique_ptr<wasmpool::Pool> pool;
    // Before the pool exists, until after its last reset (the untimed pass).
    int was_emulating = madvisev_zero_force_emulation(st.emulate_zero ? 1 : 0);
    // Each thread's batch and a few in flight, of each kind; stock, which
    // has no pool, warms up as long as a pool of this size would.
    const size_t slots = threads * (st.cfg.batch_size + 8) + 8;
    if (st.stock) {
        wasm_rt_pooled_use_stock();
    } else {
        wasmpool::Config c = st.cfg;
        if (c.reset == wasmpool::Reset::keep_resident)
            c.keep_resident_bytes = mod.memory_bytes; // all of it: memset only
        c.memory_slots = c.table_slots = c.stack_slots = slots;
        c.shards = threads;
        // A pool this machine cannot reserve (address space, RLIMIT_AS) is
        // a refusal to report, not a crash.
        try {
            pool = std::make_unique<wasmpool::Pool>(c);
        } catch (const std::exception &e) {
            fprintf(stderr, "instantiate-bench: %s: %s (%zu slots of each kind)\n", st.name.c_str(),
                    e.what(), c.memory_slots);
            exit(1);
        }
        if (st.insecure)
            wasmpool::testing::skip_resets_INSECURE(*pool);
        wasm_rt_pooled_set_pool(pool.get());
    }
    long long rss0 = rss_bytes();
    // Every slot used and freed twice before the clock starts.
    const uint64_t warmup = 2 * slots;
    std::atomic<bool> go{false}, stop{false}, timing{false};
    std::atomic<size_t> ready{0};
    // The count ends when every worker has stopped, before any exits: a
    // thread's exit gives its stack back with MADV_DONTNEED, and an
    // in-place clear that overlaps that gather has to flush.
    std::latch finished(static_cast<ptrdiff_t>(threads)), release(1);
    std::vector<ThreadOut> out(threads);
    std::vector<std::thread> ts;
    for (size_t t = 0; t < threads; t++)
        ts.emplace_back([&, t] {
            ThreadOut &o = out[t];
            o.lat_ns.reserve(1 << 20);
            wasm_rt_pooled_set_module(1);
            std::optional<WasiRunner> wasi;
            if (mod.prog)
                wasi.emplace(mod);
            // A WASI program: instantiate, _start on a fiber, output checked, free.
            auto wasi_once = [&] {
                wasi->instantiate();
                bool ok = false;
                auto start = [&] { ok = wasi->start(); };
                if (pool)
                    wasmpool::run_on_fiber(wasmpool::PooledStack(*pool, 1), start);
                else
                    wasmpool::run_on_fiber(boost::context::protected_fixedsize_stack(kStackBytes),
                                           start);
                wasi->free();
                return ok;
            };
            ready++;
            while (!go.load())
                ;
            while (!stop.load(std::memory_order_relaxed)) {
                auto t0 = Clock::now();
                bool timed = timing.load(std::memory_order_relaxed);
                if (wasi) {
                    o.wrong += !wasi_once();
                    o.note(t0, timed);
                    continue;
                }
                Z_echo_instance_t inst;
                Z_echo_instantiate(&inst);
                // No look at the memory before init writes it: reading a
                // decommitted page maps the zero page, and the write after
                // it would cost a copy-on-write TLB flush (an IPI) that the
                // strategies themselves do not cause.  The tests check
                // isolation instead.
                uint32_t r = 0;
                auto body = [&] {
                    Z_echoZ_init(&inst, static_cast<uint32_t>(dirty));
                    r = Z_echoZ_echo(&inst, 1, 2);
                };
                if (pool)
                    wasmpool::run_on_fiber(wasmpool::PooledStack(*pool, 1), body);
                else
                    wasmpool::run_on_fiber(boost::context::protected_fixedsize_stack(kStackBytes),
                                           body);
                o.wrong += r != 1;
                Z_echo_free(&inst);
                o.note(t0, timed);
            }
            finished.count_down();
            release.wait();
        });
    while (ready.load() < threads)
        std::this_thread::yield();
    go = true;
    // At most a minute: a row too slow to warm up is measured as it is,
    // and its warm-up count says so.
    uint64_t warmed = 0;
    for (auto until = Clock::now() + std::chrono::seconds(60); Clock::now() < until;) {
        warmed = 0;
        for (auto &o : out)
            warmed += o.all.load(std::memory_order_relaxed);
        if (warmed >= warmup)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    madvisev_tools::TraceClient tracer;
    if (!tracer_path.empty() && !tracer.start(tracer_path)) {
        stop = go = true;
        release.count_down();
        for (auto &t : ts)
            t.join();
        fprintf(stderr, "instantiate-bench: --trace: cannot trace %s\n", st.name.c_str());
        exit(1);
    }
    int64_t tlb0 = madvisev_tools::tlb_shootdowns();
    rusage ru0{}, ru1{};
    bool faults_known = getrusage(RUSAGE_SELF, &ru0) == 0;
    wasmpool::Stats pool0;
    if (pool)
        pool0 = pool->stats();
    auto start = Clock::now();
    timing = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    finished.wait();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    int64_t tlb1 = madvisev_tools::tlb_shootdowns();
    faults_known = faults_known && getrusage(RUSAGE_SELF, &ru1) == 0;
    wasmpool::Stats pool1;
    if (pool)
        pool1 = pool->stats();
    release.count_down();
    for (auto &t : ts)
        t.join();
    madvisev_tools::TraceReport report;
    if (tracer.running() && !tracer.stop(&report)) {
        fprintf(stderr, "instantiate-bench: no report from %s\n", tracer_path.c_str());
        exit(1);
    }

    Result r{};
    r.strategy = st.name;
    r.threads = threads;
    r.module = mod.name;
    r.dirty = mod.prog ? 0 : dirty;
    r.batch = st.stock ? 0 : st.cfg.batch_size;
    r.insecure = st.insecure;
    std::vector<uint32_t> lat;
    uint64_t wrong = 0;
    for (auto &o : out) {
        r.instances += o.count;
        wrong += o.wrong;
        lat.insert(lat.end(), o.lat_ns.begin(), o.lat_ns.end());
    }
    if (wrong) {
        fprintf(stderr, "instantiate-bench: %s: %s %llu times\n", st.name.c_str(),
                mod.prog ? (mod.name + " trapped or printed other than its reference run").c_str()
                         : "echo() returned other than 1",
                static_cast<unsigned long long>(wrong));
        exit(1);
    }
    r.per_s = static_cast<double>(r.instances) / elapsed;
    r.warmup = warmed;
    // Each thread's shard frees batch_size instances per batch.
    r.short_run = !st.stock && r.instances < 10 * r.batch * threads;
    if (faults_known && r.instances) {
        auto ns = [](const timeval &a, const timeval &b) {
            return static_cast<double>(b.tv_sec - a.tv_sec) * 1e9 +
                   static_cast<double>(b.tv_usec - a.tv_usec) * 1e3;
        };
        r.user_ns = ns(ru0.ru_utime, ru1.ru_utime) / static_cast<double>(r.instances);
        r.sys_ns = ns(ru0.ru_stime, ru1.ru_stime) / static_cast<double>(r.instances);
    }
    if (pool && r.instances) {
        auto per = [&](uint64_t a, uint64_t b) {
            return static_cast<double>(b - a) / static_cast<double>(r.instances);
        };
        r.reset_ns = per(pool0.reset_ns, pool1.reset_ns);
        r.scan_ns = per(pool0.scan_ns, pool1.scan_ns);
        r.zero_ns = per(pool0.zero_ns, pool1.zero_ns);
        r.decommit_ns = per(pool0.decommit_ns, pool1.decommit_ns);
        r.flusher_ns = per(pool0.flusher_cpu_ns, pool1.flusher_cpu_ns);
    }
    if (faults_known && r.instances)
        r.faults =
            static_cast<double>((ru1.ru_minflt - ru0.ru_minflt) + (ru1.ru_majflt - ru0.ru_majflt)) /
            static_cast<double>(r.instances);
    r.shootdowns = tlb0 < 0 || r.instances == 0
                       ? -1
                       : static_cast<double>(tlb1 - tlb0) / static_cast<double>(r.instances);
    if (!tracer_path.empty() && r.instances) {
        auto all = report.total();
        double n = static_cast<double>(r.instances);
        r.traced = true;
        r.t_syscalls = all.calls / n;
        r.t_ipi = all.ipi_rounds / n;
        r.t_pages = all.pages_zapped < 0 ? -1 : all.pages_zapped / n;
        r.t_other_flushes = report.flushes_outside_calls / n;
    }
    r.resident = std::max(0LL, rss_bytes() - rss0);
    auto pct = [&](double q) -> double {
        if (lat.empty())
            return 0;
        size_t k =
            std::min(lat.size() - 1, static_cast<size_t>(q * static_cast<double>(lat.size())));
        std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
        return lat[k];
    };
    r.p50 = pct(0.50);
    r.p99 = pct(0.99);
    if (pool) {
        pool->flush(true);
        auto s = pool->stats();
        r.quarantined = s.quarantined;
        r.pool_resident = s.resident_bytes;
        r.budget = s.resident_budget;
        // Over every instantiation, warm-up included: the timed part's
        // alone would race with the instances in flight when it began.
        uint64_t all = 0;
        for (auto &o : out)
            all += o.all.load(std::memory_order_relaxed);
        r.decommits = all ? static_cast<double>(s.decommitted) / static_cast<double>(all) : 0;
    }
    measure_dirtied(mod, dirty, pool.get(), r); // after the stats: not counted in them
    wasm_rt_pooled_use_stock();
    pool.reset();
    madvisev_zero_force_emulation(was_emulating);
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A 95% percentile-bootstrap interval of the median of @v (fixed seed:
// the same runs give the same interval).
std::pair<double, double> median_ci95(const std::vector<double> &v) {
    std::mt19937_64 rng(0x6d616476);
    std::uniform_int_distribution<size_t> pick(0, v.size() - 1);
    std::vector<double> meds, sample(v.size());
    constexpr int kResamples = 2000;
    meds.reserve(kResamples);
    for (int b = 0; b < kResamples; b++) {
        for (double &x : sample)
            x = v[pick(rng)];
        meds.push_back(median(sample));
    }
    std::sort(meds.begin(), meds.end());
    return {meds[static_cast<size_t>(0.025 * (kResamples - 1))],
            meds[static_cast<size_t>(0.975 * (kResamples - 1))]};
}

// One row from its runs: each figure the median over the runs, with the
// instantiation rate's runs and interval kept.
Result aggregate(const std::vector<Result> &runs) {
    std::vector<double> rates;
    for (const Result &r : runs)
        rates.push_back(r.per_s);
    // Fields that are not figures (names, the pool's counters) from the run
    // whose rate is the median's, or the one just above it.
    std::vector<size_t> idx(runs.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return rates[a] < rates[b]; });
    Result a = runs[idx[runs.size() / 2]];
    for (double Result::*f : {&Result::per_s,         &Result::shootdowns,
                              &Result::efficiency,    &Result::p50,
                              &Result::p99,           &Result::decommits,
                              &Result::faults,        &Result::memory_dirtied,
                              &Result::stack_dirtied, &Result::user_ns,
                              &Result::sys_ns,        &Result::reset_ns,
                              &Result::scan_ns,       &Result::zero_ns,
                              &Result::decommit_ns,   &Result::flusher_ns,
                              &Result::t_syscalls,    &Result::t_ipi,
                              &Result::t_pages,       &Result::t_other_flushes}) {
        std::vector<double> v;
        for (const Result &r : runs)
            v.push_back(r.*f);
        a.*f = median(v);
    }
    a.per_s_runs = rates;
    for (const Result &r : runs)
        a.instances_runs.push_back(r.instances);
    std::tie(a.ci_lo, a.ci_hi) = median_ci95(rates);
    a.short_runs = static_cast<size_t>(
        std::count_if(runs.begin(), runs.end(), [](const Result &r) { return r.short_run; }));
    a.short_run = a.short_runs > 0;
    return a;
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    static const option opts[] = {{"threads", required_argument, nullptr, 't'},
                                  {"dirty-pages", required_argument, nullptr, 'd'},
                                  {"module", required_argument, nullptr, 'm'},
                                  {"seconds", required_argument, nullptr, 's'},
                                  {"repeat", required_argument, nullptr, 'R'},
                                  {"batch-size", required_argument, nullptr, 'b'},
                                  {"strategy", required_argument, nullptr, 'S'},
                                  {"json", required_argument, nullptr, 'j'},
                                  {"trace", required_argument, nullptr, 'T'},
                                  {"resident-budget", required_argument, nullptr, 'r'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":t:d:m:s:R:b:S:j:T:r:h", opts, nullptr)) != -1) {
        switch (c) {
        case 't':
            o.threads = parse_list(optarg, "--threads", 1024);
            break;
        case 'm':
            o.modules = split(optarg);
            break;
        case 'd':
            o.dirty = parse_list(optarg, "--dirty-pages", kMemoryBytes / 4096);
            break;
        case 's': {
            char *end = nullptr;
            o.seconds = strtod(optarg, &end);
            if (*end || !(o.seconds > 0) || o.seconds > 3600)
                die(std::string("bad --seconds '") + optarg + "'");
            break;
        }
        case 'R': {
            auto v = parse_list(optarg, "--repeat", 100);
            if (v.size() != 1)
                die(std::string("bad --repeat '") + optarg + "'");
            o.repeat = v[0];
            break;
        }
        case 'b':
            o.batch = parse_list(optarg, "--batch-size", 4096).at(0);
            break;
        case 'S':
            o.strategies = split(optarg);
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'T':
            if (access(optarg, X_OK) != 0)
                die(std::string("--trace '") + optarg + "' is not an executable");
            o.tracer = optarg;
            break;
        case 'r': {
            char *end = nullptr;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            int shift = 0;
            if (*end == 'K' || *end == 'k')
                shift = 10;
            else if (*end == 'M' || *end == 'm')
                shift = 20;
            else if (*end == 'G' || *end == 'g')
                shift = 30;
            if (shift)
                end++;
            if (optarg[0] == '-' || end == optarg || *end || errno || v == 0 ||
                v > (size_t{1} << 40) >> shift)
                die(std::string("bad --resident-budget '") + optarg + "'");
            o.budget = static_cast<size_t>(v) << shift;
            break;
        }
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

    std::vector<Strategy> all = all_strategies(o.batch, o.budget), chosen;
    if (o.strategies.empty()) {
        chosen = all;
    } else {
        for (std::string name : o.strategies) {
            // NAME/stacks or NAME/no-stacks: the pool strategy with its
            // fiber stacks reset, or not (Config::reset_stacks).
            std::string variant;
            if (size_t slash = name.find('/'); slash != std::string::npos) {
                variant = name.substr(slash + 1);
                name.resize(slash);
                if (variant != "stacks" && variant != "no-stacks")
                    die("unknown strategy variant '/" + variant + "' (/stacks or /no-stacks)");
            }
            if (name == "pool-sharded-auto") { // the backend detection picks
                name = std::string("pool-sharded-") + madvisev_backend_name();
                std::replace(name.begin(), name.end(), '_', '-');
            }
            auto it = std::find_if(all.begin(), all.end(), [&](auto &s) { return s.name == name; });
            if (it == all.end())
                die("unknown or unavailable strategy '" + name + "'");
            Strategy st = *it;
            if (!variant.empty()) {
                if (st.stock || st.insecure)
                    die("'" + name + "' resets no stacks of its own: no '/" + variant + "'");
                st.cfg.reset_stacks = variant == "stacks";
                st.name += "/" + variant;
            }
            chosen.push_back(st);
        }
    }

    wasm_rt_init();
    Z_echo_init_module();
    wasmpool::wasi_programs::init_modules();
    std::vector<Module> modules;
    for (const std::string &name : o.modules) {
        Module m;
        m.name = name;
        if (name != "echo") {
            m.prog = wasmpool::wasi_programs::find(name);
            if (!m.prog) {
                std::string choices = "echo";
                for (const auto &p : wasmpool::wasi_programs::all())
                    choices += std::string(", ") + p.name;
                die("unknown module '" + name + "' (choices: " + choices + ")");
            }
            reference_run(m);
        }
        modules.push_back(m);
    }
    printf("# instantiate-bench: wasm2c modules (echo: init dirties N pages; a WASI program: "
           "_start, stdout checked), %.1fs per row, madvisev backend auto = %s\n",
           o.seconds, madvisev_backend_name());
    for (const Module &m : modules)
        if (m.prog)
            printf("# %s: %s; memory %zu KiB at exit\n", m.name.c_str(), m.prog->about,
                   m.memory_bytes >> 10);
    printf("# pages-dirtied: pages of memory + fiber stack holding data at free, per "
           "instantiation (an untimed pass after each row)\n");
    printf("# stock = Debian wabt 1.0.32 runtime built with its unmap-size bug fixed\n");
    printf("# MADVISEV_ZERO (pool-zero-in-place): %s; faults/inst: page faults (minor + major) "
           "per instantiation, timed part\n",
           madvisev_zero_native() ? "the kernel's, in place" : "libmadvisev's emulation");
    printf("# %zu run(s) per row%s\n", o.repeat,
           o.repeat > 1 ? ": each figure the median, inst/s with a 95% bootstrap interval" : "");
    printf("%-26s %-8s %5s %3s %5s %12s %17s %11s %6s %10s %13s %11s %9s %9s %9s%s\n", "strategy",
           "module", "dirty", "thr", "batch", "inst/s", "95%-interval", "per-thread", "eff",
           "tlb/inst", "pages-dirtied", "faults/inst", "rss-MiB", "p50-us", "p99-us",
           o.tracer.empty() ? ""
                            : "  traced per inst: syscalls ipi-rounds pages-zapped other-flushes");
    std::vector<Result> results;
    // (module, dirty pages): a WASI program dirties what it dirties.
    std::vector<std::pair<const Module *, size_t>> cases;
    for (const Module &m : modules)
        for (size_t d : m.prog ? std::vector<size_t>{0} : o.dirty)
            cases.emplace_back(&m, d);
    // Every row runs --repeat times.  Within a round, the strategies of one
    // (module, dirty pages, threads) run one after the other, in reverse
    // order every other round, so that drift in the machine falls on all
    // of them alike; each run has a fresh pool.
    std::map<std::tuple<size_t, size_t, size_t>, std::vector<Result>>
        runs; // case, strategy, threads
    for (size_t round = 0; round < o.repeat; round++)
        for (size_t ci = 0; ci < cases.size(); ci++)
            for (size_t t : o.threads) {
                std::vector<size_t> order(chosen.size());
                std::iota(order.begin(), order.end(), 0);
                if (round % 2)
                    std::reverse(order.begin(), order.end());
                for (size_t si : order) {
                    const Module &mod = *cases[ci].first;
                    const Strategy &st = chosen[si];
                    // Without a reset a WASI program finds the last one's
                    // zero-initialised data (wasi-libc's malloc and stdio
                    // state) stale and misbehaves: there is no bound to measure.
                    if (mod.prog && st.insecure)
                        continue;
                    Result r = run(st, mod, t, cases[ci].second, o.seconds, o.tracer);
                    if (r.quarantined)
                        fprintf(stderr, "instantiate-bench: %s quarantined %llu slots\n",
                                st.name.c_str(), static_cast<unsigned long long>(r.quarantined));
                    if (o.repeat > 1) {
                        printf("# round %zu/%zu: %s %s dirty %zu, %zu threads: %.0f/s%s\n",
                               round + 1, o.repeat, st.name.c_str(), mod.name.c_str(), r.dirty, t,
                               r.per_s, r.short_run ? " (short)" : "");
                        fflush(stdout);
                    }
                    runs[{ci, si, t}].push_back(r);
                }
            }
    // Efficiency within each round: the rate on N threads against N times
    // the same strategy's rate on one thread in that round.
    for (auto &[key, rs] : runs) {
        auto base = runs.find({std::get<0>(key), std::get<1>(key), 1});
        for (size_t k = 0; k < rs.size(); k++) {
            Result &r = rs[k];
            if (r.threads == 1)
                r.efficiency = 1.0;
            else if (base != runs.end() && k < base->second.size())
                r.efficiency = r.per_s / (static_cast<double>(r.threads) * base->second[k].per_s);
        }
    }
    for (size_t ci = 0; ci < cases.size(); ci++)
        for (size_t si = 0; si < chosen.size(); si++)
            for (size_t t : o.threads) {
                const Strategy &st = chosen[si];
                const Module &mod = *cases[ci].first;
                auto found = runs.find({ci, si, t});
                if (found == runs.end()) {
                    if (mod.prog && st.insecure && t == o.threads.front())
                        printf("# %s, %s: skipped (no reset: the program misbehaves)\n",
                               st.name.c_str(), mod.name.c_str());
                    continue;
                }
                Result r = aggregate(found->second);
                results.push_back(r);
                char eff[16] = "-";
                if (r.efficiency >= 0)
                    snprintf(eff, sizeof(eff), "%.2f", r.efficiency);
                char dirty_s[24] = "-", dirtied[48] = "-";
                if (r.dirty)
                    snprintf(dirty_s, sizeof(dirty_s), "%zu", r.dirty);
                if (r.memory_dirtied >= 0)
                    snprintf(dirtied, sizeof(dirtied), "%.1f+%s", r.memory_dirtied,
                             r.stack_dirtied >= 0 ? std::to_string(lround(r.stack_dirtied)).c_str()
                                                  : "?");
                char faults[24] = "-";
                if (r.faults >= 0)
                    snprintf(faults, sizeof(faults), "%.2f", r.faults);
                char interval[40];
                snprintf(interval, sizeof(interval), "%.0f-%.0f", r.ci_lo, r.ci_hi);
                printf("%-26s %-8s %5s %3zu %5zu %12.0f %17s %11.0f %6s %10.3f %13s %11s %9.1f "
                       "%9.1f %9.1f",
                       r.strategy.c_str(), r.module.c_str(), dirty_s, r.threads, r.batch, r.per_s,
                       interval, r.per_s / static_cast<double>(r.threads), eff, r.shootdowns,
                       dirtied, faults, static_cast<double>(r.resident) / (1 << 20), r.p50 / 1000,
                       r.p99 / 1000);
                if (r.traced)
                    printf("  %25.3f %10.3f %12.2f %13.3f", r.t_syscalls, r.t_ipi, r.t_pages,
                           r.t_other_flushes);
                printf("%s", r.insecure ? "  INSECURE: no reset, upper bound only" : "");
                if (r.short_run)
                    printf("  SHORT: %zu of %zu runs under 10 batches per thread", r.short_runs,
                           r.per_s_runs.size());
                printf("\n");
                if (r.reset_ns >= 0)
                    printf("#   us per inst: cpu user %.2f sys %.2f; pool reset %.2f (scan %.2f, "
                           "zero %.2f), decommit %.2f, flusher cpu %.2f\n",
                           r.user_ns / 1e3, r.sys_ns / 1e3, r.reset_ns / 1e3, r.scan_ns / 1e3,
                           r.zero_ns / 1e3, r.decommit_ns / 1e3, r.flusher_ns / 1e3);
                fflush(stdout);
            }

    if (o.budget) {
        // The budget row set: adaptive against the fastest fixed safe
        // strategy of the same row that keeps within the budget too
        // (pool-keep-resident keeps its bytes resident whatever the
        // budget), and its shootdowns against 1.5 per batch.
        printf("# resident budget %zu bytes: pool-adaptive against the best fixed safe strategy "
               "within the budget\n",
               o.budget);
        for (const Result &a : results) {
            if (a.strategy != "pool-adaptive")
                continue;
            const Result *best = nullptr;
            for (const Result &r : results)
                if (r.module == a.module && r.dirty == a.dirty && r.threads == a.threads &&
                    !r.insecure && r.strategy != "stock" && r.strategy != a.strategy &&
                    r.pool_resident <= o.budget && (!best || r.per_s > best->per_s))
                    best = &r;
            if (!best)
                continue;
            double bound = 1.5 / static_cast<double>(a.batch);
            std::string row = a.module == "echo" ? "dirty " + std::to_string(a.dirty) : a.module;
            printf("# %s, %zu threads: adaptive %.0f/s = %.2fx %s (%.0f/s); %.2f slots "
                   "decommitted per instantiation; %.4f shootdowns per instantiation %s %.4f "
                   "(1.5/batch)\n",
                   row.c_str(), a.threads, a.per_s, a.per_s / best->per_s, best->strategy.c_str(),
                   best->per_s, a.decommits, a.shootdowns, a.shootdowns <= bound ? "<=" : ">",
                   bound);
        }
    }

    if (!o.json.empty()) {
        FILE *f = fopen(o.json.c_str(), "w");
        if (!f) {
            fprintf(stderr, "instantiate-bench: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
        fprintf(f, "[\n");
        for (size_t i = 0; i < results.size(); i++) {
            const Result &r = results[i];
            fprintf(f,
                    "  {\"strategy\": \"%s\", \"module\": \"%s\", \"threads\": %zu, "
                    "\"dirty_pages\": %s, "
                    "\"batch_size\": %zu, \"instantiations\": %llu, "
                    "\"instantiations_per_s\": %.1f, \"efficiency\": %s, "
                    "\"shootdowns_per_instantiation\": %.4f, \"resident_bytes\": %lld, "
                    "\"pool_resident_bytes\": %zu, \"resident_budget\": %zu, "
                    "\"p50_ns\": %.0f, \"p99_ns\": %.0f, \"insecure\": %s, "
                    "\"decommits_per_instantiation\": %.4f",
                    r.strategy.c_str(), r.module.c_str(), r.threads,
                    r.dirty ? std::to_string(r.dirty).c_str() : "null", r.batch,
                    static_cast<unsigned long long>(r.instances), r.per_s,
                    r.efficiency >= 0 ? std::to_string(r.efficiency).c_str() : "null", r.shootdowns,
                    r.resident, r.pool_resident, r.budget, r.p50, r.p99,
                    r.insecure ? "true" : "false", r.decommits);
            // Pages holding data at free: memory, stack and both (null: unknown).
            auto num = [](double v) { return v < 0 ? std::string("null") : std::to_string(v); };
            fprintf(f,
                    ", \"memory_pages_dirtied_per_instantiation\": %s, "
                    "\"stack_pages_dirtied_per_instantiation\": %s, "
                    "\"pages_dirtied_per_instantiation\": %s",
                    num(r.memory_dirtied).c_str(), num(r.stack_dirtied).c_str(),
                    num(r.memory_dirtied < 0 || r.stack_dirtied < 0
                            ? -1
                            : r.memory_dirtied + r.stack_dirtied)
                        .c_str());
            fprintf(f, ", \"page_faults_per_instantiation\": %s", num(r.faults).c_str());
            fprintf(f, ", \"runs\": %zu, \"instantiations_per_s_runs\": [", r.per_s_runs.size());
            for (size_t k = 0; k < r.per_s_runs.size(); k++)
                fprintf(f, "%s%.1f", k ? ", " : "", r.per_s_runs[k]);
            fprintf(f, "], \"instantiations_runs\": [");
            for (size_t k = 0; k < r.instances_runs.size(); k++)
                fprintf(f, "%s%llu", k ? ", " : "",
                        static_cast<unsigned long long>(r.instances_runs[k]));
            fprintf(f,
                    "], \"instantiations_per_s_ci95\": [%.1f, %.1f], \"short_runs\": %zu, "
                    "\"warmup_instantiations\": %llu",
                    r.ci_lo, r.ci_hi, r.short_runs, static_cast<unsigned long long>(r.warmup));
            fprintf(f,
                    ", \"user_ns_per_instantiation\": %s, \"sys_ns_per_instantiation\": %s, "
                    "\"pool_reset_ns_per_instantiation\": %s, "
                    "\"pool_scan_ns_per_instantiation\": %s, "
                    "\"pool_zero_ns_per_instantiation\": %s, "
                    "\"pool_decommit_ns_per_instantiation\": %s, "
                    "\"flusher_cpu_ns_per_instantiation\": %s",
                    num(r.user_ns).c_str(), num(r.sys_ns).c_str(), num(r.reset_ns).c_str(),
                    num(r.scan_ns).c_str(), num(r.zero_ns).c_str(), num(r.decommit_ns).c_str(),
                    num(r.flusher_ns).c_str());
            if (r.traced)
                fprintf(f,
                        ", \"traced_syscalls_per_instantiation\": %.4f, "
                        "\"traced_ipi_rounds_per_instantiation\": %.4f, "
                        "\"traced_pages_zapped_per_instantiation\": %s, "
                        "\"traced_other_flushes_per_instantiation\": %.4f",
                        r.t_syscalls, r.t_ipi,
                        r.t_pages < 0 ? "null" : std::to_string(r.t_pages).c_str(),
                        r.t_other_flushes);
            fprintf(f, "}%s\n", i + 1 < results.size() ? "," : "");
        }
        fprintf(f, "]\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "instantiate-bench: %s: %s\n", o.json.c_str(), strerror(errno));
            return 1;
        }
    }
    wasm_rt_free();
    return 0;
}
