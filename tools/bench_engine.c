// bench_engine - measures the engine: a sweep over batch sizes, input and
// output lengths and memory utilizations (memory, capacity, speed, cost),
// written as raw.jsonl, summary.csv, report.md, SVG plots and report.html;
// and the memory plan alone (`memory`, with --dry-run: no engine at all).
// The subcommands are bench/bench_cmds.c; this file is the command line.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cmds.h"
#include "bench_plan.h"
#include "engine_args.h"
#include "serve_sweep.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_engine sweep  (--model DIR | --synthetic NAME) [options]\n"
            "       bench_engine latency (--model DIR | --synthetic NAME) [--batch-sizes B "
            "--input-lens I --output-lens O --repeat R --warmup W]\n"
            "       bench_engine throughput (--model DIR | --synthetic NAME) [--num-requests N "
            "--input-lens I --output-lens O]\n"
            "       bench_engine memory (--model DIR | --synthetic NAME) [--dry-run] [options]\n"
            "       bench_engine merge DIR... [--out DIR] [--format md|csv|json]\n"
            "       bench_engine capacity (--model DIR | --synthetic NAME) [--seq-lens L "
            "--gpu-memory-utilization U --output-lens O --out DIR]\n"
            "       bench_engine serve-sweep (--grid FILE.json | --base-url URL) [options] "
            "(serve-sweep --help)\n"
            "       bench_engine report DIR   (rebuild DIR's figures and report.html from its "
            "raw.jsonl)\n"
            "       bench_engine plan (--model DIR | --synthetic NAME | --config FILE) (--gpu "
            "CARD | --gpu cpu | --device-memory B --bandwidth GBS --flops TFLOPS) [options]\n"
            "sweep:\n"
            "  --batch-sizes L        comma list (1,4)\n"
            "  --input-lens L         prompt tokens (32,64)\n"
            "  --output-lens L        generated tokens (8)\n"
            "  --gpu-memory-utilization L   one engine per value (0.9)\n"
            "  --kv-cache-dtype L     one engine per value too, e.g. fp16,fp8 (a grid\n"
            "                         dimension; raw.jsonl's kv_cache_dtype)\n"
            "  --repeat R  --warmup W measured and discarded runs per point (1, 0)\n"
            "  --out DIR              run directory (results/<timestamp>)\n"
            "  --format md|csv|json   also print the summary to stdout\n"
            "  --gpu-hourly-cost X    $/hour of the device: tokens per dollar\n"
            "  --shard K/N            only the grid points whose index is K modulo N (0 <= K <\n"
            "                         N): one of N cluster jobs; `merge` joins their directories\n"
            "merge: joins sweep shards' directories (points.jsonl, raw.jsonl) into one run\n"
            "  directory (--out) with the summary and reports of the whole grid\n"
            "capacity: for each utilization (0.9) and --seq-lens L (512,2048), raise the\n"
            "  sequences of L tokens (L - O prompt + O generated, O = --output-lens, L/2) run at\n"
            "  once until one is preempted or refused; the measured frontier beside the\n"
            "  memory plan's, with the decode step time at it (capacity.csv, .md, .svg)\n"
            "memory:\n"
            "  --utilizations L       (0.5,0.7,0.8,0.9,0.95)\n"
            "  --seq-lens L           (512,2048,8192)\n"
            "  --dry-run              plan from the configuration alone; lists of --dtype\n"
            "                         and --kv-cache-dtype (bf16,fp16 / fp16,fp8) print every\n"
            "                         combination side by side\n"
            "plan (nothing runs; figures are predictions):\n"
            "  --gpu CARD             t4, l4, a10g, a100-40g, a100-80g, h100, h200; cpu: this\n"
            "                         machine, measured\n"
            "  --device-memory B --bandwidth GBS --flops TFLOPS [--compute-capability X.Y]\n"
            "                         a card of your own\n"
            "  --efficiency E         fraction of the roofline reached (default %.2f, measured)\n"
            "  --batch-sizes L        (1,2,4,8,16,32,64,128,256); --input-lens, --output-lens:\n"
            "                         the request shape (first value; 512, 128)\n"
            "  --format table|json|csv\n"
            "  --calibrate            (--gpu cpu) also measure decode and print it beside the\n"
            "                         prediction\n",
            PLAN_DEFAULT_EFFICIENCY);
    engine_args_usage(f);
}

// The option that takes a string value, or NULL.
static const char **string_option(bench_options *o, const char *name) {
    static const struct {
        const char *name;
        size_t offset;
    } opts[] = {
        {"gpu-memory-utilization", offsetof(bench_options, utils)},
        {"utilizations", offsetof(bench_options, utils)},
        {"batch-sizes", offsetof(bench_options, bss)},
        {"input-lens", offsetof(bench_options, ins)},
        {"output-lens", offsetof(bench_options, outs)},
        {"seq-lens", offsetof(bench_options, seq_lens)},
        {"out", offsetof(bench_options, out_dir)},
        {"format", offsetof(bench_options, format)},
        {"gpu", offsetof(bench_options, gpu)},
        {"config", offsetof(bench_options, config)},
        {"compute-capability", offsetof(bench_options, cc)},
        {"shard", offsetof(bench_options, shard)},
    };
    if (!strcmp(name, "model")) return &o->ec.model_dir;
    if (!strcmp(name, "synthetic")) return &o->ec.synthetic;
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
        if (!strcmp(name, opts[k].name)) return (const char **)((char *)o + opts[k].offset);
    return NULL;
}

// The option that takes a number, or NULL (*is_int: an int field).
static void *number_option(bench_options *o, const char *name, int *is_int) {
    *is_int = 1;
    if (!strcmp(name, "repeat")) return &o->repeat;
    if (!strcmp(name, "warmup")) return &o->warmup;
    if (!strcmp(name, "num-requests")) return &o->num_requests;
    *is_int = 0;
    if (!strcmp(name, "gpu-hourly-cost") || !strcmp(name, "hourly-cost")) return &o->hourly;
    if (!strcmp(name, "bandwidth")) return &o->bandwidth;
    if (!strcmp(name, "flops")) return &o->flops;
    if (!strcmp(name, "efficiency")) return &o->efficiency;
    return NULL;
}

// argv[2..] into o. Returns -1 to go on, else the exit status.
static int parse_args(int argc, char **argv, bench_options *o) {
    char err[LLM_ERR_LEN];
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2)) {
            fprintf(stderr, "bench_engine: unexpected argument '%s'\n", arg);
            return 2;
        }
        char name[64];
        const char *eq = strchr(arg, '='), *val;
        int inline_val = eq != NULL, is_int;
        snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2),
                 arg + 2);
        val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(name, "dry-run") || !strcmp(name, "calibrate")) {
            *(name[0] == 'd' ? &o->dry_run : &o->calibrate) = 1;
            continue;
        }
        if (!strcmp(name, "help")) {
            usage(stdout);
            return 0;
        }
        const char **sv = string_option(o, name);
        void *nv = sv ? NULL : number_option(o, name, &is_int);
        if (sv || nv) {
            char *end = NULL;
            if (!val) {
                fprintf(stderr, "bench_engine: --%s needs a value\n", name);
                return 2;
            }
            if (sv)
                *sv = val;
            else if (is_int)
                *(int *)nv = (int)strtol(val, &end, 10);
            else
                *(double *)nv = strtod(val, &end);
            if (end && (end == val || *end)) {
                fprintf(stderr, "bench_engine: --%s: not a number: '%s'\n", name, val);
                return 2;
            }
            if (!inline_val) i++;
            continue;
        }
        if (!strcmp(name, "dtype") || !strcmp(name, "kv-cache-dtype") ||
            !strcmp(name, "kv-cache-dtypes")) { // a list: a grid dimension (sweep, memory)
            int v[BENCH_MAX_LIST], n;
            const char *flag = name[0] == 'd' ? "dtype" : "kv-cache-dtype";
            if (bench_parse_engine_list(flag, val, v, &n, err)) {
                fprintf(stderr, "bench_engine: %s\n", err);
                return 2;
            }
            *(name[0] == 'd' ? &o->dtypes : &o->kv_dtypes) = val;
            *(name[0] == 'd' ? &o->ec.dtype : &o->ec.kv_cache_dtype) = v[0];
            if (!inline_val) i++;
            continue;
        }
        int used = 0;
        int r = engine_args_apply(&o->ec, name, val, &used, err);
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
    return -1;
}

// bench_engine merge DIR... [--out DIR] [--format F]
static int merge_main(int argc, char **argv, bench_options *o) {
    char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return 1;
    for (int i = 2; i < argc; i++) {
        if ((!strcmp(argv[i], "--out") || !strcmp(argv[i], "--format")) && i + 1 < argc) {
            *(argv[i][2] == 'o' ? &o->out_dir : &o->format) = argv[i + 1];
            i++;
        } else if (!strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "bench_engine: merge DIR... [--out DIR] [--format md|csv|json]\n");
            free(dirs);
            return 2;
        } else {
            dirs[o->n_merge_dirs++] = argv[i];
        }
    }
    int rc = 2;
    if (!o->n_merge_dirs)
        fprintf(stderr, "bench_engine: merge needs the shards' directories\n");
    else if (o->format && strcmp(o->format, "md") && strcmp(o->format, "csv") &&
             strcmp(o->format, "json"))
        fprintf(stderr, "bench_engine: --format md, csv or json\n");
    else {
        o->merge_dirs = dirs;
        rc = bench_merge(o);
    }
    free(dirs);
    return rc;
}

int main(int argc, char **argv) {
    llm_omp_default_wait(argv); // a short OpenMP spin: see util.h
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    bench_options o = {
        .ec = engine_config_default(), .repeat = 1, .num_requests = 16, .argc = argc, .argv = argv};
    if (!strcmp(cmd, "merge")) return merge_main(argc, argv, &o);
    if (!strcmp(cmd, "serve-sweep")) return bench_serve_sweep(argc, argv);
    if (!strcmp(cmd, "report")) {
        if (argc != 3 || !strncmp(argv[2], "--", 2)) {
            fprintf(stderr, "bench_engine: report DIR (a sweep's result directory)\n");
            return 2;
        }
        return bench_report(argv[2]);
    }
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.repeat < 1 || o.warmup < 0 || o.hourly < 0 || o.efficiency < 0 || o.efficiency > 1) {
        fprintf(stderr, "bench_engine: --repeat >= 1, --warmup >= 0, --gpu-hourly-cost >= 0, "
                        "--efficiency in (0, 1]\n");
        return 2;
    }
    if ((!o.ec.model_dir + !o.ec.synthetic + !o.config) != 2) {
        fprintf(stderr, "bench_engine: give --model DIR or --synthetic NAME%s\n",
                strcmp(cmd, "plan") ? "" : " or --config FILE");
        return 2;
    }
    if (o.format && strcmp(o.format, "md") && strcmp(o.format, "csv") && strcmp(o.format, "json") &&
        strcmp(o.format, "table")) {
        fprintf(stderr, "bench_engine: --format md, csv or json (plan: table, csv or json)\n");
        return 2;
    }
    if (o.config && strcmp(cmd, "plan")) {
        fprintf(stderr, "bench_engine: --config is for plan; give --model DIR\n");
        return 2;
    }
    if (o.shard) {
        char *end;
        o.shard_k = (int)strtol(o.shard, &end, 10);
        o.shard_n = *end == '/' ? (int)strtol(end + 1, &end, 10) : 0;
        if (*end || o.shard_n < 1 || o.shard_k < 0 || o.shard_k >= o.shard_n ||
            strcmp(cmd, "sweep")) {
            fprintf(stderr, "bench_engine: --shard K/N (sweep only; 0 <= K < N)\n");
            return 2;
        }
    }
    // lists of dtypes: memory (side by side) and, for the KV dtype, sweep (a grid dimension)
    const int dt_list = o.dtypes && strchr(o.dtypes, ','),
              kv_list = o.kv_dtypes && strchr(o.kv_dtypes, ',');
    if ((dt_list && strcmp(cmd, "memory")) ||
        (kv_list && strcmp(cmd, "memory") && strcmp(cmd, "sweep"))) {
        fprintf(stderr, "bench_engine: a list of --%s is for %s; %s takes one value\n",
                dt_list ? "dtype" : "kv-cache-dtype",
                dt_list ? "memory --dry-run" : "sweep and memory --dry-run", cmd);
        return 2;
    }
    if (!strcmp(cmd, "sweep")) return bench_sweep(&o);
    if (!strcmp(cmd, "memory")) return bench_memory(&o);
    if (!strcmp(cmd, "capacity")) return bench_capacity(&o);
    if (!strcmp(cmd, "latency")) return bench_latency(&o);
    if (!strcmp(cmd, "throughput")) return bench_throughput(&o);
    if (!strcmp(cmd, "plan")) return bench_plan_cmd(&o);
    fprintf(stderr,
            "bench_engine: unknown command '%s' (sweep, merge, report, memory, capacity, latency, "
            "throughput, plan)\n",
            cmd);
    return 2;
}
