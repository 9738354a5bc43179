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

// ---- small multiples ----

// A panel's frame: where it lies and the shared data ranges.
typedef struct {
    double L, T, pw, ph;   // plot area
    double x0, x1, y0, y1; // data ranges
    double xs, ys;         // tick steps
} frame;

static double fx(const frame *r, double x) {
    return r->L + (x - r->x0) / (r->x1 - r->x0) * r->pw;
}
static double fy(const frame *r, double y) {
    return r->T + r->ph - (y - r->y0) / (r->y1 - r->y0) * r->ph;
}

// The shared ranges of every panel's points (whiskers included), from 0.
static void panel_ranges(const svg_panel *panels, int n_panels, frame *r) {
    double x0 = 0, x1 = -INFINITY, y0 = 0, y1 = -INFINITY;
    for (int p = 0; p < n_panels; p++)
        for (int s = 0; s < panels[p].n_series; s++) {
            const svg_xy *q = &panels[p].series[s];
            for (int i = 0; i < q->n; i++) {
                double x = q->x[i], y = q->y[i], yh = q->yhi ? q->yhi[i] : y;
                if (!isfinite(x) || !isfinite(y)) continue;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                if (isfinite(yh) && yh > y1) y1 = yh;
            }
        }
    if (!isfinite(x1) || x1 <= x0) x1 = x0 + 1;
    if (!isfinite(y1) || y1 <= y0) y1 = y0 + 1;
    r->xs = nice_step(x1 - x0), r->ys = nice_step(y1 - y0);
    // room past the largest value, so a point is never drawn on the frame
    r->x0 = x0, r->x1 = ceil(x1 * 1.04 / r->xs) * r->xs;
    r->y0 = y0, r->y1 = ceil(y1 * 1.04 / r->ys) * r->ys;
}

static void draw_axes(FILE *f, const frame *r, const char *title) {
    for (double t = r->x0; t <= r->x1 + r->xs * 1e-9; t += r->xs)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\" font-size=\"10\">%g</text>\n",
                fx(r, t), r->T, fx(r, t), r->T + r->ph, fx(r, t), r->T + r->ph + 13, t);
    for (double t = r->y0; t <= r->y1 + r->ys * 1e-9; t += r->ys)
        fprintf(f,
                "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">%g</text>\n",
                r->L, fy(r, t), r->L + r->pw, fy(r, t), r->L - 4, fy(r, t) + 3, t);
    fprintf(f,
            "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n"
            "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"11\">",
            r->L, r->T, r->pw, r->ph, r->L + r->pw / 2, r->T - 6);
    put_escaped(f, title);
    fputs("</text>\n", f);
}

// The band y = x (1 +- band) and the line y = x, clipped to the frame.
static void draw_band(FILE *f, const frame *r, double band, int id) {
    double a = r->x0, b = r->x1;
    fprintf(f,
            "<clipPath id=\"frame%d\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/>"
            "</clipPath>\n<g clip-path=\"url(#frame%d)\">\n"
            "<polygon class=\"band\" fill=\"#2ca02c\" fill-opacity=\"0.15\" "
            "points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\"/>\n",
            id, r->L, r->T, r->pw, r->ph, id, fx(r, a), fy(r, a * (1 - band)), fx(r, b),
            fy(r, b * (1 - band)), fx(r, b), fy(r, b * (1 + band)), fx(r, a),
            fy(r, a * (1 + band)));
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" "
            "stroke-dasharray=\"4 3\"/>\n</g>\n",
            fx(r, a), fy(r, a), fx(r, b), fy(r, b));
}

// Predicted vs measured: the same range on both axes, around the data.
static void band_ranges(const svg_panel *panels, int n_panels, frame *r) {
    double lo = INFINITY;
    for (int p = 0; p < n_panels; p++)
        for (int s = 0; s < panels[p].n_series; s++)
            for (int i = 0; i < panels[p].series[s].n; i++) {
                double x = panels[p].series[s].x[i], y = panels[p].series[s].y[i];
                if (isfinite(x) && x < lo) lo = x;
                if (isfinite(y) && y < lo) lo = y;
            }
    double hi = r->x1 > r->y1 ? r->x1 : r->y1;
    if (!isfinite(lo) || lo <= 0) lo = 0;
    double step = nice_step(hi - lo * 0.9);
    r->x0 = r->y0 = floor(lo * 0.9 / step) * step;
    r->x1 = r->y1 = hi;
    r->xs = r->ys = step;
}

static void draw_series(FILE *f, const frame *r, const svg_xy *q) {
    const char *col = colors[q->color % 8];
    if (!q->markers_only) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col,
                q->dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (int i = 0; i < q->n; i++)
            if (isfinite(q->x[i]) && isfinite(q->y[i]))
                fprintf(f, "%.1f,%.1f ", fx(r, q->x[i]), fy(r, q->y[i]));
        fputs("\"/>\n", f);
    }
    for (int i = 0; i < q->n; i++) {
        double x = q->x[i], y = q->y[i];
        if (!isfinite(x) || !isfinite(y)) continue;
        if (q->ylo && q->yhi && isfinite(q->ylo[i]) && isfinite(q->yhi[i]) && q->yhi[i] > q->ylo[i])
            fprintf(f,
                    "<line class=\"spread\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                    "stroke=\"%s\"/>\n",
                    fx(r, x), fy(r, q->ylo[i]), fx(r, x), fy(r, q->yhi[i]), col);
        fprintf(f, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"%s", fx(r, x),
                fy(r, y), q->dashed ? "white" : col, q->dashed ? " stroke-width=\"1.5\"" : "");
        if (q->dashed) fprintf(f, " stroke=\"%s\"", col);
        if (q->key && q->key[i]) {
            fputs(" data-key=\"", f);
            put_escaped(f, q->key[i]);
            fputc('"', f);
        }
        fputs("/>\n", f);
        if (q->noisy && q->noisy[i])
            fprintf(f,
                    "<circle class=\"noisy\" cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" "
                    "stroke=\"#d62728\" stroke-width=\"1.5\"/>\n",
                    fx(r, x), fy(r, y));
        if (q->label && q->label[i]) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"%s\">", fx(r, x) + 5,
                    fy(r, y) - 5, col);
            put_escaped(f, q->label[i]);
            fputs("</text>\n", f);
        }
    }
}

// The legend: each named series once (by name), at the right of the panels.
static void draw_legend(FILE *f, const svg_panel *panels, int n_panels, double x, double y) {
    const char *seen[64];
    int n = 0;
    for (int p = 0; p < n_panels; p++)
        for (int s = 0; s < panels[p].n_series; s++) {
            const svg_xy *q = &panels[p].series[s];
            int k = 0;
            while (k < n && (!q->name || strcmp(seen[k], q->name))) k++;
            if (!q->name || k < n || n == 64) continue;
            seen[n++] = q->name;
            double ly = y + n * 18;
            fprintf(f,
                    "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s/><text x=\"%g\" y=\"%g\">",
                    x, ly, x + 20, ly, colors[q->color % 8],
                    q->dashed ? " stroke-dasharray=\"6 4\"" : "", x + 26, ly + 4);
            put_escaped(f, q->name);
            fputs("</text>\n", f);
        }
}

// The longest legend name, in characters.
static size_t legend_width(const svg_panel *panels, int n_panels) {
    size_t w = 0;
    for (int p = 0; p < n_panels; p++)
        for (int s = 0; s < panels[p].n_series; s++)
            if (panels[p].series[s].name && strlen(panels[p].series[s].name) > w)
                w = strlen(panels[p].series[s].name);
    return w;
}

int svg_panels(const char *path, const svg_figure *fig, const svg_panel *panels, int n_panels,
               char *err) {
    frame r;
    panel_ranges(panels, n_panels, &r);
    if (fig->band > 0) band_ranges(panels, n_panels, &r);
    const int cols = n_panels < 3 ? (n_panels < 1 ? 1 : n_panels) : 3;
    const int rows = n_panels < 1 ? 1 : (n_panels + cols - 1) / cols;
    const double PW = 340, PH = 260, ML = 62, MT = 56, GAP_X = 50, GAP_Y = 56;
    double legend = 60 + 7.0 * (double)legend_width(panels, n_panels);
    double W = ML + cols * PW + (cols - 1) * GAP_X + legend, H = MT + rows * (PH + GAP_Y) + 10;
    FILE *f = fopen(path, "w");
    if (!f) return llm_errf(err, "%s: %s", path, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%g\" y=\"20\" font-size=\"15\" text-anchor=\"middle\">",
            W, H, W, H, (W - legend) / 2);
    put_escaped(f, fig->title);
    fprintf(f, "</text>\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", (W - legend) / 2, H - 8);
    put_escaped(f, fig->xlabel);
    fprintf(f,
            "</text>\n<text x=\"14\" y=\"%g\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %g)\">",
            H / 2, H / 2);
    put_escaped(f, fig->ylabel);
    fputs("</text>\n", f);
    for (int p = 0; p < (n_panels ? n_panels : 1); p++) {
        r.L = ML + (p % cols) * (PW + GAP_X), r.T = MT + (p / cols) * (PH + GAP_Y);
        r.pw = PW, r.ph = PH;
        fputs("<g class=\"panel\">\n", f);
        draw_axes(f, &r, n_panels ? panels[p].title : "no measured point");
        if (fig->band > 0) draw_band(f, &r, fig->band, p);
        for (int s = 0; n_panels && s < panels[p].n_series; s++)
            draw_series(f, &r, &panels[p].series[s]);
        fputs("</g>\n", f);
    }
    draw_legend(f, panels, n_panels, W - legend + 16, MT);
    fputs("</svg>\n", f);
    if (fclose(f)) return llm_errf(err, "%s: write failed", path);
    return 0;
}

// ---- heat maps ----

// Light yellow (t = 0) to dark blue (t = 1).
static void heat_colour(double t, char *buf, size_t n) {
    static const double a[3] = {255, 247, 188}, b[3] = {8, 48, 107};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    snprintf(buf, n, "#%02x%02x%02x", (int)(a[0] + (b[0] - a[0]) * t),
             (int)(a[1] + (b[1] - a[1]) * t), (int)(a[2] + (b[2] - a[2]) * t));
}

static void heat_panel(FILE *f, const svg_heat *h, double L, double T, double cw, double ch,
                       const char *const *xt, int nx, const char *const *yt, int ny, double lo,
                       double hi) {
    fprintf(f,
            "<g class=\"panel\">\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"11\">",
            L + nx * cw / 2, T - 6);
    put_escaped(f, h->title);
    fputs("</text>\n", f);
    for (int y = 0; y < ny; y++)
        for (int x = 0; x < nx; x++) {
            double v = h->v[y * nx + x];
            double cx = L + x * cw, cy = T + (ny - 1 - y) * ch; // y grows upward
            char col[8];
            heat_colour(hi > lo ? (v - lo) / (hi - lo) : 0.5, col, sizeof col);
            if (!isfinite(v)) {
                fprintf(f,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%g\" height=\"%g\" fill=\"#eee\" "
                        "stroke=\"white\"/>\n",
                        cx, cy, cw, ch);
                continue;
            }
            fprintf(f,
                    "<rect class=\"pt\" x=\"%.1f\" y=\"%.1f\" width=\"%g\" height=\"%g\" "
                    "fill=\"%s\" stroke=\"%s\" stroke-width=\"%s\"",
                    cx, cy, cw, ch, col, h->noisy && h->noisy[y * nx + x] ? "#d62728" : "white",
                    h->noisy && h->noisy[y * nx + x] ? "3" : "1");
            if (h->key && h->key[y * nx + x]) {
                fputs(" data-key=\"", f);
                put_escaped(f, h->key[y * nx + x]);
                fputc('"', f);
            }
            fprintf(f,
                    "/>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" "
                    "fill=\"%s\">%.3g</text>\n",
                    cx + cw / 2, cy + ch / 2 + 4,
                    hi > lo && (v - lo) / (hi - lo) > 0.5 ? "white" : "black", v);
        }
    for (int x = 0; x < nx; x++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">",
                L + x * cw + cw / 2, T + ny * ch + 13);
        put_escaped(f, xt[x]);
        fputs("</text>\n", f);
    }
    for (int y = 0; y < ny; y++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\">", L - 4,
                T + (ny - 1 - y) * ch + ch / 2 + 4);
        put_escaped(f, yt[y]);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

int svg_heatmaps(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 const char *const *xt, int nx, const char *const *yt, int ny,
                 const svg_heat *panels, int n_panels, char *err) {
    double lo = INFINITY, hi = -INFINITY;
    for (int p = 0; p < n_panels; p++)
        for (int i = 0; i < nx * ny; i++)
            if (isfinite(panels[p].v[i])) {
                if (panels[p].v[i] < lo) lo = panels[p].v[i];
                if (panels[p].v[i] > hi) hi = panels[p].v[i];
            }
    const double cw = nx > 8 ? 40 : 56, ch = 26, ML = 70, MT = 50, GX = 40, GY = 50;
    const double pw = nx * cw, ph = ny * ch;
    const int cols = n_panels < 3 ? (n_panels < 1 ? 1 : n_panels) : 3;
    const int rows = n_panels < 1 ? 1 : (n_panels + cols - 1) / cols;
    double W = ML + cols * (pw + GX) + 20, H = MT + rows * (ph + GY) + 10;
    if (W < 360) W = 360;
    FILE *f = fopen(path, "w");
    if (!f) return llm_errf(err, "%s: %s", path, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%g\" y=\"20\" font-size=\"15\" text-anchor=\"middle\">",
            W, H, W, H, W / 2);
    put_escaped(f, title);
    fprintf(f, "</text>\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", W / 2, H - 8);
    put_escaped(f, xlabel);
    fprintf(f,
            "</text>\n<text x=\"14\" y=\"%g\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %g)\">",
            H / 2, H / 2);
    put_escaped(f, ylabel);
    fputs("</text>\n", f);
    for (int p = 0; p < n_panels; p++)
        heat_panel(f, &panels[p], ML + (p % cols) * (pw + GX), MT + (p / cols) * (ph + GY), cw, ch,
                   xt, nx, yt, ny, lo, hi);
    fputs("</svg>\n", f);
    if (fclose(f)) return llm_errf(err, "%s: write failed", path);
    return 0;
}
