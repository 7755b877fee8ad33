// SPDX-License-Identifier: MIT
// Handing slots out and taking them back: acquire(), grow and release, by
// Lease or by base (the raw path), and the checks that stop a misused lease.
#include "wasmpool/pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "pool_impl.h"

namespace wasmpool {

using namespace detail;

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
        if (got || (pass >= 1 && impl.every_slot_held(kind)))
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

} // namespace wasmpool
