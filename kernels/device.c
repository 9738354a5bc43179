#include "device.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#ifdef LLM_CUDA
#include "cuda/cuda_device.h"
#endif

int device_parse(const char *s, device_kind *out, char *err) {
    if (strcmp(s, "auto") == 0)
        *out = DEVICE_AUTO;
    else if (strcmp(s, "cpu") == 0)
        *out = DEVICE_CPU;
    else if (strcmp(s, "cuda") == 0)
        *out = DEVICE_CUDA;
    else
        return llm_errf(err, "unknown device '%s' (expected auto, cpu or cuda)", s);
    return 0;
}

const char *device_name(device_kind k) {
    return k == DEVICE_CPU ? "cpu" : k == DEVICE_CUDA ? "cuda" : "auto";
}

int device_cuda_compiled(void) {
#ifdef LLM_CUDA
    return 1;
#else
    return 0;
#endif
}

// "model name : ..." from /proc/cpuinfo, if there is one.
static void cpu_model_name(char *buf, size_t n) {
    snprintf(buf, n, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 2;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, n, "%s", colon);
            break;
        }
    }
    fclose(f);
}

// MemAvailable from /proc/meminfo (bytes), or 0.
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

void device_cpu_info(device_info *info) {
    memset(info, 0, sizeof *info);
    info->kind = DEVICE_CPU;
    cpu_model_name(info->name, sizeof info->name);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    info->total_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    info->free_bytes = mem_available();
    info->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    char *p = info->features;
    if (__builtin_cpu_supports("avx2")) p += sprintf(p, "avx2 ");
    if (__builtin_cpu_supports("fma")) p += sprintf(p, "fma ");
    if (__builtin_cpu_supports("avx512f")) p += sprintf(p, "avx512f ");
    if (p > info->features) p[-1] = '\0';
#endif
}

int device_select(device_kind want, device_info *info, char *err) {
    if (want == DEVICE_CPU) {
        device_cpu_info(info);
        return 0;
    }
#ifdef LLM_CUDA
    char cuda_err[LLM_ERR_LEN];
    if (cuda_device_query(info, cuda_err) == 0) return 0;
    if (want == DEVICE_CUDA) return llm_errf(err, "--device cuda: %s", cuda_err);
#else
    if (want == DEVICE_CUDA)
        return llm_errf(err, "--device cuda: this binary was built without CUDA (make CUDA=1)");
#endif
    device_cpu_info(info);
    return 0;
}
