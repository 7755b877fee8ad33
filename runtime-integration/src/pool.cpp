// SPDX-License-Identifier: MIT
#include "wasmpool/pool.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "madvisev.hpp"
#include "pool_testing.h"

namespace wasmpool {

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

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

size_t page_up(size_t bytes) {
    return (bytes + kPage - 1) & ~(kPage - 1);
}

// The layout's arithmetic, refused rather than wrapped: a wrapped size
// would put slots on top of each other.
size_t checked_mul(size_t a, size_t b, const std::string &what) {
    size_t product;
    if (__builtin_mul_overflow(a, b, &product))
        throw std::overflow_error("wasmpool: " + what + " (" + std::to_string(a) + " * " +
                                  std::to_string(b) + ") overflows");
    return product;
}

size_t checked_add(size_t a, size_t b, const std::string &what) {
    size_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        throw std::overflow_error("wasmpool: " + what + " (" + std::to_string(a) + " + " +
                                  std::to_string(b) + ") overflows");
    return sum;
}

[[noreturn]] void refuse(const std::string &why) {
    throw std::invalid_argument("wasmpool: " + why);
}

void check_slots(const char *field, size_t slots) {
    if (slots == 0)
        refuse(std::string(field) + " is 0: every kind needs at least one slot");
    if (slots > UINT32_MAX)
        refuse(std::string(field) + " (" + std::to_string(slots) + ") exceeds 2^32 - 1");
}

// Slot and guard sizes: protections change by whole pages only.
void check_pages(const char *field, size_t bytes) {
    if (bytes == 0 || bytes % kPage != 0)
        refuse(std::string(field) + " (" + std::to_string(bytes) +
               ") must be a nonzero multiple of the page size (" + std::to_string(kPage) + ")");
}

// Everything the layout assumes, checked before any of it is computed.
void validate(const Config &cfg) {
    check_slots("memory_slots", cfg.memory_slots);
    check_slots("table_slots", cfg.table_slots);
    check_slots("stack_slots", cfg.stack_slots);
    check_pages("memory_max_bytes", cfg.memory_max_bytes);
    check_pages("memory_guard_bytes", cfg.memory_guard_bytes);
    check_pages("table_bytes", cfg.table_bytes);
    check_pages("table_guard_bytes", cfg.table_guard_bytes);
    check_pages("stack_bytes", cfg.stack_bytes);
    check_pages("stack_guard_bytes", cfg.stack_guard_bytes);
    if (cfg.memory_max_bytes > kWasm32MaxBytes)
        refuse("memory_max_bytes (" + std::to_string(cfg.memory_max_bytes) +
               ") exceeds wasm32's 4 GiB (" + std::to_string(kWasm32MaxBytes) + ")");
    size_t behind_base =
        checked_add(cfg.memory_max_bytes, cfg.memory_guard_bytes, "memory_max_bytes + guard");
    if (cfg.memory_bounds == Bounds::guard_pages && behind_base < kSignalHandlerReach)
        refuse("memory_max_bytes + memory_guard_bytes (" + std::to_string(behind_base) +
               ") is less than the " + std::to_string(kSignalHandlerReach) +
               " bytes behind a memory's base that unchecked (signal-handler-mode) code can "
               "reach; raise memory_guard_bytes, or set memory_bounds = Bounds::checked");
    if (cfg.keep_resident_scan && cfg.reset != Reset::keep_resident)
        refuse("keep_resident_scan needs reset = Reset::keep_resident");
    if (cfg.batch_size == 0)
        refuse("batch_size must be at least 1");
    if (cfg.background_flush && cfg.flush_interval_ms == 0)
        refuse("flush_interval_ms must be at least 1");
}

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Up to how many bytes the adaptive reset zeroes a whole extent rather than
// ask the kernel which pages hold data: the size a memset() takes as long
// as one PAGEMAP_SCAN, measured once per process, since it differs by
// machine (under QEMU's emulation memset() is far slower).
size_t calibrate_small_extent() {
    constexpr size_t kProbe = size_t{64} << 10;
    void *mapped =
        mmap(nullptr, kProbe, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED)
        return kProbe;
    auto *probe = static_cast<std::byte *>(mapped);
    memset(probe, 1, kProbe);
    madvisev_page_run runs[16];
    using clk = std::chrono::steady_clock;
    auto best = [](auto &&fn) {
        auto fastest = clk::duration::max();
        for (int i = 0; i < 8; i++) {
            auto t0 = clk::now();
            fn();
            fastest = std::min(fastest, clk::now() - t0);
        }
        return std::max<int64_t>(
            1, std::chrono::duration_cast<std::chrono::nanoseconds>(fastest).count());
    };
    int64_t look = best([&] { (void)madvisev_scan_data(probe, kProbe, runs, 16, nullptr, 0); });
    int64_t zero = best([&] {
        memset(probe, 0, kProbe);
        asm volatile("" ::"r"(probe) : "memory");
    });
    munmap(mapped, kProbe);
    size_t bytes = static_cast<size_t>(static_cast<double>(kProbe) * static_cast<double>(look) /
                                       static_cast<double>(zero));
    return std::clamp(bytes & ~(kPage - 1), kPage, size_t{256} << 10);
}

size_t small_extent() {
    static const size_t bytes = calibrate_small_extent();
    return bytes;
}

// A slot's life cycle.  Every change is a compare-and-swap of the slot's
// word (generation << 8 | state), so a transition from a state the slot
// is not in is seen, and stopped, however threads interleave.
enum class State : uint8_t { free, leased, resetting, queued, quarantined };

const char *state_name(State state) {
    switch (state) {
    case State::free:
        return "free";
    case State::leased:
        return "leased";
    case State::resetting:
        return "resetting";
    case State::queued:
        return "queued for reset";
    case State::quarantined:
        return "quarantined";
    }
    return "?";
}

constexpr uint64_t make_word(uint32_t gen, State state) {
    return uint64_t{gen} << 8 | static_cast<uint8_t>(state);
}
constexpr State state_of(uint64_t word) {
    return static_cast<State>(word & 0xff);
}
constexpr uint32_t gen_of(uint64_t word) {
    return static_cast<uint32_t>(word >> 8);
}

// Per-slot bookkeeping.  Apart from the word, a slot's fields belong to
// one party at a time (a shard's free list or queue, under that shard's
// lock; the thread that leased it; the flusher that took it), and are
// handed over through a mutex or the word's acquire/release ordering.
struct Slot {
    std::atomic<uint64_t> word{0};
    uint64_t key = ~uint64_t{0};
    size_t accessible = 0; // bytes read-write now
    size_t extent = 0;     // bytes the current or last user could write
    size_t span = 0;       // no page at or beyond it is mapped (an upper bound)
    size_t resident = 0;   // bytes kept resident, counted in the budget
    int64_t freed_at = 0;  // when it last became free (aging)
    // Adaptive: how many more in-place resets may skip the scan because
    // the last one found (nearly) every page of the extent holding data.
    uint8_t skip_looks = 0;
    uint32_t shard = 0; // the free list it is on, or goes back to
    // The raw path's holder (Lease::detach()): 0 from acquire to detach and
    // once released, so a stale holder never matches the next tenant's.
    // Read by a thread that may hold a stale base: atomic.
    std::atomic<uintptr_t> owner{0};
};

// One kind's reservation: [guard][slot 0][guard][slot 1] ... [slot n-1][guard].
struct Area {
    std::byte *map = nullptr; // the reservation
    size_t map_bytes = 0;     // guard + count * stride
    size_t guard = 0;         // PROT_NONE bytes before and after every slot
    size_t capacity = 0;      // usable bytes per slot
    size_t stride = 0;        // capacity + guard
    size_t count = 0;
    std::unique_ptr<Slot[]> slots;
    std::byte *base(uint32_t index) const { return map + guard + index * stride; }
};

// A slot waiting in a queue, with its ranges at [first, first + count) of
// the queue's iovec array.
struct Pending {
    Kind kind;
    uint32_t index;
    uint32_t first, count;
    bool whole;        // the ranges cover the slot's whole span
    bool zero = false; // MADVISEV_ZERO, not MADV_DONTNEED: the pages stay
};

// Counters live in the shards, so that threads do not share a cache line
// for every acquire and release; stats() adds them up.
struct Counters {
    std::atomic<uint64_t> acquired{0}, released{0}, zeroed{0}, decommitted{0}, decommit_calls{0},
        zero_calls{0}, swapped_resets{0}, flushes_on_empty{0}, background_flushes{0}, aged_out{0},
        steals{0}, remapped{0}, quarantined{0}, exhausted{0};
};

struct alignas(64) Shard {
    std::mutex lock;     // free lists and queue
    std::mutex flushing; // held for a whole flush: a thread that needs a slot waits for it
    std::vector<uint32_t> free[kKinds]; // back: the most recently freed
    std::vector<Pending> queue;
    std::vector<iovec> ranges;
    size_t queued_memories = 0;
    std::atomic<bool> full{false}; // the queue holds a batch: the flusher takes it
    Counters counters;
};

void bump(std::atomic<uint64_t> &counter, uint64_t by = 1) {
    counter.fetch_add(by, std::memory_order_relaxed);
}

std::atomic<uint32_t> g_next_thread{0};
thread_local uint32_t t_thread = g_next_thread.fetch_add(1, std::memory_order_relaxed);

// The live pools, for owner_of() and for flushing at thread exit.  Reads
// are lock-free; registration and the exit flush take the lock, so that a
// pool is not destroyed under an exiting thread's flush.
std::atomic<Pool *> g_pools[Pool::kMaxPools];
Pool::Impl *g_impls[Pool::kMaxPools]; // under g_pools_lock, beside g_pools
std::mutex g_pools_lock;
std::atomic<uint64_t> g_next_serial{1};

} // namespace

struct Pool::Impl {
    Config cfg;
    Area areas[kKinds];
    // The test seam (pool_testing.h); empty and false in production.
    testing::DecommitHook decommit_hook;
    testing::ZeroHook zero_hook;
    testing::RemapHook remap_hook;
    bool skip_resets = false;
    std::vector<std::unique_ptr<Shard>> shards;
    size_t budget = 0;
    std::atomic<size_t> resident{0};
    std::atomic<size_t> warm[kKinds]{}; // free slots with resident > 0, per kind
    // Slots leased or quarantined, per kind: while fewer than the count,
    // some slot is free, queued or being reset, and acquire() waits for it
    // rather than report exhaustion.
    std::atomic<size_t> held[kKinds]{};
    // Tells this pool from a later one made at the same addresses.
    uint64_t serial = 0;

    std::mutex flusher_lock;
    std::condition_variable flusher_cv;
    bool flusher_stop = false, flusher_kicked = false;
    std::thread flusher;
    pid_t creator = getpid();
    // Whether MADVISEV_ZERO is the kernel's, as the pool was made: adaptive
    // batches its in-place resets only then.
    bool zero_native = madvisev_zero_native() == 1;

    explicit Impl(Config config);
    ~Impl();

    uint32_t my_shard_index() const { return t_thread % shards.size(); }
    Shard &my_shard() { return *shards[my_shard_index()]; }
    Area &area_of(Kind kind) { return areas[static_cast<int>(kind)]; }
    Slot &slot_at(Kind kind, uint32_t index) { return area_of(kind).slots[index]; }

    [[noreturn]] void misuse(const char *op, Kind kind, uint32_t index, uint64_t word,
                             const char *why);
    void transition(Kind kind, uint32_t index, State from, State to);

    bool take_free(Shard &shard, Kind kind, uint64_t key, uint32_t *out);
    void make_free(Kind kind, uint32_t index);
    void release_slot(Kind kind, uint32_t index, uint32_t gen, const char *op);
    void enqueue(Kind kind, uint32_t index, const iovec *ranges, size_t count, bool whole,
                 bool zero = false);
    void enqueue_zero(Kind kind, uint32_t index);
    void enqueue_whole(Kind kind, uint32_t index);
    size_t flush_shards(const std::vector<Shard *> &which, std::vector<Pending> extra = {},
                        std::vector<iovec> extra_ranges = {});
    void finish(Shard &counted_in, const Pending &pending, bool ok, const iovec *ranges);
    bool remap_clean(Kind kind, uint32_t index);
    ssize_t decommit(Shard &counted_in, const iovec *iov, size_t count);
    ssize_t zero(Shard &counted_in, const iovec *iov, size_t count);
    bool reserve_resident(Slot &slot, size_t bytes);
    void set_resident(Slot &slot, size_t bytes);
    bool reset_adaptive(Kind kind, uint32_t index);
    bool reset_keep_scanned(Kind kind, uint32_t index);
    bool grow_slot(Kind kind, uint32_t index, size_t bytes, std::optional<uint32_t> gen);
    std::optional<uint32_t> slot_at_base(const Pool &pool, Kind kind, const void *base,
                                         const char *op);
    uint32_t check_owner(const char *op, Kind kind, uint32_t index, uintptr_t owner,
                         std::optional<uint32_t> generation);
    void kick();
    void thread_exit();
    void lock_all();
    void unlock_all();
    void flusher_main();
    void age_warm(std::vector<Pending> &out, std::vector<iovec> &ranges, bool idle);
};

Pool::Impl::Impl(Config config) : cfg(std::move(config)) {
    validate(cfg);
    serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);

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

    // Every kind alike: a guard before and after each slot (the guard
    // after one slot is the guard before the next).  A stack's guard
    // below it catches an overflow; a memory's after it is what unchecked
    // code relies on (validate() saw that it is large enough).
    struct Shape {
        size_t count, capacity, guard;
    };
    const Shape shapes[kKinds] = {
        {cfg.memory_slots, cfg.memory_max_bytes, cfg.memory_guard_bytes},
        {cfg.table_slots, cfg.table_bytes, cfg.table_guard_bytes},
        {cfg.stack_slots, cfg.stack_bytes, cfg.stack_guard_bytes},
    };
    for (int k = 0; k < kKinds; k++) {
        std::string name = kind_name(static_cast<Kind>(k));
        Area &area = areas[k];
        area.count = shapes[k].count;
        area.capacity = shapes[k].capacity;
        area.guard = shapes[k].guard;
        area.stride = checked_add(area.capacity, area.guard, name + " slot + guard");
        area.map_bytes =
            checked_add(area.guard, checked_mul(area.count, area.stride, name + " slots * stride"),
                        name + " reservation");
    }

    auto unmap_all = [&] {
        for (Area &area : areas)
            if (area.map)
                munmap(area.map, area.map_bytes);
    };
    for (int k = 0; k < kKinds; k++) {
        Area &area = areas[k];
        area.slots = std::make_unique<Slot[]>(area.count);
        void *reserved = mmap(nullptr, area.map_bytes, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (reserved == MAP_FAILED) {
            int err = errno;
            unmap_all();
            throw std::system_error(err, std::generic_category(),
                                    std::string("wasmpool: reserving ") +
                                        kind_name(static_cast<Kind>(k)) + " slots");
        }
        area.map = static_cast<std::byte *>(reserved);
        for (uint32_t i = 0; i < area.count; i++) {
            Slot &slot = area.slots[i];
            slot.shard = i % shards.size();
            shards[slot.shard]->free[k].push_back(i);
            if (static_cast<Kind>(k) == Kind::stack) {
                if (mprotect(area.base(i), area.capacity, PROT_READ | PROT_WRITE) != 0) {
                    int err = errno;
                    unmap_all();
                    throw std::system_error(err, std::generic_category(), "wasmpool: stacks");
                }
                slot.accessible = slot.extent = slot.span = area.capacity;
            }
        }
        // LIFO free lists: the most recently used slot goes out first.
        for (auto &shard : shards)
            std::reverse(shard->free[k].begin(), shard->free[k].end());
    }
    if (cfg.background_flush) {
        try {
            flusher = std::thread([this] { flusher_main(); });
        } catch (const std::system_error &) {
            unmap_all();
            throw;
        }
    }
}

Pool::Impl::~Impl() {
    // A forked child has a copy of the pool but not its flusher thread:
    // nothing to stop or join there.
    if (flusher.joinable() && getpid() != creator)
        flusher.detach();
    if (flusher.joinable()) {
        {
            std::lock_guard<std::mutex> g(flusher_lock);
            flusher_stop = true;
        }
        flusher_cv.notify_one();
        flusher.join();
    }
    for (Area &area : areas)
        if (area.map)
            munmap(area.map, area.map_bytes);
}

void Pool::Impl::misuse(const char *op, Kind kind, uint32_t index, uint64_t word, const char *why) {
    fprintf(stderr,
            "wasmpool: %s of %s slot %u (generation %u) in state %s: %s; stopping before "
            "one user can see another's memory\n",
            op, kind_name(kind), index, gen_of(word), state_name(state_of(word)), why);
    abort();
}

// Internal transitions: the pool's own invariants; a failure is a bug here.
void Pool::Impl::transition(Kind kind, uint32_t index, State from, State to) {
    Slot &slot = slot_at(kind, index);
    uint64_t word = slot.word.load(std::memory_order_relaxed);
    if (state_of(word) != from || !slot.word.compare_exchange_strong(
                                      word, make_word(gen_of(word), to), std::memory_order_acq_rel))
        misuse("internal transition", kind, index, word, state_name(from));
}

bool Pool::Impl::take_free(Shard &shard, Kind kind, uint64_t key, uint32_t *out) {
    std::lock_guard<std::mutex> g(shard.lock);
    auto &list = shard.free[static_cast<int>(kind)];
    if (list.empty())
        return false;
    // Affinity: a recent slot that last held this module, else the newest.
    size_t pick = list.size() - 1;
    size_t look = std::min<size_t>(list.size(), 16);
    for (size_t j = 0; j < look; j++) {
        size_t at = list.size() - 1 - j;
        if (slot_at(kind, list[at]).key == key) {
            pick = at;
            break;
        }
    }
    *out = list[pick];
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(pick));
    Slot &slot = slot_at(kind, *out);
    if (slot.resident > 0)
        warm[static_cast<int>(kind)].fetch_sub(1, std::memory_order_relaxed);
    uint64_t word = slot.word.load(std::memory_order_relaxed);
    if (state_of(word) != State::free ||
        !slot.word.compare_exchange_strong(word, make_word(gen_of(word) + 1, State::leased),
                                           std::memory_order_acq_rel))
        misuse("acquire", kind, *out, word, "a free list held a slot that is not free");
    held[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Pool::Impl::make_free(Kind kind, uint32_t index) {
    Slot &slot = slot_at(kind, index);
    Shard &shard = *shards[slot.shard];
    slot.freed_at = now_ns();
    bool over = false;
    {
        std::lock_guard<std::mutex> g(shard.lock);
        uint64_t word = slot.word.load(std::memory_order_relaxed);
        State state = state_of(word);
        if ((state != State::resetting && state != State::queued) ||
            !slot.word.compare_exchange_strong(word, make_word(gen_of(word), State::free),
                                               std::memory_order_acq_rel))
            misuse("free", kind, index, word, "only a slot being reset can become free");
        // Counted under the lock that take_free() uncounts it under.
        if (slot.resident > 0)
            over = warm[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed) + 1 >
                   cfg.max_warm_slots;
        shard.free[static_cast<int>(kind)].push_back(index);
    }
    if (over)
        kick();
}

bool Pool::Impl::reserve_resident(Slot &slot, size_t bytes) {
    if (bytes <= slot.resident) {
        set_resident(slot, bytes);
        return true;
    }
    size_t more = bytes - slot.resident;
    size_t total = resident.load(std::memory_order_relaxed);
    do {
        if (total + more > budget)
            return false;
    } while (!resident.compare_exchange_weak(total, total + more, std::memory_order_relaxed));
    slot.resident = bytes;
    return true;
}

void Pool::Impl::set_resident(Slot &slot, size_t bytes) {
    if (bytes != slot.resident) // the same size most of the time: no shared write
        resident.fetch_add(bytes - slot.resident, std::memory_order_relaxed);
    slot.resident = bytes;
}

ssize_t Pool::Impl::decommit(Shard &counted_in, const iovec *iov, size_t count) {
    bump(counted_in.counters.decommit_calls);
    if (decommit_hook)
        return decommit_hook(iov, count);
    return madvisev_via(cfg.backend, iov, count, MADV_DONTNEED, 0);
}

ssize_t Pool::Impl::zero(Shard &counted_in, const iovec *iov, size_t count) {
    bump(counted_in.counters.zero_calls);
    if (zero_hook)
        return zero_hook(iov, count);
    return madvisev_via(cfg.backend, iov, count, MADVISEV_ZERO, 0);
}

// A slot whose decommit failed still holds its last user's data.  Map
// fresh anonymous memory over it: the old pages go with the old mapping.
// The slot keeps its layout: read-write up to what is accessible, no
// access beyond.
bool Pool::Impl::remap_clean(Kind kind, uint32_t index) {
    Area &area = area_of(kind);
    Slot &slot = area.slots[index];
    std::byte *base = area.base(index);
    size_t len = kind == Kind::stack ? area.capacity : std::max(slot.span, slot.accessible);
    auto map = [&](std::byte *at, size_t bytes, int prot) {
        if (bytes == 0)
            return true;
        void *mapped = remap_hook
                           ? remap_hook(at, bytes, prot)
                           : mmap(at, bytes, prot,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        return mapped == at;
    };
    size_t rw = std::min(slot.accessible, len);
    if (!map(base, rw, PROT_READ | PROT_WRITE) || !map(base + rw, len - rw, PROT_NONE))
        return false;
    set_resident(slot, 0);
    slot.span = kind == Kind::stack ? area.capacity : 0;
    slot.skip_looks = 0;
    return true;
}

// The end of a queued slot's reset: @ok if the decommit covered all its
// ranges.  Otherwise the ranges get one more call alone, then a fresh
// mapping; a slot that cannot be cleaned is quarantined, never reused.
void Pool::Impl::finish(Shard &counted_in, const Pending &pending, bool ok, const iovec *ranges) {
    Slot &slot = area_of(pending.kind).slots[pending.index];
    size_t want = 0;
    for (uint32_t j = 0; j < pending.count; j++)
        want += ranges[j].iov_len;
    if (!ok) {
        ssize_t done = pending.zero ? zero(counted_in, ranges, pending.count)
                                    : decommit(counted_in, ranges, pending.count);
        ok = done == static_cast<ssize_t>(want);
    }
    if (!ok) {
        if (!remap_clean(pending.kind, pending.index)) {
            transition(pending.kind, pending.index, State::queued, State::quarantined);
            held[static_cast<int>(pending.kind)].fetch_add(1, std::memory_order_relaxed);
            bump(counted_in.counters.quarantined);
            return;
        }
        bump(counted_in.counters.remapped);
    } else if (pending.zero) {
        // Cleared where it lies: the pages stay resident, and warm.
        set_resident(slot, std::max(slot.resident, want));
        slot.extent = slot.accessible;
        make_free(pending.kind, pending.index);
        return;
    } else if (pending.whole) {
        set_resident(slot, 0);
        slot.skip_looks = 0;
        if (pending.kind != Kind::stack)
            slot.span = 0;
    }
    slot.extent = slot.accessible;
    bump(counted_in.counters.decommitted);
    make_free(pending.kind, pending.index);
}

// Reset every slot queued in @which (and @extra) with one madvisev() call.
size_t Pool::Impl::flush_shards(const std::vector<Shard *> &which, std::vector<Pending> work,
                                std::vector<iovec> ranges) {
    // One flush of a shard at a time, taken in index order (shards are
    // allocated in order, so address order is index order).
    std::vector<std::unique_lock<std::mutex>> held;
    for (Shard *shard : which)
        held.emplace_back(shard->flushing);
    for (Shard *shard : which) {
        std::lock_guard<std::mutex> g(shard->lock);
        uint32_t off = static_cast<uint32_t>(ranges.size());
        for (Pending pending : shard->queue) {
            pending.first += off;
            work.push_back(pending);
        }
        ranges.insert(ranges.end(), shard->ranges.begin(), shard->ranges.end());
        shard->queue.clear();
        shard->ranges.clear();
        shard->queued_memories = 0;
        shard->full.store(false, std::memory_order_relaxed);
    }
    if (work.empty())
        return 0;
    Shard &counted_in = which.empty() ? *shards.front() : *which.front(); // whose counters
    // At most two calls: MADV_DONTNEED for the slots decommitted,
    // MADVISEV_ZERO for those cleared in place, each for the whole batch.
    std::vector<uint8_t> ok(work.size(), 1);
    bool mixed = std::any_of(work.begin(), work.end(),
                             [&](const Pending &p) { return p.zero != work.front().zero; });
    std::vector<iovec> part;
    for (bool zeroing : {false, true}) {
        const iovec *vec = ranges.data();
        size_t count = ranges.size();
        if (mixed) {
            part.clear();
            for (const Pending &p : work)
                if (p.zero == zeroing)
                    part.insert(part.end(), ranges.begin() + p.first,
                                ranges.begin() + p.first + p.count);
            vec = part.data();
            count = part.size();
        } else if (work.front().zero != zeroing) {
            continue;
        }
        if (count == 0)
            continue;
        ssize_t advised = zeroing ? zero(counted_in, vec, count) : decommit(counted_in, vec, count);
        size_t done = advised < 0 ? 0 : static_cast<size_t>(advised);
        for (size_t w = 0; w < work.size(); w++) {
            const Pending &pending = work[w];
            if (pending.zero != zeroing)
                continue;
            for (uint32_t j = 0; j < pending.count; j++) {
                size_t len = ranges[pending.first + j].iov_len;
                if (ok[w] && done >= len) {
                    done -= len;
                } else {
                    ok[w] = 0;
                    done = 0; // a short count ends at a whole range
                }
            }
        }
    }
    for (size_t w = 0; w < work.size(); w++)
        finish(counted_in, work[w], ok[w] != 0, &ranges[work[w].first]);
    return work.size();
}

void Pool::Impl::enqueue(Kind kind, uint32_t index, const iovec *ranges, size_t count, bool whole,
                         bool zero) {
    Shard &shard = *shards[slot_at(kind, index).shard];
    transition(kind, index, State::resetting, State::queued);
    bool full;
    {
        std::lock_guard<std::mutex> g(shard.lock);
        shard.queue.push_back({kind, index, static_cast<uint32_t>(shard.ranges.size()),
                               static_cast<uint32_t>(count), whole, zero});
        shard.ranges.insert(shard.ranges.end(), ranges, ranges + count);
        if (kind == Kind::memory)
            shard.queued_memories++;
        // batch_size counts memories, one per instance; the tables and
        // stacks released with them join the same call.
        full = shard.queued_memories >= cfg.batch_size ||
               shard.queue.size() >= kKinds * cfg.batch_size;
        if (full)
            shard.full.store(true, std::memory_order_relaxed);
    }
    if (!full)
        return;
    if (cfg.background_flush && cfg.batch_size > 1)
        kick();
    else
        flush_shards({&shard});
}

// The extent the last user could write, for the next MADVISEV_ZERO
// batch.  Pages beyond it were cleared by an earlier reset (a free slot is
// clean over all it can reach), and may be inaccessible now: the library's
// emulation writes, so it must not be handed them.
void Pool::Impl::enqueue_zero(Kind kind, uint32_t index) {
    Area &area = area_of(kind);
    Slot &slot = area.slots[index];
    iovec range{area.base(index), slot.extent};
    enqueue(kind, index, &range, 1, false, true);
}

void Pool::Impl::enqueue_whole(Kind kind, uint32_t index) {
    Area &area = area_of(kind);
    Slot &slot = area.slots[index];
    iovec range{area.base(index), std::max(slot.span, slot.extent)};
    enqueue(kind, index, &range, 1, true);
}

// Adaptive reset: find the pages of the slot that can hold data, zero the
// present ones in place and queue the swapped ones for the next batch (or,
// where the kernel has MADVISEV_ZERO, clear both with one call now), if
// the pool's resident memory stays within budget.  False: decommit the
// whole slot instead.
bool Pool::Impl::reset_adaptive(Kind kind, uint32_t index) {
    thread_local std::vector<madvisev_page_run> runs;
    thread_local std::vector<iovec> swapped;
    Area &area = area_of(kind);
    Slot &slot = area.slots[index];
    std::byte *base = area.base(index);
    size_t extent = slot.extent;
    // Once free, the slot is clean over all it can reach.
    auto now_free = [&] {
        slot.extent = slot.accessible;
        make_free(kind, index);
        return true;
    };
    if (extent == 0 && slot.span == 0)
        return now_free();
    if ((slot.skip_looks > 0 && slot.resident >= extent) ||
        (extent <= small_extent() && slot.span <= extent)) {
        // Learned: this slot's users dirty (nearly) all of it, or it is so
        // small that looking costs more than zeroing.  memset() touches
        // every page, so a swapped-out one comes back and is zeroed too.
        if (!reserve_resident(slot, std::max(slot.resident, extent)))
            return false;
        if (slot.skip_looks > 0)
            slot.skip_looks--;
        memset(base, 0, extent);
        return now_free();
    }
    if (!cfg.pagemap_scan)
        return false;
    // The budget is spent and this slot holds no share of it: no scan can
    // make an in-place reset fit.
    if (slot.resident == 0 && resident.load(std::memory_order_relaxed) + kPage > budget)
        return false;
    size_t len = std::max(slot.span, extent);
    // ENOSYS (the system cannot say) or a failed call: decommit it all.
    if (madv::scan_data(base, len, runs) != 0)
        return false;
    size_t present_in = 0, present_out = 0;
    bool any_swapped = false;
    for (const madvisev_page_run &run : runs) {
        if (run.flags & MADVISEV_RUN_SWAPPED) {
            any_swapped = true;
            continue;
        }
        size_t inside = run.offset >= extent ? 0 : std::min(run.length, extent - run.offset);
        present_in += inside;
        present_out += run.length - inside; // zeroed by an earlier reset, now inaccessible
    }
    // Nearly all of it holds data: zero the whole extent from now on (one
    // memset, no scan) for the next 15 resets.
    bool dense = present_in * 8 >= extent * 7;
    size_t want = (dense ? extent : present_in) + present_out;
    if (!reserve_resident(slot, want))
        return false;
    Counters &counters = my_shard().counters;
    if (dense && zero_native) {
        // The kernel clears what is present and drops what is swapped, in
        // one call and with no IPI: done now, by the thread that freed the
        // slot, while its pages are still in this CPU's cache.  A failed
        // call leaves data behind: decommit the whole slot instead.
        iovec whole{base, extent};
        if (zero(my_shard(), &whole, 1) != static_cast<ssize_t>(extent))
            return false;
        slot.skip_looks = 15;
        return now_free();
    }
    if (dense) {
        memset(base, 0, extent);
        slot.skip_looks = 15;
        return now_free();
    }
    swapped.clear();
    if (zero_native) {
        // Present and swapped runs alike, in one MADVISEV_ZERO call (see
        // above); "swapped" holds them all here.
        size_t want_bytes = 0;
        for (const madvisev_page_run &run : runs) {
            size_t len = (run.flags & MADVISEV_RUN_SWAPPED) ? run.length
                         : run.offset < extent ? std::min(run.length, extent - run.offset)
                                               : 0;
            if (len > 0) {
                swapped.push_back({base + run.offset, len});
                want_bytes += len;
            }
        }
        if (!swapped.empty() &&
            zero(my_shard(), swapped.data(), swapped.size()) != static_cast<ssize_t>(want_bytes))
            return false;
        if (any_swapped)
            bump(counters.swapped_resets);
        return now_free();
    }
    for (const madvisev_page_run &run : runs) {
        if (run.flags & MADVISEV_RUN_SWAPPED) {
            swapped.push_back({base + run.offset, run.length});
        } else if (run.offset < extent) {
            memset(base + run.offset, 0, std::min(run.length, extent - run.offset));
        }
    }
    if (!any_swapped)
        return now_free();
    // Zapping a swap entry needs no TLB flush: these ranges ride along in
    // the next batch at no IPI cost.
    bump(counters.swapped_resets);
    enqueue(kind, index, swapped.data(), swapped.size(), false);
    return true;
}

// Config::keep_resident_scan.  false: the kernel cannot scan, nothing
// done.  Pages past the extent were clean when the lease began and are
// inaccessible now: a run reaching there ends the zeroing.
bool Pool::Impl::reset_keep_scanned(Kind kind, uint32_t index) {
    Slot &slot = slot_at(kind, index);
    std::byte *base = area_of(kind).base(index);
    size_t extent = slot.extent;
    size_t len = std::max(slot.span, extent);
    // Only the first kKeepScanRuns runs are kept: no more are asked for.
    // next: where the first run not stored begins, len when there is none.
    madvisev_page_run runs[kKeepScanRuns];
    size_t next = len;
    ssize_t found = cfg.pagemap_scan && len > 0
                        ? madvisev_scan_data(base, len, runs, kKeepScanRuns, &next, 0)
                        : -1;
    if (found < 0)
        return false;
    size_t keep = std::min(page_up(cfg.keep_resident_bytes), extent);
    size_t kept = 0, stop = next;
    for (ssize_t i = 0; i < found; i++) {
        const madvisev_page_run &run = runs[i];
        if (kept == keep || run.offset >= extent) {
            stop = run.offset;
            break;
        }
        size_t n = std::min({run.length, keep - kept, extent - run.offset});
        memset(base + run.offset, 0, n); // a swapped-out page comes back, zeroed
        kept += n;
        if (n < run.length) {
            stop = run.offset + n;
            break;
        }
    }
    set_resident(slot, kept);
    if (stop < len) {
        iovec rest{base + stop, len - stop};
        enqueue(kind, index, &rest, 1, false);
    } else {
        slot.extent = slot.accessible;
        make_free(kind, index);
    }
    return true;
}

void Pool::Impl::thread_exit() {
    Shard &mine = my_shard();
    if (!cfg.background_flush) {
        flush_shards({&mine});
        return;
    }
    bool queued;
    {
        std::lock_guard<std::mutex> g(mine.lock);
        queued = !mine.queue.empty();
        if (queued)
            mine.full.store(true, std::memory_order_relaxed);
    }
    if (queued)
        kick();
}

void Pool::Impl::kick() {
    if (!cfg.background_flush) {
        return; // no flusher: aging and the warm cap need one
    }
    {
        std::lock_guard<std::mutex> g(flusher_lock);
        flusher_kicked = true;
    }
    flusher_cv.notify_one();
}

// Warm slots to decommit: those idle past warm_idle_ms, then the oldest
// while more than max_warm_slots are warm.  Taken off their free lists
// (queued), so no one acquires them meanwhile.
void Pool::Impl::age_warm(std::vector<Pending> &out, std::vector<iovec> &ranges, bool idle_too) {
    auto over_cap = [&](int k) {
        return warm[k].load(std::memory_order_relaxed) > cfg.max_warm_slots;
    };
    if (!idle_too && !over_cap(0) && !over_cap(1) && !over_cap(2))
        return;
    int64_t now = now_ns();
    int64_t idle = int64_t{cfg.warm_idle_ms} * 1000000;
    for (auto &shard_ptr : shards) {
        Shard &shard = *shard_ptr;
        std::lock_guard<std::mutex> g(shard.lock);
        for (int k = 0; k < kKinds; k++) {
            auto &list = shard.free[k];
            size_t kept = 0;
            for (size_t j = 0; j < list.size(); j++) { // oldest first
                uint32_t index = list[j];
                Slot &slot = slot_at(static_cast<Kind>(k), index);
                bool old = idle_too && cfg.warm_idle_ms > 0 && now - slot.freed_at > idle;
                bool over = over_cap(k);
                if (slot.resident == 0 || (!old && !over)) {
                    list[kept++] = index;
                    continue;
                }
                uint64_t word = slot.word.load(std::memory_order_relaxed);
                if (state_of(word) != State::free ||
                    !slot.word.compare_exchange_strong(word,
                                                       make_word(gen_of(word), State::queued)))
                    misuse("aging", static_cast<Kind>(k), index, word,
                           "a free list held a slot that is not free");
                warm[k].fetch_sub(1, std::memory_order_relaxed);
                Area &area = areas[k];
                out.push_back(
                    {static_cast<Kind>(k), index, static_cast<uint32_t>(ranges.size()), 1, true});
                ranges.push_back({area.base(index), std::max(slot.span, slot.extent)});
                bump(shard.counters.aged_out);
            }
            list.resize(kept);
        }
    }
}

void Pool::Impl::flusher_main() {
    std::vector<Shard *> all;
    for (auto &shard : shards)
        all.push_back(shard.get());
    auto interval = std::chrono::milliseconds(cfg.flush_interval_ms);
    std::unique_lock<std::mutex> lk(flusher_lock);
    while (!flusher_stop) {
        bool kicked =
            flusher_cv.wait_for(lk, interval, [&] { return flusher_stop || flusher_kicked; });
        flusher_kicked = false;
        lk.unlock();
        // Full queues only, so that every call resets a whole batch
        // (partial ones are flushed by a thread that runs short, at thread
        // exit and at destruction); the warm slots over the cap, and on a
        // tick those idle too long as well, in the same call.
        std::vector<Shard *> which;
        for (Shard *shard : all)
            if (shard->full.load(std::memory_order_relaxed))
                which.push_back(shard);
        std::vector<Pending> aged;
        std::vector<iovec> ranges;
        age_warm(aged, ranges, !kicked);
        if ((!which.empty() || !aged.empty()) &&
            flush_shards(which, std::move(aged), std::move(ranges)) > 0)
            bump(all.front()->counters.background_flushes);
        lk.lock();
    }
    lk.unlock();
    flush_shards(all); // nothing is left queued at destruction
}

void Pool::Impl::release_slot(Kind kind, uint32_t index, uint32_t gen, const char *op) {
    Slot &slot = slot_at(kind, index);
    uint64_t word = slot.word.load(std::memory_order_relaxed);
    do {
        if (state_of(word) != State::leased)
            misuse(op, kind, index, word,
                   state_of(word) == State::free || state_of(word) == State::queued
                       ? "released twice, or never acquired"
                       : "the slot is not leased");
        if (gen_of(word) != gen)
            misuse(op, kind, index, word,
                   "a stale lease: the slot was released and acquired again since");
    } while (!slot.word.compare_exchange_weak(word, make_word(gen, State::resetting),
                                              std::memory_order_acq_rel));
    slot.owner.store(0, std::memory_order_relaxed);
    held[static_cast<int>(kind)].fetch_sub(1, std::memory_order_relaxed);

    Area &area = area_of(kind);
    std::byte *base = area.base(index);
    size_t extent = slot.extent;
    // A released slot joins the releasing thread's shard: its queue, then
    // its free list.
    slot.shard = my_shard_index();
    Counters &counters = my_shard().counters;
    bump(counters.released);
    if (skip_resets || (kind == Kind::stack && !cfg.reset_stacks)) {
        make_free(kind, index);
        return;
    }
    switch (cfg.reset) {
    case Reset::decommit:
        enqueue_whole(kind, index);
        return;
    case Reset::keep_resident: {
        if (cfg.keep_resident_scan && kind != Kind::stack && reset_keep_scanned(kind, index)) {
            bump(counters.zeroed);
            return;
        }
        // memset what is kept (a stack's top, where it is used; the start
        // of a memory or table), decommit the rest.  memset() touches
        // every kept page, swapped out or not.
        bool stack = kind == Kind::stack;
        size_t want = stack ? cfg.stack_keep_resident_bytes : cfg.keep_resident_bytes;
        size_t keep = std::min(page_up(want), extent);
        std::byte *kept = stack ? base + extent - keep : base;
        memset(kept, 0, keep);
        set_resident(slot, keep);
        bump(counters.zeroed);
        size_t end = stack ? extent - keep : std::max(slot.span, extent);
        if (stack ? end > 0 : keep < end) {
            iovec range = stack ? iovec{base, end} : iovec{base + keep, end - keep};
            enqueue(kind, index, &range, 1, false);
        } else {
            slot.extent = slot.accessible;
            make_free(kind, index);
        }
        return;
    }
    case Reset::adaptive:
        if (reset_adaptive(kind, index)) {
            bump(counters.zeroed);
        } else {
            enqueue_whole(kind, index);
        }
        return;
    case Reset::zero_in_place:
        if (extent == 0) { // never accessible: nothing to clear
            make_free(kind, index);
            return;
        }
        bump(counters.zeroed);
        enqueue_zero(kind, index);
        return;
    }
}

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

void note_pool_use(const Pool *pool, Pool::Impl *impl) {
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

} // namespace

std::optional<Pool::Lease> Pool::acquire(Kind kind, uint64_t key, size_t bytes) {
    Impl &impl = *impl_;
    Area &area = impl.area_of(kind);
    if (bytes > area.capacity) {
        errno = EINVAL;
        return std::nullopt;
    }
    uint32_t mine_at = impl.my_shard_index();
    Shard &mine = *impl.shards[mine_at];
    uint32_t index = 0;
    bool got = impl.take_free(mine, kind, key, &index);
    if (!got) {
        // Flush this shard's queue; or, if the flusher holds it, wait for
        // that flush: either way, look again after.
        if (impl.flush_shards({&mine}) > 0)
            bump(mine.counters.flushes_on_empty);
        got = impl.take_free(mine, kind, key, &index);
    }
    size_t shard_count = impl.shards.size();
    std::atomic<size_t> &held = impl.held[static_cast<int>(kind)];
    for (int pass = 0; !got; pass++) {
        // Steal a free slot from another shard, the next one first; from
        // the second pass on, flush the other shards' queues first.
        for (size_t step = 1; step < shard_count && !got; step++) {
            Shard &other = *impl.shards[(mine_at + step) % shard_count];
            if (pass >= 1 && impl.flush_shards({&other}) > 0)
                bump(mine.counters.flushes_on_empty);
            if (impl.take_free(other, kind, key, &index)) {
                bump(mine.counters.steals);
                got = true;
            }
        }
        if (got || (pass >= 1 && held.load(std::memory_order_acquire) >= area.count))
            break;
        // Not every slot is held: one is on its way back (another thread
        // is resetting it, or freed it into a list already looked at).
        // Look again, this shard too, rather than report exhaustion.
        if (pass >= 1)
            std::this_thread::yield();
        if (impl.flush_shards({&mine}) > 0)
            bump(mine.counters.flushes_on_empty);
        got = impl.take_free(mine, kind, key, &index);
    }
    if (!got) {
        bump(mine.counters.exhausted);
        errno = ENOMEM;
        return std::nullopt;
    }
    Slot &slot = area.slots[index];
    std::byte *base = area.base(index);
    if (kind != Kind::stack) {
        size_t want = page_up(bytes);
        int rc = 0;
        // Same size as the last user: nothing to change.  Pages left
        // behind a shrink stay counted in span (and resident): the next
        // reset finds them.
        if (want > slot.accessible)
            rc = mprotect(base + slot.accessible, want - slot.accessible, PROT_READ | PROT_WRITE);
        else if (want < slot.accessible)
            rc = mprotect(base + want, slot.accessible - want, PROT_NONE);
        if (rc != 0) {
            int err = errno;
            impl.transition(kind, index, State::leased, State::resetting);
            impl.make_free(kind, index);
            errno = err;
            return std::nullopt;
        }
        slot.accessible = want;
        slot.span = std::max(slot.span, want);
        // A free slot is clean over its whole range: only what this lease
        // makes accessible can get dirty.
        slot.extent = want;
    }
    slot.key = key;
    bump(mine.counters.acquired);
    note_pool_use(this, impl_.get());
    uint32_t gen = gen_of(slot.word.load(std::memory_order_relaxed));
    return Lease(this, SlotIndex{kind, index}, gen, base, area.capacity);
}

// @gen: the caller's generation, where it has one (a lease); the raw
// path has none.
bool Pool::Impl::grow_slot(Kind kind, uint32_t index, size_t bytes, std::optional<uint32_t> gen) {
    Area &area = area_of(kind);
    if (kind == Kind::stack || index >= area.count || bytes > area.capacity)
        return false;
    Slot &slot = area.slots[index];
    uint64_t word = slot.word.load(std::memory_order_acquire);
    if (state_of(word) != State::leased)
        misuse("grow", kind, index, word, "the slot is not leased");
    if (gen && gen_of(word) != *gen)
        misuse("grow", kind, index, word,
               "a stale lease: the slot was released and acquired again since");
    size_t want = page_up(bytes);
    if (want <= slot.accessible)
        return true;
    if (mprotect(area.base(index) + slot.accessible, want - slot.accessible,
                 PROT_READ | PROT_WRITE) != 0)
        return false;
    slot.accessible = want;
    slot.extent = std::max(slot.extent, want);
    slot.span = std::max(slot.span, want);
    return true;
}

// The slot whose base @base is; aborts where @base lies in this pool's
// @kind reservation but is not a slot's base (the caller's pointer is
// wrong, and guessing a slot could hand it someone else's).
std::optional<uint32_t> Pool::Impl::slot_at_base(const Pool &pool, Kind kind, const void *base,
                                                 const char *op) {
    auto found = pool.locate(kind, base);
    const Area &area = area_of(kind);
    auto *addr = static_cast<const std::byte *>(base);
    bool inside = addr >= area.map && addr < area.map + area.map_bytes;
    if (inside && (!found || area.base(found->value) != base)) {
        fprintf(stderr,
                "wasmpool: %s of %s at %p: not the base of a slot of this pool; stopping "
                "before one user can see another's memory\n",
                op, kind_name(kind), base);
        abort();
    }
    if (!found)
        return std::nullopt;
    return found->value;
}

bool Pool::grow(SlotIndex index, size_t bytes) {
    return impl_->grow_slot(index.kind, index.value, bytes, std::nullopt);
}

bool Pool::grow_base(Kind kind, const void *base, size_t bytes, uintptr_t owner) {
    auto idx = impl_->slot_at_base(*this, kind, base, "grow");
    if (!idx)
        return false;
    impl_->check_owner("grow", kind, *idx, owner, std::nullopt);
    return impl_->grow_slot(kind, *idx, bytes, std::nullopt);
}

void Pool::release(Lease &&lease) {
    Impl &impl = *impl_;
    if (!lease) {
        fprintf(stderr, "wasmpool: release of an empty lease (moved from, released or "
                        "detached before)\n");
        abort();
    }
    Kind kind = lease.kind();
    uint32_t index = lease.index_.value;
    if (lease.pool_ != this || index >= impl.area_of(kind).count ||
        lease.base_ != impl.area_of(kind).base(index)) {
        fprintf(stderr,
                "wasmpool: release of %s slot %u (generation %u) at %p: not a lease of this "
                "pool; stopping before one user can see another's memory\n",
                kind_name(kind), index, lease.generation_, static_cast<void *>(lease.base_));
        abort();
    }
    uint32_t gen = lease.generation_;
    lease.pool_ = nullptr; // empty before the slot can be anyone else's
    impl.release_slot(kind, index, gen, "release");
}

void Pool::release_base(Kind kind, const void *base, uintptr_t owner,
                        std::optional<uint32_t> generation) {
    Impl &impl = *impl_;
    auto index = impl.slot_at_base(*this, kind, base, "release");
    if (!index) {
        fprintf(stderr,
                "wasmpool: release of %s at %p: not the base of a slot of this pool; stopping "
                "before one user can see another's memory\n",
                kind_name(kind), base);
        abort();
    }
    uint32_t gen = impl.check_owner("release", kind, *index, owner, generation);
    impl.release_slot(kind, *index, gen, "release");
}

// The raw path's check: the slot is leased, by @owner, under @generation
// where the caller has one; its generation.  A free through a copy of the
// holder's struct, a stale base or a stale generation stops here, before it
// can release the slot another tenant now holds.
uint32_t Pool::Impl::check_owner(const char *op, Kind kind, uint32_t index, uintptr_t owner,
                                 std::optional<uint32_t> generation) {
    Slot &slot = slot_at(kind, index);
    uint64_t word = slot.word.load(std::memory_order_acquire);
    if (state_of(word) != State::leased)
        misuse(op, kind, index, word,
               state_of(word) == State::free || state_of(word) == State::queued
                   ? "released twice, or never acquired"
                   : "the slot is not leased");
    uintptr_t holder = slot.owner.load(std::memory_order_acquire);
    if (holder != owner) {
        fprintf(stderr,
                "wasmpool: %s of %s slot %u (generation %u) by owner %#lx: it is held by %#lx; a "
                "copy of the holder's struct, or a stale base; stopping before one user can see "
                "another's memory\n",
                op, kind_name(kind), index, gen_of(word), static_cast<unsigned long>(owner),
                static_cast<unsigned long>(holder));
        abort();
    }
    if (generation && *generation != gen_of(word))
        misuse(op, kind, index, word,
               "a stale generation: the slot was released and acquired again since");
    return gen_of(word);
}

Pool::Lease::Lease(Lease &&other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), index_(other.index_),
      generation_(other.generation_), base_(other.base_), capacity_(other.capacity_) {}

Pool::Lease &Pool::Lease::operator=(Lease &&other) noexcept {
    if (this != &other) {
        if (pool_)
            pool_->release(std::move(*this));
        pool_ = std::exchange(other.pool_, nullptr);
        index_ = other.index_;
        generation_ = other.generation_;
        base_ = other.base_;
        capacity_ = other.capacity_;
    }
    return *this;
}

Pool::Lease::~Lease() {
    if (pool_)
        pool_->release(std::move(*this));
}

bool Pool::Lease::grow(size_t bytes) {
    if (!pool_)
        return false;
    return pool_->impl_->grow_slot(index_.kind, index_.value, bytes, generation_);
}

void Pool::Lease::release() {
    if (!pool_) {
        fprintf(stderr, "wasmpool: release of an empty lease (moved from, released or "
                        "detached before)\n");
        abort();
    }
    pool_->release(std::move(*this));
}

std::byte *Pool::Lease::detach(uintptr_t owner) {
    if (!pool_ || owner == 0) {
        fprintf(stderr, "wasmpool: detach of %s: %s\n", pool_ ? "a lease" : "an empty lease",
                pool_ ? "the owner must not be 0" : "it holds no slot");
        abort();
    }
    pool_->impl_->slot_at(index_.kind, index_.value).owner.store(owner, std::memory_order_release);
    pool_ = nullptr;
    return base_;
}

void Pool::flush(bool all) {
    Impl &impl = *impl_;
    if (all) {
        std::vector<Shard *> every;
        for (auto &shard : impl.shards)
            every.push_back(shard.get());
        impl.flush_shards(every);
    } else {
        impl.flush_shards({&impl.my_shard()});
    }
}

std::optional<SlotIndex> Pool::locate(Kind kind, const void *p) const {
    const Area &area = impl_->areas[static_cast<int>(kind)];
    auto *addr = static_cast<const std::byte *>(p);
    if (addr < area.map || addr >= area.map + area.map_bytes)
        return std::nullopt;
    size_t offset = static_cast<size_t>(addr - area.map);
    // A stack owns the guard below it (its overflow faults there); a
    // memory or table the guard after it (where its overruns go).
    if (kind != Kind::stack) {
        if (offset < area.guard)
            return std::nullopt; // the guard before the first slot
        offset -= area.guard;
    }
    size_t index = offset / area.stride;
    if (index >= area.count)
        return std::nullopt; // the guard after the last stack
    return SlotIndex{kind, static_cast<uint32_t>(index)};
}

std::byte *Pool::slot_base(SlotIndex index) const {
    return impl_->areas[static_cast<int>(index.kind)].base(index.value);
}

Pool *Pool::owner_of(Kind kind, const void *p) {
    for (auto &registered : g_pools) {
        Pool *pool = registered.load(std::memory_order_acquire);
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
    }
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
