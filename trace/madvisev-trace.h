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

/*
 * What a flush or a zapped page is charged to: a system call of the
 * process, or one io_uring madvise operation (run by an io-wq worker of
 * the process, not by the thread that called io_uring_enter).
 */
enum trace_kind {
	KIND_MADVISE,
	KIND_PROCESS_MADVISE,
	KIND_MADVISEV,
	KIND_IO_URING,
	KIND_IO_URING_MADVISE,
	TRACE_KINDS
};

struct trace_stats {
	__u64 calls, errors, ranges, pages_zapped, local_flushes, ipi_rounds, total_ns;
	__u64 hist[HIST_SLOTS]; /* calls by log2(ns) */
};

/* A thread's flushes and zapped pages outside any traced system call. */
struct trace_loose {
	__u64 local_flushes, ipi_rounds, pages_zapped;
};

struct trace_totals {
	__u64 shootdowns_received, flushes_outside_calls;
};

#endif
