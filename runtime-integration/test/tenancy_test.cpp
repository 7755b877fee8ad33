// SPDX-License-Identifier: MIT
// Frees that cannot reach another tenant, and a life cycle with no use
// after free: a free through a copy of an instance (an error path that
// kept one), a stale stack struct, a free from a pool destroyed since, a
// pool destroyed under live slots, a handle used after its pool was
// destroyed, a thread that exits after its pool was replaced by another at
// the same address.  And acquire() never reports exhaustion while a slot
// is only on its way back.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "echo.h"
#include "wasm-rt-impl.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

using wasmpool::Kind;
using wasmpool::Pool;

class TenancyEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_echo_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new TenancyEnv);

wasm_rt_pool_config_t one_slot_config() {
    wasm_rt_pool_config_t c;
    wasm_rt_pool_config_init(&c);
    c.memory_slots = c.table_slots = c.stack_slots = 1;
    c.batch_size = 1;
    return c;
}

// In a death test's child: a pool of one slot per kind, or exit 2.
wasm_rt_pool_t *one_slot_pool() {
    wasm_rt_pool_config_t c = one_slot_config();
    wasm_rt_pool_t *pool;
    if (wasm_rt_pool_create(&c, &pool) != WASM_RT_POOL_OK)
        _exit(2);
    return pool;
}

int instantiate(Z_echo_instance_t *inst) {
    int trap = wasm_rt_impl_try();
    if (trap == 0)
        Z_echo_instantiate(inst);
    wasm_rt_pooled_disarm();
    return trap;
}

void write_secret(Z_echo_instance_t *inst) {
    memcpy(Z_echoZ_memory(inst)->data + 100, "B's secret", 11);
}

// Tenant A is freed through the instance, then again through a copy an
// error path kept, while tenant B holds the slot: before the owner check,
// that second free released B's slot, and tenant C read B's secret.
TEST(TenancyDeath, FreeThroughACopyOfAnInstanceIsRefused) {
    EXPECT_DEATH(
        {
            wasm_rt_pool_t *pool = one_slot_pool();
            wasm_rt_pool_select(pool, 1);
            Z_echo_instance_t a;
            Z_echo_instance_t b;
            Z_echo_instance_t c_inst;
            instantiate(&a);
            Z_echo_instance_t copy = a;
            Z_echo_free(&a);
            instantiate(&b);    // the one slot again
            Z_echo_free(&copy); // the stale free
            instantiate(&c_inst);
            write_secret(&b); // B still uses what it holds
            if (memcmp(Z_echoZ_memory(&c_inst)->data + 100, "B's secret", 11) == 0)
                fprintf(stderr, "tenant C reads B's secret\n");
            _exit(0);
        },
        "release of (memory|table) slot 0 .* by owner .*: it is held by");
}

// The same with a stack: a copy of the struct, released while another
// tenant holds the slot, is refused; so is a stale struct at the same
// address that was released and acquired again (the generation).
TEST(TenancyDeath, StaleStackStructIsRefused) {
    EXPECT_DEATH(
        {
            wasm_rt_pool_t *pool = one_slot_pool();
            wasm_rt_pool_stack_t s;
            wasm_rt_pool_stack_t other;
            if (wasm_rt_pool_stack_acquire(pool, 1, &s) != WASM_RT_POOL_OK)
                _exit(2);
            wasm_rt_pool_stack_t copy = s;
            wasm_rt_pool_stack_release(pool, &s);
            if (wasm_rt_pool_stack_acquire(pool, 1, &other) != WASM_RT_POOL_OK)
                _exit(2);
            wasm_rt_pool_stack_release(pool, &copy);
            _exit(0);
        },
        "release of stack slot 0 .* by owner .*: it is held by");
    EXPECT_DEATH(
        {
            wasm_rt_pool_t *pool = one_slot_pool();
            wasm_rt_pool_stack_t s;
            if (wasm_rt_pool_stack_acquire(pool, 1, &s) != WASM_RT_POOL_OK)
                _exit(2);
            wasm_rt_pool_stack_t old = s;
            wasm_rt_pool_stack_release(pool, &s);
            if (wasm_rt_pool_stack_acquire(pool, 1, &s) != WASM_RT_POOL_OK)
                _exit(2);
            s.generation = old.generation; // the holder's stale record
            wasm_rt_pool_stack_release(pool, &s);
            _exit(0);
        },
        "release of stack slot 0 .*: a stale generation");
}

// A copy kept past its pool's destruction, freed after a new pool was
// made (in the same place, as the kernel usually places it): refused,
// whether the new pool's tenant holds that slot or no pool is there.
TEST(TenancyDeath, FreeFromADestroyedPoolIsRefused) {
    EXPECT_DEATH(
        {
            wasm_rt_pool_t *first = one_slot_pool();
            wasm_rt_pool_select(first, 1);
            Z_echo_instance_t a;
            Z_echo_instance_t b;
            instantiate(&a);
            Z_echo_instance_t copy = a;
            Z_echo_free(&a);
            wasm_rt_pool_destroy(first);
            wasm_rt_pool_t *second = one_slot_pool();
            wasm_rt_pool_select(second, 1);
            instantiate(&b);
            if (Z_echoZ_memory(&b)->data != Z_echoZ_memory(&copy)->data)
                fprintf(stderr, "held by: (the new pool is elsewhere; not this case)\n");
            Z_echo_free(&copy);
            _exit(0);
        },
        "held by");
    EXPECT_DEATH(
        {
            wasm_rt_pool_t *pool = one_slot_pool();
            wasm_rt_pool_select(pool, 1);
            Z_echo_instance_t a;
            instantiate(&a);
            Z_echo_instance_t copy = a;
            Z_echo_free(&a);
            wasm_rt_pool_select(nullptr, 0);
            wasm_rt_pool_destroy(pool);
            Z_echo_free(&copy); // no pool there now: not the stock runtime's either
            _exit(0);
        },
        "free of a (memory|table) at .* that no pool and not the stock runtime holds");
}

TEST(TenancyDeath, PoolDestroyedWithALeasedSlotStops) {
    EXPECT_DEATH(
        {
            wasmpool::Config c;
            c.memory_slots = c.table_slots = c.stack_slots = 2;
            auto pool = std::make_unique<Pool>(c);
            std::byte *base = pool->acquire(Kind::table, 1, 4096)->detach(1);
            (void)base;
            pool.reset();
            _exit(0);
        },
        "destruction of the pool of table slot [01] .* the slot is still leased");
}

// A program may still exit with instances alive in the process default
// pool: that pool is left to the exit, not destroyed under them (which
// would stop the process).
TEST(TenancyDeath, ExitWithALiveInstanceInTheDefaultPool) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            static Z_echo_instance_t inst;
            instantiate(&inst);
            fprintf(stderr, "exiting with an instance alive\n");
            exit(0);
        },
        ::testing::ExitedWithCode(0), "exiting with an instance alive");
}

// Every call with a destroyed handle is told, even after another pool
// took its place.
TEST(TenancyDeath, HandleUsedAfterDestroyIsRefused) {
    GTEST_FLAG_SET(death_test_style, "threadsafe"); // one case starts a thread
    wasm_rt_pool_config_t c = one_slot_config();
    wasm_rt_pool_t *gone;
    ASSERT_EQ(wasm_rt_pool_create(&c, &gone), WASM_RT_POOL_OK);
    wasm_rt_pool_destroy(gone);
    wasm_rt_pool_t *now;
    ASSERT_EQ(wasm_rt_pool_create(&c, &now), WASM_RT_POOL_OK);
    EXPECT_NE(now, gone);
    wasm_rt_pool_stack_t s;
    EXPECT_EQ(wasm_rt_pool_stack_acquire(gone, 1, &s), WASM_RT_POOL_INVALID_ARGUMENT);
    EXPECT_NE(strstr(wasm_rt_pool_last_message(), "not a live pool"), nullptr)
        << wasm_rt_pool_last_message();
    EXPECT_DEATH(wasm_rt_pool_select(gone, 1), "wasm_rt_pool_select: .* is not a live pool");
    EXPECT_DEATH(wasm_rt_pool_destroy(gone), "wasm_rt_pool_destroy: .* is not a live pool");
    EXPECT_DEATH(wasm_rt_pool_fallbacks(gone), "is not a live pool");
    EXPECT_DEATH(wasm_rt_pool_cxx(gone), "is not a live pool");
    EXPECT_DEATH(
        {
            // Selected, then destroyed (by another part of the program):
            // the thread's next instantiation is refused.
            wasm_rt_pool_t *p = one_slot_pool();
            wasm_rt_pool_select(p, 1);
            std::thread([p] { wasm_rt_pool_destroy(p); }).join();
            Z_echo_instance_t a;
            instantiate(&a);
            _exit(0);
        },
        "allocation from the pool this thread selected: .* is not a live pool");
    wasm_rt_pool_destroy(now);
}

// A worker uses a pool, the pool is destroyed and another made at the same
// address, then the worker exits: its exit hand-off must not reach the
// first pool's freed implementation (AddressSanitizer: heap-use-after-free
// before the fix) and reaches the second one only if it used it.
TEST(Tenancy, ThreadExitAfterThePoolWasReplacedInPlace) {
    wasmpool::Config c;
    c.memory_slots = c.table_slots = c.stack_slots = 4;
    c.batch_size = 4;
    alignas(Pool) unsigned char storage[sizeof(Pool)];
    Pool *first = new (storage) Pool(c);
    std::mutex m;
    std::condition_variable cv;
    bool used = false, replaced = false;
    std::thread worker([&] {
        auto l = first->acquire(Kind::memory, 1, 4096);
        ASSERT_TRUE(l);
        first->release(std::move(*l)); // queued: the exit hand-off has work
        std::unique_lock<std::mutex> lk(m);
        used = true;
        cv.notify_all();
        cv.wait(lk, [&] { return replaced; });
    });
    {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return used; });
        first->~Pool();
        Pool *second = new (storage) Pool(c);
        ASSERT_EQ(static_cast<void *>(second), static_cast<void *>(first));
        replaced = true;
        cv.notify_all();
    }
    worker.join();
    auto *second = reinterpret_cast<Pool *>(storage);
    EXPECT_EQ(second->stats().acquired, 0u);
    second->~Pool();
}

// The one slot is being reset by the thread that released it (adaptive:
// 256 MiB of sparse data zeroed in place, tens of milliseconds, holding no
// lock): an acquire meanwhile must wait for it, not report exhaustion
// (before the fix: ENOMEM, five runs of five).
TEST(Tenancy, AcquireWaitsForASlotBeingReset) {
    for (int run = 0; run < 5; run++) {
        wasmpool::Config c;
        c.memory_slots = c.table_slots = c.stack_slots = 1;
        c.batch_size = 1;
        Pool pool(c);
        constexpr size_t kBytes = size_t{512} << 20;
        auto held = pool.acquire(Kind::memory, 1, kBytes);
        ASSERT_TRUE(held);
        for (size_t at = 0; at < kBytes; at += 8192) // every other page: not dense
            held->base()[at] = std::byte{1};
        std::atomic<bool> releasing{false};
        std::thread releaser([&] {
            releasing.store(true);
            pool.release(std::move(*held));
        });
        while (!releasing.load())
            std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(5)); // inside the reset
        errno = 0;
        auto next = pool.acquire(Kind::memory, 2, 4096);
        int err = errno;
        releaser.join();
        ASSERT_TRUE(next) << "run " << run
                          << ": exhaustion reported while the only slot was being reset: "
                          << strerror(err);
        EXPECT_EQ(pool.stats().exhausted, 0u);
    }
}

// With 6 slots, batches of 2 and 3 threads each holding at most one slot,
// at least 3 slots are always free, queued or being reset: acquire() must
// never fail.  Five runs of each reset policy.
TEST(Tenancy, NoExhaustionWhileSlotsAreOnTheirWayBack) {
    for (auto reset :
         {wasmpool::Reset::adaptive, wasmpool::Reset::decommit, wasmpool::Reset::zero_in_place}) {
        for (int run = 0; run < 5; run++) {
            wasmpool::Config c;
            c.memory_slots = c.table_slots = c.stack_slots = 6;
            c.batch_size = 2;
            c.shards = 3;
            c.reset = reset;
            Pool pool(c);
            std::atomic<uint64_t> failed{0}, done{0};
            std::vector<std::thread> threads;
            for (int t = 0; t < 3; t++) {
                threads.emplace_back([&, t] {
                    for (int i = 0; i < 3000; i++) {
                        auto l = pool.acquire(Kind::memory, static_cast<uint64_t>(t), 4 * 4096);
                        if (!l) {
                            failed.fetch_add(1);
                            continue;
                        }
                        memset(l->base(), 0x5a, 4 * 4096);
                        pool.release(std::move(*l));
                        done.fetch_add(1);
                    }
                });
            }
            for (auto &th : threads)
                th.join();
            EXPECT_EQ(failed.load(), 0u)
                << wasmpool::reset_name(reset) << " run " << run << ": " << failed.load() << " of "
                << failed.load() + done.load() << " acquires reported exhaustion";
        }
    }
}

} // namespace
