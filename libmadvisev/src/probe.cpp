// SPDX-License-Identifier: MIT
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "internal.h"

namespace madvisev_internal {

int probe_dontneed_page(int (*advise)(void *page, size_t len)) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *p = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    auto *bytes = static_cast<volatile unsigned char *>(p);
    bytes[0] = 0xa5;
    bytes[page - 1] = 0x5a;
    int err = advise(p, page);
    if (err == 0 && (bytes[0] != 0 || bytes[page - 1] != 0))
        err = EIO; // the call claimed success but the page kept its data
    munmap(p, page);
    return err;
}

} // namespace madvisev_internal
