// SPDX-License-Identifier: MIT
// wasm-rt-pooled: pools by handle, which pool serves the calling thread, and
// wasm2c's memory and table functions served from it (the faults are
// guest_faults.cpp's, the stock runtime's record stock_memory.cpp's).
#include "wasmpool/wasm-rt-pooled.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "wasm-rt-impl.h"
#include "wasm-rt-pooled-internal.h"
#include "wasmpool/pool.h"

using wasm_rt_pooled_internal::stock_give_back;
using wasm_rt_pooled_internal::stock_held;
using wasm_rt_pooled_internal::stock_memory_freed;
using wasm_rt_pooled_internal::stock_memory_served;
using wasm_rt_pooled_internal::stock_table_grow;

namespace {

// What a wasm_rt_pool_t names.  The handle a caller holds is not a pointer
// to one (see handle_of()): a handle outlives its pool, and a call with a
// destroyed one must be told, not served from freed memory or from a later
// pool made in the same place.
struct PoolHandle {
    std::atomic<uint64_t> serial{0};       // the handle's; 0: unused (or the default)
    std::unique_ptr<wasmpool::Pool> owned; // null for the process default
    std::atomic<wasmpool::Pool *> pool{nullptr};
    wasm_rt_pool_on_exhausted_t on_exhausted = WASM_RT_POOL_ON_EXHAUSTED_FAIL;
    // The configured elements per table: a slot is whole pages, so it may
    // hold more, but a table larger than asked for is refused.  0: what
    // the slot holds.
    size_t table_elements = 0;
    std::atomic<uint64_t> fallbacks{0};
};

constexpr uint64_t kWasmPage = 65536;
constexpr size_t kTableElementBytes =
    std::max(sizeof(wasm_rt_funcref_t), sizeof(wasm_rt_externref_t));

// --- Which pool serves the calling thread ---------------------------------

enum DefaultMode { kUnset, kPool, kStock };
std::atomic<int> g_default_mode{kUnset};
PoolHandle g_default; // wraps the Pool given to wasm_rt_pooled_set_pool()
std::once_flag g_default_once;

// Pools made by wasm_rt_pool_create(): a handle is its index here and the
// serial it was made with, so a handle to a destroyed pool (or one never
// made) is recognised as long as the process lives.
constexpr uintptr_t kHandles = wasmpool::Pool::kMaxPools;
PoolHandle g_handles[kHandles];
std::mutex g_handles_lock; // creation and destruction
std::atomic<uint64_t> g_next_handle_serial{1};

wasm_rt_pool_t *handle_of(uintptr_t index, uint64_t serial) {
    return reinterpret_cast<wasm_rt_pool_t *>(static_cast<uintptr_t>(serial) << 8 | index);
}

// The pool @handle names, or null when it names none (any more).
PoolHandle *resolve(const wasm_rt_pool_t *handle) {
    auto value = reinterpret_cast<uintptr_t>(handle);
    uintptr_t index = value & 0xff;
    uint64_t serial = value >> 8;
    if (index >= kHandles || serial == 0 ||
        g_handles[index].serial.load(std::memory_order_acquire) != serial)
        return nullptr;
    return &g_handles[index];
}

[[noreturn]] void not_a_pool(const char *fn, const wasm_rt_pool_t *handle) {
    fprintf(stderr,
            "%s: %p is not a live pool (destroyed already, or not from wasm_rt_pool_create())\n",
            fn, static_cast<const void *>(handle));
    abort();
}

PoolHandle *resolve_or_abort(const char *fn, const wasm_rt_pool_t *handle) {
    PoolHandle *h = resolve(handle);
    if (!h)
        not_a_pool(fn, handle);
    return h;
}

thread_local const wasm_rt_pool_t *t_selected = nullptr;
thread_local uint64_t t_selected_key = 0;
thread_local uint64_t t_default_key = 0;

// The pool the calling thread allocates from, or null for the stock
// runtime.
PoolHandle *current(uint64_t *key) {
    if (t_selected) {
        *key = t_selected_key;
        return resolve_or_abort("allocation from the pool this thread selected", t_selected);
    }
    *key = t_default_key;
    int mode = g_default_mode.load(std::memory_order_acquire);
    if (mode == kStock)
        return nullptr;
    if (mode == kUnset) {
        std::call_once(g_default_once, [] {
            // Destroyed at exit only if no instance still holds a slot: a
            // program may exit with instances alive, and ~Pool stops the
            // process rather than unmap a slot under its holder.
            struct DefaultPool {
                wasmpool::Pool *pool = new wasmpool::Pool(wasmpool::Config{});
                ~DefaultPool() {
                    wasmpool::Stats st = pool->stats();
                    if (st.acquired == st.released)
                        delete pool;
                }
            };
            static DefaultPool default_pool;
            wasmpool::Pool *expected = nullptr;
            g_default.pool.compare_exchange_strong(expected, default_pool.pool);
            int unset = kUnset;
            g_default_mode.compare_exchange_strong(unset, kPool);
        });
        if (g_default_mode.load(std::memory_order_acquire) == kStock)
            return nullptr;
    }
    return &g_default;
}

// --- Errors, per thread ----------------------------------------------------

thread_local wasm_rt_pool_error_t t_error = WASM_RT_POOL_OK;
thread_local char t_message[256];

void set_error(wasm_rt_pool_error_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void set_error(wasm_rt_pool_error_t e, const char *fmt, ...) {
    t_error = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_message, sizeof(t_message), fmt, ap);
    va_end(ap);
}

// An allocation the pool cannot serve is never left half done: the stock
// runtime serves it (a fresh mapping, nobody else's memory), so the
// instantiation completes and the caller frees it as usual.  Unless the
// pool asked for that fallback, the thread's error says the instantiation
// failed.  (Trapping out of wasm2c's instantiate instead would leave the
// slots it took with no safe owner: nothing marks where one instantiation
// ends and the next begins, so no rollback can tell them apart.)
void fell_back(PoolHandle *sel, wasm_rt_pool_error_t e, const char *what, uint64_t bytes,
               size_t capacity) {
    if (sel->on_exhausted == WASM_RT_POOL_ON_EXHAUSTED_USE_STOCK) {
        sel->fallbacks.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (e == WASM_RT_POOL_EXHAUSTED)
        set_error(e, "wasm-rt-pooled: no free %s slot in the pool", what);
    else
        set_error(e, "wasm-rt-pooled: a %s of %llu bytes does not fit the pool's %zu-byte slots",
                  what, static_cast<unsigned long long>(bytes), capacity);
}

// A memory or table is freed through the pool that holds it, whichever
// pool is current now.  Freeing one twice (or one never allocated) is
// stopped here: a null pointer would otherwise reach the stock runtime,
// whose munmap(NULL, 8 GiB) unmaps whatever lies there.
[[noreturn]] void freed_twice(const char *what) {
    fprintf(stderr, "wasm-rt-pooled: %s freed twice, or never allocated\n", what);
    abort();
}

// Acquire a slot of @kind for @bytes from the thread's pool: its base, or
// null when the stock runtime is to serve it (stock mode, or the pool
// could not: see fell_back()).
std::byte *acquire_slot(wasmpool::Kind kind, uint64_t bytes, const char *what, const void *owner) {
    uint64_t key;
    PoolHandle *sel = current(&key);
    wasmpool::Pool *p = sel ? sel->pool.load(std::memory_order_acquire) : nullptr;
    if (!p)
        return nullptr;
    {
        auto lease = p->acquire(kind, key, bytes);
        if (lease)
            // wasm2c keeps the base in the struct at @owner: released by
            // release_base() with that struct's address.
            return lease->detach(reinterpret_cast<uintptr_t>(owner));
    }
    if (errno == EINVAL)
        fell_back(sel, WASM_RT_POOL_TOO_LARGE, what, bytes, p->slot_capacity(kind));
    else
        fell_back(sel, WASM_RT_POOL_EXHAUSTED, what, bytes, 0);
    return nullptr;
}

template <class Table, class Elem>
bool pooled_table_alloc(Table *t, uint32_t elements, uint32_t max_elements) {
    uint64_t key;
    PoolHandle *sel = current(&key);
    std::byte *base = nullptr;
    if (sel && sel->table_elements && elements > sel->table_elements)
        fell_back(sel, WASM_RT_POOL_TOO_LARGE, "table", uint64_t{elements} * sizeof(Elem),
                  sel->table_elements * sizeof(Elem));
    else
        base = acquire_slot(wasmpool::Kind::table, uint64_t{elements} * sizeof(Elem), "table", t);
    if (!base)
        return false;
    t->data = reinterpret_cast<Elem *>(base);
    t->size = elements;
    t->max_size = max_elements;
    return true;
}

template <class Table, class Elem>
bool pooled_table_free(Table *t) {
    if (!t->data)
        freed_twice("table");
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::table, t->data);
    if (!p)
        return false;
    p->release_base(wasmpool::Kind::table, t->data, reinterpret_cast<uintptr_t>(t));
    t->data = nullptr;
    return true;
}

// Same contract as the stock runtime's grow: the old size, or -1; -2 for
// a table the pool does not hold.
// Not inlined into the guest-section stubs that call it: only the stubs
// are guest code.
template <class Table, class Elem>
__attribute__((noinline)) int64_t pooled_table_grow(Table *t, uint32_t delta, Elem init) {
    wasmpool::Pool *p =
        t->data ? wasmpool::Pool::owner_of(wasmpool::Kind::table, t->data) : nullptr;
    if (!p)
        return -2;
    uint32_t old = t->size;
    uint64_t want = uint64_t{old} + delta;
    if (want == 0)
        return 0;
    if (want > t->max_size || !p->grow_base(wasmpool::Kind::table, t->data, want * sizeof(Elem),
                                            reinterpret_cast<uintptr_t>(t)))
        return -1;
    for (uint64_t i = old; i < want; i++)
        t->data[i] = init;
    t->size = static_cast<uint32_t>(want);
    return old;
}

} // namespace

extern "C" {

// --- Pools -----------------------------------------------------------------

void wasm_rt_pool_config_init(wasm_rt_pool_config_t *config) {
    if (!config)
        return;
    wasmpool::Config d;
    *config = {};
    config->size = sizeof(*config);
    config->memory_slots = d.memory_slots;
    config->table_slots = d.table_slots;
    config->stack_slots = d.stack_slots;
    config->table_elements = d.table_bytes / kTableElementBytes;
    config->stack_bytes = d.stack_bytes;
    config->stack_guard_bytes = d.stack_guard_bytes;
    config->reset = WASM_RT_POOL_RESET_ADAPTIVE;
    config->keep_resident_bytes = d.keep_resident_bytes;
    config->batch_size = d.batch_size;
    config->on_exhausted = WASM_RT_POOL_ON_EXHAUSTED_FAIL;
}

wasm_rt_pool_error_t wasm_rt_pool_create(const wasm_rt_pool_config_t *config,
                                         wasm_rt_pool_t **pool) {
    if (!config || !pool) {
        set_error(WASM_RT_POOL_INVALID_ARGUMENT, "wasm_rt_pool_create: null argument");
        return t_error;
    }
    if (config->size != sizeof(*config)) {
        set_error(WASM_RT_POOL_INVALID_CONFIG,
                  "wasm_rt_pool_create: config.size is %zu, not %zu: call "
                  "wasm_rt_pool_config_init() first",
                  config->size, sizeof(*config));
        return t_error;
    }
    wasmpool::Config c;
    c.memory_slots = config->memory_slots;
    c.table_slots = config->table_slots;
    c.stack_slots = config->stack_slots;
    if (config->table_elements > UINT32_MAX) {
        set_error(WASM_RT_POOL_INVALID_CONFIG, "wasm_rt_pool_create: table_elements %zu too large",
                  config->table_elements);
        return t_error;
    }
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    c.table_bytes = (config->table_elements * kTableElementBytes + page - 1) / page * page;
    c.stack_bytes = config->stack_bytes;
    c.stack_guard_bytes = config->stack_guard_bytes;
    // Read the enums as the ints a C caller may have stored: a value
    // outside the enumeration is refused, not loaded as one.
    int reset, on_exhausted;
    static_assert(sizeof(reset) == sizeof(config->reset) &&
                  sizeof(on_exhausted) == sizeof(config->on_exhausted));
    memcpy(&reset, &config->reset, sizeof(reset));
    memcpy(&on_exhausted, &config->on_exhausted, sizeof(on_exhausted));
    switch (reset) {
    case WASM_RT_POOL_RESET_ADAPTIVE:
        c.reset = wasmpool::Reset::adaptive;
        break;
    case WASM_RT_POOL_RESET_DECOMMIT:
        c.reset = wasmpool::Reset::decommit;
        break;
    case WASM_RT_POOL_RESET_KEEP_RESIDENT:
        c.reset = wasmpool::Reset::keep_resident;
        break;
    case WASM_RT_POOL_RESET_ZERO_IN_PLACE:
        c.reset = wasmpool::Reset::zero_in_place;
        break;
    default:
        set_error(WASM_RT_POOL_INVALID_CONFIG, "wasm_rt_pool_create: unknown reset %d", reset);
        return t_error;
    }
    c.keep_resident_bytes = config->keep_resident_bytes;
    c.batch_size = config->batch_size;
    if (on_exhausted != WASM_RT_POOL_ON_EXHAUSTED_FAIL &&
        on_exhausted != WASM_RT_POOL_ON_EXHAUSTED_USE_STOCK) {
        set_error(WASM_RT_POOL_INVALID_CONFIG, "wasm_rt_pool_create: unknown on_exhausted %d",
                  on_exhausted);
        return t_error;
    }
    std::lock_guard<std::mutex> g(g_handles_lock);
    uintptr_t index = 0;
    while (index < kHandles && g_handles[index].serial.load(std::memory_order_relaxed) != 0)
        index++;
    if (index == kHandles) {
        set_error(WASM_RT_POOL_TOO_MANY_POOLS, "wasm_rt_pool_create: %zu pools exist already",
                  static_cast<size_t>(kHandles));
        return t_error;
    }
    PoolHandle *made = &g_handles[index];
    try {
        made->owned = std::make_unique<wasmpool::Pool>(c);
    } catch (const std::length_error &e) {
        set_error(WASM_RT_POOL_TOO_MANY_POOLS, "wasm_rt_pool_create: %s", e.what());
        return t_error;
    } catch (const std::system_error &e) {
        set_error(WASM_RT_POOL_NO_ADDRESS_SPACE, "wasm_rt_pool_create: %s", e.what());
        return t_error;
    } catch (const std::exception &e) { // invalid_argument, overflow_error
        set_error(WASM_RT_POOL_INVALID_CONFIG, "wasm_rt_pool_create: %s", e.what());
        return t_error;
    }
    made->pool.store(made->owned.get());
    made->on_exhausted = static_cast<wasm_rt_pool_on_exhausted_t>(on_exhausted);
    made->table_elements = config->table_elements;
    made->fallbacks.store(0, std::memory_order_relaxed);
    uint64_t serial = g_next_handle_serial.fetch_add(1, std::memory_order_relaxed);
    made->serial.store(serial, std::memory_order_release);
    *pool = handle_of(index, serial);
    t_error = WASM_RT_POOL_OK;
    return WASM_RT_POOL_OK;
}

void wasm_rt_pool_destroy(wasm_rt_pool_t *handle) {
    if (!handle)
        return;
    std::lock_guard<std::mutex> g(g_handles_lock);
    PoolHandle *pool = resolve_or_abort("wasm_rt_pool_destroy", handle);
    // An instance still holding a slot would, once the pool is gone, free
    // it through the stock runtime or reach a later pool mapped there.
    wasmpool::Stats st = pool->owned->stats();
    if (st.acquired != st.released) {
        fprintf(stderr, "wasm_rt_pool_destroy: %llu slots still in use; free the instances first\n",
                static_cast<unsigned long long>(st.acquired - st.released));
        abort();
    }
    if (t_selected == handle)
        t_selected = nullptr;
    // The handle dies first: from here on every call with it is refused.
    pool->serial.store(0, std::memory_order_release);
    pool->pool.store(nullptr, std::memory_order_release);
    pool->owned.reset();
}

void wasm_rt_pool_select(wasm_rt_pool_t *pool, uint64_t module_key) {
    if (pool)
        resolve_or_abort("wasm_rt_pool_select", pool);
    t_error = WASM_RT_POOL_OK;
    t_selected = pool;
    t_selected_key = module_key;
}

wasm_rt_pool_error_t wasm_rt_pool_last_error(void) {
    return t_error;
}

const char *wasm_rt_pool_last_message(void) {
    return t_error == WASM_RT_POOL_OK ? "" : t_message;
}

const char *wasm_rt_pool_strerror(wasm_rt_pool_error_t error) {
    switch (error) {
    case WASM_RT_POOL_OK:
        return "no error";
    case WASM_RT_POOL_INVALID_CONFIG:
        return "invalid pool configuration";
    case WASM_RT_POOL_NO_ADDRESS_SPACE:
        return "cannot reserve the pool's address space";
    case WASM_RT_POOL_TOO_MANY_POOLS:
        return "too many pools in this process";
    case WASM_RT_POOL_EXHAUSTED:
        return "no free slot in the pool";
    case WASM_RT_POOL_TOO_LARGE:
        return "larger than the pool's slots";
    case WASM_RT_POOL_INVALID_ARGUMENT:
        return "invalid argument";
    }
    return "unknown wasm_rt_pool error";
}

uint64_t wasm_rt_pool_fallbacks(const wasm_rt_pool_t *pool) {
    if (!pool)
        return 0;
    return resolve_or_abort("wasm_rt_pool_fallbacks", pool)
        ->fallbacks.load(std::memory_order_relaxed);
}

wasm_rt_pool_error_t wasm_rt_pool_stack_acquire(wasm_rt_pool_t *handle, uint64_t module_key,
                                                wasm_rt_pool_stack_t *stack) {
    if (!handle || !stack) {
        set_error(WASM_RT_POOL_INVALID_ARGUMENT, "wasm_rt_pool_stack_acquire: null argument");
        return t_error;
    }
    PoolHandle *pool = resolve(handle);
    if (!pool) {
        set_error(WASM_RT_POOL_INVALID_ARGUMENT,
                  "wasm_rt_pool_stack_acquire: %p is not a live pool (destroyed already?)",
                  static_cast<void *>(handle));
        return t_error;
    }
    wasmpool::Pool *p = pool->pool.load(std::memory_order_acquire);
    auto lease = p->acquire(wasmpool::Kind::stack, module_key, 0);
    if (!lease) {
        set_error(WASM_RT_POOL_EXHAUSTED, "wasm_rt_pool_stack_acquire: no free stack slot");
        return WASM_RT_POOL_EXHAUSTED;
    }
    stack->size = lease->capacity();
    stack->generation = lease->generation();
    // Released by base in wasm_rt_pool_stack_release(), through this
    // struct: a copy of it, or a stale one, is refused there.
    stack->base = lease->detach(reinterpret_cast<uintptr_t>(stack));
    return WASM_RT_POOL_OK;
}

void wasm_rt_pool_stack_release(wasm_rt_pool_t *handle, wasm_rt_pool_stack_t *stack) {
    if (!handle || !stack || !stack->base) {
        fprintf(stderr, "wasm_rt_pool_stack_release: %s\n",
                stack && !stack->base ? "stack released twice" : "null argument");
        abort();
    }
    PoolHandle *pool = resolve_or_abort("wasm_rt_pool_stack_release", handle);
    pool->pool.load(std::memory_order_acquire)
        ->release_base(wasmpool::Kind::stack, stack->base, reinterpret_cast<uintptr_t>(stack),
                       stack->generation);
    stack->base = nullptr;
    stack->size = 0;
}

void *wasm_rt_pool_cxx(wasm_rt_pool_t *pool) {
    if (!pool)
        return nullptr;
    return resolve_or_abort("wasm_rt_pool_cxx", pool)->pool.load(std::memory_order_acquire);
}

void wasm_rt_pooled_set_pool(void *p) {
    auto *pool = static_cast<wasmpool::Pool *>(p);
    if (pool && pool->config().memory_bounds != wasmpool::Bounds::guard_pages) {
        // wasm2c's signal-handler-mode code checks no access: a pool laid
        // out for code that checks its own would let it reach other slots.
        fprintf(stderr, "wasm_rt_pooled_set_pool: the pool's memory_bounds is not guard_pages; "
                        "wasm2c's code relies on the guard\n");
        abort();
    }
    g_default.pool.store(static_cast<wasmpool::Pool *>(p), std::memory_order_release);
    g_default_mode.store(p ? kPool : kStock, std::memory_order_release);
}

void wasm_rt_pooled_use_stock(void) {
    wasm_rt_pooled_set_pool(nullptr);
}

void wasm_rt_pooled_set_module(uint64_t key) {
    t_default_key = key;
}

// --- wasm2c's memory and table functions -----------------------------------

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
    std::byte *base =
        acquire_slot(wasmpool::Kind::memory, initial_pages * kWasmPage, "memory", memory);
    if (base) {
        memory->data = reinterpret_cast<uint8_t *>(base);
        memory->size = static_cast<uint32_t>(initial_pages * kWasmPage);
        memory->pages = initial_pages;
        memory->max_pages = max_pages;
        return;
    }
    wasm_rt_stock_allocate_memory(memory, initial_pages, max_pages);
    stock_memory_served(memory->data);
}

[[gnu::noinline]] static uint32_t grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::memory, memory->data);
    if (!p)
        return wasm_rt_stock_grow_memory(memory, delta);
    uint32_t old_pages = memory->pages;
    uint64_t new_pages = uint64_t{old_pages} + delta;
    if (new_pages == 0)
        return 0;
    // memory->size is 32 bits wide: 65536 pages do not fit in it.
    if (new_pages > memory->max_pages || new_pages * kWasmPage > UINT32_MAX ||
        !p->grow_base(wasmpool::Kind::memory, memory->data, new_pages * kWasmPage,
                      reinterpret_cast<uintptr_t>(memory)))
        return UINT32_MAX;
    memory->pages = static_cast<uint32_t>(new_pages);
    memory->size = static_cast<uint32_t>(new_pages * kWasmPage);
    return old_pages;
}

// Called by guest code (memory.grow), perhaps with little stack left:
// the stack check, then the work (so do the table grows below).
WASM_RT_POOLED_GUEST_ENTRY uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
    wasm_rt_pooled_check_stack();
    return grow_memory(memory, delta);
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
    if (!memory->data)
        freed_twice("memory");
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::memory, memory->data);
    if (!p) {
        stock_memory_freed(memory->data);
        wasm_rt_stock_free_memory(memory);
        memory->data = nullptr;
        return;
    }
    p->release_base(wasmpool::Kind::memory, memory->data, reinterpret_cast<uintptr_t>(memory));
    memory->data = nullptr;
    memory->size = 0;
}

// Both table kinds: the pool, or the stock runtime where it is to serve.
#define WASM_RT_POOLED_TABLE_OPS(type)                                                             \
    void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *t, uint32_t elements,           \
                                         uint32_t max_elements) {                                  \
        if (!pooled_table_alloc<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t, elements,         \
                                                                              max_elements)) {     \
            wasm_rt_stock_allocate_##type##_table(t, elements, max_elements);                      \
            stock_held(t->data);                                                                   \
        }                                                                                          \
    }                                                                                              \
    void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t *t) {                                \
        if (!pooled_table_free<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t)) {                 \
            stock_give_back(t->data, "table");                                                     \
            wasm_rt_stock_free_##type##_table(t);                                                  \
            t->data = nullptr;                                                                     \
        }                                                                                          \
    }                                                                                              \
    WASM_RT_POOLED_GUEST_ENTRY uint32_t wasm_rt_grow_##type##_table(                               \
        wasm_rt_##type##_table_t *t, uint32_t delta, wasm_rt_##type##_t init) {                    \
        wasm_rt_pooled_check_stack();                                                              \
        int64_t r =                                                                                \
            pooled_table_grow<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t, delta, init);       \
        if (r == -2)                                                                               \
            return stock_table_grow(t, delta, init, wasm_rt_stock_grow_##type##_table);            \
        return static_cast<uint32_t>(r);                                                           \
    }

WASM_RT_POOLED_TABLE_OPS(funcref)
WASM_RT_POOLED_TABLE_OPS(externref)

} // extern "C"
