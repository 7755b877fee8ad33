// SPDX-License-Identifier: MIT
// The seed's module, compiled by wasm2c, instantiated through
// wasm-rt-pooled and through the (fixed) stock runtime.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstring>
#include <fstream>
#include <string>

#include "echo.h"
#include "wasm-rt-impl.h"
#include "wasmpool/fiber.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

class WasmEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_echo_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new WasmEnv);

size_t vm_size_kb() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmSize:", 0) == 0)
            return std::stoul(line.substr(7));
    return 0;
}

wasmpool::Config test_config() {
    wasmpool::Config c;
    c.memory_slots = 4;
    c.table_slots = 4;
    c.stack_slots = 4;
    c.batch_size = 2;
    return c;
}

TEST(Wasm, EchoReturnsOneThroughPooledRuntime) {
    wasmpool::Pool pool(test_config());
    wasm_rt_pooled_set_pool(&pool);
    wasm_rt_pooled_set_module(1);
    for (int round = 0; round < 50; round++) {
        Z_echo_instance_t inst;
        Z_echo_instantiate(&inst);
        wasm_rt_memory_t *mem = Z_echoZ_memory(&inst);
        ASSERT_EQ(mem->pages, 17u);
        ASSERT_TRUE(pool.locate(wasmpool::Kind::memory, mem->data)) << "not a pool slot";
        // What the previous instance's init wrote must be gone.
        for (uint32_t page = 0; page < 256; page++)
            ASSERT_EQ(mem->data[page * 4096], 0) << "round " << round << " page " << page;
        Z_echoZ_init(&inst, 256);
        EXPECT_EQ(mem->data[255 * 4096], 0xa5);
        EXPECT_EQ(Z_echoZ_echo(&inst, 7, 8), 1u);
        Z_echo_free(&inst);
    }
    EXPECT_EQ(pool.stats().quarantined, 0u);
    wasm_rt_pooled_use_stock();
}

TEST(Wasm, EchoOnPooledFiberStack) {
    wasmpool::Pool pool(test_config());
    wasm_rt_pooled_set_pool(&pool);
    for (int round = 0; round < 20; round++) {
        Z_echo_instance_t inst;
        Z_echo_instantiate(&inst);
        uint32_t result = 0;
        wasmpool::run_on_fiber(wasmpool::PooledStack(pool, 1), [&] {
            Z_echoZ_init(&inst, 16);
            result = Z_echoZ_echo(&inst, 1, 2);
        });
        EXPECT_EQ(result, 1u);
        Z_echo_free(&inst);
    }
    auto st = pool.stats();
    EXPECT_EQ(st.acquired, st.released);
#if !defined(__SANITIZE_THREAD__) // no fibers under TSan, see fiber.h
    EXPECT_GE(st.acquired, 20u * 3) << "memory, table and stack per round";
#endif
    wasm_rt_pooled_use_stock();
}

// The stock runtime, with Debian 1.0.32's unmap-size bug fixed: no address
// space is leaked per instance (the unfixed one leaks ~8 GiB each).
TEST(Wasm, StockRuntimeFreesItsWholeReservation) {
    wasm_rt_pooled_use_stock();
    size_t before = vm_size_kb();
    for (int round = 0; round < 64; round++) {
        Z_echo_instance_t inst;
        Z_echo_instantiate(&inst);
        wasmpool::run_on_fiber(boost::context::protected_fixedsize_stack(256 << 10),
                               [&] { EXPECT_EQ(Z_echoZ_echo(&inst, 1, 2), 1u); });
        Z_echo_free(&inst);
    }
    size_t after = vm_size_kb();
    EXPECT_LT(after, before + (size_t{1} << 20)) << "leaked " << (after - before) << " kB";
}

// A pool too small for the module: the caller is told, instead of a
// silent fall back to the stock runtime (capi_test.cpp has the rest).
TEST(Wasm, ExhaustedPoolIsReported) {
    wasmpool::Config c = test_config();
    c.memory_slots = 1;
    c.reset = wasmpool::Reset::decommit;
    c.batch_size = 8;
    wasmpool::Pool pool(c);
    wasm_rt_pooled_set_pool(&pool);
    Z_echo_instance_t a, b;
    Z_echo_instantiate(&a);
    wasm_rt_pool_select(nullptr, 0); // clears the thread's error
    Z_echo_instantiate(&b);          // no second memory slot
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_EXHAUSTED);
    EXPECT_FALSE(pool.locate(wasmpool::Kind::memory, Z_echoZ_memory(&b)->data));
    Z_echo_free(&b);
    Z_echo_free(&a);
    wasm_rt_pooled_use_stock();
}

// Memories and tables go back to the pool that holds them, whichever
// pool is current when they are freed.
TEST(Wasm, FreedThroughTheOwningPool) {
    wasmpool::Pool first(test_config()), second(test_config());
    wasm_rt_pooled_set_pool(&first);
    Z_echo_instance_t inst;
    Z_echo_instantiate(&inst);
    wasm_rt_pooled_set_pool(&second);
    Z_echo_free(&inst);
    EXPECT_EQ(first.stats().released, 2u) << "memory and table";
    EXPECT_EQ(second.stats().released, 0u);
    wasm_rt_pooled_use_stock();
}

TEST(WasmDeath, MemoryFreedTwice) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            wasmpool::Pool pool(test_config());
            wasm_rt_pooled_set_pool(&pool);
            Z_echo_instance_t inst;
            Z_echo_instantiate(&inst);
            wasm_rt_memory_t copy = *Z_echoZ_memory(&inst);
            Z_echo_free(&inst);
            wasm_rt_free_memory(&copy); // a stale copy of the freed memory
        },
        "release of memory slot [0-9]+ .* in state free: released twice");
    EXPECT_DEATH(
        {
            wasm_rt_pooled_use_stock();
            Z_echo_instance_t inst;
            Z_echo_instantiate(&inst);
            Z_echo_free(&inst);
            Z_echo_free(&inst); // the table (freed first) and memory are null now
        },
        "table freed twice, or never allocated");
}

} // namespace
