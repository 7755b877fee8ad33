// SPDX-License-Identifier: MIT
// Which pages of a private anonymous range can hold data: PAGEMAP_SCAN
// (Linux 6.7+) asked for pages that are present but not the shared zero
// page, or swapped out; before 6.7 (Debian 12's 6.1) the same answer
// from /proc/self/pagemap's per-page entries, slower (a large range skips
// what /proc/self/smaps says holds nothing).  mincore() cannot answer
// this: it calls a page resident only while it is mapped or still in the
// swap cache, so a page written, swapped out and dropped from the swap
// cache looks empty to it.
//
// MADVISEV_ZERO's emulation uses it as it is; everyone else, this
// project's runtime included, through madvisev_scan_data() (madvisev.h),
// which fills a caller's array from the same scan.
#pragma once

#include <cstddef>
#include <vector>

namespace madvisev_internal {

struct PageRun {
    size_t offset; // from the scanned range's start, page-aligned
    size_t bytes;
    bool swapped; // false: present in memory
    bool file;    // not anonymous memory: a file's page, or shared memory's
};

enum class ScanStatus {
    ok,
    // No answer, and none to expect later: /proc/self/pagemap is missing
    // (no /proc, a kernel without it) or not ours to read (a non-dumpable
    // process); also under scan_force_unsupported().  errno is ENOSYS.
    // The caller must treat every page as holding data.
    unsupported,
    // This call failed (no free fd, no memory...; errno says): the caller
    // must treat every page as holding data, and may ask again later.
    failed,
};

// Fill @out with the runs of [base, base + len) that can hold data, in
// address order; adjacent pages of the same kind form one run.  A partial
// last page counts whole.  Where the answer is not ok, errno says why.
ScanStatus scan_data_pages(const void *base, size_t len, std::vector<PageRun> &out);

// Test seams, each returning the previous setting: answer unsupported
// while on; read the pagemap entries (the path kernels before 6.7 take)
// even where PAGEMAP_SCAN exists.
bool scan_force_unsupported(bool on);
bool scan_force_pagemap_read(bool on);

} // namespace madvisev_internal
