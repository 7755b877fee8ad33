// SPDX-License-Identifier: MIT
// The pool's private header, for its own source files (pool*.cpp, which use
// namespace detail unqualified): a slot's state word, the per-kind
// reservations, the shards and their counters, and Pool::Impl.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "madvisev.h"
#include "pool_testing.h"
#include "wasmpool/pool.h"

namespace wasmpool::detail {

inline const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

inline size_t page_up(size_t bytes) {
    return (bytes + kPage - 1) & ~(kPage - 1);
}

// What one page-table page maps (2 MiB with 4 KiB pages): the span of one
// page-table lock.  Every slot lies in page-table pages of its own, so no
// reset or fault in one slot waits for a lock that another slot's holds.
// A page-table entry is 8 bytes on every 64-bit architecture Linux runs
// on; where one were smaller, a table page would map more than this and
// two slots could share a lock (slower, never less isolated: the slots'
// pages stay apart).
inline const size_t kTableSpan = kPage * (kPage / sizeof(uint64_t));

inline int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// A slot's life cycle.  Every change is a compare-and-swap of the slot's
// word (generation << 8 | state), so a transition from a state the slot
// is not in is seen, and stopped, however threads interleave.
enum class State : uint8_t { free, leased, resetting, queued, quarantined };

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
    size_t guard = 0;         // PROT_NONE bytes before and after every slot, at least
    size_t capacity = 0;      // usable bytes per slot
    size_t stride = 0;        // capacity + guard, rounded up to kTableSpan
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
        steals{0}, remapped{0}, quarantined{0}, exhausted{0}, reset_ns{0}, scan_ns{0}, zero_ns{0},
        decommit_ns{0};
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

inline void bump(std::atomic<uint64_t> &counter, uint64_t by = 1) {
    counter.fetch_add(by, std::memory_order_relaxed);
}

// Adds the time from its construction to its destruction to a counter.
class TimeInto {
  public:
    explicit TimeInto(std::atomic<uint64_t> &counter) : counter_(counter), start_(now_ns()) {}
    ~TimeInto() { bump(counter_, static_cast<uint64_t>(now_ns() - start_)); }
    TimeInto(const TimeInto &) = delete;
    TimeInto &operator=(const TimeInto &) = delete;

  private:
    std::atomic<uint64_t> &counter_;
    int64_t start_;
};

// This thread's number; its shard is this modulo the pool's shard count.
extern thread_local uint32_t t_thread;

// Notes that this thread used @pool, so that its exit flushes what it
// queued there (pool.cpp).
void note_pool_use(const Pool *pool, Pool::Impl *impl);

} // namespace wasmpool::detail

namespace wasmpool {

struct Pool::Impl {
    Config cfg;
    detail::Area areas[kKinds];
    // The test seam (pool_testing.h); empty and false in production.
    testing::DecommitHook decommit_hook;
    testing::ZeroHook zero_hook;
    testing::RemapHook remap_hook;
    bool skip_resets = false;
    std::vector<std::unique_ptr<detail::Shard>> shards;
    size_t budget = 0;
    std::atomic<size_t> resident{0};
    std::atomic<size_t> warm[kKinds]{}; // free slots with resident > 0, per kind
    // Tells this pool from a later one made at the same addresses.
    uint64_t serial = 0;

    std::mutex flusher_lock;
    std::condition_variable flusher_cv;
    bool flusher_stop = false, flusher_kicked = false;
    std::thread flusher;
    std::atomic<uint64_t> flusher_cpu_ns{0}; // updated after each of its rounds
    pid_t creator = getpid();
    // Whether MADVISEV_ZERO is the kernel's, as the pool was made: adaptive
    // batches its in-place resets only then.
    bool zero_native = madvisev_zero_native() == 1;

    explicit Impl(Config config);
    ~Impl();

    uint32_t my_shard_index() const { return detail::t_thread % shards.size(); }
    detail::Shard &my_shard() { return *shards[my_shard_index()]; }
    detail::Area &area_of(Kind kind) { return areas[static_cast<int>(kind)]; }
    detail::Slot &slot_at(Kind kind, uint32_t index) { return area_of(kind).slots[index]; }

    [[noreturn]] void misuse(const char *op, Kind kind, uint32_t index, uint64_t word,
                             const char *why);
    void transition(Kind kind, uint32_t index, detail::State from, detail::State to);

    bool take_free(detail::Shard &shard, Kind kind, uint64_t key, uint32_t *out);
    void make_free(Kind kind, uint32_t index);
    void release_slot(Kind kind, uint32_t index, uint32_t gen, const char *op);
    void enqueue(Kind kind, uint32_t index, const iovec *ranges, size_t count, bool whole,
                 bool zero = false);
    void enqueue_zero(Kind kind, uint32_t index);
    void enqueue_whole(Kind kind, uint32_t index);
    size_t flush_shards(const std::vector<detail::Shard *> &which,
                        std::vector<detail::Pending> extra = {},
                        std::vector<iovec> extra_ranges = {});
    void finish(detail::Shard &counted_in, const detail::Pending &pending, bool ok,
                const iovec *ranges);
    bool remap_clean(Kind kind, uint32_t index);
    ssize_t decommit(detail::Shard &counted_in, const iovec *iov, size_t count);
    ssize_t zero(detail::Shard &counted_in, const iovec *iov, size_t count);
    bool reserve_resident(detail::Slot &slot, size_t bytes);
    void set_resident(detail::Slot &slot, size_t bytes);
    bool reset_adaptive(Kind kind, uint32_t index);
    bool reset_keep_scanned(Kind kind, uint32_t index);
    bool grow_slot(Kind kind, uint32_t index, size_t bytes, std::optional<uint32_t> gen);
    std::optional<uint32_t> slot_at_base(const Pool &pool, Kind kind, const void *base,
                                         const char *op);
    // Every slot of @kind leased or quarantined: only then does acquire()
    // report exhaustion.
    bool every_slot_held(Kind kind) const;
    uint32_t check_owner(const char *op, Kind kind, uint32_t index, uintptr_t owner,
                         std::optional<uint32_t> generation);
    void kick();
    void thread_exit();
    void lock_all();
    void unlock_all();
    void flusher_main();
    void age_warm(std::vector<detail::Pending> &out, std::vector<iovec> &ranges, bool idle);
};

} // namespace wasmpool
