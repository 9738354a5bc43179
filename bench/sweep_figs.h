// sweep_figs.h - a sweep's figures and report.html, built from its raw.jsonl
// alone (so `bench_engine report DIR` rebuilds them from any result
// directory, an interrupted one included): every grid dimension visible as an
// axis, a series or a panel of small multiples, the spread across repeats on
// every point, noisy points flagged, and the command line, version, device
// and date at the top.
#ifndef LLM_SWEEP_FIGS_H
#define LLM_SWEEP_FIGS_H

// Records the run's command line, the build's version (git describe) and the
// date (UTC) in dir/run.json. Returns 0, or -1 with err.
int sweep_write_run_info(const char *dir, int argc, char *const *argv, char *err);

// Writes the figures (SVG) and report.html of dir from dir/raw.jsonl (lines
// that do not parse, such as a last line cut by a kill, are skipped and
// counted) and dir/run.json when there is one. *n_points (may be NULL): the
// grid points found. Returns 0, or -1 with err (no raw.jsonl, no point).
int sweep_figures(const char *dir, int *n_points, char *err);

// The relative spread, (max - min) / median across repeats, above which a
// point's timing is flagged noisy.
#define SWEEP_NOISY_SPREAD 0.25

#endif
