// SPDX-License-Identifier: MIT
// The WASI layer (see wasmpool/wasi.h).  Guest memory is only touched
// through guest_range(), which checks a range against the memory's current
// size in 64-bit arithmetic, so no pointer or length a guest passes can
// reach host memory.
#include "wasmpool/wasi.h"

#include <sys/random.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <vector>

#include "wasmpool/wasm-rt-pooled.h"

// Guest memory is little-endian; values are copied as they lie in memory.
static_assert(std::endian::native == std::endian::little, "the WASI layer assumes a LE host");

struct Z_wasi_snapshot_preview1_instance_t {
    // Arguments and environment, each as one block of NUL-terminated
    // strings (what args_get copies into the guest) and their offsets.
    std::string args, env;
    std::vector<uint32_t> arg_at, env_at;
    std::string out[2]; // fds 1 and 2
    bool open[2] = {true, true};
    size_t output_limit = 0;
    wasm_rt_memory_t *memory = nullptr;
    sigjmp_buf *exit_target = nullptr; // set while wasmpool_wasi_run() runs
    uint32_t exit_code = 0;
    bool exited = false;
};

namespace {

using W = wasmpool_wasi_t;

// WASI's own constants (wasi_snapshot_preview1).
constexpr uint32_t kClockRealtime = 0, kClockMonotonic = 1, kClockProcess = 2, kClockThread = 3;
constexpr uint8_t kFiletypeUnknown = 0;
constexpr uint64_t kRightFdWrite = uint64_t{1} << 6;
constexpr size_t kFdstatBytes = 24;
constexpr size_t kMaxOutputLimit = size_t{1} << 30;

// The host address of guest range [ptr, ptr + len), or nullptr when any
// byte of it lies outside the memory (or no memory is bound).
uint8_t *guest_range(const W *w, uint32_t ptr, uint64_t len) {
    if (!w || !w->memory || !w->memory->data || uint64_t{ptr} + len > w->memory->size)
        return nullptr;
    return w->memory->data + ptr;
}

void put_u32(uint8_t *at, uint32_t v) {
    memcpy(at, &v, sizeof(v));
}
void put_u64(uint8_t *at, uint64_t v) {
    memcpy(at, &v, sizeof(v));
}
uint32_t get_u32(const uint8_t *at) {
    uint32_t v;
    memcpy(&v, at, sizeof(v));
    return v;
}

// Append NUL-terminated copies of @strs (n of them, or up to a NULL when n
// is -1) to @block, recording where each starts.
bool pack(std::string &block, std::vector<uint32_t> &at, const char *const *strs, long n) {
    for (long i = 0; n < 0 ? strs && strs[i] : i < n; i++) {
        if (!strs[i])
            return false;
        at.push_back(static_cast<uint32_t>(block.size()));
        block.append(strs[i]);
        block.push_back('\0');
        if (block.size() > UINT32_MAX / 2)
            return false; // could never fit a 32-bit guest
    }
    return true;
}

// args_get and environ_get: the pointer array, then the strings.
uint32_t copy_strings(W *w, const std::string &block, const std::vector<uint32_t> &at,
                      uint32_t ptrs, uint32_t buf) {
    uint8_t *p = guest_range(w, ptrs, uint64_t{at.size()} * 4);
    uint8_t *b = guest_range(w, buf, block.size());
    if (!p || !b)
        return WASMPOOL_WASI_EFAULT;
    memcpy(b, block.data(), block.size());
    for (size_t i = 0; i < at.size(); i++)
        put_u32(p + i * 4, buf + at[i]);
    return WASMPOOL_WASI_SUCCESS;
}

uint32_t copy_sizes(W *w, size_t count, size_t bytes, uint32_t count_out, uint32_t size_out) {
    uint8_t *c = guest_range(w, count_out, 4);
    uint8_t *s = guest_range(w, size_out, 4);
    if (!c || !s)
        return WASMPOOL_WASI_EFAULT;
    put_u32(c, static_cast<uint32_t>(count));
    put_u32(s, static_cast<uint32_t>(bytes));
    return WASMPOOL_WASI_SUCCESS;
}

std::string *stream(W *w, uint32_t fd) {
    if (!w || (fd != 1 && fd != 2) || !w->open[fd - 1])
        return nullptr;
    return &w->out[fd - 1];
}

} // namespace

extern "C" {

wasmpool_wasi_t *wasmpool_wasi_create(int argc, const char *const *argv, const char *const *envp,
                                      size_t output_limit) {
    if (argc < 0 || (argc > 0 && !argv) || output_limit > kMaxOutputLimit) {
        errno = EINVAL;
        return nullptr;
    }
    try {
        auto *w = new W;
        w->output_limit = output_limit ? output_limit : WASMPOOL_WASI_OUTPUT_LIMIT;
        if (!pack(w->args, w->arg_at, argv, argc) || !pack(w->env, w->env_at, envp, -1)) {
            delete w;
            errno = EINVAL;
            return nullptr;
        }
        return w;
    } catch (const std::bad_alloc &) {
        errno = ENOMEM;
        return nullptr;
    }
}

void wasmpool_wasi_destroy(wasmpool_wasi_t *w) {
    delete w;
}

void wasmpool_wasi_bind_memory(wasmpool_wasi_t *w, wasm_rt_memory_t *memory) {
    if (w)
        w->memory = memory;
}

void wasmpool_wasi_reset(wasmpool_wasi_t *w) {
    if (!w)
        return;
    w->out[0].clear();
    w->out[1].clear();
    w->open[0] = w->open[1] = true;
    w->memory = nullptr;
    w->exit_target = nullptr;
    w->exit_code = 0;
    w->exited = false;
}

uint32_t wasmpool_wasi_run(wasmpool_wasi_t *w, void (*start)(void *), void *ctx) {
    if (!w || !start || w->exit_target) {
        // The host's bug, not the guest's: there is no status to return.
        fprintf(stderr, "wasmpool wasi: wasmpool_wasi_run(%p, %p): %s\n", static_cast<void *>(w),
                reinterpret_cast<void *>(start),
                w && start ? "already running on this context" : "NULL argument");
        abort();
    }
    // No object with a destructor lives in this frame: proc_exit() jumps
    // back into it.
    sigjmp_buf target;
#if WASM_RT_USE_STACK_DEPTH_COUNT
    // The jump skips the generated code's depth decrements.
    uint32_t depth = wasm_rt_call_stack_depth;
#endif
    w->exit_target = &target;
    w->exited = false;
    w->exit_code = 0;
    if (sigsetjmp(target, 0) == 0)
        start(ctx);
#if WASM_RT_USE_STACK_DEPTH_COUNT
    wasm_rt_call_stack_depth = depth;
#endif
    w->exit_target = nullptr;
    return w->exit_code;
}

int wasmpool_wasi_exited(const wasmpool_wasi_t *w) {
    return w && w->exited;
}

const char *wasmpool_wasi_output(const wasmpool_wasi_t *w, uint32_t fd, size_t *len) {
    if (!w || (fd != 1 && fd != 2)) {
        *len = 0;
        return nullptr;
    }
    *len = w->out[fd - 1].size();
    return w->out[fd - 1].data();
}

[[gnu::noinline]] static uint32_t wasi_args_sizes_get(W *w, uint32_t argc_out, uint32_t size_out) {
    if (!w)
        return WASMPOOL_WASI_EFAULT;
    return copy_sizes(w, w->arg_at.size(), w->args.size(), argc_out, size_out);
}

[[gnu::noinline]] static uint32_t wasi_args_get(W *w, uint32_t argv, uint32_t argv_buf) {
    if (!w)
        return WASMPOOL_WASI_EFAULT;
    return copy_strings(w, w->args, w->arg_at, argv, argv_buf);
}

[[gnu::noinline]] static uint32_t wasi_environ_sizes_get(W *w, uint32_t count_out,
                                                         uint32_t size_out) {
    if (!w)
        return WASMPOOL_WASI_EFAULT;
    return copy_sizes(w, w->env_at.size(), w->env.size(), count_out, size_out);
}

[[gnu::noinline]] static uint32_t wasi_environ_get(W *w, uint32_t environ, uint32_t environ_buf) {
    if (!w)
        return WASMPOOL_WASI_EFAULT;
    return copy_strings(w, w->env, w->env_at, environ, environ_buf);
}

[[gnu::noinline]] static uint32_t wasi_clock_time_get(W *w, uint32_t clock_id, uint64_t,
                                                      uint32_t time_out) {
    clockid_t id;
    switch (clock_id) {
    case kClockRealtime:
        id = CLOCK_REALTIME;
        break;
    case kClockMonotonic:
        id = CLOCK_MONOTONIC;
        break;
    case kClockProcess:
        id = CLOCK_PROCESS_CPUTIME_ID;
        break;
    case kClockThread:
        id = CLOCK_THREAD_CPUTIME_ID;
        break;
    default:
        return WASMPOOL_WASI_EINVAL;
    }
    uint8_t *out = guest_range(w, time_out, 8);
    if (!out)
        return WASMPOOL_WASI_EFAULT;
    timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return WASMPOOL_WASI_EIO;
    put_u64(out, uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec));
    return WASMPOOL_WASI_SUCCESS;
}

[[gnu::noinline]] static uint32_t wasi_random_get(W *w, uint32_t buf, uint32_t len) {
    uint8_t *p = guest_range(w, buf, len);
    if (!p)
        return WASMPOOL_WASI_EFAULT;
    for (size_t done = 0; done < len;) {
        ssize_t n = getrandom(p + done, len - done, 0);
        if (n < 0 && errno != EINTR)
            return WASMPOOL_WASI_EIO;
        if (n > 0)
            done += static_cast<size_t>(n);
    }
    return WASMPOOL_WASI_SUCCESS;
}

[[gnu::noinline]] static uint32_t wasi_fd_write(W *w, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                                                uint32_t nwritten_out) {
    std::string *s = stream(w, fd);
    if (!s)
        return WASMPOOL_WASI_EBADF;
    // Every range is checked before anything is copied: a write either
    // fails whole with EFAULT or reads only guest memory.
    const uint8_t *v = guest_range(w, iovs, uint64_t{iovs_len} * 8);
    uint8_t *nw = guest_range(w, nwritten_out, 4);
    if (!v || !nw)
        return WASMPOOL_WASI_EFAULT;
    uint64_t total = 0;
    for (uint32_t i = 0; i < iovs_len; i++) {
        uint32_t len = get_u32(v + i * 8 + 4);
        if (!guest_range(w, get_u32(v + i * 8), len))
            return WASMPOOL_WASI_EFAULT;
        total += len;
    }
    size_t room = w->output_limit - s->size();
    if (total > 0 && room == 0)
        return WASMPOOL_WASI_EFBIG;
    // Past the limit, a short write (as a full pipe gives), then EFBIG.
    uint32_t written = 0;
    try {
        for (uint32_t i = 0; i < iovs_len && room > 0; i++) {
            size_t len = std::min<size_t>(get_u32(v + i * 8 + 4), room);
            s->append(reinterpret_cast<const char *>(guest_range(w, get_u32(v + i * 8), len)), len);
            room -= len;
            written += static_cast<uint32_t>(len);
        }
    } catch (const std::bad_alloc &) {
        if (written == 0)
            return WASMPOOL_WASI_ENOMEM;
    }
    put_u32(nw, written);
    return WASMPOOL_WASI_SUCCESS;
}

[[gnu::noinline]] static uint32_t wasi_fd_close(W *w, uint32_t fd) {
    if (!stream(w, fd))
        return WASMPOOL_WASI_EBADF;
    w->open[fd - 1] = false;
    return WASMPOOL_WASI_SUCCESS;
}

[[gnu::noinline]] static uint32_t wasi_fd_seek(W *w, uint32_t fd, uint64_t, uint32_t, uint32_t) {
    // The captured streams are pipe-like: no offsets.
    return stream(w, fd) ? WASMPOOL_WASI_ESPIPE : WASMPOOL_WASI_EBADF;
}

[[gnu::noinline]] static uint32_t wasi_fd_fdstat_get(W *w, uint32_t fd, uint32_t fdstat_out) {
    if (!stream(w, fd))
        return WASMPOOL_WASI_EBADF;
    uint8_t *p = guest_range(w, fdstat_out, kFdstatBytes);
    if (!p)
        return WASMPOOL_WASI_EFAULT;
    // Not a character device, so wasi-libc's isatty() says no and stdio
    // buffers fully: one fd_write per buffer rather than per line.
    memset(p, 0, kFdstatBytes);
    p[0] = kFiletypeUnknown;
    put_u64(p + 8, kRightFdWrite); // rights base; inheriting stays 0
    return WASMPOOL_WASI_SUCCESS;
}

[[gnu::noinline]] static void wasi_proc_exit(W *w, uint32_t code) {
    if (!w || !w->exit_target) {
        fprintf(stderr, "wasmpool wasi: proc_exit(%u) outside wasmpool_wasi_run()\n", code);
        abort();
    }
    w->exit_code = code;
    w->exited = true;
    siglongjmp(*w->exit_target, 1);
}

// The imports guest code calls: each a stub in the guest section that
// checks the stack before any host code runs (wasm-rt-pooled.h), then the
// function above (never inlined into the stub: only the stub is guest code).
#define WASI_IMPORT(ret, name, params, args)                                                       \
    WASM_RT_POOLED_GUEST_ENTRY ret Z_wasi_snapshot_preview1Z_##name params {                       \
        wasm_rt_pooled_check_stack();                                                              \
        return wasi_##name args;                                                                   \
    }
WASI_IMPORT(uint32_t, args_sizes_get, (W * w, uint32_t a, uint32_t b), (w, a, b))
WASI_IMPORT(uint32_t, args_get, (W * w, uint32_t a, uint32_t b), (w, a, b))
WASI_IMPORT(uint32_t, environ_sizes_get, (W * w, uint32_t a, uint32_t b), (w, a, b))
WASI_IMPORT(uint32_t, environ_get, (W * w, uint32_t a, uint32_t b), (w, a, b))
WASI_IMPORT(uint32_t, clock_time_get, (W * w, uint32_t id, uint64_t precision, uint32_t out),
            (w, id, precision, out))
WASI_IMPORT(uint32_t, random_get, (W * w, uint32_t buf, uint32_t len), (w, buf, len))
WASI_IMPORT(uint32_t, fd_write, (W * w, uint32_t fd, uint32_t iovs, uint32_t n, uint32_t out),
            (w, fd, iovs, n, out))
WASI_IMPORT(uint32_t, fd_close, (W * w, uint32_t fd), (w, fd))
WASI_IMPORT(uint32_t, fd_seek, (W * w, uint32_t fd, uint64_t off, uint32_t whence, uint32_t out),
            (w, fd, off, whence, out))
WASI_IMPORT(uint32_t, fd_fdstat_get, (W * w, uint32_t fd, uint32_t out), (w, fd, out))
WASI_IMPORT(void, proc_exit, (W * w, uint32_t code), (w, code))
#undef WASI_IMPORT

} // extern "C"
