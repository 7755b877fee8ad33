// SPDX-License-Identifier: MIT
// Internal interface between the dispatcher (madvisev.cpp) and the backends.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <vector>

#include "page_scan.h"

namespace madvisev_internal {

// A backend advises a chunk the dispatcher has already validated and shaped
// to the backend's limits (see Limits): bytes advised, counted in whole
// ranges from the first, or -1 with errno when nothing was.
using ChunkFn = ssize_t (*)(const iovec *iov, size_t n, int advice);

// A probe's answer.  Only yes and no are cached: undecided (no memory, no
// free descriptor) is asked again at the next call.
enum class Answer { no, yes, undecided };
using ProbeFn = Answer (*)(const char **reason);

struct Limits {
    size_t max_iov;   // ranges per call
    size_t max_range; // a longer range goes to madvise(2) whole; 0 = no limit
    size_t max_call;  // bytes per call, 0 = unlimited
    bool drop_empty;  // zero-length ranges must not reach the kernel
};

struct Backend {
    const char *name;
    ChunkFn chunk;
    ProbeFn probe;
    Limits limits;
};

const Backend &backend_syscall();
const Backend &backend_process_madvise();
const Backend &backend_io_uring();
const Backend &backend_sequential();

// System calls this thread has made to advise memory (tests count them).
// Trivially destructible: usable from thread-exit destructors.
extern thread_local unsigned long syscalls_made;

// Test seam: make the process_madvise backend open a pidfd per call, as
// on Linux 6.13 and 6.14, which have no PIDFD_SELF.
bool process_madvise_force_pidfd(bool on); // returns the previous setting

// MADVISEV_ZERO goes to the kernel only when it has announced the advice
// (/sys/kernel/mm/madvisev/version 2 or later) and emulation is not forced
// (MADVISEV_ZERO_EMULATE=1, or the seam below); otherwise it is emulated.
bool zero_native();

// Test and benchmark seam: emulate MADVISEV_ZERO on every kernel while on,
// so that both paths can run in one process.
bool zero_force_emulation(bool on); // returns the previous setting

// fork() waits until no thread is inside one of these (madvisev.cpp
// registers the pthread_atfork() handlers when the library is loaded), and
// no thread enters one while fork() runs.  Wrap in one what runs under a
// lock held across a system call (opening the pagemap file, loading
// liburing), so that no child inherits that lock held.  Nests: a thread
// already inside enters again at once.  Not from a signal handler.
class ForkGate {
  public:
    ForkGate() noexcept;
    ~ForkGate();
    ForkGate(const ForkGate &) = delete;
    ForkGate &operator=(const ForkGate &) = delete;
};

// Test seam: the scan MADVISEV_ZERO's emulation asks (nullptr, the default:
// scan_data_pages()), so that a test can hand it runs the host cannot make
// (swapped ones, without swap).  Returns the previous one.
using ZeroScanFn = ScanStatus (*)(const void *base, size_t len, std::vector<PageRun> &out);
ZeroScanFn zero_scan_seam(ZeroScanFn fn);

// Test seam: make MADVISEV_ZERO's emulation read /proc/self/maps's text,
// as it does before Linux 6.11, where PROCMAP_QUERY exists.  Returns the
// previous setting.
bool maps_force_text(bool on);

} // namespace madvisev_internal
