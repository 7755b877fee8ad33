// SPDX-License-Identifier: MIT
// Which faults are a guest's traps, and the per-thread state that decides
// it: the guarded call (wasm_rt_impl_try()), the alternate signal stack,
// the stack floor host imports are checked against, and wasm_rt_trap().
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <utility>

#include "wasm-rt-impl.h"
#include "wasm-rt-pooled-internal.h"
#include "wasmpool/pool.h"

using wasm_rt_pooled_internal::in_stock_memory;
using wasm_rt_pooled_internal::stock_memories_overflowed;

namespace {

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
    if (in_stock_memory(addr) || (stock_memories_overflowed() && si->si_code == SEGV_ACCERR))
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
} // extern "C"
