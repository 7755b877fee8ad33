// SPDX-License-Identifier: MIT
// Traps on many threads at once: each thread must get its own trap, with
// its own code, whatever the others do meanwhile.  wasm2c 1.0.32 keeps
// the trap buffer process-wide and gives only wasm_rt_init()'s thread an
// alternate signal stack; wasm-rt-pooled makes both per thread.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <vector>

#include "run_on_stack.h"
#include "traps.h"
#include "wasm-rt-impl.h"
#include "wasmpool/fiber.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

struct Case {
    const char *name;
    wasm_rt_trap_t expect; // WASM_RT_TRAP_NONE: returns normally
    uint32_t expect_value;
    uint32_t (*call)(Z_traps_instance_t *);
};

const Case kCases[] = {
    {"load past the memory", WASM_RT_TRAP_OOB, 0,
     [](Z_traps_instance_t *i) { return Z_trapsZ_load(i, 3 * 65536); }},
    {"load at 4 GiB - 4", WASM_RT_TRAP_OOB, 0,
     [](Z_traps_instance_t *i) { return Z_trapsZ_load(i, 0xfffffffcu); }},
    {"unreachable", WASM_RT_TRAP_UNREACHABLE, 0,
     [](Z_traps_instance_t *i) { return Z_trapsZ_unreachable_if(i, 1); }},
    {"divide by zero", WASM_RT_TRAP_DIV_BY_ZERO, 0,
     [](Z_traps_instance_t *i) { return Z_trapsZ_div(i, 1, 0); }},
    {"INT_MIN / -1", WASM_RT_TRAP_INT_OVERFLOW, 0,
     [](Z_traps_instance_t *i) {
         return Z_trapsZ_div(i, static_cast<uint32_t>(INT_MIN), static_cast<uint32_t>(-1));
     }},
    {"recursion without end", WASM_RT_TRAP_EXHAUSTION, 0,
     [](Z_traps_instance_t *i) { return Z_trapsZ_deep(i, 1u << 30); }},
    {"no trap: divide", WASM_RT_TRAP_NONE, 3,
     [](Z_traps_instance_t *i) { return Z_trapsZ_div(i, 7, 2); }},
    {"no trap: unreachable not taken", WASM_RT_TRAP_NONE, 7,
     [](Z_traps_instance_t *i) { return Z_trapsZ_unreachable_if(i, 0); }},
    // deep(n) is 1 ^ 1 ^ 2 ^ ... ^ n, and the xor of 1..n is n when 4 | n.
    {"no trap: recursion 100 deep", WASM_RT_TRAP_NONE, 1 ^ 100,
     [](Z_traps_instance_t *i) { return Z_trapsZ_deep(i, 100); }},
};
constexpr size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);

class TrapEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_traps_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new TrapEnv);

// Under ThreadSanitizer a stack overflow can fault inside its runtime,
// with its locks held: trapping out of there deadlocks the next thread
// that takes them.  Exhaustion is tested in the other builds (and alone
// on one thread by stack_test.cpp there).
bool skip_case(const Case &c) {
#if defined(__SANITIZE_THREAD__)
    return c.expect == WASM_RT_TRAP_EXHAUSTION;
#else
    (void)c;
    return false;
#endif
}

double test_seconds() {
    const char *s = getenv("WASMPOOL_TRAP_TEST_SECONDS");
    return s ? atof(s) : 2.0;
}

struct Outcome {
    uint64_t runs = 0;
    uint64_t wrong = 0;
    std::string first_wrong;
    uint64_t per_case[kNumCases] = {};
};

// One thread's loop: instantiate, run a case on a pooled fiber under its
// own wasm_rt_impl_try(), check the code, free.
void trap_loop(wasmpool::Pool &pool, size_t thread, double seconds, Outcome &out) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    wasm_rt_pooled_set_module(2);
    for (uint64_t i = 0; std::chrono::steady_clock::now() < end || i < kNumCases; i++) {
        const Case &c = kCases[(i + thread) % kNumCases];
        if (skip_case(c))
            continue;
        Z_traps_instance_t inst;
        Z_traps_instantiate(&inst);
        volatile int code = 0;
        volatile uint32_t value = 0;
        auto stack = pool.acquire(wasmpool::Kind::stack, 2, 0);
        ASSERT_TRUE(stack);
        wasmpool::test::run_on_stack(stack->base(), stack->capacity(), [&] {
            int trap = wasm_rt_impl_try();
            if (trap == 0)
                value = c.call(&inst);
            code = trap;
        });
        bool ok = code == c.expect && (c.expect != WASM_RT_TRAP_NONE || value == c.expect_value);
        if (!ok && out.wrong++ == 0)
            out.first_wrong = std::string(c.name) + ": trap " + std::to_string(code) + " value " +
                              std::to_string(value) + ", expected trap " + std::to_string(c.expect);
        out.per_case[(i + thread) % kNumCases]++;
        out.runs++;
        Z_traps_free(&inst);
    }
}

wasmpool::Config trap_pool_config(size_t threads) {
    wasmpool::Config c;
    c.memory_slots = c.table_slots = c.stack_slots = 4 * threads + 4;
    c.batch_size = 2;
    c.shards = threads;
    c.stack_bytes = wasmpool::test::kTestStackBytes;
    return c;
}

TEST(Traps, EveryThreadGetsItsOwnTrap) {
    constexpr size_t kThreads = 4;
    wasmpool::Pool pool(trap_pool_config(kThreads));
    wasm_rt_pooled_set_pool(&pool);
    std::vector<Outcome> out(kThreads);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < kThreads; t++)
        threads.emplace_back([&, t] { trap_loop(pool, t, test_seconds(), out[t]); });
    for (auto &t : threads)
        t.join();
    for (size_t t = 0; t < kThreads; t++) {
        EXPECT_EQ(out[t].wrong, 0u) << "thread " << t << ", first: " << out[t].first_wrong;
        for (size_t k = 0; k < kNumCases; k++) {
            if (skip_case(kCases[k]))
                continue;
            EXPECT_GT(out[t].per_case[k], 0u) << "thread " << t << " never ran " << kCases[k].name;
        }
        printf("thread %zu: %llu calls, %llu wrong\n", t,
               static_cast<unsigned long long>(out[t].runs),
               static_cast<unsigned long long>(out[t].wrong));
    }
    auto st = pool.stats();
    EXPECT_EQ(st.acquired, st.released);
    wasm_rt_pooled_use_stock();
}

// A memory the stock runtime serves traps at its bounds too.
TEST(Traps, StockMemoryOutOfBoundsIsATrap) {
    wasm_rt_pooled_use_stock();
    Z_traps_instance_t inst;
    Z_traps_instantiate(&inst);
    int trap = wasm_rt_impl_try();
    if (trap == 0)
        Z_trapsZ_load(&inst, 3 * 65536);
    EXPECT_EQ(trap, WASM_RT_TRAP_OOB);
    Z_traps_free(&inst);
}

// A fault that is not a guest's is not turned into a trap, even on a
// thread that runs guest code: the process dies of it as it would without
// the runtime.
TEST(TrapsDeath, HostFaultIsNotATrap) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            wasmpool::Pool pool(trap_pool_config(1));
            wasm_rt_pooled_set_pool(&pool);
            Z_traps_instance_t inst;
            Z_traps_instantiate(&inst);
            if (wasm_rt_impl_try() == 0) {
                Z_trapsZ_div(&inst, 1, 1);
                // The host's bug, after a guest call: a write to the null
                // page (an address the compiler cannot see through).
                volatile uintptr_t null_page = 16;
                *reinterpret_cast<volatile int *>(null_page) = 1;
            }
            fprintf(stderr, "turned into a trap\n");
            _exit(0);
        },
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        // The sanitizer's handler, installed before ours, reports it.
        [](int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); },
        "SEGV on unknown address");
#else
        ::testing::KilledBySignal(SIGSEGV), "");
#endif
}

// The same for an access fault (a PROT_NONE page of the host's) while the
// stock runtime serves memories: only a stock memory's own reservation is
// a guest's.
TEST(TrapsDeath, HostAccessFaultBesideStockMemoryIsNotATrap) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            wasm_rt_pooled_use_stock();
            Z_traps_instance_t inst;
            Z_traps_instantiate(&inst);
            void *page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (wasm_rt_impl_try() == 0) {
                Z_trapsZ_div(&inst, 1, 1);
                *static_cast<volatile int *>(page) = 1; // SEGV_ACCERR, not in a memory
            }
            fprintf(stderr, "turned into a trap\n");
            _exit(0);
        },
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
        [](int status) { return !(WIFEXITED(status) && WEXITSTATUS(status) == 0); },
        "SEGV on unknown address");
#else
        ::testing::KilledBySignal(SIGSEGV), "");
#endif
}

} // namespace
