# Build, test and set-up entry points. `make help` lists the targets.
#
# CUDA: when nvcc is found, kernels/cuda/*.cu are compiled and linked (the
# binaries still run on a machine without a GPU); `make CUDA=0` leaves them out.

CC      ?= cc
PYTHON  ?= python3
VENV    := .venv
MODEL_DIR := models/SmolLM2-135M-Instruct

NVCC ?= $(shell command -v nvcc 2>/dev/null)
ifeq ($(NVCC),)
CUDA ?= 0
else
CUDA ?= 1
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# GPU targets: T4, A100, A10/3090, L4, H100/H200; plus PTX of the newest for later GPUs.
CUDA_ARCH ?= 75 80 86 89 90
CUDA_PTX  ?= $(lastword $(CUDA_ARCH))

# Folders are layers (README "Layout"): a folder sees its own headers and those
# of the layers below it, never above, and its include path says exactly that,
# so an upward include does not compile (`make check-layers` reports it too).
INC_common    := -Icommon
INC_kernels   := $(INC_common) -Ikernels
INC_tokenizer := $(INC_common) -Itokenizer
INC_engine    := $(INC_kernels) -Iengine
INC_server    := $(INC_engine) -Itokenizer -Iserver
INC_bench     := $(INC_engine) -Itokenizer -Ibench
INC_tools     := $(INC_engine) -Itokenizer -Iserver -Ibench
INC_tests     := $(INC_tools) -Itests
INCLUDES  = $(INC_tests)
WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fopenmp $(INCLUDES) -MMD -MP
LDLIBS   := -lcjson -lm -lpthread -fopenmp

BUILD := build
OBJ   := $(BUILD)/obj
BIN   := $(BUILD)/bin

# Every .c under these folders is library code (libllm.a); each tools/*.c is
# the main of one binary.
SRC_DIRS  := common kernels kernels/cpu tokenizer engine server bench
LIB_SRC   := $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))
MAIN_SRC  := $(wildcard tools/*.c)
BINARIES  := $(patsubst tools/%.c,$(BIN)/%,$(MAIN_SRC))
TEST_SRC  := tests/harness.c tests/rig.c $(wildcard tests/unit/*.c tests/model/*.c tests/bench/*.c)
# libraries a binary needs beyond libllm.a's own
LIBS_llm_server   := -lmicrohttpd
LIBS_llm_client   := -lcurl -lyaml
LIBS_bench_engine := -lcurl -lyaml

ifeq ($(CUDA),1)
CU_SRC    := $(wildcard kernels/cuda/*.cu)
CU_OBJ    := $(patsubst %.cu,$(OBJ)/%.o,$(CU_SRC))
GENCODE   := $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(CUDA_PTX),code=compute_$(CUDA_PTX)
NVCCFLAGS ?= -O2 -g
ALL_NVCCFLAGS = -std=c++17 $(NVCCFLAGS) $(GENCODE) $(INC_kernels) -Ikernels/cuda -DLLM_CUDA=1 \
             -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter -MMD -MP
ALL_CFLAGS += -DLLM_CUDA=1
LDLIBS    += -L$(CUDA_HOME)/lib64 -lcublas -lcudart_static -ldl -lrt -lstdc++ \
             -Wl,-rpath,$(CUDA_HOME)/lib64
endif

LIB_OBJ  := $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRC)) $(CU_OBJ)
LIB      := $(BUILD)/libllm.a

.PHONY: all help deps venv model test check-layers check-functions test-c test-py asan asan-build asan-run asan-server tsan-server fuzz format \
        format-check clean

all: $(BINARIES) $(BIN)/unit_tests

help:
	@echo "make            build every binary into $(BIN)/ (CUDA=0 to leave CUDA out)"
	@echo "make deps       install the Debian packages the project needs"
	@echo "make venv       create $(VENV) with the pinned Python dependencies"
	@echo "make model      fetch and convert the default model into $(MODEL_DIR)"
	@echo "make test       C unit tests, ASan/UBSan run, Python integration tests"
	@echo "make test-deploy  3 replicas behind nginx + Prometheus, one killed, one drained (in make test)"
	@echo "make asan       C unit tests under AddressSanitizer + UBSan"
	@echo "make fuzz       fuzz the safetensors reader (FUZZ_SECONDS, default 120)"
	@echo "make format     clang-format every C/CUDA source; format-check only checks"
	@echo "make kernel-report  registers, occupancy, SASS load counts of the CUDA kernels (no GPU)"

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# each folder's include path (see INC_* above)
$(OBJ)/common/%.o:    INCLUDES = $(INC_common)
$(OBJ)/kernels/%.o:   INCLUDES = $(INC_kernels)
$(OBJ)/tokenizer/%.o: INCLUDES = $(INC_tokenizer)
$(OBJ)/engine/%.o:    INCLUDES = $(INC_engine)
$(OBJ)/server/%.o:    INCLUDES = $(INC_server)
$(OBJ)/bench/%.o:     INCLUDES = $(INC_bench)
$(OBJ)/tools/%.o:     INCLUDES = $(INC_tools)

# the build's version (git describe), for the reports bench_engine writes:
# version.h is rewritten only when the description changes, so the one
# object that includes it is rebuilt then and only then
VERSION_H := $(BUILD)/version.h
.PHONY: FORCE
$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@v="#define LLM_VERSION \"$$(git describe --always --dirty 2>/dev/null || echo unknown)\""; \
	  [ "$$(cat $@ 2>/dev/null)" = "$$v" ] || echo "$$v" > $@
$(OBJ)/bench/sweep_figs.o: $(VERSION_H)
$(OBJ)/bench/sweep_figs.o: CFLAGS += -include $(VERSION_H)

$(OBJ)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(ALL_NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/%: $(OBJ)/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $< $(LIB) $(LDLIBS) $(LIBS_$*) -o $@

$(BIN)/unit_tests: $(patsubst %.c,$(OBJ)/%.o,$(TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(filter %.o,$^) $(LIB) $(LDLIBS) -lcurl -lyaml -o $@

# --- tests -----------------------------------------------------------------

# Builds run in parallel; the test stages run one after the other.
JOBS ?= $(shell nproc)
test:
	$(MAKE) --no-print-directory -j$(JOBS) all
	$(MAKE) --no-print-directory format-check
	$(MAKE) --no-print-directory check-layers check-functions
	$(MAKE) --no-print-directory test-c
	$(MAKE) --no-print-directory -j$(JOBS) asan-build
	$(MAKE) --no-print-directory asan-run
	$(MAKE) --no-print-directory test-py
	$(MAKE) --no-print-directory asan-server
	$(MAKE) --no-print-directory test-gpu-emu
	$(MAKE) --no-print-directory test-deploy

# no folder includes a header of a layer above its own (README "Layout")
check-layers:
	$(PYTHON) scripts/check_layers.py

# no function over 120 lines (generated tables aside)
check-functions:
	$(PYTHON) scripts/check_function_length.py

test-c: $(BIN)/unit_tests
	$(BIN)/unit_tests

test-py: all
	@test -x $(VENV)/bin/pytest || { echo "no $(VENV): run 'make venv' first"; exit 1; }
	$(VENV)/bin/pytest -q tests/integration

# deploy/ run for real: 3 replicas behind nginx, Prometheus with deploy's
# rules, 64 streams, one replica killed and one drained mid-run (about 70 s on
# 2 cores; docs/deployment.md). nginx and prometheus from `make deps`; a
# missing one fails here (the test skips it elsewhere).
.PHONY: test-deploy
test-deploy: all
	@test -x $(VENV)/bin/pytest || { echo "no $(VENV): run 'make venv' first"; exit 1; }
	LLM_DEPLOY_REQUIRE=1 $(VENV)/bin/pytest -q -s tests/deploy

# kubernetes-validate (PyPI, pinned; ~150 MB of schemas, so not in `make venv`)
# for tests/integration/test_deploy_config.py's check of deploy/kubernetes
.PHONY: venv-deploy
venv-deploy: venv
	$(VENV)/bin/pip install -q --disable-pip-version-check -r scripts/requirements-deploy.txt

# --- GPU tests (CUDA=1) ----------------------------------------------------
# gpu_tests checks every CUDA op, tiny models and the engine against the CPU
# backend; gpu_bench measures copy bandwidth, a cuBLAS GEMM and the matmul
# kernels. A CUDA build compiles both (`make`); only `make test-gpu` runs them,
# where a missing GPU is a failure (run by hand, gpu_tests skips without one).
GPU_TEST_SRC := tests/harness.c tests/rig.c tests/unit/tiny_model.c tests/unit/family_golden.c \
                tests/gpu/gpu_util.c \
                $(wildcard tests/gpu/test_*.c)
ifeq ($(CUDA),1)
all: $(BIN)/gpu_tests $(BIN)/gpu_bench
endif

$(BIN)/gpu_tests: $(patsubst %.c,$(OBJ)/%.o,$(GPU_TEST_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

# the CUDA micro-benchmarks (kernels/cuda/dev/): a development tool, not in libllm.a
$(BIN)/gpu_bench: $(OBJ)/kernels/cuda/dev/gpu_bench.o $(OBJ)/kernels/cuda/dev/cuda_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

# The op tests run again on small shapes under compute-sanitizer: memcheck
# (out-of-bounds and misaligned accesses, errors of CUDA calls) on all of them,
# racecheck (shared-memory hazards) on the kernels that share memory.
COMPUTE_SANITIZER ?= $(firstword $(wildcard $(CUDA_HOME)/bin/compute-sanitizer \
                     $(CUDA_HOME)/compute-sanitizer/compute-sanitizer) \
                     $(shell command -v compute-sanitizer 2>/dev/null))
SANITIZER = LLM_REQUIRE_GPU=1 LLM_GPU_FAST=1 $(COMPUTE_SANITIZER) --error-exitcode 1
.PHONY: test-gpu
test-gpu:
	@test "$(CUDA)" = 1 || { echo "test-gpu: needs a CUDA build (nvcc on the PATH)"; exit 1; }
	@test -n "$(COMPUTE_SANITIZER)" || { echo "test-gpu: compute-sanitizer not found" \
	    "(the CUDA toolkit's cuda-sanitizer package)"; exit 1; }
	$(MAKE) --no-print-directory -j$(JOBS) $(BIN)/gpu_tests $(BIN)/gpu_bench
	LLM_REQUIRE_GPU=1 $(BIN)/gpu_tests
	$(SANITIZER) --tool memcheck $(BIN)/gpu_tests gpu_op_
	$(SANITIZER) --tool racecheck $(BIN)/gpu_tests gpu_op_attention gpu_op_matmul_misaligned

# Without a GPU: gpu_tests with kernels/cuda/*.cu compiled as C++ against the
# CPU emulation of tests/gpu/emu/ (fiber threads with real barrier and shuffle
# semantics, a naive cuBLAS), small shapes. Needs no nvcc. EMU_CC=75 emulates sm_75.
EMU_DIR := tests/gpu/emu
EMU_OTHER_CC := 75 80 89
EMU_CC_TESTS := gpu_op_matmul gpu_forward_tiny gpu_engine_dtype gpu_forward_decode_graphs \
                gpu_op_attention_tensor_cores gpu_op_kv_write_fp8 gpu_op_attention_fp8
EMU_CU  := $(basename $(notdir $(wildcard kernels/cuda/*.cu)))
EMU_OBJ := $(OBJ)/emu/emu.o $(patsubst %,$(OBJ)/emu/%.o,$(EMU_CU))
EMU_CXXFLAGS = -std=c++17 -O1 -g -I$(EMU_DIR)/include $(INC_kernels) -Ikernels/cuda -DLLM_CUDA=1 \
               -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-pragmas
.PHONY: test-gpu-emu
test-gpu-emu:
	$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/emu CUDA=0 CFLAGS="-O2 -g -DLLM_CUDA=1" \
	    $(BUILD)/emu/bin/gpu_tests_emu
	LLM_REQUIRE_GPU=1 LLM_GPU_FAST=1 $(BUILD)/emu/bin/gpu_tests_emu
	@# the capability-dependent paths (dtype rule, bf16 GEMM or not, tensor-core
	@# kernels) once more as T4, A100 and L4
	for cc in $(EMU_OTHER_CC); do echo "== emulated sm_$$cc"; \
	    EMU_CC=$$cc LLM_REQUIRE_GPU=1 LLM_GPU_FAST=1 $(BUILD)/emu/bin/gpu_tests_emu \
	        $(EMU_CC_TESTS) || exit 1; done

$(OBJ)/emu/emu.o: $(EMU_DIR)/emu.cpp $(EMU_DIR)/include/emu.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
$(OBJ)/emu/%.o: kernels/cuda/%.cu $(EMU_DIR)/translate.py $(wildcard $(EMU_DIR)/include/*.h) \
                $(wildcard kernels/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(PYTHON) $(EMU_DIR)/translate.py $< $(@:.o=.cpp)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $(@:.o=.cpp) -o $@
$(BIN)/gpu_tests_emu: $(patsubst %.c,$(OBJ)/%.o,$(GPU_TEST_SRC)) $(EMU_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(filter %.o,$^) $(LIB) $(LDLIBS) -o $@

# Without a GPU: registers, shared memory, spills, occupancy and what the sm_90
# SASS shows (16-byte loads, loads in flight in the hot loop) for every kernel
# of kernels/cuda/ (scripts/kernel_report.py; installs cuobjdump from PyPI into
# .cache/ once when the toolkit lacks it). KERNEL_ARCH=80 etc. for another GPU.
KERNEL_ARCH ?= 90
.PHONY: kernel-report
kernel-report:
	$(PYTHON) scripts/kernel_report.py --arch $(KERNEL_ARCH)

# The sanitizer build is CPU-only and lives in its own tree.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
asan: asan-build asan-run
asan-build:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CUDA=0 CFLAGS="$(ASAN_FLAGS)" \
	    LDFLAGS_EXTRA="$(ASAN_FLAGS)" $(BUILD)/asan/bin/unit_tests
asan-run: asan-build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    OMP_NUM_THREADS=2 $(BUILD)/asan/bin/unit_tests

# The server's integration tests once more against an ASan + UBSan build of
# llm_server (leaks fail its exit status), and the first-hour tests (issue 15);
# the 256-stream test is left out.
asan-server:
	$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/asan CUDA=0 CFLAGS="$(ASAN_FLAGS)" \
	    LDFLAGS_EXTRA="$(ASAN_FLAGS)" $(BUILD)/asan/bin/llm_server
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    LLM_SERVER_BIN=$(BUILD)/asan/bin/llm_server $(VENV)/bin/pytest -q \
	    tests/integration/test_server.py tests/integration/test_first_hour.py -k "not 256"

# The same against a ThreadSanitizer build (slow: about 7 minutes; not in
# `make test`). One OpenMP thread: libgomp is not instrumented.
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
tsan-server:
	$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/tsan CUDA=0 CFLAGS="$(TSAN_FLAGS)" \
	    LDFLAGS_EXTRA="$(TSAN_FLAGS)" $(BUILD)/tsan/bin/llm_server
	TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0" OMP_NUM_THREADS=1 \
	    LLM_SERVER_BIN=$(BUILD)/tsan/bin/llm_server $(VENV)/bin/pytest -q \
	    tests/integration/test_server.py -k "not 256 and not health"

ifdef LDFLAGS_EXTRA
LDLIBS += $(LDFLAGS_EXTRA)
endif

# libFuzzer needs clang. Each tests/fuzz/fuzz_NAME.c is one target, linked
# with the CPU-only library sources and run on tests/fuzz/corpus_NAME/; the
# crashers found are kept under tests/fixtures/ as regression tests.
# `make fuzz` runs every target for FUZZ_SECONDS; `make fuzz-NAME` runs one.
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# the library sources each target needs
FUZZ_SRC_safetensors := engine/safetensors.c $(wildcard common/*.c)
FUZZ_SRC_tokenizer   := $(wildcard tokenizer/*.c common/*.c)
FUZZ_SRC_chat_template := $(FUZZ_SRC_tokenizer)
FUZZ_SRC_request := server/params.c engine/sampler.c $(wildcard common/*.c)
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz-%: tests/fuzz/fuzz_%.c
	@mkdir -p $(BUILD)/fuzz fuzz-out/$*
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined $(INCLUDES) \
	    $< $(FUZZ_SRC_$*) -lcjson -lm -o $(BUILD)/fuzz/fuzz_$*
	$(BUILD)/fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -artifact_prefix=fuzz-out/$*- fuzz-out/$* tests/fuzz/corpus_$*

# --- set-up ----------------------------------------------------------------

DEB_PACKAGES := build-essential clang libclang-rt-dev libcjson-dev libmicrohttpd-dev \
                libcurl4-openssl-dev libyaml-dev libgomp1 python3-venv python3-pip \
                unicode-data curl ca-certificates unzip clang-format chromium prometheus \
                nginx-light
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

venv: $(VENV)/.stamp
$(VENV)/.stamp: scripts/requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
	touch $@

model: $(MODEL_DIR)/.complete
$(MODEL_DIR)/.complete: | venv
	PYTHON=$(VENV)/bin/python scripts/get_model.sh $(MODEL_DIR)

# --- housekeeping ----------------------------------------------------------

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' '*.cu' '*.cuh')
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
