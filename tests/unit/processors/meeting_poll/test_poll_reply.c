/*
 * Tests src/processors/meeting_poll/poll.c and poll_reply.c: the poll model and the reading of
 * free-text replies. Each reply in the table runs through dr_reply_extract() first, as the
 * processor does, so most carry the quoted poll email below them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/poll_reply.h"
#include "dr/reply.h"
#include "dr/util.h"

/* Mon 2 Mar 10:00, Tue 3 Mar 15:00, Wed 4 Mar 09:30, Fri 6 Mar 16:00 (UTC+1). */
static const char poll_json[] =
    "{\"type\":\"poll_created\",\"poll_id\":\"p-42\",\"organizer_user_id\":\"u1\",\"org_id\":"
    "\"o1\","
    "\"title\":\"Planning meeting\",\"slots\":["
    "{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00+01:00\",\"end\":\"2026-03-02T11:00:00+01:"
    "00\","
    "\"label\":\"Mon 2 Mar, 10:00\"},"
    "{\"slot_id\":\"b\",\"start\":\"2026-03-03T15:00:00+01:00\",\"end\":\"2026-03-03T16:00:00+01:"
    "00\","
    "\"label\":\"Tue 3 Mar, 15:00\"},"
    "{\"slot_id\":\"c\",\"start\":\"2026-03-04T09:30:00+01:00\",\"end\":\"2026-03-04T10:30:00+01:"
    "00\"},"
    "{\"slot_id\":\"d\",\"start\":\"2026-03-06T16:00:00+01:00\",\"end\":\"2026-03-06T17:00:00+01:"
    "00\","
    "\"label\":\"Friday afternoon\"}],"
    "\"participants\":[{\"email\":\"Kim.Lee@Example.com\",\"name\":\"Kim\"},"
    "{\"email\":\"sam@example.org\"}],\"message_id\":\"<poll-42@example.com>\","
    "\"reply_token\":\"t\"}";

/* Tue 3 Mar 15:00, Wed 4 Mar 10:00, Thu 5 Mar 14:00 (UTC), no labels. */
static const char three_json[] =
    "{\"poll_id\":\"p-3\",\"slots\":[{\"slot_id\":\"s1\",\"start\":\"2026-03-03T15:00:00Z\"},"
    "{\"slot_id\":\"s2\",\"start\":\"2026-03-04T10:00:00Z\"},"
    "{\"slot_id\":\"s3\",\"start\":\"2026-03-05T14:00:00Z\"}],\"participants\":[]}";

static const char single_json[] =
    "{\"poll_id\":\"p-1\",\"title\":\"Lunch\",\"slots\":[{\"slot_id\":\"only\","
    "\"start\":\"2026-03-05T12:30:00Z\",\"label\":\"Thursday lunch\"}],\"participants\":[]}";

#define QUOTE_GMAIL                                                                                \
    "\n\nOn Fri, Feb 27, 2026 at 9:00 AM Dana Organizer <dana@example.com> wrote:\n"               \
    "> Which times work for the planning meeting?\n"                                               \
    "> 1. Mon 2 Mar, 10:00\n"                                                                      \
    "> 2. Tue 3 Mar, 15:00\n"                                                                      \
    "> 3. Wed 4 Mar, 09:30\n"                                                                      \
    "> 4. Friday afternoon\n"                                                                      \
    "> Reply with the numbers that work for you, e.g. \"1 yes, 2 no\".\n"

#define QUOTE_OUTLOOK                                                                              \
    "\n\n________________________________\n"                                                       \
    "From: Dana Organizer <dana@example.com>\n"                                                    \
    "Sent: Friday, February 27, 2026 9:00 AM\n"                                                    \
    "To: Kim Lee <kim.lee@example.com>\n"                                                          \
    "Subject: Planning meeting: pick your times\n\n"                                               \
    "Which times work for the planning meeting?\n"                                                 \
    "1. Mon 2 Mar, 10:00\n2. Tue 3 Mar, 15:00\n3. Wed 4 Mar, 09:30\n4. Friday afternoon\n"

#define QUOTE_DE                                                                                   \
    "\n\nAm 27.02.2026 um 09:00 schrieb Dana Organizer <dana@example.com>:\n"                      \
    "> Welche Termine passen?\n> 1. Mon 2 Mar, 10:00\n> 2. Tue 3 Mar, 15:00\n"

#define QUOTE_FR                                                                                   \
    "\n\nLe ven. 27 f\xc3\xa9vr. 2026 \xc3\xa0 09:00, Dana Organizer <dana@example.com> a "        \
    "\xc3\xa9"                                                                                     \
    "crit :\n> Quels cr\xc3\xa9neaux vous conviennent ?\n> 1. lundi\n> 2. mardi\n"

#define QUOTE_ES                                                                                   \
    "\n\nEl vie, 27 feb 2026 a las 9:00, Dana Organizer (<dana@example.com>) escribi\xc3\xb3:\n"   \
    "> \xc2\xbf"                                                                                   \
    "Qu\xc3\xa9 horario os viene bien?\n> 1. lunes\n> 2. martes\n"

struct reply_case {
    const char *poll; /* "multi", "three" or "single" */
    const char *text;
    const char *expect;  /* "a=yes,b=no" in slot order; "" for none */
    const char *comment; /* expected comment */
};

static const struct reply_case cases[] = {
    {"multi", "1 yes, 2 no, 3 maybe" QUOTE_GMAIL, "a=yes,b=no,c=maybe", ""},
    {"multi", "1: \xe2\x9c\x93\n2: \xe2\x9c\x97\n3: \xe2\x9c\x93\n4: ?\n\nThanks,\nSam" QUOTE_GMAIL,
     "a=yes,b=no,c=yes,d=maybe", "Thanks,\nSam"},
    {"multi", "Slot 2 \xe2\x80\x93 works for me." QUOTE_GMAIL, "b=yes", ""},
    {"multi", "#3 no, sorry" QUOTE_GMAIL, "c=no", "sorry"},
    {"multi", "1-3 work, 4 doesn't." QUOTE_GMAIL, "a=yes,b=yes,c=yes,d=no", ""},
    {"multi", "1, 2 and 4 are fine" QUOTE_GMAIL, "a=yes,b=yes,d=yes", ""},
    {"multi", "Yes to 1 and 3" QUOTE_GMAIL, "a=yes,c=yes", ""},
    {"multi", "None except 2" QUOTE_GMAIL, "a=no,b=yes,c=no,d=no", ""},
    {"multi", "All work for me!\n\nCheers" QUOTE_GMAIL, "a=yes,b=yes,c=yes,d=yes", "Cheers"},
    {"multi", "Any of them is fine. Looking forward to it" QUOTE_GMAIL, "a=yes,b=yes,c=yes,d=yes",
     "Looking forward to it"},
    {"multi", "None of these work for me, sorry. Could we try the week after?" QUOTE_GMAIL,
     "a=no,b=no,c=no,d=no", "sorry. Could we try the week after?"},
    {"multi", "I can't make any of them." QUOTE_OUTLOOK, "a=no,b=no,c=no,d=no", ""},
    {"multi", "Tuesday 3pm works" QUOTE_GMAIL, "b=yes", ""},
    {"multi", "Tue 15:00 is fine" QUOTE_GMAIL, "b=yes", ""},
    {"multi", "The Monday one doesn't work, but Wednesday is great." QUOTE_GMAIL, "a=no,c=yes", ""},
    {"multi", "Wednesday at 9:30 is not possible for me" QUOTE_GMAIL, "c=no", ""},
    {"multi",
     "Hi Dana,\n\noui pour 1 et 3, non pour 2.\n\nBonne journ\xc3\xa9"
     "e" QUOTE_FR,
     "a=yes,b=no,c=yes",
     "Hi Dana,\n\nBonne journ\xc3\xa9"
     "e"},
    {"multi", "Ja f\xc3\xbcr 2 und 4, 1 vielleicht" QUOTE_DE, "a=maybe,b=yes,d=yes", ""},
    {"multi", "S\xc3\xad al 1, no al 3, quiz\xc3\xa1s el 4" QUOTE_ES, "a=yes,c=no,d=maybe", ""},
    {"multi", "peut-\xc3\xaatre pour le 2" QUOTE_FR, "b=maybe", ""},
    {"multi", "Friday afternoon works, the rest I can't do." QUOTE_GMAIL, "a=no,b=no,c=no,d=yes",
     ""},
    {"multi", "Mon 2 Mar, 10:00 works; Tue 3 Mar, 15:00 doesn't" QUOTE_GMAIL, "a=yes,b=no", ""},
    {"multi", "I'm available on the 4th." QUOTE_GMAIL, "c=yes", ""},
    {"multi", "Monday or Tuesday, both work" QUOTE_GMAIL, "a=yes,b=yes", ""},
    {"multi", "Not available on Friday" QUOTE_GMAIL, "d=no", ""},
    {"multi", "2 doesn't work for me but 3 does" QUOTE_GMAIL, "b=no,c=yes", ""},
    {"multi", "I can do 1 and 3 but not 2" QUOTE_GMAIL, "a=yes,b=no,c=yes", ""},
    {"multi", "All but 4" QUOTE_GMAIL, "a=yes,b=yes,c=yes,d=no", ""},
    {"multi", "Everything except the Friday one works." QUOTE_GMAIL, "a=yes,b=yes,c=yes,d=no", ""},
    {"multi", "Yes, 2 doesn't work though" QUOTE_GMAIL, "b=no", ""},
    {"multi", "1 \xf0\x9f\x91\x8d 2 \xf0\x9f\x91\x8e" QUOTE_GMAIL, "a=yes,b=no", ""},
    {"multi", "Option 4 - maybe" QUOTE_GMAIL, "d=maybe", ""},
    {"multi", "Wednesday if needed" QUOTE_GMAIL, "c=maybe", ""},
    {"multi", "Can we move this to next week instead?" QUOTE_GMAIL, "",
     "Can we move this to next week instead?"},
    {"multi", "Thursday works for me" QUOTE_GMAIL, "", "Thursday works for me"},
    {"multi", "2 and 3 are both fine, 1 is a no, 4 - not sure yet" QUOTE_GMAIL,
     "a=no,b=yes,c=yes,d=maybe", ""},
    {"multi", "Any time on Tuesday works" QUOTE_GMAIL, "b=yes", ""},
    {"multi", "Numbers 1 and 4 work for me.\n\nBest,\nKim" QUOTE_OUTLOOK, "a=yes,d=yes",
     "Best,\nKim"},
    {"multi", "Termin 2 passt, 3 geht nicht." QUOTE_DE, "b=yes,c=no", ""},
    {"multi", "Oui pour le mardi, non pour le lundi." QUOTE_FR, "a=no,b=yes", ""},
    {"multi", "El martes me va bien, el mi\xc3\xa9rcoles no." QUOTE_ES, "b=yes,c=no", ""},
    {"multi", "1 yes\n2 yes\n3 no\n4 no\n\nSent from my iPhone" QUOTE_GMAIL,
     "a=yes,b=yes,c=no,d=no", ""},
    {"multi", "- 1: yes\n- 2: no\n\n-- \nKim Lee\nACME Corp" QUOTE_GMAIL, "a=yes,b=no", ""},
    {"multi", "I'd prefer 2, but 1 also works" QUOTE_GMAIL, "a=yes,b=yes", ""},
    {"multi", "Hi! 4pm on Friday is perfect. See you then" QUOTE_GMAIL, "d=yes",
     "Hi! See you then"},
    {"multi", "The afternoon one on Tuesday works, the others don't. Sorry!" QUOTE_GMAIL,
     "a=no,b=yes,c=no,d=no", "Sorry!"},
    /* numbered lists, the form of the poll email's own list: "N." is a list marker */
    {"multi", "1. No\n2. No\n3. Yes" QUOTE_GMAIL, "a=no,b=no,c=yes", ""},
    {"multi", "1. no 2. yes 3. no" QUOTE_GMAIL, "a=no,b=yes,c=no", ""},
    {"multi", "1. no, 2. yes, 3. maybe, 4. no" QUOTE_GMAIL, "a=no,b=yes,c=maybe,d=no", ""},
    {"multi", "1. I can't\n2. \xe2\x9c\x93\n3. not sure\n4. ?" QUOTE_GMAIL,
     "a=no,b=yes,c=maybe,d=maybe", ""},
    {"multi", "Option 2. Thanks!" QUOTE_GMAIL, "b=yes", "Thanks!"},
    /* a short bullet at the end is an answer, not a "-Name" sign-off */
    {"multi", "Hi Dana,\n\n- Wednesday works" QUOTE_GMAIL, "c=yes", "Hi Dana"},
    /* words before a slot number do not part it from its answer */
    {"multi", "Hmm, 2 works" QUOTE_GMAIL, "b=yes", "Hmm"},
    {"multi", "Only 2 works for me" QUOTE_GMAIL, "b=yes", ""},
    {"multi", "I have 2 kids so afternoons are hard" QUOTE_GMAIL, "",
     "I have 2 kids so afternoons are hard"},
    /* "neither ... nor ..." names the slots that do not work */
    {"multi", "Neither 1 nor 2, but 3 is ok" QUOTE_GMAIL, "a=no,b=no,c=yes", ""},
    {"multi", "Neither 2 nor 4 works for me" QUOTE_GMAIL, "b=no,d=no", ""},
    /* after a day and "at", a number is the hour, not a slot number */
    {"three", "Tuesday at 3 is fine", "s1=yes", ""},
    {"three", "Thursday at 2 works" QUOTE_GMAIL, "s3=yes", ""},
    {"three", "Wed at 10 yes, Tue at 3 no", "s1=no,s2=yes", ""},
    {"three", "Tuesday at 5 works", "", "Tuesday at 5 works"},
    {"single", "Yes, see you there!", "only=yes", "see you there!"},
    {"single",
     "Sorry, I can't make it.\n\nOn Mon, Mar 2, 2026 at 8:00 AM Bo <bo@example.com> "
     "wrote:\n> Lunch on Thursday?\n> Thursday lunch",
     "only=no", "Sorry"},
    {"single", "Peut-\xc3\xaatre, je vous confirme demain.", "only=maybe",
     "je vous confirme demain."},
    {"single", "Thursday lunch works", "only=yes", ""},
};

static struct dr_poll *load_poll(const char *json)
{
    cJSON *j = dr_json_parse(json, strlen(json));
    struct dr_poll *p = NULL;
    assert_non_null(j);
    assert_int_equal(dr_poll_from_json(j, &p), DR_OK);
    cJSON_Delete(j);
    assert_non_null(p);
    return p;
}

static void render(const struct dr_poll_answer *a, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < a->n_responses; i++) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s=%s", i ? "," : "", a->responses[i].slot_id,
                 dr_poll_answer_name(a->responses[i].answer));
    }
}

static void reply_table(void **state)
{
    struct dr_poll *multi = load_poll(poll_json);
    struct dr_poll *single = load_poll(single_json);
    struct dr_poll *three = load_poll(three_json);
    int fails = 0;

    assert_true(DR_ARRAY_LEN(cases) >= 40);
    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        const struct reply_case *c = &cases[i];
        struct dr_poll_answer *a = NULL;
        char *reply = NULL, got[256];
        int quoted;

        assert_int_equal(dr_reply_extract(c->text, strlen(c->text), &reply, &quoted), DR_OK);
        assert_int_equal(dr_poll_reply_parse(strcmp(c->poll, "single") == 0  ? single
                                             : strcmp(c->poll, "three") == 0 ? three
                                                                             : multi,
                                             reply, &a),
                         DR_OK);
        render(a, got, sizeof(got));
        if (strcmp(got, c->expect) != 0 || strcmp(a->comment, c->comment) != 0) {
            fails++;
            print_message("case %zu: %s\n  reply:   [%s]\n  got:     [%s] comment [%s]\n"
                          "  expected [%s] comment [%s]\n",
                          i, c->text, reply, got, a->comment, c->expect, c->comment);
        }
        dr_poll_answer_destroy(a);
        free(reply);
    }
    dr_poll_destroy(multi);
    dr_poll_destroy(single);
    dr_poll_destroy(three);
    assert_int_equal(fails, 0);
}

static void answer_json(void **state)
{
    struct dr_poll *p = load_poll(poll_json);
    struct dr_poll_answer *a = NULL;
    char *json = NULL;
    cJSON *j;
    const cJSON *r;

    assert_int_equal(dr_poll_reply_parse(p, "1 yes, 2 maybe. Thanks \"all\"!", &a), DR_OK);
    a->participant = strdup("kim.lee@example.com");
    assert_int_equal(dr_poll_answer_to_json(a, &json), DR_OK);
    j = dr_json_parse(json, strlen(json));
    assert_non_null(j);
    assert_string_equal(dr_json_str(j, "poll_id"), "p-42");
    assert_string_equal(dr_json_str(j, "participant"), "kim.lee@example.com");
    assert_string_equal(dr_json_str(j, "comment"), "Thanks \"all\"!");
    r = cJSON_GetObjectItemCaseSensitive(j, "responses");
    assert_int_equal(cJSON_GetArraySize(r), 2);
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(r, 0), "slot_id"), "a");
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(r, 0), "answer"), "yes");
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(r, 1), "answer"), "maybe");
    cJSON_Delete(j);
    free(json);
    assert_int_equal(dr_poll_answer_to_json(NULL, &json), DR_EINVAL);
    dr_poll_answer_destroy(a);
    dr_poll_destroy(p);
}

static void partstat(void **state)
{
    enum dr_poll_answer_value v = DR_POLL_UNANSWERED;
    assert_int_equal(dr_poll_partstat_answer("ACCEPTED", &v), DR_OK);
    assert_int_equal(v, DR_POLL_YES);
    assert_int_equal(dr_poll_partstat_answer("tentative", &v), DR_OK);
    assert_int_equal(v, DR_POLL_MAYBE);
    assert_int_equal(dr_poll_partstat_answer("Declined", &v), DR_OK);
    assert_int_equal(v, DR_POLL_NO);
    assert_int_equal(dr_poll_partstat_answer("NEEDS-ACTION", &v), DR_ENOTFOUND);
    assert_int_equal(dr_poll_partstat_answer(NULL, &v), DR_EINVAL);
}

static void participants(void **state)
{
    struct dr_poll *p = load_poll(poll_json);
    const struct dr_poll_participant *pp;

    pp = dr_poll_find_participant(p, "kim.lee@example.com");
    assert_non_null(pp);
    assert_string_equal(pp->name, "Kim");
    assert_ptr_equal(dr_poll_find_participant(p, "KIM.LEE+polls@EXAMPLE.COM"), pp);
    assert_ptr_equal(dr_poll_find_participant(p, "Kim Lee <kim.lee+x@example.com>"), pp);
    assert_non_null(dr_poll_find_participant(p, "SAM@example.org"));
    assert_null(dr_poll_find_participant(p, "kim.lee@example.org"));
    assert_null(dr_poll_find_participant(p, "kimlee@example.com"));
    assert_null(dr_poll_find_participant(p, "not-an-address"));
    assert_null(dr_poll_find_participant(p, "@example.com"));
    assert_null(dr_poll_find_participant(p, NULL));
    dr_poll_destroy(p);
}

static void poll_json_errors(void **state)
{
    static const struct {
        const char *json;
        int err;
    } bad[] = {
        {"[]", DR_EINVAL},
        {"{\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\"}]}", DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[]}", DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\"}]}", DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\",\"start\":\"tomorrow\"}]}", DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\","
         "\"end\":\"2026-03-02T09:00:00Z\"}]}",
         DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\"},"
         "{\"slot_id\":\"a\",\"start\":\"2026-03-03T10:00:00Z\"}]}",
         DR_EINVAL},
        {"{\"poll_id\":7,\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\"}]}",
         DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\"}],"
         "\"participants\":[{\"name\":\"x\"}]}",
         DR_EINVAL},
        {"{\"poll_id\":\"p\",\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00Z\"}],"
         "\"participants\":[{\"email\":\"nobody\"}]}",
         DR_EINVAL},
    };
    struct dr_poll *p = (struct dr_poll *)1;
    struct dr_buf b;
    cJSON *j;

    for (size_t i = 0; i < DR_ARRAY_LEN(bad); i++) {
        j = dr_json_parse(bad[i].json, strlen(bad[i].json));
        assert_non_null(j);
        assert_int_equal(dr_poll_from_json(j, &p), bad[i].err);
        assert_null(p);
        cJSON_Delete(j);
    }
    assert_int_equal(dr_poll_from_json(NULL, &p), DR_EINVAL);

    /* too many slots */
    dr_buf_init(&b, 1 << 20);
    dr_buf_appends(&b, "{\"poll_id\":\"p\",\"slots\":[");
    for (int i = 0; i <= DR_POLL_MAX_SLOTS; i++) {
        dr_buf_printf(&b, "%s{\"slot_id\":\"s%d\",\"start\":\"2026-03-02T10:00:00Z\"}",
                      i ? "," : "", i);
    }
    dr_buf_appends(&b, "]}");
    j = dr_json_parse(b.data, b.len);
    assert_int_equal(dr_poll_from_json(j, &p), DR_ETOOBIG);
    assert_null(p);
    cJSON_Delete(j);
    dr_buf_cleanup(&b);
}

/* Hostile replies: bounded time, a clear error or a well-formed answer, never a crash. */
static void hostile(void **state)
{
    struct dr_poll *p = load_poll(poll_json);
    struct dr_poll_answer *a = NULL;
    char *s;
    size_t n;

    /* a 100 KB line is over the limit */
    n = 100 * 1024;
    s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    assert_int_equal(dr_poll_reply_parse(p, s, &a), DR_ETOOBIG);
    assert_null(a);

    /* just under the limit: one long line of digits and words */
    n = DR_POLL_REPLY_MAX;
    for (size_t i = 0; i < n; i++) {
        s[i] = "1 yes-2,no "[i % 11];
    }
    s[n] = '\0';
    assert_int_equal(dr_poll_reply_parse(p, s, &a), DR_OK);
    assert_true(a->n_responses <= p->n_slots);
    dr_poll_answer_destroy(a);

    /* 10,000 numbers */
    {
        struct dr_buf b;
        dr_buf_init(&b, DR_POLL_REPLY_MAX);
        for (int i = 1; i <= 10000 && b.len < DR_POLL_REPLY_MAX - 16; i++) {
            dr_buf_printf(&b, "%d ", i);
        }
        dr_buf_appends(&b, "work");
        assert_int_equal(dr_poll_reply_parse(p, b.data, &a), DR_OK);
        assert_true(a->n_responses <= p->n_slots);
        dr_poll_answer_destroy(a);
        dr_buf_cleanup(&b);
    }

    /* absurd ranges are not slot ranges */
    assert_int_equal(
        dr_poll_reply_parse(p, "1-999999999 work, 99999999999999999999 yes, -5 no", &a), DR_OK);
    assert_int_equal(a->n_responses, 0);
    dr_poll_answer_destroy(a);

    /* unicode junk, invalid UTF-8, control bytes */
    for (size_t i = 0; i < 8192; i++) {
        s[i] = (char)(0x80 + (i * 37) % 0x7f);
        if (i % 13 == 0) {
            s[i] = (char)(i % 32 + 1);
        }
    }
    memcpy(s + 100, "\xe2\x9c\x93\xf0\x9f\x91", 6); /* truncated emoji */
    s[8192] = '\0';
    assert_int_equal(dr_poll_reply_parse(p, s, &a), DR_OK);
    assert_true(a->n_responses <= p->n_slots);
    dr_poll_answer_destroy(a);

    assert_int_equal(dr_poll_reply_parse(p, "", &a), DR_OK);
    assert_int_equal(a->n_responses, 0);
    assert_string_equal(a->comment, "");
    dr_poll_answer_destroy(a);
    assert_int_equal(dr_poll_reply_parse(NULL, "1 yes", &a), DR_EINVAL);
    assert_int_equal(dr_poll_reply_parse(p, NULL, &a), DR_EINVAL);
    free(s);
    dr_poll_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reply_table),      cmocka_unit_test(answer_json),
        cmocka_unit_test(partstat),         cmocka_unit_test(participants),
        cmocka_unit_test(poll_json_errors), cmocka_unit_test(hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
