#!/usr/bin/env bash
# gpu_check.sh - everything to run when a session is lent a GPU, as one call
# of the device tool (the device's copy of the tree, results under $OUT):
#   build for this GPU only, the floors and the GEMV per matrix shape and n
#   (gpu_bench), make test-gpu (ops, models, engine against the CPU backend,
#   compute-sanitizer), then end-to-end decode and prefill figures with
#   bench_engine on synthetic models.
# Usage: OUT=dir scripts/gpu_check.sh [quick]   ("quick": test-gpu and floors only)
set -uo pipefail
OUT=${OUT:-results/gpu-check}
mkdir -p "$OUT"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
arch=${arch:-90}
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/steps.log"; }
step() { # name, command...: runs it, logs its status, keeps its output
    local name=$1; shift
    log "$name"
    ( "$@" ) >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc" | tee -a "$OUT/steps.log"
    tail -5 "$OUT/$name.log"
    return 0
}
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
step build make -j"$(nproc)" CUDA_ARCH="$arch" CUDA_PTX="$arch"
# the floors and the GEMV per shape and n first (bench/NOTES.md's predictions):
# a short device budget still gets them
step gpu_bench build/bin/gpu_bench --reps 20
step test-gpu make test-gpu CUDA_ARCH="$arch" CUDA_PTX="$arch"
[ "${1:-}" = quick ] && exit 0
# decode at batch 1 (weight streaming vs copy bandwidth), 64 and 256; a 2048-token prefill
for m in llama-3.2-1b llama-3-8b; do
    step "latency-$m" build/bin/bench_engine latency --synthetic "$m" --device cuda --dtype f16 \
        --batch-sizes 1,64,256 --input-lens 128 --output-lens 64 --repeat 2 --warmup 1
    step "prefill-$m" build/bin/bench_engine latency --synthetic "$m" --device cuda --dtype f16 \
        --batch-sizes 1 --input-lens 2048 --output-lens 1 --repeat 2 --warmup 1
done
# decode graphs vs kernel by kernel, and the grouped decode attention at 4K context
step eager-llama-3-8b build/bin/bench_engine latency --synthetic llama-3-8b --device cuda \
    --dtype bf16 --batch-sizes 1,8 --input-lens 128 --output-lens 64 --repeat 2 --warmup 1 \
    --enforce-eager
step graph-llama-3-8b build/bin/bench_engine latency --synthetic llama-3-8b --device cuda \
    --dtype bf16 --batch-sizes 1,8 --input-lens 128 --output-lens 64 --repeat 2 --warmup 1
step longctx-llama-3-8b build/bin/bench_engine latency --synthetic llama-3-8b --device cuda \
    --dtype bf16 --batch-sizes 1,64 --input-lens 4096 --output-lens 32 --repeat 1 --warmup 1
step int8-latency build/bin/bench_engine latency --synthetic llama-3-8b --device cuda \
    --quantization int8 --batch-sizes 1,64 --input-lens 128 --output-lens 64 --repeat 2 --warmup 1
log done
