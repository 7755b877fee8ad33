// SPDX-License-Identifier: MIT
/*
 * madvisev-lock-latency: how long a thread that maps and unmaps memory
 * waits while another thread of the same process runs long madvisev(2)
 * calls.  mmap() and munmap() take mmap_lock for writing; a madvisev()
 * call over a vector holds it for reading, for the whole vector unless
 * the kernel bounds the hold.  The advisor thread dirties RANGES ranges
 * of RANGE_KIB KiB and discards them with one MADV_DONTNEED madvisev()
 * call, again and again; the main thread times mmap()+munmap() of one
 * page meanwhile.  Prints the call times, and the latencies of the
 * mmap()+munmap() pairs that overlapped a madvisev() call; with --json,
 * also appends them to FILE as one JSON object per line.
 *
 * Usage: madvisev-lock-latency [--ranges N] [--range-kib K] [--seconds S]
 *                              [--json FILE]
 * Exit 0 measured, 1 failed, 2 bad usage, 77 no madvisev(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "madvisev.h" /* MADVISEV_QUERY */

static size_t nranges = 1024, range_kib = 64;
static double seconds = 3;
static const char *json_path;
static atomic_int stop;
static atomic_int advisor_ready;
static atomic_uint calls_started, calls_done;

struct samples {
	double *v;
	size_t n, cap;
};

static void add(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			perror("madvisev-lock-latency: realloc");
			exit(1);
		}
	}
	s->v[s->n++] = x;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(struct samples *s, double p)
{
	size_t i = (size_t)(p * (double)(s->n - 1));

	return s->v[i];
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct samples calls;
static const char *advisor_error;

static void *advisor(void *arg)
{
	size_t range = range_kib << 10, page = (size_t)sysconf(_SC_PAGESIZE);
	size_t stride = range + page; /* a gap keeps the ranges apart */
	struct iovec *iov = calloc(nranges, sizeof(*iov));
	char *base;

	(void)arg;
	base = mmap(NULL, nranges * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (!iov || base == MAP_FAILED) {
		advisor_error = "mmap";
		atomic_store(&advisor_ready, 1);
		return NULL;
	}
	madvise(base, nranges * stride, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < nranges; i++)
		iov[i] = (struct iovec){ base + i * stride, range };
	atomic_store(&advisor_ready, 1);
	while (!atomic_load(&stop)) {
		for (size_t i = 0; i < nranges; i++)
			for (size_t off = 0; off < range; off += page)
				base[i * stride + off] = 1;
		atomic_fetch_add(&calls_started, 1);
		double t0 = now_us();
		long r = syscall(__NR_madvisev, iov, nranges, MADV_DONTNEED, 0);
		double t1 = now_us();

		atomic_fetch_add(&calls_done, 1);

		if (r != (long)(nranges * range)) {
			advisor_error = "madvisev returned a short count";
			break;
		}
		add(&calls, t1 - t0);
	}
	munmap(base, nranges * stride);
	free(iov);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ranges", required_argument, NULL, 'r' },
		{ "range-kib", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct samples maps = { 0 };
	pthread_t t;
	double end;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *e = NULL;

		switch (c) {
		case 'r':
			nranges = strtoul(optarg, &e, 10);
			break;
		case 'k':
			range_kib = strtoul(optarg, &e, 10);
			break;
		case 's':
			seconds = strtod(optarg, &e);
			break;
		case 'j':
			json_path = optarg;
			continue;
		default:
			return 2;
		}
		if (!e || *e || (c == 'r' && (nranges < 1 || nranges > 1024)) ||
		    (c == 'k' && range_kib < 4) || (c == 's' && seconds <= 0)) {
			fprintf(stderr, "madvisev-lock-latency: bad value '%s' for --%s\n", optarg,
				c == 'r'   ? "ranges"
				: c == 'k' ? "range-kib"
					   : "seconds");
			return 2;
		}
	}
	if (syscall(__NR_madvisev, NULL, 0, 0, MADVISEV_QUERY) != MADVISEV_QUERY_MAGIC) {
		printf("madvisev-lock-latency: SKIP: no madvisev(2) here\n");
		return 77;
	}
	if (pthread_create(&t, NULL, advisor, NULL)) {
		perror("madvisev-lock-latency: pthread_create");
		return 1;
	}
	while (!atomic_load(&advisor_ready))
		sched_yield();
	end = now_us() + seconds * 1e6;
	while (!advisor_error && now_us() < end) {
		unsigned int started = atomic_load(&calls_started);
		unsigned int done = atomic_load(&calls_done);
		double t0 = now_us();
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);

		if (p == MAP_FAILED || munmap(p, 4096)) {
			perror("madvisev-lock-latency: mmap/munmap");
			return 1;
		}
		/* Overlapped a call: one was running at the start, or one
		 * started before the pair ended.
		 */
		if (started != done || atomic_load(&calls_started) != started)
			add(&maps, now_us() - t0);
		usleep(200); /* a mapper, not a lock hog */
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	if (advisor_error) {
		fprintf(stderr, "madvisev-lock-latency: advisor: %s\n", advisor_error);
		return 1;
	}
	if (!calls.n || !maps.n) {
		fprintf(stderr, "madvisev-lock-latency: nothing measured\n");
		return 1;
	}
	qsort(calls.v, calls.n, sizeof(double), cmp);
	qsort(maps.v, maps.n, sizeof(double), cmp);
	printf("lock-latency: %zu ranges x %zu KiB per call: %zu calls, call p50 %.0f us, max %.0f us\n",
	       nranges, range_kib, calls.n, pct(&calls, 0.5), calls.v[calls.n - 1]);
	printf("lock-latency: mmap+munmap during the calls: %zu samples, p50 %.0f us, p99 %.0f us, max %.0f us\n",
	       maps.n, pct(&maps, 0.5), pct(&maps, 0.99), maps.v[maps.n - 1]);
	if (json_path) {
		FILE *f = fopen(json_path, "a");

		if (!f ||
		    fprintf(f,
			    "{\"ranges\": %zu, \"range_kib\": %zu, \"seconds\": %g, "
			    "\"calls\": %zu, \"call_p50_us\": %.0f, \"call_max_us\": %.0f, "
			    "\"samples\": %zu, \"wait_p50_us\": %.0f, \"wait_p99_us\": %.0f, "
			    "\"wait_max_us\": %.0f}\n",
			    nranges, range_kib, seconds, calls.n, pct(&calls, 0.5),
			    calls.v[calls.n - 1], maps.n, pct(&maps, 0.5), pct(&maps, 0.99),
			    maps.v[maps.n - 1]) < 0 ||
		    fclose(f)) {
			perror("madvisev-lock-latency: writing the JSON");
			return 1;
		}
	}
	return 0;
}
