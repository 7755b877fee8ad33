// SPDX-License-Identifier: MIT
// libFuzzer target: libmadvisev against an oracle that shares none of its
// code.  Each input becomes one madvisev() call: an advice value, flags and
// a vector of ranges, 0 to about 2200 of them, over a test arena: small
// pages with contents, a hole, PROT_NONE pages, an unmapped gap and a 3 GiB
// PROT_NONE reservation that is never touched (so ranges can be huge, and
// their sum cross 1 GiB and more, for no memory).  A twin arena has the
// same layout and contents at another address.
//
//  - The twin gets plain madvise(2), range by range, with the documented
//    rules (madvisev.h, madvisev(3)): the whole vector is checked first
//    (EINVAL for flags != 0, an unknown advice, a range with an unaligned
//    base, empty or not, a length above SSIZE_MAX, an end that, rounded up
//    to a page, wraps; EFAULT for a NULL vector), and nothing is advised
//    then; zero-length ranges at aligned bases are skipped; the first
//    range that fails stops it;
//    the result is the sum of the lengths of the ranges before that one, or
//    -1 with madvise's errno when it is the first non-empty range.
//  - The test arena gets madvisev_via() through every backend this kernel
//    has, each on a freshly built arena.
//  - Compared: the return value, errno, and page by page the contents and
//    the residency (mincore) of the arenas' small pages.  The range that
//    failed may have been advised in part (documented), so its pages may be
//    as they were or zero; so may the pages after it with io_uring, whose
//    linked requests the kernel does not stop at a failure (documented).
//    After MADV_FREE, COLD and PAGEOUT residency is reclaim's business and
//    not compared (nor MADV_FREE's contents, beyond "as they were or zero").
//  - Advice whose cost grows with the pages it covers (POPULATE_*,
//    COLLAPSE, GUARD_INSTALL) is kept to the first 4 MiB of the reservation;
//    MADV_HWPOISON and MADV_SOFT_OFFLINE become MADV_DONTNEED.
//
// A finding prints "MISMATCH", the backend, what differed and the call, and
// aborts.  MADVISEV_FUZZ_BACKENDS=name,... compares only those backends.
// Fixed cases run first, every time (LLVMFuzzerInitialize): among them the
// vectors that cross the backends' limits at unaligned offsets.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "madvisev.h"

namespace {

// ---- The arena --------------------------------------------------------
//
//   page 0 .. kSmall-1   small pages, read-write, contents from the input;
//                        page kHole unmapped, pages kNoneLo..kNoneHi
//                        PROT_NONE (written before they were protected)
//   kGap pages           unmapped
//   kBig bytes           PROT_NONE, MAP_NORESERVE, never touched
//
// with a read-only page on either side: a moat, so that no mapping of
// someone else's merges with the arena's first or last VMA (a small-page
// VMA grown by a neighbour would take MADV_COLLAPSE in one arena and not in
// the other).
// A hole could in principle be taken by a mapping of someone else in the
// process (the sanitizers map memory too); the holes are checked to be
// unmapped before every call, and a new arena is made elsewhere if not.

constexpr size_t kSmall = 64;
constexpr size_t kHole = 40;
constexpr size_t kNoneLo = 48, kNoneHi = 49;
constexpr size_t kGap = 16;
constexpr uint64_t kBig = uint64_t{3} << 30;

size_t g_page;

// Advice values the kernel uapi headers define (asm-generic/mman-common.h):
// the documented "known MADV_* value".  Written out, not taken from the
// library.
bool known_advice(int a) {
    static const int known[] = {0,  1,  2,  3,  4,  8,  9,  10, 11, 12,  13,  14,  15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 100, 101, 102, 103};
    for (int k : known)
        if (k == a)
            return true;
    return false;
}

constexpr int kFree = 8, kCold = 20, kPageout = 21, kPopulateRead = 22, kPopulateWrite = 23,
              kCollapse = 25, kHwpoison = 100, kSoftOffline = 101, kGuardInstall = 102,
              kGuardRemove = 103;

struct Arena {
    uintptr_t base = 0;

    size_t small_bytes() const { return kSmall * g_page; }
    uintptr_t big() const { return base + (kSmall + kGap) * g_page; }
    uint64_t span() const { return (kSmall + kGap) * g_page + kBig; }
    char *page(size_t i) const { return reinterpret_cast<char *>(base + i * g_page); }

    // Every page of the holes is unmapped (mincore says ENOMEM).
    bool holes_free() const {
        unsigned char v;
        auto unmapped = [&](uintptr_t a) {
            return mincore(reinterpret_cast<void *>(a), g_page, &v) == -1 && errno == ENOMEM;
        };
        if (!unmapped(base + kHole * g_page))
            return false;
        for (size_t i = 0; i < kGap; i++)
            if (!unmapped(base + (kSmall + i) * g_page))
                return false;
        return true;
    }

    void map_fixed(uintptr_t at, size_t len, int prot, int extra) {
        void *p = mmap(reinterpret_cast<void *>(at), len, prot,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, -1, 0);
        if (p == MAP_FAILED) {
            perror("madvisev-args-fuzz: arena mmap");
            abort();
        }
    }

    // A new place: aligned to 2 MiB so that both arenas lie alike against
    // huge-page boundaries.
    void create() {
        const size_t align = size_t{2} << 20;
        size_t len = span() + align + 2 * g_page;
        void *p = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("madvisev-args-fuzz: arena");
            abort();
        }
        uintptr_t a = reinterpret_cast<uintptr_t>(p);
        uintptr_t b = (a + g_page + align - 1) & ~(align - 1);
        uintptr_t lo = b - g_page, hi = b + span() + g_page; // moats included
        if (lo > a)
            munmap(p, lo - a);
        if (a + len > hi)
            munmap(reinterpret_cast<void *>(hi), a + len - hi);
        map_fixed(lo, g_page, PROT_READ, 0);
        map_fixed(b + span(), g_page, PROT_READ, 0);
        base = b;
        munmap(page(kHole), g_page);
        munmap(page(kSmall), kGap * g_page);
    }

    // Fresh pages (whatever the last advice did to the VMAs is gone), then
    // the contents: page i written with a pattern if bit i of @dirty, read
    // (the zero page mapped) if bit i of @read, else never touched.
    void build(uint64_t dirty, uint64_t read, uint8_t seed) {
        if (base == 0 || !holes_free())
            create();
        map_fixed(base, kHole * g_page, PROT_READ | PROT_WRITE, 0);
        map_fixed(base + (kHole + 1) * g_page, (kSmall - kHole - 1) * g_page,
                  PROT_READ | PROT_WRITE, 0);
        map_fixed(big(), kBig, PROT_NONE, MAP_NORESERVE);
        for (size_t i = 0; i < kSmall; i++) {
            if (i == kHole)
                continue;
            if (dirty >> i & 1)
                fill_pattern(page(i), i, seed);
            else if (read >> i & 1)
                (void)*static_cast<volatile char *>(page(i));
        }
        if (mprotect(page(kNoneLo), (kNoneHi - kNoneLo + 1) * g_page, PROT_NONE) != 0)
            abort();
        if (!holes_free()) { // taken while we built: start over elsewhere
            base = 0;
            build(dirty, read, seed);
        }
    }

    static void fill_pattern(char *p, size_t i, uint8_t seed) {
        memset(p, static_cast<int>((seed + 7 * i) | 1), g_page);
        memcpy(p, &i, sizeof i);
    }
};

Arena g_twin, g_test;

// ---- A call -------------------------------------------------------------

// A range: in an arena (offset from its base, so that the twin's call and
// the test's advise the same layout), or at a fixed address outside both
// (unmapped low pages, kernel addresses, the top of the address space).
struct Range {
    bool in_arena;
    uint64_t where; // offset, or address
    uint64_t len;
};

struct Call {
    int advice = MADV_DONTNEED;
    unsigned flags = 0;
    bool null_vec = false;
    uint64_t dirty = 0, read = 0;
    uint8_t seed = 0;
    std::vector<Range> ranges;
};

std::vector<iovec> vector_for(const Call &c, const Arena &a) {
    std::vector<iovec> v(c.ranges.size());
    for (size_t i = 0; i < c.ranges.size(); i++) {
        const Range &r = c.ranges[i];
        uintptr_t addr = r.in_arena ? a.base + r.where : r.where;
        v[i] = {reinterpret_cast<void *>(addr), static_cast<size_t>(r.len)};
    }
    return v;
}

// The documented checks of one range, done in 128-bit arithmetic.
bool range_invalid(const iovec &v) {
    uint64_t start = reinterpret_cast<uintptr_t>(v.iov_base);
    uint64_t len = v.iov_len;
    if (start % g_page != 0) // even when empty, as madvise(p + 1, 0) is EINVAL
        return true;
    if (len == 0)
        return false;
    if (len > static_cast<uint64_t>(SSIZE_MAX))
        return true;
    unsigned __int128 end = static_cast<unsigned __int128>(start) + len;
    end = (end + g_page - 1) / g_page * g_page;
    return end > static_cast<unsigned __int128>(UINT64_MAX);
}

struct Outcome {
    ssize_t ret;
    int err;         // errno when ret == -1
    size_t failed;   // index of the range that failed, or n
    int alt_err = 0; // a second errno the documentation allows, or 0
};

// What the documentation says madvisev() does, applied to the twin with
// madvise(2).
Outcome oracle(const Call &c, const std::vector<iovec> &v) {
    const size_t n = v.size();
    bool bad_args = c.flags != 0 || !known_advice(c.advice);
    if (c.null_vec && n > 0)
        // Which of EINVAL and EFAULT wins when both apply is not said.
        return {-1, EFAULT, n, bad_args ? EINVAL : 0};
    if (bad_args)
        return {-1, EINVAL, n};
    for (const iovec &r : v)
        if (range_invalid(r))
            return {-1, EINVAL, n};
    uint64_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].iov_len == 0)
            continue;
        if (madvise(v[i].iov_base, v[i].iov_len, c.advice) != 0) {
            int e = errno;
            if (done == 0)
                return {-1, e, i};
            return {static_cast<ssize_t>(done), 0, i};
        }
        done += v[i].iov_len;
    }
    return {static_cast<ssize_t>(done), 0, n};
}

// ---- The comparison -------------------------------------------------------

struct Snapshot {
    unsigned char resident[kSmall];
    std::vector<char> bytes; // readable pages' contents
};

Snapshot snapshot(const Arena &a) {
    Snapshot s;
    memset(s.resident, 0xff, sizeof s.resident);
    // Residency first: reading a page maps it.
    if (mincore(a.page(0), kHole * g_page, s.resident) != 0 ||
        mincore(a.page(kHole + 1), (kSmall - kHole - 1) * g_page, s.resident + kHole + 1) != 0) {
        perror("madvisev-args-fuzz: mincore");
        abort();
    }
    // Guard pages (MADV_GUARD_INSTALL) fault when read: remove them, in
    // both arenas alike.  Kernels without guards say EINVAL; nothing to do.
    madvise(a.page(0), kHole * g_page, kGuardRemove);
    madvise(a.page(kHole + 1), (kSmall - kHole - 1) * g_page, kGuardRemove);
    s.bytes.assign(kSmall * g_page, 0);
    for (size_t i = 0; i < kSmall; i++)
        if (i != kHole && (i < kNoneLo || i > kNoneHi))
            memcpy(&s.bytes[i * g_page], a.page(i), g_page);
    return s;
}

std::string describe(const Call &c, const std::vector<iovec> &v, const Arena &a) {
    std::string s;
    char buf[160];
    snprintf(buf, sizeof buf, "advice %d flags %#x%s, %zu ranges (arena at %#lx):", c.advice,
             c.flags, c.null_vec ? " iov NULL" : "", v.size(), static_cast<unsigned long>(a.base));
    s += buf;
    size_t shown = 0;
    for (size_t i = 0; i < v.size() && shown < 12; i++) {
        if (i >= 6 && i + 6 < v.size()) {
            if (i == 6)
                s += " ...";
            continue;
        }
        const Range &r = c.ranges[i];
        snprintf(buf, sizeof buf, " [%zu]%s%#llx+%llu", i, r.in_arena ? "arena+" : "@",
                 static_cast<unsigned long long>(r.where), static_cast<unsigned long long>(r.len));
        s += buf;
        shown++;
    }
    return s;
}

[[noreturn]] void mismatch(const char *backend, const Call &c, const std::vector<iovec> &v,
                           const Arena &a, const char *what) {
    fprintf(stderr, "madvisev-args-fuzz: MISMATCH, backend %s: %s\n  call: %s\n", backend, what,
            describe(c, v, a).c_str());
    abort();
}

// Pages [first, last] of the small pages that range @r (of arena @a) covers;
// false if none.  Only arena ranges can: the others lie far from both.
bool small_pages(const iovec &r, const Arena &a, size_t *first, size_t *last) {
    uintptr_t s = reinterpret_cast<uintptr_t>(r.iov_base);
    if (r.iov_len == 0 || s < a.base || s >= a.base + a.small_bytes())
        return false;
    *first = (s - a.base) / g_page;
    uint64_t end = s + r.iov_len - 1; // no wrap: the vector was valid
    *last = std::min<uint64_t>(kSmall - 1, (end - a.base) / g_page);
    return true;
}

// MADVISEV_FUZZ_BACKENDS=name,name limits the backends compared (to
// reproduce a finding, or to look past one); every available one otherwise.
bool backend_wanted(const char *name) {
    const char *only = getenv("MADVISEV_FUZZ_BACKENDS");
    if (only == nullptr || *only == '\0')
        return true;
    std::string list = std::string(",") + only + ",";
    return list.find(std::string(",") + name + ",") != std::string::npos;
}

void run_call(const Call &c) {
    // The twin, by the documentation.
    g_twin.build(c.dirty, c.read, c.seed);
    std::vector<iovec> tv = vector_for(c, g_twin);
    errno = 0;
    Outcome want = oracle(c, tv);
    Snapshot ts = snapshot(g_twin);

    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++) {
        if (madvisev_backend_probe(b, nullptr) != 1)
            continue;
        const char *name = madvisev_backend_str(b);
        if (!backend_wanted(name))
            continue;
        g_test.build(c.dirty, c.read, c.seed);
        std::vector<iovec> v = vector_for(c, g_test);
        errno = 0;
        ssize_t got = madvisev_via(b, c.null_vec ? nullptr : v.data(), v.size(), c.advice, c.flags);
        int err = errno;
        char what[256];
        if (got != want.ret ||
            (got == -1 && err != want.err && (want.alt_err == 0 || err != want.alt_err))) {
            snprintf(
                what, sizeof what,
                "returned %zd (errno %d %s), madvise(2) range by range says %zd (errno %d %s)%s",
                got, got == -1 ? err : 0, got == -1 ? strerror(err) : "", want.ret,
                want.ret == -1 ? want.err : 0, want.ret == -1 ? strerror(want.err) : "",
                want.failed < v.size() ? ", stopping at the range that fails" : "");
            mismatch(name, c, v, g_test, what);
        }
        Snapshot s = snapshot(g_test);

        // Pages that may lawfully differ from the twin's: the range that
        // failed (advised in part), and with io_uring every range after it.
        bool loose[kSmall] = {};
        if (want.failed < v.size()) {
            size_t last_range = b == MADVISEV_BACKEND_IO_URING ? v.size() - 1 : want.failed;
            for (size_t i = want.failed; i <= last_range; i++) {
                size_t f, l;
                if (small_pages(v[i], g_test, &f, &l))
                    for (size_t p = f; p <= l; p++)
                        loose[p] = true;
            }
        }
        // MADV_FREE's pages go when the kernel wants them back; COLD and
        // PAGEOUT hand pages to reclaim: residency then is the kernel's
        // choice, and MADV_FREE's contents too.
        bool any_residency = c.advice == kCold || c.advice == kPageout || c.advice == kFree;
        bool free_contents = c.advice == kFree;
        std::vector<char> zero(g_page, 0);
        for (size_t p = 0; p < kSmall; p++) {
            if (p == kHole)
                continue;
            bool readable = p < kNoneLo || p > kNoneHi;
            const char *mine = &s.bytes[p * g_page];
            const char *twin = &ts.bytes[p * g_page];
            std::vector<char> orig(g_page, 0);
            if (c.dirty >> p & 1)
                Arena::fill_pattern(orig.data(), p, c.seed);
            if (loose[p] || free_contents) {
                if (readable && memcmp(mine, orig.data(), g_page) != 0 &&
                    memcmp(mine, zero.data(), g_page) != 0) {
                    snprintf(what, sizeof what, "page %zu (%s) is neither as it was nor zero", p,
                             loose[p] ? "in the range that failed or after it" : "MADV_FREE");
                    mismatch(name, c, v, g_test, what);
                }
                continue;
            }
            if (!any_residency && (s.resident[p] & 1) != (ts.resident[p] & 1)) {
                snprintf(what, sizeof what, "page %zu is %sresident, the twin's is %sresident", p,
                         s.resident[p] & 1 ? "" : "not ", ts.resident[p] & 1 ? "" : "not ");
                mismatch(name, c, v, g_test, what);
            }
            if (readable && memcmp(mine, twin, g_page) != 0) {
                snprintf(what, sizeof what, "page %zu reads %s, the twin's %s", p,
                         memcmp(mine, zero.data(), g_page) == 0 ? "zero" : "data",
                         memcmp(twin, zero.data(), g_page) == 0 ? "zero" : "data");
                mismatch(name, c, v, g_test, what);
            }
        }
    }
}

// ---- From the fuzzer's bytes to a call ------------------------------------

struct Reader {
    const uint8_t *p;
    size_t n;
    template <class T>
    T take() {
        T v{};
        size_t k = n < sizeof(T) ? n : sizeof(T);
        memcpy(&v, p, k);
        p += k;
        n -= k;
        return v;
    }
};

// Advice values that are safe on the arenas, DONTNEED the most often.
const int kAdvice[] = {MADV_DONTNEED,
                       MADV_DONTNEED,
                       MADV_DONTNEED,
                       MADV_DONTNEED,
                       0,
                       1,
                       2,
                       3,
                       kFree,
                       9,
                       10,
                       11,
                       12,
                       13,
                       14,
                       15,
                       16,
                       17,
                       18,
                       19,
                       kCold,
                       kPageout,
                       kPopulateRead,
                       kPopulateWrite,
                       24,
                       kCollapse,
                       kGuardInstall,
                       kGuardRemove};

// Advice whose cost grows with the pages in the range: kept off the big
// reservation (POPULATE_* would fault it in, GUARD_INSTALL fill page tables).
bool heavy(int a) {
    return a == kPopulateRead || a == kPopulateWrite || a == kCollapse || a == kGuardInstall;
}

Range decode_range(Reader &in) {
    const uint64_t ps = g_page, small = kSmall * ps, big_at = (kSmall + kGap) * ps;
    const uint64_t span = big_at + kBig;
    uint8_t kind = in.take<uint8_t>();
    uint32_t a = in.take<uint32_t>();
    Range r{true, 0, 0};
    switch (kind % 13) {
    case 0:
    case 1:
    case 2: // small pages, any length (into the hole, gap, reservation)
        r.where = (a % kSmall) * ps;
        r.len = in.take<uint32_t>() % (80 * ps);
        break;
    case 3: // unaligned base
        r.where = (a % kSmall) * ps + 1 + a % (ps - 1);
        r.len = 1 + in.take<uint16_t>();
        break;
    case 4:
    case 5: // in the reservation, up to all of it
        r.where = big_at + (a % (kBig / ps)) * ps;
        r.len = in.take<uint32_t>() % (kBig + 1);
        break;
    case 6: // about 2 GiB: past process_madvise's 2 GiB - 4 KiB and 1 GiB cuts
        r.where = big_at + (a % 256) * ps;
        r.len = (uint64_t{2} << 30) - 2 * ps + in.take<uint16_t>() % (4 * ps);
        break;
    case 7: // from the small pages over the gap into the reservation
        r.where = small - (1 + a % 8) * ps;
        r.len = in.take<uint32_t>();
        break;
    case 8: // empty, anywhere: skipped if page aligned (half of them), else EINVAL
        r.in_arena = false;
        r.where = in.take<uint64_t>();
        if (a & 1)
            r.where &= ~(ps - 1);
        r.len = 0;
        break;
    case 9: // the unmapped low pages
        r.in_arena = false;
        r.where = (a % 8) * ps;
        r.len = 1 + in.take<uint16_t>() % ((16 - a % 8) * ps);
        break;
    case 10: // kernel addresses
        r.in_arena = false;
        r.where = 0xffff888000000000ull + (a % 64) * ps;
        r.len = 1 + in.take<uint32_t>() % (64 * ps);
        break;
    case 11: // above SSIZE_MAX
        r.where = (a % kSmall) * ps;
        r.len = (uint64_t{1} << 63) + in.take<uint32_t>();
        break;
    default: // near the top of the address space: wraps, or just does not
        r.in_arena = false;
        r.where = UINT64_MAX - ps + 1 - (a % 4) * ps;
        r.len = (a & 0x100) ? UINT64_MAX - in.take<uint16_t>() : in.take<uint16_t>() % (5 * ps);
        break;
    }
    // Arena ranges end inside the arena, their length rounded up to a page.
    if (r.in_arena && r.len <= static_cast<uint64_t>(SSIZE_MAX) && r.where % ps == 0 &&
        r.where + r.len > span) {
        uint64_t room = span - r.where;
        r.len = room - (r.len % ps < room ? r.len % ps : 0);
    }
    return r;
}

Call decode(const uint8_t *data, size_t size) {
    Reader in{data, size};
    Call c;
    uint8_t a = in.take<uint8_t>();
    if (a < 232) {
        c.advice = kAdvice[a % (sizeof kAdvice / sizeof kAdvice[0])];
    } else {
        c.advice = in.take<int32_t>(); // mostly unknown values
        if (c.advice == kHwpoison || c.advice == kSoftOffline)
            c.advice = MADV_DONTNEED; // never poison or offline real pages
    }
    uint8_t f = in.take<uint8_t>();
    if (f % 16 == 0)
        c.flags = in.take<uint32_t>();
    c.null_vec = f == 0xff;
    c.dirty = in.take<uint64_t>();
    c.read = in.take<uint64_t>();
    c.seed = in.take<uint8_t>();

    uint8_t m = in.take<uint8_t>();
    size_t n, templates;
    if (m < 224) { // a short vector, each range from the input
        n = m % 40;
        templates = n;
    } else { // past 1024 ranges: a few ranges repeated, shifted
        n = 1025 + in.take<uint16_t>() % 1200;
        templates = 1 + in.take<uint8_t>() % 8;
    }
    std::vector<Range> t;
    for (size_t i = 0; i < templates; i++)
        t.push_back(decode_range(in));
    uint64_t stride = (1 + in.take<uint8_t>()) * g_page;
    const uint64_t big_at = (kSmall + kGap) * g_page;
    for (size_t i = 0; i < n; i++) {
        Range r = t[i % templates];
        if (i >= templates && r.in_arena && r.where >= big_at && r.where % g_page == 0) {
            // Later copies of a reservation range move along it.
            uint64_t off = r.where - big_at + (i / templates) * stride;
            r.where = big_at + off % kBig;
            if (r.len <= static_cast<uint64_t>(SSIZE_MAX) && r.where + r.len > big_at + kBig)
                r.len = big_at + kBig - r.where;
        }
        c.ranges.push_back(r);
    }
    if (heavy(c.advice)) {
        const uint64_t cap = big_at + (uint64_t{4} << 20);
        for (Range &r : c.ranges)
            if (r.in_arena && r.len <= static_cast<uint64_t>(SSIZE_MAX) && r.where < cap &&
                r.where + r.len > cap)
                r.len = cap - r.where;
            else if (r.in_arena && r.where >= cap && r.len <= static_cast<uint64_t>(SSIZE_MAX))
                r.len = 0;
    }
    return c;
}

// ---- Fixed cases ----------------------------------------------------------

Range S(size_t page, uint64_t len) {
    return {true, page * g_page, len};
}
Range B(uint64_t off, uint64_t len) {
    return {true, (kSmall + kGap) * g_page + off, len};
}

void fixed_cases() {
    const uint64_t GiB = uint64_t{1} << 30;
    const uint64_t all = ~uint64_t{0} & ~(uint64_t{1} << kHole);
    auto dontneed = [&](std::vector<Range> r) {
        Call c;
        c.dirty = all;
        c.seed = 0x5a;
        c.ranges = std::move(r);
        return c;
    };
    // An unaligned length, then a range that must be cut (a backend that
    // cuts at total bytes lands at an unaligned offset).
    run_call(dontneed({S(0, 100), B(0, 2 * GiB)}));
    run_call(dontneed({S(0, 100), B(0, GiB + 5)}));
    run_call(dontneed({S(1, 4097), S(3, 1), B(4096, 2 * GiB - 4096), B(0, 3 * GiB)}));
    // Ranges whose sum crosses 1 GiB and 2 GiB, none of them large.
    {
        std::vector<Range> r;
        for (size_t i = 0; i < 1500; i++)
            r.push_back(B((i % 700) * (uint64_t{2} << 20), (uint64_t{2} << 20) - (i % 3)));
        r.push_back(S(2, 3 * g_page));
        run_call(dontneed(r));
    }
    // More than 1024 ranges, a hole in the 1100th: the sum of the ranges
    // before it.
    {
        std::vector<Range> r;
        for (size_t i = 0; i < 1100; i++)
            r.push_back(S(i % kHole, i % 5 == 0 ? 0 : g_page - (i % 7)));
        r.push_back(S(kHole, g_page));
        r.push_back(S(0, g_page));
        run_call(dontneed(r));
    }
    // A hole first: -1 ENOMEM, after advising what it could of that range.
    run_call(dontneed({S(kHole - 2, 4 * g_page), S(0, g_page)}));
    // Into the gap, after a good range.
    run_call(dontneed({S(0, g_page), S(kSmall - 2, 3 * g_page)}));
    // A range madvise(2) calls unmapped that is no user address at all,
    // after a good one: the good one's bytes, as for any unmapped range.
    run_call(dontneed({S(0, g_page), {false, 0xffff888000000000ull, g_page}}));
    // Empty ranges at aligned addresses (NULL, the hole, the gap) are
    // skipped; one at an unaligned address fails the whole vector.
    run_call(dontneed({{false, 0, 0}, S(0, g_page), S(kHole, 0), S(kSmall + 1, 0), S(2, 1)}));
    run_call(dontneed({S(0, g_page), {true, 3, 0}, S(1, g_page)}));
    run_call(dontneed({S(0, g_page), {false, 1, 0}}));
    // Invalid vectors: nothing advised.
    run_call(dontneed({S(0, g_page), {true, 5, g_page}}));
    run_call(dontneed({S(0, g_page), S(1, (uint64_t{1} << 63) + 1)}));
    run_call(dontneed({S(0, g_page), {false, UINT64_MAX - g_page + 1, 1}}));
    Call c = dontneed({S(0, g_page)});
    c.advice = 77;
    run_call(c);
    c.advice = MADV_DONTNEED;
    c.flags = 1;
    run_call(c);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    fixed_cases();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run_call(decode(data, size));
    return 0;
}
