// SPDX-License-Identifier: MIT
// Whether this test binary runs under a sanitizer, whose runtime changes
// what a test can observe (address-space limits, fork in threaded code).
#pragma once

inline bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return false;
}
