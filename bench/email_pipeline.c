/*
 * Email pipeline throughput: parse (GMime, html->text included), classification and shipment
 * extraction, and the whole email processor's process() without a store, on realistic mail.
 *
 *   bench_email_pipeline [DATA_DIR] [THREADS] [ROUNDS]
 *
 * DATA_DIR (default $DR_TEST_DATA, else tests/data) provides the carrier and shop emails of
 * shipment/mail_and_packages and the replies and calendar emails of email/. To those, 24
 * generated newsletters and shop mails are added: multipart/alternative, quoted-printable text
 * plus base64 HTML of 5-50 KB with tables, styles and links, a third of them with a tracking
 * number. Every message is used; the sizes are printed.
 *
 * Single thread: each stage timed separately per email (parse; html->text of the HTML body
 * again on its own, to show its share of parse; parse as process() calls it, which renders the
 * HTML as text only for emails without a text body and reads the HTML body of an email with a
 * text body only when classify asks for it; dr_shipment_extract() as classify runs it;
 * the rest of classify; process() as a whole, emits included). THREADS (default 2): the same
 * process() loop on that many threads at once, ROUNDS passes over the corpus each (default 20).
 * Every single-thread stage is reported in wall time and in CPU time of the thread
 * (CLOCK_THREAD_CPUTIME_ID), which waiting for a CPU does not inflate. The extract stage
 * is timed by calling dr_shipment_extract() with what classify passes it (the text body, then the
 * HTML when classify would scan it too), so its CPU time is that of the extraction alone.
 * process() gets a fresh message each call, so its JSON payload is parsed each time, as that of
 * a message from a source is.
 * Rates are per wall second and, for the single-thread stages, per CPU second of the thread.
 * BENCH_PROCESS_ONLY=1 skips the single-thread stages (for profiling process() alone);
 * BENCH_PER_EMAIL=1 prints each email's fastest process() of ten (=NAME: loops on that email).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dr/buf.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/shipment.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

#include <cjson/cJSON.h>

#define MAX_MAILS 128
#define GENERATED 24
/* Emails below this many bytes count as small for the extract stage's second line. */
#define SMALL_MAIL 16384

extern const struct dr_processor dr_processor_email;

struct mail {
    char name[64];
    char *raw;
    size_t len;
    char *payload; /* the email-backfill message's JSON, carrying raw */
    size_t payload_len;
};

static struct mail mails[MAX_MAILS];
static size_t nmails;
static void *proc_state;

static double now_s(void)
{
    return (double)dr_mono_ns() / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall and thread-CPU seconds of one stage, summed over the emails; best_cpu: the CPU seconds
 * of the round that took the least (other load on the machine only ever adds). */
struct stage {
    double wall, cpu;
    double round_cpu, best_cpu;
};

struct clock_pair {
    double wall, cpu;
};

static struct clock_pair start_clock(void)
{
    struct clock_pair c = {now_s(), cpu_s()};
    return c;
}

static void stop_clock(struct stage *s, struct clock_pair c)
{
    double cpu = cpu_s() - c.cpu;

    s->wall += now_s() - c.wall;
    s->cpu += cpu;
    s->round_cpu += cpu;
}

static void end_round(struct stage *s)
{
    if (s->best_cpu == 0 || s->round_cpu < s->best_cpu) {
        s->best_cpu = s->round_cpu;
    }
    s->round_cpu = 0;
}

static void print_stage(const char *name, const struct stage *s, size_t n, const char *note)
{
    printf("  %-28s %9.1f us/email wall %9.1f us/email CPU %9.1f best round%s\n", name,
           s->wall / (double)n * 1e6, s->cpu / (double)n * 1e6, s->best_cpu / (double)nmails * 1e6,
           note);
}

/* Entries of a dr_shipment_extract() result classify would accept (valid, or any with cue_ok):
 * classify scans the HTML too only when the text gave none. */
static size_t accepted(const cJSON *out, int cue_ok)
{
    const cJSON *e;
    size_t n = 0;

    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(out, "shipments"))
    {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(e, "tracking_number");
        if (cJSON_IsString(tn) && tn->valuestring[0] &&
            (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "valid")) || cue_ok)) {
            n++;
        }
    }
    return n;
}

/* dr_shipment_extract() called as classify calls it for em; the number of calls. */
static int extract_like_classify(const struct dr_email *em, int cue_ok)
{
    char from[1024] = "";
    cJSON *out = NULL;
    int calls = 1;

    if (em->from.address) {
        int w = snprintf(from, sizeof(from), "%s <%s>", em->from.name ? em->from.name : "",
                         em->from.address);
        if (w < 0 || (size_t)w >= sizeof(from)) {
            from[0] = '\0';
        }
    }
    dr_shipment_extract(em->subject, from[0] ? from : NULL, em->text ? em->text : "",
                        em->text ? em->text_len : 0, &out);
    if (cue_ok && em->html && !accepted(out, 1)) {
        cJSON_Delete(out);
        out = NULL;
        dr_shipment_extract(em->subject, from[0] ? from : NULL, em->html, em->html_len, &out);
        calls++;
    }
    cJSON_Delete(out);
    return calls;
}

static void add_mail(const char *name, char *raw, size_t len)
{
    struct mail *m;
    char *b64 = NULL, *pl;
    size_t blen;

    if (nmails >= MAX_MAILS || dr_base64url_encode(raw, len, &b64, &blen)) {
        free(raw);
        return;
    }
    m = &mails[nmails++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->raw = raw;
    m->len = len;
    pl = dr_xmalloc(blen + 256);
    snprintf(pl, blen + 256,
             "{\"user_id\":\"bench\",\"org_id\":\"o\",\"email_id\":\"%s\",\"raw\":\"%s\"}", name,
             b64);
    m->payload = pl;
    m->payload_len = strlen(pl);
    free(b64);
}

static void load_file(const char *dir, const char *rel)
{
    char path[2048];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "skipping %s: cannot open\n", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = dr_xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        n = 0;
    }
    buf[n] = '\0';
    fclose(f);
    add_mail(strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel, buf, (size_t)n);
}

/* A shop newsletter or order mail of about target bytes of HTML (before base64). */
static void generate(int i, size_t target)
{
    static const char *const words[] = {"order",   "summer", "collection", "delivery", "your",
                                        "account", "offer",  "discount",   "shipping", "item",
                                        "size",    "colour", "returns",    "store",    "free"};
    struct dr_buf html, text, out;
    char *b64 = NULL, name[64];
    size_t blen;
    unsigned seed = (unsigned)i * 2654435761u;
    int row = 0;

    dr_buf_init(&html, 1 << 20);
    dr_buf_init(&text, 1 << 20);
    dr_buf_init(&out, 4 << 20);
    dr_buf_appends(&html, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>"
                          "body{font-family:Arial,sans-serif}td{padding:4px}.btn{color:#fff}"
                          "</style><title>Newsletter</title></head><body><table width=\"600\">");
    while (html.len < target) {
        seed = seed * 1103515245u + 12345u;
        dr_buf_printf(&html,
                      "<tr><td class=\"c%d\"><h2>%s %s</h2><p>Dear customer, the %s %s of your "
                      "%s is ready. See <a href=\"https://shop.example.com/p/%u?utm_source=mail"
                      "&amp;utm_campaign=%d\">our %s page</a> &ndash; %s &amp; %s.</p>"
                      "<img src=\"https://cdn.example.com/i/%u.png\" alt=\"%s\" width=\"120\">"
                      "</td><td>&euro; %u.%02u</td></tr>\n",
                      row % 7, words[seed % 15], words[(seed >> 4) % 15], words[(seed >> 8) % 15],
                      words[(seed >> 12) % 15], words[(seed >> 16) % 15], seed % 100000, i,
                      words[(seed >> 20) % 15], words[(seed >> 24) % 15], words[(seed >> 3) % 15],
                      seed % 9973, words[(seed >> 5) % 15], seed % 500, seed % 100);
        dr_buf_printf(&text, "%s %s: the %s of your %s is ready.\r\n", words[seed % 15],
                      words[(seed >> 4) % 15], words[(seed >> 8) % 15], words[(seed >> 16) % 15]);
        if (i % 3 == 0 && row == 3) {
            dr_buf_appends(&html, "<tr><td>Your order has shipped. Tracking number: "
                                  "<a href=\"https://www.ups.com/track?tracknum=1Z879E930346834440"
                                  "\">1Z879E930346834440</a></td></tr>\n");
            dr_buf_appends(&text,
                           "Your order has shipped. Tracking number: 1Z879E930346834440\r\n");
        }
        row++;
    }
    dr_buf_appends(&html, "</table><p style=\"font-size:10px\">Unsubscribe</p></body></html>");
    dr_base64_encode(html.data, html.len, &b64, &blen);
    dr_buf_printf(&out,
                  "From: Example Shop <news@shop.example.com>\r\nTo: someone@example.org\r\n"
                  "Subject: %s %d\r\nDate: Sun, 01 Mar 2026 09:%02d:00 +0100\r\n"
                  "Message-ID: <gen-%d@shop.example.com>\r\nMIME-Version: 1.0\r\n"
                  "List-Id: <news.shop.example.com>\r\n"
                  "Content-Type: multipart/alternative; boundary=\"b%d\"\r\n\r\n"
                  "--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n"
                  "--b%d\r\nContent-Type: text/html; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n",
                  i % 3 == 0 ? "Your order has shipped" : "New this week", i, i % 60, i, i, i,
                  text.data, i);
    for (size_t k = 0; k < blen; k += 76) {
        dr_buf_append(&out, b64 + k, blen - k < 76 ? blen - k : 76);
        dr_buf_appends(&out, "\r\n");
    }
    dr_buf_printf(&out, "--b%d--\r\n", i);
    snprintf(name, sizeof(name), "generated-%02d.eml", i);
    {
        size_t len;
        char *raw = dr_buf_steal(&out, &len);
        add_mail(name, raw, len);
    }
    free(b64);
    dr_buf_cleanup(&html);
    dr_buf_cleanup(&text);
    dr_buf_cleanup(&out);
}

/* process() on a fresh message, so that its JSON payload is parsed each time, as that of a
 * message from a source is (creating it, a copy of the payload, is counted too) */
static void run_process(const struct mail *m)
{
    struct dr_result res;
    struct dr_msg *msg =
        dr_msg_create(m->name, "email-backfill", m->payload, m->payload_len, dr_now_ms());

    dr_msg_finish(msg, "email", 0);
    dr_result_init(&res);
    dr_processor_email.process(proc_state, msg, &res);
    dr_msg_unref(msg);
    if (res.outcome != DR_OUTCOME_OK) {
        fprintf(stderr, "%s: %s %s\n", m->name, res.reason, res.error);
        exit(1);
    }
    dr_result_cleanup(&res);
}

struct worker {
    pthread_t th;
    int rounds;
    size_t done;
    double cpu;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    double c0 = cpu_s();

    for (int r = 0; r < w->rounds; r++) {
        for (size_t i = 0; i < nmails; i++) {
            run_process(&mails[i]);
            w->done++;
        }
    }
    w->cpu = cpu_s() - c0;
    return NULL;
}

int main(int argc, char **argv)
{
    static const char *const files[] = {
        "shipment/mail_and_packages/amazon_delivered.eml",
        "shipment/mail_and_packages/amazon_shipped.eml",
        "shipment/mail_and_packages/amazon_uk_out_for_delivery.eml",
        "shipment/mail_and_packages/dhl_out_for_delivery.eml",
        "shipment/mail_and_packages/fedex_out_for_delivery.eml",
        "shipment/mail_and_packages/gls_delivered.eml",
        "shipment/mail_and_packages/informed_delivery.eml",
        "shipment/mail_and_packages/royal_mail_uk_delivered.eml",
        "shipment/mail_and_packages/ups_out_for_delivery.eml",
        "shipment/mail_and_packages/usps_out_for_delivery.eml",
        "email/replies/gmail.eml",
        "email/replies/outlook.eml",
        "email/replies/iphone.eml",
        "email/replies/thunderbird.eml",
        "email/calendar/complex-mime.txt",
    };
    const char *dir = argc > 1                 ? argv[1]
                      : getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA")
                                               : "tests/data";
    int threads = argc > 2 ? atoi(argv[2]) : 2, rounds = argc > 3 ? atoi(argv[3]) : 20;
    struct dr_proc_env env = {.store = NULL, .data_dir = "/tmp", .config = NULL};
    struct stage parse = {0}, lazy = {0}, html = {0}, extract = {0}, classify = {0}, proc = {0},
                 extract_small = {0};
    double c_proc = 0, t_extract_in_classify = 0;
    size_t bytes = 0, smin = (size_t)-1, smax = 0, shipments = 0, n = 0, extract_calls = 0,
           nsmall = 0;
    struct worker *ws;
    char err[256];
    double t0, elapsed;
    int process_only = getenv("BENCH_PROCESS_ONLY") && strcmp(getenv("BENCH_PROCESS_ONLY"), "1") == 0;

    if (threads < 1 || threads > 64 || rounds < 1) {
        fprintf(stderr, "usage: bench_email_pipeline [DATA_DIR] [THREADS 1-64] [ROUNDS]\n");
        return 2;
    }
    dr_log_set_level(DR_LOG_WARN);
    dr_email_global_init();
    dr_shipment_init();
    for (size_t i = 0; i < DR_ARRAY_LEN(files); i++) {
        load_file(dir, files[i]);
    }
    for (int i = 0; i < GENERATED; i++) {
        generate(i, 5000 + (size_t)i * 45000 / (GENERATED - 1));
    }
    if (dr_processor_email.init(&env, &proc_state, err, sizeof(err))) {
        fprintf(stderr, "init: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < nmails; i++) {
        bytes += mails[i].len;
        smin = mails[i].len < smin ? mails[i].len : smin;
        smax = mails[i].len > smax ? mails[i].len : smax;
    }
    printf("corpus: %zu emails, %zu-%zu bytes, mean %zu bytes (%zu from files, %d generated)\n",
           nmails, smin, smax, bytes / nmails, nmails - GENERATED, GENERATED);

    /* single thread, stage by stage */
    for (int r = 0; r < rounds && !process_only; r++) {
        for (size_t i = 0; i < nmails; i++) {
            struct dr_email *em = NULL;
            struct dr_email_class c;
            struct dr_buf out;
            struct clock_pair k;

            k = start_clock();
            if (dr_email_parse(mails[i].raw, mails[i].len, NULL, &em)) {
                fprintf(stderr, "%s: %s\n", mails[i].name, dr_email_error_reason());
                return 1;
            }
            stop_clock(&parse, k);
            {
                struct dr_email *lz = NULL;
                struct dr__email_lazy *later = NULL;
                k = start_clock();
                if (dr__email_parse_lazy(mails[i].raw, mails[i].len, NULL, 0, &lz, &later) ==
                    DR_OK) {
                    dr__email_lazy_free(later); /* process() ends it too: its share of the cost */
                    stop_clock(&lazy, k);
                }
                dr_email_destroy(lz);
            }
            if (em->html) {
                dr_buf_init(&out, 2 << 20);
                k = start_clock();
                dr__email_html_to_text(em->html, em->html_len, &out);
                stop_clock(&html, k);
                dr_buf_cleanup(&out);
            }
            k = start_clock();
            if (dr__email_classify(em, NULL, &c)) {
                return 1;
            }
            stop_clock(&classify, k);
            t_extract_in_classify += (double)c.extract_ns / 1e9;
            k = start_clock();
            extract_calls +=
                (size_t)extract_like_classify(em, c.cues.score >= DR_EMAIL_SHIPMENT_THRESHOLD);
            stop_clock(&extract, k);
            if (mails[i].len < SMALL_MAIL) {
                k = start_clock();
                extract_like_classify(em, c.cues.score >= DR_EMAIL_SHIPMENT_THRESHOLD);
                stop_clock(&extract_small, k);
                nsmall += r == 0;
            }
            shipments += r == 0 ? c.n_accepted : 0;
            dr__email_class_cleanup(&c);
            dr_email_destroy(em);
            k = start_clock();
            run_process(&mails[i]);
            stop_clock(&proc, k);
            n++;
        }
        end_round(&parse);
        end_round(&lazy);
        end_round(&html);
        end_round(&extract);
        end_round(&classify);
        end_round(&proc);
        end_round(&extract_small);
    }
    if (getenv("BENCH_PER_EMAIL")) {
        /* each email's fastest process() of ten, in CPU time; BENCH_PER_EMAIL=NAME: that email's
         * process() 20,000 times (for a profiler) */
        const char *only = getenv("BENCH_PER_EMAIL");
        for (size_t i = 0; i < nmails; i++) {
            double best = 1e9;
            int reps = strcmp(only, mails[i].name) == 0 ? 20000 : 10;
            if (strcmp(only, "1") != 0 && reps == 10) {
                continue;
            }
            for (int k = 0; k < reps; k++) {
                double c0 = cpu_s();
                run_process(&mails[i]);
                best = cpu_s() - c0 < best ? cpu_s() - c0 : best;
            }
            printf("  %-44s %6zu bytes %7.1f us\n", mails[i].name, mails[i].len, best * 1e6);
        }
    }
    if (process_only) {
        goto threaded;
    }
    printf("single thread, %zu emails (%d rounds), %zu tracking numbers per round\n", n, rounds,
           shipments);
    print_stage("parse (incl. html->text)", &parse, n, "");
    print_stage("  html->text alone", &html, n, " (part of parse)");
    print_stage("parse as process() runs it", &lazy, n, "");
    print_stage("shipment extract", &extract, n, "");
    printf("  %-28s %9.1f us/call CPU (best round %.1f), %zu calls (%.2f per email); in classify "
           "%.1f us/email wall\n",
           "  per extract call", extract.cpu / (double)extract_calls * 1e6,
           extract.best_cpu / ((double)extract_calls / rounds) * 1e6, extract_calls,
           (double)extract_calls / (double)n, t_extract_in_classify / (double)n * 1e6);
    printf("  %-28s %9.1f us/email CPU (best round %.1f), %zu emails under %d bytes\n",
           "  extract, small emails", extract_small.cpu / (double)(nsmall * (size_t)rounds) * 1e6,
           extract_small.best_cpu / (double)nsmall * 1e6, nsmall, SMALL_MAIL);
    print_stage("classify (incl. extract)", &classify, n, "");
    printf("  %-28s %9.1f us/email wall %9.1f us/email CPU\n", "sum of stages",
           (parse.wall + classify.wall) / (double)n * 1e6,
           (parse.cpu + classify.cpu) / (double)n * 1e6);
    print_stage("process() (all + emits)", &proc, n, "");
    printf("  %-28s %8.0f emails/s wall  %8.0f emails/s per CPU second (best round %.0f)  %6.1f "
           "MB/s\n",
           "  process() rate", (double)n / proc.wall, (double)n / proc.cpu,
           (double)nmails / proc.best_cpu, (double)bytes * rounds / proc.wall / 1e6);

threaded:
    ws = dr_xcalloc((size_t)threads, sizeof(*ws));
    t0 = now_s();
    for (int i = 0; i < threads; i++) {
        ws[i].rounds = rounds;
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    n = 0;
    c_proc = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].th, NULL);
        n += ws[i].done;
        c_proc += ws[i].cpu;
    }
    elapsed = now_s() - t0;
    printf("%d threads, process(): %zu emails in %.2f s: %.0f emails/s wall, %.0f emails/s per "
           "CPU second\n",
           threads, n, elapsed, (double)n / elapsed, (double)n / c_proc);
    free(ws);
    dr_processor_email.destroy(proc_state);
    for (size_t i = 0; i < nmails; i++) {
        free(mails[i].raw);
        free(mails[i].payload);
    }
    return 0;
}
