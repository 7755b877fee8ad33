// SPDX-License-Identifier: MIT
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "madvisev.h"

namespace mvtest {

inline size_t page_size() {
    return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// An anonymous mapping that unmaps itself.
class Mapping {
  public:
    explicit Mapping(size_t bytes, int prot = PROT_READ | PROT_WRITE,
                     int flags = MAP_PRIVATE | MAP_ANONYMOUS)
        : len_(bytes) {
        void *p = mmap(nullptr, bytes, prot, flags, -1, 0);
        addr_ = p == MAP_FAILED ? nullptr : static_cast<char *>(p);
    }
    ~Mapping() {
        if (addr_)
            munmap(addr_, len_);
    }
    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;
    char *get() const { return addr_; }
    char *page(size_t i) const { return addr_ + i * page_size(); }
    size_t size() const { return len_; }
    void release() { addr_ = nullptr; }

  private:
    char *addr_;
    size_t len_;
};

inline void fill(void *p, size_t len, unsigned char v) {
    memset(p, v, len);
}

// True if every byte of [p, p+len) equals v.
inline bool all_equal(const void *p, size_t len, unsigned char v) {
    const unsigned char *b = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < len; i++)
        if (b[i] != v)
            return false;
    return true;
}

// Fixture parameterised by backend; skips, with the probe's reason, when
// the running kernel lacks the backend.
class BackendTest : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        const char *why = nullptr;
        if (madvisev_backend_probe(GetParam(), &why) != 1)
            GTEST_SKIP() << madvisev_backend_str(GetParam()) << " unavailable: " << why;
    }
    ssize_t call(const iovec *iov, size_t n, int advice, unsigned flags = 0) {
        return madvisev_via(GetParam(), iov, n, advice, flags);
    }
};

inline std::string backend_param_name(const ::testing::TestParamInfo<int> &info) {
    return madvisev_backend_str(info.param);
}

#define MADVISEV_ALL_BACKENDS                                                                      \
    ::testing::Values(MADVISEV_BACKEND_SYSCALL, MADVISEV_BACKEND_PROCESS_MADVISE,                  \
                      MADVISEV_BACKEND_IO_URING, MADVISEV_BACKEND_SEQUENTIAL)

} // namespace mvtest
