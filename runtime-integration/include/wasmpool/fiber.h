// SPDX-License-Identifier: MIT
// Run a function on a fiber (Boost.Context) whose stack is a pool slot, the
// way an async runtime runs each guest call on a stack of its own.
#pragma once

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

#include <new>
#include <utility>

#include "wasmpool/pool.h"

namespace wasmpool {

// Boost.Context stack allocator over the pool's stack slots.  Released
// stacks are reset like any other slot.
class PooledStack {
  public:
    PooledStack(Pool &pool, uint64_t key) : pool_(&pool), key_(key) {}

    boost::context::stack_context allocate() {
        auto lease = pool_->acquire(Kind::stack, key_, 0);
        if (!lease)
            throw std::bad_alloc();
        boost::context::stack_context sctx;
        sctx.size = lease->capacity;
        sctx.sp = lease->base + lease->capacity; // stacks grow down
        return sctx;
    }

    void deallocate(boost::context::stack_context &sctx) noexcept {
        auto *top = static_cast<std::byte *>(sctx.sp);
        if (auto idx = pool_->locate(Kind::stack, top - sctx.size))
            pool_->release(Kind::stack, *idx);
    }

  private:
    Pool *pool_;
    uint64_t key_;
};

// Run @fn to completion on a fiber allocated by @salloc.
template <class StackAlloc, class Fn> void run_on_fiber(StackAlloc &&salloc, Fn &&fn) {
    namespace ctx = boost::context;
    ctx::fiber f(std::allocator_arg, std::forward<StackAlloc>(salloc),
                 [&fn](ctx::fiber &&caller) {
                     fn();
                     return std::move(caller);
                 });
    f = std::move(f).resume();
}

} // namespace wasmpool
