// SPDX-License-Identifier: MIT
// The memories and tables the stock runtime serves (stock mode, or a pool's
// fallback): what a free may hand it, and where its memories' reservations
// lie for the fault handler.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "wasm-rt-pooled-internal.h"

namespace wasm_rt_pooled_internal {

namespace {

// The stock runtime's live memory reservations (8 GiB each), so that a
// fault in one is known for a guest's.  Lock-free, read by the handler.
// Past kStockSlots live at once, any access fault on an armed thread
// counts as one (g_stock_overflow), as in the stock runtime.
constexpr size_t kStockSlots = 1024;
constexpr uintptr_t kStockReservation = uintptr_t{8} << 30;
std::atomic<uintptr_t> g_stock_bases[kStockSlots];
std::atomic<bool> g_stock_overflow{false};

// Every memory and table the stock runtime serves now, by data pointer:
// what a free may hand it.  Anything else (a double free, a free of a
// memory from a pool destroyed since) would reach munmap() or free() with
// an address that is someone else's by now.
std::mutex g_stock_lock;
std::unordered_set<uintptr_t> g_stock_held;

} // namespace

void stock_held(const void *data) {
    std::lock_guard<std::mutex> g(g_stock_lock);
    g_stock_held.insert(reinterpret_cast<uintptr_t>(data));
}

// Forget @data, or stop the process when the stock runtime does not hold it.
void stock_give_back(const void *data, const char *what) {
    {
        std::lock_guard<std::mutex> g(g_stock_lock);
        if (g_stock_held.erase(reinterpret_cast<uintptr_t>(data)) == 1)
            return;
    }
    fprintf(stderr,
            "wasm-rt-pooled: free of a %s at %p that no pool and not the stock runtime holds "
            "(freed twice, or from a pool destroyed since); stopping before it reaches another "
            "tenant's memory\n",
            what, data);
    abort();
}

void stock_memory_served(const void *base) {
    stock_held(base);
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t empty = 0;
        if (slot.compare_exchange_strong(empty, b))
            return;
    }
    g_stock_overflow.store(true);
}

void stock_memory_freed(const void *base) {
    stock_give_back(base, "memory");
    auto b = reinterpret_cast<uintptr_t>(base);
    for (auto &slot : g_stock_bases) {
        uintptr_t mine = b;
        if (slot.compare_exchange_strong(mine, 0))
            return;
    }
}

bool in_stock_memory(const void *addr) {
    auto a = reinterpret_cast<uintptr_t>(addr);
    for (const auto &slot : g_stock_bases) {
        uintptr_t b = slot.load(std::memory_order_relaxed);
        if (b && a >= b && a - b < kStockReservation)
            return true;
    }
    return false;
}
bool stock_memories_overflowed() {
    return g_stock_overflow.load(std::memory_order_relaxed);
}

} // namespace wasm_rt_pooled_internal
