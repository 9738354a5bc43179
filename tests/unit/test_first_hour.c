// Issue 15's small helpers: the closest flag to a typo.
#include <getopt.h>

#include "harness.h"
#include "util.h"

TEST(closest_name_suggests_the_flag_meant) {
    static const struct option opts[] = {
        {"port", required_argument, 0, 1},
        {"gpu-memory-utilization", required_argument, 0, 1},
        {"max-num-seqs", required_argument, 0, 1},
        {"max-num-batched-tokens", required_argument, 0, 1},
        {0, 0, 0, 0},
    };
    const size_t n = sizeof opts / sizeof *opts, w = sizeof *opts;
    CHECK_STREQ(llm_closest_name("--gpu-mem-util", opts, n, w), "gpu-memory-utilization");
    CHECK_STREQ(llm_closest_name("--gpu-mem-util=0.5", opts, n, w), "gpu-memory-utilization");
    CHECK_STREQ(llm_closest_name("--prot", opts, n, w), "port");
    CHECK_STREQ(llm_closest_name("--max-num-batch-tokens", opts, n, w), "max-num-batched-tokens");
    CHECK_STREQ(llm_closest_name("--max-num-sequences", opts, n, w), "max-num-seqs");
    CHECK(llm_closest_name("--temperature", opts, n, w) == NULL);
    CHECK(llm_closest_name("--", opts, n, w) == NULL);
    CHECK(llm_closest_name("", opts, 0, w) == NULL);
}

TEST(rss_bytes_is_the_process_resident_memory) {
    uint64_t rss = llm_rss_bytes();
    CHECK(rss > (1u << 20) && rss < (64ull << 30));
}
