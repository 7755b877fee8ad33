// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * madvisev-trace: attribute TLB flushes to the madvise-family system calls
 * of one process, with libbpf (CO-RE; BPF skeleton made at build time).
 *
 *   madvisev-trace [--json] -p PID      trace a running process until it
 *                                       exits or SIGINT
 *   madvisev-trace [--json] -- CMD ...  run CMD and trace it
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <linux/types.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "madvisev-trace.h"
#include "madvisev-trace.skel.h"

static const char *kind_names[TRACE_KINDS] = { "madvise", "process_madvise", "madvisev",
					       "io_uring_enter", "io_uring_madvise" };
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: madvisev-trace [--json] -p PID\n"
		"       madvisev-trace [--json] -- COMMAND [ARG...]\n"
		"Per system call (madvise, process_madvise, madvisev, io_uring_enter) of one\n"
		"process, and per io_uring madvise operation: calls, errors, ranges, pages\n"
		"zapped and TLB flushes done by the running thread meanwhile (local ones, and\n"
		"remote shootdown IPI rounds sent), a log2 latency histogram; and the\n"
		"shootdowns the process's threads received.  Needs root and kernel BTF.\n");
}

/* Tracepoints are found through tracefs; mount it if nobody has. */
static void ensure_tracefs(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events", &st) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0)
		fprintf(stderr, "madvisev-trace: mounting tracefs: %s\n", strerror(errno));
}

static __u64 percentile(const struct trace_stats *s, double q)
{
	__u64 want = (__u64)(q * (double)s->calls), seen = 0;

	for (int i = 0; i < HIST_SLOTS; i++) {
		seen += s->hist[i];
		if (seen > want)
			return 1ULL << i;
	}
	return 0;
}

static void report(struct madvisev_trace_bpf *skel, bool json)
{
	struct trace_stats s[TRACE_KINDS];
	struct trace_totals t = { 0 };
	__u32 zero = 0;

	for (__u32 k = 0; k < TRACE_KINDS; k++)
		if (bpf_map__lookup_elem(skel->maps.stats, &k, sizeof(k), &s[k], sizeof(s[k]), 0))
			memset(&s[k], 0, sizeof(s[k]));
	bpf_map__lookup_elem(skel->maps.totals, &zero, sizeof(zero), &t, sizeof(t), 0);
	/* Flushes no traced call or io_uring madvise operation claimed. */
	__u32 tid, *prev = NULL;
	while (bpf_map__get_next_key(skel->maps.loose, prev, &tid, sizeof(tid)) == 0) {
		struct trace_loose l;
		if (!bpf_map__lookup_elem(skel->maps.loose, &tid, sizeof(tid), &l, sizeof(l), 0))
			t.flushes_outside_calls += l.local_flushes + l.ipi_rounds;
		prev = &tid;
	}

	if (json) {
		printf("{\"syscalls\": [");
		bool first = true;
		for (int k = 0; k < TRACE_KINDS; k++) {
			if (!s[k].calls)
				continue;
			printf("%s\n  {\"syscall\": \"%s\", \"calls\": %llu, \"errors\": %llu, \"ranges\": %llu, "
			       "\"pages_zapped\": %llu, \"local_flushes\": %llu, \"ipi_rounds\": %llu, "
			       "\"avg_ns\": %llu, \"hist_log2_ns\": [",
			       first ? "" : ",", kind_names[k], s[k].calls, s[k].errors,
			       s[k].ranges, s[k].pages_zapped, s[k].local_flushes, s[k].ipi_rounds,
			       s[k].total_ns / s[k].calls);
			for (int i = 0; i < HIST_SLOTS; i++)
				printf("%s%llu", i ? ", " : "", s[k].hist[i]);
			printf("]}");
			first = false;
		}
		printf("\n], \"shootdowns_received\": %llu, \"flushes_outside_calls\": %llu}\n",
		       t.shootdowns_received, t.flushes_outside_calls);
		return;
	}
	printf("%-16s %9s %7s %9s %11s %11s %10s %9s %9s\n", "syscall", "calls", "errors", "ranges",
	       "pages-zapped", "local-flush", "ipi-rounds", "avg-us", "p99<=us");
	for (int k = 0; k < TRACE_KINDS; k++) {
		if (!s[k].calls)
			continue;
		printf("%-16s %9llu %7llu %9llu %11llu %11llu %10llu %9.1f %9.1f\n", kind_names[k],
		       s[k].calls, s[k].errors, s[k].ranges, s[k].pages_zapped, s[k].local_flushes,
		       s[k].ipi_rounds, (double)s[k].total_ns / (double)s[k].calls / 1000.0,
		       (double)(percentile(&s[k], 0.99) * 2) / 1000.0);
	}
	/* Latency histograms: a row of bars per kind, slot i counting calls
	 * that took [2^i, 2^(i+1)) ns. */
	for (int k = 0; k < TRACE_KINDS; k++) {
		if (!s[k].calls)
			continue;
		int lo = HIST_SLOTS, hi = 0;
		__u64 most = 0;
		for (int i = 0; i < HIST_SLOTS; i++) {
			if (!s[k].hist[i])
				continue;
			lo = i < lo ? i : lo;
			hi = i;
			most = s[k].hist[i] > most ? s[k].hist[i] : most;
		}
		printf("\n%s latency\n", kind_names[k]);
		for (int i = lo; i <= hi; i++) {
			int bar = (int)((s[k].hist[i] * 40 + most - 1) / most);
			printf("  %10.3f us < %-10.3f %9llu |%.*s\n", (double)(1ULL << i) / 1000.0,
			       (double)(2ULL << i) / 1000.0, s[k].hist[i], bar,
			       "****************************************");
		}
	}
	printf("\nshootdowns received by the process's threads: %llu; flushes outside these calls: %llu\n",
	       t.shootdowns_received, t.flushes_outside_calls);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	pid_t pid = 0;
	char *end;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			pid = (pid_t)strtol(optarg, &end, 10);
			if (*end || errno || pid <= 0) {
				fprintf(stderr, "madvisev-trace: bad pid '%s' (try --help)\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "madvisev-trace: unknown option '%s' (try --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	bool run_cmd = optind < argc;
	if (run_cmd == (pid != 0)) {
		fprintf(stderr, "madvisev-trace: give either -p PID or -- COMMAND (try --help)\n");
		return 2;
	}
	if (pid && kill(pid, 0) != 0) {
		fprintf(stderr, "madvisev-trace: no process %d: %s\n", pid, strerror(errno));
		return 1;
	}

	/* The child waits on a pipe until the probes are attached. */
	int go[2] = { -1, -1 };
	if (run_cmd) {
		if (pipe2(go, O_CLOEXEC) != 0) {
			perror("madvisev-trace: pipe");
			return 1;
		}
		pid = fork();
		if (pid < 0) {
			perror("madvisev-trace: fork");
			return 1;
		}
		if (pid == 0) {
			char b;
			close(go[1]);
			if (read(go[0], &b, 1) != 1)
				_exit(127);
			execvp(argv[optind], argv + optind);
			fprintf(stderr, "madvisev-trace: %s: %s\n", argv[optind], strerror(errno));
			_exit(127);
		}
		close(go[0]);
	}

	/* A benchmark tracing itself may stop reading our stderr once we are
	 * attached; a late warning must not kill us before the report. */
	signal(SIGPIPE, SIG_IGN);
	libbpf_set_print(libbpf_quiet);
	ensure_tracefs();
	struct madvisev_trace_bpf *skel = madvisev_trace_bpf__open();
	if (!skel) {
		fprintf(stderr, "madvisev-trace: cannot open the BPF program: %s\n",
			strerror(errno));
		goto fail_child;
	}
	skel->rodata->target_tgid = pid;
	int err = madvisev_trace_bpf__load(skel);
	if (!err)
		err = madvisev_trace_bpf__attach(skel);
	if (err) {
		fprintf(stderr,
			"madvisev-trace: cannot load or attach (root and kernel BTF needed): %s\n",
			strerror(-err));
		madvisev_trace_bpf__destroy(skel);
		goto fail_child;
	}

	int status = 0, rc = 0;
	signal(SIGINT, on_sigint);
	if (run_cmd) {
		if (write(go[1], "g", 1) != 1)
			perror("madvisev-trace: pipe");
		close(go[1]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	} else {
		signal(SIGTERM, on_sigint);
		/* Said once, so that a program tracing itself knows when to start. */
		fprintf(stderr, "madvisev-trace: attached to %d\n", pid);
		while (!interrupted && kill(pid, 0) == 0)
			usleep(20000);
	}
	report(skel, json);
	madvisev_trace_bpf__destroy(skel);
	return rc;

fail_child:
	if (run_cmd) {
		close(go[1]); /* the child reads EOF and exits */
		waitpid(pid, NULL, 0);
	}
	return 1;
}
