// SPDX-License-Identifier: MIT
// The C embedding API (wasmpool/wasm-rt-pooled.h): pools by handle, a pool
// per instantiation, typed errors, and exhaustion decided by the caller.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>

#include "echo.h"
#include "wasm-rt-impl.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

class CApiEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_echo_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new CApiEnv);

wasm_rt_pool_config_t small_config() {
    wasm_rt_pool_config_t c;
    wasm_rt_pool_config_init(&c);
    c.memory_slots = c.table_slots = c.stack_slots = 2;
    c.batch_size = 1;
    return c;
}

wasmpool::Pool &cxx(wasm_rt_pool_t *p) {
    return *static_cast<wasmpool::Pool *>(wasm_rt_pool_cxx(p));
}

// Instantiate under wasm_rt_impl_try(): the trap code (0 on success).
int instantiate(Z_echo_instance_t *inst) {
    int trap = wasm_rt_impl_try();
    if (trap == 0)
        Z_echo_instantiate(inst);
    return trap;
}

// echo(1, 2) under a wasm_rt_impl_try() of its own: 1, or ~trap code.
uint32_t call_echo(Z_echo_instance_t *inst) {
    int trap = wasm_rt_impl_try();
    if (trap != 0)
        return ~static_cast<uint32_t>(trap);
    return Z_echoZ_echo(inst, 1, 2);
}

TEST(CApi, CreateRefusesWhatItCannotServe) {
    wasm_rt_pool_t *pool = nullptr;
    EXPECT_EQ(wasm_rt_pool_create(nullptr, &pool), WASM_RT_POOL_INVALID_ARGUMENT);

    wasm_rt_pool_config_t c = small_config();
    c.size = sizeof(c) - 8; // a caller built against another layout
    EXPECT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_INVALID_CONFIG);
    EXPECT_NE(std::string(wasm_rt_pool_last_message()).find("wasm_rt_pool_config_init"),
              std::string::npos)
        << wasm_rt_pool_last_message();

    c = small_config();
    c.stack_guard_bytes = 0;
    EXPECT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_INVALID_CONFIG);
    EXPECT_NE(std::string(wasm_rt_pool_last_message()).find("stack_guard_bytes"), std::string::npos)
        << wasm_rt_pool_last_message();

    c = small_config();
    c.reset = static_cast<wasm_rt_pool_reset_t>(42);
    EXPECT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_INVALID_CONFIG);
    c = small_config();
    c.on_exhausted = static_cast<wasm_rt_pool_on_exhausted_t>(7);
    EXPECT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_INVALID_CONFIG);
    c = small_config();
    c.table_elements = SIZE_MAX / 2;
    EXPECT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_INVALID_CONFIG);
    EXPECT_EQ(pool, nullptr) << "set on success only";
    EXPECT_STREQ(wasm_rt_pool_strerror(WASM_RT_POOL_EXHAUSTED), "no free slot in the pool");
}

// No free table slot: the instantiation completes on a stock table, the
// caller is told it failed, and freeing it gives every pooled slot back.
// Nothing is silently served by the stock runtime unless asked for.
TEST(CApi, ExhaustedPoolIsReportedAndTheInstanceFreesWhole) {
    wasm_rt_pool_config_t c = small_config();
    c.memory_slots = 2;
    c.table_slots = 1;
    wasm_rt_pool_t *pool = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_OK) << wasm_rt_pool_last_message();
    Z_echo_instance_t a, b;
    wasm_rt_pool_select(pool, 1);
    ASSERT_EQ(instantiate(&a), 0);
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_OK);
    wasm_rt_pool_select(pool, 1);
    ASSERT_EQ(instantiate(&b), 0); // b gets the second memory slot, then finds no table slot
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_EXHAUSTED);
    EXPECT_NE(std::string(wasm_rt_pool_last_message()).find("no free table slot"),
              std::string::npos)
        << wasm_rt_pool_last_message();
    EXPECT_TRUE(cxx(pool).locate(wasmpool::Kind::memory, Z_echoZ_memory(&b)->data));
    EXPECT_FALSE(cxx(pool).locate(wasmpool::Kind::table, Z_echoZ_table(&b)->data));
    EXPECT_EQ(wasm_rt_pool_fallbacks(pool), 0u) << "a failure, not a fallback";
    Z_echo_free(&b);
    auto st = cxx(pool).stats();
    EXPECT_EQ(st.acquired - st.released, 2u) << "a's memory and table only";
    EXPECT_EQ(call_echo(&a), 1u) << "a is untouched";
    Z_echo_free(&a);
    st = cxx(pool).stats();
    EXPECT_EQ(st.acquired, st.released);
    wasm_rt_pool_select(pool, 1);
    ASSERT_EQ(instantiate(&b), 0);
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_OK);
    Z_echo_free(&b);
    wasm_rt_pool_select(nullptr, 0);
    wasm_rt_pool_destroy(pool);
}

// WASM_RT_POOL_RESET_ZERO_IN_PLACE: the next instance of a slot reads zero
// where the last one wrote, cleared by MADVISEV_ZERO, not decommitted.
TEST(CApi, ZeroInPlaceResetClearsTheNextInstancesMemory) {
    wasm_rt_pool_config_t c = small_config();
    c.memory_slots = c.table_slots = c.stack_slots = 1;
    c.reset = WASM_RT_POOL_RESET_ZERO_IN_PLACE;
    wasm_rt_pool_t *pool = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_OK) << wasm_rt_pool_last_message();
    EXPECT_EQ(cxx(pool).config().reset, wasmpool::Reset::zero_in_place);
    for (int round = 0; round < 3; round++) {
        Z_echo_instance_t inst;
        wasm_rt_pool_select(pool, 1);
        ASSERT_EQ(instantiate(&inst), 0);
        wasm_rt_memory_t *mem = Z_echoZ_memory(&inst);
        for (uint64_t i = 0; i < mem->size; i++)
            ASSERT_EQ(mem->data[i], 0) << "round " << round << ", byte " << i;
        memset(mem->data, 0x5c, mem->size);
        Z_echo_free(&inst);
    }
    auto st = cxx(pool).stats();
    EXPECT_GT(st.zero_calls, 0u);
    EXPECT_EQ(st.decommitted, 0u);
    wasm_rt_pool_destroy(pool);
}

TEST(CApi, StockFallbackOnlyWhenAskedFor) {
    wasm_rt_pool_config_t c = small_config();
    c.memory_slots = 1;
    c.on_exhausted = WASM_RT_POOL_ON_EXHAUSTED_USE_STOCK;
    wasm_rt_pool_t *pool = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_OK);
    wasm_rt_pool_select(pool, 1);
    Z_echo_instance_t a, b;
    ASSERT_EQ(instantiate(&a), 0);
    ASSERT_EQ(instantiate(&b), 0);
    EXPECT_EQ(wasm_rt_pool_fallbacks(pool), 1u);
    EXPECT_FALSE(cxx(pool).locate(wasmpool::Kind::memory, Z_echoZ_memory(&b)->data));
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_OK) << "asked for: not an error";
    EXPECT_EQ(call_echo(&b), 1u);
    Z_echo_free(&b);
    Z_echo_free(&a);
    wasm_rt_pool_select(nullptr, 0);
    wasm_rt_pool_destroy(pool);
}

// echo's table has 4 elements: a pool whose table slots hold 2 refuses it
// with its own error, not "exhausted".
TEST(CApi, TableLargerThanItsSlotIsRefused) {
    wasm_rt_pool_config_t c = small_config();
    c.table_elements = 2;
    wasm_rt_pool_t *pool = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_OK) << wasm_rt_pool_last_message();
    wasm_rt_pool_select(pool, 1);
    Z_echo_instance_t a;
    ASSERT_EQ(instantiate(&a), 0);
    EXPECT_EQ(wasm_rt_pool_last_error(), WASM_RT_POOL_TOO_LARGE);
    EXPECT_NE(std::string(wasm_rt_pool_last_message()).find("table"), std::string::npos);
    EXPECT_FALSE(cxx(pool).locate(wasmpool::Kind::table, Z_echoZ_table(&a)->data));
    Z_echo_free(&a);
    auto st = cxx(pool).stats();
    EXPECT_EQ(st.acquired, st.released) << "the memory it took went back";
    wasm_rt_pool_select(nullptr, 0);
    wasm_rt_pool_destroy(pool);
}

TEST(CApi, EachInstantiationFromTheSelectedPool) {
    wasm_rt_pool_config_t c = small_config();
    wasm_rt_pool_t *x = nullptr, *y = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &x), WASM_RT_POOL_OK);
    ASSERT_EQ(wasm_rt_pool_create(&c, &y), WASM_RT_POOL_OK);
    Z_echo_instance_t in_x, in_y;
    wasm_rt_pool_select(x, 1);
    ASSERT_EQ(instantiate(&in_x), 0);
    wasm_rt_pool_select(y, 1);
    ASSERT_EQ(instantiate(&in_y), 0);
    EXPECT_TRUE(cxx(x).locate(wasmpool::Kind::memory, Z_echoZ_memory(&in_x)->data));
    EXPECT_TRUE(cxx(y).locate(wasmpool::Kind::memory, Z_echoZ_memory(&in_y)->data));
    Z_echo_free(&in_x); // y is selected: it still goes back to x
    EXPECT_EQ(cxx(x).stats().released, 2u);
    EXPECT_EQ(cxx(y).stats().released, 0u);
    Z_echo_free(&in_y);
    wasm_rt_pool_select(nullptr, 0);
    wasm_rt_pool_destroy(y);
    wasm_rt_pool_destroy(x);
}

TEST(CApi, StacksComeFromThePool) {
    wasm_rt_pool_config_t c = small_config();
    wasm_rt_pool_t *pool = nullptr;
    ASSERT_EQ(wasm_rt_pool_create(&c, &pool), WASM_RT_POOL_OK);
    wasm_rt_pool_stack_t s1, s2, s3;
    ASSERT_EQ(wasm_rt_pool_stack_acquire(pool, 1, &s1), WASM_RT_POOL_OK);
    ASSERT_EQ(wasm_rt_pool_stack_acquire(pool, 1, &s2), WASM_RT_POOL_OK);
    EXPECT_EQ(wasm_rt_pool_stack_acquire(pool, 1, &s3), WASM_RT_POOL_EXHAUSTED);
    EXPECT_EQ(s1.size, c.stack_bytes);
    EXPECT_TRUE(cxx(pool).locate(wasmpool::Kind::stack, s1.base));
    memset(s1.base, 1, s1.size); // all of it is usable
    wasm_rt_pool_stack_release(pool, &s1);
    EXPECT_EQ(s1.base, nullptr);
    wasm_rt_pool_stack_release(pool, &s2);
    EXPECT_EQ(wasm_rt_pool_stack_acquire(nullptr, 1, &s3), WASM_RT_POOL_INVALID_ARGUMENT);
    wasm_rt_pool_destroy(pool);
}

TEST(CApiDeath, MisuseStopsTheProcess) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            wasmpool::Config c;
            c.memory_slots = c.table_slots = c.stack_slots = 1;
            c.memory_bounds = wasmpool::Bounds::checked;
            c.memory_guard_bytes = 65536;
            wasmpool::Pool pool(c);
            wasm_rt_pooled_set_pool(&pool);
        },
        "memory_bounds is not guard_pages");
    EXPECT_DEATH(
        {
            wasm_rt_pool_config_t c = small_config();
            wasm_rt_pool_t *pool = nullptr;
            wasm_rt_pool_create(&c, &pool);
            wasm_rt_pool_stack_t s;
            wasm_rt_pool_stack_acquire(pool, 1, &s);
            wasm_rt_pool_stack_t copy = s;
            wasm_rt_pool_stack_release(pool, &s);
            wasm_rt_pool_stack_release(pool, &copy); // a stale copy
        },
        "stack slot [0-9]+ .*released twice");
    // Destroyed under a live instance: its memory would be freed through
    // the stock runtime, or reach a later pool mapped at the same place.
    EXPECT_DEATH(
        {
            wasm_rt_pool_config_t c = small_config();
            wasm_rt_pool_t *pool = nullptr;
            wasm_rt_pool_create(&c, &pool);
            wasm_rt_pool_select(pool, 1);
            Z_echo_instance_t a;
            Z_echo_instantiate(&a);
            wasm_rt_pool_select(nullptr, 0);
            wasm_rt_pool_destroy(pool);
        },
        "wasm_rt_pool_destroy: 2 slots still in use");
}

} // namespace
