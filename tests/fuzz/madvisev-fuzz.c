// SPDX-License-Identifier: MIT
/*
 * madvisev-fuzz: differential fuzzer for the madvisev(2) system call.
 *
 * Two twin arenas, A and B, get the same random layout (private, shared,
 * file-backed, THP, hugetlb, read-only, PROT_NONE, mlocked segments and
 * holes), changed a little every iteration, and the same data.  A random
 * vector (valid or not) goes to madvisev() over A; the model is what the
 * argument rules say for invalid vectors, and otherwise what a loop of
 * madvise() calls over the same ranges of B returns.  Results must match
 * exactly (bytes or errno), and afterwards A and B must hold the same
 * bytes.  The seed is printed; the same seed replays the same run.
 *
 * Exit 0 if every call matched, 1 on the first mismatch, 2 on bad usage,
 * 77 if the kernel has no madvisev(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "madvisev.h" /* the system call's number and MADVISEV_QUERY */

#define SLOT (2UL << 20) /* segments are 2 MiB slots: THP/hugetlb aligned */
#define NSLOTS 16
#define ARENA (NSLOTS * SLOT)
#define MAX_IOV 1024

enum seg_type {
	SEG_HOLE,
	SEG_PRIVATE,
	SEG_PRIVATE_THP,
	SEG_SHARED,
	SEG_FILE_PRIVATE,
	SEG_FILE_SHARED,
	SEG_READONLY,
	SEG_NONE,
	SEG_LOCKED,
	SEG_HUGETLB,
	SEG_HALF,
	SEG_TYPES
};
static const char *seg_names[] = { "hole",	   "private",	  "private-thp", "shared",
				   "file-private", "file-shared", "read-only",	 "prot-none",
				   "locked",	   "hugetlb",	  "half" };

static uint64_t rng_state;
static uint64_t rnd(void) /* splitmix64: small, seedable, reproducible */
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static char *arena_a, *arena_b;
static size_t page;
static enum seg_type layout[NSLOTS];
static bool have_hugetlb;
static unsigned long calls, mismatches;

static long sys_madvisev(const struct iovec *iov, size_t n, int advice, unsigned int flags)
{
	return syscall(__NR_madvisev, iov, n, advice, flags);
}

/* Map one segment type at @at (a slot of arena A or B). */
static void map_segment(char *at, enum seg_type t)
{
	int prot = PROT_READ | PROT_WRITE, flags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS;
	size_t len = SLOT;
	int fd = -1;
	void *p;

	munmap(at, SLOT);
	switch (t) {
	case SEG_HOLE:
		return;
	case SEG_SHARED:
		flags = MAP_FIXED | MAP_SHARED | MAP_ANONYMOUS;
		break;
	case SEG_FILE_PRIVATE:
	case SEG_FILE_SHARED:
		fd = memfd_create("madvisev-fuzz", 0);
		if (fd < 0 || ftruncate(fd, SLOT) != 0) {
			perror("madvisev-fuzz: memfd");
			exit(2);
		}
		flags = MAP_FIXED | (t == SEG_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE);
		break;
	case SEG_READONLY:
	case SEG_NONE:
		break; /* protection set after filling */
	case SEG_HUGETLB:
		flags |= MAP_HUGETLB;
		break;
	case SEG_HALF:
		len = SLOT / 2;
		break;
	default:
		break;
	}
	p = mmap(at, len, prot, flags, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "madvisev-fuzz: mmap %s: %s\n", seg_names[t], strerror(errno));
		exit(2);
	}
	if (t == SEG_PRIVATE_THP)
		madvise(p, len, MADV_HUGEPAGE);
	if (t == SEG_LOCKED && mlock(p, len) != 0) {
		fprintf(stderr, "madvisev-fuzz: mlock: %s\n", strerror(errno));
		exit(2);
	}
}

static size_t seg_len(enum seg_type t)
{
	return t == SEG_HOLE ? 0 : t == SEG_HALF ? SLOT / 2 : SLOT;
}
static bool seg_writable(enum seg_type t)
{
	return t != SEG_HOLE && t != SEG_READONLY && t != SEG_NONE;
}

/* Give slot @i a new random type, and the same random data, in both arenas. */
static void reshape(int i)
{
	enum seg_type t;

	do
		t = below(SEG_TYPES);
	while (t == SEG_HUGETLB && !have_hugetlb);
	layout[i] = t;
	for (int twin = 0; twin < 2; twin++) {
		char *at = (twin ? arena_b : arena_a) + i * SLOT;
		uint64_t saved = rng_state;

		map_segment(at, t);
		if (t != SEG_HOLE) {
			/* The same pages dirtied with the same bytes in both twins. */
			size_t n = seg_len(t) / page;

			for (size_t k = 0; k < n; k++)
				if (below(8) == 0)
					memset(at + k * page, (int)(1 + below(255)), page);
			if (t == SEG_READONLY)
				mprotect(at, SLOT, PROT_READ);
			if (t == SEG_NONE)
				mprotect(at, SLOT, PROT_NONE);
		}
		if (!twin)
			rng_state = saved; /* replay the same choices for B */
	}
}

static const int good_advice[] = {
	MADV_NORMAL,
	MADV_RANDOM,
	MADV_SEQUENTIAL,
	MADV_WILLNEED,
	MADV_DONTNEED,
	MADV_FREE,
	MADV_REMOVE,
	MADV_DONTFORK,
	MADV_DOFORK,
	MADV_MERGEABLE,
	MADV_UNMERGEABLE,
	MADV_HUGEPAGE,
	MADV_NOHUGEPAGE,
	MADV_DONTDUMP,
	MADV_DODUMP,
	MADV_WIPEONFORK,
	MADV_KEEPONFORK,
	MADV_COLD,
	MADV_PAGEOUT,
	MADV_POPULATE_READ,
	MADV_POPULATE_WRITE,
	24 /* DONTNEED_LOCKED */,
	1000 /* ZERO */
};
/* Never: HWPOISON and SOFT_OFFLINE damage real pages; COLLAPSE can fail
 * for want of memory in one twin and not the other. */
static const int bad_advice[] = { -1, 5, 6, 7, 26, 99, 102, 103, 999, 1001, 0x7fffffff };

static int pick_advice(void)
{
	if (below(20) == 0)
		return bad_advice[below(sizeof(bad_advice) / sizeof(bad_advice[0]))];
	if (below(3) == 0) /* the ones the call gathers, more often */
		return (int[]){ MADV_DONTNEED, MADV_FREE, 24, 1000 }[below(4)];
	return good_advice[below(sizeof(good_advice) / sizeof(good_advice[0]))];
}

/* One range: mostly inside arena A, sometimes nowhere or invalid. */
static struct iovec pick_range(void)
{
	struct iovec v;
	uintptr_t base;
	size_t len;

	switch (below(40)) {
	case 0: /* kernel address */
		base = 0xffff888000000000ULL + below(1024) * page;
		len = page * (1 + below(16));
		break;
	case 1: /* unaligned */
		base = (uintptr_t)arena_a + below(ARENA) + 1 + below(page - 1);
		len = 1 + below(4 * page);
		break;
	case 2: /* wraps the address space */
		base = (uintptr_t)arena_a + below(NSLOTS) * SLOT;
		len = (size_t)(-(intptr_t)(below(4) * page)) - base + below(8) * page;
		if (!len)
			len = SIZE_MAX;
		break;
	case 3: /* zero length, anywhere: skipped if page aligned, else EINVAL */
		base = below(2) ? (uintptr_t)arena_a + below(ARENA) : rnd();
		if (below(2))
			base &= ~(uintptr_t)(page - 1);
		len = 0;
		break;
	case 4: /* page zero, never mapped */
		base = 0;
		len = page * (1 + below(4));
		break;
	default: /* inside the arena, up to a few slots long */
		base = (uintptr_t)arena_a + below(ARENA / page) * page;
		len = below(4) == 0 ? below(3 * SLOT) : page * (1 + below(64));
		if (base + len > (uintptr_t)arena_a + ARENA + ARENA / 2)
			len = (uintptr_t)arena_a + ARENA - base;
		break;
	}
	v.iov_base = (void *)base;
	v.iov_len = len;
	return v;
}

static bool in_arena_a(const struct iovec *v)
{
	uintptr_t b = (uintptr_t)v->iov_base, a = (uintptr_t)arena_a;

	return b >= a && b < a + ARENA;
}

/* What the argument rules alone say: -errno, or 0 if the vector is valid. */
static int arg_verdict(const struct iovec *iov, size_t n, int advice, unsigned int flags,
		       bool bad_ptr)
{
	/* Which advice values this kernel takes depends on its config (KSM,
	 * THP): madvise() of zero bytes checks the advice and nothing else. */
	bool advice_ok = madvise(arena_a, 0, advice) == 0;

	if (flags || !advice_ok)
		return -EINVAL;
	if (n == 0)
		return 1; /* returns 0 */
	if (n > MAX_IOV)
		return -EINVAL;
	if (bad_ptr)
		return -EFAULT;
	for (size_t i = 0; i < n; i++) {
		uintptr_t s = (uintptr_t)iov[i].iov_base;
		size_t len = iov[i].iov_len, al = (len + page - 1) & ~(page - 1);

		/* As madvise(p + 1, 0): an unaligned start is invalid even
		 * for an empty range; an aligned empty one is skipped. */
		if (s & (page - 1))
			return -EINVAL;
		if (!len)
			continue;
		/* Like every iovec, a length above SSIZE_MAX is invalid. */
		if (!al || s + al < s || len > SSIZE_MAX)
			return -EINVAL;
	}
	return 0;
}

/* The model: madvise() over the same ranges of twin B, in order. */
static long model_loop(const struct iovec *iov, size_t n, int advice)
{
	long done = 0;

	for (size_t i = 0; i < n; i++) {
		struct iovec v = iov[i];

		if (!v.iov_len)
			continue;
		if (in_arena_a(&v))
			v.iov_base = arena_b + ((char *)v.iov_base - arena_a);
		if (madvise(v.iov_base, v.iov_len, advice) != 0)
			return done ? done : -errno;
		done += v.iov_len;
	}
	return done;
}

static void dump(const char *why, uint64_t seed, unsigned long iter, const struct iovec *iov,
		 size_t n, int advice, unsigned int flags, long want, long got)
{
	fprintf(stderr,
		"madvisev-fuzz: MISMATCH (%s) seed %" PRIu64
		" iteration %lu: advice %d flags %#x vlen %zu: want %ld, got %ld\n",
		why, seed, iter, advice, flags, n, want, got);
	for (size_t i = 0; i < n && i < 32; i++)
		fprintf(stderr, "  iov[%zu] = { %p (arena+%#lx), %#zx }\n", i, iov[i].iov_base,
			(unsigned long)((char *)iov[i].iov_base - arena_a), iov[i].iov_len);
	for (int s = 0; s < NSLOTS; s++)
		fprintf(stderr, "  slot %2d: %s\n", s, seg_names[layout[s]]);
}

/* Slots a vector can have changed: those its arena ranges overlap. */
static void touched_slots(const struct iovec *iov, size_t n, bool touched[NSLOTS])
{
	memset(touched, 0, NSLOTS * sizeof(bool));
	for (size_t i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)arena_a, s = (uintptr_t)iov[i].iov_base;

		if (!in_arena_a(&iov[i]) || !iov[i].iov_len)
			continue;
		uintptr_t e = iov[i].iov_len > a + ARENA - s ? a + ARENA : s + iov[i].iov_len;
		for (uintptr_t k = (s - a) / SLOT; k <= (e - 1 - a) / SLOT && k < NSLOTS; k++)
			touched[k] = true;
	}
}

/* A and B must hold the same bytes wherever they can be read. */
static bool twins_equal(int advice, const bool touched[NSLOTS], int *bad_slot)
{
	for (int s = 0; s < NSLOTS; s++) {
		if (!touched[s])
			continue;
		enum seg_type t = layout[s];
		size_t len = seg_len(t);
		char *a = arena_a + s * SLOT, *b = arena_b + s * SLOT;

		if (t == SEG_NONE || !len)
			continue;
		for (size_t off = 0; off < len; off += page) {
			if (!memcmp(a + off, b + off, page))
				continue;
			/* MADV_FREE may drop a page in one twin only. */
			if (advice == MADV_FREE)
				continue;
			*bad_slot = s;
			return false;
		}
	}
	return true;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: madvisev-fuzz [--seed N] [--seconds S] [--iterations N]\n"
		     "Differential fuzzing of madvisev(2) against a loop of madvise(2) on a\n"
		     "twin address space.  Prints the seed; the same seed replays the run.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	double seconds = 10;
	unsigned long max_iter = ULONG_MAX, iter;
	struct timespec t0, t;
	char *end;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:t:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (*end || errno)
				goto bad;
			break;
		case 't':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0))
				goto bad;
			break;
		case 'n':
			errno = 0;
			max_iter = strtoul(optarg, &end, 0);
			if (*end || errno || !max_iter)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc)
		goto bad;

	page = (size_t)sysconf(_SC_PAGESIZE);
	if (sys_madvisev(NULL, 0, 0, MADVISEV_QUERY) != MADVISEV_QUERY_MAGIC) {
		printf("madvisev-fuzz: SKIP: no madvisev(2) in this kernel\n");
		return 77;
	}
	/* Twins with an arena-sized unmapped gap around each, so ranges that
	 * run past an arena's end see the same nothing in both. */
	char *region = mmap(NULL, 5 * ARENA + SLOT, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED) {
		perror("madvisev-fuzz: mmap");
		return 2;
	}
	char *aligned = (char *)(((uintptr_t)region + SLOT - 1) & ~(SLOT - 1));
	munmap(region, 5 * ARENA + SLOT);
	arena_a = aligned + ARENA;
	arena_b = aligned + 3 * ARENA;
	{
		FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");
		if (f) {
			fprintf(f, "%d\n", 4 * NSLOTS);
			fclose(f);
		}
		void *h = mmap(NULL, SLOT, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		have_hugetlb = h != MAP_FAILED;
		if (have_hugetlb)
			munmap(h, SLOT);
	}
	rng_state = seed;
	printf("madvisev-fuzz: seed %" PRIu64 ", %.0f s, hugetlb %s\n", seed, seconds,
	       have_hugetlb ? "yes" : "no");
	fflush(stdout);
	for (int s = 0; s < NSLOTS; s++)
		reshape(s);

	static struct iovec iov[MAX_IOV + 8];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (iter = 0; iter < max_iter; iter++) {
		if ((iter & 63) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
				break;
		}
		for (int k = below(3); k > 0; k--) /* the address space changes */
			reshape(below(NSLOTS));
		size_t n;
		switch (below(10)) {
		case 0:
			n = 0;
			break;
		case 1:
			n = MAX_IOV + below(3);
			break;
		case 2:
			n = 1 + below(MAX_IOV);
			break;
		default:
			n = 1 + below(16);
			break;
		}
		for (size_t i = 0; i < n && i < MAX_IOV + 8; i++)
			iov[i] = pick_range();
		int advice = pick_advice();
		unsigned int flags = below(25) == 0 ? (unsigned int)rnd() : 0;
		bool bad_ptr = n && below(40) == 0;
		const struct iovec *vec = bad_ptr ? (below(2) ? NULL : (struct iovec *)8) : iov;

		int verdict = arg_verdict(iov, n, advice, flags, bad_ptr);
		long want, got;
		errno = 0;
		got = sys_madvisev(vec, n, advice, flags);
		if (got < 0)
			got = -errno;
		calls++;
		if (verdict < 0)
			want = verdict;
		else if (verdict == 1)
			want = 0;
		else
			want = model_loop(iov, n, advice);
		int bad_slot = -1;
		bool touched[NSLOTS];
		if (got != want) {
			dump("result", seed, iter, iov, n, advice, flags, want, got);
			mismatches++;
			break;
		}
		touched_slots(iov, n > MAX_IOV ? 0 : n, touched);
		if (!twins_equal(advice, touched, &bad_slot)) {
			dump("memory", seed, iter, iov, n, advice, flags, want, got);
			fprintf(stderr, "  first difference in slot %d\n", bad_slot);
			mismatches++;
			break;
		}
		/* Keep the twins' data moving. */
		int s = below(NSLOTS);
		if (seg_writable(layout[s])) {
			size_t off = below(seg_len(layout[s]) / page) * page;
			int v = 1 + below(255);
			memset(arena_a + s * SLOT + off, v, page);
			memset(arena_b + s * SLOT + off, v, page);
		}
	}
	printf("madvisev-fuzz: seed %" PRIu64 ": %lu iterations, %lu calls, %lu mismatches\n", seed,
	       iter, calls, mismatches);
	return mismatches ? 1 : 0;
bad:
	fprintf(stderr, "madvisev-fuzz: bad arguments (try --help)\n");
	return 2;
}
