// SPDX-License-Identifier: MIT
/*
 * trace-child MADVISE_CALLS PM_CALLS PM_VLEN [sibling]: make exactly that
 * many madvise(MADV_DONTNEED) calls (one range each) and process_madvise
 * (PIDFD_SELF) calls of PM_VLEN ranges each, with raw system calls, each
 * over dirtied pages; with "sibling", a second thread spins on another
 * CPU meanwhile, so that each flush needs an IPI round.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: trace-child MADVISE_CALLS PM_CALLS PM_VLEN [sibling]\n");
		return 2;
	}
	int nm = atoi(argv[1]), np = atoi(argv[2]), vlen = atoi(argv[3]);
	if (nm < 0 || np < 0 || vlen < 1 || vlen > 1024) {
		fprintf(stderr, "trace-child: bad counts\n");
		return 2;
	}
	long ps = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * 1024 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec *iov = calloc(vlen, sizeof(*iov));
	if (m == MAP_FAILED || !iov)
		return 1;
	pthread_t t;
	int sibling = argc > 4;
	if (sibling) {
		pin(0);
		pthread_create(&t, NULL, spin, NULL);
		usleep(50000);
	}
	for (int i = 0; i < nm; i++) {
		m[0] = 1;
		if (syscall(SYS_madvise, m, ps, MADV_DONTNEED) != 0)
			return 1;
	}
	for (int i = 0; i < vlen; i++) {
		iov[i].iov_base = m + 2 * i * ps;
		iov[i].iov_len = ps;
	}
	int pm_ok = 1;
	for (int i = 0; i < np; i++) {
		for (int k = 0; k < vlen; k++)
			m[2 * k * ps] = 1;
		if (syscall(SYS_process_madvise, -10000 /* PIDFD_SELF */, iov, vlen, MADV_DONTNEED, 0) < 0)
			pm_ok = 0;
	}
	fprintf(stderr, "trace-child: %d madvise, %d process_madvise x %d ranges (%s)\n", nm, np, vlen,
	       pm_ok ? "ok" : "process_madvise refused");
	/* No join: a thread that exits makes glibc madvise() its stack, a
	 * call this program did not ask for.  exit_group() ends the sibling. */
	(void)stop;
	(void)t;
	_exit(0);
}
