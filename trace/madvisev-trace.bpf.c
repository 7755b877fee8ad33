// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * BPF side of madvisev-trace, tracepoints only (what every kernel with BTF
 * offers, kprobes and function tracing or not): per system call of one
 * process (madvise, process_madvise, madvisev, io_uring_enter) and per
 * io_uring madvise operation, count calls, ranges, the pages zapped and
 * the TLB flushes done meanwhile by the thread running it (local, and the
 * remote shootdown IPI rounds it sends), and a log2 latency histogram;
 * and count the shootdowns the process's threads receive.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "madvisev-trace.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile pid_t target_tgid = 0;

/* A system call of a thread of the process, from sys_enter to sys_exit. */
struct inflight {
	__u64 start_ns;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid */
	__type(value, struct inflight);
} inflight SEC(".maps");

/*
 * Flushes and zapped pages of a thread outside any traced system call.  In
 * an io-wq worker they belong to the operation it completes next: charged
 * to it if that is a madvise, else counted as outside calls (at the next
 * completion, or by userspace at the end).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct trace_loose);
} loose SEC(".maps");

/* io_uring madvise operations submitted and not yet completed: their start. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct io_kiocb * */
	__type(value, __u64);
} uring_ops SEC(".maps");

/* The process's mm (as kmem:rss_stat names it), and its counters' last values. */
__u32 target_mm_id;

struct rss_last {
	__s64 bytes;
	__u64 mm; /* SEEN | the mm_id the value is of; 0 before the first */
};

#define SEEN (1ULL << 32)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MM_COUNTERS);
	__type(key, __u32);
	__type(value, struct rss_last);
} rss_last SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_KINDS);
	__type(key, __u32);
	__type(value, struct trace_stats);
} stats SEC(".maps");

/* Shootdowns received by the process's threads, and flushes outside calls. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace_totals);
} totals SEC(".maps");

/* floor(log2(v)) without a loop, which the verifier would unroll. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xffffffffULL) << 5;
	v >>= r;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	return r | (__u32)(v >> 1);
}

static __always_inline bool ours(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == (__u64)target_tgid;
}

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* x86's TS_COMPAT: the thread is in a 32-bit system call, numbered otherwise. */
#define TS_COMPAT 0x0002

static __always_inline bool compat_call(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

static __always_inline int kind_of(long nr)
{
	switch (nr) {
	case NR_MADVISE:
		return KIND_MADVISE;
	case NR_PROCESS_MADVISE:
		return KIND_PROCESS_MADVISE;
	case NR_MADVISEV:
		return KIND_MADVISEV;
	case NR_IO_URING_ENTER:
		return KIND_IO_URING;
	default:
		return -1;
	}
}

static __always_inline struct trace_stats *stats_of(__u32 kind)
{
	return bpf_map_lookup_elem(&stats, &kind);
}

/* One more finished call or operation of @kind: its latency and outcome. */
static __always_inline void finish(__u32 kind, __u64 start_ns, long ret)
{
	__u64 ns = bpf_ktime_get_ns() - start_ns;
	struct trace_stats *st = stats_of(kind);

	if (!st)
		return;
	if (ret < 0)
		__sync_fetch_and_add(&st->errors, 1);
	__u32 slot = log2_u64(ns);
	if (slot >= HIST_SLOTS)
		slot = HIST_SLOTS - 1;
	__sync_fetch_and_add(&st->hist[slot], 1);
	__sync_fetch_and_add(&st->total_ns, ns);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!ours())
		return 0;
	int kind = kind_of(ctx->id);
	/* The numbers are x86_64's; a 32-bit task's calls are not traced. */
	if (kind < 0 || compat_call())
		return 0;
	/* Constant-offset reads of the context, kept apart from the branches
	 * below so the compiler cannot turn them into one variable-offset
	 * read, which the verifier refuses. */
	__u64 arg1 = ctx->args[1], arg2 = ctx->args[2];
	asm volatile("" : "+r"(arg1), "+r"(arg2));
	__u32 tid = current_tid();
	struct inflight f = { .start_ns = bpf_ktime_get_ns(), .kind = kind };
	bpf_map_update_elem(&inflight, &tid, &f, BPF_ANY);
	struct trace_stats *st = stats_of(kind);
	if (!st)
		return 0;
	__sync_fetch_and_add(&st->calls, 1);
	/* Ranges: madvise one; process_madvise vlen is arg 2, madvisev arg 1;
	 * io_uring_enter submissions, arg 1. */
	__u64 ranges = 1;
	if (kind == KIND_PROCESS_MADVISE)
		ranges = arg2;
	else if (kind == KIND_MADVISEV || kind == KIND_IO_URING)
		ranges = arg1;
	__sync_fetch_and_add(&st->ranges, ranges);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int on_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!ours())
		return 0;
	__u32 tid = current_tid();
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);
	if (!f)
		return 0;
	finish(f->kind, f->start_ns, ctx->ret);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/*
 * io_uring runs each madvise operation in an io-wq worker of the process
 * (the opcode forces async), and the worker posts its completion; what
 * the worker flushed and zapped since its last completion is the
 * operation's.
 */
SEC("tracepoint/io_uring/io_uring_submit_req")
int on_uring_submit(struct trace_event_raw_io_uring_submit_req *ctx)
{
	if (!ours() || ctx->opcode != IORING_OP_MADVISE)
		return 0;
	__u64 req = (__u64)ctx->req, now = bpf_ktime_get_ns();
	bpf_map_update_elem(&uring_ops, &req, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_complete")
int on_uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	if (!ours())
		return 0;
	__u32 tid = current_tid();
	__u64 req = (__u64)ctx->req;
	__u64 *start = bpf_map_lookup_elem(&uring_ops, &req);
	/* Completed inline, in a traced call (DEFER_TASKRUN, IOPOLL): what
	 * the thread flushed and zapped is the call's, not loose. */
	struct trace_loose *l = NULL;
	if (!bpf_map_lookup_elem(&inflight, &tid))
		l = bpf_map_lookup_elem(&loose, &tid);
	if (!start) {
		/* Some other operation: what the worker did is outside calls. */
		__u32 zero = 0;
		struct trace_totals *t = bpf_map_lookup_elem(&totals, &zero);
		if (l && t) {
			__sync_fetch_and_add(&t->flushes_outside_calls,
					     l->local_flushes + l->ipi_rounds);
			bpf_map_delete_elem(&loose, &tid);
		}
		return 0;
	}
	__u32 k = KIND_IO_URING_MADVISE;
	struct trace_stats *st = stats_of(k);
	if (st) {
		__sync_fetch_and_add(&st->calls, 1);
		__sync_fetch_and_add(&st->ranges, 1);
		if (l) {
			__sync_fetch_and_add(&st->local_flushes, l->local_flushes);
			__sync_fetch_and_add(&st->ipi_rounds, l->ipi_rounds);
			__sync_fetch_and_add(&st->pages_zapped, l->pages_zapped);
		}
	}
	if (l)
		bpf_map_delete_elem(&loose, &tid);
	finish(k, *start, ctx->res);
	bpf_map_delete_elem(&uring_ops, &req);
	return 0;
}

/* Where the current thread's flushes and zapped pages go: its call, or loose. */
static __always_inline struct trace_stats *charged(__u32 tid)
{
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);

	return f ? stats_of(f->kind) : NULL;
}

static __always_inline struct trace_loose *loose_of(__u32 tid)
{
	struct trace_loose zero = {}, *l = bpf_map_lookup_elem(&loose, &tid);

	if (l)
		return l;
	bpf_map_update_elem(&loose, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&loose, &tid);
}

/*
 * Zapped pages: falls of the process's resident-page counters (file, anon,
 * shmem) during a call.  kmem:rss_stat gives a counter's value after each
 * change, so a fall is the difference from the value before; the first
 * change the tracer sees only sets that.  Exact as long as no other
 * thread changes the same counter in the same instant.
 */
SEC("tracepoint/kmem/rss_stat")
int on_rss_stat(struct trace_event_raw_rss_stat *ctx)
{
	int member = ctx->member;
	bool mine = ours();

	if (member != MM_FILEPAGES && member != MM_ANONPAGES && member != MM_SHMEMPAGES)
		return 0;
	/* The traced process's mm, which exec replaces. */
	if (mine && ctx->curr)
		target_mm_id = ctx->mm_id;
	else if (!target_mm_id || ctx->mm_id != target_mm_id)
		return 0;
	__u32 m = member;
	struct rss_last *last = bpf_map_lookup_elem(&rss_last, &m);
	if (!last)
		return 0;
	__u64 mm = SEEN | ctx->mm_id;
	__s64 was = __sync_lock_test_and_set(&last->bytes, ctx->size);
	__u64 was_mm = __sync_lock_test_and_set(&last->mm, mm);
	/* A first value, or another mm's, is only a baseline; so is a
	 * change another process made (process_madvise on us, reclaim). */
	if (was_mm != mm || !mine || ctx->size >= was)
		return 0;
	__u64 pages = (__u64)(was - ctx->size) >> 12;
	__u32 tid = current_tid();
	struct trace_stats *st = charged(tid);
	if (st) {
		__sync_fetch_and_add(&st->pages_zapped, pages);
		return 0;
	}
	struct trace_loose *l = loose_of(tid);
	if (l)
		__sync_fetch_and_add(&l->pages_zapped, pages);
	return 0;
}

/* x86 flush reasons: 1 remote shootdown received, 2/3 local, 4 IPI sent. */
SEC("tracepoint/tlb/tlb_flush")
int on_tlb_flush(struct trace_event_raw_tlb_flush *ctx)
{
	if (!ours())
		return 0;
	__u32 zero = 0, tid = current_tid();
	int reason = ctx->reason;
	if (reason == 1) {
		struct trace_totals *t = bpf_map_lookup_elem(&totals, &zero);
		if (t)
			__sync_fetch_and_add(&t->shootdowns_received, 1);
		return 0;
	}
	if (reason != 2 && reason != 3 && reason != 4)
		return 0;
	struct trace_stats *st = charged(tid);
	if (st) {
		if (reason == 4)
			__sync_fetch_and_add(&st->ipi_rounds, 1);
		else
			__sync_fetch_and_add(&st->local_flushes, 1);
		return 0;
	}
	struct trace_loose *l = loose_of(tid);
	if (!l)
		return 0;
	if (reason == 4)
		__sync_fetch_and_add(&l->ipi_rounds, 1);
	else
		__sync_fetch_and_add(&l->local_flushes, 1);
	return 0;
}
