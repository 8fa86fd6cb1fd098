/* Index operation → /document/v1 request (method, URL, body). Pure functions, any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/vespa.h"

#define MAX_DOCID   2048 /* bytes; Vespa ids are meant to be short keys */
#define MAX_DOCTYPE 64

const char *dr_vespa_kind_name(enum dr_vespa_kind k)
{
    switch (k) {
    case DR_VESPA_PUT:
        return "put";
    case DR_VESPA_UPDATE:
        return "update";
    case DR_VESPA_REMOVE:
        return "remove";
    }
    return "unknown";
}

/* Vespa document type names are identifiers. */
static int valid_doctype(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_DOCTYPE || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return 0;
        }
    }
    return 1;
}

int dr_vespa_op_parse(const cJSON *payload, struct dr_vespa_op *op, char *err, size_t errsz)
{
    const char *operation, *doctype, *docid;
    const cJSON *fields, *f;

    memset(op, 0, sizeof(*op));
    if (!cJSON_IsObject(payload)) {
        snprintf(err, errsz, "payload is not a JSON object");
        return DR_EINVAL;
    }
    operation = dr_json_str(payload, "operation");
    doctype = dr_json_str(payload, "doctype");
    docid = dr_json_str(payload, "docid");
    fields = cJSON_GetObjectItemCaseSensitive(payload, "fields");
    if (!operation) {
        snprintf(err, errsz, "missing operation");
        return DR_EINVAL;
    }
    if (strcmp(operation, "put") == 0) {
        op->kind = DR_VESPA_PUT;
    } else if (strcmp(operation, "update") == 0) {
        op->kind = DR_VESPA_UPDATE;
    } else if (strcmp(operation, "remove") == 0) {
        op->kind = DR_VESPA_REMOVE;
    } else {
        snprintf(err, errsz, "unknown operation (expected put, update or remove)");
        return DR_EINVAL;
    }
    if (!doctype || !valid_doctype(doctype)) {
        snprintf(err, errsz, "missing or invalid doctype");
        return DR_EINVAL;
    }
    if (!docid || !*docid || strlen(docid) > MAX_DOCID) {
        snprintf(err, errsz, "missing docid, or longer than %d bytes", MAX_DOCID);
        return DR_EINVAL;
    }
    if (op->kind != DR_VESPA_REMOVE) {
        if (!cJSON_IsObject(fields)) {
            snprintf(err, errsz, "%s needs a fields object", operation);
            return DR_EINVAL;
        }
        cJSON_ArrayForEach(f, fields)
        {
            if (!f->string || !*f->string) {
                snprintf(err, errsz, "empty field name");
                return DR_EINVAL;
            }
        }
        op->fields = fields;
    }
    op->doctype = doctype;
    op->docid = docid;
    return DR_OK;
}

int dr_vespa_append_segment(struct dr_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = DR_OK;

    for (; *s && rc == DR_OK; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = dr_buf_appendc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = dr_buf_append(b, e, sizeof(e));
        }
    }
    return rc;
}

static int build_url(const struct dr_vespa_conf *conf, const struct dr_vespa_op *op,
                     struct dr_buf *b)
{
    /* Vespa's own deadline a little before ours, so it answers 504 rather than going silent. */
    int64_t server_ms = conf->timeout_ms - conf->timeout_ms / 10;
    int rc;

    rc = dr_buf_appends(b, conf->endpoint);
    rc = rc ? rc : dr_buf_appends(b, "/document/v1/");
    rc = rc ? rc : dr_vespa_append_segment(b, conf->ns);
    rc = rc ? rc : dr_buf_appendc(b, '/');
    rc = rc ? rc : dr_vespa_append_segment(b, op->doctype);
    rc = rc ? rc : dr_buf_appends(b, "/docid/");
    rc = rc ? rc : dr_vespa_append_segment(b, op->docid);
    rc = rc ? rc : dr_buf_appends(b, op->kind == DR_VESPA_UPDATE ? "?create=true&" : "?");
    rc = rc ? rc : dr_buf_printf(b, "timeout=%lldms", (long long)server_ms);
    return rc;
}

/* put: {"fields":<fields>}; update: {"fields":{"<name>":{"assign":<value>},...}} */
static int build_body(const struct dr_vespa_op *op, struct dr_buf *b)
{
    const cJSON *f;
    int rc = DR_OK;
    int first = 1;

    if (op->kind == DR_VESPA_PUT) {
        rc = dr_buf_appends(b, "{\"fields\":");
        rc = rc ? rc : dr_json_append(b, op->fields);
        return rc ? rc : dr_buf_appendc(b, '}');
    }
    rc = dr_buf_appends(b, "{\"fields\":{");
    cJSON_ArrayForEach(f, op->fields)
    {
        if (rc) {
            break;
        }
        rc = first ? DR_OK : dr_buf_appendc(b, ',');
        first = 0;
        rc = rc ? rc : dr_buf_append_json_str(b, f->string, strlen(f->string));
        rc = rc ? rc : dr_buf_appends(b, ":{\"assign\":");
        rc = rc ? rc : dr_json_append(b, f);
        rc = rc ? rc : dr_buf_appendc(b, '}');
    }
    return rc ? rc : dr_buf_appends(b, "}}");
}

int dr_vespa_request_build(const struct dr_vespa_conf *conf, const struct dr_vespa_op *op,
                           struct dr_vespa_request *req)
{
    struct dr_buf url, body;
    int rc;

    memset(req, 0, sizeof(*req));
    if (!conf->endpoint) {
        return DR_EINVAL;
    }
    /* The URL is bounded by the endpoint and the checked lengths of its parts. */
    dr_buf_init(&url,
                3 * (strlen(conf->ns) + MAX_DOCTYPE + MAX_DOCID) + strlen(conf->endpoint) + 128);
    dr_buf_init(&body, (size_t)conf->max_body);
    rc = build_url(conf, op, &url);
    if (rc == DR_OK && op->kind != DR_VESPA_REMOVE) {
        rc = build_body(op, &body);
    }
    if (rc) {
        goto out;
    }
    switch (op->kind) {
    case DR_VESPA_PUT:
        req->method = "POST";
        break;
    case DR_VESPA_UPDATE:
        req->method = "PUT";
        break;
    case DR_VESPA_REMOVE:
        req->method = "DELETE";
        break;
    }
    req->url = dr_buf_steal(&url, NULL);
    if (op->kind != DR_VESPA_REMOVE) {
        req->body = dr_buf_steal(&body, &req->body_len);
    }
out:
    dr_buf_cleanup(&url);
    dr_buf_cleanup(&body);
    return rc;
}

void dr_vespa_request_cleanup(struct dr_vespa_request *req)
{
    if (!req) {
        return;
    }
    free(req->url);
    free(req->body);
    memset(req, 0, sizeof(*req));
}
