/*
 * Tests src/processors/meeting_poll/reply.c with replies written for this project: the quote
 * headers and signatures of common mail clients in several languages, and hostile input.
 * The public corpora run in test_reply_corpora.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/reply.h"
#include "dr/util.h"

struct rcase {
    const char *name;
    const char *text;
    const char *reply;
    int quoted;
};

static const struct rcase cases[] = {
    {"gmail en",
     "Works for me.\n\nOn Mon, Mar 2, 2026 at 9:15 AM Dana <dana@example.com> wrote:\n"
     "> Does Tuesday work?\n",
     "Works for me.", 1},
    {"gmail wrapped 3 lines",
     "Sure\n\nOn Mon, Mar 2, 2026 at 9:15 AM Dana Organizer from Events\n"
     "<dana@example.com>\nwrote:\n\n> Does Tuesday work?\n",
     "Sure", 1},
    {"german gmail",
     "Passt mir.\n\nAm Mo., 2. M\xc3\xa4rz 2026 um 09:15 Uhr schrieb Dana "
     "<dana@example.com>:\n> Passt Dienstag?\n",
     "Passt mir.", 1},
    {"german apple",
     "Ja.\n\n> Am 02.03.2026 um 09:15 schrieb Dana <dana@example.com>:\n>\n> Hallo\n", "Ja.", 1},
    {"french",
     "Oui, mardi.\n\nLe lun. 2 mars 2026 \xc3\xa0 09:15, Dana <dana@example.com> a "
     "\xc3\xa9"
     "crit :\n> Mardi ?\n",
     "Oui, mardi.", 1},
    {"spanish",
     "S\xc3\xad.\n\nEl lun, 2 mar 2026 a las 9:15, Dana (<dana@example.com>) "
     "escribi\xc3\xb3:\n> \xc2\xbfMartes?\n",
     "S\xc3\xad.", 1},
    {"italian",
     "Va bene.\n\nIl giorno lun 2 mar 2026 alle ore 09:15 Dana <dana@example.com> ha "
     "scritto:\n> Marted\xc3\xac?\n",
     "Va bene.", 1},
    {"dutch", "Prima.\n\nOp ma 2 mrt. 2026 om 09:15 schreef Dana <dana@example.com>:\n> Dinsdag?\n",
     "Prima.", 1},
    {"polish", "Tak.\n\nW dniu 2.03.2026 o 09:15, Dana <dana@example.com> pisze:\n> Wtorek?\n",
     "Tak.", 1},
    {"russian",
     "\xd0\x94\xd0\xb0.\n\n2 \xd0\xbc\xd0\xb0\xd1\x80\xd1\x82\xd0\xb0 2026 \xd0\xb3., "
     "\xd0\x94\xd0\xb0\xd0\xbd\xd0\xb0 <dana@example.com> \xd0\xbd\xd0\xb0\xd0\xbf\xd0"
     "\xb8\xd1\x81\xd0\xb0\xd0\xbb(\xd0\xb0):\n> ?\n",
     "\xd0\x94\xd0\xb0.", 1},
    /* Gmail puts the sender first in these two, and wraps the header when it is long */
    {"turkish gmail",
     "Evet, uygun.\n\nDana <dana@example.com>, 2 Mar 2026 Pzt, 09:15 tarihinde \xc5\x9f"
     "unu yazd\xc4\xb1:\n> Sal\xc4\xb1 uygun mu?\n",
     "Evet, uygun.", 1},
    {"turkish gmail wrapped",
     "Evet, uygun.\n\nDana Organizer from Events <dana@example.com>, 2 Mar 2026 Pzt, 09:15\n"
     "tarihinde \xc5\x9funu yazd\xc4\xb1:\n\n> Sal\xc4\xb1 uygun mu?\n",
     "Evet, uygun.", 1},
    {"hungarian gmail",
     "Igen.\n\nDana <dana@example.com> ezt \xc3\xadrta (id\xc5\x91pont: 2026. m\xc3\xa1rc. 2., "
     "H, 9:15):\n> Kedd j\xc3\xb3?\n",
     "Igen.", 1},
    {"hungarian gmail wrapped",
     "Igen.\n\nDana Organizer from Events <dana@example.com> ezt \xc3\xadrta (id\xc5\x91pont: "
     "2026.\nm\xc3\xa1rc. 2., H, 9:15):\n\n> Kedd j\xc3\xb3?\n",
     "Igen.", 1},
    /* a name and <address> in a participant's own lines, a verb at a line's end, no date: prose */
    {"address in prose, sent at the end",
     "Tuesday 10:00 works for me.\nPlease loop in Bob <bob@example.com>, he has the list\n"
     "of rooms I sent:\nWednesday: yes\nThursday: no\n",
     "Tuesday 10:00 works for me.\nPlease loop in Bob <bob@example.com>, he has the list\n"
     "of rooms I sent:\nWednesday: yes\nThursday: no",
     0},
    {"address in prose, wrote at the end",
     "Yes for Monday.\nI forwarded your poll to Ana <ana@example.com> (she is out until\n"
     "Friday) and this is what she wrote:\nMonday: no, Tuesday: yes\n",
     "Yes for Monday.\nI forwarded your poll to Ana <ana@example.com> (she is out until\n"
     "Friday) and this is what she wrote:\nMonday: no, Tuesday: yes",
     0},
    {"outlook en",
     "OK for me\n\n________________________________\nFrom: Dana <dana@example.com>\n"
     "Sent: Monday, March 2, 2026 9:15 AM\nTo: Kim\nSubject: Meeting\n\nTuesday?\n",
     "OK for me", 1},
    {"outlook de",
     "Gerne.\n\nVon: Dana <dana@example.com>\nGesendet: Montag, 2. M\xc3\xa4rz 2026 "
     "09:15\nAn: Kim\nBetreff: Termin\n\nDienstag?\n",
     "Gerne.", 1},
    {"outlook fr",
     "Avec plaisir.\n\nDe : Dana <dana@example.com>\nEnvoy\xc3\xa9 : lundi 2 mars "
     "2026 09:15\n\xc3\x80 : Kim\nObjet : R\xc3\xa9union\n\nMardi ?\n",
     "Avec plaisir.", 1},
    {"outlook it",
     "Va bene.\n\nDa: Dana <dana@example.com>\nInviato: luned\xc3\xac 2 marzo 2026 "
     "09:15\nA: Kim\nOggetto: Riunione\n\nMarted\xc3\xac?\n",
     "Va bene.", 1},
    {"original message", "Fine.\n\n-----Original Message-----\nFrom: Dana\nTuesday?\n", "Fine.", 1},
    {"ursprungliche", "Gut.\n\n-----Urspr\xc3\xbcngliche Nachricht-----\nVon: Dana\nDienstag?\n",
     "Gut.", 1},
    {"begin forwarded",
     "See below.\n\nBegin forwarded message:\n\nFrom: Dana <dana@example.com>\n"
     "Subject: Meeting\n\nTuesday?\n",
     "See below.", 1},
    {"forward kept",
     "FYI\n\n---------- Forwarded message ---------\nFrom: Dana "
     "<dana@example.com>\nDate: Mon, Mar 2, 2026\n\nTuesday?",
     "FYI\n\n---------- Forwarded message ---------\nFrom: Dana <dana@example.com>\nDate: Mon, "
     "Mar 2, 2026\n\nTuesday?",
     0},
    {"plain quoting", "Yes\n> Does Tuesday work?\n> Dana\n", "Yes", 1},
    {"one stray quote is text", "Use this:\n>>> print(1)\nThat's it.",
     "Use this:\n>>> print(1)\nThat's it.", 0},
    {"inline reply",
     "On Mon, Mar 2, 2026 at 9:15 AM Dana <dana@example.com> wrote:\n"
     "> 1. Tuesday?\n\nyes\n\n> 2. Wednesday?\n\nno\n",
     "yes\n\nno", 1},
    {"iphone",
     "Works\n\nSent from my iPhone\n\n> On 2 Mar 2026, at 09:15, Dana "
     "<dana@example.com> wrote:\n> Tuesday?\n",
     "Works", 1},
    {"outlook mobile", "Works\n\nGet Outlook for iOS\n", "Works", 0},
    {"german mobile", "Passt\n\nVon meinem iPhone gesendet\n", "Passt", 0},
    {"sig dashes", "Works\n\n-- \nKim Lee\nACME", "Works", 0},
    {"sig dash name", "Works\n\n-Kim Lee", "Works", 0},
    {"sig dash name with particle", "1 works\n\n- Dan van Dyke", "1 works", 0},
    {"sig dash name with two particles", "Works\n\n- Maria de la Cruz", "Works", 0},
    {"dash answer is text", "Hi Dana,\n\n- Wednesday works", "Hi Dana,\n\n- Wednesday works", 0},
    {"dash yes is text", "Hi Dana,\n\n- Yes", "Hi Dana,\n\n- Yes", 0},
    {"dash answer above quote",
     "Hi Dana,\n\n- Tuesday is fine\n\nOn Mon, Mar 2, 2026 at 9:15 AM Dana <d@example.com> "
     "wrote:\n> Which day?\n",
     "Hi Dana,\n\n- Tuesday is fine", 1},
    {"sent from my desk is text", "Sure\n\nSent from my desk, which is nicer than my phone.",
     "Sure\n\nSent from my desk, which is nicer than my phone.", 0},
    {"shared line",
     "Great, thanks! On Mon, Mar 2, 2026 at 9:15 AM, Dana <d@example.com> wrote:\n"
     "> Tuesday?\n",
     "Great, thanks!", 1},
    {"crlf", "Yes\r\n\r\nOn Mon, Mar 2, 2026 at 9:15 AM Dana <d@example.com> wrote:\r\n> Tue?\r\n",
     "Yes", 1},
    {"prose starting with On", "On Tuesday I can come.\nOn Wednesday I can't.",
     "On Tuesday I can come.\nOn Wednesday I can't.", 0},
    {"prose with numbers and On",
     "On 2 and 3 I am free.\n\nOn Mon, Mar 2, 2026 at 9:15 AM Dana "
     "<d@example.com> wrote:\n> Which?\n",
     "On 2 and 3 I am free.", 1},
    {"empty", "", "", 0},
    {"only quote", "> a\n> b\n", "", 1},
};

static void table(void **state)
{
    int fails = 0;
    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        char *reply = NULL;
        int quoted = -1;
        assert_int_equal(dr_reply_extract(cases[i].text, strlen(cases[i].text), &reply, &quoted),
                         DR_OK);
        if (strcmp(reply, cases[i].reply) != 0 || quoted != cases[i].quoted) {
            fails++;
            print_message("%s: got [%s] quoted=%d, expected [%s] quoted=%d\n", cases[i].name, reply,
                          quoted, cases[i].reply, cases[i].quoted);
        }
        free(reply);
    }
    assert_int_equal(fails, 0);
}

static void keep_signature(void **state)
{
    const char *t = "Works\n\n-- \nKim\n\nOn Mon, Mar 2, 2026 at 9:15 AM Dana <d@example.com> "
                    "wrote:\n> Tue?\n";
    char *reply;
    assert_int_equal(dr_reply_extract_ex(t, strlen(t), DR_REPLY_KEEP_SIGNATURE, &reply, NULL),
                     DR_OK);
    assert_string_equal(reply, "Works\n\n-- \nKim");
    free(reply);
}

static void hostile(void **state)
{
    char *reply = (char *)1, *s;
    int quoted;
    size_t n;
    struct dr_buf b;

    assert_int_equal(dr_reply_extract(NULL, 5, &reply, &quoted), DR_EINVAL);
    assert_null(reply);
    assert_int_equal(dr_reply_extract("x", 1, NULL, &quoted), DR_EINVAL);

    n = DR_REPLY_MAX_INPUT + 1;
    s = malloc(n);
    memset(s, 'a', n);
    assert_int_equal(dr_reply_extract(s, n, &reply, &quoted), DR_ETOOBIG);
    assert_null(reply);

    /* header-looking lines over and over: "On 1, x" without the verb, many times per line */
    dr_buf_init(&b, DR_REPLY_MAX_INPUT);
    for (size_t i = 0; b.len < 3 * 1024 * 1024; i++) {
        dr_buf_appends(&b, "On 1, On 2, On 3, On 4 wrote wrote <a@b> On 5 Le 6 Am 7 ");
        if (i % 5 == 4) {
            dr_buf_appends(&b, i % 3 ? "\n" : "\n\n");
        }
    }
    assert_int_equal(dr_reply_extract(b.data, b.len, &reply, &quoted), DR_OK);
    free(reply);
    dr_buf_reset(&b);

    /* many short lines (over the line cap), NUL bytes, quote markers and headers mixed */
    for (size_t i = 0; b.len < 2 * 1024 * 1024; i++) {
        static const char *const parts[] = {"> q\n", "\n",        "On 1/2/3, x <a@b.c> wrote:\n",
                                            "t\n",   "From: a\n", "Sent: b\n",
                                            "-- \n", "\0\r"};
        dr_buf_append(&b, parts[i % 8], i % 8 == 7 ? 2 : strlen(parts[i % 8]));
    }
    assert_int_equal(dr_reply_extract(b.data, b.len, &reply, &quoted), DR_OK);
    assert_true(strlen(reply) <= b.len);
    free(reply);
    dr_buf_reset(&b);

    /* invalid UTF-8 */
    for (size_t i = 0; i < 100000; i++) {
        dr_buf_appendc(&b, (char)(0x80 + i % 0x80));
    }
    assert_int_equal(dr_reply_extract(b.data, b.len, &reply, &quoted), DR_OK);
    free(reply);
    dr_buf_cleanup(&b);
    free(s);
}

static void *worker(void *arg)
{
    intptr_t bad = 0;
    for (int k = 0; k < 200; k++) {
        const struct rcase *c = &cases[(size_t)(k + (intptr_t)arg) % DR_ARRAY_LEN(cases)];
        char *reply = NULL;
        int quoted;
        if (dr_reply_extract(c->text, strlen(c->text), &reply, &quoted) != DR_OK ||
            strcmp(reply, c->reply) != 0) {
            bad++;
        }
        free(reply);
    }
    return (void *)bad;
}

/* Worker threads call the extractor concurrently, including its first (initialising) call. */
static void threads(void **state)
{
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(threads), /* first, so the patterns are compiled under contention */
        cmocka_unit_test(table),
        cmocka_unit_test(keep_signature),
        cmocka_unit_test(hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
