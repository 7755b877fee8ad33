// SPDX-License-Identifier: MIT
// Run a function on a fiber (Boost.Context) whose stack is a pool slot, the
// way an async runtime runs each guest call on a stack of its own.
#pragma once

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

#include <new>
#include <type_traits>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

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
        sctx.size = lease->capacity();
        // Boost keeps only the stack pointer: the raw path, released by
        // base.  Boost keeps a copy of this allocator, made after this
        // call, so the generation travels with it.
        generation_ = lease->generation();
        sctx.sp = lease->detach(kOwner) + sctx.size; // stacks grow down
        return sctx;
    }

    void deallocate(boost::context::stack_context &sctx) noexcept {
        pool_->release_base(Kind::stack, static_cast<std::byte *>(sctx.sp) - sctx.size, kOwner,
                            generation_);
    }

  private:
    // The owner every fiber stack is detached to: the generation is what
    // tells one fiber's stack from the next.
    static constexpr uintptr_t kOwner = 0xf1be5;
    Pool *pool_;
    uint64_t key_;
    uint32_t generation_ = 0;
};

// Debian's Boost.Context switches stacks without telling AddressSanitizer,
// so a finished fiber's stack keeps the poison of its last frames, and
// whoever gets that memory next (the pool, or a later mmap at the same
// address) would trip over it.  Clear it as the stack is given back.
template <class StackAlloc>
class UnpoisonOnFree {
  public:
    explicit UnpoisonOnFree(StackAlloc inner) : inner_(std::move(inner)) {}
    boost::context::stack_context allocate() { return inner_.allocate(); }
    void deallocate(boost::context::stack_context &sctx) noexcept {
#if defined(__SANITIZE_ADDRESS__)
        ASAN_UNPOISON_MEMORY_REGION(static_cast<char *>(sctx.sp) - sctx.size, sctx.size);
#endif
        inner_.deallocate(sctx);
    }

  private:
    StackAlloc inner_;
};

// Run @fn to completion on a fiber allocated by @salloc.
template <class StackAlloc, class Fn>
void run_on_fiber(StackAlloc &&salloc, Fn &&fn) {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer cannot follow Boost.Context's stack switches (this
    // Boost announces none), and hangs or misreports across them: under
    // TSan the function runs on the calling thread's own stack.
    (void)salloc;
    fn();
#else
    namespace ctx = boost::context;
    using Alloc = std::decay_t<StackAlloc>;
    ctx::fiber f(std::allocator_arg, UnpoisonOnFree<Alloc>(std::forward<StackAlloc>(salloc)),
                 [&fn](ctx::fiber &&caller) {
                     fn();
                     return std::move(caller);
                 });
    f = std::move(f).resume();
#endif
}

} // namespace wasmpool
