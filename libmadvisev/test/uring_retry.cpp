// SPDX-License-Identifier: MIT
// madvisev-uring-retry: the io_uring backend's first use, in a fresh
// process, while the address space is full (RLIMIT_AS): loading
// liburing.so.2 fails for want of memory, which says nothing about
// liburing.  Once the limit is lifted the backend must work.  Exit 0 when
// it does, 1 (with a line on stdout) when not, 77 when this cannot run here.
// uring_retry_test.cpp runs it.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "madvisev.h"

namespace {

// This process's address space now, in bytes.
size_t vm_size() {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f == nullptr)
        return 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

} // namespace

int main() {
#if defined(__SANITIZE_THREAD__)
    printf("SKIP: ThreadSanitizer's runtime cannot map its own memory under RLIMIT_AS\n");
    return 77;
#endif
    const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const char *why = nullptr;
    void *loaded = dlopen("liburing.so.2", RTLD_NOW | RTLD_NOLOAD);
    if (loaded != nullptr) {
        printf("SKIP: liburing.so.2 is linked in: no dlopen() to fail\n");
        return 77;
    }
    void *p = mmap(nullptr, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    iovec iov{p, 4 * ps};
    struct rlimit old {};
    getrlimit(RLIMIT_AS, &old);
    // Not one page more than the process has now: every mmap() fails.
    struct rlimit tight = old;
    tight.rlim_cur = vm_size();
    if (tight.rlim_cur == 0 || setrlimit(RLIMIT_AS, &tight) != 0) {
        printf("SKIP: cannot limit the address space: %s\n", strerror(errno));
        return 77;
    }
    errno = 0;
    ssize_t r = madvisev_via(MADVISEV_BACKEND_IO_URING, &iov, 1, MADV_DONTNEED, 0);
    int err = errno;
    setrlimit(RLIMIT_AS, &old);
    printf("under RLIMIT_AS: %zd (%s)\n", r, r < 0 ? strerror(err) : "advised");
    if (r >= 0) {
        printf("SKIP: io_uring worked with a full address space: nothing was refused\n");
        return 77;
    }
    memset(p, 0x5a, 4 * ps);
    errno = 0;
    r = madvisev_via(MADVISEV_BACKEND_IO_URING, &iov, 1, MADV_DONTNEED, 0);
    if (r < 0 && errno == ENOSYS && madvisev_backend_probe(MADVISEV_BACKEND_IO_URING, &why) == 0 &&
        strstr(why, "liburing") == nullptr) {
        printf("SKIP: io_uring unavailable here: %s\n", why);
        return 77;
    }
    if (r != static_cast<ssize_t>(4 * ps)) {
        madvisev_backend_probe(MADVISEV_BACKEND_IO_URING, &why);
        printf("FAIL: after the limit was lifted: %zd (%s); probe: %s\n", r, strerror(errno), why);
        return 1;
    }
    for (size_t i = 0; i < 4 * ps; i++)
        if (static_cast<const char *>(p)[i] != 0) {
            printf("FAIL: advised, but the pages were not dropped\n");
            return 1;
        }
    printf("ok: io_uring works once the limit is lifted\n");
    return 0;
}
