// SPDX-License-Identifier: MIT
// What the pool's tests share: the page size, the check that a tenant's
// memory reads zero, and how a slot index prints.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <ostream>

#include "wasmpool/pool.h"

// Test messages name a slot by kind and number.
namespace wasmpool {
inline void PrintTo(const SlotIndex &index, std::ostream *os) {
    *os << kind_name(index.kind) << " slot " << index.value;
}
} // namespace wasmpool

namespace pool_test {

inline const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

inline bool all_zero(const std::byte *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != std::byte{0})
            return false;
    return true;
}

} // namespace pool_test
