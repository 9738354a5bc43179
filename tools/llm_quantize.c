// llm_quantize - writes a Hugging Face model directory with its Linear weights
// in int8 (weight-only, symmetric, per output channel) in the
// compressed-tensors layout (engine/quant_dir.h), streamed tensor by tensor.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "quant_dir.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llm_quantize --model DIR --out DIR2 [--scheme w8a16] [--quantize-embeddings]\n"
            "  --model DIR              Hugging Face model directory (fp16/bf16/fp32 safetensors)\n"
            "  --out DIR2               output directory (created)\n"
            "  --scheme w8a16           int8 weights, 16-bit activations (the only scheme)\n"
            "  --quantize-embeddings    quantize embed_tokens and lm_head too (default: kept)\n");
}

// This program's peak resident memory: VmHWM, which starts afresh at exec
// (getrusage's ru_maxrss keeps the parent's peak across fork + exec, so a
// run from a large process reports that process's size).
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    if (kib >= 0) return kib / 1024.0;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
}

int main(int argc, char **argv) {
    enum { O_MODEL = 256, O_OUT, O_SCHEME, O_EMBED };
    static const struct option longopts[] = {
        {"model", required_argument, 0, O_MODEL},
        {"out", required_argument, 0, O_OUT},
        {"scheme", required_argument, 0, O_SCHEME},
        {"quantize-embeddings", no_argument, 0, O_EMBED},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *in = NULL, *out = NULL;
    int embeddings = 0, opt;
    opterr = 0; // a bad flag is reported in one line, with the closest one
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case O_MODEL:
            in = optarg;
            break;
        case O_OUT:
            out = optarg;
            break;
        case O_SCHEME:
            if (strcmp(optarg, "w8a16") != 0) {
                fprintf(stderr, "llm_quantize: unknown scheme '%s' (supported: w8a16)\n", optarg);
                return 2;
            }
            break;
        case O_EMBED:
            embeddings = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            llm_bad_flag("llm_quantize", argv[optind - 1], opt == ':', longopts, sizeof *longopts);
            return 2;
        }
    }
    if (!in || !out || optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[LLM_ERR_LEN];
    double t0 = llm_now();
    quant_dir_report rep;
    if (quant_dir_int8(in, out, embeddings, &rep, err)) {
        fprintf(stderr, "llm_quantize: %s\n", err);
        return 1;
    }
    char a[32], b[32];
    printf("quantized %d matrices to int8 (per output channel, %s scales): %s -> %s; "
           "embeddings %s; peak RSS %.1f MiB\n",
           rep.n_quantized, dtype_name(rep.scale_dtype), llm_fmt_bytes(rep.bytes_in, a, sizeof a),
           llm_fmt_bytes(rep.bytes_out, b, sizeof b), embeddings ? "quantized" : "kept as stored",
           peak_rss_mib());
    printf("wrote %s in %.1f s\n", out, llm_now() - t0);
    return 0;
}
