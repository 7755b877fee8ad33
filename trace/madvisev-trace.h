/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Shared between madvisev-trace's BPF program and its userspace. */
#ifndef MADVISEV_TRACE_H
#define MADVISEV_TRACE_H

#define HIST_SLOTS 40

/* x86_64 system call numbers */
#define NR_MADVISE 28
#define NR_IO_URING_ENTER 426
#define NR_PROCESS_MADVISE 440
#define NR_MADVISEV 1000

enum trace_kind { KIND_MADVISE, KIND_PROCESS_MADVISE, KIND_MADVISEV, KIND_IO_URING, TRACE_KINDS };

struct trace_stats {
	__u64 calls, errors, ranges, local_flushes, ipi_rounds, total_ns;
	__u64 hist[HIST_SLOTS]; /* calls by log2(ns) */
};

struct trace_totals {
	__u64 shootdowns_received, flushes_outside_calls;
};

#endif
