// SPDX-License-Identifier: MIT
// A guest must not be able to hang or crash the host through its own
// stack.  It can recurse until its stack is nearly spent and then call the
// host: host code that then runs into the guard must not be jumped out of
// as if it were the guest's trap (malloc's arena lock would stay held, and
// every later malloc in the process would wait for it), so the runtime
// checks the stack at each import's entry and traps there, before any host
// code runs.  And a fault after a guarded call has returned must not jump
// back into that call's dead frame.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "hostcall.h"
#include "run_on_stack.h"
#include "traps.h"
#include "wasm-rt-impl.h"
#include "wasmpool/pool.h"
#include "wasmpool/wasi.h"
#include "wasmpool/wasm-rt-pooled.h"

namespace {

pthread_mutex_t g_host_lock = PTHREAD_MUTEX_INITIALIZER;
uint64_t g_host_entries = 0;    // locked_work's bodies that ran
uintptr_t g_recorded_frame = 0; // where the last one ran

[[gnu::noinline]] uint32_t use_stack(uint32_t x) {
    volatile char scratch[4096];
    for (size_t i = 0; i < sizeof(scratch); i += 64)
        scratch[i] = static_cast<char>(x);
    return static_cast<uint32_t>(scratch[64]) + 1;
}

// Host work as libc's is: a lock taken, then a few KiB of stack used.
[[gnu::noinline]] uint32_t locked_work(uint32_t x) {
    g_host_entries++;
    g_recorded_frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    pthread_mutex_lock(&g_host_lock);
    uint32_t r = use_stack(x);
    pthread_mutex_unlock(&g_host_lock);
    return r;
}

} // namespace

// The import, as wasm-rt-pooled.h says every import is made: a guest-entry
// stub that checks the stack, then the host's work.
extern "C" WASM_RT_POOLED_GUEST_ENTRY u32 Z_envZ_locked_work(struct Z_env_instance_t *, u32 x) {
    wasm_rt_pooled_check_stack();
    return locked_work(x);
}

namespace {

class HostStackEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        wasm_rt_init();
        Z_hostcall_init_module();
        Z_traps_init_module();
    }
};
const auto *g_env = ::testing::AddGlobalTestEnvironment(new HostStackEnv);

constexpr size_t kStackBytes = wasmpool::test::kTestStackBytes;
constexpr uint32_t kWriteBytes = 4096; // past tcache: malloc takes the arena lock

wasmpool::Config host_stack_config() {
    wasmpool::Config c;
    c.memory_slots = c.table_slots = 4;
    c.stack_slots = 2;
    c.stack_bytes = kStackBytes;
    c.batch_size = 1;
    return c;
}

struct Run {
    int trap = 0;
    uint32_t result = 0;
};

// descend(depth, what) on a fiber on @stack whose first frame starts
// @offset bytes below its top, in an instance made for this run.
Run run_descend(const wasmpool::Pool::Lease &stack, size_t offset, uint32_t depth, uint32_t what,
                wasmpool_wasi_t *w) {
    Run r;
    wasmpool::test::run_on_stack(stack.base(), stack.capacity() - offset, [&] {
        Z_hostcall_instance_t inst;
        Z_hostcall_instantiate(&inst, nullptr, w);
        if (w)
            wasmpool_wasi_bind_memory(w, Z_hostcallZ_memory(&inst));
        int trap = wasm_rt_impl_try();
        if (trap == 0)
            r.result = Z_hostcallZ_descend(&inst, depth, what, kWriteBytes);
        r.trap = trap;
        wasm_rt_pooled_disarm();
        Z_hostcall_free(&inst);
    });
    return r;
}

// Every depth at which the import is reached with 0 to 48 KiB of stack
// left, at every 16-byte offset of the first frame: each call either
// returns, having done its work, or traps as exhaustion before any host
// code ran; no lock is left held, and malloc works after every one.
// Returns a line on the first failure, "" when all held.
std::string sweep(uint32_t what) {
    wasmpool::Pool pool(host_stack_config());
    wasm_rt_pooled_set_pool(&pool);
    auto stack = pool.acquire(wasmpool::Kind::stack, 1, 0);
    if (!stack)
        return "no stack slot";
    auto base = reinterpret_cast<uintptr_t>(stack->base());
    // The guest's frame size, from where locked_work ran at two depths.
    run_descend(*stack, 0, 10, 0, nullptr);
    uintptr_t at10 = g_recorded_frame;
    run_descend(*stack, 0, 20, 0, nullptr);
    uintptr_t at20 = g_recorded_frame;
    if (at10 <= at20 || at20 <= base)
        return "could not measure the guest's frame";
    uintptr_t frame = (at10 - at20) / 10;
    uint32_t bottom = static_cast<uint32_t>(10 + (at10 - base) / frame);
    uint32_t first = bottom - static_cast<uint32_t>((48u << 10) / frame);
    uint64_t returned = 0, trapped = 0;
    char line[256];
    for (size_t offset = 0; offset < frame; offset += 16) {
        for (uint32_t depth = first; depth <= bottom + 4; depth++) {
            wasmpool_wasi_t *w = what == 1 ? wasmpool_wasi_create(0, nullptr, nullptr, 0) : nullptr;
            uint64_t entries = g_host_entries;
            Run r = run_descend(*stack, offset, depth, what, w);
            bool ran = g_host_entries != entries;
            size_t out_len = 0;
            if (w)
                wasmpool_wasi_output(w, 1, &out_len);
            if (w)
                wasmpool_wasi_destroy(w); // frees: a held arena lock hangs here
            if (pthread_mutex_trylock(&g_host_lock) != 0) {
                snprintf(line, sizeof(line),
                         "depth %u, offset %zu: a trap left the host's lock held", depth, offset);
                return line;
            }
            pthread_mutex_unlock(&g_host_lock);
            if (r.trap == 0) {
                // (The result is folded with every depth: the work is what shows.)
                bool done = what == 0 ? ran : out_len == kWriteBytes;
                if (!done) {
                    snprintf(line, sizeof(line), "depth %u, offset %zu: returned without the work",
                             depth, offset);
                    return line;
                }
                returned++;
            } else if (r.trap != WASM_RT_TRAP_EXHAUSTION || ran) {
                snprintf(line, sizeof(line), "depth %u, offset %zu: trap %d%s", depth, offset,
                         r.trap,
                         ran ? " after host code had run: a fault in host code became a trap" : "");
                return line;
            } else {
                trapped++;
            }
        }
    }
    pool.release(std::move(*stack));
    wasm_rt_pooled_use_stock();
    fprintf(stderr, "frame %zu bytes, depths %u..%u: %llu returned, %llu trapped\n",
            static_cast<size_t>(frame), first, bottom + 4,
            static_cast<unsigned long long>(returned), static_cast<unsigned long long>(trapped));
    if (returned == 0 || trapped == 0)
        return "the sweep did not reach both sides of the limit";
    return "";
}

// In a child process: a hang (a lock left held) ends in SIGALRM there.
void expect_sweep_holds(uint32_t what) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            alarm(60);
            std::string failure = sweep(what);
            if (!failure.empty()) {
                fprintf(stderr, "FAIL: %s\n", failure.c_str());
                _exit(1);
            }
            _exit(0);
        },
        ::testing::ExitedWithCode(0), "returned, [0-9]+ trapped");
}

TEST(HostStackDeath, ImportReachedWithLittleStackTrapsBeforeHostCode) {
    expect_sweep_holds(0);
}

TEST(HostStackDeath, WasiWriteWithLittleStackNeverHangsMalloc) {
    expect_sweep_holds(1);
}

// The guest's call, under its own wasm_rt_impl_try(), in frames that have
// returned by the time the caller faults.
[[gnu::noinline]] int guarded_div(Z_traps_instance_t *inst) {
    int trap = wasm_rt_impl_try();
    if (trap == 0)
        Z_trapsZ_div(inst, 6, 3);
    return trap;
}
[[gnu::noinline]] int deeper_guarded_div(Z_traps_instance_t *inst) {
    volatile char pad[512];
    pad[0] = 1;
    return guarded_div(inst) + pad[0] - 1;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// The sanitizer's handler, installed before ours, reports the fault and
// exits (ASan 1, TSan 66); 0, 2 and 3 are the test's own exits, the fault
// not taken.
bool died_of_the_fault(int status) {
    if (!WIFEXITED(status))
        return true;
    int code = WEXITSTATUS(status);
    return code != 0 && code != 2 && code != 3;
}
#define EXPECT_DIES_OF_THE_FAULT(stmt, msg) EXPECT_EXIT(stmt, died_of_the_fault, msg)
#else
#define EXPECT_DIES_OF_THE_FAULT(stmt, msg)                                                        \
    EXPECT_EXIT(stmt, ::testing::KilledBySignal(SIGSEGV), msg)
#endif

// In the death test's child: an instance of traps, after a guarded call on
// it returned; then @after, which must fault and must not be trapped back
// into that call's dead frame.  Exits 3 if it was (the call "returned"
// again), 2 if the fault was not taken at all.
template <class Fn>
[[noreturn]] void fault_after_a_guarded_call(Fn &&after) {
    alarm(30);
    wasmpool::Pool pool(host_stack_config());
    wasm_rt_pooled_set_pool(&pool);
    Z_traps_instance_t inst;
    Z_traps_instantiate(&inst);
    static int returns = 0;
    int trap = deeper_guarded_div(&inst);
    if (++returns > 1) {
        fprintf(stderr, "the guarded call returned again (trap %d)\n", trap);
        _exit(3);
    }
    after(&inst);
    _exit(2);
}

// A host bug after the guarded call returned: reading past the guest's
// memory.  Not the guest's trap: the process dies of it (before the fix,
// wasm_rt_impl_try() "returned" again in guarded_div's dead frame).
TEST(HostStackDeath, HostFaultAfterTheGuardedCallIsNotATrap) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DIES_OF_THE_FAULT(fault_after_a_guarded_call([](Z_traps_instance_t *inst) {
                                 volatile uint8_t *past = Z_trapsZ_memory(inst)->data + 2 * 65536;
                                 fprintf(stderr, "read %d\n", *past);
                             }),
                             "not guest code");
}

// Guest code called outside any live guarded call (the host's bug): its
// fault is not a trap either, with or without wasm_rt_pooled_disarm().
TEST(HostStackDeath, GuestFaultAfterTheGuardedCallReturnedIsNotATrap) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    for (bool disarm : {false, true}) {
        EXPECT_DIES_OF_THE_FAULT(fault_after_a_guarded_call([disarm](Z_traps_instance_t *inst) {
                                     if (disarm)
                                         wasm_rt_pooled_disarm();
                                     Z_trapsZ_load(inst, 3 * 65536);
                                 }),
                                 "not a trap");
    }
}

} // namespace
