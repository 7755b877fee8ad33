/* SPDX-License-Identifier: MIT */
/*
 * Embedding wasm-rt-pooled from C: a pool made from a configuration, each
 * instantiation from it, each guest call on a fiber stack from it (here a
 * ucontext), traps caught where they happen.  Built and run by `make test`
 * (ctest: wasm-rt-pooled-embed-example).
 */
#include <stdio.h>
#include <ucontext.h>

#include "echo.h"
#include "wasm-rt-impl.h"
#include "wasmpool/wasm-rt-pooled.h"

static Z_echo_instance_t inst;
static int trap;
static uint32_t result;

/* Runs on the pooled stack: the trap buffer is armed on the stack that
 * makes the guest call. */
static void guest_call(void) {
    trap = wasm_rt_impl_try();
    if (trap == 0) {
        Z_echoZ_init(&inst, 16);
        result = Z_echoZ_echo(&inst, 1, 2);
    }
}

int main(void) {
    wasm_rt_init();
    Z_echo_init_module();

    wasm_rt_pool_config_t cfg;
    wasm_rt_pool_config_init(&cfg);
    cfg.memory_slots = cfg.table_slots = cfg.stack_slots = 4;
    wasm_rt_pool_t *pool;
    if (wasm_rt_pool_create(&cfg, &pool) != WASM_RT_POOL_OK) {
        fprintf(stderr, "embed: %s\n", wasm_rt_pool_last_message());
        return 1;
    }
    for (int i = 0; i < 100; i++) {
        wasm_rt_pool_select(pool, 1);
        if (wasm_rt_impl_try() != 0) {
            fprintf(stderr, "embed: instantiate trapped\n"); /* a data segment out of bounds */
            return 1;
        }
        Z_echo_instantiate(&inst);
        if (wasm_rt_pool_last_error() != WASM_RT_POOL_OK) {
            fprintf(stderr, "embed: instantiate: %s\n", wasm_rt_pool_last_message());
            Z_echo_free(&inst);
            return 1;
        }

        wasm_rt_pool_stack_t stack;
        if (wasm_rt_pool_stack_acquire(pool, 1, &stack) != WASM_RT_POOL_OK) {
            fprintf(stderr, "embed: stack: %s\n", wasm_rt_pool_last_message());
            return 1;
        }
#if defined(__SANITIZE_THREAD__)
        guest_call(); /* ThreadSanitizer cannot follow a stack switch */
#else
        ucontext_t caller, guest;
        getcontext(&guest);
        guest.uc_stack.ss_sp = stack.base;
        guest.uc_stack.ss_size = stack.size;
        guest.uc_link = &caller;
        makecontext(&guest, guest_call, 0);
        swapcontext(&caller, &guest);
#endif
        wasm_rt_pool_stack_release(pool, &stack);
        Z_echo_free(&inst);
        if (trap != 0 || result != 1) {
            fprintf(stderr, "embed: echo: trap %d (%s), result %u\n", trap,
                    wasm_rt_strerror((wasm_rt_trap_t)trap), result);
            return 1;
        }
    }
    printf("embed: 100 instances of echo, each from the pool, each call on a pooled stack\n");
    wasm_rt_pool_destroy(pool);
    wasm_rt_free();
    return 0;
}
