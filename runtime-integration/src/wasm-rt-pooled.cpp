// SPDX-License-Identifier: MIT
#include "wasmpool/wasm-rt-pooled.h"

#include <pthread.h>
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
#include <unordered_set>
#include <utility>
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

namespace {

// What a wasm_rt_pool_t names.  The handle a caller holds is not a pointer
// to one (see handle_of()): a handle outlives its pool, and a call with a
// destroyed one must be told, not served from freed memory or from a later
// pool made in the same place.
struct PoolHandle {
    std::atomic<uint64_t> serial{0}; // the handle's; 0: unused (or the default)
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

template <class Table, class Elem> bool pooled_table_free(Table *t) {
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
    if (want > t->max_size ||
        !p->grow_base(wasmpool::Kind::table, t->data, want * sizeof(Elem),
                      reinterpret_cast<uintptr_t>(t)))
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
// Set by wasm_rt_impl_try() (wasm_rt_pooled_arm()), cleared by
// wasm_rt_pooled_disarm(): this thread runs guest code, and the frame that
// armed lies at or above t_armed_frame on its stack.
thread_local bool t_armed = false;
thread_local uintptr_t t_armed_frame = 0;
// The trap wasm_rt_trap() is raising (see there).
thread_local wasm_rt_trap_t t_trap_code = WASM_RT_TRAP_NONE;
// The calling thread's own stack, [lo, hi), as pthread reports it (0, 0:
// not known).
thread_local uintptr_t t_thread_stack_lo = 0, t_thread_stack_hi = 0;

// The stock runtime's live memory reservations (8 GiB each), so that a
// fault in one is known for a guest's.  Lock-free, read by the handler.
// Past kStockSlots live at once, any access fault on an armed thread
// counts as one (g_stock_overflow), as in the stock runtime.
constexpr size_t kStockSlots = 1024;
constexpr uintptr_t kStockReservation = uintptr_t{8} << 30;
std::atomic<uintptr_t> g_stock_bases[kStockSlots];
std::atomic<bool> g_stock_overflow{false};

// Every memory and table the stock runtime serves now, by data pointer:
// what a free may hand it.  Anything else (a double free, a free of a
// memory from a pool destroyed since) would reach munmap() or free() with
// an address that is someone else's by now.
std::mutex g_stock_lock;
std::unordered_set<uintptr_t> g_stock_held;

void stock_held(const void *data) {
    std::lock_guard<std::mutex> g(g_stock_lock);
    g_stock_held.insert(reinterpret_cast<uintptr_t>(data));
}

// Forget @data, or stop the process when the stock runtime does not hold it.
void stock_give_back(const void *data, const char *what) {
    {
        std::lock_guard<std::mutex> g(g_stock_lock);
        if (g_stock_held.erase(reinterpret_cast<uintptr_t>(data)) == 1)
            return;
    }
    fprintf(stderr,
            "wasm-rt-pooled: free of a %s at %p that no pool and not the stock runtime holds "
            "(freed twice, or from a pool destroyed since); stopping before it reaches another "
            "tenant's memory\n",
            what, data);
    abort();
}

void stock_memory_served(const void *base) {
    stock_held(base);
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t empty = 0;
        if (slot.compare_exchange_strong(empty, b))
            return;
    }
    g_stock_overflow.store(true);
}

void stock_memory_freed(const void *base) {
    stock_give_back(base, "memory");
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t mine = b;
        if (slot.compare_exchange_strong(mine, 0))
            return;
    }
}

// The stock runtime's table grow reallocates: the held pointer follows.
template <class Table, class Elem>
__attribute__((noinline)) uint32_t stock_table_grow(Table *t, uint32_t delta, Elem init,
                                                    uint32_t (*grow)(Table *, uint32_t, Elem)) {
    stock_give_back(t->data, "table");
    uint32_t r = grow(t, delta, init);
    stock_held(t->data);
    return r;
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

uintptr_t program_counter(const void *uc) {
    auto *ctx = static_cast<const ucontext_t *>(uc);
#if defined(__x86_64__)
    return static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return static_cast<uintptr_t>(ctx->uc_mcontext.pc);
#else
#error "wasm-rt-pooled: add this architecture's program counter"
#endif
}

// Guest code: the modules wasm_rt_pooled_module() sealed, and the
// runtime's entry stubs (WASM_RT_POOLED_GUEST_ENTRY), which hold no lock
// and whose frames may be abandoned.  The linker bounds the section.
extern "C" const char __start_wasm_rt_pooled_guest_text[] __attribute__((weak));
extern "C" const char __stop_wasm_rt_pooled_guest_text[] __attribute__((weak));

bool in_guest_code(uintptr_t pc) {
    auto lo = reinterpret_cast<uintptr_t>(__start_wasm_rt_pooled_guest_text);
    auto hi = reinterpret_cast<uintptr_t>(__stop_wasm_rt_pooled_guest_text);
    return lo != 0 && pc >= lo && pc < hi;
}

// wasm_rt_trap() faults here on purpose (the null page; see there).
volatile uintptr_t g_trap_address = 8;

// The trap a fault at @si is, or WASM_RT_TRAP_NONE when it is not a
// guest's: only on a thread inside a live guarded call, only for an
// instruction of guest code, and only at the addresses that code relies on
// faulting (or wasm_rt_trap()'s own).  A fault in host code is never a
// trap, even at a guest's addresses: jumping out of it could leave a lock
// held (malloc's) or skip C++ destructors.
wasm_rt_trap_t classify(const siginfo_t *si, const void *uc) {
    if (!t_armed || !in_guest_code(program_counter(uc)))
        return WASM_RT_TRAP_NONE;
    uintptr_t sp = stack_pointer(uc), a = reinterpret_cast<uintptr_t>(si->si_addr);
    // Above the frame that armed: that call has returned, and its jump
    // buffer is dead.
    if (sp > t_armed_frame)
        return WASM_RT_TRAP_NONE;
    if (a == g_trap_address && t_trap_code != WASM_RT_TRAP_NONE)
        return std::exchange(t_trap_code, WASM_RT_TRAP_NONE);
    const void *addr = si->si_addr;
    if (wasmpool::Pool::owner_of(wasmpool::Kind::memory, addr))
        return WASM_RT_TRAP_OOB; // a slot's reservation: past the accessible size
    if (wasmpool::Pool::owner_of(wasmpool::Kind::stack, addr))
        return WASM_RT_TRAP_EXHAUSTION; // a pooled stack's guard
    // The thread's own stack (a call not on a pooled fiber): the kernel's
    // guard gap lies just below the stack pointer.  Probes from
    // -fstack-clash-protection fault within a page of it.
    if (a < sp + 4096 && a + 65536 >= sp)
        return WASM_RT_TRAP_EXHAUSTION;
    // A memory the stock runtime serves (stock mode or the fallback): its
    // reservation is PROT_NONE past the accessible size.
    if (in_stock_memory(addr) ||
        (g_stock_overflow.load(std::memory_order_relaxed) && si->si_code == SEGV_ACCERR))
        return WASM_RT_TRAP_OOB;
    return WASM_RT_TRAP_NONE;
}

// "0x" and @v in hex into @out, for the handler (no printf there).
char *put_hex(char *out, uintptr_t v) {
    *out++ = '0';
    *out++ = 'x';
    int shift = 60;
    while (shift > 0 && (v >> shift) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        *out++ = "0123456789abcdef"[(v >> shift) & 15];
    return out;
}

// Say why a fault at a guest's addresses is not a trap, before the
// process dies of it: host code faulted there, a module was built without
// wasm_rt_pooled_module(), or guest code ran outside a guarded call.
void say_not_a_trap(const siginfo_t *si, const void *uc) {
    const void *addr = si->si_addr;
    if (si->si_code <= 0 ||
        (!wasmpool::Pool::owner_of(wasmpool::Kind::memory, addr) &&
         !wasmpool::Pool::owner_of(wasmpool::Kind::stack, addr) && !in_stock_memory(addr) &&
         reinterpret_cast<uintptr_t>(addr) != g_trap_address))
        return;
    char line[256], *at = line;
    auto put = [&](const char *str) {
        while (*str)
            *at++ = *str++;
    };
    uintptr_t pc = program_counter(uc);
    put("wasm-rt-pooled: fault at ");
    at = put_hex(at, reinterpret_cast<uintptr_t>(addr));
    put(" from pc ");
    at = put_hex(at, pc);
    if (!in_guest_code(pc))
        put(": not guest code (host code, or a module not sealed by wasm_rt_pooled_module())");
    else if (!t_armed)
        put(": guest code with no guarded call (wasm_rt_impl_try()) live");
    else
        put(": guest code after its guarded call returned");
    put("; not a trap\n");
    ssize_t ignored = write(STDERR_FILENO, line, static_cast<size_t>(at - line));
    (void)ignored;
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
        siglongjmp(wasm_rt_jmp_buf, trap); // to this thread's wasm_rt_impl_try()
    say_not_a_trap(si, uc);
    pass_on(sig, si, uc);
}

// The bounds of the stack @sp is on, as far as the runtime knows them: a
// pooled stack's slot, or the thread's own stack; 0 when it is neither (a
// fiber stack of the embedder's own).
uintptr_t stack_floor(uintptr_t sp) {
    if (sp >= t_thread_stack_lo && sp < t_thread_stack_hi)
        return t_thread_stack_lo;
    auto *at = reinterpret_cast<const void *>(sp);
    if (wasmpool::Pool *p = wasmpool::Pool::owner_of(wasmpool::Kind::stack, at)) {
        auto index = p->locate(wasmpool::Kind::stack, at);
        if (index)
            return reinterpret_cast<uintptr_t>(p->slot_base(*index));
    }
    return 0;
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

void wasm_rt_pooled_arm(void *frame) {
    wasm_rt_pooled_thread_init();
    t_armed_frame = reinterpret_cast<uintptr_t>(frame);
    wasm_rt_pooled_stack_floor = stack_floor(t_armed_frame);
    t_trap_code = WASM_RT_TRAP_NONE;
    t_armed = true;
}

void wasm_rt_pooled_disarm(void) {
    t_armed = false;
    wasm_rt_pooled_stack_floor = 0;
}

// Guest code, kept in the guest section: it may run with the last bytes
// of a stack, so it takes the trap on the alternate signal stack.  It
// stores the code and faults on purpose; the handler, on the alternate
// stack, sees a fault of guest code at g_trap_address and jumps to the
// guarded call.  (Called on a thread with no guarded call live, the fault
// is no trap: the process dies with a message, where the stock runtime
// would jump through a stale buffer.)
WASM_RT_POOLED_GUEST_ENTRY void wasm_rt_trap(wasm_rt_trap_t code) {
    t_trap_code = code;
    *reinterpret_cast<volatile int *>(g_trap_address) = 0;
    __builtin_unreachable();
}

thread_local uintptr_t wasm_rt_pooled_stack_floor = 0;

void wasm_rt_pooled_thread_init(void) {
    if (t_has_altstack)
        return;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo = nullptr;
        size_t size = 0;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            t_thread_stack_lo = reinterpret_cast<uintptr_t>(lo);
            t_thread_stack_hi = t_thread_stack_lo + size;
        }
        pthread_attr_destroy(&attr);
    }
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

[[gnu::noinline]]
static uint32_t grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
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
                                                                              max_elements))       \
        {                                                                                          \
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
