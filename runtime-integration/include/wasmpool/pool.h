// SPDX-License-Identifier: MIT
// A pooling instance allocator: slots for linear memories, tables and fiber
// stacks, reset on release by a policy and, when the policy decommits,
// through a per-thread queue flushed with one madvisev() call per batch.
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
    // Queue the slot's whole dirty extent for MADV_DONTNEED.
    decommit,
    // memset() the first keep_resident_bytes, decommit the rest (Wasmtime's
    // *_keep_resident).
    keep_resident,
    // The default.  Look at which pages are really resident (mincore) and
    // zero those in place while the pool's resident memory stays within
    // resident_budget_bytes; past the budget, decommit.
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
    // Budget for memory kept resident in idle slots by Reset::adaptive; 0
    // means the default (RAM / 16, between 16 MiB and 1 GiB).
    size_t resident_budget_bytes = 0;

    // Instances per decommit flush: a shard's queue is flushed with one
    // madvisev() call when it holds this many memories (the tables and
    // stacks queued with them go in the same call), or 3x as many slots of
    // any kind.  1 means decommit at release.
    size_t batch_size = 32;
    // Per-thread shards of queues and free lists (at most 16, as in
    // Wasmtime); false is one queue and one free list under one lock.
    bool sharded = true;
    size_t shards = 0; // 0: one per CPU, at most 16
    // libmadvisev backend for decommits (MADVISEV_BACKEND_*; 0 = auto).
    int backend = 0;

    // Test hook: replaces madvisev() for decommits, to inject failures.
    std::function<ssize_t(const iovec *iov, size_t n)> decommit_hook;
};

struct Stats {
    uint64_t acquired = 0;
    uint64_t released = 0;
    uint64_t zeroed_in_place = 0;  // resets done by memset
    uint64_t decommitted = 0;      // slots reset by MADV_DONTNEED
    uint64_t decommit_calls = 0;   // madvisev() calls made
    uint64_t flushes_on_empty = 0; // queue flushed because no slot was free
    uint64_t steals = 0;           // slots taken from another shard
    uint64_t quarantined = 0;      // slots whose reset failed: never reused
    uint64_t exhausted = 0;        // acquire() found nothing
    size_t resident_bytes = 0;     // kept resident by in-place resets
    size_t resident_budget = 0;
};

class Pool {
  public:
    // Throws std::system_error when the reservations cannot be made, and
    // std::invalid_argument for an inconsistent configuration.
    explicit Pool(Config cfg);
    ~Pool();
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    struct Lease {
        Kind kind;
        uint32_t index;
        std::byte *base; // for a stack: its lowest usable address
        size_t capacity; // bytes the slot can make accessible
    };

    // A slot of @kind with the first @bytes accessible (read-write) and
    // reading zero.  @key names the module: a free slot that last held the
    // same key is preferred, so its accessible size usually matches.
    // nullopt, with errno ENOMEM, when every slot is in use.
    std::optional<Lease> acquire(Kind kind, uint64_t key, size_t bytes);
    // Make the first @bytes of a leased slot accessible (grow only).
    bool grow(Kind kind, uint32_t index, size_t bytes);
    // Give a slot back; it is reset per the policy before reuse.
    void release(Kind kind, uint32_t index);
    // Flush the calling thread's decommit queue (every shard's if @all).
    void flush(bool all = false);

    // The slot of @kind that @p points into, if any.
    std::optional<uint32_t> locate(Kind kind, const void *p) const;

    Stats stats() const;
    const Config &config() const;
    size_t slot_count(Kind kind) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wasmpool
