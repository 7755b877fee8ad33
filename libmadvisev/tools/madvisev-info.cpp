// SPDX-License-Identifier: MIT
// madvisev-info: what this kernel offers and what libmadvisev picks.
#include <getopt.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "madvisev.h"

namespace {

void usage(FILE *out) {
    fprintf(out, "Usage: madvisev-info [--help]\n"
                 "Print the kernel release, each libmadvisev backend with whether it is\n"
                 "available and why, the backend auto-detection picks, and the one in use\n"
                 "(MADVISEV_BACKEND forces one).  Exit status 1 if madvisev() cannot run.\n");
}

} // namespace

int main(int argc, char **argv) {
    static const option opts[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "madvisev-info: unknown option '%s' (try --help)\n", argv[optind - 1]);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "madvisev-info: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }

    utsname u{};
    uname(&u);
    printf("kernel:   %s %s %s\n", u.sysname, u.release, u.machine);
    printf("backends:\n");
    int auto_pick = -1;
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++) {
        const char *why = nullptr;
        int ok = madvisev_backend_probe(b, &why);
        printf("  %-16s %-12s %s\n", madvisev_backend_str(b), ok == 1 ? "available" : "unavailable",
               why);
        // Same order as the library's own choice; io_uring is never picked.
        if (ok == 1 && auto_pick < 0 && b != MADVISEV_BACKEND_IO_URING)
            auto_pick = b;
    }
    printf("auto:     %s\n", auto_pick >= 0 ? madvisev_backend_str(auto_pick) : "none");
    const char *env = getenv("MADVISEV_BACKEND");
    printf("forced:   %s\n", env && *env ? env : "(MADVISEV_BACKEND unset)");
    printf("selected: %s\n", madvisev_backend_name());
    printf("zero:     %s\n",
           madvisev_zero_native() == 1
               ? "in place (the kernel's MADVISEV_ZERO)"
               : "emulated (PAGEMAP_SCAN, memset, MADV_DONTNEED for swapped pages)");

    // One real call through the selected backend, so a forced backend that
    // cannot run shows its errno here.
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "madvisev-info: mmap: %s\n", strerror(errno));
        return 1;
    }
    static_cast<char *>(p)[0] = 1;
    iovec v{p, static_cast<size_t>(page)};
    ssize_t r = madvisev(&v, 1, MADV_DONTNEED, 0);
    int err = errno;
    bool zeroed = static_cast<char *>(p)[0] == 0;
    munmap(p, page);
    if (r < 0) {
        printf("madvisev: -1 %s (%s)\n", strerrorname_np(err), strerror(err));
        return 1;
    }
    printf("madvisev: %zd bytes advised, page %s\n", r, zeroed ? "zeroed" : "NOT zeroed");
    return zeroed ? 0 : 1;
}
