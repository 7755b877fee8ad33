// SPDX-License-Identifier: MIT
// A pooling instance allocator: slots for linear memories, tables and fiber
// stacks, reset on release by a policy and, when the policy decommits,
// through per-shard queues flushed with one madvisev() call per batch, off
// the request path by a flusher thread.
//
// The reset is the boundary between tenants: after release(), nothing the
// slot's user wrote is readable by the next user, whatever the kernel did
// with the pages meanwhile (reclaim, swap).  A caller that breaks the
// slot life cycle (releases twice, releases what it does not hold, or
// through the wrong pool) is stopped with abort() and a message naming the
// slot: that bug must not become one tenant reading another's memory.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace wasmpool {

enum class Kind : uint8_t { memory = 0, table = 1, stack = 2 };
inline constexpr int kKinds = 3;
const char *kind_name(Kind k);

// How a released slot is made safe for its next user.
enum class Reset : uint8_t {
    // Queue the slot's whole extent for MADV_DONTNEED.
    decommit,
    // memset() the first keep_resident_bytes, decommit the rest (Wasmtime's
    // *_keep_resident).  Ignores the resident budget.
    keep_resident,
    // The default.  Find the pages that can hold data (PAGEMAP_SCAN:
    // present, not the shared zero page, or swapped out); zero the present
    // ones in place and decommit the swapped ones in the next batch, while
    // the pool's resident memory stays within resident_budget_bytes; past
    // the budget, or where the kernel cannot say, decommit the slot.
    adaptive,
    // INSECURE: no reset at all; the next user sees stale data.  Exists as
    // the benchmark's upper bound only.
    none,
};
const char *reset_name(Reset r);

struct Config {
    size_t memory_slots = 64;
    // Address space per memory slot.  wasm2c's signal-handler bounds checks
    // rely on 8 GiB behind each memory's base (4 GiB + guard).
    size_t memory_reservation = size_t{8} << 30;
    size_t table_slots = 64;
    size_t table_bytes = size_t{64} << 10; // a guard page follows each
    size_t stack_slots = 64;
    size_t stack_bytes = size_t{256} << 10; // a guard page lies below each

    Reset reset = Reset::adaptive;
    size_t keep_resident_bytes = 0;       // memories and tables
    size_t stack_keep_resident_bytes = 0; // stacks (from their top)
    // Budget for memory kept resident in free slots by Reset::adaptive; 0
    // means the default (RAM / 16, between 16 MiB and 1 GiB).  Reserved
    // atomically: concurrent releases never overrun it.
    size_t resident_budget_bytes = 0;
    // Free slots of each kind that may keep resident (zeroed) pages, as
    // Wasmtime's max_unused_warm_slots; the flusher decommits the oldest
    // beyond it.
    size_t max_warm_slots = 100;
    // A free slot that has stayed warm this long is decommitted by the
    // flusher, returning its share of the budget (0: never).
    unsigned warm_idle_ms = 1000;

    // Instances per decommit flush: a shard's queue is flushed with one
    // madvisev() call when it holds this many memories (the tables and
    // stacks queued with them go in the same call), or 3x as many slots of
    // any kind.  1 means decommit at release, on the caller's thread.
    size_t batch_size = 32;
    // Flush full queues on a flusher thread owned by the pool, so that no
    // release() waits for a system call; it also ages warm slots every
    // flush_interval_ms.  A partial queue is flushed by a thread that finds
    // no free slot, when its thread exits, at destruction and by flush().
    // false: release() flushes a full queue.
    bool background_flush = true;
    unsigned flush_interval_ms = 100;
    // Per-thread shards of queues and free lists (at most 16, as in
    // Wasmtime); false is one queue and one free list under one lock.
    bool sharded = true;
    size_t shards = 0; // 0: one per CPU, at most 16
    // libmadvisev backend for decommits (MADVISEV_BACKEND_*; 0 = auto).
    int backend = 0;
    // Adaptive: ask PAGEMAP_SCAN which pages hold data.  false (or a
    // kernel without it, before 6.7) decommits every adaptive reset.
    bool pagemap_scan = true;

    // Test hooks, to inject failures.  decommit_hook replaces madvisev()
    // for decommits; remap_hook replaces the mmap(MAP_FIXED) that cleans a
    // slot whose decommit failed (return MAP_FAILED to fail it).
    std::function<ssize_t(const iovec *iov, size_t n)> decommit_hook;
    std::function<void *(void *addr, size_t len, int prot)> remap_hook;
};

struct Stats {
    uint64_t acquired = 0;
    uint64_t released = 0;
    uint64_t zeroed_in_place = 0;    // resets done by memset
    uint64_t decommitted = 0;        // slots reset by MADV_DONTNEED
    uint64_t decommit_calls = 0;     // madvisev() calls made
    uint64_t swapped_resets = 0;     // in-place resets that also dropped swapped pages
    uint64_t flushes_on_empty = 0;   // queue flushed because no slot was free
    uint64_t background_flushes = 0; // flushes made by the flusher thread
    uint64_t aged_out = 0;           // warm slots decommitted for age or the warm cap
    uint64_t steals = 0;             // slots taken from another shard
    uint64_t remapped = 0;           // decommit failed: fresh memory mapped over the slot
    uint64_t quarantined = 0;        // that failed too: never reused
    uint64_t exhausted = 0;          // acquire() found nothing
    size_t resident_bytes = 0;       // kept resident by in-place resets
    size_t resident_budget = 0;
    size_t warm_slots = 0; // free slots holding resident pages
};

class Pool {
  public:
    // Throws std::system_error when the reservations cannot be made (or
    // the flusher thread not started), std::invalid_argument for an
    // inconsistent configuration, and std::length_error when the process
    // already has kMaxPools pools.
    explicit Pool(Config cfg);
    // Stops the flusher; any slot still leased is the caller's bug and its
    // memory goes with the pool.
    ~Pool();
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    static constexpr int kMaxPools = 64;

    struct Lease {
        Kind kind;
        uint32_t index;
        uint32_t generation; // the slot's acquire count: a stale lease is caught
        std::byte *base;     // for a stack: its lowest usable address
        size_t capacity;     // bytes the slot can make accessible
    };

    // A slot of @kind with the first @bytes accessible (read-write) and
    // reading zero.  @key names the module: a free slot that last held the
    // same key is preferred, so its accessible size usually matches.
    // nullopt, with errno ENOMEM, when every slot is in use, EINVAL when
    // @bytes exceeds a slot.
    std::optional<Lease> acquire(Kind kind, uint64_t key, size_t bytes);
    // Make the first @bytes of a leased slot accessible (grow only).
    // False for an index out of range, a size beyond the slot or an
    // mprotect() failure; aborts if the slot is not leased.
    bool grow(Kind kind, uint32_t index, size_t bytes);
    // Give a slot back; it is reset per the policy before reuse.  Aborts
    // unless @lease is this pool's and its slot is leased under the same
    // generation (a double release, a stale lease, a foreign lease).
    void release(const Lease &lease);
    // The same for a caller that kept only the slot's base (wasm2c keeps
    // a memory's data pointer): aborts unless @base is the base of a
    // leased slot of @kind in this pool.
    void release_base(Kind kind, const void *base);
    // Flush the calling thread's decommit queue (every shard's if @all),
    // on this thread; returns when the slots are free again.
    void flush(bool all = false);

    // The slot of @kind that @p points into, if any.
    std::optional<uint32_t> locate(Kind kind, const void *p) const;
    // The live pool whose @kind slots hold @p, if any.
    static Pool *owner_of(Kind kind, const void *p);

    Stats stats() const;
    const Config &config() const;
    size_t slot_count(Kind kind) const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

} // namespace wasmpool
