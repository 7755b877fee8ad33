// SPDX-License-Identifier: MIT
// Reset::zero_in_place: a batch of released slots is cleared with one
// madvisev(MADVISEV_ZERO) call, their pages kept; a failed call never hands
// a slot out with the last tenant's bytes.  Each test runs twice: with the
// library's choice (the kernel's in-place clear where it has one) and with
// its emulation forced.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "madvisev.h"
#include "pool_test_util.h"
#include "pool_testing.h"
#include "wasmpool/pool.h"

using wasmpool::Bounds;
using wasmpool::Config;
using wasmpool::Kind;
using wasmpool::Pool;
using wasmpool::Reset;

namespace {

using pool_test::all_zero;
using pool_test::kPage;

Config zero_config() {
    Config c;
    c.reset = Reset::zero_in_place;
    c.memory_slots = 4;
    c.memory_max_bytes = size_t{512} << 10;
    c.memory_guard_bytes = size_t{512} << 10;
    c.memory_bounds = Bounds::checked; // the tests check their own accesses
    c.table_slots = 4;
    c.table_bytes = 4 * kPage;
    c.stack_slots = 4;
    c.stack_bytes = 8 * kPage;
    c.batch_size = 4;
    c.background_flush = false; // the fourth memory's release flushes, here
    c.sharded = false;
    return c;
}

void dirty(std::byte *p, size_t n) {
    memset(p, 0xc5, n);
}

bool resident(const std::byte *p, size_t n) {
    std::vector<unsigned char> v((n + kPage - 1) / kPage);
    if (mincore(const_cast<std::byte *>(p), n, v.data()) != 0)
        return false;
    for (unsigned char c : v)
        if (!(c & 1))
            return false;
    return true;
}

// The real call, through the library, with the range at @poisoned (and
// those after it) failing.
wasmpool::testing::ZeroHook failing_zero(std::atomic<void *> &poisoned,
                                         std::atomic<int> *calls = nullptr) {
    return [&poisoned, calls](const iovec *iov, size_t n) -> ssize_t {
        if (calls)
            ++*calls;
        size_t stop = n;
        for (size_t i = 0; i < n; i++)
            if (iov[i].iov_base == poisoned.load()) {
                stop = i;
                break;
            }
        if (stop == 0) {
            errno = EIO;
            return -1;
        }
        return madvisev(iov, stop, MADVISEV_ZERO, 0);
    };
}

enum class Path { library, emulated };

class ZeroInPlace : public ::testing::TestWithParam<Path> {
  protected:
    void SetUp() override {
        if (GetParam() == Path::emulated)
            was_ = madvisev_zero_force_emulation(1);
    }
    void TearDown() override {
        if (GetParam() == Path::emulated)
            madvisev_zero_force_emulation(was_);
    }
    int was_ = 0;
};

// Four instances (memory, table, stack each) released: one call clears
// all twelve slots, nothing is decommitted, and the next tenants read zero
// from pages that stayed resident.
TEST_P(ZeroInPlace, OneCallPerBatchAndThePagesStay) {
    Pool pool(zero_config());
    std::atomic<int> calls{0};
    std::atomic<size_t> ranges{0};
    wasmpool::testing::set_zero_hook(pool, [&](const iovec *iov, size_t n) -> ssize_t {
        calls++;
        ranges += n;
        return madvisev(iov, n, MADVISEV_ZERO, 0);
    });
    struct Instance {
        Pool::Lease mem, tab, stk;
    };
    std::vector<Instance> held;
    for (int i = 0; i < 4; i++) {
        auto m = pool.acquire(Kind::memory, 1, 6 * kPage);
        auto t = pool.acquire(Kind::table, 1, 2 * kPage);
        auto s = pool.acquire(Kind::stack, 1, 0);
        ASSERT_TRUE(m && t && s);
        dirty(m->base(), 6 * kPage);
        dirty(t->base(), 2 * kPage);
        dirty(s->base() + s->capacity() - 3 * kPage, 3 * kPage);
        held.push_back({std::move(*m), std::move(*t), std::move(*s)});
    }
    for (auto &in : held) {
        pool.release(std::move(in.stk));
        pool.release(std::move(in.tab));
        pool.release(std::move(in.mem));
    }
    auto st = pool.stats();
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(ranges.load(), 12u);
    EXPECT_EQ(st.zero_calls, 1u);
    EXPECT_EQ(st.decommit_calls, 0u);
    EXPECT_EQ(st.decommitted, 0u);
    EXPECT_EQ(st.zeroed_in_place, 12u);
    EXPECT_GT(st.resident_bytes, 0u) << "the zeroed slots should count as resident (warm)";
    for (int i = 0; i < 4; i++) {
        auto m = pool.acquire(Kind::memory, 1, 6 * kPage);
        auto t = pool.acquire(Kind::table, 1, 2 * kPage);
        auto s = pool.acquire(Kind::stack, 1, 0);
        ASSERT_TRUE(m && t && s);
        EXPECT_TRUE(all_zero(m->base(), 6 * kPage)) << "memory " << i;
        EXPECT_TRUE(all_zero(t->base(), 2 * kPage)) << "table " << i;
        EXPECT_TRUE(all_zero(s->base(), s->capacity())) << "stack " << i;
        EXPECT_TRUE(resident(m->base(), 6 * kPage)) << "memory " << i << " lost its pages";
        held[i] = {std::move(*m), std::move(*t), std::move(*s)};
    }
}

// A slot grown during its lease is cleared over all it grew to.
TEST_P(ZeroInPlace, GrownSlotIsClearedWhole) {
    Config c = zero_config();
    c.memory_slots = 1;
    c.batch_size = 1;
    Pool pool(c);
    auto a = pool.acquire(Kind::memory, 1, kPage);
    ASSERT_TRUE(a);
    ASSERT_TRUE(a->grow(16 * kPage));
    dirty(a->base(), 16 * kPage);
    pool.release(std::move(*a));
    auto b = pool.acquire(Kind::memory, 1, kPage); // shrinks the slot back
    ASSERT_TRUE(b);
    ASSERT_TRUE(b->grow(16 * kPage));
    EXPECT_TRUE(all_zero(b->base(), 16 * kPage));
}

// The zero call fails for one slot of the batch, and again alone: fresh
// memory is mapped over it, and it comes back reading zero.
TEST_P(ZeroInPlace, FailedCallSlotIsRemappedClean) {
    Config c = zero_config();
    c.batch_size = 3;
    Pool pool(c);
    std::atomic<void *> poisoned{nullptr};
    std::atomic<int> calls{0};
    wasmpool::testing::set_zero_hook(pool, failing_zero(poisoned, &calls));
    std::vector<Pool::Lease> leases;
    for (int i = 0; i < 3; i++) {
        auto l = pool.acquire(Kind::memory, 1, 4 * kPage);
        ASSERT_TRUE(l);
        dirty(l->base(), 4 * kPage);
        leases.push_back(std::move(*l));
    }
    poisoned = leases[1].base();
    uint32_t poisoned_slot = leases[1].index().value;
    for (auto &l : leases)
        pool.release(std::move(l)); // the third release flushes
    auto st = pool.stats();
    // The batch stops at the poisoned slot; it and the one after it are
    // tried alone.
    EXPECT_EQ(calls.load(), 3);
    EXPECT_EQ(st.remapped, 1u);
    EXPECT_EQ(st.quarantined, 0u);
    std::set<uint32_t> seen;
    std::vector<Pool::Lease> kept;
    while (auto l = pool.acquire(Kind::memory, 1, 4 * kPage)) {
        EXPECT_TRUE(all_zero(l->base(), 4 * kPage)) << "slot " << l->index().value;
        seen.insert(l->index().value);
        kept.push_back(std::move(*l));
    }
    EXPECT_EQ(seen.size(), 4u) << "the remapped slot was lost";
    EXPECT_TRUE(seen.count(poisoned_slot));
}

// ... and when the fresh mapping fails too, the slot is never handed out.
TEST_P(ZeroInPlace, FailedCallAndRemapSlotIsQuarantined) {
    Config c = zero_config();
    c.batch_size = 3;
    Pool pool(c);
    std::atomic<void *> poisoned{nullptr};
    wasmpool::testing::set_zero_hook(pool, failing_zero(poisoned));
    wasmpool::testing::set_remap_hook(pool, [](void *, size_t, int) -> void * {
        errno = ENOMEM;
        return MAP_FAILED;
    });
    std::vector<Pool::Lease> leases;
    for (int i = 0; i < 3; i++) {
        auto l = pool.acquire(Kind::memory, 1, kPage);
        ASSERT_TRUE(l);
        dirty(l->base(), kPage);
        leases.push_back(std::move(*l));
    }
    poisoned = leases[1].base();
    uint32_t poisoned_slot = leases[1].index().value;
    for (auto &l : leases)
        pool.release(std::move(l));
    EXPECT_EQ(pool.stats().quarantined, 1u);
    std::set<uint32_t> seen;
    std::vector<Pool::Lease> kept;
    while (auto l = pool.acquire(Kind::memory, 1, kPage)) {
        EXPECT_NE(l->index().value, poisoned_slot) << "a quarantined slot came back";
        EXPECT_TRUE(all_zero(l->base(), kPage));
        seen.insert(l->index().value);
        kept.push_back(std::move(*l));
    }
    EXPECT_EQ(seen.size(), 3u); // 4 slots, one quarantined
}

// A forked child releases and reuses a slot the parent still holds (its
// copy): the child reads zero, the parent keeps its data.
TEST_P(ZeroInPlace, ForkedChildResetsItsCopyOnly) {
    Config c = zero_config();
    c.batch_size = 1;
    auto pool = std::make_unique<Pool>(c);
    auto a = pool->acquire(Kind::memory, 1, 4 * kPage);
    ASSERT_TRUE(a);
    dirty(a->base(), 4 * kPage);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::byte *base = a->base();
        pool->release(std::move(*a));
        auto b = pool->acquire(Kind::memory, 1, 4 * kPage);
        bool ok = b && b->base() == base && all_zero(b->base(), 4 * kPage);
        if (b)
            pool->release(std::move(*b));
        pool.reset();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child read stale data";
    std::vector<std::byte> want(4 * kPage, std::byte{0xc5});
    EXPECT_EQ(memcmp(a->base(), want.data(), want.size()), 0)
        << "the child's reset reached the parent's memory";
    pool->release(std::move(*a));
}

// Many threads, random sizes, a zero call that fails now and then (or
// stops short): nobody ever reads another tenant's bytes.
TEST_P(ZeroInPlace, InjectedFaultsNeverLeakData) {
    Config c = zero_config();
    c.memory_slots = c.table_slots = c.stack_slots = 64;
    c.batch_size = 4;
    c.background_flush = true;
    c.sharded = true;
    std::atomic<uint32_t> dice{0}; // every tenth call fails, every tenth stops short
    std::atomic<uint64_t> injected{0};
    Pool pool(c);
    wasmpool::testing::set_zero_hook(pool, [&](const iovec *iov, size_t n) -> ssize_t {
        uint32_t d = dice.fetch_add(1);
        if (d % 10 == 3) {
            injected++;
            errno = EIO;
            return -1;
        }
        size_t stop = n;
        if (d % 10 == 7 && n > 1) {
            injected++;
            stop = 1 + d / 10 % (n - 1);
        }
        return madvisev(iov, stop, MADVISEV_ZERO, 0);
    });
    std::atomic<int> stale{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&, t] {
            std::mt19937 rng(500 + t);
            for (int round = 0; round < 300; round++) {
                size_t bytes = (1 + rng() % 16) * kPage;
                auto mem = pool.acquire(Kind::memory, rng() % 4, bytes);
                auto stk = pool.acquire(Kind::stack, 1, 0);
                if (!mem || !stk)
                    continue; // the pool may run short under the flusher: fine
                if (!all_zero(mem->base(), bytes) || !all_zero(stk->base(), stk->capacity()))
                    stale++;
                dirty(mem->base(), bytes);
                dirty(stk->base() + stk->capacity() - 2 * kPage, 2 * kPage);
                pool.release(std::move(*stk));
                pool.release(std::move(*mem));
            }
        });
    for (auto &th : threads)
        th.join();
    pool.flush(true);
    auto st = pool.stats();
    EXPECT_EQ(stale.load(), 0);
    EXPECT_GT(injected.load(), 0u) << st.zero_calls << " calls";
    EXPECT_EQ(st.quarantined, 0u);
    EXPECT_GT(st.zero_calls, 0u);
}

INSTANTIATE_TEST_SUITE_P(Paths, ZeroInPlace, ::testing::Values(Path::library, Path::emulated),
                         [](const auto &info) {
                             return std::string(info.param == Path::library ? "library"
                                                                            : "emulated");
                         });

// Adaptive batches MADVISEV_ZERO only where the kernel clears in place;
// otherwise it scans and zeroes the slot itself, as before.
TEST(ZeroInPlaceAdaptive, UsesTheKernelsClearOnlyWhereItIsNative) {
    Config c = zero_config();
    c.reset = Reset::adaptive;
    c.memory_slots = 2;
    c.batch_size = 1;
    Pool pool(c);
    // Larger than the memset shortcut (at most 256 KiB), sparsely written.
    auto a = pool.acquire(Kind::memory, 1, size_t{512} << 10);
    ASSERT_TRUE(a);
    for (size_t off = 0; off < (size_t{512} << 10); off += 16 * kPage)
        dirty(a->base() + off, kPage);
    pool.release(std::move(*a));
    auto b = pool.acquire(Kind::memory, 1, size_t{512} << 10);
    ASSERT_TRUE(b);
    EXPECT_TRUE(all_zero(b->base(), size_t{512} << 10));
    auto st = pool.stats();
    EXPECT_EQ(st.zero_calls > 0, madvisev_zero_native() == 1)
        << "zero calls " << st.zero_calls << ", native " << madvisev_zero_native();
    EXPECT_EQ(st.decommitted, 0u);
    EXPECT_EQ(st.zeroed_in_place, 1u);
}

} // namespace
