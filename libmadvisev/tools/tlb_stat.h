// SPDX-License-Identifier: MIT
// TLB shootdown interrupts as /proc/interrupts counts them: the "TLB" row,
// one column per CPU, bumped on each CPU that receives a flush IPI.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace madvisev_tools {

// Sum of the TLB row over all CPUs, or -1 if the kernel does not show one
// (non-x86, or /proc not mounted).
inline int64_t tlb_shootdowns() {
    std::ifstream in("/proc/interrupts");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string label;
        words >> label;
        if (label != "TLB:")
            continue;
        int64_t sum = 0;
        std::string w;
        while (words >> w) {
            if (w.empty() || w.find_first_not_of("0123456789") != std::string::npos)
                break; // the description after the counts
            sum += std::stoll(w);
        }
        return sum;
    }
    return -1;
}

} // namespace madvisev_tools
