// SPDX-License-Identifier: MIT
/*
 * madvisev-fault-latency: how long a thread's page faults wait while
 * another thread of the same process runs MADV_ZERO over pages in the same
 * page table.  A fault takes that page table's lock; MADV_ZERO takes it
 * too while it walks the entries, and a kernel that clears the pages
 * while holding it makes the fault wait for the clearing, or, when the
 * holder's vCPU is preempted by the host, for a whole host time slice.
 *
 * One 2 MiB-aligned area in 4 KiB pages (one page table): the zeroing
 * thread writes its first ZERO_PAGES pages and zeroes them, again and
 * again; the main thread discards the last FAULT_PAGES pages with one
 * MADV_DONTNEED and faults them back in one write each, timing each
 * write.  Run once with the zeroing thread and once without (the
 * baseline), and prints both: the faults' p50, p99 and p99.9 and the
 * zero calls' mean, in microseconds, as one JSON object on stdout.
 *
 * Usage: madvisev-fault-latency [--seconds S]
 * Exit 0 measured, 1 failed, 2 bad usage, 77 no MADV_ZERO.
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
#include <time.h>
#include <unistd.h>

#define MADV_ZERO_ADVICE 1000 /* the series' MADV_ZERO */
#define AREA (2UL << 20)
#define FAULT_PAGES 64

static double seconds = 2;
static atomic_int stop;
static atomic_ulong zero_calls;
static double zero_ns_total;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct samples {
	double *v;
	size_t n, cap;
};

static void add(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1 << 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			perror("madvisev-fault-latency: realloc");
			exit(1);
		}
	}
	s->v[s->n++] = x;
}

static double pct(const struct samples *s, double p)
{
	size_t i = (size_t)(p * (double)(s->n - 1));

	return s->n ? s->v[i] / 1e3 : 0;
}

struct zeroer {
	char *m;
	size_t len;
};

static void *zeroer_main(void *arg)
{
	struct zeroer *z = arg;
	double t0, total = 0;
	unsigned long n = 0;

	while (!atomic_load(&stop)) {
		memset(z->m, 0x5a, z->len);
		t0 = now_ns();
		if (madvise(z->m, z->len, MADV_ZERO_ADVICE)) {
			perror("madvisev-fault-latency: MADV_ZERO");
			exit(1);
		}
		total += now_ns() - t0;
		n++;
	}
	zero_ns_total = total;
	atomic_store(&zero_calls, n);
	return NULL;
}

/* Fault the area's last FAULT_PAGES pages in, again and again, timing each. */
static void fault_loop(char *m, size_t ps, struct samples *s)
{
	char *f = m + AREA - FAULT_PAGES * ps;
	double end = now_ns() + seconds * 1e9, t0;
	size_t i;

	while (now_ns() < end) {
		if (madvise(f, FAULT_PAGES * ps, MADV_DONTNEED)) {
			perror("madvisev-fault-latency: MADV_DONTNEED");
			exit(1);
		}
		for (i = 0; i < FAULT_PAGES; i++) {
			t0 = now_ns();
			*(volatile char *)(f + i * ps) = 1;
			add(s, now_ns() - t0);
		}
	}
	qsort(s->v, s->n, sizeof(*s->v), cmp);
}

static void print_faults(const char *name, const struct samples *s)
{
	printf("\"%s\": {\"faults\": %zu, \"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f}",
	       name, s->n, pct(s, 0.5), pct(s, 0.99), pct(s, 0.999), pct(s, 1.0));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct samples alone = { 0 }, beside = { 0 };
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	struct zeroer z;
	pthread_t t;
	char *raw, *m, *end;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 's')
			return 2;
		seconds = strtod(optarg, &end);
		if (*end || !(seconds > 0)) {
			fprintf(stderr, "madvisev-fault-latency: bad --seconds '%s'\n", optarg);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: madvisev-fault-latency [--seconds S]\n");
		return 2;
	}
	raw = mmap(NULL, 2 * AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("madvisev-fault-latency: mmap");
		return 1;
	}
	m = (char *)(((uintptr_t)raw + AREA - 1) & ~(AREA - 1));
	madvise(m, AREA, MADV_NOHUGEPAGE);
	memset(m, 1, AREA);
	if (madvise(m, ps, MADV_ZERO_ADVICE)) {
		fprintf(stderr, "madvisev-fault-latency: no MADV_ZERO: %s\n", strerror(errno));
		return 77;
	}

	fault_loop(m, ps, &alone);
	z.m = m;
	z.len = AREA - FAULT_PAGES * ps;
	if (pthread_create(&t, NULL, zeroer_main, &z)) {
		fprintf(stderr, "madvisev-fault-latency: pthread_create failed\n");
		return 1;
	}
	fault_loop(m, ps, &beside);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);

	printf("{\"zero_pages\": %zu, \"fault_pages\": %d, \"seconds\": %.2f, ", z.len / ps,
	       FAULT_PAGES, seconds);
	print_faults("alone", &alone);
	printf(", ");
	print_faults("beside_zero", &beside);
	printf(", \"zero_calls\": %lu, \"zero_call_mean_us\": %.1f}\n", atomic_load(&zero_calls),
	       atomic_load(&zero_calls) ? zero_ns_total / atomic_load(&zero_calls) / 1e3 : 0);
	return 0;
}
