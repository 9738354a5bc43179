// serve_sweep.h - bench_engine serve-sweep: server settings under a serving
// load. For each combination of llm_server flags in a JSON grid it starts the
// server, waits for /health, runs llm_client's closed-loop bench at each
// concurrency, stops the server, and writes one result set (raw.jsonl,
// summary.csv, report.md, report.html, pareto.svg) with the Pareto front of
// output tokens/s per user against per device. --base-url measures a server
// it did not start (one point set), so the same report compares engines.
#ifndef LLM_SERVE_SWEEP_H
#define LLM_SERVE_SWEEP_H

// argv[0] is bench_engine, argv[1] "serve-sweep". Returns the exit status.
int bench_serve_sweep(int argc, char **argv);

#endif
