// SPDX-License-Identifier: MIT
#include "internal.h"

namespace madvisev_internal {

thread_local unsigned long syscalls_made = 0;

} // namespace madvisev_internal
