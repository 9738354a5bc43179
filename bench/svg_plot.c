// svg_plot.c - see svg_plot.h.
#include "svg_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void put_escaped(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

// A "nice" tick step for a span of about 5 ticks.
static double nice_step(double span) {
    if (!(span > 0)) return 1;
    double raw = span / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                     "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static int line_plot(const char *path, const char *title, const char *xlabel, const char *ylabel,
                     const svg_series *series, int n_series, const char *const *xticks,
                     int n_xticks, char *err) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = 0, y1 = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    if (xticks) x0 = -0.5, x1 = n_xticks - 0.5; // categories at 0, 1, ...
    if (!isfinite(x0)) x0 = 0, x1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    double xs = nice_step(x1 - x0), ys = nice_step(y1 - y0);
    y1 = ceil(y1 / ys) * ys;
    // the legend's column is as wide as its longest name (about 7 px a character)
    size_t longest = 0;
    for (int s = 0; s < n_series; s++)
        if (series[s].name && strlen(series[s].name) > longest) longest = strlen(series[s].name);
    double R = 46 + 7.0 * (double)longest;
    if (R < 170) R = 170;
    if (R > 520) R = 520;
    const double W = 470 + R, H = 400, L = 80, T = 40, B = 50;
    const double pw = W - L - R, ph = H - T - B;
#define PX(x) (L + ((x)-x0) / (x1 - x0) * pw)
#define PY(y) (T + ph - ((y)-y0) / (y1 - y0) * ph)
    FILE *f = fopen(path, "w");
    if (!f) return llm_errf(err, "%s: %s", path, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%g\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">", L + pw / 2);
    put_escaped(f, title);
    fputs("</text>\n", f);
    for (int k = 0; k < n_xticks; k++) {
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">",
                PX((double)k), T, PX((double)k), T + ph, PX((double)k), T + ph + 16);
        put_escaped(f, xticks[k]);
        fputs("</text>\n", f);
    }
    for (double t = ceil(x0 / xs) * xs; !xticks && t <= x1 + xs * 1e-9; t += xs)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n",
                PX(t), T, PX(t), T + ph, PX(t), T + ph + 16, t);
    for (double t = y0; t <= y1 + ys * 1e-9; t += ys)
        fprintf(f,
                "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                L, PY(t), L + pw, PY(t), L - 6, PY(t) + 4, t);
    fprintf(f,
            "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n",
            L, T, pw, ph);
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", L + pw / 2, H - 10);
    put_escaped(f, xlabel);
    fprintf(f,
            "</text>\n<text x=\"16\" y=\"%g\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %g)\">",
            T + ph / 2, T + ph / 2);
    put_escaped(f, ylabel);
    fputs("</text>\n", f);
    for (int s = 0; s < n_series; s++) {
        const char *col = colors[s % 8];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int i = 0; i < series[s].n; i++)
            if (isfinite(series[s].x[i]) && isfinite(series[s].y[i]))
                fprintf(f, "%.1f,%.1f ", PX(series[s].x[i]), PY(series[s].y[i]));
        fputs("\"/>\n", f);
        for (int i = 0; i < series[s].n; i++)
            if (isfinite(series[s].x[i]) && isfinite(series[s].y[i]))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                        PX(series[s].x[i]), PY(series[s].y[i]), col);
        double ly = T + 10 + s * 18;
        fprintf(f,
                "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"/>"
                "<text x=\"%g\" y=\"%g\">",
                L + pw + 10, ly, L + pw + 30, ly, col, L + pw + 36, ly + 4);
        put_escaped(f, series[s].name);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
    if (fclose(f)) return llm_errf(err, "%s: write failed", path);
    return 0;
}

int svg_line_plot(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const svg_series *series, int n_series, char *err) {
    return line_plot(path, title, xlabel, ylabel, series, n_series, NULL, 0, err);
}

int svg_line_plot_categories(const char *path, const char *title, const char *xlabel,
                             const char *ylabel, const svg_series *series, int n_series,
                             const char *const *xticks, int n_xticks, char *err) {
    return line_plot(path, title, xlabel, ylabel, series, n_series, xticks, n_xticks, err);
}
