#!/usr/bin/env bash
# sweep.sh - the standard bench_engine sweep of a model: batch sizes 1..16,
# two prompt lengths, two memory utilizations; results in results/<timestamp>/
# (report.md, report.html, summary.csv, raw.jsonl, SVG plots).
#
#   scripts/sweep.sh                              # default model, CPU, 2 GiB "device"
#   scripts/sweep.sh --synthetic llama-3-8b --device cuda --gpu-hourly-cost 2.5
#
# Any argument is passed on to bench_engine (later flags override these).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin/bench_engine
[ -x "$BIN" ] || make -j"$(nproc)" "$BIN"
MODEL_ARGS=(--model models/SmolLM2-135M-Instruct)
for a in "$@"; do
    case "$a" in --model | --synthetic) MODEL_ARGS=() ;; esac
done
DEVICE_MEM=(--device-memory 2GiB)
for a in "$@"; do
    case "$a" in --device | --device=*) DEVICE_MEM=() ;; esac
done
exec "$BIN" sweep "${MODEL_ARGS[@]}" "${DEVICE_MEM[@]}" \
    --batch-sizes 1,2,4,8,16 --input-lens 128,512 --output-lens 32 \
    --gpu-memory-utilization 0.5,0.9 --warmup 1 --repeat 3 --format md "$@"
