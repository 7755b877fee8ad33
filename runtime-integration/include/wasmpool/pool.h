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

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace wasmpool {

enum class Kind : uint8_t { memory = 0, table = 1, stack = 2 };
inline constexpr int kKinds = 3;
const char *kind_name(Kind k);

// A slot of one kind: the kind travels with the number, so an index of a
// table slot cannot be passed where a memory's is meant.
struct SlotIndex {
    Kind kind;
    uint32_t value;
    friend bool operator==(const SlotIndex &, const SlotIndex &) = default;
};

inline constexpr size_t kWasmPageBytes = 65536;
// Runs of data pages one keep_resident_scan reset zeroes at most (the
// fixed region array of Wasmtime's scan).
inline constexpr size_t kKeepScanRuns = 32;
// wasm32's largest memory: 65536 wasm pages.
inline constexpr size_t kWasm32MaxBytes = size_t{1} << 32;
// How far past a memory's base wasm2c's signal-handler-mode code can
// reach: it computes base + (u64)u32_address + u32_offset and checks
// nothing, and its widest access (v128) is 16 bytes.  Every byte below
// base + kSignalHandlerReach must be the memory's own slot or its guard.
// (Just over 8 GiB: the stock runtime's 8 GiB reservation is 14 bytes
// short.)
inline constexpr size_t kSignalHandlerReach = 2 * (kWasm32MaxBytes - 1) + 16;

// What the code using a pool's memories checks before an access.
enum class Bounds : uint8_t {
    // Nothing: wasm2c in signal-handler mode (Debian 1.0.32's default) or
    // any code that relies on a fault past the accessible size.  The pool
    // refuses a layout with less than kSignalHandlerReach bytes reserved
    // behind each memory's base.
    guard_pages,
    // Every access is checked against the memory's size by its user
    // (wasm2c with WASM_RT_MEMCHECK_SIGNAL_HANDLER=0, or a test): any guard
    // of at least a page will do.
    checked,
};

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
    // Where the kernel clears in place (madvisev_zero_native()), the pages
    // the scan found, present and swapped alike, are cleared by one
    // madvisev(MADVISEV_ZERO) call made at once by the releasing thread
    // (no IPI, no batch to wait for, the pages still in its cache); the
    // tiniest slots are still zeroed with memset().
    adaptive,
    // Queue the slot's whole used extent (memories, tables and stacks
    // alike) and clear a whole batch of slots with one
    // madvisev(MADVISEV_ZERO) call: in place by the kernel where it can
    // (no TLB flush, no refault: the pages stay resident), else by
    // libmadvisev's emulation (PAGEMAP_SCAN, memset, swapped pages
    // dropped).  The pages stay resident, outside the resident budget as
    // with keep_resident; aging (warm_idle_ms, max_warm_slots) decommits
    // idle slots.  A failed call is handled as a failed decommit: the
    // slot is cleared alone, else mapped afresh, else quarantined.
    zero_in_place,
};
const char *reset_name(Reset r);

// Layout: one PROT_NONE reservation per kind,
//   [guard][slot 0][guard][slot 1][guard] ... [slot n-1][guard]
// so every slot has at least a guard of its kind's guard size directly
// before and after it.  Slots start a whole number of page-table spans
// apart (2 MiB with 4 KiB pages; the guards grow to fill the gap), so no
// two share a page-table page or its lock.  A slot's size is the most it
// can make accessible.  Every size must be a multiple of the page size,
// and every guard at least a page.
struct Config {
    size_t memory_slots = 64;
    // The most a memory can make accessible: at most kWasm32MaxBytes.
    size_t memory_max_bytes = kWasm32MaxBytes;
    // With memory_max_bytes, the address space behind each memory's base;
    // the default covers kSignalHandlerReach (rounded up to a wasm page).
    size_t memory_guard_bytes = kWasm32MaxBytes + kWasmPageBytes;
    Bounds memory_bounds = Bounds::guard_pages;
    size_t table_slots = 64;
    // The most a table can make accessible (elements * element size).
    size_t table_bytes = size_t{64} << 10;
    size_t table_guard_bytes = size_t{64} << 10;
    size_t stack_slots = 64;
    size_t stack_bytes = size_t{256} << 10;
    // Below each stack: an overflow faults here rather than writing into
    // the stack below.
    size_t stack_guard_bytes = size_t{64} << 10;

    Reset reset = Reset::adaptive;
    size_t keep_resident_bytes = 0;       // memories and tables
    size_t stack_keep_resident_bytes = 0; // stacks (from their top)
    // With Reset::keep_resident, memories and tables: instead of the first
    // keep_resident_bytes, zero the pages PAGEMAP_SCAN finds holding data
    // (present, not the shared zero page, or swapped out), in address
    // order, until keep_resident_bytes are zeroed or kKeepScanRuns runs
    // taken; decommit the slot from where that stopped.  Wasmtime's reset
    // with its pagemap_scan option, except that swapped-out pages count as
    // data here too.  Where the kernel cannot scan, the plain keep_resident
    // reset.
    bool keep_resident_scan = false;
    // false: a released stack is not reset at all, as Wasmtime's default
    // (async_stack_zeroing off).  Only for code that never reads stack
    // memory it did not write: wasm2c's code zero-initialises every wasm
    // local, but host functions called on the fiber see the frames the
    // previous tenant left there.
    bool reset_stacks = true;
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
};

namespace testing {
struct Access; // src/pool_testing.h: fault injection for the tests
}

struct Stats {
    uint64_t acquired = 0;
    uint64_t released = 0;
    uint64_t zeroed_in_place = 0;    // resets done in place (memset, MADVISEV_ZERO)
    uint64_t decommitted = 0;        // slots reset by MADV_DONTNEED
    uint64_t decommit_calls = 0;     // madvisev() calls made
    uint64_t zero_calls = 0;         // madvisev(MADVISEV_ZERO) calls made (not in decommit_calls)
    uint64_t swapped_resets = 0;     // in-place resets that also dropped swapped pages
    uint64_t flushes_on_empty = 0;   // queue flushed because no slot was free
    uint64_t background_flushes = 0; // flushes made by the flusher thread
    uint64_t aged_out = 0;           // warm slots decommitted for age or the warm cap
    uint64_t steals = 0;             // slots taken from another shard
    uint64_t remapped = 0;           // decommit failed: fresh memory mapped over the slot
    uint64_t quarantined = 0;        // that failed too: never reused
    uint64_t exhausted = 0;          // acquire() found nothing
    // Where release() and the flusher spend their time, in nanoseconds
    // (steady clock, the calls themselves: what they wait for included).
    uint64_t reset_ns = 0;       // release()'s reset of slots, all of it
    uint64_t scan_ns = 0;        // asking the kernel which pages hold data
    uint64_t zero_ns = 0;        // madvisev(MADVISEV_ZERO) calls
    uint64_t decommit_ns = 0;    // madvisev() decommit calls, on any thread
    uint64_t flusher_cpu_ns = 0; // the flusher thread's CPU time
    size_t resident_bytes = 0;   // kept resident by in-place resets
    size_t resident_budget = 0;
    size_t warm_slots = 0; // free slots holding resident pages
};

class Pool {
  public:
    // Throws std::invalid_argument, with one line naming the field, for a
    // configuration the pool cannot serve safely (see Config and Bounds),
    // std::overflow_error when the layout's arithmetic would overflow,
    // std::system_error when the reservations cannot be made (or the
    // flusher thread not started), and std::length_error when the process
    // already has kMaxPools pools.
    explicit Pool(Config cfg);
    // Stops the flusher.  Every slot must have been released (every Lease
    // gone, every detached base given back): a slot still leased stops the
    // process with a message naming it, since its holder would otherwise
    // release it into whatever is mapped there next.
    ~Pool();
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    static constexpr int kMaxPools = 64;

    // Owns one leased slot and gives it back exactly once: at destruction,
    // or earlier by release() or Pool::release(std::move(lease)).  Move-only;
    // a moved-from, released or detached lease is empty: it owns nothing,
    // but its accessors still name the slot it held.  Unlike
    // unique_ptr::release(), release() here returns the slot to the pool;
    // detach() is what gives up ownership.
    class Lease {
      public:
        Lease() = default;
        Lease(Lease &&other) noexcept;
        Lease &operator=(Lease &&other) noexcept; // releases what it held
        Lease(const Lease &) = delete;
        Lease &operator=(const Lease &) = delete;
        ~Lease();

        explicit operator bool() const { return pool_ != nullptr; }
        Pool *pool() const { return pool_; }
        SlotIndex index() const { return index_; }
        Kind kind() const { return index_.kind; }
        // The slot's acquire count: a stale lease is caught.
        uint32_t generation() const { return generation_; }
        // The lowest usable address (for a stack too: it grows down from
        // base() + capacity()).
        std::byte *base() const { return base_; }
        // Bytes the slot can make accessible.
        size_t capacity() const { return capacity_; }

        // Pool::grow() of this slot, which also aborts if the slot was
        // leased again since this lease's generation; false when empty.
        bool grow(size_t bytes);
        // Give the slot back now.  Aborts on an empty lease: the caller
        // thinks it holds a slot it does not.
        void release();
        // The raw path, for a caller that can keep only the base (wasm2c
        // keeps a memory's data pointer): the lease becomes empty without
        // releasing, and the caller must call Pool::release_base() once,
        // presenting @owner: a non-zero value it keeps with the base (the
        // address of the struct that holds the base, or a token unique
        // among the slot's holders).  Aborts for an empty lease or owner 0.
        [[nodiscard]] std::byte *detach(uintptr_t owner);

      private:
        friend class Pool;
        friend struct testing::Access;
        Lease(Pool *pool, SlotIndex index, uint32_t generation, std::byte *base, size_t capacity)
            : pool_(pool), index_(index), generation_(generation), base_(base),
              capacity_(capacity) {}

        Pool *pool_ = nullptr;
        SlotIndex index_{Kind::memory, 0};
        uint32_t generation_ = 0;
        std::byte *base_ = nullptr;
        size_t capacity_ = 0;
    };

    // A slot of @kind with the first @bytes accessible (read-write) and
    // reading zero.  @key names the module: a free slot that last held the
    // same key is preferred, so its accessible size usually matches.
    // nullopt, with errno ENOMEM, when every slot is in use, EINVAL when
    // @bytes exceeds a slot (a table larger than table_bytes, a memory
    // larger than memory_max_bytes).
    std::optional<Lease> acquire(Kind kind, uint64_t key, size_t bytes);
    // Make the first @bytes of a leased slot accessible (grow only).
    // False for an index out of range, a size beyond the slot or an
    // mprotect() failure; aborts if the slot is not leased.
    bool grow(SlotIndex index, size_t bytes);
    // Give a slot back; it is reset per the policy before reuse.  Aborts
    // unless @lease is this pool's and its slot is leased under the same
    // generation (a double release, a stale lease, a foreign lease), or
    // if @lease is empty.
    void release(Lease &&lease);
    // Flush the calling thread's decommit queue (every shard's if @all),
    // on this thread; returns when the slots are free again.
    void flush(bool all = false);

    // The raw path, for callers that kept only a slot's base (see
    // Lease::detach()): wasm-rt-pooled uses these.  The owner given to
    // detach() tells a stale base (or a copy of its holder) from the
    // current lease of the same slot; a generation, where the caller kept
    // one, tells a stale holder at the same address.
    //
    // The slot of @kind whose region holds @p: a memory or table slot and
    // the guard after it, a stack slot and the guard below it.
    std::optional<SlotIndex> locate(Kind kind, const void *p) const;
    // The lowest usable address of a slot (a stack grows down to it).
    std::byte *slot_base(SlotIndex index) const;
    // The live pool whose @kind slots hold @p, if any.
    static Pool *owner_of(Kind kind, const void *p);
    // grow() by base: false where @base is not in this pool; aborts where
    // it is but is not the base of a slot leased to @owner.
    bool grow_base(Kind kind, const void *base, size_t bytes, uintptr_t owner);
    // release() by base: aborts, with a message naming the slot, unless
    // @base is the base of a slot of @kind in this pool leased to @owner
    // (under @generation, if given).
    void release_base(Kind kind, const void *base, uintptr_t owner,
                      std::optional<uint32_t> generation = std::nullopt);

    Stats stats() const;
    const Config &config() const;
    size_t slot_count(Kind kind) const;
    // The most a slot of @kind can make accessible (what acquire() and
    // grow() accept); the guard size of each kind is in config().
    size_t slot_capacity(Kind kind) const;

    struct Impl;

  private:
    friend struct testing::Access;
    std::unique_ptr<Impl> impl_;
};

} // namespace wasmpool
