// bench_engine - measures the engine: a sweep over batch sizes, input and
// output lengths and memory utilizations (memory, capacity, speed, cost),
// written as raw.jsonl, summary.csv, report.md, SVG plots and report.html;
// and the memory plan alone (`memory`, with --dry-run: no engine at all).
// The subcommands are bench/bench_cmds.c; this file is the command line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cmds.h"
#include "engine_args.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: bench_engine sweep  (--model DIR | --synthetic NAME) [options]\n"
               "       bench_engine latency (--model DIR | --synthetic NAME) [--batch-sizes B "
               "--input-lens I --output-lens O --repeat R --warmup W]\n"
               "       bench_engine throughput (--model DIR | --synthetic NAME) [--num-requests N "
               "--input-lens I --output-lens O]\n"
               "       bench_engine memory (--model DIR | --synthetic NAME) [--dry-run] [options]\n"
               "sweep:\n"
               "  --batch-sizes L        comma list (1,4)\n"
               "  --input-lens L         prompt tokens (32,64)\n"
               "  --output-lens L        generated tokens (8)\n"
               "  --gpu-memory-utilization L   one engine per value (0.9)\n"
               "  --repeat R  --warmup W measured and discarded runs per point (1, 0)\n"
               "  --out DIR              run directory (results/<timestamp>)\n"
               "  --format md|csv|json   also print the summary to stdout\n"
               "  --gpu-hourly-cost X    $/hour of the device: tokens per dollar\n"
               "memory:\n"
               "  --utilizations L       (0.5,0.7,0.8,0.9,0.95)\n"
               "  --seq-lens L           (512,2048,8192)\n"
               "  --dry-run              plan from the configuration alone\n");
    engine_args_usage(f);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    bench_options o = {.ec = engine_config_default(), .repeat = 1, .num_requests = 16};
    char err[LLM_ERR_LEN];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2)) {
            fprintf(stderr, "bench_engine: unexpected argument '%s'\n", arg);
            return 2;
        }
        char name[64];
        const char *eq = strchr(arg, '='), *val;
        int inline_val = eq != NULL;
        snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2),
                 arg + 2);
        val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        const char **sv = NULL;
        if (!strcmp(name, "dry-run")) {
            o.dry_run = 1;
            continue;
        }
        if (!strcmp(name, "help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(name, "gpu-memory-utilization") || !strcmp(name, "utilizations"))
            sv = &o.utils;
        else if (!strcmp(name, "model"))
            sv = &o.ec.model_dir;
        else if (!strcmp(name, "synthetic"))
            sv = &o.ec.synthetic;
        else if (!strcmp(name, "batch-sizes"))
            sv = &o.bss;
        else if (!strcmp(name, "input-lens"))
            sv = &o.ins;
        else if (!strcmp(name, "output-lens"))
            sv = &o.outs;
        else if (!strcmp(name, "seq-lens"))
            sv = &o.seq_lens;
        else if (!strcmp(name, "out"))
            sv = &o.out_dir;
        else if (!strcmp(name, "format"))
            sv = &o.format;
        int is_num = !strcmp(name, "repeat") || !strcmp(name, "warmup") ||
                     !strcmp(name, "gpu-hourly-cost") || !strcmp(name, "num-requests");
        if (sv || is_num) {
            if (!val) {
                fprintf(stderr, "bench_engine: --%s needs a value\n", name);
                return 2;
            }
            if (sv)
                *sv = val;
            else if (!strcmp(name, "repeat"))
                o.repeat = atoi(val);
            else if (!strcmp(name, "warmup"))
                o.warmup = atoi(val);
            else if (!strcmp(name, "num-requests"))
                o.num_requests = atoi(val);
            else
                o.hourly = atof(val);
            if (!inline_val) i++;
            continue;
        }
        int used = 0;
        int r = engine_args_apply(&o.ec, name, val, &used, err);
        if (r < 0) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 2;
        }
        if (r == 0) {
            fprintf(stderr, "bench_engine: unknown option --%s\n", name);
            return 2;
        }
        if (used && !inline_val) i++;
    }
    if (o.repeat < 1 || o.warmup < 0 || o.hourly < 0) {
        fprintf(stderr, "bench_engine: --repeat >= 1, --warmup >= 0, --gpu-hourly-cost >= 0\n");
        return 2;
    }
    if (!o.ec.model_dir == !o.ec.synthetic) {
        fprintf(stderr, "bench_engine: give --model DIR or --synthetic NAME\n");
        return 2;
    }
    if (o.format && strcmp(o.format, "md") && strcmp(o.format, "csv") && strcmp(o.format, "json")) {
        fprintf(stderr, "bench_engine: --format md, csv or json\n");
        return 2;
    }
    if (!strcmp(cmd, "sweep")) return bench_sweep(&o);
    if (!strcmp(cmd, "memory")) return bench_memory(&o);
    if (!strcmp(cmd, "latency")) return bench_latency(&o);
    if (!strcmp(cmd, "throughput")) return bench_throughput(&o);
    fprintf(stderr, "bench_engine: unknown command '%s' (sweep, memory, latency, throughput)\n",
            cmd);
    return 2;
}
