/*
 * Carrier status over HTTP (dr/shipment_store.h): an aggregator-style JSON API,
 *   GET {url}/trackings/{tracking_number}   X-Api-Key: {api_key}   Accept: application/json
 *   200 {"status":"in_transit","events":[{"status","time","location","detail"}, ...]}
 *   404 unknown number; 401/403 key refused; 429 and 5xx: try later (Retry-After honoured).
 *
 * Processors run on worker threads, so each call is one blocking libcurl easy transfer with a
 * connect and a total timeout (no loop thread of its own); libcurl is initialised by main(). A
 * token bucket shared by all workers bounds the request rate: a worker waits for a token up to
 * max_wait_ms, else the call answers DR_EUNAVAIL with the wait as retry_after_ms.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/shipment_store.h"
#include "dr/util.h"

#define MAX_BODY   (1024 * 1024)
#define MAX_EVENTS 200
#define MAX_TEXT   512

struct http_provider {
    struct dr_carrier_provider base;
    char *url; /* without a trailing '/' */
    char *key_header;
    long timeout_ms;
    int64_t max_wait_ms;
    pthread_mutex_t mu; /* token bucket */
    double rate, burst, tokens;
    uint64_t refilled_ns;
};

/* Takes a token, waiting up to max_wait_ms. 0, or the milliseconds to wait in *wait_ms. */
static int take_token(struct http_provider *hp, int64_t *wait_ms)
{
    uint64_t now;
    double wait_s;

    pthread_mutex_lock(&hp->mu);
    now = dr_mono_ns();
    hp->tokens += (double)(now - hp->refilled_ns) / 1e9 * hp->rate;
    if (hp->tokens > hp->burst) {
        hp->tokens = hp->burst;
    }
    hp->refilled_ns = now;
    hp->tokens -= 1.0; /* reserve: a negative balance queues the callers */
    wait_s = hp->tokens < 0 ? -hp->tokens / hp->rate : 0;
    if (wait_s * 1000.0 > (double)hp->max_wait_ms) {
        hp->tokens += 1.0;
        pthread_mutex_unlock(&hp->mu);
        *wait_ms = (int64_t)ceil(wait_s * 1000.0);
        return -1;
    }
    pthread_mutex_unlock(&hp->mu);
    if (wait_s > 0) {
        struct timespec ts = {.tv_sec = (time_t)wait_s,
                              .tv_nsec = (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct dr_buf *b = ctx;

    return dr_buf_append(b, p, size * n) ? 0 : size * n; /* over the cap: abort the transfer */
}

static char *text_or_null(const cJSON *o, const char *key)
{
    const char *s = dr_json_str(o, key);

    return s && *s ? dr_xstrndup(s, strnlen(s, MAX_TEXT)) : NULL;
}

/* Provider wording to a status: an exact name, else what the words say. */
static enum dr_shipment_status status_of(const char *s)
{
    enum dr_shipment_status st;
    char norm[64];
    size_t i;

    if (!s || !*s) {
        return DR_SHIP_UNKNOWN;
    }
    for (i = 0; s[i] && i + 1 < sizeof(norm); i++) {
        char ch = s[i];
        norm[i] = ch == '-' || ch == ' ' ? '_' : (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    norm[i] = '\0';
    if (dr_shipment_status_parse(norm, &st) == DR_OK) {
        return st;
    }
    if (strcmp(norm, "intransit") == 0 || strcmp(norm, "shipped") == 0) {
        return DR_SHIP_IN_TRANSIT;
    }
    if (strcmp(norm, "outfordelivery") == 0) {
        return DR_SHIP_OUT_FOR_DELIVERY;
    }
    if (strcmp(norm, "inforeceived") == 0 || strcmp(norm, "info_received") == 0 ||
        strcmp(norm, "pre_transit") == 0 || strcmp(norm, "pretransit") == 0) {
        return DR_SHIP_LABEL_CREATED;
    }
    return dr_shipment_status_from_text(s, strlen(s));
}

static int parse_answer(const char *body, size_t len, struct dr_carrier_status *out, char *why,
                        size_t whysz)
{
    cJSON *j = dr_json_parse(body, len);
    const cJSON *evs, *e;
    int err = DR_OK;

    if (!cJSON_IsObject(j)) {
        snprintf(why, whysz, "answer is not a JSON object");
        cJSON_Delete(j);
        return DR_EINVAL;
    }
    out->status = status_of(dr_json_str(j, "status"));
    evs = cJSON_GetObjectItemCaseSensitive(j, "events");
    if (evs && !cJSON_IsNull(evs) && !cJSON_IsArray(evs)) {
        snprintf(why, whysz, "events: expected an array");
        err = DR_EINVAL;
        goto out;
    }
    cJSON_ArrayForEach(e, evs)
    {
        const char *t = dr_json_str(e, "time");
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(e, "time");
        struct dr_carrier_event *ev;
        int64_t ms;

        if (out->n_events >= MAX_EVENTS) {
            break; /* the newest come first in such APIs; the rest is history */
        }
        if (t && dr_parse_time(t, &ms) == DR_OK) {
        } else if (cJSON_IsNumber(tn) && tn->valuedouble > 0 && tn->valuedouble < 1e14) {
            ms = (int64_t)tn->valuedouble;
        } else {
            continue; /* an event without a time cannot be ordered: skipped */
        }
        out->events = dr_xrealloc(out->events, (out->n_events + 1) * sizeof(*out->events));
        ev = &out->events[out->n_events++];
        memset(ev, 0, sizeof(*ev));
        ev->status_text = text_or_null(e, "status");
        ev->status = status_of(ev->status_text);
        ev->time_ms = ms;
        ev->location = text_or_null(e, "location");
        ev->detail = text_or_null(e, "detail");
    }
out:
    cJSON_Delete(j);
    if (err) {
        dr_carrier_status_cleanup(out);
    }
    return err;
}

static int http_fetch(struct dr_carrier_provider *p, const char *tracking_number,
                      const char *carrier, struct dr_carrier_status *out, char *why, size_t whysz)
{
    struct http_provider *hp = (struct http_provider *)p;
    struct curl_slist *hdrs = NULL;
    struct dr_buf url, body;
    CURL *h = NULL;
    CURLcode cc;
    long status = 0;
    curl_off_t retry_after = 0;
    int64_t wait_ms = 0;
    int err;

    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    if (take_token(hp, &wait_ms)) {
        out->retry_after_ms = wait_ms;
        snprintf(why, whysz, "rate limit: next request in %lld ms", (long long)wait_ms);
        return DR_EUNAVAIL;
    }
    dr_buf_init(&url, 4096);
    dr_buf_init(&body, MAX_BODY);
    h = curl_easy_init();
    if (!h || dr_buf_appends(&url, hp->url) || dr_buf_appends(&url, "/trackings/")) {
        err = DR_ENOMEM;
        goto out;
    }
    {
        char *esc = curl_easy_escape(h, tracking_number, 0);
        err = esc ? dr_buf_appends(&url, esc) : DR_ENOMEM;
        curl_free(esc);
        if (err) {
            goto out;
        }
    }
    hdrs = curl_slist_append(hdrs, hp->key_header);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "data-router");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, hp->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, hp->timeout_ms < 5000 ? hp->timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        /* the message names the failure, never the URL's key (the key is a header) */
        snprintf(why, whysz, "request failed: %s", curl_easy_strerror(cc));
        err = cc == CURLE_WRITE_ERROR ? DR_EINVAL : DR_EUNAVAIL;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
    if (status == 200) {
        err = parse_answer(body.data ? body.data : "", body.len, out, why, whysz);
    } else if (status == 404) {
        snprintf(why, whysz, "the provider does not know the number (404)");
        err = DR_ENOTFOUND;
    } else if (status == 401 || status == 403) {
        snprintf(why, whysz, "the provider refused the API key (%ld)", status);
        err = DR_EAUTH;
    } else if (status == 429 || status >= 500) {
        snprintf(why, whysz, "the provider answered %ld", status);
        out->retry_after_ms = retry_after > 0 && retry_after < 3600 ? retry_after * 1000 : 0;
        err = DR_EUNAVAIL;
    } else {
        snprintf(why, whysz, "unexpected HTTP status %ld", status);
        err = DR_EINVAL;
    }
out:
    (void)carrier; /* the aggregator detects the carrier itself */
    curl_slist_free_all(hdrs);
    if (h) {
        curl_easy_cleanup(h);
    }
    dr_buf_cleanup(&url);
    dr_buf_cleanup(&body);
    return err;
}

static void http_destroy(struct dr_carrier_provider *p)
{
    struct http_provider *hp = (struct http_provider *)p;

    if (hp) {
        pthread_mutex_destroy(&hp->mu);
        free(hp->url);
        if (hp->key_header) {
            memset(hp->key_header, 0, strlen(hp->key_header)); /* a secret */
        }
        free(hp->key_header);
        free(hp);
    }
}

void dr_carrier_status_cleanup(struct dr_carrier_status *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n_events; i++) {
        free(s->events[i].status_text);
        free(s->events[i].location);
        free(s->events[i].detail);
    }
    free(s->events);
    s->events = NULL;
    s->n_events = 0;
}

static int num(const cJSON *conf, const char *key, double lo, double hi, double *out, char *err,
               size_t errsz)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(conf, key);
    char *end = NULL;
    double d;

    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        d = strtod(v->valuestring, &end);
        if (end == v->valuestring || *end) {
            d = NAN;
        }
    } else {
        d = NAN;
    }
    if (!(d >= lo && d <= hi)) {
        snprintf(err, errsz, "processors.shipment.provider.%s: expected a number in %g..%g", key,
                 lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

int dr_carrier_provider_from_config(const cJSON *conf, struct dr_carrier_provider **out, char *err,
                                    size_t errsz)
{
    const char *url = conf ? dr_json_str(conf, "url") : NULL;
    const char *key;
    double rate = 5, burst = -1, timeout = 10000, max_wait = 1000;
    struct http_provider *hp;
    struct dr_buf kh;
    size_t n;

    *out = NULL;
    if (conf && !cJSON_IsObject(conf)) {
        snprintf(err, errsz, "processors.shipment.provider: expected a mapping");
        return DR_EINVAL;
    }
    if (!url || !*url) {
        return DR_OK; /* off */
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errsz, "processors.shipment.provider.url: expected http:// or https://");
        return DR_EINVAL;
    }
    key = dr_json_str(conf, "api_key");
    if (!key || !*key) {
        key = getenv("DR_CARRIER_API_KEY");
    }
    if (!key || !*key || strpbrk(key, "\r\n")) {
        snprintf(err, errsz,
                 "processors.shipment.provider: api_key (or DR_CARRIER_API_KEY) is "
                 "required (a single line)");
        return DR_EINVAL;
    }
    if (num(conf, "rate_per_sec", 0.01, 10000, &rate, err, errsz) ||
        num(conf, "burst", 1, 100000, &burst, err, errsz) ||
        num(conf, "timeout_ms", 100, 120000, &timeout, err, errsz) ||
        num(conf, "max_wait_ms", 0, 60000, &max_wait, err, errsz)) {
        return DR_EINVAL;
    }
    hp = dr_xcalloc(1, sizeof(*hp));
    hp->base.name = "http";
    hp->base.fetch = http_fetch;
    hp->base.destroy = http_destroy;
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') {
        n--;
    }
    hp->url = dr_xstrndup(url, n);
    dr_buf_init(&kh, 8192);
    if (dr_buf_printf(&kh, "X-Api-Key: %s", key)) {
        dr_buf_cleanup(&kh);
        http_destroy(&hp->base);
        snprintf(err, errsz, "processors.shipment.provider.api_key: too long");
        return DR_EINVAL;
    }
    hp->key_header = dr_buf_steal(&kh, NULL);
    hp->timeout_ms = (long)timeout;
    hp->max_wait_ms = (int64_t)max_wait;
    hp->rate = rate;
    hp->burst = burst > 0 ? burst : (rate < 1 ? 1 : rate);
    hp->tokens = hp->burst;
    hp->refilled_ns = dr_mono_ns();
    pthread_mutex_init(&hp->mu, NULL);
    *out = &hp->base;
    return DR_OK;
}
