/* SPDX-License-Identifier: MIT */
/*
 * wasm-rt-pooled: wasm2c's runtime (see <wasm-rt.h>) with memories, tables
 * and fiber stacks served from pools of reusable slots that are reset
 * between tenants.  Link a wasm2c-generated module against this library
 * instead of the stock runtime.
 *
 * Embedding, in short (runtime-integration/examples/embed.c builds it):
 *
 *   wasm_rt_init();                          // once per process
 *   wasm2c_mod_init_module();                // once per module
 *   wasm_rt_pool_config_t cfg;
 *   wasm_rt_pool_config_init(&cfg);          // then change what you need
 *   wasm_rt_pool_t *pool;
 *   if (wasm_rt_pool_create(&cfg, &pool) != WASM_RT_POOL_OK) ...
 *   wasm_rt_pool_select(pool, MOD_KEY);      // this thread's instances
 *   wasm2c_mod_instantiate(&inst);           // under wasm_rt_impl_try()
 *   if (wasm_rt_pool_last_error() != WASM_RT_POOL_OK) {
 *       wasm2c_mod_free(&inst);              // the pool was exhausted
 *       ...
 *   }
 *
 * Traps: the trap state is per thread (<wasm-rt-impl.h> says where
 * wasm_rt_impl_try() must run).  A fault is turned into a trap only when
 * it is a guest's: an instruction of guest code (a module built by
 * wasm_rt_pooled_module() in runtime-integration/CMakeLists.txt, or a
 * WASM_RT_POOLED_GUEST_ENTRY stub), running below the frame of a live
 * wasm_rt_impl_try(), that accessed a pool's linear-memory reservation
 * (WASM_RT_TRAP_OOB), a stack guard, pooled or the thread's own
 * (WASM_RT_TRAP_EXHAUSTION), or a stock-runtime memory's reservation
 * (OOB).  Anything else takes the handler that was installed before
 * wasm_rt_init() (by default: the process dies of the signal, as it would
 * without us), after a line on stderr when the address was a guest's.  A
 * fault in host code is never jumped out of: a lock it held (malloc's)
 * would stay held, and C++ frames cannot be unwound by a longjmp.
 *
 * Host imports: a guest can call one with almost no stack left.  Define
 * each as a WASM_RT_POOLED_GUEST_ENTRY stub whose first statement is
 * wasm_rt_pooled_check_stack(), and do the work in a function it calls:
 * the stub traps (WASM_RT_TRAP_EXHAUSTION) unless
 * WASM_RT_POOLED_HOST_STACK_BYTES are left, so the host code after it
 * never reaches a guard (wasmpool/wasi.h's imports do this).
 */
#ifndef WASM_RT_POOLED_H
#define WASM_RT_POOLED_H

#include <stddef.h>
#include <stdint.h>
#include <wasm-rt.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wasm_rt_pool wasm_rt_pool_t;

/* Stack a host import is guaranteed (see above). */
#define WASM_RT_POOLED_HOST_STACK_BYTES (32u << 10)

/* A function guest code calls that must be guest code itself: placed in
 * the guest section, never inlined into a caller, and free of sanitizer
 * calls (those are host code, and would run before the stack check). */
#define WASM_RT_POOLED_GUEST_ENTRY                                                                 \
    __attribute__((section("wasm_rt_pooled_guest_text"), noinline,                                 \
                   no_sanitize("address", "thread", "undefined")))

/* The lowest address of the stack the calling thread's guarded call runs
 * on (a pooled stack's or the thread's own), set by wasm_rt_impl_try();
 * 0 where it is not known (a fiber stack the pool did not give), and then
 * nothing is checked. */
#ifdef __cplusplus
extern thread_local uintptr_t wasm_rt_pooled_stack_floor;
#else
extern _Thread_local uintptr_t wasm_rt_pooled_stack_floor;
#endif

/* Trap (WASM_RT_TRAP_EXHAUSTION) unless WASM_RT_POOLED_HOST_STACK_BYTES
 * of stack are left below the caller: the first statement of a
 * WASM_RT_POOLED_GUEST_ENTRY stub. */
static inline __attribute__((always_inline)) void wasm_rt_pooled_check_stack(void) {
    uintptr_t floor = wasm_rt_pooled_stack_floor;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (floor != 0 && here >= floor && here - floor < WASM_RT_POOLED_HOST_STACK_BYTES)
        wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
}

typedef enum wasm_rt_pool_error {
    WASM_RT_POOL_OK = 0,
    /* wasm_rt_pool_create(): the configuration was refused;
     * wasm_rt_pool_last_message() says which field and why. */
    WASM_RT_POOL_INVALID_CONFIG = 1,
    /* wasm_rt_pool_create(): the address space could not be reserved. */
    WASM_RT_POOL_NO_ADDRESS_SPACE = 2,
    /* wasm_rt_pool_create(): the process already has the most pools. */
    WASM_RT_POOL_TOO_MANY_POOLS = 3,
    /* Every slot of the kind asked for was in use. */
    WASM_RT_POOL_EXHAUSTED = 4,
    /* A memory, table or stack larger than the pool's slots. */
    WASM_RT_POOL_TOO_LARGE = 5,
    /* An argument was NULL or out of range. */
    WASM_RT_POOL_INVALID_ARGUMENT = 6,
} wasm_rt_pool_error_t;

typedef enum wasm_rt_pool_reset {
    /* Zero in place the pages that hold data (PAGEMAP_SCAN) within a
     * resident budget, decommit past it. */
    WASM_RT_POOL_RESET_ADAPTIVE = 0,
    /* MADV_DONTNEED every used extent, batched into one madvisev() call. */
    WASM_RT_POOL_RESET_DECOMMIT = 1,
    /* memset() the first keep_resident_bytes, decommit the rest. */
    WASM_RT_POOL_RESET_KEEP_RESIDENT = 2,
    /* Zero every used extent in place, a batch of slots per
     * madvisev(MADVISEV_ZERO) call: by the kernel where it can (no TLB
     * flush), else by libmadvisev's emulation. */
    WASM_RT_POOL_RESET_ZERO_IN_PLACE = 3,
} wasm_rt_pool_reset_t;

/* What an allocation does when its pool has no free slot (or none large
 * enough).  Either way the stock runtime serves it, a fresh mapping no one
 * else had, so that the instantiation completes whole and is freed as
 * usual: wasm2c's instantiate cannot be stopped half way without leaving
 * the slots it took with no owner. */
typedef enum wasm_rt_pool_on_exhausted {
    /* ... and the thread's wasm_rt_pool_last_error() says
     * WASM_RT_POOL_EXHAUSTED (or WASM_RT_POOL_TOO_LARGE): the caller frees
     * the instance and reports the failure. */
    WASM_RT_POOL_ON_EXHAUSTED_FAIL = 0,
    /* ... and that is all: the instance runs on the stock runtime's memory
     * (an 8 GiB reservation per memory, calloc per table), counted by
     * wasm_rt_pool_fallbacks(). */
    WASM_RT_POOL_ON_EXHAUSTED_USE_STOCK = 1,
} wasm_rt_pool_on_exhausted_t;

typedef struct wasm_rt_pool_config {
    /* sizeof(wasm_rt_pool_config_t), set by wasm_rt_pool_config_init();
     * wasm_rt_pool_create() refuses another size, so a caller built
     * against another layout of the structure is told, not misread. */
    size_t size;
    size_t memory_slots;
    size_t table_slots;
    size_t stack_slots;
    /* Elements per table slot (funcref and externref alike). */
    size_t table_elements;
    size_t stack_bytes;
    /* PROT_NONE bytes below each stack; at least one page, 64 KiB by
     * default. */
    size_t stack_guard_bytes;
    wasm_rt_pool_reset_t reset;
    size_t keep_resident_bytes;
    /* Instances per batched decommit call (1: reset at release). */
    size_t batch_size;
    wasm_rt_pool_on_exhausted_t on_exhausted;
} wasm_rt_pool_config_t;

/* The defaults (64 slots of each kind, adaptive reset, batches of 32,
 * exhaustion reported as an error). */
void wasm_rt_pool_config_init(wasm_rt_pool_config_t *config);

/* Make a pool; *pool is set on WASM_RT_POOL_OK only. */
wasm_rt_pool_error_t wasm_rt_pool_create(const wasm_rt_pool_config_t *config,
                                         wasm_rt_pool_t **pool);

/* Destroy a pool; NULL is ignored.  Its instances must be freed first
 * (the process stops with a message if a slot is still in use).  The
 * handle stays recognisable: any later call with it (or an allocation on a
 * thread that still has it selected) stops the process with a message,
 * except wasm_rt_pool_stack_acquire(), which fails with
 * WASM_RT_POOL_INVALID_ARGUMENT. */
void wasm_rt_pool_destroy(wasm_rt_pool_t *pool);

/* Memories and tables allocated by the calling thread from now on (an
 * instantiation's) come from @pool; @module_key names the module, so that
 * a free slot that last held it is preferred.  NULL: back to the process
 * default (wasm_rt_pooled_set_pool()).  Freeing always goes to the pool
 * that holds the memory or table, whichever is selected. */
void wasm_rt_pool_select(wasm_rt_pool_t *pool, uint64_t module_key);

/* The calling thread's last error: of wasm_rt_pool_create(), or of an
 * allocation since its last wasm_rt_pool_select() (WASM_RT_POOL_OK if
 * none). */
wasm_rt_pool_error_t wasm_rt_pool_last_error(void);

/* A one-line description of the calling thread's last error, with the
 * detail wasm_rt_pool_create() or the allocation found. */
const char *wasm_rt_pool_last_message(void);

const char *wasm_rt_pool_strerror(wasm_rt_pool_error_t error);

/* Allocations served by the stock runtime because @pool was exhausted
 * (WASM_RT_POOL_ON_EXHAUSTED_USE_STOCK). */
uint64_t wasm_rt_pool_fallbacks(const wasm_rt_pool_t *pool);

/* A fiber stack from @pool: [base, base + size) is usable, the guard lies
 * below base.  Give it back with wasm_rt_pool_stack_release() exactly
 * once, through the same struct: a copy of it, or a struct released
 * before, stops the process with a message naming the slot. */
typedef struct wasm_rt_pool_stack {
    void *base;
    size_t size;
    /* Which lease of the slot this is: a stale struct is refused. */
    uint32_t generation;
} wasm_rt_pool_stack_t;
wasm_rt_pool_error_t wasm_rt_pool_stack_acquire(wasm_rt_pool_t *pool, uint64_t module_key,
                                                wasm_rt_pool_stack_t *stack);
void wasm_rt_pool_stack_release(wasm_rt_pool_t *pool, wasm_rt_pool_stack_t *stack);

/* The C++ pool (a wasmpool::Pool *) behind @pool, for code that mixes the
 * two interfaces. */
void *wasm_rt_pool_cxx(wasm_rt_pool_t *pool);

/* The process default for threads that selected no pool: @pool, a
 * wasmpool::Pool * the caller keeps alive (not owned), with
 * WASM_RT_POOL_ON_EXHAUSTED_FAIL.  Without a call, a pool with the default
 * configuration is made on first use. */
void wasm_rt_pooled_set_pool(void *pool);

/* Serve threads that selected no pool from the stock runtime instead
 * (Debian's wasm-rt-impl.c with its unmap-size bug fixed, see
 * docs/wasm2c-stock-runtime.md). */
void wasm_rt_pooled_use_stock(void);

/* The calling thread's module key, for the process default pool. */
void wasm_rt_pooled_set_module(uint64_t key);

#ifdef __cplusplus
}
#endif

#endif
