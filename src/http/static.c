/*
 * The dashboard's static files (see dr/static.h for the contract). Every path segment is opened
 * with openat(O_NOFOLLOW) below a directory descriptor taken at start-up: no symlink, no "..",
 * nothing outside the directory. Reads happen on the thread pool.
 */
#include "dr/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"

#define ETAG_SIZE 64

struct dr_static {
    int dirfd; /* -1: no directory, everything is 404 */
    char *dir; /* absolute path, for the log */
};

struct ctype {
    const char *ext;
    const char *type;
};

static const struct ctype ctypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

/* The page may talk to this origin (HTTP, WebSocket) and load nothing from elsewhere. 'self'
 * covers ws: and wss: to the page's own host and port (CSP Level 3, in every current browser);
 * "ws: wss:" would let the page open a WebSocket to any host. */
static const char html_csp[] = "default-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'";

static const char *content_type(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < DR_ARRAY_LEN(ctypes); i++) {
        size_t e = strlen(ctypes[i].ext);
        if (n > e && strcmp(name + n - e, ctypes[i].ext) == 0) {
            return ctypes[i].type;
        }
    }
    return "application/octet-stream";
}

/* 1 if name is a servable relative name (see dr/static.h). */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    int seg_start = 1;

    if (n == 0 || n > DR_STATIC_MAX_NAME) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

        if (seg_start && (c == '.' || c == '/')) {
            return 0; /* hidden file, "..", "." or an empty segment */
        }
        if (!alnum && c != '.' && c != '_' && c != '-' && c != '/') {
            return 0;
        }
        seg_start = c == '/';
    }
    return !seg_start; /* no trailing slash */
}

/* ---- finding the directory ---- */

static int open_dir(const char *path, struct dr_static *st)
{
    char real[PATH_MAX];
    int fd;

    if (!realpath(path, real)) {
        return DR_ENOTFOUND;
    }
    fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return DR_ENOTFOUND;
    }
    st->dirfd = fd;
    st->dir = dr_xstrdup(real);
    return DR_OK;
}

/* A candidate directory is used only when it holds a regular index.html. */
static int try_candidate(const char *path, struct dr_static *st)
{
    char index[PATH_MAX];
    struct stat sb;

    if (snprintf(index, sizeof(index), "%s/index.html", path) >= (int)sizeof(index)) {
        return DR_ENOTFOUND;
    }
    if (stat(index, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        return DR_ENOTFOUND;
    }
    return open_dir(path, st);
}

static int find_default(struct dr_static *st)
{
    static const char suffix[] = "src/http/static.c";
    char exe[PATH_MAX], cand[PATH_MAX];
    const char *src = __FILE__;
    ssize_t n;
    size_t srclen = strlen(src);

    if (try_candidate("web", st) == DR_OK) {
        return DR_OK;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(cand, sizeof(cand), "%s/../web", exe);
            if (try_candidate(cand, st) == DR_OK) {
                return DR_OK;
            }
            snprintf(cand, sizeof(cand), "%s/web", exe);
            if (try_candidate(cand, st) == DR_OK) {
                return DR_OK;
            }
        }
    }
    /* The build passes absolute source paths: the tree this binary was built from. */
    if (src[0] == '/' && srclen > sizeof(suffix) - 1 &&
        strcmp(src + srclen - (sizeof(suffix) - 1), suffix) == 0) {
        snprintf(cand, sizeof(cand), "%.*sweb", (int)(srclen - (sizeof(suffix) - 1)), src);
        if (try_candidate(cand, st) == DR_OK) {
            return DR_OK;
        }
    }
    return DR_ENOTFOUND;
}

int dr_static_create(const struct dr_config *cfg, struct dr_static **out, char *err, size_t errsz)
{
    struct dr_static *st = dr_xcalloc(1, sizeof(*st));
    const char *named = cfg && cfg->root ? dr_json_str(cfg->root, "web_dir") : NULL;
    const char *key = "web_dir";

    *out = NULL;
    st->dirfd = -1;
    if (!named || !*named) {
        named = getenv("DR_WEB_DIR");
        key = "DR_WEB_DIR";
    }
    if (named && *named) {
        if (open_dir(named, st) != DR_OK) {
            snprintf(err, errsz, "%s: cannot open the directory '%s': %s", key, named,
                     strerror(errno));
            free(st);
            return DR_EINVAL;
        }
    } else if (find_default(st) != DR_OK) {
        DR_WARN("static", "no web directory found: the dashboard is not served",
                "hint=\"set DR_WEB_DIR or web_dir\"");
    }
    if (st->dir) {
        DR_INFO("static", "serving the dashboard", "dir=\"%s\"", st->dir);
    }
    *out = st;
    return DR_OK;
}

const char *dr_static_dir(const struct dr_static *st)
{
    return st ? st->dir : NULL;
}

void dr_static_destroy(struct dr_static *st)
{
    if (!st) {
        return;
    }
    if (st->dirfd >= 0) {
        close(st->dirfd);
    }
    free(st->dir);
    free(st);
}

/* ---- serving ---- */

struct file_job {
    const struct dr_static *st;
    char name[DR_STATIC_MAX_NAME + 1];
    char if_none_match[ETAG_SIZE * 2];
    char etag[ETAG_SIZE];
    int status; /* 200, 304, 404, 500 */
    char *body;
    size_t len;
};

/* Opens name below dirfd, one segment at a time, following no symlink. -1 with errno set. */
static int open_beneath(int dirfd, const char *name)
{
    char seg[DR_STATIC_MAX_NAME + 1];
    const char *p = name;
    int fd = dirfd;

    for (;;) {
        const char *slash = strchr(p, '/');
        int next;

        if (!slash) {
            next = openat(fd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        } else {
            memcpy(seg, p, (size_t)(slash - p));
            seg[slash - p] = '\0';
            next = openat(fd, seg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY);
        }
        if (fd != dirfd) {
            int saved = errno;
            close(fd);
            errno = saved;
        }
        if (next < 0 || !slash) {
            return next;
        }
        fd = next;
        p = slash + 1;
    }
}

static void file_work(void *arg)
{
    struct file_job *j = arg;
    struct stat sb;
    size_t got = 0;
    int fd;

    j->status = 404;
    fd = open_beneath(j->st->dirfd, j->name);
    if (fd < 0) {
        return;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        goto out;
    }
    if (sb.st_size > DR_STATIC_MAX_FILE) {
        j->status = 500;
        goto out;
    }
    snprintf(j->etag, sizeof(j->etag), "\"%llx-%llx\"", (unsigned long long)sb.st_size,
             (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)sb.st_mtim.tv_nsec);
    if (j->if_none_match[0] && strstr(j->if_none_match, j->etag)) {
        j->status = 304;
        goto out;
    }
    j->body = dr_xmalloc((size_t)sb.st_size + 1);
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, j->body + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break; /* shorter than fstat said: serve what is there */
        }
        got += (size_t)n;
    }
    j->len = got;
    j->status = 200;
out:
    close(fd);
}

static void file_done(struct dr_http_req *req, void *arg)
{
    struct file_job *j = arg;
    const char *type = content_type(j->name);

    if (j->status == 404) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such file");
    } else if (j->status == 500) {
        DR_WARN("static", "file too large to serve", "max_bytes=%d", DR_STATIC_MAX_FILE);
        dr_http_respond_error(req, 500, "INTERNAL", "file too large");
    } else {
        dr_http_add_header(req, "ETag", j->etag);
        dr_http_add_header(req, "Cache-Control", "no-cache");
        dr_http_add_header(req, "X-Content-Type-Options", "nosniff");
        if (strncmp(type, "text/html", 9) == 0) {
            dr_http_add_header(req, "Content-Security-Policy", html_csp);
            dr_http_add_header(req, "X-Frame-Options", "DENY");
            dr_http_add_header(req, "Referrer-Policy", "no-referrer");
        }
        if (j->status == 304) {
            dr_http_respond(req, 304, NULL, "", 0);
        } else {
            dr_http_respond(req, 200, type, j->body, j->len);
        }
    }
    free(j->body);
    free(j);
}

static void on_file(struct dr_http_req *req, void *ctx)
{
    const struct dr_static *st = ctx;
    const char *path = dr_http_path(req);
    const char *inm = dr_http_header(req, "If-None-Match");
    const char *name;
    struct file_job *j;

    if (strcmp(path, "/") == 0 || strcmp(path, "/web/") == 0) {
        name = "index.html";
    } else {
        name = path + strlen("/web/"); /* the route only matches "/web/..." */
    }
    if (st->dirfd < 0 || !name_ok(name)) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such file");
        return;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->st = st;
    snprintf(j->name, sizeof(j->name), "%s", name);
    if (inm && strlen(inm) < sizeof(j->if_none_match)) {
        snprintf(j->if_none_match, sizeof(j->if_none_match), "%s", inm);
    }
    if (dr_http_defer(req, file_work, file_done, j) != DR_OK) {
        free(j);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "busy, try again");
    }
}

void dr_static_register(struct dr_static *st, struct dr_http_server *srv)
{
    dr_http_route(srv, "GET", "/", on_file, st);
    dr_http_route(srv, "GET", "/web/*", on_file, st);
}
