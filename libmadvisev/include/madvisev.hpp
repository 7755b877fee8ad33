// SPDX-License-Identifier: MIT
// C++ interface to libmadvisev: a batch that collects ranges and advises
// them with one madvisev() call (MADVISEV_ZERO included), and a whole-range page scan.
#pragma once

// std::span, and the library's users are built as C++20: below that, a
// message that says so rather than a page of errors about std::span.
#if !defined(__cplusplus) || __cplusplus < 202002L
#error "madvisev.hpp needs C++20 (-std=c++20 or later); madvisev.h is the C interface"
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "madvisev.h"

namespace madv {

// The outcome of one flush (or of an add() that had to flush or refuse).
struct [[nodiscard]] flush_result {
    std::size_t bytes = 0;  // bytes advised
    std::size_t ranges = 0; // ranges advised, counted from the front
    int error = 0;          // errno of the first range not advised; 0 if none
    explicit operator bool() const noexcept { return error == 0; }
};

// Advise a whole span of ranges.  A short count (the library stops before a
// range that would take the byte sum past SSIZE_MAX) is followed by another
// call for the rest, so error is 0 exactly when every range was advised,
// and otherwise the errno of the first range that was not.
[[nodiscard]] inline flush_result advise(std::span<const iovec> ranges, int advice) {
    flush_result res;
    while (res.ranges < ranges.size()) {
        std::span<const iovec> rest = ranges.subspan(res.ranges);
        ssize_t r = ::madvisev(rest.data(), rest.size(), advice, 0);
        if (r < 0) {
            res.error = errno;
            return res;
        }
        std::size_t left = static_cast<std::size_t>(r);
        std::size_t before = res.ranges;
        while (res.ranges < ranges.size() && left >= ranges[res.ranges].iov_len) {
            left -= ranges[res.ranges].iov_len;
            res.bytes += ranges[res.ranges].iov_len;
            res.ranges++;
        }
        if (res.ranges == before) { // cannot happen: madvisev() counts whole ranges
            res.error = EIO;
            return res;
        }
    }
    return res;
}

// Collects ranges and advises them in one call when full, on flush(), or
// when destroyed.  Not thread-safe: use one batch per thread.
//
// add() checks each range as madvisev() would (a page-aligned start, a
// length that neither wraps the address space nor exceeds SSIZE_MAX) and
// refuses a bad one with EINVAL, so one bad range can never stop the rest
// of a batch.  The batch never holds more than its capacity: when it is
// full and a flush fails, add() refuses the new range (ENOBUFS) and keeps
// what it holds.  A range that could not be advised stays in the batch
// after flush() returns an error, so the caller can decide what to do with
// it (retry, quarantine, or clear()).
//
// The destructor flushes what is left.  Ranges it cannot advise go to the
// error handler if one is set; without one they are dropped, unadvised: a
// caller for whom that matters (memory about to be handed to someone else)
// calls flush() itself and checks the result.
class batch {
  public:
    using error_handler = std::function<void(std::span<const iovec> unadvised, int error)>;

    explicit batch(int advice = MADV_DONTNEED, std::size_t capacity = MADVISEV_IOV_MAX)
        : advice_(advice), capacity_(capacity ? capacity : 1) {
        ranges_.reserve(capacity_);
    }
    batch(const batch &) = delete;
    batch &operator=(const batch &) = delete;
    batch(batch &&) = default;
    batch &operator=(batch &&) = delete;

    ~batch() {
        if (ranges_.empty())
            return;
        flush_result r = flush();
        if (!r && on_error_)
            on_error_(ranges_, r.error);
    }

    void on_error(error_handler h) { on_error_ = std::move(h); }

    // Queue one range.  When the batch is full it is flushed first; the
    // result carries that flush's bytes and ranges, with error ENOBUFS if
    // the batch is still full (the range is not queued), or EINVAL for a
    // bad range.
    // Empty ranges at an aligned address are accepted and not queued.
    [[nodiscard]] flush_result add(void *addr, std::size_t len) noexcept {
        flush_result r;
        const auto start = reinterpret_cast<std::uintptr_t>(addr);
        const std::uintptr_t ps = page_size();
        if (start % ps != 0) { // even for an empty range, as madvise(2) says
            r.error = EINVAL;
            return r;
        }
        if (len == 0)
            return r;
        if (len > static_cast<std::size_t>(SSIZE_MAX) || len > UINTPTR_MAX - start ||
            ((start + len + ps - 1) & ~(ps - 1)) == 0) {
            r.error = EINVAL;
            return r;
        }
        if (ranges_.size() >= capacity_) {
            r = flush();
            if (ranges_.size() >= capacity_) {
                r.error = ENOBUFS; // not queued; flush() says why the batch is stuck
                return r;
            }
        }
        ranges_.push_back({addr, len});
        return r;
    }
    [[nodiscard]] flush_result add(std::span<std::byte> range) noexcept {
        return add(range.data(), range.size());
    }

    // Advise every queued range.  The ranges advised leave the batch; the
    // first that failed, and those after it, stay.
    [[nodiscard]] flush_result flush() noexcept {
        flush_result r = advise(ranges_, advice_);
        ranges_.erase(ranges_.begin(), ranges_.begin() + static_cast<std::ptrdiff_t>(r.ranges));
        return r;
    }

    void clear() noexcept { ranges_.clear(); }
    std::span<const iovec> pending() const noexcept { return ranges_; }
    std::size_t size() const noexcept { return ranges_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return ranges_.empty(); }
    int advice() const noexcept { return advice_; }

  private:
    static std::size_t page_size() noexcept {
        static const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        return ps;
    }

    int advice_;
    std::size_t capacity_;
    std::vector<iovec> ranges_;
    error_handler on_error_;
};

// Make every byte of the ranges read zero, or fail (EINVAL for a shared or
// file-backed mapping): MADVISEV_ZERO, in place where the kernel can,
// emulated where not; see madvisev.h.
[[nodiscard]] inline flush_result zero(std::span<const iovec> ranges) {
    return advise(ranges, MADVISEV_ZERO);
}

// Whether the kernel clears MADVISEV_ZERO ranges in place (false: the
// library emulates it).
inline bool zero_native() noexcept {
    return ::madvisev_zero_native() == 1;
}

// Emulate MADVISEV_ZERO on any kernel while on (tests, benchmarks); the
// previous setting.
inline bool zero_force_emulation(bool on) noexcept {
    return ::madvisev_zero_force_emulation(on ? 1 : 0) == 1;
}

// Every run of [addr, addr + len) that can hold data (madvisev_scan_data()),
// offsets from addr, into out: as many calls as it takes, reusing out's
// capacity.  0, or the errno of the call that failed (ENOSYS: the system
// cannot tell at all), with out empty.
[[nodiscard]] inline int scan_data(const void *addr, std::size_t len,
                                   std::vector<madvisev_page_run> &out) {
    out.clear();
    std::size_t done = 0;
    for (;;) {
        const std::size_t have = out.size();
        out.resize(std::max<std::size_t>(out.capacity(), have + 64));
        std::size_t next = 0;
        ssize_t n = ::madvisev_scan_data(static_cast<const char *>(addr) + done, len - done,
                                         out.data() + have, out.size() - have, &next, 0);
        if (n < 0) {
            out.clear();
            return errno;
        }
        out.resize(have + static_cast<std::size_t>(n));
        for (std::size_t i = have; i < out.size(); i++)
            out[i].offset += done;
        done += next;
        if (done >= len)
            return 0;
    }
}

// The backend madvisev() uses, by name.
inline const char *backend_name() noexcept {
    return ::madvisev_backend_name();
}

} // namespace madv
