// SPDX-License-Identifier: MIT
// The pool's test seam: fault injection, forged leases and the insecure
// no-reset mode, kept out of the public Config so that no production
// configuration can reach them.  For the tests and instantiate-bench's
// unsafe-no-reset strategy only.  Call the setters right after
// constructing the pool, before its first acquire(): they are not
// synchronised with the pool's threads.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "wasmpool/pool.h"

namespace wasmpool::testing {

// Replaces madvisev() for the pool's decommits; returns the bytes advised,
// or -1 with errno, as madvisev() does.
using DecommitHook = std::function<ssize_t(const iovec *iov, size_t n)>;
void set_decommit_hook(Pool &pool, DecommitHook hook);

// Replaces madvisev(MADVISEV_ZERO) for the pool's in-place resets
// (Reset::zero_in_place, and adaptive where the kernel clears in place);
// returns the bytes zeroed, or -1 with errno, as madvisev() does.
using ZeroHook = std::function<ssize_t(const iovec *iov, size_t n)>;
void set_zero_hook(Pool &pool, ZeroHook hook);

// Replaces the mmap(MAP_FIXED) that cleans a slot whose decommit failed;
// return MAP_FAILED to fail it.
using RemapHook = std::function<void *(void *addr, size_t len, int prot)>;
void set_remap_hook(Pool &pool, RemapHook hook);

// INSECURE: released slots go back to the free lists as they are, and the
// next user sees the last one's data.  The benchmark's upper bound, and
// the proof that the isolation tests can fail.
void skip_resets_INSECURE(Pool &pool);

// A lease the pool never handed out (a copy of a released one, another
// slot's, a wrong generation), for the death tests of the life-cycle
// checks: a real lease cannot be copied.
Pool::Lease forge_lease(Pool &pool, SlotIndex index, uint32_t generation, std::byte *base);

} // namespace wasmpool::testing
