// SPDX-License-Identifier: MIT
// The CPUs a benchmark may run on, and pinning a thread to one of them:
// a thread that must receive (or must not receive) a flush IPI has to stay
// on its own CPU.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <vector>

namespace madvisev_tools {

// The calling thread on @cpu only (ignored if the kernel refuses).
inline void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// The CPUs this process may run on, in ascending order.
inline std::vector<int> allowed_cpus() {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                cpus.push_back(c);
    return cpus;
}

} // namespace madvisev_tools
