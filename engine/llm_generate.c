// llm_generate - loads a model (from a Hugging Face directory or a synthetic
// shape) on the chosen device and reports what it loaded.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "model.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: llm_generate (--model DIR | --synthetic NAME) [options]\n"
               "  --model DIR         Hugging Face model directory (config.json, *.safetensors)\n"
               "  --synthetic NAME    seeded random weights at a real model's shapes:\n"
               "                      smollm2-135m llama-3.2-1b llama-3-8b qwen2.5-7b qwen3-0.6b\n"
               "  --seed N            seed of the synthetic weights (default 0)\n"
               "  --dtype T           weights as auto|f16|bf16|f32 (default auto: as stored;\n"
               "                      synthetic: bf16)\n"
               "  --device D          auto|cpu|cuda (default auto: cuda when a GPU is present)\n"
               "  --save DIR          write the model out as a Hugging Face directory\n"
               "  --list-tensors      print every weight tensor's name, shape and dtype\n"
               "  -h, --help          this text\n");
}

static int parse_dtype(const char *s, int *out) {
    if (strcmp(s, "auto") == 0)
        *out = -1;
    else if (strcmp(s, "f16") == 0 || strcmp(s, "fp16") == 0)
        *out = LLM_F16;
    else if (strcmp(s, "bf16") == 0)
        *out = LLM_BF16;
    else if (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0)
        *out = LLM_F32;
    else
        return -1;
    return 0;
}

static int print_tensor(const char *name, const llm_tensor *t, void *ctx) {
    (void)ctx;
    if (t->ndim == 2)
        printf("  %-52s %-4s [%lld, %lld]\n", name, dtype_name(t->dtype), (long long)t->shape[0],
               (long long)t->shape[1]);
    else
        printf("  %-52s %-4s [%lld]\n", name, dtype_name(t->dtype), (long long)t->shape[0]);
    return 0;
}

static void print_summary(const model_weights *m, const char *source, const device_info *dev) {
    const model_config *c = &m->cfg;
    char b1[32], b2[32];
    printf("model      %s (%s)\n", source, c->arch_name);
    printf("shape      %d layers, dim %d, %d heads / %d kv heads x %d, mlp %d, vocab %d\n",
           c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim,
           c->vocab_size);
    printf("rope       theta %g%s, max positions %d, rms eps %g%s%s%s\n", c->rope_theta,
           c->rope_scaling == ROPE_SCALING_LLAMA3 ? " (llama3 scaling)" : "", c->max_position,
           c->rms_eps, c->tie_embeddings ? ", tied embeddings" : "",
           c->qkv_bias ? ", qkv bias" : "", c->qk_norm ? ", q/k norm" : "");
    printf("weights    %s in %s (%s)\n", llm_fmt_bytes(m->weight_bytes, b1, sizeof b1),
           dtype_name(m->embed.dtype), m->st ? "mapped from the checkpoint" : "generated");
    if (dev->kind == DEVICE_CUDA)
        printf("device     cuda: %s, sm_%d%d, %d SMs, %s total, %s free\n", dev->name,
               dev->cc_major, dev->cc_minor, dev->cores,
               llm_fmt_bytes(dev->total_bytes, b1, sizeof b1),
               llm_fmt_bytes(dev->free_bytes, b2, sizeof b2));
    else
        printf("device     cpu: %s, %d cores [%s], %s RAM, %s available\n", dev->name, dev->cores,
               dev->features, llm_fmt_bytes(dev->total_bytes, b1, sizeof b1),
               llm_fmt_bytes(dev->free_bytes, b2, sizeof b2));
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},
        {"synthetic", required_argument, 0, 's'},
        {"seed", required_argument, 0, 'S'},
        {"dtype", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'},
        {"save", required_argument, 0, 'o'},
        {"list-tensors", no_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *synthetic = NULL, *save_dir = NULL;
    uint64_t seed = 0;
    int dtype = -1, list = 0;
    device_kind want = DEVICE_AUTO;
    char err[LLM_ERR_LEN];
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            model_dir = optarg;
            break;
        case 's':
            synthetic = optarg;
            break;
        case 'S':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 't':
            if (parse_dtype(optarg, &dtype)) {
                fprintf(stderr, "llm_generate: unknown dtype '%s' (auto, f16, bf16, f32)\n",
                        optarg);
                return 2;
            }
            break;
        case 'd':
            if (device_parse(optarg, &want, err)) {
                fprintf(stderr, "llm_generate: %s\n", err);
                return 2;
            }
            break;
        case 'o':
            save_dir = optarg;
            break;
        case 'l':
            list = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!model_dir == !synthetic || optind != argc) {
        usage(stderr);
        return 2;
    }

    device_info dev;
    if (device_select(want, &dev, err)) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    model_weights *m;
    if (model_dir) {
        model_load_opts lo = {.matrix_dtype = dtype, .progress = 1};
        m = model_load(model_dir, &lo, err);
    } else {
        m = model_synthetic(synthetic, seed, dtype < 0 ? LLM_BF16 : (llm_dtype)dtype, err);
    }
    if (!m) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    print_summary(m, model_dir ? model_dir : synthetic, &dev);
    if (list) model_foreach_tensor(m, print_tensor, NULL);
    int rc = 0;
    if (save_dir) {
        if (model_save(m, save_dir, err)) {
            fprintf(stderr, "llm_generate: %s\n", err);
            rc = 1;
        } else {
            printf("saved      %s\n", save_dir);
        }
    }
    model_free(m);
    return rc;
}
