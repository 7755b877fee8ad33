// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <cstdio>

#include "madvisev.h"

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // Say which backends these results cover, since the others skip.
    for (int b = MADVISEV_BACKEND_SYSCALL; b <= MADVISEV_BACKEND_MAX; b++) {
        const char *why = nullptr;
        int ok = madvisev_backend_probe(b, &why);
        fprintf(stderr, "[ backend  ] %-16s %s: %s\n", madvisev_backend_str(b),
                ok == 1 ? "tested" : "SKIPPED", why);
    }
    return RUN_ALL_TESTS();
}
