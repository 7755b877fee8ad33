// SPDX-License-Identifier: MIT
// libFuzzer target: libmadvisev's argument validation, through every
// backend the kernel has.  The input picks a backend, an advice value,
// flags and up to 64 ranges (inside a mapping the target owns, unaligned,
// NULL, kernel addresses, huge or wrapping lengths).  Checked:
//  - an invalid vector (by the documented rules) fails with EINVAL/EFAULT
//    and leaves the target's memory untouched;
//  - a valid one returns -1 with a plausible errno, or at most the sum of
//    its lengths, and never crashes.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "madvisev.h"

namespace {

// Ranges start in the first kPages pages and run at most 8 pages on, so
// the mapping is twice as long: nothing the target advises lies outside
// memory it owns (a neighbouring mapping could be the sanitizer's own).
constexpr size_t kPages = 64;
constexpr size_t kMapPages = 2 * kPages;
size_t g_page;
char *g_area;

struct Reader {
    const uint8_t *p;
    size_t n;
    template <class T> T take() {
        T v{};
        size_t k = n < sizeof(T) ? n : sizeof(T);
        memcpy(&v, p, k);
        p += k;
        n -= k;
        return v;
    }
};

bool advice_known(int a) {
    return (a >= 0 && a <= 4) || (a >= 8 && a <= 25) || a == 100 || a == 101 || a == 102 ||
           a == 103;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *p = mmap(nullptr, kMapPages * g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        abort();
    g_area = static_cast<char *>(p);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Reader in{data, size};
    int backend = in.take<uint8_t>() % (MADVISEV_BACKEND_MAX + 1);
    int advice = in.take<int8_t>();
    if (in.take<uint8_t>() & 1)
        advice = in.take<int32_t>();
    // Never poison or offline real pages, whatever the input says.
    if (advice == 100 || advice == 101)
        advice = MADV_DONTNEED;
    unsigned flags = (in.take<uint8_t>() % 8 == 0) ? in.take<uint32_t>() : 0;
    size_t n = in.take<uint8_t>() % 65;
    bool null_vec = n > 0 && in.take<uint8_t>() == 0xff;
    iovec iov[64];
    for (size_t i = 0; i < n; i++) {
        uint8_t kind = in.take<uint8_t>();
        uint32_t a = in.take<uint32_t>();
        uint64_t len = in.take<uint32_t>() % (8 * g_page);
        uintptr_t base = reinterpret_cast<uintptr_t>(g_area) + (a % kPages) * g_page;
        switch (kind % 8) {
        case 0:
            base += 1 + a % (g_page - 1);
            break; // unaligned
        case 1:
            base = 0;
            break; // NULL page
        case 2:
            base = 0xffff888000000000ull + (a % 64) * g_page;
            break; // kernel
        case 3:
            len = UINT64_MAX - in.take<uint16_t>();
            break; // wraps
        case 4:
            len = (uint64_t{1} << 63) + in.take<uint32_t>();
            break; // > SSIZE_MAX
        case 5:
            len = 0;
            base = in.take<uint64_t>();
            break; // empty anywhere
        default:
            break;
        }
        iov[i] = {reinterpret_cast<void *>(base), static_cast<size_t>(len)};
    }

    // The documented rules, checked before anything is touched.
    int want = 0;
    if (flags != 0 || !advice_known(advice))
        want = EINVAL;
    else if (n > 0 && null_vec)
        want = EFAULT;
    else
        for (size_t i = 0; i < n && !want; i++) {
            uintptr_t b = reinterpret_cast<uintptr_t>(iov[i].iov_base);
            size_t l = iov[i].iov_len;
            if (l == 0)
                continue;
            if ((b & (g_page - 1)) || l > SSIZE_MAX || l > UINTPTR_MAX - b ||
                ((b + l + g_page - 1) & ~(g_page - 1)) == 0)
                want = EINVAL;
        }

    madvise(g_area, kMapPages * g_page, 103); // MADV_GUARD_REMOVE, where the kernel has guards
    g_area[0] = 0x11;
    errno = 0;
    ssize_t r = madvisev_via(backend, null_vec ? nullptr : iov, n, advice, flags);
    int err = errno;
    if (want) {
        if (r != -1 || err != want) {
            fprintf(stderr, "expected -1/%d, got %zd/%d (backend %d advice %d flags %#x n %zu)\n",
                    want, r, err, backend, advice, flags, n);
            abort();
        }
        if (g_area[0] != 0x11) {
            fprintf(stderr, "an invalid vector changed memory\n");
            abort();
        }
        return 0;
    }
    if (r < 0) {
        // A backend the kernel lacks, or what madvise() says of a range.
        if (err != ENOSYS && err != ENOMEM && err != EINVAL && err != EFAULT && err != EPERM &&
            err != EAGAIN && err != EIO && err != EBADF && err != EBUSY && err != EACCES) {
            fprintf(stderr, "unexpected errno %d\n", err);
            abort();
        }
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (static_cast<size_t>(r) > total) {
        fprintf(stderr, "returned %zd, more than the %zu bytes asked for\n", r, total);
        abort();
    }
    // Undo what the advice may have changed for the next input (guard
    // pages, from MADV_GUARD_INSTALL, are removed before each input).
    madvise(g_area, kMapPages * g_page, MADV_NORMAL);
    madvise(g_area, kMapPages * g_page, MADV_DOFORK);
    return 0;
}
