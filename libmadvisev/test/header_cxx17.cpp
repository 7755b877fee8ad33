// SPDX-License-Identifier: MIT
// madvisev.hpp below C++20: compiled (never run) with -std=c++17, which
// must stop at the header's #error, whose message the test looks for.
#include "madvisev.hpp"
