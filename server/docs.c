// docs.c - GET /docs as Swagger UI over /openapi.json, from a packaged copy
// of Swagger UI's files (the PyPI package swagger-ui-py, pinned in
// scripts/requirements.txt and installed by `make venv`), read once at
// start-up and served under /docs/. Without them /docs stays the plain page
// of openapi.c.
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

struct docs_asset {
    const char *name; // under /docs/
    const char *type;
    char *data;
    size_t len;
};

static const struct {
    const char *name, *type;
    int required;
} asset_files[] = {
    {"swagger-ui-bundle.js", "application/javascript; charset=utf-8", 1},
    {"swagger-ui.css", "text/css; charset=utf-8", 1},
    {"favicon-32x32.png", "image/png", 0},
    {"favicon-16x16.png", "image/png", 0},
};
#define N_ASSETS (sizeof asset_files / sizeof asset_files[0])

static int has_assets(const char *dir) {
    for (size_t i = 0; i < N_ASSETS; i++) {
        if (!asset_files[i].required) continue;
        char *p = llm_path_join(dir, asset_files[i].name);
        int ok = p && llm_file_exists(p);
        free(p);
        if (!ok) return 0;
    }
    return 1;
}

// The first directory matching pattern (a glob) that holds the assets, into out.
static int find_in(const char *pattern, char *out, size_t n) {
    glob_t g;
    int found = 0;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !found; i++)
            if (has_assets(g.gl_pathv[i])) {
                snprintf(out, n, "%s", g.gl_pathv[i]);
                found = 1;
            }
        globfree(&g);
    }
    return found;
}

// Standard places: the repository's .venv beside the binary (build/bin/ ->
// ../../.venv) and in the working directory, then system-wide installs.
static int discover(char *out, size_t n) {
    static const char *const site = "lib/python3*/site-packages/swagger_ui/static";
    char exe[PATH_MAX], pat[PATH_MAX + 128];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *bin = dirname(exe); // build/bin
        snprintf(pat, sizeof pat, "%s/../../.venv/%s", bin, site);
        if (find_in(pat, out, n)) return 1;
    }
    static const char *const fixed[] = {
        ".venv/lib/python3*/site-packages/swagger_ui/static",
        "/usr/local/lib/python3*/dist-packages/swagger_ui/static",
        "/usr/lib/python3/dist-packages/swagger_ui/static",
        "/usr/share/javascript/swagger-ui",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (find_in(fixed[i], out, n)) return 1;
    return 0;
}

int docs_load(server *s, char *err) {
    char dir[PATH_MAX];
    if (s->docs_dir && !strcmp(s->docs_dir, "none")) return 0; // the plain page, by choice
    if (s->docs_dir) {
        if (!has_assets(s->docs_dir))
            return llm_errf(err,
                            "--docs-dir %s: no swagger-ui-bundle.js and swagger-ui.css there "
                            "(Swagger UI's dist files)",
                            s->docs_dir);
        snprintf(dir, sizeof dir, "%s", s->docs_dir);
    } else if (!discover(dir, sizeof dir)) {
        fprintf(stderr, "llm_server: no Swagger UI files found (make venv installs them): /docs "
                        "is a plain list of the endpoints\n");
        return 0;
    }
    s->docs = calloc(N_ASSETS, sizeof *s->docs);
    if (!s->docs) return 0;
    for (size_t i = 0; i < N_ASSETS; i++) {
        char *p = llm_path_join(dir, asset_files[i].name);
        char rerr[LLM_ERR_LEN];
        size_t len = 0;
        char *data = p && llm_file_exists(p) ? llm_read_file(p, &len, rerr) : NULL;
        free(p);
        if (!data) {
            if (!asset_files[i].required) continue;
            docs_free(s);
            fprintf(stderr, "llm_server: %s: cannot read %s: /docs is a plain page\n", dir,
                    asset_files[i].name);
            return 0;
        }
        s->docs[s->n_docs++] =
            (struct docs_asset){asset_files[i].name, asset_files[i].type, data, len};
    }
    fprintf(stderr, "llm_server: /docs: Swagger UI from %s\n", dir);
    return 0;
}

void docs_free(server *s) {
    for (int i = 0; i < s->n_docs; i++) free(s->docs[i].data);
    free(s->docs);
    s->docs = NULL;
    s->n_docs = 0;
}

int docs_asset_route(http_req *q, const char *url, enum MHD_Result *ret) {
    server *s = q->s;
    if (strncmp(url, "/docs/", 6) != 0) return 0;
    for (int i = 0; i < s->n_docs; i++)
        if (!strcmp(url + 6, s->docs[i].name)) {
            *ret = http_send_text(q, 200, s->docs[i].type, s->docs[i].data, s->docs[i].len);
            return 1;
        }
    return 0;
}

static const char swagger_page[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>llm server " SERVER_VERSION " - API docs</title>"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">"
    "<link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\">"
    "</head><body><div id=\"swagger-ui\"></div>"
    "<noscript>This page needs JavaScript; the API's description is "
    "<a href=\"/openapi.json\">/openapi.json</a>.</noscript>"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>"
    "<script>window.ui = SwaggerUIBundle({url: \"/openapi.json\", dom_id: \"#swagger-ui\", "
    "deepLinking: true, presets: [SwaggerUIBundle.presets.apis], layout: \"BaseLayout\", "
    "tryItOutEnabled: true});</script></body></html>";

enum MHD_Result docs_swagger_page(http_req *q) {
    return http_send_text(q, 200, "text/html; charset=utf-8", swagger_page,
                          sizeof swagger_page - 1);
}
