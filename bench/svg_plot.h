// svg_plot.h - a small line-chart writer for bench_engine's reports: one SVG
// file, linear axes, one polyline with markers per series, a legend.
#ifndef LLM_SVG_PLOT_H
#define LLM_SVG_PLOT_H

typedef struct {
    const char *name; // legend text (escaped on output)
    int n;            // points
    const double *x;  // [n]
    const double *y;  // [n]
} svg_series;

// Writes a line chart of n_series series to path as a standalone, well-formed
// SVG document. Axes span 0 (or the data minimum when negative) to the data
// maximum with ~5 labelled ticks. Returns 0, or -1 with err (LLM_ERR_LEN) when
// the file cannot be written.
int svg_line_plot(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const svg_series *series, int n_series, char *err);

// The same with a categorical x axis: a series' x values are the indices
// 0..n_xticks-1 of the labels in xticks, drawn evenly spaced (for points such
// as request rates 1, 2, 4, inf).
int svg_line_plot_categories(const char *path, const char *title, const char *xlabel,
                             const char *ylabel, const svg_series *series, int n_series,
                             const char *const *xticks, int n_xticks, char *err);

#endif
