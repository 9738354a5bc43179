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

// ---- figures of small multiples (bench_engine's sweep report) ----

// One series of a panel. Every point's mark is a <circle class="pt"> with
// the point's key as its data-key attribute, so a test (or a reader) can find
// every measured point in the figures.
typedef struct {
    const char *name;         // legend text (NULL: not in the legend)
    int color;                // palette index: the same series has the same colour in every panel
    int dashed;               // a dashed line (predicted beside measured)
    int markers_only;         // no line between the points
    int n;                    // points
    const double *x, *y;      // [n]
    const double *ylo, *yhi;  // [n] the spread across repeats as a whisker (NULL: none)
    const char *const *key;   // [n] each mark's data-key (NULL: none)
    const char *const *label; // [n] text beside each mark (NULL: none)
    const int *noisy;         // [n] nonzero: the mark is ringed in red (NULL: none)
} svg_xy;

// One panel: the values of the dimensions the figure holds fixed in it.
typedef struct {
    const char *title;
    const svg_xy *series;
    int n_series;
} svg_panel;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double band; // > 0: the line y = x and the band y = x (1 +- band) (predicted vs measured)
} svg_figure;

// Writes the panels side by side (three to a row) on shared axes, with one
// legend, as a standalone SVG document. Axes start at 0 (or the data minimum
// when negative): a single x value is drawn inside its axis, not at an edge.
// Returns 0, or -1 with err when the file cannot be written.
int svg_panels(const char *path, const svg_figure *fig, const svg_panel *panels, int n_panels,
               char *err);

// One heat-map panel: values [ny][nx] (NAN: no point), a data-key per cell.
typedef struct {
    const char *title;
    const double *v;
    const char *const *key; // [ny * nx] (NULL entries: no point)
    const int *noisy;       // [ny * nx] or NULL
} svg_heat;

// Writes heat maps of nx x ny cells (x labels xt, y labels yt), one per panel,
// on one colour scale (low: light, high: dark), each cell with its value.
int svg_heatmaps(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 const char *const *xt, int nx, const char *const *yt, int ny,
                 const svg_heat *panels, int n_panels, char *err);

#endif
