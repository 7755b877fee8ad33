// SPDX-License-Identifier: MIT
// What the pool's tests share: the page size and the check that a
// tenant's memory reads zero.
#pragma once

#include <unistd.h>

#include <cstddef>

namespace pool_test {

inline const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

inline bool all_zero(const std::byte *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != std::byte{0})
            return false;
    return true;
}

} // namespace pool_test
