// SPDX-License-Identifier: MIT
// The reset queues and their flushes: per-shard queues of released slots, one
// madvisev() call per batch, and the flusher thread that also ages warm slots.
#include "wasmpool/pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <utility>
#include <vector>

#include "pool_impl.h"

namespace wasmpool {

using namespace detail;

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
        timespec cpu{};
        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
            flusher_cpu_ns.store(static_cast<uint64_t>(cpu.tv_sec) * 1000000000u +
                                     static_cast<uint64_t>(cpu.tv_nsec),
                                 std::memory_order_relaxed);
        lk.lock();
    }
    lk.unlock();
    flush_shards(all); // nothing is left queued at destruction
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

} // namespace wasmpool
