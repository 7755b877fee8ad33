// SPDX-License-Identifier: MIT
/*
 * trace-child MADVISE PM MADVISEV URING VLEN [sibling]: make exactly MADVISE
 * madvise(MADV_DONTNEED) calls of one range, PM process_madvise(PIDFD_SELF)
 * calls and MADVISEV madvisev() calls of VLEN ranges each (raw system
 * calls), and one io_uring_enter() submitting URING madvise operations;
 * every range is one page, dirtied just before, so each successful range
 * zaps exactly one page.  With "sibling", a second thread spins on another
 * CPU meanwhile, so that each flush needs an IPI round.
 *
 * What it asked for and how many of those calls failed (process_madvise
 * and madvisev are missing on some kernels) goes to stderr as one JSON
 * line after "trace-child: ", for the test to hold the tracer's figures to.
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "madvisev.h"

/* The series' number (kernel-patch/0004); this program runs only in the
 * patched guest, where /sys/kernel/mm/madvisev/syscall_nr says the same. */
#ifndef __NR_madvisev
#define __NR_madvisev 1000
#endif

#define PIDFD_SELF -10000 /* the calling thread; its mm is the process's */

static atomic_int stop;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *spin(void *arg)
{
	(void)arg;
	pin(1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		;
	return NULL;
}

static int count(const char *s, int max)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= 0 && v <= max ? (int)v : -1;
}

static char *arena;
static long page;

/* Dirty the page of each of @vlen ranges: one page every other page. */
static void dirty(const struct iovec *iov, int vlen)
{
	for (int k = 0; k < vlen; k++)
		*(volatile char *)iov[k].iov_base = 1;
}

/*
 * One io_uring_enter() that submits @n madvise operations and waits for
 * them.  Linked, as the library's backend links them: one after another,
 * so no two io-wq workers change the RSS counters at the same time, which
 * would blur the tracer's per-operation page counts.
 */
static int uring_madvise(const struct iovec *iov, int n, int *failed)
{
	struct io_uring ring;

	if (io_uring_queue_init(n, &ring, 0) < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io_uring_prep_madvise(sqe, iov[k].iov_base, iov[k].iov_len, MADV_DONTNEED);
		if (k + 1 < n)
			sqe->flags |= IOSQE_IO_LINK;
	}
	if (io_uring_submit_and_wait(&ring, n) != n)
		return -1;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe (&ring, head, cqe) {
		*failed += cqe->res < 0;
		seen++;
	}
	io_uring_cq_advance(&ring, seen);
	/* The ring stays mapped: unmapping it at exit is no call of ours to trace. */
	return seen == (unsigned)n ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 6 || argc > 7 || (argc == 7 && strcmp(argv[6], "sibling") != 0)) {
		fprintf(stderr, "usage: trace-child MADVISE PM MADVISEV URING VLEN [sibling]\n");
		return 2;
	}
	int nm = count(argv[1], 1 << 20), np = count(argv[2], 1 << 20),
	    nv = count(argv[3], 1 << 20);
	int nu = count(argv[4], MADVISEV_IOV_MAX), vlen = count(argv[5], MADVISEV_IOV_MAX);
	if (nm < 0 || np < 0 || nv < 0 || nu < 0 || vlen < 1) {
		fprintf(stderr, "trace-child: bad counts (try without arguments)\n");
		return 2;
	}
	page = sysconf(_SC_PAGESIZE);
	/* Base pages only, so that one range zaps exactly one page (a prctl,
	 * not MADV_NOHUGEPAGE: that would be one more madvise call to count). */
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
		perror("trace-child: PR_SET_THP_DISABLE");
		return 1;
	}
	int slots = vlen > nu ? vlen : nu;
	arena = mmap(NULL, 2 * slots * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	struct iovec *iov = calloc(slots, sizeof(*iov));
	if (arena == MAP_FAILED || !iov) {
		perror("trace-child");
		return 1;
	}
	for (int k = 0; k < slots; k++) {
		iov[k].iov_base = arena + 2 * k * page;
		iov[k].iov_len = page;
	}
	pthread_t t;
	if (argc == 7) {
		pin(0);
		pthread_create(&t, NULL, spin, NULL);
		usleep(50000);
	}
	int m_failed = 0, pm_failed = 0, v_failed = 0, u_failed = 0;
	for (int i = 0; i < nm; i++) {
		dirty(iov, 1);
		m_failed += syscall(SYS_madvise, arena, page, MADV_DONTNEED) != 0;
	}
	for (int i = 0; i < np; i++) {
		dirty(iov, vlen);
		pm_failed +=
			syscall(SYS_process_madvise, PIDFD_SELF, iov, vlen, MADV_DONTNEED, 0) < 0;
	}
	for (int i = 0; i < nv; i++) {
		dirty(iov, vlen);
		v_failed += syscall(__NR_madvisev, iov, vlen, MADV_DONTNEED, 0) < 0;
	}
	if (nu) {
		dirty(iov, nu);
		if (uring_madvise(iov, nu, &u_failed) != 0) {
			fprintf(stderr, "trace-child: io_uring madvise could not run\n");
			return 1;
		}
	}
	fprintf(stderr,
		"trace-child: {\"vlen\": %d, \"madvise\": [%d, %d], \"process_madvise\": [%d, %d], "
		"\"madvisev\": [%d, %d], \"io_uring_madvise\": [%d, %d], \"sibling\": %s}\n",
		vlen, nm, m_failed, np, pm_failed, nv, v_failed, nu, u_failed,
		argc == 7 ? "true" : "false");
	/* No join: a thread that exits makes glibc madvise() its stack, a
	 * call this program did not ask for.  exit_group() ends the sibling. */
	(void)stop;
	(void)t;
	_exit(0);
}
