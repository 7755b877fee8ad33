// SPDX-License-Identifier: MIT
// The pool's layout against what its users assume: wasm2c's unchecked
// accesses reach just over 8 GiB behind a memory's base, every slot has a
// PROT_NONE guard before and after it, a stack's guard lies directly below
// its lowest usable address, and a configuration that breaks any of it is
// refused before anything is mapped.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool_test_util.h"
#include "wasmpool/pool.h"

using wasmpool::Bounds;
using wasmpool::Config;
using wasmpool::Kind;
using wasmpool::Pool;

namespace {

using pool_test::kPage;

constexpr size_t kGiB = size_t{1} << 30;

// Small slots, unchecked memories off: tests that need the real layout
// set it back.
Config small() {
    Config c;
    c.memory_slots = c.table_slots = c.stack_slots = 4;
    c.memory_max_bytes = 16 * kPage;
    c.memory_guard_bytes = 4 * kPage;
    c.memory_bounds = Bounds::checked;
    c.table_bytes = 4 * kPage;
    c.table_guard_bytes = 2 * kPage;
    c.stack_bytes = 8 * kPage;
    c.stack_guard_bytes = 3 * kPage;
    return c;
}

// The message the pool refused @c with, if it threw @Error; a failure if
// it accepted it or threw anything else.
template <class Error>
std::string refusal(const Config &c) {
    try {
        Pool pool(c);
    } catch (const Error &e) {
        return e.what();
    } catch (const std::exception &e) {
        ADD_FAILURE() << "refused with the wrong exception: " << e.what();
        return "";
    }
    ADD_FAILURE() << "accepted";
    return "";
}

bool contains(const std::string &text, const std::string &part) {
    return text.find(part) != std::string::npos;
}

// The protection ("rw-p", "---p") of the mapping that holds @p, from
// /proc/self/maps; "" where nothing is mapped.
std::string perms_at(const void *p) {
    auto at = reinterpret_cast<uintptr_t>(p);
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
        uintptr_t lo = 0, hi = 0;
        char perms[8] = {};
        if (sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && at >= lo && at < hi)
            return perms;
    }
    return "";
}

// --- Refusals: each names the field and stops before anything is mapped.

TEST(LayoutRefusal, GuardShortOfWhatUncheckedCodeReaches) {
    Config c;
    c.memory_slots = 1;
    // 8 GiB, as the stock runtime reserves: 14 bytes short of the
    // furthest byte an unchecked v128 access can touch.
    c.memory_guard_bytes = 4 * kGiB;
    EXPECT_PRED2(contains, refusal<std::invalid_argument>(c),
                 "memory_max_bytes + memory_guard_bytes (8589934592) is less than the "
                 "8589934606 bytes");
    c.memory_max_bytes = kGiB; // less accessible leaves no more guard
    c.memory_guard_bytes = 4 * kGiB;
    EXPECT_PRED2(contains, refusal<std::invalid_argument>(c), "memory_guard_bytes");
    // The same layout for code that checks its own accesses is fine.
    c.memory_bounds = Bounds::checked;
    EXPECT_NO_THROW(Pool{c});
}

TEST(LayoutRefusal, MemoryLargerThanWasm32) {
    Config c = small();
    c.memory_max_bytes = 4 * kGiB + kPage;
    EXPECT_PRED2(contains, refusal<std::invalid_argument>(c),
                 "memory_max_bytes (4294971392) exceeds wasm32's 4 GiB");
}

TEST(LayoutRefusal, ZeroSlots) {
    for (size_t Config::*field :
         {&Config::memory_slots, &Config::table_slots, &Config::stack_slots}) {
        Config c = small();
        c.*field = 0;
        EXPECT_PRED2(contains, refusal<std::invalid_argument>(c),
                     " is 0: every kind needs at least one slot");
    }
}

TEST(LayoutRefusal, MoreSlotsThanAnIndexHolds) {
    Config c = small();
    c.table_slots = size_t{1} << 32;
    EXPECT_PRED2(contains, refusal<std::invalid_argument>(c),
                 "table_slots (4294967296) exceeds 2^32 - 1");
}

TEST(LayoutRefusal, SizesThatAreNotWholePages) {
    const std::map<std::string, size_t Config::*> fields = {
        {"memory_max_bytes", &Config::memory_max_bytes},
        {"memory_guard_bytes", &Config::memory_guard_bytes},
        {"table_bytes", &Config::table_bytes},
        {"table_guard_bytes", &Config::table_guard_bytes},
        {"stack_bytes", &Config::stack_bytes},
        {"stack_guard_bytes", &Config::stack_guard_bytes},
    };
    for (const auto &[name, field] : fields) {
        for (size_t bad : {size_t{0}, kPage + 8, kPage / 2}) {
            Config c = small();
            c.*field = bad;
            std::string want =
                name + " (" + std::to_string(bad) + ") must be a nonzero multiple of the page size";
            EXPECT_PRED2(contains, refusal<std::invalid_argument>(c), want);
        }
    }
}

TEST(LayoutRefusal, ArithmeticThatWouldOverflow) {
    // memory_max_bytes + memory_guard_bytes.
    Config c = small();
    c.memory_guard_bytes = SIZE_MAX & ~(kPage - 1);
    EXPECT_PRED2(contains, refusal<std::overflow_error>(c), "overflows");
    // A slot and its guard.
    c = small();
    c.stack_guard_bytes = SIZE_MAX & ~(kPage - 1);
    EXPECT_PRED2(contains, refusal<std::overflow_error>(c), "stack slot + guard");
    // stride * slots: 2^32 - 1 memories of just over 8 GiB each.
    c = small();
    c.memory_slots = UINT32_MAX;
    c.memory_max_bytes = 4 * kGiB;
    c.memory_guard_bytes = 4 * kGiB + 65536;
    c.memory_bounds = Bounds::guard_pages;
    EXPECT_PRED2(contains, refusal<std::overflow_error>(c), "memory slots * stride");
    // A slot and its guard fit, rounded up to a page-table span they do not.
    c = small();
    c.stack_bytes = (SIZE_MAX & ~(kPage - 1)) - kPage;
    c.stack_guard_bytes = kPage;
    EXPECT_PRED2(contains, refusal<std::overflow_error>(c), "stack stride");
    // The leading guard on top of slots * stride.
    c = small();
    const size_t span = kPage * (kPage / 8);
    c.table_slots = 2; // 2 * (2^62 - span + 2^62) fits, 2^62 more does not
    c.table_bytes = (size_t{1} << 62) - span;
    c.table_guard_bytes = size_t{1} << 62;
    EXPECT_PRED2(contains, refusal<std::overflow_error>(c), "table reservation");
}

// --- The layout itself.

// The default configuration serves wasm2c's unchecked code: every byte up
// to kSignalHandlerReach behind a memory's base is its own slot or guard,
// and none of it is accessible beyond the memory's size.
TEST(Layout, DefaultLeavesUncheckedCodeItsReach) {
    Config c;
    c.memory_slots = 2;
    Pool pool(c);
    auto first = pool.acquire(Kind::memory, 1, wasmpool::kWasmPageBytes);
    auto second = pool.acquire(Kind::memory, 1, wasmpool::kWasmPageBytes);
    ASSERT_TRUE(first && second);
    for (const auto *lease : {&*first, &*second}) {
        std::byte *base = lease->base();
        std::byte *last = base + wasmpool::kSignalHandlerReach - 1;
        EXPECT_EQ(pool.locate(Kind::memory, last), lease->index()) << "another slot is in reach";
        EXPECT_EQ(perms_at(base), "rw-p");
        EXPECT_EQ(perms_at(base + wasmpool::kWasmPageBytes), "---p");
        EXPECT_EQ(perms_at(base + wasmpool::kWasm32MaxBytes), "---p");
        EXPECT_EQ(perms_at(last), "---p");
    }
}

// Every slot of every kind, made accessible in full, has PROT_NONE
// directly before its base and directly after its last usable byte, a
// guard of its kind's size each side.
TEST(Layout, GuardBeforeAndAfterEverySlot) {
    Config c = small();
    Pool pool(c);
    const size_t guard[] = {c.memory_guard_bytes, c.table_guard_bytes, c.stack_guard_bytes};
    for (Kind kind : {Kind::memory, Kind::table, Kind::stack}) {
        size_t capacity = pool.slot_capacity(kind);
        size_t g = guard[static_cast<int>(kind)];
        std::vector<Pool::Lease> held;
        while (auto lease = pool.acquire(kind, 1, kind == Kind::stack ? 0 : capacity))
            held.push_back(std::move(*lease));
        ASSERT_EQ(held.size(), 4u);
        for (const Pool::Lease &lease : held) {
            std::byte *base = lease.base();
            SCOPED_TRACE(std::string(wasmpool::kind_name(kind)) + " slot " +
                         std::to_string(lease.index().value));
            EXPECT_EQ(lease.capacity(), capacity);
            EXPECT_EQ(perms_at(base - g), "---p");
            EXPECT_EQ(perms_at(base - 1), "---p");
            EXPECT_EQ(perms_at(base), "rw-p");
            EXPECT_EQ(perms_at(base + capacity - 1), "rw-p");
            EXPECT_EQ(perms_at(base + capacity), "---p");
            EXPECT_EQ(perms_at(base + capacity + g - 1), "---p");
        }
    }
}

class LayoutDeath : public ::testing::Test {
  protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The same, by touching them: one byte before a slot's base, and one
// after its last usable byte, faults.
TEST_F(LayoutDeath, WriteJustBeforeOrAfterASlotFaults) {
    for (Kind kind : {Kind::memory, Kind::table, Kind::stack}) {
        SCOPED_TRACE(wasmpool::kind_name(kind));
        Pool pool(small());
        size_t capacity = pool.slot_capacity(kind);
        auto lease = pool.acquire(kind, 1, kind == Kind::stack ? 0 : capacity);
        ASSERT_TRUE(lease);
        volatile std::byte *base = lease->base();
        base[0] = std::byte{1};
        base[capacity - 1] = std::byte{1};
        EXPECT_DEATH(base[-1] = std::byte{1}, "");
        EXPECT_DEATH(base[capacity] = std::byte{1}, "");
    }
}

// What the stack-overflow handling relies on: a lease's base is the
// stack's lowest usable address, at least stack_guard_bytes below it are
// PROT_NONE, and everything down to the top of the slot below is too.
TEST(Layout, StackGuardLiesBetweenAStackAndTheOneBelow) {
    Config c = small();
    c.stack_guard_bytes = 32 * kPage; // not the default: the configured size is used
    Pool pool(c);
    std::map<uint32_t, Pool::Lease> by_index;
    while (auto lease = pool.acquire(Kind::stack, 1, 0))
        by_index.emplace(lease->index().value, std::move(*lease));
    ASSERT_EQ(by_index.size(), 4u);
    for (uint32_t i = 1; i < 4; i++) {
        std::byte *base = by_index.at(i).base();
        const Pool::Lease &below = by_index.at(i - 1);
        std::byte *below_top = below.base() + below.capacity();
        EXPECT_LE(below_top, base - c.stack_guard_bytes) << "slot " << i;
        EXPECT_EQ(perms_at(base - c.stack_guard_bytes), "---p");
        EXPECT_EQ(perms_at(below_top), "---p") << "the whole gap is guard";
        EXPECT_EQ(perms_at(below_top - 1), "rw-p") << "the top of the stack below";
        // A fault in the guard is the stack above's overflow.
        EXPECT_EQ(pool.locate(Kind::stack, base - 1), by_index.at(i).index());
    }
    EXPECT_EQ(Config{}.stack_guard_bytes, size_t{64} << 10);
}

// No two slots of a kind share a page-table page (the span one maps:
// kPage * kPage / 8), so no two slots' users share a page-table lock; the
// gap between two slots is all PROT_NONE.
TEST(Layout, EverySlotHasPageTablesOfItsOwn) {
    Config c = small();
    c.stack_slots = c.table_slots = 8; // small slots: several would fit one span
    Pool pool(c);
    const uintptr_t span = kPage * (kPage / 8);
    for (Kind kind : {Kind::memory, Kind::table, Kind::stack}) {
        SCOPED_TRACE(wasmpool::kind_name(kind));
        size_t capacity = pool.slot_capacity(kind);
        std::map<uint32_t, Pool::Lease> by_index;
        while (auto lease = pool.acquire(kind, 1, kind == Kind::stack ? 0 : capacity))
            by_index.emplace(lease->index().value, std::move(*lease));
        ASSERT_GE(by_index.size(), 4u);
        for (uint32_t i = 1; i < by_index.size(); i++) {
            auto first = reinterpret_cast<uintptr_t>(by_index.at(i).base());
            auto below_last = reinterpret_cast<uintptr_t>(by_index.at(i - 1).base()) + capacity - 1;
            EXPECT_NE(below_last / span, first / span)
                << "slots " << i - 1 << " and " << i << " share a page-table page";
            EXPECT_EQ(perms_at(reinterpret_cast<std::byte *>(below_last + 1)), "---p");
            EXPECT_EQ(perms_at(reinterpret_cast<std::byte *>(first - 1)), "---p");
        }
    }
}

// A memory or table owns the guard after it (its overruns go there); the
// guard before the first slot belongs to no slot.
TEST(Layout, LocateAttributesGuards) {
    Config c = small();
    Pool pool(c);
    auto memory = pool.acquire(Kind::memory, 1, kPage);
    ASSERT_TRUE(memory);
    std::byte *end = memory->base() + c.memory_max_bytes;
    EXPECT_EQ(pool.locate(Kind::memory, end + c.memory_guard_bytes - 1), memory->index());
    if (memory->index().value == 0) {
        EXPECT_FALSE(pool.locate(Kind::memory, memory->base() - 1));
    }
    EXPECT_FALSE(pool.locate(Kind::table, memory->base()));
}

// --- Tables: the slot size comes from the configuration, and a table
// --- that does not fit is refused with EINVAL (wasm-rt-pooled then says so).

TEST(Layout, TableLargerThanASlotIsEinval) {
    Config c = small();
    c.table_bytes = 3 * kPage;
    Pool pool(c);
    EXPECT_EQ(pool.slot_capacity(Kind::table), 3 * kPage);
    errno = 0;
    EXPECT_FALSE(pool.acquire(Kind::table, 1, 3 * kPage + 1));
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_FALSE(pool.acquire(Kind::table, 1, SIZE_MAX)); // no wrap when rounded to pages
    EXPECT_EQ(errno, EINVAL);
    auto table = pool.acquire(Kind::table, 1, 3 * kPage);
    ASSERT_TRUE(table) << "a table of exactly table_bytes fits";
    EXPECT_EQ(perms_at(table->base() + 3 * kPage), "---p");
    auto small_table = pool.acquire(Kind::table, 1, 8);
    ASSERT_TRUE(small_table);
    EXPECT_TRUE(small_table->grow(3 * kPage));
    EXPECT_FALSE(small_table->grow(3 * kPage + 1)) << "grown past its slot";
    errno = 0;
    EXPECT_FALSE(pool.acquire(Kind::memory, 1, c.memory_max_bytes + 1));
    EXPECT_EQ(errno, EINVAL);
}

} // namespace
