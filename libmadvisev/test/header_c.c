/* SPDX-License-Identifier: MIT */
/*
 * madvisev.h in strict C: compiled (never run) with -std=c89 -pedantic and
 * -std=c11 -pedantic, -Werror, no feature-test macro: the header must
 * stand on its own, MADV_DONTNEED included (strict modes hide it).
 */
#include "madvisev.h"

int header_c_use(void);

int header_c_use(void) {
    struct iovec v;
    struct madvisev_page_run run;
    size_t next;
    enum madvisev_backend b = MADVISEV_BACKEND_AUTO;
    v.iov_base = NULL;
    v.iov_len = 0;
    if (madvisev_via((int)b, &v, 0, MADV_DONTNEED, 0) < 0)
        return -1;
    return (int)madvisev_scan_data(NULL, 0, &run, 1, &next, 0);
}
