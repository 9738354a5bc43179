// memory_plan.c - the memory plan (engine.h): the one place that turns a
// device, a model and the engine's limits into weights, activations, overhead
// and KV pages.
#include <inttypes.h>
#include <stdio.h>

#include "device.h"
#include "engine.h"
#include "forward.h"
#include "util.h"

// Below sm_80 there is no bf16 arithmetic.
#define MIN_BF16_CC 80

llm_dtype engine_weights_dtype(llm_dtype stored, int requested, int cc, const char **why) {
    *why = NULL;
    int no_bf16 = cc > 0 && cc < MIN_BF16_CC;
    if (requested >= 0) {
        if (no_bf16 && requested == LLM_BF16)
            *why = "bf16 asked for on a device without bf16 arithmetic (compute capability below "
                   "8.0): it runs on slower non-tensor-core kernels";
        return (llm_dtype)requested;
    }
    if (no_bf16 && stored == LLM_BF16) {
        *why = "no bf16 arithmetic below compute capability 8.0: bf16 weights run as fp16";
        return LLM_F16;
    }
    return stored;
}

const char *engine_kv_dtype_name(llm_dtype kv_dtype) {
    return kv_dtype == LLM_BF16 ? "bf16" : kv_dtype == LLM_F8E4M3 ? "fp8" : "fp16";
}

int engine_max_model_len(const engine_config *cfg, const model_config *mc) {
    return cfg->max_model_len == 0 ? mc->max_position : cfg->max_model_len;
}

int engine_resolve_limits(engine_config *cfg, const model_config *mc, device_kind kind, char *err) {
    if (cfg->max_model_len > mc->max_position && !cfg->allow_long_max_model_len)
        // as vLLM: positions past the model's maximum give garbage, silently
        return llm_errf(err,
                        "--max-model-len %d is larger than this model's maximum context length "
                        "%d (max_position_embeddings in config.json); use %d or less, or "
                        "--allow-long-max-model-len to override (outputs past %d may be garbage)",
                        cfg->max_model_len, mc->max_position, mc->max_position, mc->max_position);
    if (cfg->max_model_len > mc->max_position && cfg->verbose)
        fprintf(stderr,
                "engine: warning: --max-model-len %d exceeds the model's maximum context length "
                "%d (--allow-long-max-model-len); outputs past %d tokens may be garbage\n",
                cfg->max_model_len, mc->max_position, mc->max_position);
    cfg->max_model_len = engine_max_model_len(cfg, mc);
    cfg->device = kind; // the plan counts the workspace of this device's backend
    // On the CPU a step of 2048 prompt tokens lasts seconds, and every running
    // stream waits for it: the default budget is smaller there (a user's value stays)
    if (kind == DEVICE_CPU && !cfg->max_num_batched_tokens_set &&
        cfg->max_num_batched_tokens == engine_config_default().max_num_batched_tokens) {
        cfg->max_num_batched_tokens = ENGINE_CPU_MAX_NUM_BATCHED_TOKENS;
        if (cfg->verbose)
            fprintf(stderr,
                    "engine: %d tokens per step (the CPU backend's default; "
                    "--max-num-batched-tokens sets it)\n",
                    cfg->max_num_batched_tokens);
    }
    return 0;
}

int engine_plan_memory(const engine_config *cfg, const model_config *mc, uint64_t weights,
                       llm_dtype weights_dtype, uint64_t device_total, uint64_t overhead,
                       engine_memory_plan *p, char *err) {
    *p = (engine_memory_plan){
        .device_total = device_total,
        .weights = weights,
        .weights_dtype = weights_dtype,
        .kv_dtype = forward_resolve_kv_dtype(cfg->kv_cache_dtype, weights_dtype, mc->dtype),
        .overhead = overhead,
        .block_size = cfg->block_size,
        .max_num_batched_tokens = cfg->max_num_batched_tokens,
        .max_model_len = engine_max_model_len(cfg, mc)};
    forward_opts fo = {.max_tokens = cfg->max_num_batched_tokens,
                       .max_seqs = cfg->max_num_seqs,
                       .max_context = p->max_model_len,
                       .block_size = cfg->block_size,
                       .device_workspace = cfg->device == DEVICE_CUDA};
    p->device = cfg->device;
    p->activations = forward_workspace_estimate(mc, &fo);
    p->page_bytes = forward_page_bytes(mc, cfg->block_size, p->kv_dtype);
    const uint64_t fixed = p->weights + p->activations + p->overhead;
    uint64_t kv;
    if (cfg->kv_cache_memory) {
        kv = cfg->kv_cache_memory;
        p->budget = fixed + kv;
    } else {
        p->budget = (uint64_t)((double)device_total * cfg->gpu_memory_utilization);
        if (p->budget <= fixed) {
            char a[32], b[32];
            return llm_errf(
                err,
                "no memory left for the KV cache: budget %s (%.2f of the device) <= weights + "
                "activations + overhead %s; raise --gpu-memory-utilization or set "
                "--kv-cache-memory",
                llm_fmt_bytes(p->budget, a, sizeof a), cfg->gpu_memory_utilization,
                llm_fmt_bytes(fixed, b, sizeof b));
        }
        kv = p->budget - fixed;
    }
    uint64_t pages = kv / p->page_bytes;
    if (pages < 1)
        return llm_errf(err, "KV cache memory %" PRIu64 " bytes holds no page of %" PRIu64 " bytes",
                        kv, p->page_bytes);
    if (pages > INT32_MAX / (uint64_t)cfg->block_size)
        pages = INT32_MAX / (uint64_t)cfg->block_size;
    p->pages = (int)pages;
    p->kv_tokens = (int64_t)pages * cfg->block_size;
    p->kv_bytes = pages * p->page_bytes;
    p->max_concurrency = (double)p->kv_tokens / (double)p->max_model_len;
    return 0;
}

int engine_plan_dry_run(const engine_config *cfg0, model_config *mc, engine_memory_plan *p,
                        char *err) {
    *p = (engine_memory_plan){0};
    if (cfg0->model_dir ? config_load(cfg0->model_dir, mc, err)
                        : model_synthetic_config(cfg0->synthetic, mc, err))
        return -1;
    // the device the engine would pick, for its limits (no device: the CPU)
    device_info dev;
    char ignored[LLM_ERR_LEN];
    device_kind kind = device_select(cfg0->device, &dev, ignored) == 0 ? dev.kind : DEVICE_CPU;
    engine_config c = *cfg0, *cfg = &c;
    c.verbose = 0;
    if (engine_resolve_limits(cfg, mc, kind, err)) return -1;
    // the dtype engine_create loads the matrices in (synthetic models: bf16)
    const char *why;
    int cc = kind == DEVICE_CPU ? 0 : dev.cc_major * 10 + dev.cc_minor;
    llm_dtype dt =
        engine_weights_dtype(cfg->model_dir ? mc->dtype : LLM_BF16, cfg->dtype, cc, &why);
    if (cfg->quantization == QUANT_INT8) mc->quant = QUANT_INT8;
    uint64_t weights = model_weight_bytes(mc, dt);
    uint64_t total = cfg->device_memory;
    if (!total) {
        device_info d;
        device_cpu_info(&d);
        total = d.free_bytes + weights;
    }
    // the embedding table's dtype, which the KV cache's "auto" follows
    llm_dtype embed_dt = mc->quant == QUANT_INT8 && mc->quant_embeddings ? LLM_I8 : dt;
    return engine_plan_memory(cfg, mc, weights, embed_dt, total, 0, p, err);
}
