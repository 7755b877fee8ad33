// SPDX-License-Identifier: MIT
/*
 * madvisev-race: madvisev(2) racing every operation that changes the
 * address space under it.  Advisor threads call madvisev() over vectors
 * that start with ranges of their own, which nothing else touches, and go
 * on into a shared region that other threads keep unmapping and mapping
 * again (MAP_FIXED), mprotect()ing, mremap()ing, populating, forking
 * over, and registering with userfaultfd.  The kernel must not splat or
 * hang (the runner scans the console; an alarm here catches a hang), and
 * every call must advise at least the advisor's own ranges, which must
 * read zero afterwards.
 *
 * Exit 0 pass, 1 fail, 2 bad usage, 77 no madvisev(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "madvisev.h" /* the system call's number and MADVISEV_QUERY */

#define CHUNK (2UL << 20)
#define NCHUNKS 8
#define OWN_RANGES 8
#define ADVISORS 2

static size_t page;
static char *shared_region; /* NCHUNKS chunks the racers change */
static atomic_bool stop;
static atomic_ulong calls, failures, ops[8];
static unsigned seed;

static long sys_madvisev(const struct iovec *iov, size_t n, int advice, unsigned int flags)
{
	return syscall(__NR_madvisev, iov, n, advice, flags);
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static char *chunk(unsigned i)
{
	return shared_region + (i % NCHUNKS) * CHUNK;
}

/* A random page of a random chunk, among the first @pages of it. */
static char *some_page(unsigned *s, size_t pages)
{
	char *c = chunk(rnd(s));

	return c + (rnd(s) % pages) * page;
}

static void fail(const char *what)
{
	fprintf(stderr, "madvisev-race: FAIL: %s\n", what);
	atomic_fetch_add(&failures, 1);
}

/* Each advisor's own ranges, mapped before any racer runs: mapped later,
 * they could land in a hole a racer is about to fill with MAP_FIXED. */
static char *own_region[ADVISORS];

static void *advisor(void *arg)
{
	unsigned idx = (unsigned)(uintptr_t)arg;
	unsigned s = seed ^ (idx + 1);
	char *own = own_region[idx];
	struct iovec iov[OWN_RANGES + 32];

	while (!atomic_load(&stop)) {
		size_t n = 0, own_bytes = 0;

		for (int i = 0; i < OWN_RANGES; i++) {
			memset(own + 2 * i * page, 0x5a, page);
			iov[n++] = (struct iovec){ own + 2 * i * page, page };
			own_bytes += page;
		}
		for (int k = rnd(&s) % 32; k > 0; k--)
			iov[n++] = (struct iovec){ some_page(&s, CHUNK / page),
						   page * (1 + rnd(&s) % 64) };
		/* 1000 is MADV_ZERO (the series' patch 0009). */
		int advice = (int[]){ MADV_DONTNEED, MADV_DONTNEED, 1000, MADV_FREE }[rnd(&s) % 4];
		long r = sys_madvisev(iov, n, advice, 0);
		atomic_fetch_add(&calls, 1);
		if (r < (long)own_bytes) {
			char msg[128];
			snprintf(
				msg, sizeof(msg),
				"madvisev returned %ld (%s), below the %zu bytes of its own ranges",
				r, r < 0 ? strerror(errno) : "short", own_bytes);
			fail(msg);
			break;
		}
		if (advice != MADV_FREE)
			for (int i = 0; i < OWN_RANGES; i++)
				for (size_t b = 0; b < page; b++)
					if (own[2 * i * page + b]) {
						fail(advice == 1000
							     ? "an own range did not read zero after MADV_ZERO"
							     : "an own range did not read zero after MADV_DONTNEED");
						return NULL;
					}
	}
	return NULL;
}

/* Unmap a chunk and map something new there. */
static void *remapper(void *arg)
{
	unsigned s = seed ^ 0x1111;
	(void)arg;
	while (!atomic_load(&stop)) {
		char *c = chunk(rnd(&s));
		int kind = rnd(&s) % 3;
		int flags = MAP_FIXED | MAP_ANONYMOUS | (kind == 1 ? MAP_SHARED : MAP_PRIVATE);

		munmap(c, CHUNK);
		if (mmap(c, CHUNK, PROT_READ | PROT_WRITE, flags, -1, 0) == MAP_FAILED)
			fail("mmap MAP_FIXED");
		if (kind == 2)
			madvise(c, CHUNK, MADV_HUGEPAGE);
		atomic_fetch_add(&ops[0], 1);
	}
	return NULL;
}

static void *protector(void *arg)
{
	unsigned s = seed ^ 0x2222;
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };
	(void)arg;
	while (!atomic_load(&stop)) {
		char *c = some_page(&s, CHUNK / page);
		mprotect(c, page * (1 + rnd(&s) % 128), prots[rnd(&s) % 3]);
		atomic_fetch_add(&ops[1], 1);
	}
	return NULL;
}

/* Move a piece of one chunk onto another, as realloc() of big blocks does. */
static void *mover(void *arg)
{
	unsigned s = seed ^ 0x3333;
	(void)arg;
	while (!atomic_load(&stop)) {
		size_t len = page * (1 + rnd(&s) % 64);
		char *from = some_page(&s, CHUNK / page / 2);
		char *to = some_page(&s, CHUNK / page / 2);

		if (from != to)
			mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		atomic_fetch_add(&ops[2], 1);
	}
	return NULL;
}

/* Fault pages in with MADV_POPULATE_WRITE: an error, not a signal, when
 * they are gone or protected, and proper userfaultfd handling (a write
 * through /proc/self/mem would fault without FAULT_FLAG_ALLOW_RETRY,
 * which userfaultfd refuses with a stack dump). */
static void *faulter(void *arg)
{
	unsigned s = seed ^ 0x4444;
	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = some_page(&s, CHUNK / page);
		madvise(p, page * (1 + rnd(&s) % 8), MADV_POPULATE_WRITE);
		atomic_fetch_add(&ops[3], 1);
	}
	return NULL;
}

static void *forker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		atomic_fetch_add(&ops[4], 1);
		usleep(2000);
	}
	return NULL;
}

/* Read one userfaultfd message and serve it: a missing page gets zeroes,
 * a remove event needs nothing but reading.  False if none was queued. */
static bool uffd_serve_one(int uffd)
{
	struct uffd_msg msg;

	if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
		return false;
	if (msg.event == UFFD_EVENT_PAGEFAULT) {
		struct uffdio_zeropage z = {
			.range = { msg.arg.pagefault.address & ~(page - 1), page },
		};
		ioctl(uffd, UFFDIO_ZEROPAGE, &z);
	}
	return true;
}

/* Register chunks with userfaultfd (missing faults and remove events),
 * serve what comes, unregister again. */
static void *uffd_racer(void *arg)
{
	unsigned s = seed ^ 0x5555;
	(void)arg;
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0) {
		printf("madvisev-race: no userfaultfd (%s): that racer is off\n", strerror(errno));
		return NULL;
	}
	while (!atomic_load(&stop)) {
		struct uffdio_register reg = {
			.range = { (uintptr_t)chunk(rnd(&s)), CHUNK },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) {
			for (int k = 0; k < 20; k++) {
				struct pollfd pfd = { .fd = uffd, .events = POLLIN };

				if (poll(&pfd, 1, 1) > 0)
					uffd_serve_one(uffd);
			}
			ioctl(uffd, UFFDIO_UNREGISTER, &reg.range);
		}
		/* Serve what is still queued, so nobody waits on us. */
		while (uffd_serve_one(uffd))
			;
		atomic_fetch_add(&ops[5], 1);
	}
	close(uffd);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] =
		"madvisev-race: FAIL: still running past the time limit (hang?)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 10;
	char *end;
	int c;

	seed = (unsigned)time(NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "t:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0) || seconds > 86400)
				goto bad;
			break;
		case 's':
			seed = (unsigned)strtoul(optarg, &end, 0);
			if (*end)
				goto bad;
			break;
		case 'h':
			printf("Usage: madvisev-race [--seconds S] [--seed N]\n");
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc)
		goto bad;
	page = (size_t)sysconf(_SC_PAGESIZE);
	if (sys_madvisev(NULL, 0, 0, MADVISEV_QUERY) != MADVISEV_QUERY_MAGIC) {
		printf("madvisev-race: SKIP: no madvisev(2) in this kernel\n");
		return 77;
	}
	shared_region = mmap(NULL, NCHUNKS * CHUNK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (shared_region == MAP_FAILED) {
		perror("madvisev-race: setup");
		return 2;
	}
	printf("madvisev-race: seed %u, %.0f s, %d advisors against 6 racers\n", seed, seconds,
	       ADVISORS);
	fflush(stdout);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)seconds + 120);

	for (int i = 0; i < ADVISORS; i++) {
		own_region[i] = mmap(NULL, 2 * OWN_RANGES * page, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (own_region[i] == MAP_FAILED) {
			perror("madvisev-race: mmap");
			return 2;
		}
	}
	pthread_t t[ADVISORS + 6];
	int n = 0;
	for (int i = 0; i < ADVISORS; i++)
		pthread_create(&t[n++], NULL, advisor, (void *)(uintptr_t)i);
	void *(*racers[])(void *) = { remapper, protector, mover, faulter, forker, uffd_racer };
	for (size_t i = 0; i < sizeof(racers) / sizeof(racers[0]); i++)
		pthread_create(&t[n++], NULL, racers[i], NULL);
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("madvisev-race: %lu madvisev calls; %lu remaps, %lu mprotects, %lu mremaps, %lu faults, %lu forks, %lu uffd registrations; %lu failures\n",
	       atomic_load(&calls), atomic_load(&ops[0]), atomic_load(&ops[1]),
	       atomic_load(&ops[2]), atomic_load(&ops[3]), atomic_load(&ops[4]),
	       atomic_load(&ops[5]), atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
bad:
	fprintf(stderr, "madvisev-race: bad arguments (try --help)\n");
	return 2;
}
