/* /document/v1 answers → verdicts. Pure functions, any thread. */
#include <stdio.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "dr/vespa.h"

#define MAX_RETRY_AFTER_S 86400

enum dr_vespa_verdict dr_vespa_classify(enum dr_vespa_kind kind, int err, long status)
{
    if (err != DR_OK) {
        return DR_VESPA_TRANSIENT; /* timeout, refused, reset, oversized answer */
    }
    if (status >= 200 && status < 300) {
        return DR_VESPA_DONE;
    }
    switch (status) {
    case 404:
        /* Removing what is not there is done. A 404 on put or update means the endpoint has no
         * /document/v1 (wrong URL, proxy): the operation is fine, the downstream is not. */
        return kind == DR_VESPA_REMOVE ? DR_VESPA_DONE : DR_VESPA_TRANSIENT;
    case 401:
    case 403:
        /* Credentials are configuration: dead-lettering every operation would not fix them. */
        return DR_VESPA_TRANSIENT;
    case 408:
    case 425:
    case 429:
        return DR_VESPA_TRANSIENT;
    default:
        break;
    }
    if (status >= 400 && status < 500) {
        return DR_VESPA_REJECTED; /* 400 bad document, 405, 412 condition, 413 too large.. */
    }
    /* 5xx (500, 502, 503, 504 timeout, 507 out of space), and answers that are not HTTP answers
     * to a /document/v1 call (1xx, 3xx, 0). */
    return DR_VESPA_TRANSIENT;
}

void dr_vespa_error_message(const char *body, size_t len, char *out, size_t outsz)
{
    cJSON *root;
    const char *msg;
    size_t n = 0;

    if (outsz == 0) {
        return;
    }
    out[0] = '\0';
    if (!body || len == 0) {
        return;
    }
    root = dr_json_parse(body, len);
    msg = root ? dr_json_str(root, "message") : NULL;
    for (; msg && *msg && n + 1 < outsz; msg++) {
        unsigned char c = (unsigned char)*msg;
        out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    /* Do not end in the middle of a UTF-8 sequence. */
    if (msg && *msg) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0x80) {
            n--;
        }
        if (n > 0 && ((unsigned char)out[n - 1] & 0xC0) == 0xC0) {
            n--;
        }
    }
    out[n] = '\0';
    cJSON_Delete(root);
}

int64_t dr_vespa_retry_after_ms(const char *value)
{
    int64_t s;

    if (!value || dr_parse_i64(value, &s) || s < 0) {
        return -1; /* HTTP dates are not worth a clock comparison here */
    }
    if (s > MAX_RETRY_AFTER_S) {
        s = MAX_RETRY_AFTER_S;
    }
    return s * 1000;
}

int64_t dr_vespa_backoff_ms(const struct dr_vespa_conf *conf, int n, double unit)
{
    int64_t d = conf->backoff_ms;

    for (int i = 0; i < n && d < conf->backoff_max_ms; i++) {
        d *= 2;
    }
    if (d > conf->backoff_max_ms) {
        d = conf->backoff_max_ms;
    }
    if (unit < 0) {
        unit = 0;
    } else if (unit >= 1) {
        unit = 1;
    }
    /* Jitter keeps workers that failed together from retrying together. */
    return d / 2 + (int64_t)((double)(d - d / 2) * unit);
}
