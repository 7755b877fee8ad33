// SPDX-License-Identifier: MIT
// The WASI programs built from this directory, each with the arguments and
// environment it runs with, behind one interface for the tests and
// instantiate-bench.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "wasmpool/wasi.h"

namespace wasmpool::wasi_programs {

struct Program {
    const char *name;
    const char *about;
    std::vector<const char *> argv;        // argv[0] is the name
    std::vector<const char *> envp;        // NULL-terminated
    size_t instance_bytes, instance_align; // for storage of the wasm2c instance
    void (*init_module)();
    void (*instantiate)(void *inst, wasmpool_wasi_t *w);
    void (*start)(void *inst); // the exported _start
    void (*free)(void *inst);
    wasm_rt_memory_t *(*memory)(void *inst); // the exported "memory"
};

const std::vector<Program> &all();
// nullptr for an unknown name.
const Program *find(std::string_view name);
// Each program's init_module(), once; after wasm_rt_init().
void init_modules();
// A WASI context with @p's arguments and environment.
wasmpool_wasi_t *make_context(const Program &p);

} // namespace wasmpool::wasi_programs
