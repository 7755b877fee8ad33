// SPDX-License-Identifier: MIT
// The pool's layout: the configuration's checks, the reservations (Impl's
// constructor and destructor), where a slot lies, and its state transitions.
#include "wasmpool/pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "pool_impl.h"

namespace wasmpool {

using namespace detail;

namespace {

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

// Impl::serial: no two pools of the process share one.
std::atomic<uint64_t> g_next_serial{1};

} // namespace

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
    // code relies on (validate() saw that it is large enough).  Slots lie
    // kTableSpan-aligned strides apart, the gap between two at least the
    // guard: no two slots share a page-table page, so a thread clearing or
    // scanning one slot under its page-table lock never holds up another
    // slot's user (which, with vCPUs preempted by their host while holding
    // that lock, cost whole host time slices).
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
        size_t used = checked_add(area.capacity, area.guard, name + " slot + guard");
        area.stride = checked_add(used, kTableSpan - 1, name + " stride") & ~(kTableSpan - 1);
        area.map_bytes =
            checked_add(area.guard, checked_mul(area.count, area.stride, name + " slots * stride"),
                        name + " reservation");
        checked_add(area.map_bytes, kTableSpan, name + " reservation, aligned");
    }

    auto unmap_all = [&] {
        for (Area &area : areas)
            if (area.map)
                munmap(area.map, area.map_bytes);
    };
    for (int k = 0; k < kKinds; k++) {
        Area &area = areas[k];
        area.slots = std::make_unique<Slot[]>(area.count);
        // Reserved with kTableSpan to spare, which is then given back:
        // what is left has its first slot's base kTableSpan-aligned.
        void *reserved = mmap(nullptr, area.map_bytes + kTableSpan, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (reserved != MAP_FAILED) {
            auto *got = static_cast<std::byte *>(reserved);
            auto first = reinterpret_cast<uintptr_t>(got) + area.guard;
            size_t head = ((first + kTableSpan - 1) & ~(kTableSpan - 1)) - first;
            size_t tail = kTableSpan - head;
            if (head)
                munmap(got, head);
            if (tail)
                munmap(got + head + area.map_bytes, tail);
            reserved = got + head;
        }
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
    return true;
}

// Asked only when acquire() found nothing (off the hot path: no count is
// kept per acquire and release): a slot neither leased nor quarantined is
// free, queued or being reset, and will be free again.
bool Pool::Impl::every_slot_held(Kind kind) const {
    const Area &area = areas[static_cast<int>(kind)];
    for (size_t i = 0; i < area.count; i++) {
        State st = state_of(area.slots[i].word.load(std::memory_order_acquire));
        if (st != State::leased && st != State::quarantined)
            return false;
    }
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

} // namespace wasmpool
