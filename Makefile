# Two commands do everything: `make demo` and `make test`.
SHELL      := /bin/bash
BUILD      ?= build
BUILD_SAN  ?= build-asan
BUILD_ST   ?= build-static
BUILD_TSAN ?= build-tsan
LIBFUZZ_SECONDS ?= 30
VM         ?= $(BUILD)/vm
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
VM_SMP     ?= 2
RESULTS    ?= $(BUILD)/results
# Guest benchmarks: shorter than on the host, since the guest runs under
# emulation (':' stands for ' ' on the kernel command line).  instantiate-bench
# runs every row five times, the strategies interleaved, and reports medians
# with 95% intervals (its --repeat).
VM_BENCH   ?= --ranges:4096
VM_IBENCH  ?= --seconds:0.5:--repeat:5
VM_IWASI   ?= --module:request,compress,grow:--threads:1,2:--seconds:0.5:--repeat:5
IBENCH     ?= --seconds 1 --repeat 5
# The vCPU sweep: the patched guest booted with each of these vCPU counts
# runs madvisev-ipi-cost and instantiate-bench on as many threads.
VM_SMP_SWEEP ?= 2 4 8
VM_IPICOST ?= --calls:1000
VM_SWEEP   ?= --dirty-pages:16:--seconds:2:--strategy:stock,pool-madvise-each,pool-resident-scan,pool-sharded-syscall,pool-adaptive,pool-zero-inline
# The budget row set: the adaptive reset against the fixed strategies when
# its budget forces decommits.
IBENCH_BUDGET_STRATEGIES ?= pool-immediate,pool-global-queue,pool-sharded-auto,pool-sharded-inline,pool-keep-resident,pool-adaptive
# The WASI programs in C (runtime-integration/wasi) under every strategy:
# a few ms each, so fewer instantiations per row than echo.
IBENCH_WASI ?= --seconds 0.5 --repeat 5
IBENCH_WASI_MODULES ?= request,compress,grow

# Real Wasmtime (peers/wasmtime-bench), built by cargo from crates.io into
# a target directory kept between clones, as ccache keeps the C objects:
# a fresh clone does not rebuild Wasmtime (WASMTIME_TARGET=, or
# CARGO_TARGET_DIR, another).  The binary is static and goes
# into the x86 guests' initramfs with the modules it runs.
CARGO            ?= $(shell command -v cargo 2> /dev/null || echo $(HOME)/.cargo/bin/cargo)
WASMTIME_TARGET  ?= $(or $(CARGO_TARGET_DIR),$(HOME)/.cache/madvisev/cargo-target)
WASMTIME_BENCH   := $(BUILD)/peers/wasmtime-bench
WASM_MODULES     := $(BUILD_ST)/runtime-integration/echo.wasm \
	$(addprefix $(BUILD_ST)/runtime-integration/wasi/,request.wasm compress.wasm grow.wasm)
# make test's check in the guests: Wasmtime with decommit_batch_size 32 on
# echo, 2 threads, for this long, at least this many instantiations (20
# batches of 16 instances) - peers/wasmtime-bench/check.py.
WASMTIME_CHECK_SECONDS ?= 2
WASMTIME_CHECK_MIN     ?= 320
WASMTIME_CHECK_ARG = madvisev.wasmtime=--seconds:$(WASMTIME_CHECK_SECONDS):--min-instantiations:$(WASMTIME_CHECK_MIN)
WASMTIME_CHECK     = python3 peers/wasmtime-bench/check.py --min-instantiations $(WASMTIME_CHECK_MIN)
# make demo's runs of it in the guests (all four configurations).
VM_WASMTIME      ?= --threads:1,2:--seconds:1

KERNEL_PATCHED   := $(VM)/obj-patched/arch/x86/boot/bzImage
KERNEL_UNPATCHED := $(VM)/obj-unpatched/arch/x86/boot/bzImage
KERNEL_DEBUG     := $(VM)/obj-debug/arch/x86/boot/bzImage
INITRAMFS        := $(VM)/initramfs.cpio.gz
KSELFTEST        := $(VM)/madvisev-kselftest
KSELFTEST32      := $(VM)/madvisev-kselftest-32
FUZZER           := $(VM)/madvisev-fuzz
RACER            := $(VM)/madvisev-race
LOCKLAT          := $(VM)/madvisev-lock-latency
FAULTLAT         := $(VM)/madvisev-fault-latency
# make test's short fuzz and race passes; make fuzz SECONDS=N runs longer.
FUZZ_SECONDS     ?= 60
RACE_SECONDS     ?= 30
SECONDS          ?= 600
SEED             ?= $(shell date +%s)
# madvisev-trace needs what trace/CMakeLists.txt needs: the build machine's
# kernel BTF for its vmlinux.h, bpftool, clang and libbpf.  Whether it can
# be built is asked in the recipes (scripts/trace-prereqs.sh), after `deps`
# has installed the tools: a fresh machine has none of them when make reads
# this file.  Where the kernel has BTF the tracer must build; where it has
# none, make says so and tests/skip-allowlist.txt decides (CI allows no
# such skip).  TRACE_BINS: the guests' tracer binaries, or nothing.
TRACE_BINS        = $$(scripts/trace-prereqs.sh --bins $(BUILD_ST) 2>/dev/null || true)
# The Makefile's skips and the tests' go through one allow-list.
CHECK_SKIPS      := python3 scripts/check-skips.py
# A build directory configured before `deps` put the tracer's tools here has
# no madvisev-trace target: configure it again (recipe line; $(1) the
# directory).  Fails where the kernel has BTF but a tool is missing.
define trace_configured
@scripts/trace-prereqs.sh > /dev/null; rc=$$?; [ $$rc -ne 2 ] || exit 1; \
	if [ $$rc -eq 0 ] && ! ninja -C $(1) -t query madvisev-trace > /dev/null 2>&1; then \
	    echo "madvisev-trace: $(1) was configured without it; configuring again"; \
	    cmake -S . -B $(1) || exit 1; fi
endef

# make test's phase table (scripts/phase-times.sh): the top-level make's
# start, the same in every sub-make, and a mark at the end of each phase.
ifndef MADVISEV_MAKE_START
MADVISEV_MAKE_START := $(shell date +%s)
endif
export MADVISEV_MAKE_START
export PHASE_LOG ?= $(BUILD)/phase-times.log
PHASE = @scripts/phase-times.sh mark

.PHONY: all deps build build-asan build-static build-tsan wasmtime-bench rust-check format-check demo test test-unit test-asan \
        test-tsan test-libfuzzer patch-check \
        vm-kernels vm-images vm-test vm-test-channel vm-trace vm-fuzz fuzz results install clean FORCE \
        vm-kernel-arm64 vm-images-arm64 vm-test-arm64 vm-kernel-6.1 vm-images-6.1 vm-test-6.1 \
        debs image test-image test-debs

all: build

deps:
	@scripts/install-deps.sh
	$(PHASE) deps

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	$(call trace_configured,$(BUILD))
	cmake --build $(BUILD) -j $(JOBS)
	$(PHASE) build

$(BUILD_SAN)/build.ninja: | deps
	cmake -S . -B $(BUILD_SAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DMADVISEV_SANITIZE=ON

build-asan: deps $(BUILD_SAN)/build.ninja
	$(call trace_configured,$(BUILD_SAN))
	cmake --build $(BUILD_SAN) -j $(JOBS)
	$(PHASE) build-asan

# cargo finds peers/wasmtime-bench/.cargo/config.toml (the static target)
# from the directory it runs in.  --locked: Cargo.lock is the truth.
wasmtime-bench: deps
	cd peers/wasmtime-bench && CARGO_TARGET_DIR=$(WASMTIME_TARGET) $(CARGO) build --release --locked
	mkdir -p $(dir $(WASMTIME_BENCH))
	cp $(WASMTIME_TARGET)/x86_64-unknown-linux-gnu/release/wasmtime-bench $(WASMTIME_BENCH)
	$(PHASE) wasmtime-bench

# The C and C++ sources held to clang-format (.clang-format; the C programs
# in the kernel's style to .clang-format-c).  scripts/check-format.sh --fix
# lays them out.
format-check: deps
	scripts/check-format.sh
	$(PHASE) format-check

# The benchmark's Rust held to cargo fmt and clippy (warnings are errors).
rust-check: wasmtime-bench
	cd peers/wasmtime-bench && $(CARGO) fmt --check && \
	    CARGO_TARGET_DIR=$(WASMTIME_TARGET) $(CARGO) clippy --release --locked -- -D warnings
	$(PHASE) rust-check

# Statically linked tools and tests for the guests' initramfs.
$(BUILD_ST)/build.ninja: | deps
	cmake -S . -B $(BUILD_ST) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DMADVISEV_STATIC=ON

build-static: deps $(BUILD_ST)/build.ninja
	$(call trace_configured,$(BUILD_ST))
	trace="$(TRACE_BINS)"; cmake --build $(BUILD_ST) -j $(JOBS) --target madvisev-test madvisev-first-use madvisev-info \
	    madvisev-bench madvisev-ipi-cost wasmpool-test wasmpool-swap-test instantiate-bench $${trace:+madvisev-trace trace-child}
	$(PHASE) build-static

# The main job: what this kernel offers and what each backend costs, here,
# in the patched 6.12 guest, in the patched 6.1 guest (shootdowns per call)
# and in the vCPU sweep: scripts/demo.sh, each run a named step with its
# own log; a failed step is named with its log, the others still run and
# the page is rendered from what they wrote.
DEMO_VARS := BUILD VM RESULTS VM_SMP VM_BENCH VM_IBENCH VM_IWASI IBENCH VM_SMP_SWEEP VM_IPICOST \
	VM_SWEEP IBENCH_BUDGET_STRATEGIES IBENCH_WASI IBENCH_WASI_MODULES KERNEL_PATCHED INITRAMFS \
	KERNEL_61 INITRAMFS_61 KERNEL_UNPATCHED WASMTIME_BENCH VM_WASMTIME DEMO_ONLY IMAGE_DIR IMAGE
# DEMO_ONLY=host or DEMO_ONLY=guests: one side only; DEMO_ONLY=wasmtime: the
# real-Wasmtime guests alone; DEMO_ONLY=image: the Debian image's runs alone.
DEMO_ONLY ?= all
demo: build wasmtime-bench vm-images vm-images-6.1
	@$(foreach v,$(DEMO_VARS),$(v)='$($(v))') scripts/demo.sh

test: format-check test-unit test-asan test-tsan test-libfuzzer patch-check rust-check test-debs vm-test vm-test-channel vm-test-6.1 \
      vm-test-arm64 vm-trace vm-fuzz
	@echo; echo "make test: every phase passed; wall time per phase (the time since the one before):"
	@scripts/phase-times.sh report

# CTest, then its report held to tests/skip-allowlist.txt, failed or not: a
# skip that is not allowed there fails (scripts/check-skips.py; $(1) the
# build directory, $(2) the environment).  Where the tracer can be built,
# its test must be there and have run.
define ctest_checked
rm -f $(1)/ctest-junit.xml; \
	ctest --test-dir $(1) --output-on-failure -j $(JOBS) --output-junit $(abspath $(1))/ctest-junit.xml; \
	rc=$$?; [ -s $(1)/ctest-junit.xml ] || exit 1; \
	$(CHECK_SKIPS) --env $(2) --junit $(1)/ctest-junit.xml \
	    $$(scripts/trace-prereqs.sh > /dev/null 2>&1 && echo --require trace.exact_counts) || rc=1; \
	exit $$rc
endef

test-unit: build
	$(CHECK_SKIPS) --selftest > /dev/null || $(CHECK_SKIPS) --selftest
	$(call ctest_checked,$(BUILD),host)
	$(PHASE) test-unit

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: build-asan
	$(call ctest_checked,$(BUILD_SAN),host-asan)
	$(PHASE) test-asan

# Kernels: make decides nothing here, build-kernel.sh knows what changed.
vm-kernels: deps
	vm-images/build-kernel.sh unpatched $(VM)
	vm-images/build-kernel.sh patched $(VM)
	vm-images/build-kernel.sh debug $(VM)
	$(PHASE) vm-kernels

# Both series must stay checkpatch --strict clean (kernel-patch/README.md),
# each checked by its own kernel's checkpatch.pl; every measured figure in
# their cover letters and commit messages must be the one recorded in
# docs/results/data (kernel-patch/figures.json says where each comes from).
patch-check: vm-kernels vm-kernel-6.1
	kernel-patch/checkpatch.sh $(VM)/src-unpatched
	kernel-patch/checkpatch.sh $(VM)/src-unpatched-6.1 kernel-patch/6.1
	kernel-patch/check-figures.py
	$(PHASE) patch-check

# The kselftest, static, against a patched kernel's tree and uapi headers:
# $(1) the variant (patched, patched-6.1), $(2) the selftest directory
# (mm; vm in 6.1).
ksft_build = gcc -static -O2 -Wall -pthread -isystem $(VM)/obj-$(1)/usr/include \
	    -I $(VM)/src-$(1)/tools/testing/selftests \
	    -o $@ $(VM)/src-$(1)/tools/testing/selftests/$(2)/madvisev.c
KSFT_BUILD = $(call ksft_build,patched,mm)

$(KSELFTEST): vm-kernels FORCE
	$(KSFT_BUILD)

# The same kselftest as a 32-bit program: the compat iovec and the 32-bit
# sum limit.  (The harness's pointer asserts warn when built -m32.)
$(KSELFTEST32): vm-kernels FORCE
	$(KSFT_BUILD) -m32 -Wno-pointer-to-int-cast

$(FUZZER) $(RACER): $(VM)/madvisev-%: tests/fuzz/madvisev-%.c vm-kernels FORCE
	gcc -static -O2 -Wall -Wextra -pthread -isystem $(VM)/obj-patched/usr/include \
	    -I libmadvisev/include -o $@ $<

# A thread's page-fault latency beside MADV_ZERO in the same page table
# (the guests' faultlat job).
$(FAULTLAT): tests/bench/madvisev-fault-latency.c FORCE
	gcc -static -O2 -Wall -Wextra -pthread -o $@ $<

# mmap()+munmap() latency beside long madvisev() calls (make demo's guest).
$(LOCKLAT): tests/bench/madvisev-lock-latency.c vm-kernels FORCE
	gcc -static -O2 -Wall -Wextra -pthread -isystem $(VM)/obj-patched/usr/include \
	    -I libmadvisev/include -o $@ $<

vm-images: vm-kernels build-static wasmtime-bench $(KSELFTEST) $(KSELFTEST32) $(FUZZER) $(RACER) $(LOCKLAT) $(FAULTLAT)
	vm-images/build-initramfs.sh $(addprefix -d ,$(WASM_MODULES)) $(INITRAMFS) $(WASMTIME_BENCH) $(KSELFTEST) $(KSELFTEST32) $(FUZZER) $(RACER) $(LOCKLAT) $(FAULTLAT) \
	    $(BUILD_ST)/libmadvisev/madvisev-test $(BUILD_ST)/libmadvisev/madvisev-first-use \
	    $(BUILD_ST)/libmadvisev/madvisev-info \
	    $(BUILD_ST)/libmadvisev/madvisev-bench $(BUILD_ST)/libmadvisev/madvisev-ipi-cost \
	    $(BUILD_ST)/runtime-integration/wasmpool-test \
	    $(BUILD_ST)/runtime-integration/wasmpool-swap-test \
	    $(BUILD_ST)/runtime-integration/instantiate-bench $(TRACE_BINS)
	$(PHASE) vm-images

# In the patched guest: the kselftest (64- and 32-bit) and the library's
# tests, detection picking `syscall`.  In the unpatched one: the library's tests, detection
# picking `sequential`.  In both, real Wasmtime with decommit_batch_size 32
# (peers/wasmtime-bench/check.py: one IPI round per batch with the series;
# EBADF on every batch, swallowed, without it).  Both with swap on zram, and the pool's reset of
# swapped-out pages (wasmpool-swap-test).  Every gtest the guest skipped is
# held to tests/skip-allowlist.txt (guest-patched, guest-unpatched).
GUEST_GTESTS := madvisev-test,wasmpool-test,wasmpool-swap-test
vm-test: vm-images
	vm-images/run-vm.sh -q -k $(KERNEL_PATCHED) -i $(INITRAMFS) -j test-patched -s 2 \
	    -t 1200 -l $(VM)/test-patched.log -a "$(WASMTIME_CHECK_ARG)"; rc=$$?; tr -d '\r' < $(VM)/test-patched.log | \
	    grep -E '^\[guest\]|^# |^(not )?ok |tests? (passed|failed)|FAILED|PASSED' ; \
	    $(CHECK_SKIPS) --env guest-patched --guest-log $(VM)/test-patched.log \
	        --reports $(GUEST_GTESTS) || rc=1; \
	    $(WASMTIME_CHECK) --kernel series $(VM)/test-patched.results || rc=1; \
	    scripts/flush_table.py --check $(VM)/test-patched.log docs/results/data/vm-kselftest-flush.json || rc=1; \
	    exit $$rc
	vm-images/run-vm.sh -q -k $(KERNEL_UNPATCHED) -i $(INITRAMFS) -j test-unpatched -s 2 \
	    -t 1200 -l $(VM)/test-unpatched.log -a "$(WASMTIME_CHECK_ARG)"; rc=$$?; tr -d '\r' < $(VM)/test-unpatched.log | \
	    grep -E '^\[guest\]|FAILED|PASSED' ; \
	    $(CHECK_SKIPS) --env guest-unpatched --guest-log $(VM)/test-unpatched.log \
	        --reports $(GUEST_GTESTS) || rc=1; \
	    $(WASMTIME_CHECK) --kernel stock $(VM)/test-unpatched.results || rc=1; exit $$rc
	$(PHASE) vm-test

# The results channel under kernel messages: the guest sends a block on it
# while another process forces messages onto the console through
# /dev/kmsg, and writes the same bytes to the console the old way; the host
# reads the block back intact and sees the messages inside the console
# copy (vm-images/test/check_channel.py).
vm-test-channel: vm-images
	vm-images/run-vm.sh -q -k $(KERNEL_UNPATCHED) -i $(INITRAMFS) -j channel -s 2 -t 300 \
	    -l $(VM)/channel.log -a "printk.devkmsg=on"; rc=$$?; \
	    tr -d '\r' < $(VM)/channel.log | grep -E '^\[guest\]'; \
	    vm-images/test/check_channel.py $(VM)/channel.log $(VM)/channel.results || rc=1; exit $$rc
	$(PHASE) vm-test-channel

# arm64: the patched kernel cross-built (aarch64-linux-gnu-gcc, its own
# source tree and objects under $(VM)), the kselftest built static against
# its uapi headers, an initramfs with Debian's arm64 busybox, booted with
# qemu-system-aarch64 -M virt (TCG, 2 vCPUs).  The guest runs the 64-bit
# kselftest (no CONFIG_COMPAT there); its cases that count TLB-shootdown
# IPIs skip, since arm64 flushes by broadcast TLBI and has no
# tlb:tlb_flush tracepoint: the skips are held to tests/skip-allowlist.txt (as
# guest-patched, named arm64/CASE), and any failure or other skip fails.
# Then madvisev-flushcount prints the TLB flushes per call that kprobe
# events count there (vm-images/README.md).
KERNEL_ARM64     := $(VM)/obj-patched-arm64/arch/arm64/boot/Image
INITRAMFS_ARM64  := $(VM)/initramfs-arm64.cpio.gz
KSELFTEST_ARM64  := $(VM)/madvisev-kselftest-arm64
FLUSHCOUNT_ARM64 := $(VM)/madvisev-flushcount-arm64
BUSYBOX_ARM64    := $(VM)/busybox-arm64/busybox

vm-kernel-arm64: deps
	vm-images/build-kernel.sh patched-arm64 $(VM)
	$(PHASE) vm-kernel-arm64

$(KSELFTEST_ARM64): vm-kernel-arm64 FORCE
	aarch64-linux-gnu-gcc -static -O2 -Wall -pthread -isystem $(VM)/obj-patched-arm64/usr/include \
	    -I $(VM)/src-patched-arm64/tools/testing/selftests \
	    -o $@ $(VM)/src-patched-arm64/tools/testing/selftests/mm/madvisev.c

$(FLUSHCOUNT_ARM64): vm-images/guest/flushcount.c vm-kernel-arm64 FORCE
	aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -isystem $(VM)/obj-patched-arm64/usr/include -o $@ $<

vm-images-arm64: vm-kernel-arm64 $(KSELFTEST_ARM64) $(FLUSHCOUNT_ARM64)
	scripts/install-deps.sh --arm64-busybox $(dir $(BUSYBOX_ARM64))
	BUSYBOX=$(BUSYBOX_ARM64) vm-images/build-initramfs.sh $(INITRAMFS_ARM64) $(KSELFTEST_ARM64) \
	    $(FLUSHCOUNT_ARM64)
	$(PHASE) vm-images-arm64

vm-test-arm64: vm-images-arm64
	vm-images/run-vm.sh --arch arm64 -q -k $(KERNEL_ARM64) -i $(INITRAMFS_ARM64) -j test-arm64 -s 2 \
	    -t 1200 -l $(VM)/test-arm64.log; rc=$$?; tr -d '\r' < $(VM)/test-arm64.log | \
	    grep -E '^\[guest\]|^# |^(not )?ok ' ; \
	    $(CHECK_SKIPS) --env guest-patched --guest-log $(VM)/test-arm64.log \
	        --reports madvisev-kselftest-arm64 || rc=1; exit $$rc
	$(PHASE) vm-test-arm64

# Linux 6.1, the kernel Debian 12 runs: the 6.1 series (kernel-patch/6.1)
# on Debian's linux-source-6.1, x86_64, its own source tree and objects
# under $(VM).  Its initramfs has its own kselftest (selftests/vm in 6.1),
# 64- and 32-bit, under the names the guest's test job runs, and the same
# static library tests as the 6.12 guests.  vm-test-6.1 runs the job the
# patched 6.12 guest runs (test-patched: kselftest, gtests with detection
# pinned to syscall, the swap test), its skips held to
# tests/skip-allowlist.txt as guest-patched-6.1.
KERNEL_61        := $(VM)/obj-patched-6.1/arch/x86/boot/bzImage
INITRAMFS_61     := $(VM)/initramfs-6.1.cpio.gz
KSELFTEST_61     := $(VM)/6.1/madvisev-kselftest
KSELFTEST32_61   := $(VM)/6.1/madvisev-kselftest-32
KSFT_BUILD_61 = mkdir -p $(dir $@) && $(call ksft_build,patched-6.1,vm)

vm-kernel-6.1: deps
	vm-images/build-kernel.sh patched-6.1 $(VM)
	$(PHASE) vm-kernel-6.1

$(KSELFTEST_61): vm-kernel-6.1 FORCE
	$(KSFT_BUILD_61)

$(KSELFTEST32_61): vm-kernel-6.1 FORCE
	$(KSFT_BUILD_61) -m32 -Wno-pointer-to-int-cast

vm-images-6.1: vm-kernel-6.1 build-static wasmtime-bench $(KSELFTEST_61) $(KSELFTEST32_61) $(FAULTLAT)
	vm-images/build-initramfs.sh $(addprefix -d ,$(WASM_MODULES)) $(INITRAMFS_61) $(WASMTIME_BENCH) $(KSELFTEST_61) $(KSELFTEST32_61) $(FAULTLAT) \
	    $(BUILD_ST)/libmadvisev/madvisev-test $(BUILD_ST)/libmadvisev/madvisev-first-use \
	    $(BUILD_ST)/libmadvisev/madvisev-info $(BUILD_ST)/libmadvisev/madvisev-bench \
	    $(BUILD_ST)/runtime-integration/wasmpool-test \
	    $(BUILD_ST)/runtime-integration/wasmpool-swap-test $(BUILD_ST)/runtime-integration/instantiate-bench
	$(PHASE) vm-images-6.1

vm-test-6.1: vm-images-6.1
	vm-images/run-vm.sh -q -k $(KERNEL_61) -i $(INITRAMFS_61) -j test-patched -s 2 \
	    -t 1200 -l $(VM)/test-patched-6.1.log -a "$(WASMTIME_CHECK_ARG)"; rc=$$?; tr -d '\r' < $(VM)/test-patched-6.1.log | \
	    grep -E '^\[guest\]|^# |^(not )?ok |tests? (passed|failed)|FAILED|PASSED|^flush-table' ; \
	    $(CHECK_SKIPS) --env guest-patched-6.1 --guest-log $(VM)/test-patched-6.1.log \
	        --reports $(GUEST_GTESTS) || rc=1; \
	    $(WASMTIME_CHECK) --kernel series $(VM)/test-patched-6.1.results || rc=1; \
	    scripts/flush_table.py --check $(VM)/test-patched-6.1.log docs/results/data/vm61-kselftest-flush.json || rc=1; \
	    exit $$rc
	$(PHASE) vm-test-6.1

# Debian packages: the patched 6.12 and 6.1 kernels (linux-image-*,
# linux-headers-*, linux-libc-dev; make bindeb-pkg from Debian's own
# cloud-amd64 config for each version, vm-images/build-kernel.sh deb and
# deb-6.1) and the library (libmadvisev0, libmadvisev-dev, madvisev-tools:
# dpkg-buildpackage from debian/, then lintian; scripts/build-debs.sh), all
# in $(DEBS).
DEBS      := $(VM)/debs
IMAGE_DIR := $(VM)/debian
IMAGE     := $(IMAGE_DIR)/debian12.img
debs: deps
	vm-images/build-kernel.sh deb $(VM)
	vm-images/build-kernel.sh deb-6.1 $(VM)
	scripts/build-debs.sh $(DEBS)

# make test's part of the above: the library's packages built, held to
# lintian, installed on this machine, used as a program's author uses
# them (pkg-config, find_package, the man pages) and purged again
# (scripts/test-debs.sh).  The kernel packages and the image are not: see
# make test-image.
test-debs: deps
	scripts/build-debs.sh $(DEBS)
	scripts/test-debs.sh $(DEBS)
	$(PHASE) test-debs

# A Debian 12 system on a disk image (vm-images/debian/build-image.sh):
# debootstrap from Debian's archive, Debian's own kernel from there, the
# packages above installed with dpkg -i, systemd as init, and the test
# guests' /tests, run by a service when the kernel command line names a
# job.  Not in make test (its kernels alone take longer to build than the
# CI budget allows, vm-images/README.md); make test-image boots it.
image: debs vm-images vm-images-6.1
	vm-images/debian/build-image.sh $(IMAGE_DIR) $(DEBS) $(INITRAMFS) $(INITRAMFS_61)

# The image booted as an operator boots it: the madvisev 6.12 kernel with
# the patched guests' checks (test-patched: madvisev-info picks the
# syscall backend, the kselftest 64- and 32-bit, the gtests, real Wasmtime
# at about one IPI round per batch), the madvisev 6.1 kernel the same
# with the 6.1 series' kselftest, and Debian's own kernel with the
# unpatched guest's (test-unpatched: sequential, Wasmtime's batches
# refused and paved over).
IMAGE_KERNEL = $(firstword $(wildcard $(IMAGE_DIR)/boot/vmlinuz-$(1)))
IMAGE_INITRD = $(firstword $(wildcard $(IMAGE_DIR)/boot/initrd.img-$(1)))
define image_run
	vm-images/run-vm.sh -q -k $(call IMAGE_KERNEL,$(1)) -i $(call IMAGE_INITRD,$(1)) -d $(IMAGE) -j $(2) -s 2 \
	    -t 1800 -l $(IMAGE_DIR)/$(3).log -a "$(WASMTIME_CHECK_ARG)"; rc=$$?; tr -d '\r' < $(IMAGE_DIR)/$(3).log | \
	    grep -E '^\[guest\]|^# |^(not )?ok |FAILED|PASSED' ; \
	    $(CHECK_SKIPS) --env $(4) --guest-log $(IMAGE_DIR)/$(3).log --reports $(GUEST_GTESTS) || rc=1; \
	    $(WASMTIME_CHECK) --kernel $(5) $(IMAGE_DIR)/$(3).results || rc=1; exit $$rc
endef
test-image:
	@[ -f $(IMAGE) ] || { echo "test-image: no $(IMAGE) (make image)"; exit 1; }
	$(call image_run,6.12.*-madvisev,test-patched,test-madvisev,guest-patched,series)
	$(call image_run,6.1.*-madvisev,test-patched,test-madvisev-6.1,guest-patched-6.1,series)
	$(call image_run,*-amd64,test-unpatched,test-debian,guest-unpatched,stock)

# madvisev-trace in the debug kernel (it has BTF): exact counts on
# trace-child, with madvisev calls that succeed there, and both benches'
# --trace figures; the host holds them to trace/test/check_counts.py.
# Decided here, after deps: where the tracer cannot be built, the skip is
# held to tests/skip-allowlist.txt (which allows none); where it should
# build and did not, vm-images has failed already.
vm-trace: vm-images
	@why=$$(scripts/trace-prereqs.sh); rc=$$?; [ $$rc -ne 2 ] || exit 1; \
	if [ $$rc -ne 0 ]; then echo "vm-trace: SKIP: $$why"; \
	    $(CHECK_SKIPS) --env host --skipped vm-trace --why "$$why"; exit; fi; \
	set -x; vm-images/run-vm.sh -q -k $(KERNEL_DEBUG) -i $(INITRAMFS) -j trace -s 2 -m 2G -t 900 \
	    -l $(VM)/trace-debug.log -a "panic_on_warn=1"; rc=$$?; { set +x; } 2> /dev/null; \
	    tr -d '\r' < $(VM)/trace-debug.log | grep -E '^\[guest\]|^(syscall|madvise|process_madvise|io_uring|sequential|stock) |^pool-'; \
	    trace/test/check_guest.sh $(VM)/trace-debug.results $(VM)/trace-guest || rc=1; exit $$rc
	$(PHASE) vm-trace

# In the debug kernel (KASAN, lockdep, DEBUG_VM, ..., panic_on_warn) with
# 4 vCPUs: the syscall fuzzer, then the race tests.  Any splat fails it.
vm-fuzz: vm-images
	vm-images/run-vm.sh -q -k $(KERNEL_DEBUG) -i $(INITRAMFS) -j fuzz -s 4 -m 3G \
	    -t $$(( $(FUZZ_SECONDS) + $(RACE_SECONDS) + 600 )) -l $(VM)/fuzz-debug.log \
	    -a "panic_on_warn=1 madvisev.fuzz=--seconds:$(FUZZ_SECONDS):--seed:$(SEED) madvisev.race=--seconds:$(RACE_SECONDS):--seed:$(SEED)"; \
	    rc=$$?; tr -d '\r' < $(VM)/fuzz-debug.log | grep -E '^madvisev-(fuzz|race)|MISMATCH|FAIL'; exit $$rc
	$(PHASE) vm-fuzz

fuzz:
	$(MAKE) vm-fuzz FUZZ_SECONDS=$(SECONDS) RACE_SECONDS=$(SECONDS)

$(BUILD_TSAN)/build.ninja: | deps
	cmake -S . -B $(BUILD_TSAN) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DMADVISEV_TSAN=ON

build-tsan: deps $(BUILD_TSAN)/build.ninja
	$(call trace_configured,$(BUILD_TSAN))
	cmake --build $(BUILD_TSAN) -j $(JOBS)
	$(PHASE) build-tsan

# The same tests under ThreadSanitizer.
test-tsan: build-tsan
	$(call ctest_checked,$(BUILD_TSAN),host-tsan)
	$(PHASE) test-tsan

# libFuzzer (clang): every backend against madvise(2) range by range on a
# twin mapping (tests/fuzz/madvisev-args-fuzz.cpp).
$(BUILD)/madvisev-args-fuzz: tests/fuzz/madvisev-args-fuzz.cpp libmadvisev/src/*.cpp libmadvisev/src/*.h \
        libmadvisev/include/madvisev.h | deps
	mkdir -p $(BUILD)
	clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Ilibmadvisev/include \
	    -Ilibmadvisev/src libmadvisev/src/*.cpp $< -luring -o $@

test-libfuzzer: $(BUILD)/madvisev-args-fuzz
	mkdir -p $(BUILD)/args-fuzz-corpus
	$(BUILD)/madvisev-args-fuzz -max_total_time=$(LIBFUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/args-fuzz-corpus 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|^==|MISMATCH|^  call:' ; \
	    exit $${PIPESTATUS[0]}
	$(PHASE) test-libfuzzer

# docs/results.md and its plots, from the JSON of the last make demo (copied
# to docs/results/data) or, without one, from the JSON already there.  The
# figures make demo does not make (scripts/vcpu-sweep.py's runs, the fault
# latency beside MADV_ZERO: scripts/results_vcpus.py FILES; the kselftest's
# IPI-round counts the cover letters quote: scripts/flush_table.py; the
# Debian image's real-Wasmtime runs, made only where the image is built) stay.
KEPT_RESULTS := vm-lock-stat.json vm-vcpu-sweep.json vm-fault-latency.json \
    vm-kselftest-flush.json vm61-kselftest-flush.json \
    debian-real-wasmtime.json debianstock-real-wasmtime.json debian-machine.json debianstock-machine.json
results: deps
	@if ls $(RESULTS)/*-bench.json > /dev/null 2>&1; then \
	    mkdir -p docs/results/data && \
	    find docs/results/data -maxdepth 1 -name '*.json' $(foreach f,$(KEPT_RESULTS),! -name $(f)) -delete && \
	    cp $(RESULTS)/*.json docs/results/data/; fi
	python3 scripts/results.py docs/results/data docs/results.md docs/results
	python3 scripts/results.py --prose docs/results/data .

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_ST) $(BUILD_TSAN)
