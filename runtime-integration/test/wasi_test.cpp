// SPDX-License-Identifier: MIT
// The WASI programs (runtime-integration/wasi/), compiled by clang for
// wasm32-wasi and by wasm2c, run through wasm-rt-pooled and the project's
// WASI layer; and that layer against a hostile guest's pointers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "programs.h"
#include "wasm-rt-impl.h"
#include "wasmpool/fiber.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasi.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

namespace wp = wasmpool::wasi_programs;

// What each program prints with the arguments of programs.cpp.  The
// request handler's response and the compressed size and hash are its
// output when the same C is built natively (gcc -O2); the input hash, the
// prime count (pi(2^20) = 82025, a known value) and the page checksum were
// also computed by an independent Python script.
const char *expected_stdout(const std::string &name) {
    if (name == "request")
        return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 255\r\n\r\n"
               "{\"method\": \"GET\", \"path\": \"/api/items\", \"params\": {\"id\": \"42\", "
               "\"name\": \"blue widget\", \"tag\": \"a\"}, \"headers\": {\"host\": "
               "\"shop.example\", \"user-agent\": \"curl/8.0\", \"accept\": "
               "\"application/json\"}, \"order\": {\"qty\": 3, \"price\": 1250, \"total\": 3750}, "
               "\"id\": \"42\"}\n";
    if (name == "compress")
        return "input 131072 bytes fnv1a64 c7529211a5852a85\n"
               "lz77 68332 bytes fnv1a64 9afcdb75d796318d\n"
               "round trip ok\n";
    if (name == "grow")
        return "primes below 1048576: 82025\n"
               "pages 1152 checksum dfe4b556a54f8f00\n";
    return nullptr;
}

class WasiEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        wp::init_modules();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new WasiEnv);

wasmpool::Config pool_config(wasmpool::Reset reset) {
    wasmpool::Config c;
    c.memory_slots = 4;
    c.table_slots = 4;
    c.stack_slots = 4;
    c.batch_size = 2;
    c.reset = reset;
    return c;
}

// Storage for one wasm2c instance of @p.
struct Instance {
    explicit Instance(const wp::Program &p)
        : align(p.instance_align),
          at(::operator new(p.instance_bytes, std::align_val_t(p.instance_align))) {
        memset(at, 0, p.instance_bytes);
    }
    ~Instance() { ::operator delete(at, std::align_val_t(align)); }
    Instance(const Instance &) = delete;
    Instance &operator=(const Instance &) = delete;
    size_t align;
    void *at;
};

struct Outcome {
    int trap = 0; // the wasm_rt_trap_t, if the guest trapped
    uint32_t status = 0;
    bool exited = false;
    std::string out, err;
    uint32_t memory_pages = 0;
    bool pooled_memory = false;
};

std::string output(wasmpool_wasi_t *w, uint32_t fd) {
    size_t len = 0;
    const char *p = wasmpool_wasi_output(w, fd, &len);
    return std::string(p, len);
}

// Instantiate @p with @w, run its _start on a fiber stack from @pool,
// collect what it printed, free it.  @before_start, if given, sees the
// instance's memory first.
template <class Fn>
Outcome run_program(const wp::Program &p, wasmpool_wasi_t *w, wasmpool::Pool &pool,
                    Fn &&before_start) {
    Outcome o;
    Instance inst(p);
    wasmpool::run_on_fiber(wasmpool::PooledStack(pool, 2), [&] {
        // Armed on the stack that makes the guest calls (wasm-rt-impl.h).
        int trap = wasm_rt_impl_try();
        if (trap != 0) {
            o.trap = trap; // the instance is half made: not freed
            return;
        }
        p.instantiate(inst.at, w);
        wasm_rt_memory_t *mem = p.memory(inst.at);
        o.pooled_memory = pool.locate(wasmpool::Kind::memory, mem->data).has_value();
        before_start(mem);
        wasmpool_wasi_bind_memory(w, mem);
        o.status = wasmpool_wasi_run(w, p.start, inst.at);
        o.exited = wasmpool_wasi_exited(w);
        o.memory_pages = mem->pages;
        p.free(inst.at);
    });
    o.out = output(w, 1);
    o.err = output(w, 2);
    wasmpool_wasi_reset(w);
    return o;
}

Outcome run_program(const wp::Program &p, wasmpool_wasi_t *w, wasmpool::Pool &pool) {
    return run_program(p, w, pool, [](wasm_rt_memory_t *) {});
}

class WasiProgram : public ::testing::TestWithParam<std::string> {};

// Each program, 50 times per reset policy from a small pool (so slots are
// reset and reused many times), prints exactly its expected output.
TEST_P(WasiProgram, ExpectedOutputEveryTime) {
    const wp::Program *p = wp::find(GetParam());
    ASSERT_NE(p, nullptr);
    const char *want = expected_stdout(p->name);
    ASSERT_NE(want, nullptr);
    wasmpool_wasi_t *w = wp::make_context(*p);
    ASSERT_NE(w, nullptr);
    for (wasmpool::Reset reset : {wasmpool::Reset::adaptive, wasmpool::Reset::decommit}) {
        wasmpool::Pool pool(pool_config(reset));
        wasm_rt_pooled_set_pool(&pool);
        wasm_rt_pooled_set_module(7);
        for (int round = 0; round < 50; round++) {
            Outcome o = run_program(*p, w, pool);
            ASSERT_EQ(o.trap, 0) << wasm_rt_strerror(static_cast<wasm_rt_trap_t>(o.trap));
            ASSERT_TRUE(o.pooled_memory) << "memory not from the pool";
            ASSERT_EQ(o.out, want)
                << p->name << ", " << wasmpool::reset_name(reset) << ", round " << round;
            ASSERT_EQ(o.err, "");
            ASSERT_EQ(o.status, 0u);
            ASSERT_FALSE(o.exited);
            if (std::string(p->name) == "grow") {
                ASSERT_GE(o.memory_pages, 80u) << "5 MiB is 80 wasm pages";
            }
        }
        auto st = pool.stats();
        EXPECT_EQ(st.quarantined, 0u);
#if !defined(__SANITIZE_THREAD__) // no fibers under TSan, see fiber.h
        EXPECT_GE(st.acquired, 50u * 3) << "memory, table and stack per round";
#else
        EXPECT_GE(st.acquired, 50u * 2) << "memory and table per round";
#endif
        wasm_rt_pooled_use_stock();
    }
    wasmpool_wasi_destroy(w);
}

INSTANTIATE_TEST_SUITE_P(Programs, WasiProgram, ::testing::Values("request", "compress", "grow"),
                         [](const auto &info) { return info.param; });

// The pages grow wrote (5 MiB) read zero for the next instance of the same
// slot: grown by the host before the program runs, all of it beyond the
// initial memory is checked.
TEST(Wasi, GrownMemoryReadsZeroForTheNextTenant) {
    const wp::Program *p = wp::find("grow");
    ASSERT_NE(p, nullptr);
    wasmpool_wasi_t *w = wp::make_context(*p);
    wasmpool::Config c = pool_config(wasmpool::Reset::adaptive);
    c.memory_slots = 1; // every round gets the same slot
    wasmpool::Pool pool(c);
    wasm_rt_pooled_set_pool(&pool);
    for (int round = 0; round < 6; round++) {
        size_t nonzero = 0;
        Outcome o = run_program(*p, w, pool, [&](wasm_rt_memory_t *mem) {
            uint32_t initial = mem->size;
            ASSERT_NE(wasm_rt_grow_memory(mem, 96), UINT32_MAX);
            for (uint32_t i = initial; i < mem->size; i++)
                nonzero += mem->data[i] != 0;
        });
        ASSERT_EQ(o.trap, 0);
        EXPECT_EQ(nonzero, 0u) << "round " << round << ": a previous tenant's bytes";
        EXPECT_EQ(o.out, expected_stdout("grow"));
    }
    wasm_rt_pooled_use_stock();
    wasmpool_wasi_destroy(w);
}

// proc_exit() ends the run with its status, from inside the guest's call
// stack; the handler's 400 and its reason are captured on fds 1 and 2.
TEST(Wasi, ProcExitUnwindsWithItsStatus) {
    const wp::Program *p = wp::find("request");
    ASSERT_NE(p, nullptr);
    const char *argv[] = {"request", "GET /x?a=%zz HTTP/1.1"};
    const char *envp[] = {nullptr};
    wasmpool_wasi_t *w = wasmpool_wasi_create(2, argv, envp, 0);
    ASSERT_NE(w, nullptr);
    wasmpool::Pool pool(pool_config(wasmpool::Reset::adaptive));
    wasm_rt_pooled_set_pool(&pool);
    for (int round = 0; round < 3; round++) {
        Outcome o = run_program(*p, w, pool);
        ASSERT_EQ(o.trap, 0);
        EXPECT_TRUE(o.exited);
        EXPECT_EQ(o.status, 2u);
        EXPECT_EQ(o.out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        EXPECT_EQ(o.err, "bad request: bad percent-encoding\n");
    }
    // The good request right after, on the same context: nothing left over.
    wasmpool_wasi_destroy(w);
    w = wp::make_context(*p);
    Outcome o = run_program(*p, w, pool);
    EXPECT_FALSE(o.exited);
    EXPECT_EQ(o.status, 0u);
    EXPECT_EQ(o.out, expected_stdout("request"));
    wasm_rt_pooled_use_stock();
    wasmpool_wasi_destroy(w);
}

// A captured stream stops at its limit: a short write, then EFBIG (the
// program's stdio sees a failed write and carries on).
TEST(Wasi, OutputIsCappedAtTheLimit) {
    const wp::Program *p = wp::find("compress");
    ASSERT_NE(p, nullptr);
    wasmpool_wasi_t *w = wasmpool_wasi_create(1, p->argv.data(), p->envp.data(), 16);
    ASSERT_NE(w, nullptr);
    wasmpool::Pool pool(pool_config(wasmpool::Reset::adaptive));
    wasm_rt_pooled_set_pool(&pool);
    Outcome o = run_program(*p, w, pool);
    EXPECT_EQ(o.out, std::string(expected_stdout("compress"), 16));
    wasm_rt_pooled_use_stock();
    wasmpool_wasi_destroy(w);
    EXPECT_EQ(wasmpool_wasi_create(-1, nullptr, nullptr, 0), nullptr);
    const char *null_arg[] = {nullptr};
    EXPECT_EQ(wasmpool_wasi_create(1, null_arg, nullptr, 0), nullptr);
    EXPECT_EQ(wasmpool_wasi_create(0, nullptr, nullptr, size_t{2} << 30), nullptr);
}

// A hostile guest's pointers: every range that leaves the memory, by one
// byte or by wrapping past 4 GiB, is EFAULT (21) and changes nothing;
// ranges that end exactly at the memory's end are fine.  The memory is a
// host buffer with a canary tail, so that a broken check shows as a failed
// expectation rather than a fault on a guard page.
class WasiHostile : public ::testing::Test {
  protected:
    static constexpr uint32_t kSize = 65536, kTail = 4096;
    void SetUp() override {
        prog = wp::find("request");
        ASSERT_NE(prog, nullptr);
        w = wp::make_context(*prog); // its arguments and environment
        ASSERT_NE(w, nullptr);
        backing.assign(kSize + kTail, 0xcc);
        std::fill(backing.begin(), backing.begin() + kSize, 0);
        mem.data = backing.data();
        mem.pages = mem.max_pages = 1;
        mem.size = kSize;
        wasmpool_wasi_bind_memory(w, &mem);
        size = kSize;
        // A guest iovec at 0x100 pointing at "hello" at 0x200.
        memcpy(mem.data + 0x200, "hello", 5);
        put(0x100, 0x200);
        put(0x104, 5);
    }
    void TearDown() override {
        wasmpool_wasi_destroy(w);
        size_t touched = 0;
        for (uint32_t i = kSize; i < kSize + kTail; i++)
            touched += backing[i] != 0xcc;
        EXPECT_EQ(touched, 0u) << "bytes written past the end of the memory";
    }
    void put(uint32_t at, uint32_t v) { memcpy(mem.data + at, &v, 4); }
    uint32_t get(uint32_t at) {
        uint32_t v;
        memcpy(&v, mem.data + at, 4);
        return v;
    }
    std::string out() { return output(w, 1); }

    const wp::Program *prog = nullptr;
    wasmpool_wasi_t *w = nullptr;
    std::vector<uint8_t> backing;
    wasm_rt_memory_t mem{};
    uint32_t size = 0;
};

constexpr uint32_t kFault = 21, kBadf = 8, kInval = 28, kSpipe = 70;

TEST_F(WasiHostile, FdWrite) {
    ASSERT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 1, 0x300), 0u);
    EXPECT_EQ(get(0x300), 5u);
    EXPECT_EQ(out(), "hello");
    // The iovec array runs one byte past the end.
    memcpy(mem.data + size - 7, mem.data + 0x100, 7);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, size - 7, 1, 0x300), kFault);
    // The array wraps: 0x20000000 iovecs of 8 bytes are 4 GiB.
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 0x20000000, 0x300), kFault);
    // A buffer that ends one byte past the memory, or starts at 4 GiB - 1.
    put(0x108, size - 4);
    put(0x10c, 5);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 2, 0x300), kFault);
    put(0x108, UINT32_MAX);
    put(0x10c, 2);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 2, 0x300), kFault);
    // nwritten out of bounds.
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 1, size - 3), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 1, UINT32_MAX), kFault);
    EXPECT_EQ(out(), "hello") << "a failed write wrote something";
    // Exactly at the end is inside.
    memcpy(mem.data + size - 5, "world", 5);
    put(0x108, size - 5);
    put(0x10c, 5);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 2, 0x108, 1, size - 4), 0u);
    EXPECT_EQ(output(w, 2), "world");
    // fds that do not exist, or were closed.
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 0, 0x100, 1, 0x300), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 3, 0x100, 1, 0x300), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_close(w, 1), 0u);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_close(w, 1), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 1, 0x300), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_close(w, 7), kBadf);
}

TEST_F(WasiHostile, ArgsAndEnviron) {
    ASSERT_EQ(Z_wasi_snapshot_preview1Z_args_sizes_get(w, 0x100, 0x104), 0u);
    uint32_t argc = get(0x100), argv_bytes = get(0x104);
    EXPECT_EQ(argc, 3u);
    ASSERT_EQ(Z_wasi_snapshot_preview1Z_args_get(w, 0x200, 0x400), 0u);
    EXPECT_STREQ(reinterpret_cast<char *>(mem.data + get(0x204)), prog->argv[1]);
    // The pointer array or the strings one byte past the end, or wrapping.
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_get(w, size - 4 * argc + 1, 0x400), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_get(w, 0x200, size - argv_bytes + 1), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_get(w, 0x200, UINT32_MAX), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_get(w, 0x200, size - argv_bytes), 0u);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_sizes_get(w, size - 3, 0x104), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_sizes_get(w, 0x100, UINT32_MAX - 1), kFault);

    ASSERT_EQ(Z_wasi_snapshot_preview1Z_environ_sizes_get(w, 0x100, 0x104), 0u);
    uint32_t envc = get(0x100), env_bytes = get(0x104);
    EXPECT_EQ(envc, 4u);
    ASSERT_EQ(Z_wasi_snapshot_preview1Z_environ_get(w, 0x200, 0x400), 0u);
    EXPECT_STREQ(reinterpret_cast<char *>(mem.data + get(0x200)), "HTTP_HOST=shop.example");
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_environ_get(w, size - 4 * envc + 1, 0x400), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_environ_get(w, 0x200, size - env_bytes + 1), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_environ_sizes_get(w, 0x100, size), kFault);
}

TEST_F(WasiHostile, ClockRandomFdstatSeek) {
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(w, 1, 0, size - 8), 0u);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(w, 1, 0, size - 7), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(w, 0, 0, UINT32_MAX), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(w, 99, 0, 0x100), kInval);

    EXPECT_EQ(Z_wasi_snapshot_preview1Z_random_get(w, size - 16, 16), 0u);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_random_get(w, size - 16, 17), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_random_get(w, 16, UINT32_MAX), kFault);

    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(w, 1, size - 24), 0u);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(w, 2, size - 23), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(w, 0, 0x100), kBadf);

    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_seek(w, 1, 0, 0, 0x100), kSpipe);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_seek(w, 5, 0, 0, 0x100), kBadf);
}

// Before a memory is bound (or after a reset), every pointer is outside.
TEST_F(WasiHostile, UnboundMemory) {
    wasmpool_wasi_reset(w);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_sizes_get(w, 0x100, 0x104), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(w, 1, 0x100, 1, 0x300), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_random_get(w, 0, 0), kFault);
}

// A NULL context is refused, not followed: the imports return EFAULT or
// EBADF, the accessors nothing.
TEST(Wasi, NullContext) {
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_args_sizes_get(nullptr, 0, 4), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_environ_get(nullptr, 0, 4), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_clock_time_get(nullptr, 1, 0, 0), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_random_get(nullptr, 0, 1), kFault);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_write(nullptr, 1, 0, 1, 8), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_close(nullptr, 1), kBadf);
    EXPECT_EQ(Z_wasi_snapshot_preview1Z_fd_fdstat_get(nullptr, 2, 0), kBadf);
    size_t len = 99;
    EXPECT_EQ(wasmpool_wasi_output(nullptr, 1, &len), nullptr);
    EXPECT_EQ(len, 0u);
    EXPECT_EQ(wasmpool_wasi_exited(nullptr), 0);
    wasmpool_wasi_bind_memory(nullptr, nullptr);
    wasmpool_wasi_reset(nullptr);
    wasmpool_wasi_destroy(nullptr);
}

// The host's misuse stops the process with a message: there is no exit
// status to give and no frame to unwind to.
TEST(WasiDeath, HostMisuse) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(wasmpool_wasi_run(
                     nullptr, [](void *) {}, nullptr),
                 "NULL argument");
    EXPECT_DEATH(
        {
            wasmpool_wasi_t *w = wasmpool_wasi_create(0, nullptr, nullptr, 0);
            Z_wasi_snapshot_preview1Z_proc_exit(w, 3);
        },
        "proc_exit\\(3\\) outside wasmpool_wasi_run");
    EXPECT_DEATH(
        {
            // A run started from inside a run of the same context.
            static wasmpool_wasi_t *w = wasmpool_wasi_create(0, nullptr, nullptr, 0);
            wasmpool_wasi_run(
                w,
                [](void *) {
                    wasmpool_wasi_run(
                        w, [](void *) {}, nullptr);
                },
                nullptr);
        },
        "already running on this context");
}

} // namespace
