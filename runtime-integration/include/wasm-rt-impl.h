/* SPDX-License-Identifier: MIT */
/*
 * wasm-rt-impl.h for wasm-rt-pooled: the same interface as wasm2c's header
 * of this name, with the trap state per thread.
 *
 * wasm_rt_impl_try() arms this thread's trap buffer; a trap in a guest call
 * made afterwards, on the same thread, returns there with its code.  Rules:
 * - call it on the stack that makes the guest call (the fiber's own stack
 *   when the call runs on a fiber), in a frame that is still live when the
 *   call returns or traps;
 * - one guest call per thread at a time: a fiber that is suspended in the
 *   middle of a guest call while another fiber on the same thread makes one
 *   must save and restore wasm_rt_jmp_buf around the switch, and a fiber
 *   must not move to another thread in the middle of one;
 * - the guest code is compiled with -fstack-clash-protection (as
 *   wasm2c_module() in runtime-integration/CMakeLists.txt does): a frame
 *   larger than a page that is not probed page by page can step over the
 *   stack's guard, and its fault is then neither caught nor a trap.
 * It also gives the thread its alternate signal stack on first use, so a
 * guest that exhausts its stack traps (WASM_RT_TRAP_EXHAUSTION) on any
 * thread, not only the one that called wasm_rt_init().
 *
 * This header is found before Debian's (include/ comes first on
 * wasm-rt-pooled's include path).  Code compiled against Debian's fails to
 * link against wasm-rt-pooled (a thread-local definition, a global
 * reference), rather than sharing one buffer between threads.
 */
#ifndef WASM_RT_IMPL_H_
#define WASM_RT_IMPL_H_

#include "wasm-rt.h"

#ifdef __cplusplus
extern "C" {
#endif

#if !WASM_RT_MEMCHECK_SIGNAL_HANDLER || defined(_WIN32) || WASM_RT_USE_STACK_DEPTH_COUNT
#error "wasm-rt-pooled serves Linux wasm2c code built for signal-handler bounds checks"
#endif

#ifdef __cplusplus
extern thread_local jmp_buf wasm_rt_jmp_buf;
#else
extern _Thread_local jmp_buf wasm_rt_jmp_buf;
#endif

/* Give the calling thread its alternate signal stack if it has none yet;
 * aborts with a message if it cannot.  Cheap after the first call. */
void wasm_rt_pooled_thread_init(void);

/* wasm_rt_pooled_thread_init(), and mark the thread as running guest code
 * under the guarded call whose frame is @frame (wasm_rt_impl_try() passes
 * its caller's): from now on a fault of guest code at a guest's addresses
 * on this thread, on a stack below @frame, is a trap to that call's
 * wasm_rt_impl_try().  Every guest call must be made inside a live
 * wasm_rt_impl_try() (as with the stock runtime). */
void wasm_rt_pooled_arm(void *frame);

/* The guarded call has ended: no fault on this thread is a trap until the
 * next wasm_rt_impl_try().  A fault after the call returned is caught
 * without it too (it is not below the frame, or not in guest code), but a
 * host that calls a guest function outside a guarded call would otherwise
 * have that call's traps jump to the last, dead, one. */
void wasm_rt_pooled_disarm(void);

#define WASM_RT_LONGJMP(buf, val) siglongjmp(buf, val)
#define WASM_RT_SAVE_STACK_DEPTH() (void)0

#define wasm_rt_impl_try()                                                                         \
    (wasm_rt_pooled_arm(__builtin_frame_address(0)), wasm_rt_set_unwind_target(&wasm_rt_jmp_buf),  \
     WASM_RT_SETJMP(wasm_rt_jmp_buf))

#ifdef __cplusplus
}
#endif

#endif /* WASM_RT_IMPL_H_ */
