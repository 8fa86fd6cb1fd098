/*
 * dr_email_parse() on messages built here for one behaviour each, hostile input, the JSON
 * shape, the pre-parsed-fields path, the classifier helpers, and parsing on several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <pthread.h>
#include <cmocka.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/json.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"
#include "unit/processors/corpus.h"
#include "unit/processors/email/testutil.h"

static struct dr_email *parse_ok(const char *msg)
{
    struct dr_email *em = NULL;
    int err = dr_email_parse(msg, strlen(msg), NULL, &em);

    if (err) {
        print_message("parse failed: %s\n", dr_email_error_reason());
    }
    assert_int_equal(err, DR_OK);
    assert_non_null(em);
    return em;
}

static int has_warning(const struct dr_email *em, const char *needle)
{
    for (size_t i = 0; i < em->n_warnings; i++) {
        if (strstr(em->warnings[i], needle)) {
            return 1;
        }
    }
    return 0;
}

static const char alt_msg[] =
    "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen.Mueller@Example.DE>\r\n"
    "To: \"Ann Lee\" <ann@EXAMPLE.org>, bob@example.org\r\n"
    "Cc: Team: carol@example.org, dave@example.org;\r\n"
    "Reply-To: help@example.org\r\n"
    "Subject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?IOKCrDU=?= order\r\n"
    "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    "Message-ID: <abc.123@mail.example.de>\r\n"
    "In-Reply-To: <parent@example.org>\r\n"
    "References: <root@example.org>\r\n <parent@example.org>\r\n"
    "List-Id: Orders <orders.example.de>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Gr=FC=DFe aus K=F6ln,=\r\n"
    " your order shipped.\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "PGh0bWw+PGhlYWQ+PHRpdGxlPlQ8L3RpdGxlPjxzdHlsZT5we2NvbG9yOnJlZH08L3N0eWxlPjwv\r\n"
    "aGVhZD48Ym9keT48cD5HcsO8w59lICZhbXA7IDxiPmhlbGxvPC9iPjwvcD48c2NyaXB0PmFsZXJ0\r\n"
    "KDEpPC9zY3JpcHQ+PGRpdj5QcmljZTogJiN4MjBBQzsxMCZuYnNwO25vdzwvZGl2PjxhIGhyZWY9\r\n"
    "Imh0dHBzOi8vdHJhY2suZXhhbXBsZS9hP2I9MSZhbXA7Yz0yIj5UcmFjazwvYT48L2JvZHk+PC9o\r\n"
    "dG1sPg==\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"ignored.pdf\"\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n"
    "--outer--\r\n";

static void multipart_alternative(void **state)
{
    struct dr_email *em = parse_ok(alt_msg);

    assert_string_equal(em->subject, "Café €5 order");
    assert_string_equal(em->from.name, "Jürgen Müller");
    assert_string_equal(em->from.address, "Juergen.Mueller@example.de");
    assert_int_equal(em->to.n, 2);
    assert_string_equal(em->to.v[0].name, "Ann Lee");
    assert_string_equal(em->to.v[0].address, "ann@example.org");
    assert_null(em->to.v[1].name);
    assert_int_equal(em->cc.n, 2); /* group flattened */
    assert_string_equal(em->cc.v[1].address, "dave@example.org");
    assert_string_equal(em->reply_to.v[0].address, "help@example.org");
    assert_true(em->has_date);
    assert_string_equal(em->date, "2003-07-01T10:52:37+02:00");
    assert_int_equal(em->date_ms, INT64_C(1057049557000));
    assert_string_equal(em->message_id, "abc.123@mail.example.de");
    assert_string_equal(em->in_reply_to, "parent@example.org");
    assert_int_equal(em->n_references, 2);
    assert_string_equal(em->references[0], "root@example.org");
    assert_string_equal(em->references[1], "parent@example.org");
    assert_string_equal(em->text, "Grüße aus Köln, your order shipped.");
    assert_non_null(em->html);
    assert_non_null(strstr(em->html, "<script>"));
    /* title, style and script gone; entities decoded; block breaks; link kept */
    assert_string_equal(em->html_text,
                        "Grüße & hello\n\nPrice: €10 now\nTrack (https://track.example/a?b=1&c=2)");
    assert_int_equal(em->n_attachments, 1);
    assert_string_equal(em->attachments[0].filename, "Rechnung März.pdf");
    assert_string_equal(em->attachments[0].content_type, "application/pdf");
    assert_int_equal(em->attachments[0].size, 19); /* decoded bytes, not base64 */
    assert_int_equal(em->n_headers, 2);
    assert_int_equal(em->n_warnings, 0);
    dr_email_destroy(em);
}

static void related_and_inline_image(void **state)
{
    const char *msg =
        "From: a@example.org\n"
        "Content-Type: multipart/related; boundary=r\n\n"
        "--r\nContent-Type: text/html\n\n<p>See <img src=cid:x alt=\"logo\"> here</p>\n"
        "--r\nContent-Type: image/png\nContent-ID: <x>\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--r--\n";
    struct dr_email *em = parse_ok(msg);

    assert_string_equal(em->html_text, "See logo here");
    assert_string_equal(em->text, em->html_text); /* HTML-only mail: text is rendered */
    assert_int_equal(em->n_attachments, 1);
    assert_string_equal(em->attachments[0].content_type, "image/png");
    assert_int_equal(em->attachments[0].size, 8);
    dr_email_destroy(em);
}

static void html_rendering(void **state)
{
    const char *msg =
        "From: a@example.org\nContent-Type: text/html; charset=utf-8\n\n"
        "<!DOCTYPE html><html><head><style>.x{}</style><script>var a='<p>';</script></head>"
        "<body><!-- hidden <p> -->\n<h1>Title</h1><ul><li>one</li><li>two &lt;b&gt;</li></ul>"
        "<table><tr><td>A</td><td>B</td></tr><tr><td>C</td></tr></table>"
        "<pre>  keep\n   this</pre>a&zwnj;&nbsp;b &#8212; &quot;q&quot; &bogus; 5 < 6"
        "<a href=\"https://x.example/\">https://x.example/</a><br><br><br><br>end</body></html>";
    struct dr_email *em = parse_ok(msg);

    assert_string_equal(em->html_text, "Title\n\n- one\n- two <b>\nA B\nC\n  keep\n   this\n"
                                       "a b — \"q\" &bogus; 5 < 6https://x.example/\n\nend");
    dr_email_destroy(em);
}

static void calendar_parts(void **state)
{
    const char *files[] = {"calendar/simple-mime.txt", "calendar/complex-mime.txt"};

    for (size_t i = 0; i < 2; i++) {
        size_t len;
        char *raw = email_data(files[i], &len);
        struct dr_email *em = NULL;

        assert_non_null(raw);
        assert_int_equal(dr_email_parse(raw, len, NULL, &em), DR_OK);
        assert_true(em->n_calendar >= 1);
        for (size_t k = 0; k < em->n_calendar; k++) {
            assert_string_equal(em->calendar[k].method, "REQUEST");
            assert_non_null(strstr(em->calendar[k].ics, "BEGIN:VCALENDAR"));
            assert_non_null(strstr(em->calendar[k].ics, "END:VCALENDAR"));
            assert_null(strchr(em->calendar[k].ics, '\r'));
        }
        dr_email_destroy(em);
        free(raw);
    }
}

static void calendar_method_from_body(void **state)
{
    const char *msg = "From: a@example.org\nContent-Type: application/ics\n\n"
                      "BEGIN:VCALENDAR\nmethod:reply\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n";
    struct dr_email *em = parse_ok(msg);

    assert_int_equal(em->n_calendar, 1);
    assert_string_equal(em->calendar[0].method, "REPLY");
    dr_email_destroy(em);
}

static void unknown_charset(void **state)
{
    const char *msg = "From: a@example.org\nContent-Type: text/plain; charset=x-foo\n\n"
                      "caf\xe9 ok\n";
    struct dr_email *em = parse_ok(msg);

    assert_string_equal(em->text, "café ok\n");
    assert_true(has_warning(em, "unknown charset \"x-foo\""));
    dr_email_destroy(em);
}

/* Charset labels as the WHATWG Encoding Standard (and mail clients) read them: ISO-8859-1,
 * Latin-1 and US-ASCII are windows-1252, ks_c_5601-1987 and EUC-KR are windows-949. */
static void whatwg_charset_labels(void **state)
{
    static const struct {
        const char *charset, *body, *text;
    } cases[] = {
        {"iso-8859-1", "\x93quoted\x94 caf\xe9 \x80 5\n",
         "\u201cquoted\u201d caf\u00e9 \u20ac 5\n"},
        {"ISO-8859-1", "\x96 dash\n", "\u2013 dash\n"},
        {"latin1", "\x93quoted\x94\n", "\u201cquoted\u201d\n"},
        {"\"iso_8859-1\"", "it\x92s\n", "it\u2019s\n"},
        {"us-ascii", "\x93quoted\x94\n", "\u201cquoted\u201d\n"},
        /* UTF-8 labelled US-ASCII (common from automated senders) is read as UTF-8; bytes that
         * do not form UTF-8 are windows-1252 */
        {"us-ascii", "caf\xc3\xa9\n", "caf\u00e9\n"},
        {"us-ascii", "caf\xe9 \x93q\x94\n", "caf\u00e9 \u201cq\u201d\n"},
        {"iso-8859-1", "caf\xc3\xa9\n", "caf\u00c3\u00a9\n"}, /* a Latin-1 label is believed */
        {"windows-1252", "\x93ok\x94\n", "\u201cok\u201d\n"},
        /* U+B620 is in windows-949 only, not in EUC-KR */
        {"ks_c_5601-1987", "\x8c\x63\xb9\xe6 \xbe\xc8\xb3\xe7\n", "\ub620\ubc29 \uc548\ub155\n"},
        {"euc-kr", "\x8c\x63\xb9\xe6\n", "\ub620\ubc29\n"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[512];
        struct dr_email *em;

        snprintf(msg, sizeof(msg),
                 "From: a@example.org\nContent-Type: text/plain; charset=%s\n"
                 "Content-Transfer-Encoding: 8bit\n\n%s",
                 cases[i].charset, cases[i].body);
        em = parse_ok(msg);
        if (strcmp(em->text, cases[i].text) != 0) {
            fail_msg("charset %s: \"%s\", expected \"%s\"", cases[i].charset, em->text,
                     cases[i].text);
        }
        dr_email_destroy(em);
    }
}

static void invalid_utf8_is_repaired(void **state)
{
    const char *msg = "From: a@example.org\nSubject: bad \xff\xfe subject\n"
                      "Content-Type: text/plain; charset=utf-8\n\nok \xc3\x28 end\0tail";
    struct dr_email *em = NULL;

    assert_int_equal(dr_email_parse(msg, strlen(msg) + 5, NULL, &em), DR_OK);
    assert_true(g_utf8_validate(em->subject, -1, NULL));
    assert_true(g_utf8_validate(em->text, -1, NULL));
    assert_int_equal(strlen(em->text), em->text_len); /* no NUL inside */
    assert_non_null(strstr(em->text, "tail"));
    dr_email_destroy(em);
}

/* ---- hostile input --------------------------------------------------------------------- */

static void deep_nesting(void **state)
{
    GString *m = g_string_new("From: a@example.org\nSubject: deep\n");
    struct dr_email *em;

    for (int i = 0; i < 200; i++) {
        g_string_append_printf(m, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    }
    g_string_append(m, "Content-Type: text/plain\n\ndeepest\n");
    for (int i = 199; i >= 0; i--) {
        g_string_append_printf(m, "--b%d--\n", i);
    }
    em = parse_ok(m->str);
    assert_true(has_warning(em, "nesting deeper than 20"));
    assert_null(em->text); /* the only text sits below the limit */
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

static void many_parts(void **state)
{
    GString *m = g_string_new("From: a@example.org\nContent-Type: multipart/mixed; boundary=x\n\n");
    struct dr_email *em;

    for (int i = 0; i < 10000; i++) {
        g_string_append_printf(m, "--x\nContent-Type: application/octet-stream; name=f%d\n\n%d\n",
                               i, i);
    }
    g_string_append(m, "--x--\n");
    em = parse_ok(m->str);
    assert_true(has_warning(em, "more than 500 MIME parts"));
    assert_true(em->n_attachments < 500);
    assert_true(em->n_attachments > 400);
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

static const char fwd_carrier[] =
    "From: UPS <mcinfo@ups.com>\r\nSubject: Your package has shipped\r\n"
    "Content-Type: text/plain\r\n\r\n"
    "Tracking number 1Z999AA10123456784\r\n";

/* The budget of attached messages is spent level by level: a thread attached first that carries
 * 8 forwards of its own does not keep the carrier's email attached second from being read. */
static void forwards_read_breadth_first(void **state)
{
    GString *m = g_string_new("From: me@example.com\r\nSubject: Fwd: two things\r\n"
                              "MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=top\r\n\r\n--top\r\n"
                              "Content-Type: text/plain\r\n\r\nsee attached\r\n");
    struct dr_email *em;
    const char *second;

    (void)state;
    g_string_append(m, "--top\r\nContent-Type: message/rfc822\r\n\r\n"
                       "From: friend@example.com\r\nSubject: thread\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/mixed; boundary=mid\r\n\r\n--mid\r\n"
                       "Content-Type: text/plain\r\n\r\nold thread\r\n");
    for (int i = 0; i < 8; i++) {
        g_string_append(m, "--mid\r\nContent-Type: message/rfc822\r\n\r\n"
                           "From: x@example.com\r\nSubject: old\r\n\r\nnothing here\r\n");
    }
    g_string_append(m, "--mid--\r\n--top\r\nContent-Type: message/rfc822\r\n\r\n");
    g_string_append(m, fwd_carrier);
    g_string_append(m, "--top--\r\n");
    em = parse_ok(m->str);
    second = em->n_forwarded > 1 && em->forwarded[1]->subject ? em->forwarded[1]->subject : "-";
    print_message("n_forwarded=%zu, second=%s\n", em->n_forwarded, second);
    assert_int_equal(em->n_forwarded, 2);
    assert_string_equal(second, "Your package has shipped");
    assert_non_null(em->forwarded[1]->text);
    assert_non_null(strstr(em->forwarded[1]->text, "1Z999AA10123456784"));
    /* still 8 in all: the thread's own forwards get what is left, and a warning says so */
    assert_int_equal(em->forwarded[0]->n_forwarded, 6);
    assert_true(has_warning(em, "attached messages beyond 8 in all or 3 levels deep"));
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

/* Wide and deep attached messages stay bounded: 8 in all, read in the order attached, and no
 * more than 3 levels. */
static void forwards_bounded(void **state)
{
    GString *m = g_string_new("From: me@example.com\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=top\r\n\r\n");
    struct dr_email *em, *f;
    int levels = 0;

    (void)state;
    for (int i = 0; i < 20; i++) {
        g_string_append_printf(m,
                               "--top\r\nContent-Type: message/rfc822\r\n\r\n"
                               "From: x@example.com\r\nSubject: n%d\r\n\r\nbody %d\r\n",
                               i, i);
    }
    g_string_append(m, "--top--\r\n");
    em = parse_ok(m->str);
    assert_int_equal(em->n_forwarded, 8);
    for (size_t i = 0; i < em->n_forwarded; i++) {
        char want[16];

        snprintf(want, sizeof(want), "n%zu", i);
        assert_string_equal(em->forwarded[i]->subject, want);
    }
    assert_true(has_warning(em, "attached messages beyond 8 in all"));
    dr_email_destroy(em);

    /* 6 levels of forwards of forwards: 3 read */
    g_string_assign(m, "From: x@example.com\r\nSubject: d6\r\n\r\ninnermost\r\n");
    for (int d = 5; d >= 0; d--) {
        char *in = g_strdup(m->str);

        g_string_printf(m,
                        "From: x@example.com\r\nSubject: d%d\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                        "--b%d\r\nContent-Type: message/rfc822\r\n\r\n%s--b%d--\r\n",
                        d, d, d, in, d);
        g_free(in);
    }
    em = parse_ok(m->str);
    for (f = em; f->n_forwarded > 0; f = f->forwarded[0]) {
        assert_int_equal(f->n_forwarded, 1);
        levels++;
    }
    assert_int_equal(levels, 3);
    assert_true(has_warning(em, "3 levels deep were not read"));
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

/* The part limit cuts the message's walk short, not the attached messages it had already found:
 * each is read within a part limit of its own. */
static void forwards_read_when_parts_run_out(void **state)
{
    GString *m = g_string_new("From: me@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=top\r\n\r\n");
    struct dr_email *em, *f;

    (void)state;
    g_string_append(m, "--top\r\nContent-Type: message/rfc822\r\n\r\n");
    g_string_append(m, fwd_carrier);
    g_string_append(m, "--top\r\nContent-Type: message/rfc822\r\n\r\n"
                       "From: friend@example.com\r\nSubject: album\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: multipart/mixed; boundary=in\r\n\r\n");
    for (int i = 0; i < 600; i++) { /* a photo album in an attached message, */
        g_string_append(m, "--in\r\nContent-Type: image/png\r\n"
                           "Content-Disposition: attachment\r\n\r\nx\r\n");
    }
    g_string_append(m, "--in--\r\n");
    for (int i = 0; i < 600; i++) { /* and another attached to the message itself */
        g_string_append(m, "--top\r\nContent-Type: image/png\r\n"
                           "Content-Disposition: attachment\r\n\r\nx\r\n");
    }
    g_string_append(m, "--top--\r\n");
    em = parse_ok(m->str);
    print_message("n_forwarded=%zu\n", em->n_forwarded);
    assert_true(has_warning(em, "more than 500 MIME parts"));
    assert_true(em->n_attachments <= 500);
    assert_int_equal(em->n_forwarded, 2);
    f = em->forwarded[0];
    assert_string_equal(f->subject, "Your package has shipped");
    assert_non_null(f->text);
    assert_non_null(strstr(f->text, "1Z999AA10123456784"));
    f = em->forwarded[1];
    assert_string_equal(f->subject, "album");
    assert_true(has_warning(f, "more than 500 MIME parts"));
    assert_true(f->n_attachments <= 500);
    assert_true(f->n_attachments > 400);
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

static void too_big(void **state)
{
    size_t n = 30u * 1024 * 1024;
    char *raw = malloc(n);
    struct dr_email *em = (struct dr_email *)raw; /* must be reset to NULL */

    assert_non_null(raw);
    memset(raw, 'a', n);
    memcpy(raw, "From: a@example.org\n\n", 21);
    assert_int_equal(dr_email_parse(raw, n, NULL, &em), DR_ETOOBIG);
    assert_null(em);
    assert_non_null(strstr(dr_email_error_reason(), "exceeds"));
    free(raw);
}

static void boundary_bomb(void **state)
{
    GString *m = g_string_new("From: a@example.org\n");
    struct dr_email *em = (struct dr_email *)m;
    uint64_t t0;

    /* 1000 nested multiparts, then 100,000 lines GMime must check against all of them */
    for (int i = 0; i < 1000; i++) {
        g_string_append_printf(m, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    }
    for (int i = 0; i < 100000; i++) {
        g_string_append(m, "--x\n");
    }
    t0 = (uint64_t)g_get_monotonic_time();
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_ETOOBIG);
    assert_null(em);
    assert_non_null(strstr(dr_email_error_reason(), "too complex"));
    assert_true((uint64_t)g_get_monotonic_time() - t0 < 1000000); /* refused, not parsed */
    g_string_free(m, TRUE);
}

/* 200,000 sibling parts in 7 MB: GMime would build every one (seconds of CPU, hundreds of MB)
 * although only max_parts are read; the message is read up to a bound instead, with a warning. */
static void many_parts_bounded(void **state)
{
    GString *m = g_string_new("From: a@example.org\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=x\n\n"
                              "--x\nContent-Type: text/plain\n\nfirst part\n");
    struct dr_email *em = NULL;
    uint64_t t0;
    int cut = 0;

    for (int i = 0; i < 200000; i++) {
        g_string_append(m, "--x\nContent-Type: text/plain\n\nhi\n");
    }
    g_string_append(m, "--x--\n");
    t0 = (uint64_t)g_get_monotonic_time();
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_OK);
    assert_true((uint64_t)g_get_monotonic_time() - t0 < 2000000);
    assert_non_null(em);
    assert_non_null(strstr(em->text, "first part"));
    for (size_t i = 0; i < em->n_warnings; i++) {
        cut |= strstr(em->warnings[i], "read up to byte") != NULL;
    }
    assert_true(cut);
    dr_email_destroy(em);

    /* under the bound nothing is cut */
    g_string_assign(m, "From: a@example.org\nMIME-Version: 1.0\n"
                       "Content-Type: multipart/mixed; boundary=x\n\n");
    for (int i = 0; i < 600; i++) {
        g_string_append(m, "--x\nContent-Type: text/plain\n\nhi\n");
    }
    g_string_append(m, "--x--\n");
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_OK);
    for (size_t i = 0; i < em->n_warnings; i++) {
        assert_null(strstr(em->warnings[i], "read up to byte"));
    }
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

/* 1,500,000 header fields in 10 MB cost GMime a GB: such a message is refused before it parses,
 * in the message's header, a part's or an attached message's; long ordinary mail is not. */
static void header_flood_refused(void **state)
{
    static const char *const starts[] = {
        "From: a@example.org\n",
        "From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n",
        "From: a@example.org\nContent-Type: message/rfc822\n\nFrom: c@example.org\n",
    };
    struct dr_email *em = NULL;
    GString *m = g_string_new(NULL);
    uint64_t t0;

    for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
        g_string_assign(m, starts[k]);
        for (int i = 0; i < 300000; i++) {
            g_string_append(m, "X-H: a\n");
        }
        g_string_append(m, "\nbody\n");
        t0 = (uint64_t)g_get_monotonic_time();
        assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_ETOOBIG);
        assert_null(em);
        assert_non_null(strstr(dr_email_error_reason(), "header lines"));
        assert_true((uint64_t)g_get_monotonic_time() - t0 < 1000000);
    }

    /* one field of megabytes, folded or not: a Subject of 3,000,000 words, 200,000 addresses */
    g_string_assign(m, "From: a@example.org\nSubject:");
    for (int i = 0; i < 3000000; i++) {
        g_string_append(m, i % 100 ? " a" : "\n a");
    }
    g_string_append(m, "\n\nbody\n");
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_ETOOBIG);
    assert_non_null(strstr(dr_email_error_reason(), "header field of"));
    g_string_assign(m, "From: a@example.org\nTo: ");
    for (int i = 0; i < 200000; i++) {
        g_string_append_printf(m, "u%d@example.com,", i);
    }
    g_string_append(m, "\n\nbody\n");
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_ETOOBIG);
    assert_null(em);

    /* a long body of "key: value" lines in paragraphs, and many ordinary headers */
    g_string_assign(m, "From: a@example.org\n");
    for (int i = 0; i < 500; i++) {
        g_string_append(m, "Received: from x by y\n");
    }
    g_string_append(m, "\n");
    for (int i = 0; i < 300000; i++) {
        g_string_append(m, i % 50 ? "INFO: line\n" : "\nINFO: line\n");
    }
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_OK);
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

/* Generated regression input (tests/data/regress/email/): "To: g:g:g:..." nests 50,000 groups,
 * which GMime parses one call deeper each and which overflowed the stack. */
static void address_group_bomb(void **state)
{
    size_t n = 0;
    char *raw = email_data("../regress/email/nested_groups.eml", &n);
    struct dr_email *em = (struct dr_email *)&n; /* must be reset to NULL */
    GString *m;
    int warned = 0;
    cJSON *p;
    char *to;

    assert_non_null(raw);
    assert_int_equal(dr_email_parse(raw, n, NULL, &em), DR_ETOOBIG);
    assert_null(em);
    assert_non_null(strstr(dr_email_error_reason(), "nested too deeply"));

    /* the same field in an attached message, folded over lines, and as a Cc */
    m = g_string_new("From: a@example.org\nSubject: fwd\nContent-Type: multipart/mixed; "
                     "boundary=b\n\n--b\nContent-Type: text/plain\n\nsee below\n--b\n"
                     "Content-Type: message/rfc822\n\nFrom: c@example.org\nCC :");
    for (int i = 0; i < 50000; i++) {
        g_string_append(m, i % 50 ? "g:" : "\n g:");
    }
    g_string_append(m, "\nSubject: inner\n\nbody\n--b--\n");
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_ETOOBIG);
    assert_null(em);

    /* colons elsewhere do not count: a group, a long header, and a body full of them */
    g_string_assign(m, "From: a@example.org\nTo: undisclosed-recipients:;\nX-Data: ");
    for (int i = 0; i < 20000; i++) {
        g_string_append(m, "k:");
    }
    g_string_append(m, "\n\n");
    for (int i = 0; i < 20000; i++) {
        g_string_append(m, "to: a:b:c\n");
    }
    assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_OK);
    assert_non_null(em);
    dr_email_destroy(em);
    em = NULL;
    g_string_free(m, TRUE);

    /* the pre-parsed fields of a backfill payload: the field is dropped with a warning */
    to = strndup(raw + 4, n - 6);
    p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "from", "a@example.org");
    cJSON_AddStringToObject(p, "to", to);
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
    assert_int_equal(em->to.n, 0);
    for (size_t i = 0; i < em->n_warnings; i++) {
        warned |= strstr(em->warnings[i], "nested too deeply") != NULL;
    }
    assert_true(warned);
    assert_string_equal(em->from.address, "a@example.org");
    dr_email_destroy(em);
    cJSON_Delete(p);
    free(to);
    free(raw);
}

static void long_body_is_cut(void **state)
{
    struct dr_email_limits lim;
    GString *m = g_string_new("From: a@example.org\nContent-Type: text/plain; charset=utf-8\n\n");
    struct dr_email *em = NULL;

    dr_email_limits_init(&lim);
    lim.max_text_bytes = 1000;
    for (int i = 0; i < 2000; i++) {
        g_string_append(m, "é"); /* 2 bytes: the cut must not split one */
    }
    assert_int_equal(dr_email_parse(m->str, m->len, &lim, &em), DR_OK);
    assert_true(em->text_len <= 1000);
    assert_true(em->text_len >= 998);
    assert_true(g_utf8_validate(em->text, -1, NULL));
    assert_true(has_warning(em, "cut at 1000 bytes"));
    dr_email_destroy(em);
    g_string_free(m, TRUE);
}

static void header_only(void **state)
{
    struct dr_email *em = parse_ok("Subject: only headers\nFrom: a@example.org\n");

    assert_string_equal(em->subject, "only headers");
    assert_true(em->text == NULL || em->text[0] == '\0');
    assert_int_equal(em->n_attachments, 0);
    dr_email_destroy(em);
}

static void not_an_email(void **state)
{
    unsigned char junk[4096];
    struct dr_email *em = (struct dr_email *)junk;
    uint32_t x = 2463534242u;

    for (size_t i = 0; i < sizeof(junk); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    junk[0] = 0x89; /* never a header name character */
    assert_int_equal(dr_email_parse((char *)junk, sizeof(junk), NULL, &em), DR_EINVAL);
    assert_null(em);
    assert_true(strlen(dr_email_error_reason()) > 0);
    em = (struct dr_email *)junk;
    assert_int_equal(dr_email_parse("", 0, NULL, &em), DR_EINVAL);
    assert_null(em);
}

static void missing_boundary(void **state)
{
    struct dr_email *em = parse_ok("From: a@example.org\nContent-Type: multipart/mixed\n\n"
                                   "just some text\n");

    assert_true(has_warning(em, "without boundary"));
    assert_string_equal(em->text, "just some text\n");
    dr_email_destroy(em);

    em = parse_ok("From: a@example.org\nContent-Type: multipart/alternative; boundary=zz\n\n"
                  "--zz\nContent-Type: text/plain\n\nunterminated\n");
    assert_true(has_warning(em, "truncated"));
    assert_string_equal(em->text, "unterminated\n");
    dr_email_destroy(em);
}

/*
 * A multipart whose Content-Type has no boundary parameter (left out, or "multipart/mixed
 * boundary=x" without the ';') while its content is MIME parts: GMime finds no part in it and
 * keeps all of it as the prologue. The parts are read with the boundary their first line gives,
 * at the top or nested; plain text there is text; structure that cannot be read is refused with
 * the reason, never dropped.
 */
static void missing_boundary_parts_read(void **state)
{
    static const char top[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Your parcel 1Z999AA10123456784 ships today.\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<p>Your parcel <b>1Z999AA10123456784</b> ships today.</p>\r\n--b1--\r\n";
    static const char nested[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        "--outer\r\nContent-Type: multipart/alternative\r\n\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour parcel ships today.\r\n--b1--\r\n"
        "--outer\r\nContent-Type: application/pdf; name=\"label.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer--\r\n";
    static const char nested_text[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        "--outer\r\nContent-Type: multipart/alternative\r\n\r\n"
        "Plain words in a nested multipart.\r\n--outer--\r\n";
    static const char unreadable[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed\r\n\r\n"
        "--\"not a boundary\"\r\nContent-Type: text/plain\r\n\r\nHidden words.\r\n";
    struct dr_email *em = NULL;

    em = parse_ok(top);
    if (!em->text || !strstr(em->text, "1Z999AA10123456784")) {
        print_message("top: text [%s], html %s\n", em->text ? em->text : "(none)",
                      em->html ? "present" : "(none)");
    }
    assert_non_null(em->text);
    assert_non_null(strstr(em->text, "Your parcel 1Z999AA10123456784 ships today."));
    assert_non_null(em->html);
    assert_non_null(strstr(em->html, "<b>1Z999AA10123456784</b>"));
    dr_email_destroy(em);

    em = parse_ok(nested);
    if (!em->text || em->n_attachments != 1) {
        print_message("nested: text [%s], %zu attachments\n", em->text ? em->text : "(none)",
                      em->n_attachments);
    }
    assert_non_null(em->text);
    assert_non_null(strstr(em->text, "Your parcel ships today."));
    assert_int_equal(em->n_attachments, 1);
    dr_email_destroy(em);

    em = parse_ok(nested_text);
    if (!em->text) {
        print_message("nested text: no text\n");
    }
    assert_non_null(em->text);
    assert_non_null(strstr(em->text, "Plain words in a nested multipart."));
    dr_email_destroy(em);

    em = NULL;
    assert_int_equal(dr_email_parse(unreadable, strlen(unreadable), NULL, &em), DR_EINVAL);
    assert_null(em);
    assert_non_null(strstr(dr_email_error_reason(), "boundary"));

    /* boundless multiparts nested in each other, each read again whole: a bounded cost, then
     * refused with the reason */
    {
        GString *m = g_string_new("From: a@example.org\nContent-Type: multipart/mixed\n\n");
        for (int i = 0; i < 15; i++) {
            g_string_append_printf(m, "--b%d\nContent-Type: multipart/mixed\n\n", i);
        }
        g_string_append(m, "--b15\nContent-Type: text/plain\n\nend\n");
        for (int i = 0; i < 2000; i++) {
            g_string_append(m, "padding line of the innermost part\n");
        }
        em = NULL;
        assert_int_equal(dr_email_parse(m->str, m->len, NULL, &em), DR_EINVAL);
        assert_null(em);
        assert_non_null(strstr(dr_email_error_reason(), "nested"));
        g_string_free(m, TRUE);
    }
}

/* A multipart without a boundary deeper than max_depth is skipped like any multipart there, with
 * the nesting warning: never read again, never a refusal of the whole email, never text. */
static void missing_boundary_past_depth_skipped(void **state)
{
    static const char unreadable[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        "--a\r\nContent-Type: text/plain\r\n\r\nVisible words.\r\n"
        "--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nInner words.\r\n"
        "--b\r\nContent-Type: multipart/mixed\r\n\r\n"
        "--\"not a boundary\"\r\nContent-Type: text/plain\r\n\r\nHidden words.\r\n"
        "--b--\r\n--a--\r\n";
    static const char text[] =
        "From: Shop <shop@example.com>\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        "--a\r\nContent-Type: text/plain\r\n\r\nVisible words.\r\n"
        "--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nInner words.\r\n"
        "--b\r\nContent-Type: multipart/alternative\r\n\r\n"
        "Words past the depth.\r\n--b--\r\n--a--\r\n";
    struct dr_email_limits lim;
    struct dr_email *em = NULL;

    (void)state;
    dr_email_limits_init(&lim);
    lim.max_depth = 2;

    if (dr_email_parse(unreadable, strlen(unreadable), &lim, &em) != DR_OK) {
        print_message("unreadable: refused: %s\n", dr_email_error_reason());
    }
    assert_non_null(em);
    assert_true(has_warning(em, "MIME nesting deeper than 2"));
    assert_non_null(em->text);
    assert_non_null(strstr(em->text, "Visible words."));
    assert_non_null(strstr(em->text, "Inner words."));
    assert_null(strstr(em->text, "Hidden words."));
    dr_email_destroy(em);

    em = NULL;
    assert_int_equal(dr_email_parse(text, strlen(text), &lim, &em), DR_OK);
    assert_non_null(em);
    assert_true(has_warning(em, "MIME nesting deeper than 2"));
    assert_non_null(em->text);
    assert_non_null(strstr(em->text, "Inner words."));
    assert_null(strstr(em->text, "Words past the depth."));
    dr_email_destroy(em);
}

/* An alternative inside a branch of another alternative that already chose plain text: its
 * HTML form is not wanted there (and was handed to GLib as a NULL list, a GLib-CRITICAL on
 * stderr; the tests run with G_DEBUG=fatal-criticals). */
static void nested_alternative(void **state)
{
    struct dr_email *em =
        parse_ok("From: a@example.org\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: multipart/alternative; boundary=\"A\"\r\n\r\n"
                 "--A\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
                 "--A\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
                 "--B\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n"
                 "--B\r\nContent-Type: multipart/alternative; boundary=\"C\"\r\n\r\n"
                 "--C\r\nContent-Type: text/html\r\n\r\n<p>inner html</p>\r\n"
                 "--C--\r\n--B--\r\n--A--\r\n");

    (void)state;
    assert_non_null(strstr(em->text, "inner plain"));
    assert_null(strstr(em->text, "inner html"));
    dr_email_destroy(em);
}

/* ---- JSON, fields, helpers --------------------------------------------------------------- */

static void json_shape(void **state)
{
    struct dr_email *em = parse_ok(alt_msg);
    cJSON *j = NULL;
    const char *keys[] = {"headers",   "message_id",  "in_reply_to", "references", "subject",
                          "from",      "to",          "cc",          "date",       "text",
                          "html_text", "attachments", "calendar",    "warnings"};

    assert_int_equal(dr_email_to_json(em, &j), DR_OK);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
    }
    assert_string_equal(dr_json_str(j, "subject"), em->subject);
    assert_string_equal(dr_json_str(cJSON_GetObjectItemCaseSensitive(j, "from"), "address"),
                        "Juergen.Mueller@example.de");
    assert_string_equal(dr_json_str(cJSON_GetObjectItemCaseSensitive(j, "headers"), "list-id"),
                        "Orders <orders.example.de>");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "to")), 2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "calendar")->child) ||
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "calendar")) == 0);
    {
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "attachments"), 0);
        int64_t size = 0;
        assert_int_equal(dr_json_i64(a, "size", &size), DR_OK);
        assert_int_equal(size, 19);
    }
    cJSON_Delete(j);
    dr_email_destroy(em);
}

static void from_fields(void **state)
{
    const char *js =
        "{\"subject\":\"  Hello\\n  world \",\"from\":\"Ann <Ann@Example.ORG>\","
        "\"to\":[\"bob@example.org\",{\"name\":\"Carol\",\"address\":\"carol@EXAMPLE.org\"}],"
        "\"cc\":\"Dave <dave@example.org>, "
        "eve@example.org\",\"date\":\"2026-11-27T10:00:00+01:00\","
        "\"message_id\":\"<m1@example.org>\",\"in_reply_to\":\"<p@example.org>\","
        "\"references\":\"<r@example.org> <p@example.org>\",\"body_html\":"
        "\"<p>Your parcel was <b>delivered</b></p><script>x</script>\"}";
    cJSON *p = cJSON_Parse(js);
    struct dr_email *em = NULL;

    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
    assert_string_equal(em->subject, "Hello world");
    assert_string_equal(em->from.name, "Ann");
    assert_string_equal(em->from.address, "Ann@example.org");
    assert_int_equal(em->to.n, 2);
    assert_string_equal(em->to.v[1].address, "carol@example.org");
    assert_int_equal(em->cc.n, 2);
    assert_string_equal(em->date, "2026-11-27T10:00:00+01:00");
    assert_int_equal(em->date_ms, INT64_C(1795770000000));
    assert_string_equal(em->message_id, "m1@example.org");
    assert_int_equal(em->n_references, 2);
    assert_string_equal(em->html_text, "Your parcel was delivered");
    assert_string_equal(em->text, "Your parcel was delivered");
    dr_email_destroy(em);
    cJSON_Delete(p);

    p = cJSON_Parse("{\"subject\":42}");
    em = (struct dr_email *)p;
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_EINVAL);
    assert_null(em);
    assert_non_null(strstr(dr_email_error_reason(), "subject"));
    cJSON_Delete(p);
    p = cJSON_Parse("{\"to\":[7]}");
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_EINVAL);
    cJSON_Delete(p);
    p = cJSON_Parse("[1]");
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_EINVAL);
    cJSON_Delete(p);
}

/*
 * A From that GMime reads leniently into another address than its text holds is no address:
 * "bob@example.com@evil.com" gave bob@example.com. The address is left out (a display name
 * stays) with a warning, by raw message and by pre-parsed field alike; well-formed addresses,
 * comments and quoted local parts included, are read as before.
 */
static void addresses_parse_cleanly(void **state)
{
    static const char *const bad[] = {
        "bob@example.com@evil.com",       "Bob <bob@example.com@evil.com>",
        "<bob@example.com>@evil.com",     "Bob <bob@example.com> <eve@evil.com>",
        "bob@example.com(note)@evil.com",
    };
    static const struct {
        const char *from, *address;
    } good[] = {
        {"bob@example.com", "bob@example.com"},
        {"Bob <Bob@Example.COM>", "Bob@example.com"},
        {"bob@example.com (Bob)", "bob@example.com"},
        {"Bob\r\n <bob@example.com>", "bob@example.com"},
        {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", "pete@silly.test"},
        {"\"bob smith\"@example.com", "\"bob smith\"@example.com"},
        {"\"Smith, Bob @ work\" <bob@example.com>", "bob@example.com"},
        {"bob@[192.0.2.1]", "bob@[192.0.2.1]"},
    };
    char msg[512], js[512];
    struct dr_email *em;
    cJSON *p;

    for (size_t i = 0; i < DR_ARRAY_LEN(bad); i++) {
        snprintf(msg, sizeof(msg),
                 "From: %s\r\nTo: dana@example.com\r\nSubject: Re: [poll:p1]\r\n"
                 "\r\n2 works\r\n",
                 bad[i]);
        em = parse_ok(msg);
        if (em->from.address) {
            print_message("From: %s -> %s\n", bad[i], em->from.address);
        }
        assert_null(em->from.address);
        assert_true(has_warning(em, "From: an address that does not parse cleanly"));
        dr_email_destroy(em);

        /* the same as a pre-parsed field */
        p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "from", bad[i]);
        assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
        assert_null(em->from.address);
        dr_email_destroy(em);
        cJSON_Delete(p);
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(good); i++) {
        snprintf(msg, sizeof(msg), "From: %s\r\nTo: dana@example.com\r\n\r\nhi\r\n", good[i].from);
        em = parse_ok(msg);
        if (!em->from.address || strcmp(em->from.address, good[i].address) != 0) {
            print_message("From: %s -> %s\n", good[i].from,
                          em->from.address ? em->from.address : "(none)");
        }
        assert_non_null(em->from.address);
        assert_string_equal(em->from.address, good[i].address);
        assert_false(has_warning(em, "does not parse cleanly"));
        dr_email_destroy(em);
    }

    /* {name, address} objects: the address must be an addr-spec */
    snprintf(js, sizeof(js),
             "{\"from\":{\"name\":\"Bob\",\"address\":\"bob@example.com@evil.com\"},"
             "\"to\":[{\"address\":\"a@@example.com\"},{\"address\":\"ann@example.com\"}]}");
    p = cJSON_Parse(js);
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
    assert_string_equal(em->from.name, "Bob");
    assert_null(em->from.address);
    assert_int_equal(em->to.n, 1);
    assert_string_equal(em->to.v[0].address, "ann@example.com");
    assert_true(has_warning(em, "not an addr-spec"));
    dr_email_destroy(em);
    cJSON_Delete(p);

    assert_true(dr__email_addr_spec_ok("a.b+c@example.com"));
    assert_true(dr__email_addr_spec_ok("\"a@b\"@example.com"));
    assert_false(dr__email_addr_spec_ok("a@b@example.com"));
    assert_false(dr__email_addr_spec_ok("a..b@example.com"));
    assert_false(dr__email_addr_spec_ok("@example.com"));
    assert_false(dr__email_addr_spec_ok("a@"));
    assert_false(dr__email_addr_spec_ok("a@example..com"));
    assert_false(dr__email_addr_spec_ok("a b@example.com"));
    assert_false(dr__email_addr_spec_ok("a@[1.2.3.4"));
}

static void plus_token(void **state)
{
    char *t = NULL;

    assert_int_equal(dr_email_plus_token("poll+Ab3_x-9@example.org", "poll", &t), DR_OK);
    assert_string_equal(t, "Ab3_x-9");
    free(t);
    assert_int_equal(dr_email_plus_token("POLL+tok@example.org", "poll", &t), DR_OK);
    free(t);
    assert_int_equal(dr_email_plus_token("other+tok@example.org", "poll", &t), DR_ENOTFOUND);
    assert_int_equal(dr_email_plus_token("poll@example.org", NULL, &t), DR_ENOTFOUND);
    assert_int_equal(dr_email_plus_token("poll+@example.org", NULL, &t), DR_EINVAL);
    assert_int_equal(dr_email_plus_token("poll+a b@example.org", NULL, &t), DR_EINVAL);
    assert_int_equal(dr_email_plus_token("no-at-sign", NULL, &t), DR_ENOTFOUND);
    assert_null(t);
}

static void recipients(void **state)
{
    struct dr_email *em = parse_ok("From: a@example.org\nTo: Poll <Poll+T1@Example.org>, "
                                   "x@example.org\nCc: X@example.org\n"
                                   "Delivered-To: poll+t2@example.org\n\nhi\n");
    char **v = NULL;
    size_t n = 0;

    assert_int_equal(dr_email_recipients(em, &v, &n), DR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "poll+t1@example.org");
    assert_string_equal(v[1], "x@example.org");
    assert_string_equal(v[2], "poll+t2@example.org");
    dr_email_strv_free(v, n);
    dr_email_destroy(em);
}

static void shipment_cues_corpus(void **state)
{
    static const char *carriers[] = {"amazon_delivered",           "amazon_shipped",
                                     "amazon_uk_out_for_delivery", "dhl_out_for_delivery",
                                     "fedex_out_for_delivery",     "gls_delivered",
                                     "informed_delivery",          "royal_mail_uk_delivered",
                                     "ups_out_for_delivery",       "usps_out_for_delivery"};
    static const char *replies[] = {"android", "aol",     "apple_mail",  "apple_mail_2",
                                    "comcast", "gmail",   "hotmail",     "iphone",
                                    "outlook", "sparrow", "thunderbird", "yahoo"};

    for (size_t i = 0; i < sizeof(carriers) / sizeof(carriers[0]); i++) {
        char rel[128];
        size_t len = 0;
        char *raw;
        struct dr_email *em = NULL;
        struct dr_email_shipment_cues c;

        snprintf(rel, sizeof(rel), "carriers/%s.eml", carriers[i]);
        raw = email_data(rel, &len);
        assert_non_null(raw);
        assert_int_equal(dr_email_parse(raw, len, NULL, &em), DR_OK);
        c = dr_email_shipment_cues(em);
        print_message("%-28s score %3d carrier %s status %s\n", carriers[i], c.score,
                      c.carrier ? c.carrier : "-", dr_email_ship_status_name(c.status));
        assert_true(c.score >= DR_EMAIL_SHIPMENT_THRESHOLD);
        assert_non_null(c.carrier);
        /* the file name starts with the carrier ("royal_mail_uk" -> "royal_mail") */
        if (strcmp(c.carrier, "usps") == 0 && strncmp(carriers[i], "informed", 8) == 0) {
            /* USPS Informed Delivery */
        } else {
            assert_int_equal(strncmp(carriers[i], c.carrier, strlen(c.carrier)), 0);
        }
        dr_email_destroy(em);
        free(raw);
    }
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        char rel[128];
        size_t len = 0;
        char *raw;
        struct dr_email *em = NULL;

        snprintf(rel, sizeof(rel), "replies/%s.eml", replies[i]);
        raw = email_data(rel, &len);
        assert_non_null(raw);
        assert_int_equal(dr_email_parse(raw, len, NULL, &em), DR_OK);
        assert_true(dr_email_shipment_cues(em).score < DR_EMAIL_SHIPMENT_THRESHOLD);
        dr_email_destroy(em);
        free(raw);
    }
}

static void shipment_cues_languages(void **state)
{
    static const struct {
        const char *subject;
        enum dr_email_ship_status st;
    } cases[] = {
        {"Il tuo pacco è stato spedito", DR_EMAIL_SHIP_SHIPPED},
        {"Ordine consegnato", DR_EMAIL_SHIP_DELIVERED},
        {"Ihre Sendung wurde zugestellt", DR_EMAIL_SHIP_DELIVERED},
        {"Twoja PRZESYŁKA została doręczona", DR_EMAIL_SHIP_DELIVERED},
        {"Your package is out for delivery", DR_EMAIL_SHIP_OUT_FOR_DELIVERY},
        {"Votre colis a été expédié", DR_EMAIL_SHIP_SHIPPED},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *p = cJSON_CreateObject();
        struct dr_email *em = NULL;
        struct dr_email_shipment_cues c;

        cJSON_AddStringToObject(p, "subject", cases[i].subject);
        cJSON_AddStringToObject(p, "from", "Shop <news@shop.example>");
        assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
        c = dr_email_shipment_cues(em);
        /* a status word alone is a strong cue, not proof: the sender is unknown here */
        assert_true(c.subject_score >= 30);
        assert_int_equal(c.status, cases[i].st);
        assert_int_equal(c.sender_score, 0);
        dr_email_destroy(em);
        cJSON_Delete(p);
    }
}

/* The UTF-8 check with its ASCII fast path answers as GLib's g_utf8_validate() does. */
/* Every sequence of one to three bytes, and the four-byte ones around their limits, alone and
 * after ASCII that ends inside and outside an eight-byte step: dr_utf8_valid_text() as GLib. */
static void utf8_valid_every_sequence(void **state)
{
    static const unsigned char tails[] = {0x00, 0x2F, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                          0xA0, 0xBF, 0xC0, 0xC2, 0xF4, 0xFF};
    char buf[40];

    (void)state;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            /* the third byte matters to the three- and four-byte forms */
            for (unsigned c = 0; c < 256; c += a >= 0xE0 && a <= 0xF4 ? 1 : 17) {
                for (size_t lead = 0; lead < 12; lead += a >= 0xE0 ? 5 : 11) {
                    size_t n = lead;
                    memset(buf, 'x', lead);
                    buf[n++] = (char)a;
                    buf[n++] = (char)b;
                    buf[n++] = (char)c;
                    for (size_t len = lead; len <= n; len++) {
                        assert_int_equal(dr_utf8_valid_text(buf, len) != 0,
                                         g_utf8_validate(buf, (gssize)len, NULL) != 0);
                    }
                }
            }
        }
    }
    for (unsigned a = 0xF0; a < 0x100; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (size_t i = 0; i < sizeof(tails); i++) {
                for (size_t j = 0; j < sizeof(tails); j++) {
                    for (size_t lead = 0; lead < 10; lead += 3) {
                        size_t n = lead;
                        memset(buf, 'y', lead);
                        buf[n++] = (char)a;
                        buf[n++] = (char)b;
                        buf[n++] = (char)tails[i];
                        buf[n++] = (char)tails[j];
                        memcpy(buf + n, "abcdefghij", 10);
                        n += 10;
                        for (size_t len = lead; len <= n; len += len < lead + 5 ? 1 : 5) {
                            assert_int_equal(dr_utf8_valid_text(buf, len) != 0,
                                             g_utf8_validate(buf, (gssize)len, NULL) != 0);
                        }
                    }
                }
            }
        }
    }
}

/* CRLF to LF in a text body, against the byte loop that did it before: every arrangement of CR,
 * LF and a letter up to six bytes, at the end of the part and before more text. */
static void crlf_dropped_as_before(void **state)
{
    static const char head[] =
        "From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    char body[16], want[16], msg[128];

    (void)state;
    for (size_t len = 1; len <= 6; len++) {
        size_t combos = 1;
        for (size_t i = 0; i < len; i++) {
            combos *= 3;
        }
        for (size_t code = 0; code < combos; code++) {
            struct dr_email *em = NULL;
            size_t n = 0, w = 0, x = code;

            for (size_t i = 0; i < len; i++, x /= 3) {
                body[n++] = "\r\na"[x % 3];
            }
            body[n++] = 'z';
            for (size_t r = 0; r < n; r++) {
                if (body[r] == '\r' && r + 1 < n && body[r + 1] == '\n') {
                    continue;
                }
                want[w++] = body[r];
            }
            want[w] = '\0';
            memcpy(msg, head, sizeof(head) - 1);
            memcpy(msg + sizeof(head) - 1, body, n);
            assert_int_equal(dr_email_parse(msg, sizeof(head) - 1 + n, NULL, &em), DR_OK);
            assert_non_null(em->text);
            assert_string_equal(em->text, want);
            dr_email_destroy(em);
        }
    }
}

static void utf8_valid_like_glib(void **state)
{
    static const char *const pieces[] = {
        "a",    "plain ascii ", "\xc3\xa9",     "\xe2\x82\xac", "\xf0\x9f\x93\xa6",
        "\xc3", "\x80",         "\xed\xa0\x80", "\xc0\xaf",     "\xf4\x90\x80\x80",
        "\n",   "\xff"};
    unsigned seed = 7;
    char buf[256];

    (void)state;
    assert_true(dr_utf8_valid_text("", 0));
    assert_true(dr_utf8_valid_text("0123456789abcdef", 16));
    assert_false(dr_utf8_valid_text("0123456\0"
                                    "89abcdef",
                                    16)); /* a NUL in the fast path */
    assert_false(dr_utf8_valid_text("0123456789abcde\xc3", 16));
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, k = (size_t)(seed % 24);
        for (size_t i = 0; i < k; i++) {
            const char *p;
            seed = seed * 1103515245u + 12345u;
            p = pieces[(seed >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
            if (n + strlen(p) >= sizeof(buf)) {
                break;
            }
            memcpy(buf + n, p, strlen(p));
            n += strlen(p);
        }
        if (round % 7 == 0 && n > 0) {
            buf[(seed >> 4) % n] = '\0';
        }
        seed = seed * 1103515245u + 12345u;
        assert_int_equal(dr_utf8_valid_text(buf, n) != 0,
                         g_utf8_validate(buf, (gssize)n, NULL) != 0);
    }
}

/* ---- threads ----------------------------------------------------------------------------- */

struct job {
    const char *raw;
    size_t len;
    const char *want_text;
    int failures;
};

static void *worker(void *arg)
{
    struct job *j = arg;

    for (int i = 0; i < 40; i++) {
        struct dr_email *em = NULL;
        cJSON *js = NULL;
        if (dr_email_parse(j->raw, j->len, NULL, &em) || !em->text ||
            strcmp(em->text, j->want_text) != 0 || dr_email_to_json(em, &js)) {
            j->failures++;
        }
        cJSON_Delete(js);
        dr_email_destroy(em);
    }
    return NULL;
}

static void parallel_parsing(void **state)
{
    static const char *files[] = {"carriers/amazon_shipped.eml",
                                  "carriers/fedex_out_for_delivery.eml",
                                  "carriers/gls_delivered.eml", "stalwart/thirdparty/005.eml"};
    pthread_t th[4];
    struct job jobs[4];
    char *raws[4];
    struct dr_email *ref[4];

    for (int i = 0; i < 4; i++) {
        raws[i] = email_data(files[i], &jobs[i].len);
        assert_non_null(raws[i]);
        jobs[i].raw = raws[i];
        assert_int_equal(dr_email_parse(raws[i], jobs[i].len, NULL, &ref[i]), DR_OK);
        assert_non_null(ref[i]->text);
        jobs[i].want_text = ref[i]->text;
        jobs[i].failures = 0;
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
        dr_email_destroy(ref[i]);
        free(raws[i]);
    }
}

/* What the parser counted before: line by line, then '=' by '='. */
static void boundary_work_before(const char *raw, size_t len, size_t *lines, size_t *bounds)
{
    const char *p = raw, *end = raw + len;

    *lines = 0;
    *bounds = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            (*lines)++;
        }
        p = nl ? nl + 1 : end;
    }
    for (p = raw; p < end; p++) {
        p = memchr(p, '=', (size_t)(end - p));
        if (!p) {
            break;
        }
        if (p - raw >= 8 && (p[-1] | 0x20) == 'y' &&
            g_ascii_strncasecmp(p - 8, "boundary", 8) == 0) {
            (*bounds)++;
        }
    }
}

static void boundary_work_same(const char *raw, size_t len)
{
    size_t wl, wb, gl, gb;
    char *exact = malloc(len ? len : 1); /* an exact allocation: reads past it are caught */

    assert_non_null(exact);
    memcpy(exact, raw, len);
    boundary_work_before(raw, len, &wl, &wb);
    dr__email_boundary_work(exact, len, &gl, &gb);
    free(exact);
    if (wl != gl || wb != gb) {
        fail_msg("%zu bytes \"%.40s\": %zu lines, %zu boundaries vs %zu, %zu before", len, raw, gl,
                 gb, wl, wb);
    }
}

/* The boundary work counts against the previous loops: corpus mail at every length, and noise. */
static void boundary_work_counts(void **state)
{
    static const char *const files[] = {"calendar/complex-mime.txt", "replies/gmail.eml",
                                        "carriers/amazon_shipped.eml",
                                        "stalwart/malformed/001.eml"};
    static const char pieces[] = "--\n\r-=yY boundaryBOUNDARY=\"b\"\n--b\n--b--\nx";
    uint32_t x = 88172645u;
    char buf[400];

    (void)state;
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len = 0;
        char *raw = email_data(files[f], &len);
        if (!raw) {
            continue;
        }
        for (size_t n = 0; n <= len; n += n < 300 ? 1 : 97) {
            size_t off = n % 7;
            boundary_work_same(raw + off, n - off);
        }
        free(raw);
    }
    for (int round = 0; round < 20000; round++) {
        size_t len;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        len = x % sizeof(buf);
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[k] = pieces[x % (sizeof(pieces) - 1)];
        }
        boundary_work_same(buf, len);
    }
}

/* The ':' count that lets most mail skip the address-field scan agrees with a plain count, over
 * block edges (255 x 16 bytes) and unaligned starts; past max it only has to say "more". */
static void colon_count(void **state)
{
    static char buf[9000];
    uint32_t x = 2463534242u;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t len, off, want = 0, max;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        len = round < 100 ? (size_t)round * 90 : x % sizeof(buf);
        off = x % 8 < len ? x % 8 : 0;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* dense or sparse colons, so a lane of a block can reach 255 */
            buf[k] = (round % 3 == 0 || x % 5 == 0) ? ':' : (char)('a' + x % 26);
        }
        for (size_t k = off; k < len; k++) {
            want += buf[k] == ':';
        }
        max = round % 2 ? SIZE_MAX : want / 2;
        if (want <= max) {
            assert_int_equal(dr__email_count_colons(buf + off, len - off, max), want);
        } else {
            assert_true(dr__email_count_colons(buf + off, len - off, max) > max);
        }
    }
}

/* ---- the HTML body read on demand (dr__email_parse_lazy()) ------------------------------- */

struct lazy_load {
    struct dr__email_lazy *lazy;
    struct dr_email *em;
    int calls;
};

static size_t lazy_compared, lazy_loaded, lazy_deferred;

static int lazy_load(void *arg)
{
    struct lazy_load *l = arg;

    l->calls++;
    return dr__email_lazy_html(l->lazy, l->em);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *email_json(struct dr_email *em)
{
    cJSON *o = NULL;
    char *s;

    /* the warnings as a set: the lazy parse finds them in another order */
    if (em->n_warnings) {
        qsort(em->warnings, em->n_warnings, sizeof(*em->warnings), cmp_str);
    }
    assert_int_equal(dr_email_to_json(em, &o), DR_OK);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static char *class_json(const struct dr_email *em, const struct dr_email_class *c)
{
    cJSON *o = dr__email_class_to_json(em, c);
    char *s = cJSON_PrintUnformatted(o);

    cJSON_Delete(o);
    return s;
}

/* The lazy parse against dr__email_parse_ex(): the same classification (with the HTML body read
 * when the classifier asks for it), and once the HTML body is read the same email. */
static void lazy_same(const char *path, char *raw, size_t len)
{
    struct dr_email *want = NULL, *got = NULL;
    struct dr__email_lazy *lz = NULL;
    int werr = dr__email_parse_ex(raw, len, NULL, DR__EMAIL_NO_HTML_TEXT, &want);
    int gerr = dr__email_parse_lazy(raw, len, NULL, 0, &got, &lz);
    struct lazy_load l = {.lazy = lz, .em = got};
    struct dr_email_class_opts opts = {.load_html = lazy_load, .html_arg = &l};
    struct dr_email_class wc, gc;
    char *a, *b;

    assert_int_equal(gerr, werr);
    if (werr) {
        assert_null(lz);
        return;
    }
    if (!lz) {
        assert_true(got->html == NULL || got->text == NULL || want->html != NULL);
    } else {
        assert_null(got->html);
        assert_non_null(got->text);
        lazy_deferred++;
    }
    assert_int_equal(dr__email_classify(want, NULL, &wc), DR_OK);
    assert_int_equal(dr__email_classify(got, &opts, &gc), DR_OK);
    a = class_json(want, &wc);
    b = class_json(got, &gc);
    if (strcmp(a, b) != 0) {
        fail_msg("%s: classified\n%s\nlazily\n%s", path, a, b);
    }
    lazy_loaded += l.calls > 0;
    free(a);
    free(b);
    dr__email_class_cleanup(&wc);
    dr__email_class_cleanup(&gc);
    assert_int_equal(dr__email_lazy_html(lz, got), DR_OK);
    assert_int_equal(dr__email_lazy_html(lz, got), DR_OK); /* once */
    a = email_json(want);
    b = email_json(got);
    if (strcmp(a, b) != 0) {
        fail_msg("%s: parsed\n%s\nlazily\n%s", path, a, b);
    }
    free(a);
    free(b);
    dr__email_lazy_free(lz);
    dr_email_destroy(want);
    dr_email_destroy(got);
    lazy_compared++;
}

static void lazy_html_same_as_parse(void **state)
{
    static const char *const dirs[] = {"email", "shipment", "replies"};
    /* a carrier's notice whose text names no number: the classifier reads the HTML */
    static const char notice[] =
        "From: UPS <mcinfo@ups.com>\r\nTo: a@example.org\r\nSubject: Your package has shipped\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour package is on its way.\r\n"
        "--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<p>Tracking number: <a href=3D\"https://www.ups.com/track?tracknum=3D1Z879E930346834440\">"
        "1Z879E930346834440</a> =E9</p>\r\n"
        "--b--\r\n";
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    char dir[1024], *copy = dr_xstrndup(notice, sizeof(notice) - 1);

    (void)state;
    dr_email_global_init();
    lazy_same("notice", copy, sizeof(notice) - 1);
    assert_int_equal(lazy_loaded, 1);
    free(copy);
    for (size_t i = 0; i < DR_ARRAY_LEN(dirs); i++) {
        snprintf(dir, sizeof(dir), "%s/%s", root, dirs[i]);
        assert_true(corpus_each(dir, 1, lazy_same) > 0);
    }
    print_message("%zu emails, %zu with the HTML body left unread\n", lazy_compared, lazy_deferred);
    assert_true(lazy_compared > 100);
    assert_true(lazy_deferred > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multipart_alternative),
        cmocka_unit_test(nested_alternative),
        cmocka_unit_test(related_and_inline_image),
        cmocka_unit_test(html_rendering),
        cmocka_unit_test(calendar_parts),
        cmocka_unit_test(calendar_method_from_body),
        cmocka_unit_test(unknown_charset),
        cmocka_unit_test(whatwg_charset_labels),
        cmocka_unit_test(invalid_utf8_is_repaired),
        cmocka_unit_test(deep_nesting),
        cmocka_unit_test(many_parts),
        cmocka_unit_test(forwards_read_breadth_first),
        cmocka_unit_test(forwards_bounded),
        cmocka_unit_test(forwards_read_when_parts_run_out),
        cmocka_unit_test(too_big),
        cmocka_unit_test(boundary_bomb),
        cmocka_unit_test(many_parts_bounded),
        cmocka_unit_test(header_flood_refused),
        cmocka_unit_test(address_group_bomb),
        cmocka_unit_test(long_body_is_cut),
        cmocka_unit_test(header_only),
        cmocka_unit_test(not_an_email),
        cmocka_unit_test(missing_boundary),
        cmocka_unit_test(missing_boundary_parts_read),
        cmocka_unit_test(missing_boundary_past_depth_skipped),
        cmocka_unit_test(json_shape),
        cmocka_unit_test(from_fields),
        cmocka_unit_test(addresses_parse_cleanly),
        cmocka_unit_test(plus_token),
        cmocka_unit_test(recipients),
        cmocka_unit_test(shipment_cues_corpus),
        cmocka_unit_test(shipment_cues_languages),
        cmocka_unit_test(utf8_valid_like_glib),
        cmocka_unit_test(crlf_dropped_as_before),
        cmocka_unit_test(utf8_valid_every_sequence),
        cmocka_unit_test(parallel_parsing),
        cmocka_unit_test(boundary_work_counts),
        cmocka_unit_test(colon_count),
        cmocka_unit_test(lazy_html_same_as_parse),
    };
    /* deliberately not calling dr_email_global_init(): parsing must initialise on its own */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
