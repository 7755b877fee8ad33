// SPDX-License-Identifier: MIT
#include "wasmpool/wasm-rt-pooled.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
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
#include <vector>

#include "wasm-rt-impl.h"
#include "wasmpool/pool.h"

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

struct wasm_rt_pool {
    std::unique_ptr<wasmpool::Pool> owned; // null for the process default
    std::atomic<wasmpool::Pool *> pool{nullptr};
    wasm_rt_pool_on_exhausted_t on_exhausted = WASM_RT_POOL_ON_EXHAUSTED_FAIL;
    // The configured elements per table: a slot is whole pages, so it may
    // hold more, but a table larger than asked for is refused.  0: what
    // the slot holds.
    size_t table_elements = 0;
    std::atomic<uint64_t> fallbacks{0};
};

namespace {

constexpr uint64_t kWasmPage = 65536;
constexpr size_t kTableElementBytes =
    std::max(sizeof(wasm_rt_funcref_t), sizeof(wasm_rt_externref_t));

// --- Which pool serves the calling thread ---------------------------------

enum DefaultMode { kUnset, kPool, kStock };
std::atomic<int> g_default_mode{kUnset};
wasm_rt_pool g_default; // wraps the Pool given to wasm_rt_pooled_set_pool()
std::once_flag g_default_once;

thread_local wasm_rt_pool *t_selected = nullptr;
thread_local uint64_t t_selected_key = 0;
thread_local uint64_t t_default_key = 0;

// The pool the calling thread allocates from, or null for the stock
// runtime.
wasm_rt_pool *current(uint64_t *key) {
    if (t_selected) {
        *key = t_selected_key;
        return t_selected;
    }
    *key = t_default_key;
    int mode = g_default_mode.load(std::memory_order_acquire);
    if (mode == kStock)
        return nullptr;
    if (mode == kUnset) {
        std::call_once(g_default_once, [] {
            static wasmpool::Pool default_pool{wasmpool::Config{}};
            wasmpool::Pool *expected = nullptr;
            g_default.pool.compare_exchange_strong(expected, &default_pool);
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
void fell_back(wasm_rt_pool *sel, wasm_rt_pool_error_t e, const char *what, uint64_t bytes,
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
std::byte *acquire_slot(wasmpool::Kind kind, uint64_t bytes, const char *what) {
    uint64_t key;
    wasm_rt_pool *sel = current(&key);
    wasmpool::Pool *p = sel ? sel->pool.load(std::memory_order_acquire) : nullptr;
    if (!p)
        return nullptr;
    {
        auto lease = p->acquire(kind, key, bytes);
        if (lease)
            return lease->detach(); // wasm2c keeps the base: released by release_base()
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
    wasm_rt_pool *sel = current(&key);
    std::byte *base = nullptr;
    if (sel && sel->table_elements && elements > sel->table_elements)
        fell_back(sel, WASM_RT_POOL_TOO_LARGE, "table", uint64_t{elements} * sizeof(Elem),
                  sel->table_elements * sizeof(Elem));
    else
        base = acquire_slot(wasmpool::Kind::table, uint64_t{elements} * sizeof(Elem), "table");
    if (!base)
        return false;
    t->data = reinterpret_cast<Elem *>(base);
    t->size = elements;
    t->max_size = max_elements;
    return true;
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

// Same contract as the stock runtime's grow: the old size, or -1; -2 for
// a table the pool does not hold.
template <class Table, class Elem> int64_t pooled_table_grow(Table *t, uint32_t delta, Elem init) {
    wasmpool::Pool *p =
        t->data ? wasmpool::Pool::owner_of(wasmpool::Kind::table, t->data) : nullptr;
    if (!p)
        return -2;
    uint32_t old = t->size;
    uint64_t want = uint64_t{old} + delta;
    if (want == 0)
        return 0;
    if (want > t->max_size || !p->grow_base(wasmpool::Kind::table, t->data, want * sizeof(Elem)))
        return -1;
    for (uint64_t i = old; i < want; i++)
        t->data[i] = init;
    t->size = static_cast<uint32_t>(want);
    return old;
}

// --- Faults: which are a guest's traps --------------------------------------

std::mutex g_init_lock;
bool g_handler_installed = false;
struct sigaction g_previous_segv, g_previous_bus;
thread_local bool t_armed = false; // this thread has armed wasm_rt_impl_try()

// The stock runtime's live memory reservations (8 GiB each), so that a
// fault in one is known for a guest's.  Lock-free, read by the handler.
// Past kStockSlots live at once, any access fault on an armed thread
// counts as one (g_stock_overflow), as in the stock runtime.
constexpr size_t kStockSlots = 1024;
constexpr uintptr_t kStockReservation = uintptr_t{8} << 30;
std::atomic<uintptr_t> g_stock_bases[kStockSlots];
std::atomic<bool> g_stock_overflow{false};

void stock_memory_served(const void *base) {
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t empty = 0;
        if (slot.compare_exchange_strong(empty, b))
            return;
    }
    g_stock_overflow.store(true);
}

void stock_memory_freed(const void *base) {
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t mine = b;
        if (slot.compare_exchange_strong(mine, 0))
            return;
    }
}

bool in_stock_memory(const void *addr) {
    auto a = reinterpret_cast<uintptr_t>(addr);
    for (const auto &slot : g_stock_bases) {
        uintptr_t b = slot.load(std::memory_order_relaxed);
        if (b && a >= b && a - b < kStockReservation)
            return true;
    }
    return false;
}

// Per thread: the alternate stack the handler runs on (a stack overflow
// leaves no room on the faulting stack).  Trivially constructed, so the
// handler may read it; the cleanup object below frees it at thread exit.
constexpr size_t kAltStackBytes = 256 << 10;
// What the handler itself needs; a handler it passes a fault on to runs on
// whatever stack the thread had (a sanitizer sizes its own for its report).
constexpr size_t kMinAltStackBytes = 16 << 10;
thread_local std::byte *t_altstack = nullptr; // its mapping, guard page first
thread_local bool t_has_altstack = false;

struct AltStackCleanup {
    ~AltStackCleanup() {
        if (!t_altstack)
            return;
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);
        munmap(t_altstack, kAltStackBytes + sysconf(_SC_PAGESIZE));
        t_altstack = nullptr;
        t_has_altstack = false;
    }
};
thread_local AltStackCleanup t_altstack_cleanup;

uintptr_t stack_pointer(const void *uc) {
    auto *ctx = static_cast<const ucontext_t *>(uc);
#if defined(__x86_64__)
    return static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
    return static_cast<uintptr_t>(ctx->uc_mcontext.sp);
#else
#error "wasm-rt-pooled: add this architecture's stack pointer"
#endif
}

// The trap a fault at @si is, or WASM_RT_TRAP_NONE when it is not a
// guest's: only on a thread that runs guest code, and only for the
// addresses the compiled code relies on faulting.
wasm_rt_trap_t classify(const siginfo_t *si, const void *uc) {
    if (!t_armed)
        return WASM_RT_TRAP_NONE;
    const void *addr = si->si_addr;
    if (wasmpool::Pool::owner_of(wasmpool::Kind::memory, addr))
        return WASM_RT_TRAP_OOB; // a slot's reservation: past the accessible size
    if (wasmpool::Pool::owner_of(wasmpool::Kind::stack, addr))
        return WASM_RT_TRAP_EXHAUSTION; // a pooled stack's guard
    // The thread's own stack (a call not on a pooled fiber): the kernel's
    // guard gap lies just below the stack pointer.  Probes from
    // -fstack-clash-protection fault within a page of it.
    uintptr_t sp = stack_pointer(uc), a = reinterpret_cast<uintptr_t>(addr);
    if (a < sp + 4096 && a + 65536 >= sp)
        return WASM_RT_TRAP_EXHAUSTION;
    // A memory the stock runtime serves (stock mode or the fallback): its
    // reservation is PROT_NONE past the accessible size.
    if (in_stock_memory(addr) ||
        (g_stock_overflow.load(std::memory_order_relaxed) && si->si_code == SEGV_ACCERR))
        return WASM_RT_TRAP_OOB;
    return WASM_RT_TRAP_NONE;
}

void pass_on(int sig, siginfo_t *si, void *uc) {
    const struct sigaction &prev = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
        prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    // Take the default action: a fault runs the faulting instruction
    // again; a signal someone sent (kill, raise) is sent again.
    signal(sig, SIG_DFL);
    if (si->si_code <= 0)
        raise(sig); // pending until this handler returns
}

void on_fault(int sig, siginfo_t *si, void *uc) {
    // Only a fault the kernel raised has a fault address.
    wasm_rt_trap_t trap = si->si_code > 0 ? classify(si, uc) : WASM_RT_TRAP_NONE;
    if (trap != WASM_RT_TRAP_NONE)
        wasm_rt_trap(trap); // siglongjmp to this thread's wasm_rt_impl_try()
    pass_on(sig, si, uc);
}

void install_handler_locked() {
    if (g_handler_installed)
        return;
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &g_previous_segv) != 0 ||
        sigaction(SIGBUS, &sa, &g_previous_bus) != 0) {
        perror("wasm-rt-pooled: sigaction");
        abort();
    }
    g_handler_installed = true;
}

} // namespace

extern "C" {

// --- The runtime's process and thread set-up -------------------------------

void wasm_rt_init(void) {
    wasm_rt_stock_init();
    {
        std::lock_guard<std::mutex> g(g_init_lock);
        install_handler_locked();
    }
    wasm_rt_pooled_thread_init();
}

bool wasm_rt_is_initialized(void) {
    std::lock_guard<std::mutex> g(g_init_lock);
    return g_handler_installed;
}

void wasm_rt_free(void) {
    wasm_rt_stock_free();
    std::lock_guard<std::mutex> g(g_init_lock);
    if (g_handler_installed) {
        sigaction(SIGSEGV, &g_previous_segv, nullptr);
        sigaction(SIGBUS, &g_previous_bus, nullptr);
        g_handler_installed = false;
    }
}

void wasm_rt_pooled_arm(void) {
    wasm_rt_pooled_thread_init();
    t_armed = true;
}

void wasm_rt_pooled_thread_init(void) {
    if (t_has_altstack)
        return;
    // A thread that already has a large enough alternate stack (a
    // sanitizer's, or the embedder's) keeps it.
    stack_t cur{};
    if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_size >= kMinAltStackBytes) {
        t_has_altstack = true;
        return;
    }
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *m = mmap(nullptr, kAltStackBytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0) {
        perror("wasm-rt-pooled: alternate signal stack");
        abort();
    }
    stack_t ss{};
    ss.ss_sp = static_cast<std::byte *>(m) + page;
    ss.ss_size = kAltStackBytes;
    if (sigaltstack(&ss, nullptr) != 0) {
        perror("wasm-rt-pooled: sigaltstack");
        abort();
    }
    t_altstack = static_cast<std::byte *>(m);
    t_has_altstack = true;
    (void)&t_altstack_cleanup; // constructed here, so it runs at thread exit
}

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
    auto made = std::unique_ptr<wasm_rt_pool>(new (std::nothrow) wasm_rt_pool);
    if (!made) {
        set_error(WASM_RT_POOL_NO_ADDRESS_SPACE, "wasm_rt_pool_create: out of memory");
        return t_error;
    }
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
    *pool = made.release();
    t_error = WASM_RT_POOL_OK;
    return WASM_RT_POOL_OK;
}

void wasm_rt_pool_destroy(wasm_rt_pool_t *pool) {
    if (!pool)
        return;
    // An instance still holding a slot would, once the pool is gone, free
    // it through the stock runtime or reach a later pool mapped there.
    wasmpool::Stats st = pool->owned->stats();
    if (st.acquired != st.released) {
        fprintf(stderr, "wasm_rt_pool_destroy: %llu slots still in use; free the instances first\n",
                static_cast<unsigned long long>(st.acquired - st.released));
        abort();
    }
    if (t_selected == pool)
        t_selected = nullptr;
    delete pool;
}

void wasm_rt_pool_select(wasm_rt_pool_t *pool, uint64_t module_key) {
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
    return pool ? pool->fallbacks.load(std::memory_order_relaxed) : 0;
}

wasm_rt_pool_error_t wasm_rt_pool_stack_acquire(wasm_rt_pool_t *pool, uint64_t module_key,
                                                wasm_rt_pool_stack_t *stack) {
    if (!pool || !stack) {
        set_error(WASM_RT_POOL_INVALID_ARGUMENT, "wasm_rt_pool_stack_acquire: null argument");
        return t_error;
    }
    wasmpool::Pool *p = pool->pool.load(std::memory_order_acquire);
    auto lease = p->acquire(wasmpool::Kind::stack, module_key, 0);
    if (!lease) {
        set_error(WASM_RT_POOL_EXHAUSTED, "wasm_rt_pool_stack_acquire: no free stack slot");
        return WASM_RT_POOL_EXHAUSTED;
    }
    stack->size = lease->capacity();
    stack->base = lease->detach(); // released by base in wasm_rt_pool_stack_release()
    return WASM_RT_POOL_OK;
}

void wasm_rt_pool_stack_release(wasm_rt_pool_t *pool, wasm_rt_pool_stack_t *stack) {
    if (!pool || !stack || !stack->base) {
        fprintf(stderr, "wasm_rt_pool_stack_release: %s\n",
                stack && !stack->base ? "stack released twice" : "null argument");
        abort();
    }
    pool->pool.load(std::memory_order_acquire)->release_base(wasmpool::Kind::stack, stack->base);
    stack->base = nullptr;
    stack->size = 0;
}

void *wasm_rt_pool_cxx(wasm_rt_pool_t *pool) {
    return pool ? pool->pool.load(std::memory_order_acquire) : nullptr;
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
    std::byte *base = acquire_slot(wasmpool::Kind::memory, initial_pages * kWasmPage, "memory");
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

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
    wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::memory, memory->data);
    if (!p)
        return wasm_rt_stock_grow_memory(memory, delta);
    uint32_t old_pages = memory->pages;
    uint64_t new_pages = uint64_t{old_pages} + delta;
    if (new_pages == 0)
        return 0;
    // memory->size is 32 bits wide: 65536 pages do not fit in it.
    if (new_pages > memory->max_pages || new_pages * kWasmPage > UINT32_MAX ||
        !p->grow_base(wasmpool::Kind::memory, memory->data, new_pages * kWasmPage))
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
        stock_memory_freed(memory->data);
        wasm_rt_stock_free_memory(memory);
        memory->data = nullptr;
        return;
    }
    p->release_base(wasmpool::Kind::memory, memory->data);
    memory->data = nullptr;
    memory->size = 0;
}

// Both table kinds: the pool, or the stock runtime where it is to serve.
#define WASM_RT_POOLED_TABLE_OPS(type)                                                             \
    void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *t, uint32_t elements,           \
                                         uint32_t max_elements) {                                  \
        if (!pooled_table_alloc<wasm_rt_##type##_table_t, wasm_rt_##type##_t>(t, elements,         \
                                                                              max_elements))       \
            wasm_rt_stock_allocate_##type##_table(t, elements, max_elements);                      \
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
