#include "engine_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int engine_args_parse_bytes(const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1e3},
                 {"KB", 1e3},
                 {"KiB", 1024.0},
                 {"M", 1e6},
                 {"MB", 1e6},
                 {"MiB", 1048576.0},
                 {"G", 1e9},
                 {"GB", 1e9},
                 {"GiB", 1073741824.0},
                 {"T", 1e12},
                 {"TB", 1e12},
                 {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            *out = (unsigned long long)(v * units[i].mult);
            return 0;
        }
    return -1;
}

static int parse_int(const char *name, const char *v, int lo, int *out, char *err) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || errno || x < lo || x > (1L << 30))
        return llm_errf(err, "--%s needs an integer >= %d (got '%s')", name, lo, v ? v : "");
    *out = (int)x;
    return 0;
}

int engine_args_apply(engine_config *c, const char *name, const char *v, int *used, char *err) {
    *used = 1;
    if (strcmp(name, "device") == 0) return v && device_parse(v, &c->device, err) == 0 ? 1 : -1;
    if (strcmp(name, "dtype") == 0) {
        if (v && strcmp(v, "auto") == 0)
            c->dtype = -1;
        else if (v &&
                 (strcmp(v, "f16") == 0 || strcmp(v, "fp16") == 0 || strcmp(v, "float16") == 0))
            c->dtype = LLM_F16;
        else if (v && (strcmp(v, "bf16") == 0 || strcmp(v, "bfloat16") == 0))
            c->dtype = LLM_BF16;
        else if (v &&
                 (strcmp(v, "f32") == 0 || strcmp(v, "fp32") == 0 || strcmp(v, "float32") == 0))
            c->dtype = LLM_F32;
        else
            return llm_errf(err, "--dtype must be auto, f16, bf16 or f32 (got '%s')", v ? v : "");
        return 1;
    }
    if (strcmp(name, "cpu-matmul") == 0) {
        if (v && (strcmp(v, "f32") == 0 || strcmp(v, "bf16") == 0)) {
            c->cpu_matmul_bf16 = strcmp(v, "bf16") == 0;
            return 1;
        }
        llm_errf(err, "--cpu-matmul must be f32 or bf16 (got '%s')", v ? v : "");
        return -1;
    }
    if (strcmp(name, "kv-cache-dtype") == 0) {
        if (v && strcmp(v, "auto") == 0)
            c->kv_cache_dtype = -1;
        else if (v &&
                 (strcmp(v, "fp16") == 0 || strcmp(v, "f16") == 0 || strcmp(v, "float16") == 0))
            c->kv_cache_dtype = LLM_F16;
        else if (v && (strcmp(v, "bf16") == 0 || strcmp(v, "bfloat16") == 0))
            c->kv_cache_dtype = LLM_BF16;
        else if (v && (strcmp(v, "fp8") == 0 || strcmp(v, "fp8_e4m3") == 0))
            c->kv_cache_dtype = LLM_F8E4M3;
        else
            return llm_errf(err,
                            "--kv-cache-dtype must be auto, fp16, bf16 or fp8 (fp8_e4m3) (got "
                            "'%s')",
                            v ? v : "");
        return 1;
    }
    if (strcmp(name, "quantization") == 0) {
        if (v && strcmp(v, "none") == 0)
            c->quantization = QUANT_NONE;
        else if (v && strcmp(v, "int8") == 0)
            c->quantization = QUANT_INT8;
        else
            return llm_errf(err, "--quantization must be none or int8 (got '%s')", v ? v : "");
        return 1;
    }
    if (strcmp(name, "gpu-memory-utilization") == 0) {
        char *end;
        double x = v ? strtod(v, &end) : 0;
        if (!v || *end || !(x > 0 && x <= 1))
            return llm_errf(err, "--gpu-memory-utilization must be in (0, 1] (got '%s')",
                            v ? v : "");
        c->gpu_memory_utilization = x;
        return 1;
    }
    if (strcmp(name, "kv-cache-memory") == 0 || strcmp(name, "device-memory") == 0) {
        unsigned long long x;
        if (!v || engine_args_parse_bytes(v, &x) || x == 0)
            return llm_errf(err, "--%s needs a byte count such as 2GiB (got '%s')", name,
                            v ? v : "");
        if (name[0] == 'k')
            c->kv_cache_memory = x;
        else
            c->device_memory = x;
        return 1;
    }
    if (strcmp(name, "max-num-seqs") == 0)
        return parse_int(name, v, 1, &c->max_num_seqs, err) ? -1 : 1;
    if (strcmp(name, "max-num-batched-tokens") == 0) {
        c->max_num_batched_tokens_set = 1;
        return parse_int(name, v, 1, &c->max_num_batched_tokens, err) ? -1 : 1;
    }
    if (strcmp(name, "max-model-len") == 0)
        return parse_int(name, v, 1, &c->max_model_len, err) ? -1 : 1;
    if (strcmp(name, "block-size") == 0) return parse_int(name, v, 1, &c->block_size, err) ? -1 : 1;
    if (strcmp(name, "seed-weights") == 0) {
        int s;
        if (parse_int(name, v, 0, &s, err)) return -1;
        c->seed = (uint64_t)s;
        return 1;
    }
    *used = 0;
    if (strcmp(name, "no-prefix-caching") == 0) {
        c->prefix_caching = 0;
        return 1;
    }
    if (strcmp(name, "batch-invariant") == 0) {
        c->batch_invariant = 1;
        return 1;
    }
    if (strcmp(name, "enforce-eager") == 0) {
        c->enforce_eager = 1;
        return 1;
    }
    if (strcmp(name, "allow-long-max-model-len") == 0) {
        c->allow_long_max_model_len = 1;
        return 1;
    }
    return 0;
}

void engine_args_usage(FILE *f) {
    fprintf(
        f,
        "engine:\n"
        "  --device D                   auto|cpu|cuda (default auto: cuda when a GPU is usable)\n"
        "  --dtype T                    weights as auto|f16|bf16|f32 (default auto: as stored)\n"
        "  --quantization Q             none|int8: int8 quantizes the Linear weights at load\n"
        "                               (per output channel; int8 checkpoints load as int8)\n"
        "  --gpu-memory-utilization F   fraction of device memory for the engine (0.9)\n"
        "  --kv-cache-memory BYTES      KV cache size, overriding the fraction (e.g. 2GiB)\n"
        "  --device-memory BYTES        CPU backend: the device total (default: available RAM)\n"
        "  --max-num-seqs N             sequences per step (256)\n"
        "  --max-num-batched-tokens N   tokens per step (2048; CPU backend: 256)\n"
        "  --max-model-len N            tokens per sequence (default: the model's maximum;\n"
        "                               more is an error unless --allow-long-max-model-len)\n"
        "  --allow-long-max-model-len   accept a --max-model-len beyond the model's maximum\n"
        "                               (warns; outputs past it may be garbage)\n"
        "  --block-size N               tokens per KV page (16)\n"
        "  --kv-cache-dtype T           K/V cache as auto|fp16|bf16|fp8 (default auto: the\n"
        "                               model's dtype; bf16 for bf16 models, else fp16). fp8\n"
        "                               (fp8_e4m3): e4m3 as vLLM, half the bytes, per-tensor\n"
        "                               scales from the checkpoint's k_scale/v_scale, else 1.0\n"
        "  --no-prefix-caching          do not reuse cached prompt pages\n"
        "  --batch-invariant            a request's greedy tokens do not depend on what shares\n"
        "                               its steps (CUDA: GEMV matmuls and one attention\n"
        "                               kernel at every batch size, slower prefill)\n"
        "  --enforce-eager              CUDA: run decode steps kernel by kernel instead of\n"
        "                               replaying a CUDA graph per padded batch size\n"
        "  --cpu-matmul f32|bf16        CPU: bf16 matrices multiply activations rounded to\n"
        "                               bf16 with AVX512_BF16's dot product (about 2x the\n"
        "                               matmul rate; logits move by bf16 rounding) instead\n"
        "                               of f32 (default: f32, exact products)\n");
}
