// SPDX-License-Identifier: MIT
#include "programs.h"

#include <mutex>
#include <utility>

#include "compress.h"
#include "grow.h"
#include "request.h"

namespace wasmpool::wasi_programs {

namespace {

// One adapter per wasm2c module (whose names all follow -n NAME).
template <class I, void (*Instantiate)(I *, wasmpool_wasi_t *), void (*Start)(I *),
          void (*Free)(I *), wasm_rt_memory_t *(*Memory)(I *)>
Program adapt(const char *name, const char *about, std::vector<const char *> argv,
              std::vector<const char *> envp, void (*init_module)()) {
    return Program{name,
                   about,
                   std::move(argv),
                   std::move(envp),
                   sizeof(I),
                   alignof(I),
                   init_module,
                   [](void *i, wasmpool_wasi_t *w) { Instantiate(static_cast<I *>(i), w); },
                   [](void *i) { Start(static_cast<I *>(i)); },
                   [](void *i) { Free(static_cast<I *>(i)); },
                   [](void *i) { return Memory(static_cast<I *>(i)); }};
}

std::vector<Program> make() {
    std::vector<Program> v;
    v.push_back(adapt<Z_request_instance_t, Z_request_instantiate, Z_requestZ__start,
                      Z_request_free, Z_requestZ_memory>(
        "request", "CGI-style request handler: args/environ parsed, JSON response, small mallocs",
        {"request", "GET /api/items?id=42&name=blue%20widget&tag=a&tag=b HTTP/1.1",
         "{\"qty\": 3, \"price\": 1250}"},
        {"HTTP_HOST=shop.example", "HTTP_USER_AGENT=curl/8.0", "PATH=/usr/bin",
         "HTTP_ACCEPT=application/json", nullptr},
        Z_request_init_module));
    v.push_back(
        adapt<Z_compress_instance_t, Z_compress_instantiate, Z_compressZ__start, Z_compress_free,
              Z_compressZ_memory>("compress", "LZ77 + FNV-1a over 128 KiB: ~400 KiB of heap",
                                  {"compress"}, {nullptr}, Z_compress_init_module));
    v.push_back(
        adapt<Z_grow_instance_t, Z_grow_instantiate, Z_growZ__start, Z_grow_free, Z_growZ_memory>(
            "grow", "grows memory past 5 MiB: a sieve and one write per page", {"grow"}, {nullptr},
            Z_grow_init_module));
    return v;
}

} // namespace

const std::vector<Program> &all() {
    static const std::vector<Program> programs = make();
    return programs;
}

const Program *find(std::string_view name) {
    for (const Program &p : all())
        if (name == p.name)
            return &p;
    return nullptr;
}

void init_modules() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (const Program &p : all())
            p.init_module();
    });
}

wasmpool_wasi_t *make_context(const Program &p) {
    return wasmpool_wasi_create(static_cast<int>(p.argv.size()), p.argv.data(), p.envp.data(), 0);
}

} // namespace wasmpool::wasi_programs
