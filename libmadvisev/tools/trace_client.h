// SPDX-License-Identifier: MIT
// madvisev-trace run by a benchmark on itself: start it with -p <own pid>,
// wait until it says it is attached, and at the end of a measurement stop
// it and read the figures it attributes to each system call (or io_uring
// madvise operation).  Shared by madvisev-bench and instantiate-bench.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace madvisev_tools {

// One entry of the tracer's "syscalls" list.
struct TracedCall {
    double calls = 0, errors = 0, ranges = 0, ipi_rounds = 0, local_flushes = 0;
    double pages_zapped = -1; // -1: the tracer could not count them on this kernel
};

struct TraceReport {
    std::map<std::string, TracedCall> calls; // by "syscall" name
    // Shootdowns the process's threads received; flushes (local or IPI
    // rounds) its threads did outside the traced calls (munmap, say).
    double shootdowns_received = 0, flushes_outside_calls = 0;

    // Summed over every traced call kind.
    TracedCall total() const {
        TracedCall t;
        t.pages_zapped = 0;
        for (const auto &[name, c] : calls) {
            t.calls += name == "io_uring_madvise" ? 0 : c.calls; // operations, not calls
            t.errors += c.errors;
            t.ranges += c.ranges;
            t.ipi_rounds += c.ipi_rounds;
            t.local_flushes += c.local_flushes;
            if (c.pages_zapped < 0 || t.pages_zapped < 0)
                t.pages_zapped = -1;
            else
                t.pages_zapped += c.pages_zapped;
        }
        return t;
    }
};

class TraceClient {
  public:
    TraceClient() = default;
    TraceClient(const TraceClient &) = delete;
    TraceClient &operator=(const TraceClient &) = delete;
    ~TraceClient() { cancel(); }

    // Run TRACER on this process; false (and a line on stderr) if it did not
    // attach within 10 s.
    bool start(const std::string &tracer) {
        int out[2], err[2];
        if (pipe2(out, O_CLOEXEC) != 0)
            return false;
        if (pipe2(err, O_CLOEXEC) != 0) {
            close(out[0]);
            close(out[1]);
            return false;
        }
        std::string self = std::to_string(getpid());
        pid_t pid = fork();
        if (pid == 0) {
            dup2(out[1], 1);
            dup2(err[1], 2);
            execl(tracer.c_str(), tracer.c_str(), "--json", "-p", self.c_str(),
                  static_cast<char *>(nullptr));
            _exit(127);
        }
        close(out[1]);
        close(err[1]);
        if (pid < 0) {
            close(out[0]);
            close(err[0]);
            return false;
        }
        std::string said;
        char buf[256];
        pollfd pfd{err[0], POLLIN, 0};
        while (said.find("attached") == std::string::npos && poll(&pfd, 1, 10000) > 0) {
            ssize_t n = read(err[0], buf, sizeof(buf));
            if (n <= 0)
                break;
            said.append(buf, static_cast<size_t>(n));
        }
        close(err[0]);
        pid_ = pid;
        out_ = out[0];
        if (said.find("attached") == std::string::npos) {
            fprintf(stderr, "%s did not attach: %s\n", tracer.c_str(), said.c_str());
            cancel();
            return false;
        }
        return true;
    }

    bool running() const { return pid_ > 0; }

    // Stop the tracer and parse its report; false if it printed none.
    bool stop(TraceReport *report) {
        *report = TraceReport{};
        auto *calls = &report->calls;
        if (pid_ <= 0)
            return false;
        kill(pid_, SIGINT);
        std::string json;
        char buf[4096];
        ssize_t n;
        while ((n = read(out_, buf, sizeof(buf))) > 0)
            json.append(buf, static_cast<size_t>(n));
        reap();
        if (json.find("\"syscalls\"") == std::string::npos)
            return false;
        // The tracer's own format: one object per line, fixed key order.
        const std::string key = "{\"syscall\": \"";
        for (size_t at = json.find(key); at != std::string::npos; at = json.find(key, at + 1)) {
            size_t name_end = json.find('"', at + key.size());
            size_t obj_end = json.find('}', at);
            std::string name = json.substr(at + key.size(), name_end - at - key.size());
            auto field = [&](const char *k, double none) {
                std::string f = std::string("\"") + k + "\": ";
                size_t p = json.find(f, at);
                if (p == std::string::npos || p > obj_end)
                    return none;
                const char *v = json.c_str() + p + f.size();
                return *v == 'n' ? none : strtod(v, nullptr); // null
            };
            TracedCall &c = (*calls)[name];
            c.calls = field("calls", 0);
            c.errors = field("errors", 0);
            c.ranges = field("ranges", 0);
            c.pages_zapped = field("pages_zapped", -1);
            c.local_flushes = field("local_flushes", 0);
            c.ipi_rounds = field("ipi_rounds", 0);
        }
        auto total = [&](const char *k) {
            std::string f = std::string("\"") + k + "\": ";
            size_t p = json.rfind(f);
            return p == std::string::npos ? 0.0 : strtod(json.c_str() + p + f.size(), nullptr);
        };
        report->shootdowns_received = total("shootdowns_received");
        report->flushes_outside_calls = total("flushes_outside_calls");
        return true;
    }

    // Stop it without a report (the measurement failed).
    void cancel() {
        if (pid_ > 0)
            kill(pid_, SIGKILL);
        reap();
    }

  private:
    void reap() {
        if (pid_ > 0)
            waitpid(pid_, nullptr, 0);
        if (out_ >= 0)
            close(out_);
        pid_ = -1;
        out_ = -1;
    }

    pid_t pid_ = -1;
    int out_ = -1;
};

} // namespace madvisev_tools
