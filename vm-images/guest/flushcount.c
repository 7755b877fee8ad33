// SPDX-License-Identifier: GPL-2.0
/*
 * madvisev-flushcount: what one MADV_DONTNEED of N ranges costs in the
 * kernel's TLB-flush path, counted with kprobe events (tracefs), where
 * there are no shootdown IPIs to count (arm64 flushes by broadcast TLBI).
 *
 *   madvisev-flushcount [-n VLEN] [-r ROUNDS]
 *
 * The probes are set up beforehand (guest-run.sh's count_flushes):
 * every kprobe event in /sys/kernel/tracing/kprobe_profile is read
 * before and after each call (events NAME_1, NAME_2, ... are summed as
 * NAME: one function's several copies), and its hits, averaged over
 * ROUNDS calls, are printed per case:
 *
 *   madvisev   one madvisev() over VLEN one-page ranges, a page apart, in
 *              one VMA
 *   madvise    VLEN madvise() calls over the same ranges
 *   madvisev-vmas, madvise-vmas   the same with each range in a VMA of its
 *              own (the pages between them read-only)
 *   madvisev-contiguous   one madvisev() of one range of VLEN pages
 *
 * Each range has its page written first, so every call has something to
 * zap.  Exit 0 when every call advised every byte, 1 otherwise, 2 when
 * the kernel has no kprobe_profile.  The counts are system-wide: run it
 * on an otherwise idle guest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef __NR_madvisev
#define __NR_madvisev 1000
#endif

#define PROFILE "/sys/kernel/tracing/kprobe_profile"
#define MAXPROBES 64

struct counts {
	int n;
	char name[MAXPROBES][64];
	unsigned long long hits[MAXPROBES];
};

static int read_counts(struct counts *c)
{
	char line[256];
	FILE *f = fopen(PROFILE, "r");

	if (!f)
		return -1;
	c->n = 0;
	while (c->n < MAXPROBES && fgets(line, sizeof(line), f)) {
		char name[64];
		unsigned long long hits;
		size_t len;
		int i;

		if (sscanf(line, "%63s %llu", name, &hits) != 2)
			continue;
		/* NAME_1, NAME_2, ...: probes of one function's copies, summed */
		len = strlen(name);
		while (len > 0 && name[len - 1] >= '0' && name[len - 1] <= '9')
			len--;
		if (len > 0 && len < strlen(name) && name[len - 1] == '_')
			name[len - 1] = 0;
		for (i = 0; i < c->n && strcmp(c->name[i], name); i++)
			;
		if (i == c->n) {
			strcpy(c->name[c->n], name);
			c->hits[c->n++] = 0;
		}
		c->hits[i] += hits;
	}
	fclose(f);
	return 0;
}

static long page;
static int failed;

static void check(const char *what, long got, long want)
{
	if (got != want) {
		fprintf(stderr, "madvisev-flushcount: %s returned %ld (%s), want %ld\n", what, got,
			got < 0 ? strerror(errno) : "short", want);
		failed = 1;
	}
}

/*
 * One case, ROUNDS times: NR ranges of LEN bytes, STRIDE bytes apart from
 * BASE, each page written first, then advised by one madvisev() or (CALLS)
 * one madvise() per range.  Prints each probe's hits per round.
 */
static void run_case(const char *name, char *base, int nr, size_t len, size_t stride, int calls,
		     int rounds)
{
	struct iovec *iov = calloc(nr, sizeof(*iov));
	struct counts before, after;
	double sum[MAXPROBES] = { 0 };

	for (int i = 0; i < nr; i++) {
		iov[i].iov_base = base + i * stride;
		iov[i].iov_len = len;
	}
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < nr; i++)
			for (size_t off = 0; off < len; off += page)
				((char *)iov[i].iov_base)[off] = 1;
		read_counts(&before);
		if (calls) {
			for (int i = 0; i < nr; i++)
				check("madvise", madvise(iov[i].iov_base, len, MADV_DONTNEED), 0);
		} else {
			check("madvisev", syscall(__NR_madvisev, iov, nr, MADV_DONTNEED, 0),
			      (long)(nr * len));
		}
		read_counts(&after);
		for (int i = 0; i < after.n && i < before.n; i++)
			sum[i] += (double)(after.hits[i] - before.hits[i]);
	}
	printf("%-20s", name);
	for (int i = 0; i < after.n; i++)
		printf(" %s=%.2f", after.name[i], sum[i] / rounds);
	printf("\n");
	free(iov);
}

int main(int argc, char **argv)
{
	int vlen = 16, rounds = 10, opt;
	struct counts c;
	char *base;
	size_t len;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		switch (opt) {
		case 'n':
			vlen = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: madvisev-flushcount [-n VLEN] [-r ROUNDS]\n");
			return 2;
		}
	}
	if (vlen < 1 || vlen > 1024 || rounds < 1) {
		fprintf(stderr, "madvisev-flushcount: bad -n or -r\n");
		return 2;
	}
	if (read_counts(&c) || c.n == 0) {
		fprintf(stderr, "madvisev-flushcount: no kprobe events in %s\n", PROFILE);
		return 2;
	}
	page = sysconf(_SC_PAGESIZE);
	len = 2 * (size_t)vlen * page;
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("# per call, mean of %d; %d ranges of one page (%ld bytes), a page apart\n", rounds,
	       vlen, page);
	run_case("madvisev", base, vlen, page, 2 * page, 0, rounds);
	run_case("madvise", base, vlen, page, 2 * page, 1, rounds);
	run_case("madvisev-contiguous", base, 1, vlen * page, 0, 0, rounds);
	/* Each range its own VMA: the pages between them read-only. */
	for (int i = 0; i < vlen; i++) {
		if (mprotect(base + (2 * i + 1) * page, page, PROT_READ)) {
			perror("mprotect");
			return 1;
		}
	}
	run_case("madvisev-vmas", base, vlen, page, 2 * page, 0, rounds);
	run_case("madvise-vmas", base, vlen, page, 2 * page, 1, rounds);
	munmap(base, len);
	return failed;
}
