/* SPDX-License-Identifier: MIT */
/*
 * wasm-rt-pooled: the wasm2c runtime's memory and table functions
 * (wasm_rt_allocate_memory() and friends, see <wasm-rt.h>) served from a
 * wasmpool::Pool.  Link a wasm2c-generated module against this library
 * instead of the stock runtime; everything else (traps, function types,
 * exceptions, the signal handler) is the stock runtime's own code.
 */
#ifndef WASM_RT_POOLED_H
#define WASM_RT_POOLED_H

#include <stdint.h>
#include <wasm-rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Serve memories and tables from @pool, a wasmpool::Pool * the caller
 * keeps alive (not owned).  Without a call, a pool with the default
 * configuration is made on first use. */
void wasm_rt_pooled_set_pool(void *pool);

/* Serve them from the stock runtime instead (Debian's wasm-rt-impl.c,
 * built with its unmap-size bug fixed, see docs/wasm2c-stock-runtime.md). */
void wasm_rt_pooled_use_stock(void);

/* The calling thread's module key: a free slot that last held the same
 * key is preferred, so its size matches and nothing is re-protected. */
void wasm_rt_pooled_set_module(uint64_t key);

/* Memories and tables that could not get a slot (the pool was exhausted)
 * and were served by the stock runtime instead. */
uint64_t wasm_rt_pooled_fallbacks(void);

#ifdef __cplusplus
}
#endif

#endif
