// SPDX-License-Identifier: MIT
// madvisev-first-use SCENARIO: the library's first call in a fresh process,
// under a condition that makes probing hard.  Exit 0 when the library
// behaved, 1 (with a line on stdout) when it did not, 77 when the scenario
// cannot run here (said why).  first_use_test.cpp runs every scenario.
//
// Each scenario checks the pages it advised with its own reads: the calls'
// results are held to the memory, not to the library's bookkeeping.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "internal.h"
#include "madvisev.h"
#include "sanitizer.h"

namespace {

size_t page() {
    return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

int failed(const char *what) {
    printf("FAIL: %s\n", what);
    return 1;
}

// Pages mapped and written before the scenario makes the process poor.
struct Dirty {
    char *p = nullptr;
    size_t n = 0;
    explicit Dirty(size_t pages) : n(pages) {
        void *m = mmap(nullptr, pages * page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED) {
            perror("mmap");
            exit(1);
        }
        p = static_cast<char *>(m);
    }
    void write(char v) { memset(p, v, n * page()); }
    bool zero() const {
        for (size_t i = 0; i < n * page(); i++)
            if (p[i] != 0)
                return false;
        return true;
    }
    // Every page, as a range of its own.
    std::vector<iovec> ranges() const {
        std::vector<iovec> v;
        for (size_t i = 0; i < n; i++)
            v.push_back({p + i * page(), page()});
        return v;
    }
};

// One madvisev() over @d, which must zero all of it.  Returns 0 or errno.
int advise_all(Dirty &d, int backend = MADVISEV_BACKEND_AUTO) {
    d.write(0x3c);
    std::vector<iovec> v = d.ranges();
    errno = 0;
    ssize_t r = madvisev_via(backend, v.data(), v.size(), MADV_DONTNEED, 0);
    if (r < 0)
        return errno ? errno : -1;
    if (static_cast<size_t>(r) != d.n * page() || !d.zero())
        return EIO;
    return 0;
}

// The backend automatic detection must end on here: MADVISEV_EXPECT_BACKEND
// when the environment says so (the guests do), else what this kernel's
// version implies (process_madvise on 6.13 and later).
int expected_backend() {
    if (const char *e = getenv("MADVISEV_EXPECT_BACKEND"))
        return madvisev_backend_from_str(e);
    if (access("/sys/kernel/mm/madvisev/syscall_nr", F_OK) == 0)
        return MADVISEV_BACKEND_SYSCALL;
    FILE *f = fopen("/proc/sys/kernel/osrelease", "r");
    int ma = 0, mi = 0;
    if (f) {
        if (fscanf(f, "%d.%d", &ma, &mi) != 2)
            ma = 0;
        fclose(f);
    }
    return ma > 6 || (ma == 6 && mi >= 13) ? MADVISEV_BACKEND_PROCESS_MADVISE
                                           : MADVISEV_BACKEND_SEQUENTIAL;
}

// 0 when the library uses expected_backend(), else 1 with a FAIL line that
// begins with @when.
int check_backend(const char *when) {
    if (madvisev_backend() == expected_backend())
        return 0;
    printf("FAIL: %sthe library uses %s, not %s\n", when, madvisev_backend_name(),
           madvisev_backend_str(expected_backend()));
    return 1;
}

// The lowest free descriptor number: a descriptor limit there leaves
// none free.
int lowest_free_fd() {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd;
}

// Fills the fd table: the descriptor limit drops to the lowest free number.
// @old receives the limit to restore; false when it cannot be lowered.
bool fill_fd_table(rlimit *old) {
    getrlimit(RLIMIT_NOFILE, old);
    rlimit lim = *old;
    lim.rlim_cur = static_cast<rlim_t>(lowest_free_fd());
    return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// Address space exhausted at the first call: no probe can map a page.  The
// call must still work (madvise(2) needs no memory), and once memory is
// back the batching backend must be found.
int scenario_as_limit() {
    if (under_sanitizer()) {
        printf("SKIP: a sanitizer's shadow memory needs the address space\n");
        return 77;
    }
    Dirty d(8);
    rlimit old{};
    getrlimit(RLIMIT_AS, &old);
    // Find the current size by lowering the limit until a page fails.
    rlimit lim = old;
    size_t vm = 0;
    if (FILE *f = fopen("/proc/self/statm", "r")) {
        if (fscanf(f, "%zu", &vm) != 1)
            vm = 0;
        fclose(f);
    }
    lim.rlim_cur = vm * page();
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return failed("setrlimit(RLIMIT_AS)");
    void *probe = mmap(nullptr, page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe != MAP_FAILED)
        return failed("the address-space limit does not stop mmap");
    int err = advise_all(d);
    setrlimit(RLIMIT_AS, &old);
    if (err) {
        printf("FAIL: first call under an address-space limit: %s\n", strerror(err));
        return 1;
    }
    if ((err = advise_all(d))) {
        printf("FAIL: call after the limit was lifted: %s\n", strerror(err));
        return 1;
    }
    return check_backend("after the limit was lifted ");
}

// The fd table is full at the first call.
int scenario_fd_full() {
    Dirty d(8);
    rlimit old{};
    if (!fill_fd_table(&old))
        return failed("setrlimit(RLIMIT_NOFILE)");
    int err = advise_all(d);
    if (err) {
        setrlimit(RLIMIT_NOFILE, &old);
        printf("FAIL: first call with a full fd table: %s\n", strerror(err));
        return 1;
    }
    // io_uring needs a descriptor for its ring: refused for now, but not
    // for ever.
    bool uring = getenv("MADVISEV_NO_IO_URING") == nullptr;
    int uerr = uring ? advise_all(d, MADVISEV_BACKEND_IO_URING) : 0;
    setrlimit(RLIMIT_NOFILE, &old);
    if (uring && uerr != EMFILE) {
        printf("FAIL: io_uring with a full fd table gave %s, not EMFILE\n", strerror(uerr));
        return 1;
    }
    if ((err = advise_all(d))) {
        printf("FAIL: call after the fd limit was lifted: %s\n", strerror(err));
        return 1;
    }
    if (uring && (err = advise_all(d, MADVISEV_BACKEND_IO_URING))) {
        printf("FAIL: io_uring after the fd limit was lifted: %s\n", strerror(err));
        return 1;
    }
    return check_backend("");
}

// process_madvise through a pidfd (6.13 and 6.14), with a full fd table:
// the automatic choice still advises (through madvise), the forced one
// says EMFILE, and both work again once a descriptor is free.
int scenario_pidfd_emfile() {
    if (madvisev_backend_probe(MADVISEV_BACKEND_PROCESS_MADVISE, nullptr) != 1) {
        printf("SKIP: no process_madvise on this kernel\n");
        return 77;
    }
    madvisev_internal::process_madvise_force_pidfd(true);
    Dirty d(8);
    rlimit old{};
    if (!fill_fd_table(&old))
        return failed("setrlimit(RLIMIT_NOFILE)");
    int auto_err = advise_all(d);
    int forced_err = advise_all(d, MADVISEV_BACKEND_PROCESS_MADVISE);
    setrlimit(RLIMIT_NOFILE, &old);
    if (auto_err) {
        printf("FAIL: automatic call with a full fd table: %s\n", strerror(auto_err));
        return 1;
    }
    if (forced_err != EMFILE) {
        printf("FAIL: forced process_madvise with a full fd table gave %s, not EMFILE\n",
               strerror(forced_err));
        return 1;
    }
    if (int err = advise_all(d, MADVISEV_BACKEND_PROCESS_MADVISE)) {
        printf("FAIL: process_madvise after the fd limit was lifted: %s\n", strerror(err));
        return 1;
    }
    return 0;
}

// Sixteen threads make the process's first call at the same moment.
int scenario_threads() {
    constexpr int kThreads = 16;
    std::atomic<int> ready{0}, bad{0};
    std::vector<std::thread> t;
    for (int i = 0; i < kThreads; i++)
        t.emplace_back([&] {
            Dirty d(4);
            ready++;
            while (ready.load() < kThreads) {
            }
            if (advise_all(d))
                bad++;
        });
    for (auto &th : t)
        th.join();
    if (bad) {
        printf("FAIL: %d of %d threads' first calls failed\n", bad.load(), kThreads);
        return 1;
    }
    return check_backend("");
}

// A seccomp filter: @nr answers @action, everything else is allowed.
int install_filter(const std::vector<long> &nrs, unsigned action) {
    std::vector<sock_filter> f;
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
#if defined(__x86_64__)
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
#elif defined(__aarch64__)
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0));
#else
    return -1;
#endif
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    for (long nr : nrs) {
        f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1));
        f.push_back(BPF_STMT(BPF_RET | BPF_K, action));
    }
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

// Whether this kernel has seccomp filters (the guests' tinyconfig has not).
bool seccomp_filters() {
    return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 &&
           (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, nullptr) == 0 || errno != ENOSYS);
}

// A seccomp filter installed after the first call refuses the batching
// backends: later calls must still advise (through madvise), not fail
// EPERM for the rest of the process.
int scenario_seccomp_late() {
    if (!seccomp_filters()) {
        printf("SKIP: this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)\n");
        return 77;
    }
    Dirty d(8);
    if (int err = advise_all(d)) {
        printf("FAIL: first call: %s\n", strerror(err));
        return 1;
    }
    if (install_filter({SYS_process_madvise, 1000}, SECCOMP_RET_ERRNO | EPERM) != 0)
        return failed("seccomp filter");
    for (int i = 0; i < 3; i++)
        if (int err = advise_all(d)) {
            printf("FAIL: call %d after the filter: %s\n", i + 1, strerror(err));
            return 1;
        }
    if (madvisev_backend() != MADVISEV_BACKEND_SEQUENTIAL) {
        printf("FAIL: after the filter the library still names %s\n", madvisev_backend_name());
        return 1;
    }
    return 0;
}

// A sandbox whose seccomp policy kills the process on any system call it
// does not know (as browsers' and OpenSSH's do).  The library must not
// call an unassigned number; on a kernel that has madvisev(2) the sandbox
// uses the opt-out first.
int scenario_seccomp_kill_unknown() {
    if (!seccomp_filters()) {
        printf("SKIP: this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)\n");
        return 77;
    }
    Dirty d(8);
    std::vector<long> unknown;
    for (long nr = 463; nr < 1100; nr++)
        unknown.push_back(nr);
    bool patched = access("/sys/kernel/mm/madvisev/syscall_nr", F_OK) == 0;
    if (patched && madvisev_backend_disable(MADVISEV_BACKEND_SYSCALL) != 0)
        return failed("madvisev_backend_disable(MADVISEV_BACKEND_SYSCALL)");
    // Kill on everything past 6.12's last call but process_madvise (which
    // the sandbox allows: it is an ordinary call from 5.10 on).
    if (install_filter(unknown, SECCOMP_RET_KILL_PROCESS) != 0)
        return failed("seccomp filter");
    if (int err = advise_all(d)) {
        printf("FAIL: call in the sandbox: %s\n", strerror(err));
        return 1;
    }
    if (patched && madvisev_backend() == MADVISEV_BACKEND_SYSCALL)
        return failed("the disabled syscall backend is still chosen");
    return 0;
}

// A successful first call leaves errno as it found it, though probing
// the backends meets errors (no /sys/kernel/mm/madvisev/syscall_nr...).
int scenario_errno_kept() {
    Dirty d(8);
    d.write(0x3c);
    std::vector<iovec> v = d.ranges();
    errno = 1234;
    ssize_t r = madvisev(v.data(), v.size(), MADV_DONTNEED, 0);
    int after = errno;
    if (r != static_cast<ssize_t>(d.n * page()) || !d.zero()) {
        printf("FAIL: first call: %zd (%s)\n", r, strerror(after));
        return 1;
    }
    if (after != 1234) {
        printf("FAIL: a successful first call changed errno from 1234 to %d (%s)\n", after,
               strerror(after));
        return 1;
    }
    // The first MADVISEV_ZERO, emulated (a scan to set up) and not.
    for (int emulate : {1, 0}) {
        madvisev_zero_force_emulation(emulate);
        d.write(0x3c);
        errno = 4321;
        r = madvisev(v.data(), v.size(), MADVISEV_ZERO, 0);
        after = errno;
        if (r != static_cast<ssize_t>(d.n * page()) || !d.zero()) {
            printf("FAIL: first MADVISEV_ZERO (emulated %d): %zd (%s)\n", emulate, r,
                   strerror(after));
            return 1;
        }
        if (after != 4321) {
            printf("FAIL: a successful MADVISEV_ZERO (emulated %d) changed errno from 4321 to "
                   "%d (%s)\n",
                   emulate, after, strerror(after));
            return 1;
        }
    }
    return 0;
}

// fork() while other threads make the library's first calls (probing the
// backends, the first MADVISEV_ZERO's scan): each child must be able to
// use the library, not hang on a lock the parent's threads held at the
// fork.  Rounds of fresh processes, since first use happens once in each.
int scenario_fork_first_use() {
    if (under_sanitizer()) {
        // Under ASan 5 to 7 of 50 children hung in 3 of 20 rounds, where
        // the plain build has none: most likely in the sanitizer runtime's
        // own locks, not proven.
        printf("SKIP: a child of a multi-threaded process may hang in the sanitizer's runtime\n");
        return 77;
    }
    constexpr int kRounds = 20, kThreads = 4, kForks = 50, kHangSeconds = 10;
    int bad = 0, total = 0;
    for (int round = 0; round < kRounds; round++) {
        pid_t fresh = fork();
        if (fresh < 0)
            return failed("fork");
        if (fresh == 0) {
            // A process that has not used the library yet.  Should it hang
            // itself, SIGALRM ends it and the round fails.
            alarm(3 * kHangSeconds);
            std::atomic<bool> go{false};
            std::vector<std::thread> t;
            for (int i = 0; i < kThreads; i++)
                t.emplace_back([&, i] {
                    Dirty d(4);
                    while (!go.load()) {
                    }
                    if (i % 2)
                        madvisev_zero_force_emulation(1);
                    advise_all(d);
                    std::vector<iovec> v = d.ranges();
                    madvisev(v.data(), v.size(), MADVISEV_ZERO, 0);
                });
            std::vector<pid_t> kids;
            go = true;
            for (int k = 0; k < kForks; k++) {
                pid_t c = fork();
                if (c == 0) {
                    alarm(kHangSeconds); // a hung child dies of SIGALRM
                    Dirty d(4);
                    if (advise_all(d) != 0)
                        _exit(1);
                    d.write(0x3c);
                    std::vector<iovec> v = d.ranges();
                    madvisev_zero_force_emulation(k % 2);
                    if (madvisev(v.data(), v.size(), MADVISEV_ZERO, 0) !=
                            static_cast<ssize_t>(d.n * page()) ||
                        !d.zero())
                        _exit(1);
                    _exit(0);
                }
                if (c > 0)
                    kids.push_back(c);
            }
            for (auto &th : t)
                th.join();
            int h = 0, b = 0;
            for (pid_t c : kids) {
                int st = 0;
                waitpid(c, &st, 0);
                if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
                    h++;
                else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                    b++;
            }
            if (h || b)
                printf("round %d: of %zu children %d hung, %d failed\n", round, kids.size(), h, b);
            _exit(h || b ? 1 : 0);
        }
        int st = 0;
        waitpid(fresh, &st, 0);
        total++;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    if (bad) {
        printf("FAIL: %d of %d rounds had a child that hung or failed\n", bad, total);
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    setvbuf(stdout, nullptr, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: madvisev-first-use as-limit|fd-full|pidfd-emfile|threads|"
                        "seccomp-late|seccomp-kill-unknown|errno-kept|fork-first-use\n");
        return 2;
    }
    std::string s = argv[1];
    if (s == "as-limit")
        return scenario_as_limit();
    if (s == "fd-full")
        return scenario_fd_full();
    if (s == "pidfd-emfile")
        return scenario_pidfd_emfile();
    if (s == "threads")
        return scenario_threads();
    if (s == "seccomp-late")
        return scenario_seccomp_late();
    if (s == "seccomp-kill-unknown")
        return scenario_seccomp_kill_unknown();
    if (s == "errno-kept")
        return scenario_errno_kept();
    if (s == "fork-first-use")
        return scenario_fork_first_use();
    fprintf(stderr, "madvisev-first-use: unknown scenario '%s'\n", s.c_str());
    return 2;
}
