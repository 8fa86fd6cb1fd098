/*
 * The HTTP/1.1 server as a client on the network sees it: the input is written to a fresh
 * connection (request line, headers, bodies, pipelined requests, anything), then the client
 * shuts its side down. Whatever came in, every answer starts with a status line, and the server
 * closes the connection soon after: no crash, no connection left hanging, no leak.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/http.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"
#include "fuzz.h"

static uv_loop_t loop;
static struct dr_http_server *srv;
static int port;

static void on_query(struct dr_http_req *req, void *ctx)
{
    char a[64], err[128];
    int64_t n = 0;
    cJSON *o = cJSON_CreateObject();

    (void)ctx;
    if (dr_http_query_int(req, "n", -100, 100, &n, err, sizeof(err)) == DR_EINVAL) {
        cJSON_Delete(o);
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", err);
        return;
    }
    if (dr_http_query_param(req, "a", a, sizeof(a)) == DR_OK) {
        cJSON_AddStringToObject(o, "a", a);
    }
    cJSON_AddNumberToObject(o, "n", (double)n);
    cJSON_AddStringToObject(o, "path", dr_http_path(req));
    if (dr_http_header(req, "x-test")) {
        cJSON_AddStringToObject(o, "x", dr_http_header(req, "x-test"));
    }
    dr_http_respond_cjson(req, 200, o);
}

static void on_echo(struct dr_http_req *req, void *ctx)
{
    size_t len = 0;
    const char *body = dr_http_body(req, &len);

    (void)ctx;
    dr_http_add_header(req, "X-Method", dr_http_method(req));
    dr_http_respond(req, 200, "application/octet-stream", body, len);
}

static void work(void *arg)
{
    (void)arg;
}

static void done(struct dr_http_req *req, void *arg)
{
    (void)arg;
    dr_http_respond_json(req, 202, "{}");
}

static void on_defer(struct dr_http_req *req, void *ctx)
{
    (void)ctx;
    if (dr_http_defer(req, work, done, NULL) != DR_OK) {
        dr_http_respond_json(req, 503, "{}");
    }
}

static void setup(void)
{
    struct dr_http_limits lim = {.max_header_bytes = 4096,
                                 .max_body_bytes = 8192,
                                 .request_timeout_ms = 300,
                                 .idle_timeout_ms = 300,
                                 .max_connections = 64};

    dr_log_set_level(DR_LOG_ERROR);
    FUZZ_CHECK(uv_loop_init(&loop) == 0, "loop");
    FUZZ_CHECK(dr_http_server_create(&loop, &lim, &srv) == DR_OK, "server");
    dr_http_route(srv, "GET", "/q", on_query, NULL);
    dr_http_route(srv, "POST", "/echo", on_echo, NULL);
    dr_http_route(srv, NULL, "/defer", on_defer, NULL);
    dr_http_route(srv, NULL, "/e*", on_echo, NULL);
    FUZZ_CHECK(dr_http_server_listen(srv, "127.0.0.1", 0) == DR_OK, "listen");
    port = dr_http_server_port(srv);
}

/* Every response in out[0..n) starts "HTTP/1.1 ddd ". Bodies are skipped by Content-Length,
 * except that an answer to HEAD has none though it says its length: when the input may hold a
 * HEAD request, only the first answer's status line is checked. */
static void check_responses(const char *out, size_t n, int head)
{
    size_t i = 0;

    while (i < n) {
        const char *end = memmem(out + i, n - i, "\r\n\r\n", 4), *cl;
        size_t body = 0;

        FUZZ_CHECK(n - i >= 13 && memcmp(out + i, "HTTP/1.1 ", 9) == 0 && out[i + 9] >= '1' &&
                       out[i + 9] <= '5' && out[i + 12] == ' ',
                   "not a status line: '%.40s'", out + i);
        FUZZ_CHECK(end, "response head without its end");
        if (head) {
            return; /* this answer may be to HEAD: its body is not there */
        }
        cl = memmem(out + i, (size_t)(end - out) - i, "Content-Length: ", 16);
        if (cl) {
            body = strtoul(cl + 16, NULL, 10);
        }
        i = (size_t)(end - out) + 4 + body;
        FUZZ_CHECK(i <= n, "body shorter than its Content-Length");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static char out[1 << 20];
    size_t got = 0, sent = 0;
    int fd, eof = 0;
    int64_t deadline;

    if (!srv) {
        setup();
    }
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    FUZZ_CHECK(fd >= 0, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        FUZZ_CHECK(0, "connect: %s", strerror(errno));
    }
    /* the server answers within its request timeout (300 ms) and closes at the client's EOF;
     * the deadline only tells a hang from a slow machine */
    deadline = dr_mono_ms() + 20000;
    while (!eof) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0)};

        uv_run(&loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, 1) > 0) {
            if ((p.revents & POLLOUT) && sent < size) {
                ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
                if (w > 0 && (sent += (size_t)w) == size) {
                    shutdown(fd, SHUT_WR);
                } else if (w < 0 && errno != EAGAIN) {
                    sent = size; /* the server closed first: what it said is still read */
                }
            }
            if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = recv(fd, out + got, sizeof(out) - got, 0);
                if (r > 0) {
                    got += (size_t)r;
                    FUZZ_CHECK(got < sizeof(out), "more than 1 MiB of answers");
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    eof = 1;
                }
            }
        }
        if (size == 0 && sent == 0) {
            shutdown(fd, SHUT_WR);
            sent = 1;
        }
        FUZZ_CHECK(dr_mono_ms() < deadline, "connection still open 20 s after the client's EOF");
    }
    close(fd);
    /* let the server see the close and free the connection */
    for (int i = 0; i < 20 && dr_http_server_connections(srv) > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    check_responses(out, got, memmem(data, size, "HEAD", 4) != NULL);
    if (getenv("DR_FUZZ_SHOW")) {
        fprintf(stderr, "%.*s\n----\n", (int)got, out);
    }
    return 0;
}
