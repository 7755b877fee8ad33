// SPDX-License-Identifier: MIT
// What a released slot goes through before its next user: release_slot() and
// the reset policies, the resident budget they keep within, the decommit and
// zero calls, and the fresh mapping over a slot whose reset failed.
#include "wasmpool/pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "madvisev.hpp"
#include "pool_impl.h"

namespace wasmpool {

using namespace detail;

namespace {

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

} // namespace

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
    TimeInto timed(counted_in.counters.decommit_ns);
    if (decommit_hook)
        return decommit_hook(iov, count);
    return madvisev_via(cfg.backend, iov, count, MADV_DONTNEED, 0);
}

ssize_t Pool::Impl::zero(Shard &counted_in, const iovec *iov, size_t count) {
    bump(counted_in.counters.zero_calls);
    TimeInto timed(counted_in.counters.zero_ns);
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
    Shard &shard = my_shard(); // the releasing thread's: its counters, its zeroing
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
    int scanned;
    {
        TimeInto timed(shard.counters.scan_ns);
        scanned = madv::scan_data(base, len, runs);
    }
    if (scanned != 0)
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
    Counters &counters = shard.counters;
    if (dense && zero_native) {
        // The kernel clears what is present and drops what is swapped, in
        // one call and with no IPI: done now, by the thread that freed the
        // slot, while its pages are still in this CPU's cache.  A failed
        // call leaves data behind: decommit the whole slot instead.
        iovec whole{base, extent};
        if (zero(shard, &whole, 1) != static_cast<ssize_t>(extent))
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
            zero(shard, swapped.data(), swapped.size()) != static_cast<ssize_t>(want_bytes))
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
    ssize_t found = -1;
    if (cfg.pagemap_scan && len > 0) {
        TimeInto timed(my_shard().counters.scan_ns);
        found = madvisev_scan_data(base, len, runs, kKeepScanRuns, &next, 0);
    }
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

    Area &area = area_of(kind);
    std::byte *base = area.base(index);
    size_t extent = slot.extent;
    // A released slot joins the releasing thread's shard: its queue, then
    // its free list.
    slot.shard = my_shard_index();
    Counters &counters = my_shard().counters;
    bump(counters.released);
    TimeInto timed(counters.reset_ns);
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

} // namespace wasmpool
