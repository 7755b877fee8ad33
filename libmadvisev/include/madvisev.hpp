// SPDX-License-Identifier: MIT
// C++ interface to libmadvisev: a batch that collects ranges and advises
// them with one madvisev() call.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "madvisev.h"

namespace madv {

// The outcome of one flush.
struct flush_result {
    std::size_t bytes = 0;  // bytes advised
    std::size_t ranges = 0; // ranges advised, counted from the front
    int error = 0;          // errno of the first range not advised; 0 if none
    explicit operator bool() const noexcept { return error == 0; }
};

// Advise a whole span of ranges.
inline flush_result advise(std::span<const iovec> ranges, int advice) {
    flush_result res;
    if (ranges.empty())
        return res;
    ssize_t r = ::madvisev(ranges.data(), ranges.size(), advice, 0);
    if (r < 0) {
        res.error = errno;
        return res;
    }
    res.bytes = static_cast<std::size_t>(r);
    std::size_t left = res.bytes;
    while (res.ranges < ranges.size() && left >= ranges[res.ranges].iov_len) {
        left -= ranges[res.ranges].iov_len;
        res.ranges++;
    }
    // Empty ranges at the tail count as advised.
    if (res.ranges < ranges.size())
        res.error = EAGAIN; // refined by the caller's retry, see batch::flush
    return res;
}

// Collects ranges and advises them in one call when full, on flush(), or
// when destroyed.  Not thread-safe: use one batch per thread.
//
// A range that could not be advised stays in the batch after flush()
// returns an error, so the caller can decide what to do with it (retry,
// quarantine, or clear()).  A batch destroyed with ranges it cannot advise
// calls its error handler; the default one prints a line and aborts, since
// dropping a reset silently could hand stale data to the memory's next user.
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
        if (!r) {
            if (on_error_) {
                on_error_(ranges_, r.error);
            } else {
                std::fprintf(stderr,
                             "libmadvisev: batch destroyed with %zu range(s) not advised: %s\n",
                             ranges_.size(), std::generic_category().message(r.error).c_str());
                std::abort();
            }
        }
    }

    void on_error(error_handler h) { on_error_ = std::move(h); }

    // Queue one range; flushes first if the batch is full.  Throws
    // std::system_error(EINVAL) for an address that is not page-aligned,
    // and whatever a flush throws (nothing: errors are kept, see above).
    flush_result add(void *addr, std::size_t len) {
        if (reinterpret_cast<std::uintptr_t>(addr) % page_size() != 0)
            throw std::system_error(EINVAL, std::generic_category(),
                                    "madv::batch::add: address not page-aligned");
        flush_result r;
        if (ranges_.size() >= capacity_)
            r = flush();
        if (len != 0)
            ranges_.push_back({addr, len});
        return r;
    }
    flush_result add(std::span<std::byte> range) { return add(range.data(), range.size()); }

    // Advise every queued range in one madvisev() call.
    flush_result flush() {
        flush_result r = advise(ranges_, advice_);
        if (r.error == EAGAIN && r.ranges < ranges_.size()) {
            // A short count: learn the real error from the range that stopped.
            iovec v = ranges_[r.ranges];
            r.error = ::madvisev(&v, 1, advice_, 0) < 0 ? errno : EAGAIN;
        }
        ranges_.erase(ranges_.begin(), ranges_.begin() + static_cast<std::ptrdiff_t>(r.ranges));
        return r;
    }

    void clear() noexcept { ranges_.clear(); }
    std::span<const iovec> pending() const noexcept { return ranges_; }
    std::size_t size() const noexcept { return ranges_.size(); }
    bool empty() const noexcept { return ranges_.empty(); }
    int advice() const noexcept { return advice_; }

  private:
    static std::size_t page_size() {
        static const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        return ps;
    }

    int advice_;
    std::size_t capacity_;
    std::vector<iovec> ranges_;
    error_handler on_error_;
};

// The backend madvisev() uses, by name.
inline const char *backend_name() noexcept {
    return ::madvisev_backend_name();
}

} // namespace madv
