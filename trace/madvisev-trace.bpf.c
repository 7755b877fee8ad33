// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * BPF side of madvisev-trace: per system call of one process (madvise,
 * process_madvise, madvisev, io_uring_enter), count calls, ranges, the
 * TLB flushes the calling thread does during the call (local, and the
 * remote shootdown IPI rounds it sends), and a log2 latency histogram;
 * and count the shootdowns the process's CPUs receive.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "madvisev-trace.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile pid_t target_tgid = 0;

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

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!ours())
		return 0;
	int kind = kind_of(ctx->id);
	if (kind < 0)
		return 0;
	/* Constant-offset reads of the context, kept apart from the branches
	 * below so the compiler cannot turn them into one variable-offset
	 * read, which the verifier refuses. */
	__u64 arg1 = ctx->args[1], arg2 = ctx->args[2];
	asm volatile("" : "+r"(arg1), "+r"(arg2));
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), k = kind;
	struct inflight f = { .start_ns = bpf_ktime_get_ns(), .kind = kind };
	bpf_map_update_elem(&inflight, &tid, &f, BPF_ANY);
	struct trace_stats *st = bpf_map_lookup_elem(&stats, &k);
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
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);
	if (!f)
		return 0;
	__u32 k = f->kind;
	__u64 ns = bpf_ktime_get_ns() - f->start_ns;
	bpf_map_delete_elem(&inflight, &tid);
	struct trace_stats *st = bpf_map_lookup_elem(&stats, &k);
	if (!st)
		return 0;
	if (ctx->ret < 0)
		__sync_fetch_and_add(&st->errors, 1);
	__u32 slot = log2_u64(ns);
	if (slot >= HIST_SLOTS)
		slot = HIST_SLOTS - 1;
	__sync_fetch_and_add(&st->hist[slot], 1);
	__sync_fetch_and_add(&st->total_ns, ns);
	return 0;
}

/* x86 flush reasons: 1 remote shootdown received, 2/3 local, 4 IPI sent. */
SEC("tracepoint/tlb/tlb_flush")
int on_tlb_flush(struct trace_event_raw_tlb_flush *ctx)
{
	if (!ours())
		return 0;
	__u32 zero = 0;
	struct trace_totals *t = bpf_map_lookup_elem(&totals, &zero);
	if (!t)
		return 0;
	if (ctx->reason == 1) {
		__sync_fetch_and_add(&t->shootdowns_received, 1);
		return 0;
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *f = bpf_map_lookup_elem(&inflight, &tid);
	if (!f) {
		__sync_fetch_and_add(&t->flushes_outside_calls, 1);
		return 0;
	}
	__u32 k = f->kind;
	struct trace_stats *st = bpf_map_lookup_elem(&stats, &k);
	if (!st)
		return 0;
	if (ctx->reason == 4)
		__sync_fetch_and_add(&st->ipi_rounds, 1);
	else if (ctx->reason == 2 || ctx->reason == 3)
		__sync_fetch_and_add(&st->local_flushes, 1);
	return 0;
}
