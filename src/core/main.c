/*
 * data-router's command line. Exit codes: 0 ok, 2 usage or configuration error, 1 runtime
 * failure. Errors are one line on stderr.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dr/buf.h"
#include "dr/config.h"
#include "dr/daemon.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "dr/version.h"

#include "core/cli.h"

#define EXIT_USAGE 2

static const char usage_main[] =
    "usage: data-router <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE]        run the service (embedded local defaults without --config)\n"
    "  publish --topic T ...        publish a message to a running instance\n"
    "  dlq list|show|replay|...     inspect, replay and discard dead letters, follow replay\n"
    "                               jobs of a running instance\n"
    "  parse email|ics|poll-reply   parse a file and print JSON\n"
    "  extract shipments|reply      extract from a file and print JSON\n"
    "  version                      print the version\n"
    "\n"
    "Run 'data-router <command> --help' for a command's options.\n";

static const char usage_serve[] =
    "usage: data-router serve [--config FILE]\n"
    "\n"
    "Runs the service. Without --config the embedded defaults (config/local.yaml) apply: local\n"
    "mode, SQLite under the data directory, http://127.0.0.1:8080.\n"
    "environment: PORT, DR_HOST, DR_DATA_DIR, DATABASE_URL, REDIS_URL, DR_LOG_LEVEL, DR_MODE,\n"
    "             PUBSUB_EMULATOR_HOST, PUBSUB_PROJECT_ID, GOOGLE_APPLICATION_CREDENTIALS\n";

static const char usage_publish[] =
    "usage: data-router publish --topic T [--attr K=V ...] [--ordering-key K]\n"
    "                           (--data JSON | --data-file F | -) [--url URL] [--project P]\n"
    "\n"
    "Publishes one message through the Pub/Sub-shaped API of a running instance and prints\n"
    "the message id. --url defaults to http://127.0.0.1:$PORT (8080). DR_API_KEY is sent as\n"
    "the API key when set.\n";

static const char usage_dlq[] =
    "usage: data-router dlq list [--topic T] [--processor P] [--reason R] [--error TEXT]\n"
    "                            [--since TIME] [--until TIME] [--limit N] [--after ID]\n"
    "       data-router dlq show ID\n"
    "       data-router dlq replay ID [--payload-file F]\n"
    "       data-router dlq replay --all [--topic T] [--processor P] [--reason R] [--error TEXT]\n"
    "                            [--since TIME] [--until TIME] [--limit N]\n"
    "                            [--dry-run | --rate N [--wait]]\n"
    "       data-router dlq jobs\n"
    "       data-router dlq job JOB [--wait]\n"
    "       data-router dlq cancel JOB\n"
    "       data-router dlq discard ID\n"
    "\n"
    "replay --all replays the dead letters the filters match (at most --limit, 100000 by\n"
    "default) and prints what it did; --dry-run only lists them. With --rate N (messages per\n"
    "second, 0.001 to 10000) the replay runs on the server as a job: the job is printed at\n"
    "once; --wait follows it and prints it when it ends (exit 0 when done, 1 when cancelled or\n"
    "failed), waiting up to 2 minutes for a server that restarts meanwhile (jobs outlive it).\n"
    "Stopping the command does not stop the job; cancel does. jobs lists the replay jobs kept\n"
    "in the store, job shows one.\n"
    "options: --url URL (default http://127.0.0.1:$PORT); DR_API_KEY is sent when set.\n";

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }
    return 0;
}

static void default_url(char *out, size_t n)
{
    const char *port = getenv("PORT");
    snprintf(out, n, "http://127.0.0.1:%s", port && *port ? port : "8080");
}

/* ---- HTTP to a running instance ---- */

static size_t collect(char *p, size_t sz, size_t nm, void *ud)
{
    return dr_buf_append(ud, p, sz * nm) == 0 ? sz * nm : 0;
}

/* Returns the HTTP status (0 when the request failed); body in *resp. */
/* One HTTP call; the status, or 0 with nothing answered (said on stderr unless quiet). */
static long http_call_q(const char *method, const char *url, const char *body, struct dr_buf *resp,
                        int quiet)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    const char *key = getenv("DR_API_KEY");
    char auth[1024];
    long status = 0;
    CURLcode rc;

    h = curl_slist_append(h, "Content-Type: application/json");
    if (key && *key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else if (!quiet) {
        dr_cli_error("%s %s: %s", method, url, curl_easy_strerror(rc));
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static long http_call(const char *method, const char *url, const char *body, struct dr_buf *resp)
{
    return http_call_q(method, url, body, resp, 0);
}

/* Prints a successful JSON answer, or the error message of a failed one. */
static int report(long status, struct dr_buf *resp)
{
    if (status == 0) {
        return 1;
    }
    if (status >= 200 && status < 300) {
        if (resp->len) {
            fwrite(resp->data, 1, resp->len, stdout);
            fputc('\n', stdout);
        }
        return 0;
    }
    cJSON *j = resp->len ? dr_json_parse(resp->data, resp->len) : NULL;
    const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    const char *m = e ? dr_json_str(e, "message") : NULL;
    dr_cli_error("HTTP %ld: %s", status, m ? m : (resp->data ? resp->data : ""));
    cJSON_Delete(j);
    return 1;
}

static int cmd_publish(int argc, char **argv)
{
    const char *topic = NULL, *okey = NULL, *data = NULL, *data_file = NULL, *url = NULL;
    const char *project = "local";
    cJSON *attrs = cJSON_CreateObject(), *body = NULL, *msgs, *m;
    char *payload = NULL, *b64 = NULL, *text = NULL, endpoint[2048], defurl[256];
    size_t plen = 0, n;
    int nsources = 0, rc = EXIT_USAGE;
    struct dr_buf resp;

    dr_buf_init(&resp, 16 * 1024 * 1024);
    if (wants_help(argc, argv)) {
        fputs(usage_publish, stdout);
        rc = 0;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-") == 0) {
            nsources++;
            continue;
        }
        if (!v) {
            dr_cli_error("publish: %s needs a value (see --help)", a);
            goto out;
        }
        if (strcmp(a, "--topic") == 0) {
            topic = v;
        } else if (strcmp(a, "--ordering-key") == 0) {
            okey = v;
        } else if (strcmp(a, "--data") == 0) {
            data = v;
            nsources++;
        } else if (strcmp(a, "--data-file") == 0) {
            data_file = v;
            nsources++;
        } else if (strcmp(a, "--url") == 0) {
            url = v;
        } else if (strcmp(a, "--project") == 0) {
            project = v;
        } else if (strcmp(a, "--attr") == 0) {
            const char *eq = strchr(v, '=');
            char key[300];
            if (!eq || eq == v || (size_t)(eq - v) >= sizeof(key)) {
                dr_cli_error("publish: --attr expects K=V, got '%s'", v);
                goto out;
            }
            snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
            cJSON_DeleteItemFromObjectCaseSensitive(attrs, key);
            cJSON_AddStringToObject(attrs, key, eq + 1);
        } else {
            dr_cli_error("publish: unknown option %s (see --help)", a);
            goto out;
        }
        i++;
    }
    if (!topic) {
        dr_cli_error("publish: --topic is required");
        goto out;
    }
    if (nsources != 1) {
        dr_cli_error("publish: give exactly one of --data, --data-file or -");
        goto out;
    }
    if (data) {
        payload = dr_xstrdup(data);
        plen = strlen(data);
    } else if (dr_cli_read_file(data_file ? data_file : "-", 10 * 1000 * 1000, &payload, &plen)) {
        dr_cli_error("publish: cannot read %s", data_file ? data_file : "standard input");
        rc = 1;
        goto out;
    }
    dr_base64_encode(payload, plen, &b64, &n);
    body = cJSON_CreateObject();
    msgs = cJSON_AddArrayToObject(body, "messages");
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "data", b64);
    cJSON_AddItemToObject(m, "attributes", attrs);
    attrs = NULL;
    if (okey) {
        cJSON_AddStringToObject(m, "orderingKey", okey);
    }
    cJSON_AddItemToArray(msgs, m);
    text = dr_json_print(body);
    default_url(defurl, sizeof(defurl));
    snprintf(endpoint, sizeof(endpoint), "%s/v1/projects/%s/topics/%s:publish", url ? url : defurl,
             project, topic);
    rc = report(http_call("POST", endpoint, text, &resp), &resp);
out:
    cJSON_Delete(attrs);
    cJSON_Delete(body);
    free(payload);
    free(b64);
    free(text);
    dr_buf_cleanup(&resp);
    return rc;
}

static void url_escape_append(struct dr_buf *b, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    dr_buf_appends(b, e ? e : "");
    curl_free(e);
}

/* How long --wait waits for a server that does not answer (restarting) before it gives up. */
#define FOLLOW_OUTAGE_MS 120000

/* Polls a replay job until it is no longer running; prints it then. 0 when it is done. Jobs
 * outlive a restart of the server (and move to another instance on the same store), so a server
 * that does not answer, or answers 502/503, is waited for. */
static int follow_job(const char *url, const char *id, struct dr_buf *resp)
{
    char endpoint[4096];
    int tty = isatty(STDERR_FILENO);
    double last = -1;
    int64_t away_since = 0; /* monotonic ms since the server stopped answering; 0: it answers */

    snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/replay/jobs/%s", url, id);
    for (;;) {
        long status;
        cJSON *j;
        const char *state;
        int running;

        dr_buf_reset(resp);
        status = http_call_q("GET", endpoint, NULL, resp, away_since != 0);
        if (status == 0 || status == 502 || status == 503) {
            int64_t now = dr_mono_ms();
            if (!away_since) {
                away_since = now;
                dr_cli_error("replay job %s: the server does not answer; waiting for it", id);
            }
            if (now - away_since < FOLLOW_OUTAGE_MS) {
                struct timespec ts = {.tv_sec = 1};
                nanosleep(&ts, NULL);
                continue;
            }
            dr_cli_error("replay job %s: no answer for %d s", id, FOLLOW_OUTAGE_MS / 1000);
            report(status, resp);
            return 1;
        }
        away_since = 0;
        if (status != 200) {
            report(status, resp); /* 404: no such job */
            return 1;
        }
        j = dr_json_parse(resp->data, resp->len);
        state = j ? dr_json_str(j, "state") : NULL;
        if (!state) {
            dr_cli_error("replay job %s: unexpected answer", id);
            cJSON_Delete(j);
            return 1;
        }
        running = strcmp(state, "running") == 0;
        if (!running) {
            int done = strcmp(state, "done") == 0;
            cJSON_Delete(j);
            report(status, resp);
            return done ? 0 : 1;
        }
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "replayed");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "matched");
        if (tty && cJSON_IsNumber(r) && cJSON_IsNumber(m) && r->valuedouble != last) {
            fprintf(stderr, "data-router: replay job %s: %.0f of %.0f replayed\n", id,
                    r->valuedouble, m->valuedouble);
            last = r->valuedouble;
        }
        cJSON_Delete(j);
        struct timespec ts = {.tv_sec = 1};
        nanosleep(&ts, NULL);
    }
}

/* replay --all: POST /admin/dlq/replay with the filters as a JSON filter. */
static int dlq_replay_all(const char *url, const char *const *fv, const char *rate, int dry_run,
                          int wait, struct dr_buf *resp)
{
    static const char *const fields[] = {"topic", "processor", "reason", "error", "since", "until"};
    cJSON *b = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(b, "filter");
    char endpoint[4096], *text = NULL, *end;
    int rc = EXIT_USAGE;
    long status;

    for (size_t k = 0; k < DR_ARRAY_LEN(fields); k++) {
        if (fv[k]) {
            cJSON_AddStringToObject(f, fields[k], fv[k]);
        }
    }
    if (fv[6]) { /* --limit */
        int64_t lim;
        if (dr_parse_i64(fv[6], &lim)) {
            dr_cli_error("dlq replay: --limit expects a number, got '%s'", fv[6]);
            goto out;
        }
        cJSON_AddNumberToObject(b, "limit", (double)lim);
    }
    if (rate) {
        double v = strtod(rate, &end);
        if (end == rate || *end) {
            dr_cli_error("dlq replay: --rate expects messages per second, got '%s'", rate);
            goto out;
        }
        cJSON_AddNumberToObject(b, "rate", v);
    }
    if (dry_run) {
        cJSON_AddBoolToObject(b, "dry_run", 1);
    }
    text = dr_json_print(b);
    snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/replay", url);
    status = http_call("POST", endpoint, text, resp);
    if (status != 202 || !wait) {
        rc = report(status, resp);
        goto out;
    }
    {
        cJSON *j = dr_json_parse(resp->data, resp->len);
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        char ids[32];
        if (!cJSON_IsNumber(id)) {
            dr_cli_error("dlq replay: the answer names no job");
            cJSON_Delete(j);
            rc = 1;
            goto out;
        }
        snprintf(ids, sizeof(ids), "%.0f", id->valuedouble);
        cJSON_Delete(j);
        if (isatty(STDERR_FILENO)) {
            fprintf(stderr,
                    "data-router: replay job %s started (data-router dlq cancel %s stops it)\n",
                    ids, ids);
        }
        rc = follow_job(url, ids, resp);
    }
out:
    cJSON_Delete(b);
    free(text);
    return rc;
}

static int cmd_dlq(int argc, char **argv)
{
    const char *url = NULL, *payload_file = NULL, *sub = argc > 0 ? argv[0] : NULL;
    const char *id = NULL, *rate = NULL;
    struct dr_buf q, resp;
    char defurl[256], *body = NULL;
    int rc = EXIT_USAGE, nq = 0, all = 0, dry_run = 0, wait = 0, nfilters = 0;
    /* the first six are also replay --all's filter, [6] its limit */
    static const char *const filters[] = {"topic", "processor", "reason", "error",
                                          "since", "until",     "limit",  "after"};
    const char *fv[DR_ARRAY_LEN(filters)] = {0};

    dr_buf_init(&q, 8192);
    dr_buf_init(&resp, 64 * 1024 * 1024);
    if (wants_help(argc, argv)) {
        fputs(usage_dlq, stdout);
        rc = 0;
        goto out;
    }
    if (!sub) {
        dr_cli_error("dlq: missing subcommand (list, show, replay, discard, jobs, job, cancel)");
        goto out;
    }
    default_url(defurl, sizeof(defurl));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int matched = 0;
        if (strncmp(a, "--", 2) != 0) {
            if (id) {
                dr_cli_error("dlq: unexpected argument %s", a);
                goto out;
            }
            id = a;
            continue;
        }
        if (strcmp(a, "--all") == 0) {
            all = 1;
            continue;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry_run = 1;
            continue;
        } else if (strcmp(a, "--wait") == 0) {
            wait = 1;
            continue;
        }
        if (!v) {
            dr_cli_error("dlq: %s needs a value", a);
            goto out;
        }
        if (strcmp(a, "--url") == 0) {
            url = v;
            matched = 1;
        } else if (strcmp(a, "--payload-file") == 0) {
            payload_file = v;
            matched = 1;
        } else if (strcmp(a, "--rate") == 0) {
            rate = v;
            matched = 1;
        }
        for (size_t k = 0; !matched && k < DR_ARRAY_LEN(filters); k++) {
            if (strcmp(a + 2, filters[k]) == 0) {
                dr_buf_printf(&q, "%c%s=", nq++ ? '&' : '?', filters[k]);
                url_escape_append(&q, v);
                fv[k] = v;
                nfilters++;
                matched = 1;
            }
        }
        if (!matched) {
            dr_cli_error("dlq: unknown option %s (see --help)", a);
            goto out;
        }
        i++;
    }
    if (!url) {
        url = defurl;
    }
    /* options that only replay --all (and job, for --wait) take */
    if ((all || dry_run || rate || (wait && strcmp(sub, "job") != 0)) &&
        strcmp(sub, "replay") != 0) {
        dr_cli_error("dlq %s: --all, --dry-run, --rate and --wait go with replay --all", sub);
        goto out;
    }
    char endpoint[4096];
    if (strcmp(sub, "list") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq%s", url, q.data ? q.data : "");
        rc = report(http_call("GET", endpoint, NULL, &resp), &resp);
        goto out;
    }
    if (strcmp(sub, "jobs") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/replay/jobs", url);
        rc = report(http_call("GET", endpoint, NULL, &resp), &resp);
        goto out;
    }
    if (strcmp(sub, "replay") == 0 && all) {
        if (id) {
            dr_cli_error("dlq replay --all: takes filters, not an id");
        } else if (payload_file || fv[7]) {
            dr_cli_error("dlq replay --all: %s goes with one dead letter or with list",
                         payload_file ? "--payload-file" : "--after");
        } else if (dry_run && rate) {
            dr_cli_error("dlq replay --all: --dry-run replays nothing: no --rate with it");
        } else if (wait && !rate) {
            dr_cli_error("dlq replay --all: --wait follows a replay with --rate");
        } else {
            rc = dlq_replay_all(url, fv, rate, dry_run, wait, &resp);
        }
        goto out;
    }
    if (strcmp(sub, "show") != 0 && strcmp(sub, "replay") != 0 && strcmp(sub, "discard") != 0 &&
        strcmp(sub, "job") != 0 && strcmp(sub, "cancel") != 0) {
        dr_cli_error("dlq: unknown subcommand %s (list, show, replay, discard, jobs, job, cancel)",
                     sub);
        goto out;
    }
    if (strcmp(sub, "replay") == 0 && (dry_run || rate || wait || nfilters)) {
        dr_cli_error("dlq replay: filters, --dry-run, --rate and --wait go with --all");
        goto out;
    }
    int64_t idv;
    if (!id || dr_parse_i64(id, &idv) || idv <= 0) {
        dr_cli_error("dlq %s: needs a %s id", sub,
                     strcmp(sub, "job") == 0 || strcmp(sub, "cancel") == 0 ? "replay job"
                                                                           : "dead letter");
        goto out;
    }
    if (strcmp(sub, "job") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%lld", (long long)idv);
        if (wait) {
            rc = follow_job(url, endpoint, &resp);
        } else {
            char path[4096];
            snprintf(path, sizeof(path), "%s/admin/dlq/replay/jobs/%lld", url, (long long)idv);
            rc = report(http_call("GET", path, NULL, &resp), &resp);
        }
    } else if (strcmp(sub, "cancel") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/replay/jobs/%lld", url, (long long)idv);
        rc = report(http_call("DELETE", endpoint, NULL, &resp), &resp);
    } else if (strcmp(sub, "show") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/%lld", url, (long long)idv);
        rc = report(http_call("GET", endpoint, NULL, &resp), &resp);
    } else if (strcmp(sub, "discard") == 0) {
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/%lld", url, (long long)idv);
        rc = report(http_call("DELETE", endpoint, NULL, &resp), &resp);
    } else {
        if (payload_file) {
            char *p = NULL;
            size_t plen;
            cJSON *pj, *b;
            if (dr_cli_read_file(payload_file, 10 * 1000 * 1000, &p, &plen)) {
                dr_cli_error("dlq replay: cannot read %s", payload_file);
                rc = 1;
                goto out;
            }
            pj = dr_json_parse(p, plen);
            b = cJSON_CreateObject();
            if (pj) {
                cJSON_AddItemToObject(b, "payload", pj);
            } else {
                char *b64;
                size_t n;
                dr_base64_encode(p, plen, &b64, &n);
                cJSON_AddStringToObject(b, "data", b64);
                free(b64);
            }
            body = dr_json_print(b);
            cJSON_Delete(b);
            free(p);
        }
        snprintf(endpoint, sizeof(endpoint), "%s/admin/dlq/%lld/replay", url, (long long)idv);
        rc = report(http_call("POST", endpoint, body ? body : "", &resp), &resp);
    }
out:
    free(body);
    dr_buf_cleanup(&q);
    dr_buf_cleanup(&resp);
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    struct dr_config *cfg;
    char err[1024];
    int rc;

    if (wants_help(argc, argv)) {
        fputs(usage_serve, stdout);
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else {
            dr_cli_error("serve: unknown option %s (see --help)", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (dr_config_load(path, &cfg, err, sizeof(err)) != 0) {
        dr_cli_error("config error: %s", err);
        return EXIT_USAGE;
    }
    rc = dr_daemon_run(cfg);
    dr_config_destroy(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    int rc;

    if (!cmd) {
        dr_cli_error("missing command (see data-router --help)");
        return EXIT_USAGE;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        rc = 0;
        if (wants_help(argc - 2, argv + 2)) {
            printf("usage: data-router version: prints the version\n");
        } else if (argc > 2) {
            dr_cli_error("version: unexpected argument %s (see --help)", argv[2]);
            rc = EXIT_USAGE;
        } else {
            printf("data-router %s\n", DR_VERSION);
        }
    } else if (strcmp(cmd, "serve") == 0) {
        rc = cmd_serve(argc - 2, argv + 2);
    } else if (strcmp(cmd, "publish") == 0) {
        rc = cmd_publish(argc - 2, argv + 2);
    } else if (strcmp(cmd, "dlq") == 0) {
        rc = cmd_dlq(argc - 2, argv + 2);
    } else if (strcmp(cmd, "parse") == 0 || strcmp(cmd, "extract") == 0) {
        rc = dr_cli_tools(cmd, argc - 2, argv + 2);
    } else {
        dr_cli_error("unknown command '%s' (see data-router --help)", cmd);
        rc = EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
