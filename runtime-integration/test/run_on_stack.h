// SPDX-License-Identifier: MIT
// Run a function with a given memory range as its stack, for the trap and
// stack-guard tests.
#pragma once

#include <gtest/gtest.h>
#include <pthread.h>

#include <boost/context/fiber.hpp>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "wasmpool/fiber.h"

namespace wasmpool::test {

// ThreadSanitizer cannot follow fiber switches and keeps about 1 MiB of
// its own on a thread's stack: its tests need stacks that much larger.
#if defined(__SANITIZE_THREAD__)
inline constexpr size_t kTestStackBytes = size_t{1280} << 10;
#else
inline constexpr size_t kTestStackBytes = size_t{128} << 10;
#endif

// A Boost.Context fiber on [base, base + size), as the runtime does; under
// ThreadSanitizer a thread created on that stack.
template <class Fn>
void run_on_stack(std::byte *base, size_t size, Fn &&fn) {
#if defined(__SANITIZE_THREAD__)
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    ASSERT_EQ(pthread_attr_setstack(&attr, base, size), 0);
    pthread_t th;
    auto trampoline = [](void *arg) -> void * {
        (*static_cast<std::remove_reference_t<Fn> *>(arg))();
        return nullptr;
    };
    ASSERT_EQ(pthread_create(&th, &attr, trampoline, &fn), 0);
    pthread_join(th, nullptr);
    pthread_attr_destroy(&attr);
#else
    struct GivenStack {
        std::byte *base;
        size_t size;
        boost::context::stack_context allocate() {
            boost::context::stack_context sctx;
            sctx.size = size;
            sctx.sp = base + size;
            return sctx;
        }
        void deallocate(boost::context::stack_context &) noexcept {}
    };
    wasmpool::run_on_fiber(GivenStack{base, size}, std::forward<Fn>(fn));
#endif
}

} // namespace wasmpool::test
