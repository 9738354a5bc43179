// bench_cmds.h - bench_engine's subcommands: sweep (a grid of batch sizes,
// input and output lengths and memory utilizations, written as a result
// directory), memory (the memory plan, measured or --dry-run), latency and
// throughput. tools/bench_engine.c parses the command line into
// bench_options and calls one of them.
#ifndef LLM_BENCH_CMDS_H
#define LLM_BENCH_CMDS_H

#include "engine.h"

// Most values in one comma-separated list option.
#define BENCH_MAX_LIST 32

typedef struct {
    engine_config ec;
    // comma-separated lists (NULL: the subcommand's default)
    const char *utils, *bss, *ins, *outs, *seq_lens;
    // --dtype and --kv-cache-dtype (also --kv-cache-dtypes) as given: a comma
    // list, sweep's grid dimension (KV dtype) and memory's side-by-side
    // columns; ec holds the first value (NULL: ec's own)
    const char *dtypes, *kv_dtypes;
    const char *out_dir; // sweep: result directory (NULL: results/<timestamp>)
    const char *format;  // sweep: also print the summary as md, csv or json
    const char *shard;   // sweep: --shard K/N as given
    int repeat, warmup, dry_run, num_requests;
    double hourly; // $/hour of the device: cost figures when > 0
    // plan
    const char *gpu;                     // a card preset, or "cpu"
    const char *config;                  // a config.json (its folder is read as a model directory)
    const char *cc;                      // a custom card's compute capability, "8.9"
    double bandwidth, flops, efficiency; // a custom card's GB/s and TFLOP/s; roofline fraction
    int calibrate;                       // plan --gpu cpu: also measure decode
    // sweep --shard K/N: only the grid points whose index is K modulo N (0 <= K < N)
    int shard_k, shard_n;
    // merge: the sweep (or shard) directories to join
    char **merge_dirs;
    int n_merge_dirs;
    // the command line, as run.json records it
    int argc;
    char *const *argv;
} bench_options;

// Parses a comma-separated list of positive numbers into v (at most
// BENCH_MAX_LIST). Returns 0, or -1 when s is not such a list.
int bench_parse_list(const char *s, double *v, int *n);

// Parses a comma list of values of an engine flag ("dtype" or
// "kv-cache-dtype") into v (the engine_config field each sets, at most
// BENCH_MAX_LIST). Returns 0, or -1 with err naming the bad value.
int bench_parse_engine_list(const char *flag, const char *s, int *v, int *n, char *err);

// Each returns the process exit status: 0, 1 on a failure (printed on
// stderr), 2 on a bad option value.
int bench_sweep(const bench_options *o);
// Joins the points.jsonl and raw.jsonl of sweep shards (o->merge_dirs) that
// cover a grid exactly once into one result directory (o->out_dir), as a
// single sweep of the whole grid writes it.
int bench_merge(const bench_options *o);
int bench_memory(const bench_options *o);
// For each utilization and --seq-lens L: the most sequences of L tokens that
// run at once without preemption, measured, beside the memory plan's max
// batch at L (bench_capacity.c).
int bench_capacity(const bench_options *o);
// Rebuilds the figures and report.html of result directory dir from its
// raw.jsonl (any sweep's, an interrupted one included).
int bench_report(const char *dir);
int bench_latency(const bench_options *o);
int bench_throughput(const bench_options *o);
int bench_plan_cmd(const bench_options *o);

#endif
