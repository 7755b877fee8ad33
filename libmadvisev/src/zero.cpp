// SPDX-License-Identifier: MIT
// Whether the kernel zeroes MADVISEV_ZERO ranges itself.  The patched
// kernel announces the advice in /sys/kernel/mm/madvisev/version (2 and
// later); an unknown advice value must never reach a kernel that has not
// announced it, where it would be EINVAL at best and, on another system,
// some other advice.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "internal.h"
#include "madvisev.h"

namespace madvisev_internal {
namespace {

constexpr const char kVersionFile[] = "/sys/kernel/mm/madvisev/version";

// The kernel's answer once definite: kUnknown until then.
enum : int { kUnknown = 0, kNative = 1, kEmulated = 2 };
std::atomic<int> g_kernel{kUnknown};
std::atomic<bool> g_forced{false};

// -1: could not decide now (no descriptor, no memory); else the version,
// 0 where the file is absent (an unpatched kernel).
long read_version() {
    int fd = open(kVersionFile, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR ? -1 : 0;
    char buf[32] = {};
    ssize_t got;
    do
        got = read(fd, buf, sizeof(buf) - 1);
    while (got < 0 && errno == EINTR);
    close(fd);
    if (got <= 0)
        return 0;
    char *end = nullptr;
    long v = strtol(buf, &end, 10);
    return end == buf || v < 0 ? 0 : v;
}

// Read once into an atomic, not a static local: that one's initialisation
// is a lock a fork() could leave held in the child.
std::atomic<int> g_env{-1}; // -1: not read yet
bool env_forces() {
    int forced = g_env.load(std::memory_order_relaxed);
    if (forced < 0) {
        const char *e = secure_getenv("MADVISEV_ZERO_EMULATE");
        forced = e != nullptr && strcmp(e, "1") == 0;
        g_env.store(forced, std::memory_order_relaxed);
    }
    return forced != 0;
}

} // namespace

bool zero_native() {
    if (g_forced.load(std::memory_order_relaxed) || env_forces())
        return false;
    int k = g_kernel.load(std::memory_order_acquire);
    if (k == kUnknown) {
        int saved = errno;
        long v = read_version();
        errno = saved;
        if (v < 0)
            return false; // emulate this time, ask again next time
        k = v >= 2 ? kNative : kEmulated;
        g_kernel.store(k, std::memory_order_release);
    }
    return k == kNative;
}

bool zero_force_emulation(bool on) {
    return g_forced.exchange(on, std::memory_order_relaxed);
}

} // namespace madvisev_internal

extern "C" int madvisev_zero_native(void) {
    return madvisev_internal::zero_native() ? 1 : 0;
}

extern "C" int madvisev_zero_force_emulation(int on) {
    return madvisev_internal::zero_force_emulation(on != 0) ? 1 : 0;
}
