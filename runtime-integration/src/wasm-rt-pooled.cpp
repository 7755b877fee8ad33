// SPDX-License-Identifier: MIT
#include "wasmpool/wasm-rt-pooled.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "wasmpool/pool.h"

// The stock runtime, compiled with its memory and table functions renamed
// (see CMakeLists.txt), serves what the pool does not.
extern "C" {
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

namespace {

constexpr uint64_t kWasmPage = 65536;

enum Mode { kUnset, kPool, kStock };
std::atomic<int> g_mode{kUnset};
std::atomic<wasmpool::Pool *> g_pool{nullptr};
std::atomic<uint64_t> g_fallbacks{0};
std::once_flag g_default_once;
thread_local uint64_t t_key = 0;

wasmpool::Pool *pool() {
    int mode = g_mode.load(std::memory_order_acquire);
    if (mode == kStock)
        return nullptr;
    if (mode == kUnset) {
        std::call_once(g_default_once, [] {
            static wasmpool::Pool default_pool{wasmpool::Config{}};
            wasmpool::Pool *expected = nullptr;
            g_pool.compare_exchange_strong(expected, &default_pool);
            int unset = kUnset;
            g_mode.compare_exchange_strong(unset, kPool);
        });
    }
    return g_pool.load(std::memory_order_acquire);
}

void note_fallback(const char *what) {
    if (g_fallbacks.fetch_add(1, std::memory_order_relaxed) == 0)
        fprintf(stderr, "wasm-rt-pooled: no free %s slot; using the stock runtime for it\n", what);
}

template <class Table, class Elem>
bool pooled_table_alloc(Table *t, uint32_t elements, uint32_t max_elements) {
    wasmpool::Pool *p = pool();
    if (!p)
        return false;
    auto lease = p->acquire(wasmpool::Kind::table, t_key, uint64_t{elements} * sizeof(Elem));
    if (!lease)
        return false;
    t->data = reinterpret_cast<Elem *>(lease->detach()); // released by base
    t->size = elements;
    t->max_size = max_elements;
    return true;
}

// A memory or table is freed through the pool that holds it, whichever
// pool is current now.  Freeing one twice (or one never allocated) is
// stopped here: a null pointer would otherwise reach the stock runtime,
// whose munmap(NULL, 8 GiB) unmaps whatever lies there.
[[noreturn]] void freed_twice(const char *what) {
    fprintf(stderr, "wasm-rt-pooled: %s freed twice, or never allocated\n", what);
    abort();
}

template <class Table, class Elem> bool pooled_table_free(Table *t) {
    if (!t->data)
        freed_twice("table");
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::table, t->data);
    if (!p)
        return false;
    p->release_base(wasmpool::Kind::table, t->data);
    t->data = nullptr;
    return true;
}

// Same contract as the stock runtime's grow: the old size, or -1.
template <class Table, class Elem> int64_t pooled_table_grow(Table *t, uint32_t delta, Elem init) {
    wasmpool::Pool *p =
        t->data ? wasmpool::Pool::owner_of(wasmpool::Kind::table, t->data) : nullptr;
    if (!p)
        return -2; // not ours
    auto idx = p->locate(wasmpool::Kind::table, t->data);
    if (!idx)
        return -2;
    uint32_t old = t->size;
    uint64_t want = uint64_t{old} + delta;
    if (want == 0)
        return 0;
    if (want > t->max_size || !p->grow(*idx, want * sizeof(Elem)))
        return -1;
    for (uint64_t i = old; i < want; i++)
        t->data[i] = init;
    t->size = static_cast<uint32_t>(want);
    return old;
}

} // namespace

extern "C" {

void wasm_rt_pooled_set_pool(void *p) {
    g_pool.store(static_cast<wasmpool::Pool *>(p), std::memory_order_release);
    g_mode.store(p ? kPool : kStock, std::memory_order_release);
}

void wasm_rt_pooled_use_stock(void) {
    wasm_rt_pooled_set_pool(nullptr);
}

void wasm_rt_pooled_set_module(uint64_t key) {
    t_key = key;
}

uint64_t wasm_rt_pooled_fallbacks(void) {
    return g_fallbacks.load();
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
    wasmpool::Pool *p = pool();
    if (p) {
        auto lease = p->acquire(wasmpool::Kind::memory, t_key, initial_pages * kWasmPage);
        if (lease) {
            memory->data = reinterpret_cast<uint8_t *>(lease->detach()); // released by base
            memory->size = static_cast<uint32_t>(initial_pages * kWasmPage);
            memory->pages = initial_pages;
            memory->max_pages = max_pages;
            return;
        }
        note_fallback("memory");
    }
    wasm_rt_stock_allocate_memory(memory, initial_pages, max_pages);
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::memory, memory->data);
    auto idx = p ? p->locate(wasmpool::Kind::memory, memory->data) : std::nullopt;
    if (!idx)
        return wasm_rt_stock_grow_memory(memory, delta);
    uint32_t old_pages = memory->pages;
    uint64_t new_pages = uint64_t{old_pages} + delta;
    if (new_pages == 0)
        return 0;
    // memory->size is 32 bits wide: 65536 pages do not fit in it.
    if (new_pages > memory->max_pages || new_pages * kWasmPage > UINT32_MAX ||
        !p->grow(*idx, new_pages * kWasmPage))
        return UINT32_MAX;
    memory->pages = static_cast<uint32_t>(new_pages);
    memory->size = static_cast<uint32_t>(new_pages * kWasmPage);
    return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
    if (!memory->data)
        freed_twice("memory");
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::memory, memory->data);
    if (!p) {
        wasm_rt_stock_free_memory(memory);
        memory->data = nullptr;
        return;
    }
    p->release_base(wasmpool::Kind::memory, memory->data);
    memory->data = nullptr;
    memory->size = 0;
}

// Both table kinds: the pool first, the stock runtime for what it cannot
// serve (or when the pool is not in use).
#define WASM_RT_POOLED_TABLE_OPS(type)                                                             \
    void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *t, uint32_t elements,           \
                                         uint32_t max_elements) {                                  \
        if (pooled_table_alloc<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t, elements,          \
                                                                             max_elements))        \
            return;                                                                                \
        if (g_mode.load() != kStock)                                                               \
            note_fallback("table");                                                                \
        wasm_rt_stock_allocate_##type##_table(t, elements, max_elements);                          \
    }                                                                                              \
    void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t *t) {                                \
        if (!pooled_table_free<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t)) {                 \
            wasm_rt_stock_free_##type##_table(t);                                                  \
            t->data = nullptr;                                                                     \
        }                                                                                          \
    }                                                                                              \
    uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t *t, uint32_t delta,              \
                                         wasm_rt_##type##_t init) {                                \
        int64_t r =                                                                                \
            pooled_table_grow<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t, delta, init);       \
        if (r == -2)                                                                               \
            return wasm_rt_stock_grow_##type##_table(t, delta, init);                              \
        return static_cast<uint32_t>(r);                                                           \
    }

WASM_RT_POOLED_TABLE_OPS(funcref)
WASM_RT_POOLED_TABLE_OPS(externref)

} // extern "C"
