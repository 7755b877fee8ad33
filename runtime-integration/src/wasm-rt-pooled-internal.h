// SPDX-License-Identifier: MIT
// What wasm-rt-pooled's files share: the stock runtime's functions (renamed
// by the build) and the record of the memories and tables it serves.
#pragma once

#include <cstdint>

#include "wasmpool/wasm-rt-pooled.h"

// The stock runtime, compiled with its memory and table functions and its
// init/free renamed (see CMakeLists.txt), serves what the pool is told not
// to.
extern "C" {
void wasm_rt_stock_init(void);
void wasm_rt_stock_free(void);
void wasm_rt_stock_allocate_memory(wasm_rt_memory_t *, uint32_t, uint32_t);
uint32_t wasm_rt_stock_grow_memory(wasm_rt_memory_t *, uint32_t);
void wasm_rt_stock_free_memory(wasm_rt_memory_t *);
void wasm_rt_stock_allocate_funcref_table(wasm_rt_funcref_table_t *, uint32_t, uint32_t);
void wasm_rt_stock_free_funcref_table(wasm_rt_funcref_table_t *);
uint32_t wasm_rt_stock_grow_funcref_table(wasm_rt_funcref_table_t *, uint32_t, wasm_rt_funcref_t);
void wasm_rt_stock_allocate_externref_table(wasm_rt_externref_table_t *, uint32_t, uint32_t);
void wasm_rt_stock_free_externref_table(wasm_rt_externref_table_t *);
uint32_t wasm_rt_stock_grow_externref_table(wasm_rt_externref_table_t *, uint32_t,
                                            wasm_rt_externref_t);
}

namespace wasm_rt_pooled_internal {

// The stock runtime's live memories (stock_memory.cpp): registered when
// served, given back when freed (stops the process for one it does not
// hold), and asked by the fault handler (lock-free) whether an address
// lies in one's reservation.
void stock_memory_served(const void *base);
void stock_memory_freed(const void *base);
bool in_stock_memory(const void *addr);
// More stock memories than the handler's table holds were live at once:
// any access fault on a guarded thread then counts as a guest's.
bool stock_memories_overflowed();
// The same record for tables, by data pointer.
void stock_held(const void *data);
void stock_give_back(const void *data, const char *what);

// The stock runtime's table grow reallocates: the held pointer follows.
template <class Table, class Elem>
__attribute__((noinline)) uint32_t stock_table_grow(Table *t, uint32_t delta, Elem init,
                                                    uint32_t (*grow)(Table *, uint32_t, Elem)) {
    stock_give_back(t->data, "table");
    uint32_t r = grow(t, delta, init);
    stock_held(t->data);
    return r;
}

} // namespace wasm_rt_pooled_internal
