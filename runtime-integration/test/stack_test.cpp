// SPDX-License-Identifier: MIT
// A guest must not reach below its stack's guard.  wasm2c 1.0.32 counts no
// call depth on Linux, so a guest can recurse until its stack is nearly
// full and then call a function with a frame larger than the guard; the
// frame's first write lands below it, in the live top of the stack slot
// underneath (another instance's frames), unless every page of the frame
// is touched in order (-fstack-clash-protection) or the guard is larger
// than any frame.  Every depth near the limit is tried, on several
// threads, with the default 64 KiB guard and with the smallest, one page.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "run_on_stack.h"
#include "stack.h"
#include "wasm-rt-impl.h"
#include "wasmpool/fiber.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasm-rt-pooled.h"

// The module's import: a call the compiler can neither inline nor drop.
// A leaf that needs no stack of its own, so it is guest code (a fault in
// its frame is the guest's exhaustion) and needs no stack check.
extern "C" WASM_RT_POOLED_GUEST_ENTRY u32 Z_envZ_touch(struct Z_env_instance_t *, u32 x) {
    return x + 1;
}

namespace {

class StackEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_stack_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new StackEnv);

constexpr unsigned char kCanary = 0xc5;
using wasmpool::test::run_on_stack;

struct Sweep {
    uint32_t limit = 0;                // deepest plain recursion that returns
    uint64_t exhausted[2] = {};        // per big function
    uint64_t completed[2] = {};        //
    uint64_t other_traps = 0;          // any other trap code
    int64_t canary_broken_at = -1;     // depth whose call wrote below the guard
    int limit_call_trap[2] = {-1, -1}; // at the limit, the big call's outcome
};

int call(Z_stack_instance_t *inst, uint32_t depth, uint32_t which) {
    int trap = wasm_rt_impl_try();
    if (trap == 0)
        Z_stackZ_descend(inst, depth, which);
    return trap;
}

// On a pool of two stack slots, run the guest on the upper one and keep
// the lower one (directly below the upper one's guard) filled with a
// canary, as a parked instance's stack would be.
Sweep sweep_in(wasmpool::Pool &pool, wasm_rt_pool_t *handle, size_t guard_bytes) {
    auto a = pool.acquire(wasmpool::Kind::stack, 1, 0);
    auto b = pool.acquire(wasmpool::Kind::stack, 1, 0);
    EXPECT_TRUE(a && b);
    if (!a || !b)
        return {};
    wasmpool::Pool::Lease &low = a->base() < b->base() ? *a : *b;
    wasmpool::Pool::Lease &high = a->base() < b->base() ? *b : *a;
    EXPECT_EQ(low.base() + low.capacity() + guard_bytes, high.base()) << "not neighbours";
    memset(low.base(), kCanary, low.capacity());
    // The part of the neighbour a frame of up to 32 KiB past the guard
    // can reach; checked after every call.
    std::byte *watched = low.base() + low.capacity() - std::min<size_t>(low.capacity(), 32 << 10);
    size_t watched_bytes = low.base() + low.capacity() - watched;
    auto canary_intact = [&] {
        for (size_t i = 0; i < watched_bytes; i++)
            if (static_cast<unsigned char>(watched[i]) != kCanary)
                return false;
        return true;
    };

    Sweep s;
    wasm_rt_pool_select(handle, 1); // this thread's instance from this thread's pool
    Z_stack_instance_t inst;
    Z_stack_instantiate(&inst, nullptr);
    run_on_stack(high.base(), high.capacity(), [&] {
        // The deepest recursion that returns: every frame is at least 16
        // bytes, so the answer is below capacity / 16.
        uint32_t lo = 0, hi = static_cast<uint32_t>(high.capacity() / 16);
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo + 1) / 2;
            int trap = call(&inst, mid, 0);
            if (trap == 0)
                lo = mid;
            else if (trap == WASM_RT_TRAP_EXHAUSTION)
                hi = mid - 1;
            else {
                s.other_traps++;
                return;
            }
        }
        s.limit = lo;
        // From well above the limit (a big frame is about 20 KiB, a
        // recursion frame at least 16 bytes) down to it.
        uint32_t from = s.limit > 1500 ? s.limit - 1500 : 0;
        for (uint32_t which = 1; which <= 2; which++)
            for (uint32_t depth = from; depth <= s.limit; depth++) {
                int trap = call(&inst, depth, which);
                if (trap == WASM_RT_TRAP_EXHAUSTION)
                    s.exhausted[which - 1]++;
                else if (trap == 0)
                    s.completed[which - 1]++;
                else
                    s.other_traps++;
                if (depth == s.limit)
                    s.limit_call_trap[which - 1] = trap;
                if (s.canary_broken_at < 0 && !canary_intact())
                    s.canary_broken_at = depth;
            }
    });
    Z_stack_free(&inst);
    wasm_rt_pool_select(nullptr, 0);
    return s;
}

// One pool per thread (two stack slots, neighbours), made through the C
// API so that each thread selects its own.
Sweep sweep(size_t guard_bytes) {
    wasm_rt_pool_config_t c;
    wasm_rt_pool_config_init(&c);
    c.memory_slots = c.table_slots = 1;
    c.stack_slots = 2;
    // A stack and its guard fill one page-table span exactly (the pool
    // starts slots whole spans apart): the gap between the two stacks is
    // then the guard and nothing more, and a frame that jumped it would
    // land in the neighbour.
    const size_t span = static_cast<size_t>(sysconf(_SC_PAGESIZE)) * (sysconf(_SC_PAGESIZE) / 8);
    c.stack_bytes = span - guard_bytes;
    c.stack_guard_bytes = guard_bytes;
    c.batch_size = 1;
    wasm_rt_pool_t *handle = nullptr;
    EXPECT_EQ(wasm_rt_pool_create(&c, &handle), WASM_RT_POOL_OK) << wasm_rt_pool_last_message();
    if (!handle)
        return {};
    Sweep s =
        sweep_in(*static_cast<wasmpool::Pool *>(wasm_rt_pool_cxx(handle)), handle, guard_bytes);
    wasm_rt_pool_destroy(handle);
    return s;
}

void check(const Sweep &s, size_t thread, size_t guard_bytes) {
    SCOPED_TRACE("thread " + std::to_string(thread) + ", guard " + std::to_string(guard_bytes));
    EXPECT_GT(s.limit, 100u) << "the recursion should go deep on a stack of nearly 2 MiB";
    EXPECT_EQ(s.other_traps, 0u);
    EXPECT_EQ(s.canary_broken_at, -1)
        << "a call at depth " << s.canary_broken_at << " (limit " << s.limit
        << ") wrote into the neighbouring stack, below the guard";
    for (int w = 0; w < 2; w++) {
        // At the limit the big frame cannot fit: it must trap, not write
        // past the guard and return.
        EXPECT_EQ(s.limit_call_trap[w], WASM_RT_TRAP_EXHAUSTION) << "big function " << w;
        EXPECT_GT(s.completed[w], 0u) << "big function " << w << " never ran to completion";
    }
}

void run_threads(size_t guard_bytes) {
#if defined(__SANITIZE_THREAD__)
    // A stack overflow can fault inside ThreadSanitizer's runtime with its
    // locks held, and trapping out of there deadlocks (seen: the test hung).
    GTEST_SKIP() << "stack exhaustion under ThreadSanitizer";
#endif
    constexpr size_t kThreads = 3;
    std::vector<Sweep> out(kThreads);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < kThreads; t++)
        threads.emplace_back([&, t] {
            wasm_rt_pooled_thread_init();
            out[t] = sweep(guard_bytes);
        });
    for (auto &t : threads)
        t.join();
    for (size_t t = 0; t < kThreads; t++) {
        check(out[t], t, guard_bytes);
        printf("guard %zu thread %zu: limit %u, big1 %llu trapped %llu ran, big2 %llu trapped %llu "
               "ran\n",
               guard_bytes, t, out[t].limit, static_cast<unsigned long long>(out[t].exhausted[0]),
               static_cast<unsigned long long>(out[t].completed[0]),
               static_cast<unsigned long long>(out[t].exhausted[1]),
               static_cast<unsigned long long>(out[t].completed[1]));
    }
}

TEST(StackGuard, DefaultGuardHoldsOnEveryThread) {
    run_threads(wasmpool::Config{}.stack_guard_bytes);
}

// One page of guard: only the probing of every page keeps the frames out.
TEST(StackGuard, OnePageGuardHoldsWithProbedFrames) {
    run_threads(static_cast<size_t>(sysconf(_SC_PAGESIZE)));
}

TEST(StackGuard, DefaultGuardIsAtLeast64KiB) {
    EXPECT_GE(wasmpool::Config{}.stack_guard_bytes, size_t{64} << 10);
}

} // namespace
