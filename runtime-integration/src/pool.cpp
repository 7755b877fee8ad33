// SPDX-License-Identifier: MIT
#include "wasmpool/pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "madvisev.h"

namespace wasmpool {

const char *kind_name(Kind k) {
    switch (k) {
    case Kind::memory:
        return "memory";
    case Kind::table:
        return "table";
    case Kind::stack:
        return "stack";
    }
    return "?";
}

const char *reset_name(Reset r) {
    switch (r) {
    case Reset::decommit:
        return "decommit";
    case Reset::keep_resident:
        return "keep-resident";
    case Reset::adaptive:
        return "adaptive";
    case Reset::none:
        return "none";
    }
    return "?";
}

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

size_t page_up(size_t n) {
    return (n + kPage - 1) & ~(kPage - 1);
}

// Up to how many bytes the adaptive reset zeroes a whole extent rather than
// ask mincore() which pages are resident: the size a memset() takes as long
// as one mincore() call, measured once per process, since it differs by
// machine (on the development host a mincore() over 16 pages took 780 ns
// and a memset() of 64 KiB 380 ns; under QEMU's emulation memset() is far
// slower).
size_t calibrate_small_extent() {
    constexpr size_t kProbe = size_t{64} << 10;
    void *m = mmap(nullptr, kProbe, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return kProbe;
    auto *p = static_cast<std::byte *>(m);
    memset(p, 1, kProbe);
    std::vector<unsigned char> vec(kProbe / kPage);
    using clk = std::chrono::steady_clock;
    auto best = [](auto &&fn) {
        auto b = clk::duration::max();
        for (int i = 0; i < 8; i++) {
            auto t0 = clk::now();
            fn();
            b = std::min(b, clk::now() - t0);
        }
        return std::max<int64_t>(1,
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(b).count());
    };
    int64_t look = best([&] { mincore(p, kProbe, vec.data()); });
    int64_t zero = best([&] {
        memset(p, 0, kProbe);
        asm volatile("" ::"r"(p) : "memory");
    });
    munmap(m, kProbe);
    size_t bytes = static_cast<size_t>(static_cast<double>(kProbe) * static_cast<double>(look) /
                                       static_cast<double>(zero));
    return std::clamp(bytes & ~(kPage - 1), kPage, size_t{256} << 10);
}

size_t small_extent() {
    static const size_t bytes = calibrate_small_extent();
    return bytes;
}

enum class State : uint8_t { free, leased, queued, quarantined };

// Per-slot bookkeeping.  A slot belongs to exactly one party at a time (a
// shard's free list or queue, under that shard's lock, or the thread that
// leased it), so the fields need no atomics: hand-offs go through a mutex.
struct Slot {
    uint64_t key = ~uint64_t{0};
    size_t accessible = 0; // bytes read-write now
    size_t extent = 0;     // bytes that may be dirty: [0, extent) is reset
    size_t resident = 0;   // bytes kept resident, counted in the budget
    // Adaptive: how many more in-place resets may skip mincore() because
    // the last look found (nearly) every page of the extent resident.
    uint8_t skip_looks = 0;
    uint32_t shard = 0; // where it goes when free
    State state = State::free;
};

struct Area {
    std::byte *map = nullptr; // the reservation
    size_t map_bytes = 0;
    size_t stride = 0;   // bytes per slot, guards included
    size_t offset = 0;   // from slot start to usable base (stack guard)
    size_t capacity = 0; // usable bytes per slot
    std::vector<Slot> slots;
    std::byte *base(uint32_t i) const { return map + i * stride + offset; }
};

struct Pending {
    Kind kind;
    uint32_t index;
    iovec range;
    bool whole; // the whole slot (keep_resident decommits only a part)
};

// Counters live in the shards, so that threads do not share a cache line
// for every acquire and release; stats() adds them up.
struct Counters {
    std::atomic<uint64_t> acquired{0}, released{0}, zeroed{0}, decommitted{0}, decommit_calls{0},
        flushes_on_empty{0}, steals{0}, quarantined{0}, exhausted{0};
};

struct alignas(64) Shard {
    std::mutex lock;
    std::vector<uint32_t> free[kKinds];
    std::vector<Pending> queue;
    size_t queued_memories = 0;
    Counters n;
};

void bump(std::atomic<uint64_t> &c) {
    c.fetch_add(1, std::memory_order_relaxed);
}

std::atomic<uint32_t> g_next_thread{0};
thread_local uint32_t t_thread = g_next_thread.fetch_add(1, std::memory_order_relaxed);

} // namespace

struct Pool::Impl {
    Config cfg;
    Area area[kKinds];
    std::vector<std::unique_ptr<Shard>> shards;
    size_t budget = 0;
    std::atomic<size_t> resident{0};

    explicit Impl(Config c);
    ~Impl();

    Shard &my_shard() { return *shards[t_thread % shards.size()]; }
    Area &of(Kind k) { return area[static_cast<int>(k)]; }

    bool take_free(Shard &s, Kind k, uint64_t key, uint32_t *out);
    size_t flush_shard(Shard &s);
    void enqueue(Kind k, uint32_t i, iovec range, bool whole = true);
    void make_free(Kind k, uint32_t i);
    ssize_t decommit(Shard &s, const iovec *iov, size_t n);
    void account_resident(Slot &s, size_t bytes);
    bool zero_resident_in_place(Kind k, uint32_t i, size_t extent);
};

Pool::Impl::Impl(Config c) : cfg(std::move(c)) {
    if (cfg.memory_slots == 0 || cfg.table_slots == 0 || cfg.stack_slots == 0)
        throw std::invalid_argument("wasmpool: every kind needs at least one slot");
    if (cfg.batch_size == 0)
        throw std::invalid_argument("wasmpool: batch_size must be at least 1");
    if (cfg.memory_reservation < 2 * kPage || cfg.table_bytes == 0 || cfg.stack_bytes == 0)
        throw std::invalid_argument("wasmpool: slot sizes too small");

    size_t nshards = 1;
    if (cfg.sharded) {
        nshards = cfg.shards ? cfg.shards : std::max(1u, std::thread::hardware_concurrency());
        nshards = std::min<size_t>(nshards, 16);
    }
    for (size_t i = 0; i < nshards; i++)
        shards.push_back(std::make_unique<Shard>());

    budget = cfg.resident_budget_bytes;
    if (budget == 0) {
        size_t ram = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * kPage;
        budget = std::clamp(ram / 16, size_t{16} << 20, size_t{1} << 30);
    }

    // Memories: half of each reservation usable (at most 4 GiB, wasm32's
    // limit), the rest a guard.  Tables: a guard page after each.
    // Stacks: a guard page below each, the stack itself read-write.
    size_t mres = page_up(cfg.memory_reservation);
    Area &mem = area[0], &tab = area[1], &stk = area[2];
    mem.stride = mres;
    mem.capacity = std::min(mres / 2, size_t{4} << 30);
    mem.slots.resize(cfg.memory_slots);
    tab.stride = page_up(cfg.table_bytes) + kPage;
    tab.capacity = page_up(cfg.table_bytes);
    tab.slots.resize(cfg.table_slots);
    stk.stride = kPage + page_up(cfg.stack_bytes);
    stk.offset = kPage;
    stk.capacity = page_up(cfg.stack_bytes);
    stk.slots.resize(cfg.stack_slots);

    for (int k = 0; k < kKinds; k++) {
        Area &a = area[k];
        a.map_bytes = a.stride * a.slots.size();
        void *p = mmap(nullptr, a.map_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            for (int j = 0; j < k; j++)
                munmap(area[j].map, area[j].map_bytes);
            throw std::system_error(err, std::generic_category(),
                                    std::string("wasmpool: reserving ") +
                                        kind_name(static_cast<Kind>(k)) + " slots");
        }
        a.map = static_cast<std::byte *>(p);
        for (uint32_t i = 0; i < a.slots.size(); i++) {
            Slot &s = a.slots[i];
            s.shard = i % shards.size();
            shards[s.shard]->free[k].push_back(i);
            if (static_cast<Kind>(k) == Kind::stack) {
                if (mprotect(a.base(i), a.capacity, PROT_READ | PROT_WRITE) != 0) {
                    int err = errno;
                    for (int j = 0; j <= k; j++)
                        munmap(area[j].map, area[j].map_bytes);
                    throw std::system_error(err, std::generic_category(), "wasmpool: stacks");
                }
                s.accessible = s.extent = a.capacity;
            }
        }
        // LIFO free lists: the most recently used slot goes out first.
        for (auto &sh : shards)
            std::reverse(sh->free[k].begin(), sh->free[k].end());
    }
}

Pool::Impl::~Impl() {
    for (Area &a : area)
        if (a.map)
            munmap(a.map, a.map_bytes);
}

bool Pool::Impl::take_free(Shard &s, Kind k, uint64_t key, uint32_t *out) {
    std::lock_guard<std::mutex> g(s.lock);
    auto &list = s.free[static_cast<int>(k)];
    if (list.empty())
        return false;
    // Affinity: a recent slot that last held this module, else the newest.
    size_t pick = list.size() - 1;
    size_t look = std::min<size_t>(list.size(), 16);
    for (size_t j = 0; j < look; j++) {
        size_t at = list.size() - 1 - j;
        if (of(k).slots[list[at]].key == key) {
            pick = at;
            break;
        }
    }
    *out = list[pick];
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(pick));
    return true;
}

void Pool::Impl::make_free(Kind k, uint32_t i) {
    Slot &s = of(k).slots[i];
    Shard &sh = *shards[s.shard];
    std::lock_guard<std::mutex> g(sh.lock);
    s.state = State::free;
    sh.free[static_cast<int>(k)].push_back(i);
}

void Pool::Impl::account_resident(Slot &s, size_t bytes) {
    if (bytes != s.resident) // the same size most of the time: no shared write
        resident.fetch_add(bytes - s.resident, std::memory_order_relaxed);
    s.resident = bytes;
}

ssize_t Pool::Impl::decommit(Shard &s, const iovec *iov, size_t cnt) {
    bump(s.n.decommit_calls);
    if (cfg.decommit_hook)
        return cfg.decommit_hook(iov, cnt);
    return madvisev_via(cfg.backend, iov, cnt, MADV_DONTNEED, 0);
}

// Reset every queued slot of @s with one madvisev() call; slots whose
// range the call did not reach get one retry alone, and a slot that still
// cannot be reset is quarantined: its stale data must never reach anyone.
size_t Pool::Impl::flush_shard(Shard &s) {
    std::vector<Pending> work;
    {
        std::lock_guard<std::mutex> g(s.lock);
        work.swap(s.queue);
        s.queued_memories = 0;
    }
    if (work.empty())
        return 0;
    std::vector<iovec> iov;
    iov.reserve(work.size());
    for (const Pending &p : work)
        iov.push_back(p.range);
    ssize_t r = decommit(s, iov.data(), iov.size());
    size_t done = r < 0 ? 0 : static_cast<size_t>(r);
    size_t freed = 0;
    for (const Pending &p : work) {
        bool ok = false;
        if (done >= p.range.iov_len) {
            done -= p.range.iov_len;
            ok = true;
        } else {
            done = 0; // a short count ends at a whole range
            ok = decommit(s, &p.range, 1) == static_cast<ssize_t>(p.range.iov_len);
        }
        Slot &slot = of(p.kind).slots[p.index];
        if (!ok) {
            slot.state = State::quarantined;
            bump(s.n.quarantined);
            continue;
        }
        if (p.whole) {
            account_resident(slot, 0);
            slot.skip_looks = 0;
        }
        slot.extent = slot.accessible;
        bump(s.n.decommitted);
        make_free(p.kind, p.index);
        freed++;
    }
    return freed;
}

void Pool::Impl::enqueue(Kind k, uint32_t i, iovec range, bool whole) {
    Slot &s = of(k).slots[i];
    Shard &sh = *shards[s.shard];
    bool full;
    {
        std::lock_guard<std::mutex> g(sh.lock);
        s.state = State::queued;
        sh.queue.push_back({k, i, range, whole});
        if (k == Kind::memory)
            sh.queued_memories++;
        // batch_size counts memories, one per instance; the tables and
        // stacks released with them join the same call.
        full = sh.queued_memories >= cfg.batch_size || sh.queue.size() >= kKinds * cfg.batch_size;
    }
    if (full)
        flush_shard(sh);
}

// Adaptive reset: zero the resident pages of [0, extent) in place if the
// pool's resident memory stays within budget.  False: decommit instead.
bool Pool::Impl::zero_resident_in_place(Kind k, uint32_t i, size_t extent) {
    thread_local std::vector<unsigned char> vec;
    Area &a = of(k);
    Slot &s = a.slots[i];
    std::byte *base = a.base(i);
    size_t pages = extent / kPage;
    if (pages == 0)
        return true;
    if ((s.skip_looks > 0 && s.resident == extent) || extent <= small_extent()) {
        // Learned: this slot's users dirty (nearly) all of it, or it is so
        // small that looking costs more than zeroing.  Zero all of it; look
        // again now and then.
        if (resident.load(std::memory_order_relaxed) - s.resident + extent > budget)
            return false;
        if (s.skip_looks > 0)
            s.skip_looks--;
        memset(base, 0, extent);
        account_resident(s, extent);
        return true;
    }
    vec.resize(pages);
    if (mincore(base, extent, vec.data()) != 0)
        return false;
    size_t res = 0;
    for (size_t p = 0; p < pages; p++)
        res += vec[p] & 1;
    size_t bytes = res * kPage;
    // Nearly all resident: zero the whole extent from now on (one memset,
    // no mincore) for the next 15 resets, if the budget allows.
    bool dense = res * 8 >= pages * 7;
    if (dense)
        bytes = extent;
    size_t now = resident.load(std::memory_order_relaxed);
    if (now - s.resident + bytes > budget)
        return false;
    if (dense) {
        memset(base, 0, extent);
        account_resident(s, bytes);
        s.skip_looks = 15;
        return true;
    }
    for (size_t p = 0; p < pages;) {
        if (!(vec[p] & 1)) {
            p++;
            continue;
        }
        size_t q = p;
        while (q < pages && (vec[q] & 1))
            q++;
        memset(base + p * kPage, 0, (q - p) * kPage);
        p = q;
    }
    account_resident(s, bytes);
    return true;
}

Pool::Pool(Config cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Pool::~Pool() = default;

std::optional<Pool::Lease> Pool::acquire(Kind kind, uint64_t key, size_t bytes) {
    Impl &m = *impl_;
    Area &a = m.of(kind);
    if (bytes > a.capacity) {
        errno = EINVAL;
        return std::nullopt;
    }
    Shard &mine = m.my_shard();
    uint32_t idx = 0;
    bool got = m.take_free(mine, kind, key, &idx);
    if (!got && m.flush_shard(mine) > 0) {
        bump(mine.n.flushes_on_empty);
        got = m.take_free(mine, kind, key, &idx);
    }
    for (int pass = 0; pass < 2 && !got; pass++) {
        // Steal a free slot from another shard; on the second pass, flush
        // the other shards' queues first.
        for (auto &sh : m.shards) {
            if (sh.get() == &mine)
                continue;
            if (pass == 1)
                m.flush_shard(*sh);
            if (m.take_free(*sh, kind, key, &idx)) {
                bump(mine.n.steals);
                got = true;
                break;
            }
        }
    }
    if (!got) {
        bump(mine.n.exhausted);
        errno = ENOMEM;
        return std::nullopt;
    }
    Slot &s = a.slots[idx];
    std::byte *base = a.base(idx);
    if (kind != Kind::stack) {
        size_t want = page_up(bytes);
        int rc = 0;
        // Same size as the last user: nothing to change.
        if (want > s.accessible)
            rc = mprotect(base + s.accessible, want - s.accessible, PROT_READ | PROT_WRITE);
        else if (want < s.accessible)
            rc = mprotect(base + want, s.accessible - want, PROT_NONE);
        if (rc != 0) {
            int err = errno;
            m.make_free(kind, idx);
            errno = err;
            return std::nullopt;
        }
        s.accessible = want;
        // A free slot is clean over its whole range: only what this lease
        // makes accessible can get dirty.
        s.extent = want;
    }
    s.key = key;
    s.state = State::leased;
    bump(mine.n.acquired);
    return Lease{kind, idx, base, a.capacity};
}

bool Pool::grow(Kind kind, uint32_t index, size_t bytes) {
    Impl &m = *impl_;
    Area &a = m.of(kind);
    if (kind == Kind::stack || index >= a.slots.size() || bytes > a.capacity)
        return false;
    Slot &s = a.slots[index];
    size_t want = page_up(bytes);
    if (want <= s.accessible)
        return true;
    if (mprotect(a.base(index) + s.accessible, want - s.accessible, PROT_READ | PROT_WRITE) != 0)
        return false;
    s.accessible = want;
    s.extent = std::max(s.extent, want);
    return true;
}

void Pool::release(Kind kind, uint32_t index) {
    Impl &m = *impl_;
    Area &a = m.of(kind);
    Slot &s = a.slots[index];
    std::byte *base = a.base(index);
    size_t extent = s.extent;
    Counters &n = m.my_shard().n;
    bump(n.released);
    switch (m.cfg.reset) {
    case Reset::none:
        m.make_free(kind, index);
        return;
    case Reset::decommit:
        m.enqueue(kind, index, {base, extent});
        return;
    case Reset::keep_resident: {
        // memset what is kept (a stack's top, where it is used; the start
        // of a memory or table), decommit the rest.
        bool stack = kind == Kind::stack;
        size_t want = stack ? m.cfg.stack_keep_resident_bytes : m.cfg.keep_resident_bytes;
        size_t keep = std::min(page_up(want), extent);
        std::byte *kept = stack ? base + extent - keep : base;
        memset(kept, 0, keep);
        m.account_resident(s, std::max(s.resident, keep));
        bump(n.zeroed);
        if (keep < extent) {
            m.enqueue(kind, index, {stack ? base : base + keep, extent - keep}, false);
        } else {
            s.extent = s.accessible;
            m.make_free(kind, index);
        }
        return;
    }
    case Reset::adaptive:
        if (m.zero_resident_in_place(kind, index, extent)) {
            bump(n.zeroed);
            s.extent = s.accessible;
            m.make_free(kind, index);
        } else {
            m.enqueue(kind, index, {base, extent});
        }
        return;
    }
}

void Pool::flush(bool all) {
    if (all) {
        for (auto &sh : impl_->shards)
            impl_->flush_shard(*sh);
    } else {
        impl_->flush_shard(impl_->my_shard());
    }
}

std::optional<uint32_t> Pool::locate(Kind kind, const void *p) const {
    const Area &a = impl_->area[static_cast<int>(kind)];
    auto *b = static_cast<const std::byte *>(p);
    if (b < a.map || b >= a.map + a.map_bytes)
        return std::nullopt;
    return static_cast<uint32_t>(static_cast<size_t>(b - a.map) / a.stride);
}

Stats Pool::stats() const {
    const Impl &m = *impl_;
    Stats st;
    for (const auto &sh : m.shards) {
        const Counters &n = sh->n;
        st.acquired += n.acquired.load();
        st.released += n.released.load();
        st.zeroed_in_place += n.zeroed.load();
        st.decommitted += n.decommitted.load();
        st.decommit_calls += n.decommit_calls.load();
        st.flushes_on_empty += n.flushes_on_empty.load();
        st.steals += n.steals.load();
        st.quarantined += n.quarantined.load();
        st.exhausted += n.exhausted.load();
    }
    st.resident_bytes = m.resident.load();
    st.resident_budget = m.budget;
    return st;
}

const Config &Pool::config() const {
    return impl_->cfg;
}

size_t Pool::slot_count(Kind kind) const {
    return impl_->area[static_cast<int>(kind)].slots.size();
}

} // namespace wasmpool
