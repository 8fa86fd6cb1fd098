/*
 * Development tokens (see dr/devtoken.h): the secret file in the data directory and the
 * POST /dev/token endpoint of the local dashboard.
 */
#include "dr/devtoken.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/log.h"
#include "dr/realtime.h"
#include "dr/util.h"

#define BODY_MAX  4096 /* bytes of a /dev/token request */
#define ID_MAX    128  /* characters of sub and org (a room name's id part) */
#define EMAIL_MAX 254
#define ROOMS_MAX 32

struct dr_devtoken {
    char secret[DR_DEVTOKEN_SECRET_LEN + 1];
    char *issuer;   /* NULL: no iss claim */
    char *audience; /* NULL: no aud claim */
};

/* The environment wins over the realtime: section, as in realtime.c. */
static const char *setting(const struct dr_config *cfg, const char *key, const char *env)
{
    const cJSON *sec = cfg->root ? cJSON_GetObjectItemCaseSensitive(cfg->root, "realtime") : NULL;
    const char *s = getenv(env);

    if (s && *s) {
        return s;
    }
    s = cJSON_IsObject(sec) ? dr_json_str(sec, key) : NULL;
    return s && *s ? s : NULL;
}

int dr_devtoken_enabled(const struct dr_config *cfg)
{
    return cfg && cfg->mode && strcmp(cfg->mode, "local") == 0 &&
           !setting(cfg, "jwt_secret", "DR_JWT_SECRET") && !setting(cfg, "jwks", "DR_JWKS");
}

/* ---- the secret file ---- */

static int create_secret_file(const char *path, char *err, size_t errsz)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[DR_DEVTOKEN_SECRET_LEN / 2];
    char text[DR_DEVTOKEN_SECRET_LEN + 1], tmp[4200], id[33];
    size_t got = 0;
    int fd, rc = DR_OK;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(err, errsz, "no random bytes for the development secret: %s", strerror(errno));
            return DR_EIO;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        text[2 * i] = hex[raw[i] >> 4];
        text[2 * i + 1] = hex[raw[i] & 15];
    }
    text[DR_DEVTOKEN_SECRET_LEN] = '\n';
    dr_random_id(id);
    snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, id);
    /* Written under a temporary name, then linked: the file appears complete or not at all, and
     * link() fails with EEXIST when another process got there first (its secret wins). */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create '%s': %s", tmp, strerror(errno));
        rc = DR_EIO;
        goto out;
    }
    if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) != 0) {
        snprintf(err, errsz, "cannot write '%s': %s", tmp, strerror(errno));
        rc = DR_EIO;
    }
    close(fd);
    if (!rc && link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create '%s': %s", path, strerror(errno));
        rc = DR_EIO;
    }
    unlink(tmp);
out:
    explicit_bzero(raw, sizeof(raw));
    explicit_bzero(text, sizeof(text));
    return rc;
}

static int read_secret_file(const char *path, char *out, char *err, size_t errsz)
{
    char buf[DR_DEVTOKEN_SECRET_LEN + 8];
    struct stat sb;
    ssize_t n;
    int fd, rc = DR_OK;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? DR_ENOTFOUND : DR_EIO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
        (sb.st_mode & 077) != 0) {
        snprintf(err, errsz, "'%s' must be a regular file of this user with mode 0600", path);
        rc = DR_EINVAL;
        goto out;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n > 0 ? n : 0] = '\0';
    if (n != DR_DEVTOKEN_SECRET_LEN || strspn(buf, "0123456789abcdef") < (size_t)n) {
        snprintf(err, errsz, "'%s' does not hold %d hex characters; delete it to make a new one",
                 path, DR_DEVTOKEN_SECRET_LEN);
        rc = DR_EINVAL;
        goto out;
    }
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

int dr_devtoken_secret(const struct dr_config *cfg, char *out, size_t outsz, char *err,
                       size_t errsz)
{
    char path[4096];
    int rc;

    if (outsz <= DR_DEVTOKEN_SECRET_LEN) {
        return DR_EINVAL;
    }
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, DR_DEVTOKEN_SECRET_FILE);
    rc = read_secret_file(path, out, err, errsz);
    if (rc == DR_ENOTFOUND) {
        rc = create_secret_file(path, err, errsz);
        if (!rc) {
            rc = read_secret_file(path, out, err, errsz);
        }
    } else if (rc == DR_EIO) {
        snprintf(err, errsz, "cannot read '%s': %s", path, strerror(errno));
    }
    if (rc) {
        out[0] = '\0';
    }
    return rc;
}

/* ---- the endpoint ---- */

/* 1..ID_MAX printable ASCII characters other than space (what a room name's id allows). */
static int id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > ID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}

/* The Host header names this machine: "127.0.0.1", "localhost" or "[::1]", with any port. */
static int host_is_loopback(const char *host)
{
    static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
    size_t n;

    if (!host) {
        return 0;
    }
    n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    for (size_t i = 0; i < DR_ARRAY_LEN(names); i++) {
        if (n == strlen(names[i]) && strncasecmp(host, names[i], n) == 0 &&
            (host[n] == '\0' || host[n] == ':')) {
            return 1;
        }
    }
    return 0;
}

/* Builds the claims from the request body; NULL (and *why set) when the body is not valid. */
static cJSON *claims_from(const struct dr_devtoken *dt, const cJSON *in, const char **why)
{
    const char *sub = dr_json_str(in, "sub");
    const char *org = dr_json_str(in, "org");
    const char *email = dr_json_str(in, "email");
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(in, "rooms");
    const cJSON *admin = cJSON_GetObjectItemCaseSensitive(in, "admin");
    int64_t now = dr_now_ms() / 1000;
    const cJSON *r;
    cJSON *c;

    if (!id_ok(sub)) {
        *why = "sub: 1-128 printable characters without spaces";
        return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(in, "org") && !id_ok(org)) {
        *why = "org: 1-128 printable characters without spaces";
        return NULL;
    }
    if (email && (strlen(email) > EMAIL_MAX || !strchr(email, '@'))) {
        *why = "email: an address of at most 254 characters";
        return NULL;
    }
    if (rooms && (!cJSON_IsArray(rooms) || cJSON_GetArraySize(rooms) > ROOMS_MAX)) {
        *why = "rooms: an array of at most 32 room names";
        return NULL;
    }
    cJSON_ArrayForEach(r, rooms)
    {
        if (!cJSON_IsString(r) || !dr_room_valid(r->valuestring)) {
            *why = "rooms: every entry must be a room name (user:, org:, meeting:, shipment:)";
            return NULL;
        }
    }
    if (admin && !cJSON_IsBool(admin)) {
        *why = "admin: true or false";
        return NULL;
    }
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "sub", sub);
    if (org) {
        cJSON_AddStringToObject(c, "org", org);
    }
    if (email) {
        cJSON_AddStringToObject(c, "email", email);
    }
    if (rooms) {
        cJSON_AddItemToObject(c, "rooms", cJSON_Duplicate(rooms, 1));
    }
    if (cJSON_IsTrue(admin)) {
        cJSON_AddStringToObject(c, "role", "admin");
    }
    if (dt->issuer) {
        cJSON_AddStringToObject(c, "iss", dt->issuer);
    }
    if (dt->audience) {
        cJSON_AddStringToObject(c, "aud", dt->audience);
    }
    cJSON_AddNumberToObject(c, "iat", (double)now);
    cJSON_AddNumberToObject(c, "exp", (double)(now + DR_DEVTOKEN_TTL_S));
    cJSON_AddBoolToObject(c, "dev", 1);
    return c;
}

static void on_token(struct dr_http_req *req, void *ctx)
{
    const struct dr_devtoken *dt = ctx;
    const char *why = NULL;
    const char *body;
    size_t len = 0;
    cJSON *in = NULL, *claims = NULL, *resp = NULL;
    char *token = NULL, *text = NULL;

    dr_http_add_header(req, "Cache-Control", "no-store");
    if (!dr_http_peer_is_loopback(req) || !host_is_loopback(dr_http_header(req, "Host"))) {
        dr_http_respond_error(req, 403, "PERMISSION_DENIED",
                              "development tokens are issued to loopback clients only");
        return;
    }
    body = dr_http_body(req, &len);
    if (!body || len == 0 || len > BODY_MAX) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                              "expected a JSON object {\"sub\":...,\"org\":...}");
        return;
    }
    in = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(in)) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "body is not a JSON object");
        goto out;
    }
    claims = claims_from(dt, in, &why);
    if (!claims) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", why);
        goto out;
    }
    if (dr_jwt_sign_hs256(dt->secret, DR_DEVTOKEN_SECRET_LEN, claims, &token, NULL) != DR_OK) {
        dr_http_respond_error(req, 500, "INTERNAL", "could not sign the token");
        goto out;
    }
    resp = cJSON_CreateObject();
    cJSON_AddStringToObject(resp, "token", token);
    cJSON_AddStringToObject(resp, "token_type", "Bearer");
    cJSON_AddNumberToObject(resp, "expires_in", DR_DEVTOKEN_TTL_S);
    cJSON_AddItemToObject(resp, "claims", claims);
    claims = NULL;
    text = cJSON_PrintUnformatted(resp);
    DR_INFO("devtoken", "development token issued", "ttl_s=%d", DR_DEVTOKEN_TTL_S);
    dr_http_respond_json(req, 200, text);
out:
    if (token) {
        explicit_bzero(token, strlen(token));
    }
    free(token);
    if (text) {
        explicit_bzero(text, strlen(text));
    }
    free(text);
    cJSON_Delete(resp);
    cJSON_Delete(claims);
    cJSON_Delete(in);
}

/* ---- life cycle ---- */

int dr_devtoken_create(const struct dr_config *cfg, struct dr_devtoken **out, char *err,
                       size_t errsz)
{
    struct dr_devtoken *dt;
    int rc;

    *out = NULL;
    if (!dr_devtoken_enabled(cfg)) {
        return DR_OK;
    }
    dt = dr_xcalloc(1, sizeof(*dt));
    rc = dr_devtoken_secret(cfg, dt->secret, sizeof(dt->secret), err, errsz);
    if (rc) {
        dr_devtoken_destroy(dt);
        return rc;
    }
    dt->issuer = dr_xstrdup(setting(cfg, "jwt_issuer", "DR_JWT_ISSUER"));
    dt->audience = dr_xstrdup(setting(cfg, "jwt_audience", "DR_JWT_AUDIENCE"));
    *out = dt;
    return DR_OK;
}

void dr_devtoken_register(struct dr_devtoken *dt, struct dr_http_server *srv)
{
    if (!dt) {
        return;
    }
    dr_http_route(srv, "POST", "/dev/token", on_token, dt);
    DR_INFO("devtoken", "development sign-in enabled",
            "route=\"POST /dev/token\" clients=loopback secret_file=\"%s\"",
            DR_DEVTOKEN_SECRET_FILE);
}

void dr_devtoken_destroy(struct dr_devtoken *dt)
{
    if (!dt) {
        return;
    }
    explicit_bzero(dt->secret, sizeof(dt->secret));
    free(dt->issuer);
    free(dt->audience);
    free(dt);
}
