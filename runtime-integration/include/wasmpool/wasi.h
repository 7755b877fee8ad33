/* SPDX-License-Identifier: MIT */
/*
 * A small WASI (wasi_snapshot_preview1) layer for wasm2c modules: the
 * imports that wasi-libc's startup, stdio, clocks and getentropy() need,
 * and nothing else.  One wasmpool_wasi_t per running instance: it holds
 * the program's arguments and environment, its captured stdout and stderr,
 * and the memory its pointers refer to.
 *
 *   wasmpool_wasi_t *w = wasmpool_wasi_create(argc, argv, envp, 0);
 *   Z_prog_instance_t inst;
 *   Z_prog_instantiate(&inst, w);        // wasm2c 1.0.32 passes w to every import
 *   wasmpool_wasi_bind_memory(w, Z_progZ_memory(&inst));
 *   uint32_t status = wasmpool_wasi_run(w, start_fn, &inst);
 *   ... wasmpool_wasi_output(w, 1, &len) ...
 *   Z_prog_free(&inst);
 *   wasmpool_wasi_reset(w);              // ready for the next instance
 *
 * Every guest pointer and length is checked against the bound memory's
 * current size before use; a range outside it is __WASI_ERRNO_FAULT (21)
 * and nothing is read or written.  Only fds 1 and 2 exist (write-only,
 * captured); any other fd is __WASI_ERRNO_BADF.
 *
 * proc_exit() unwinds with siglongjmp() to wasmpool_wasi_run(), which
 * returns the exit status.  It skips the generated frames between, which
 * hold no resources (the instance's memory and tables are freed by the
 * caller's _free, as usual).  A wasm trap is not caught here: it unwinds
 * to the caller's wasm_rt_impl_try(), past wasmpool_wasi_run(); reset the
 * instance before using it again.
 */
#ifndef WASMPOOL_WASI_H
#define WASMPOOL_WASI_H

#include <stddef.h>
#include <stdint.h>
#include <wasm-rt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* wasm2c 1.0.32 names the import module's instance type after it. */
struct Z_wasi_snapshot_preview1_instance_t;
typedef struct Z_wasi_snapshot_preview1_instance_t wasmpool_wasi_t;

/* The WASI errno values this layer returns. */
enum {
    WASMPOOL_WASI_SUCCESS = 0,
    WASMPOOL_WASI_EBADF = 8,
    WASMPOOL_WASI_EFAULT = 21,
    WASMPOOL_WASI_EFBIG = 22,
    WASMPOOL_WASI_EINVAL = 28,
    WASMPOOL_WASI_EIO = 29,
    WASMPOOL_WASI_ENOMEM = 48,
    WASMPOOL_WASI_ESPIPE = 70,
};

/* Default cap on each captured stream (stdout, stderr). */
#define WASMPOOL_WASI_OUTPUT_LIMIT ((size_t)1 << 20)

/* A WASI context with copies of @argv[0..@argc) and of @envp (NULL-
 * terminated "NAME=value" strings; NULL for none).  Each captured stream
 * holds at most @output_limit bytes (0: WASMPOOL_WASI_OUTPUT_LIMIT, at
 * most 1 GiB); a write past it is __WASI_ERRNO_FBIG.  NULL, with errno
 * EINVAL (a NULL argument string, argc < 0, a limit over 1 GiB, arguments
 * too long for a 32-bit guest) or ENOMEM. */
wasmpool_wasi_t *wasmpool_wasi_create(int argc, const char *const *argv, const char *const *envp,
                                      size_t output_limit);
void wasmpool_wasi_destroy(wasmpool_wasi_t *w);

/* The memory the guest's pointers refer to: the module's exported
 * "memory", after instantiation.  Read at every call, so growth is seen.
 * Until bound, every pointer is out of bounds. */
void wasmpool_wasi_bind_memory(wasmpool_wasi_t *w, wasm_rt_memory_t *memory);

/* Empty the captured output (keeping its buffers), reopen fds 1 and 2,
 * forget the memory: ready for the next instance. */
void wasmpool_wasi_reset(wasmpool_wasi_t *w);

/* Run @start(@ctx) (the module's _start); the exit status: 0 when it
 * returns, proc_exit's argument when the guest calls it.  Not reentrant
 * on one context: a NULL argument or a nested run stops the process with
 * a message (the host's bug). */
uint32_t wasmpool_wasi_run(wasmpool_wasi_t *w, void (*start)(void *ctx), void *ctx);

/* Whether the last run ended in proc_exit(). */
int wasmpool_wasi_exited(const wasmpool_wasi_t *w);

/* The bytes written to @fd (1 or 2) since the last reset, and their
 * number in *@len; NULL (and 0) for another fd or a NULL @w.  The other
 * functions ignore a NULL @w (the imports return EFAULT or EBADF). */
const char *wasmpool_wasi_output(const wasmpool_wasi_t *w, uint32_t fd, size_t *len);

/* The imports, as wasm2c 1.0.32 declares them; the host may call them
 * too (the tests do). */
uint32_t Z_wasi_snapshot_preview1Z_args_get(wasmpool_wasi_t *, uint32_t argv, uint32_t argv_buf);
uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(wasmpool_wasi_t *, uint32_t argc_out,
                                                  uint32_t size_out);
uint32_t Z_wasi_snapshot_preview1Z_environ_get(wasmpool_wasi_t *, uint32_t environ,
                                               uint32_t environ_buf);
uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(wasmpool_wasi_t *, uint32_t count_out,
                                                     uint32_t size_out);
uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(wasmpool_wasi_t *, uint32_t clock_id,
                                                  uint64_t precision, uint32_t time_out);
uint32_t Z_wasi_snapshot_preview1Z_random_get(wasmpool_wasi_t *, uint32_t buf, uint32_t len);
uint32_t Z_wasi_snapshot_preview1Z_fd_write(wasmpool_wasi_t *, uint32_t fd, uint32_t iovs,
                                            uint32_t iovs_len, uint32_t nwritten_out);
uint32_t Z_wasi_snapshot_preview1Z_fd_close(wasmpool_wasi_t *, uint32_t fd);
uint32_t Z_wasi_snapshot_preview1Z_fd_seek(wasmpool_wasi_t *, uint32_t fd, uint64_t offset,
                                           uint32_t whence, uint32_t newoffset_out);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(wasmpool_wasi_t *, uint32_t fd,
                                                 uint32_t fdstat_out);
void Z_wasi_snapshot_preview1Z_proc_exit(wasmpool_wasi_t *, uint32_t code);

#ifdef __cplusplus
}
#endif

#endif
