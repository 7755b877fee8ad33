// SPDX-License-Identifier: MIT
// The pool's life cycle: Pool's constructor and destructor, the registry of
// live pools, fork() and thread exit; the names of Kind and Reset, stats(),
// config() and the slot counts; the test seam (pool_testing.h).
#include "wasmpool/pool.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "pool_impl.h"
#include "pool_testing.h"

namespace wasmpool {

using namespace detail;

const char *kind_name(Kind kind) {
    switch (kind) {
    case Kind::memory:
        return "memory";
    case Kind::table:
        return "table";
    case Kind::stack:
        return "stack";
    }
    return "?";
}

const char *reset_name(Reset reset) {
    switch (reset) {
    case Reset::decommit:
        return "decommit";
    case Reset::keep_resident:
        return "keep-resident";
    case Reset::adaptive:
        return "adaptive";
    case Reset::zero_in_place:
        return "zero-in-place";
    }
    return "?";
}

namespace {

std::atomic<uint32_t> g_next_thread{0};

// The live pools, for owner_of() and for flushing at thread exit.  Reads
// are lock-free; registration and the exit flush take the lock, so that a
// pool is not destroyed under an exiting thread's flush.
std::atomic<Pool *> g_pools[Pool::kMaxPools];
// One past the highest index ever used: owner_of() (every guarded guest
// call, every fault) looks no further.
std::atomic<int> g_pools_used{0};
Pool::Impl *g_impls[Pool::kMaxPools]; // under g_pools_lock, beside g_pools
std::mutex g_pools_lock;

} // namespace

thread_local uint32_t detail::t_thread = g_next_thread.fetch_add(1, std::memory_order_relaxed);

void Pool::Impl::lock_all() {
    for (auto &shard : shards)
        shard->flushing.lock();
    for (auto &shard : shards)
        shard->lock.lock();
    flusher_lock.lock();
}

void Pool::Impl::unlock_all() {
    flusher_lock.unlock();
    for (auto &shard : shards)
        shard->lock.unlock();
    for (auto &shard : shards)
        shard->flushing.unlock();
}

namespace {

// fork(): the child gets copies of the pools' locks in whatever state the
// parent's other threads (the flushers among them) had them.  Every lock
// is taken before fork() and given back after it on both sides, so the
// child's copies are free, as malloc does for its own.
void fork_prepare() {
    g_pools_lock.lock();
    for (Pool::Impl *impl : g_impls)
        if (impl)
            impl->lock_all();
}

void fork_parent() {
    for (Pool::Impl *impl : g_impls)
        if (impl)
            impl->unlock_all();
    g_pools_lock.unlock();
}

// In the child, the flusher's condition variable still records the
// parent's flusher waiting on it (destroying it would wait for that
// waiter forever): it starts afresh, with no waiter.
void fork_child() {
    for (Pool::Impl *impl : g_impls) {
        if (impl) {
            new (&impl->flusher_cv) std::condition_variable();
            impl->unlock_all();
        }
    }
    g_pools_lock.unlock();
}

} // namespace

Pool::Pool(Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {
    static const int atfork = pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (atfork != 0)
        throw std::system_error(atfork, std::generic_category(), "wasmpool: pthread_atfork");
    std::lock_guard<std::mutex> g(g_pools_lock);
    for (int i = 0; i < kMaxPools; i++) {
        if (g_pools[i].load() == nullptr) {
            if (i >= g_pools_used.load(std::memory_order_relaxed))
                g_pools_used.store(i + 1, std::memory_order_release);
            g_impls[i] = impl_.get();
            g_pools[i].store(this, std::memory_order_release);
            return;
        }
    }
    throw std::length_error("wasmpool: too many pools in this process");
}

Pool::~Pool() {
    // A slot still leased would be released, once the pool is gone, into
    // whatever is mapped at its address next: another pool's tenant.
    for (int k = 0; k < kKinds; k++) {
        const Area &area = impl_->areas[k];
        for (uint32_t i = 0; i < area.count; i++) {
            uint64_t word = area.slots[i].word.load(std::memory_order_acquire);
            if (state_of(word) == State::leased)
                impl_->misuse("destruction of the pool", static_cast<Kind>(k), i, word,
                              "the slot is still leased; release every slot first");
        }
    }
    {
        std::lock_guard<std::mutex> g(g_pools_lock);
        for (int i = 0; i < kMaxPools; i++) {
            if (g_pools[i].load() == this) {
                g_pools[i].store(nullptr, std::memory_order_release);
                g_impls[i] = nullptr;
            }
        }
    }
    impl_.reset();
}

namespace {

// At thread exit, what the thread queued is handed to the flusher now
// rather than at its next tick, or, without a flusher, flushed on the
// exiting thread.
// A pool is known by its Impl and serial, not its address alone: one
// destroyed and made again at the same address is another pool, and the
// old Impl is freed.
struct UsedPool {
    const Pool *pool;
    Pool::Impl *impl;
    uint64_t serial;
};
struct ExitFlush {
    std::vector<UsedPool> pools;
    ~ExitFlush() {
        std::lock_guard<std::mutex> g(g_pools_lock);
        for (const UsedPool &used : pools)
            for (int i = 0; i < Pool::kMaxPools; i++)
                if (g_pools[i].load() == used.pool && g_impls[i] == used.impl &&
                    g_impls[i]->serial == used.serial)
                    used.impl->thread_exit();
    }
};
thread_local ExitFlush t_exit_flush;

} // namespace

void detail::note_pool_use(const Pool *pool, Pool::Impl *impl) {
    auto &used = t_exit_flush.pools;
    for (UsedPool &entry : used) {
        if (entry.pool == pool) {
            if (entry.impl != impl || entry.serial != impl->serial)
                entry = {pool, impl, impl->serial}; // a later pool at the same address
            return;
        }
    }
    used.push_back({pool, impl, impl->serial});
}

Pool *Pool::owner_of(Kind kind, const void *p) {
    int used = g_pools_used.load(std::memory_order_acquire);
    for (int i = 0; i < used; i++) {
        Pool *pool = g_pools[i].load(std::memory_order_acquire);
        if (pool && pool->locate(kind, p))
            return pool;
    }
    return nullptr;
}

Stats Pool::stats() const {
    const Impl &impl = *impl_;
    Stats sum;
    for (const auto &shard : impl.shards) {
        const Counters &counters = shard->counters;
        sum.acquired += counters.acquired.load();
        sum.released += counters.released.load();
        sum.zeroed_in_place += counters.zeroed.load();
        sum.decommitted += counters.decommitted.load();
        sum.decommit_calls += counters.decommit_calls.load();
        sum.zero_calls += counters.zero_calls.load();
        sum.swapped_resets += counters.swapped_resets.load();
        sum.flushes_on_empty += counters.flushes_on_empty.load();
        sum.background_flushes += counters.background_flushes.load();
        sum.aged_out += counters.aged_out.load();
        sum.steals += counters.steals.load();
        sum.remapped += counters.remapped.load();
        sum.quarantined += counters.quarantined.load();
        sum.exhausted += counters.exhausted.load();
        sum.reset_ns += counters.reset_ns.load();
        sum.scan_ns += counters.scan_ns.load();
        sum.zero_ns += counters.zero_ns.load();
        sum.decommit_ns += counters.decommit_ns.load();
    }
    sum.flusher_cpu_ns = impl.flusher_cpu_ns.load();
    sum.resident_bytes = impl.resident.load();
    sum.resident_budget = impl.budget;
    for (auto &warm_count : impl.warm)
        sum.warm_slots += warm_count.load();
    return sum;
}

const Config &Pool::config() const {
    return impl_->cfg;
}

size_t Pool::slot_count(Kind kind) const {
    return impl_->areas[static_cast<int>(kind)].count;
}

size_t Pool::slot_capacity(Kind kind) const {
    return impl_->areas[static_cast<int>(kind)].capacity;
}

// The test seam (pool_testing.h).
struct testing::Access {
    static Pool::Impl &impl(Pool &pool) { return *pool.impl_; }
    static Pool::Lease lease(Pool &pool, SlotIndex index, uint32_t generation, std::byte *base) {
        return Pool::Lease(&pool, index, generation, base,
                           pool.impl_->area_of(index.kind).capacity);
    }
};

void testing::set_decommit_hook(Pool &pool, DecommitHook hook) {
    Access::impl(pool).decommit_hook = std::move(hook);
}

void testing::set_zero_hook(Pool &pool, ZeroHook hook) {
    Access::impl(pool).zero_hook = std::move(hook);
}

void testing::set_remap_hook(Pool &pool, RemapHook hook) {
    Access::impl(pool).remap_hook = std::move(hook);
}

void testing::skip_resets_INSECURE(Pool &pool) {
    Access::impl(pool).skip_resets = true;
}

Pool::Lease testing::forge_lease(Pool &pool, SlotIndex index, uint32_t generation,
                                 std::byte *base) {
    return Access::lease(pool, index, generation, base);
}

} // namespace wasmpool
