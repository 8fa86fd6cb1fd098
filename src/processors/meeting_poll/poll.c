/*
 * The poll model: building it from its JSON definition, finding participants, and the answer's
 * JSON form.
 */
#include "dr/poll_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"

void dr_poll_destroy(struct dr_poll *poll)
{
    if (!poll) {
        return;
    }
    for (size_t i = 0; i < poll->n_slots; i++) {
        free(poll->slots[i].slot_id);
        free(poll->slots[i].start);
        free(poll->slots[i].end);
        free(poll->slots[i].label);
    }
    for (size_t i = 0; i < poll->n_participants; i++) {
        free(poll->participants[i].email);
        free(poll->participants[i].name);
    }
    free(poll->slots);
    free(poll->participants);
    free(poll->poll_id);
    free(poll->title);
    free(poll);
}

/* Copies the string at key into *dst. Absent is fine unless required; anything else but a
 * string of 1..DR_POLL_MAX_FIELD bytes is not. */
static int take_str(const cJSON *obj, const char *key, int required, char **dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    size_t n;

    *dst = NULL;
    if (!v || cJSON_IsNull(v)) {
        return required ? DR_EINVAL : DR_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        return DR_EINVAL;
    }
    n = strlen(v->valuestring);
    if (n > DR_POLL_MAX_FIELD) {
        return DR_ETOOBIG;
    }
    if (n == 0) {
        return required ? DR_EINVAL : DR_OK;
    }
    *dst = dr_xstrdup(v->valuestring);
    return DR_OK;
}

/* The UTC offset written at the end of an RFC 3339 time, in minutes. */
static int rfc3339_offset(const char *s, int *minutes)
{
    size_t n = strlen(s);
    const char *t = strchr(s, 'T') ? strchr(s, 'T') : strchr(s, 't');

    if (!t || n < 6) {
        return DR_EINVAL;
    }
    if (s[n - 1] == 'Z' || s[n - 1] == 'z') {
        *minutes = 0;
        return DR_OK;
    }
    if ((s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':' &&
        isdigit((unsigned char)s[n - 5]) && isdigit((unsigned char)s[n - 4]) &&
        isdigit((unsigned char)s[n - 2]) && isdigit((unsigned char)s[n - 1]) && s + n - 6 > t) {
        int m = ((s[n - 5] - '0') * 10 + (s[n - 4] - '0')) * 60 + (s[n - 2] - '0') * 10 +
                (s[n - 1] - '0');
        *minutes = s[n - 6] == '-' ? -m : m;
        return DR_OK;
    }
    return DR_EINVAL;
}

static int take_slot(const cJSON *js, struct dr_poll_slot *slot)
{
    int64_t end_ms;
    int err;

    err = take_str(js, "slot_id", 1, &slot->slot_id);
    if (!err) {
        err = take_str(js, "start", 1, &slot->start);
    }
    if (!err) {
        err = take_str(js, "end", 0, &slot->end);
    }
    if (!err) {
        err = take_str(js, "label", 0, &slot->label);
    }
    if (err) {
        return err;
    }
    if (dr_parse_time(slot->start, &slot->start_ms) ||
        rfc3339_offset(slot->start, &slot->start_offset_min)) {
        return DR_EINVAL;
    }
    if (slot->end && (dr_parse_time(slot->end, &end_ms) || end_ms < slot->start_ms)) {
        return DR_EINVAL;
    }
    return DR_OK;
}

int dr_poll_from_json(const cJSON *json, struct dr_poll **out)
{
    struct dr_poll *p = NULL;
    const cJSON *slots, *parts, *it;
    int err = DR_EINVAL;
    size_t n;

    if (out) {
        *out = NULL;
    }
    if (!json || !out || !cJSON_IsObject(json)) {
        return DR_EINVAL;
    }
    p = dr_xcalloc(1, sizeof(*p));
    err = take_str(json, "poll_id", 1, &p->poll_id);
    if (!err) {
        err = take_str(json, "title", 0, &p->title);
    }
    if (err) {
        goto out;
    }

    err = DR_EINVAL;
    slots = cJSON_GetObjectItemCaseSensitive(json, "slots");
    if (!cJSON_IsArray(slots) || (n = (size_t)cJSON_GetArraySize(slots)) == 0) {
        goto out;
    }
    if (n > DR_POLL_MAX_SLOTS) {
        err = DR_ETOOBIG;
        goto out;
    }
    p->slots = dr_xcalloc(n, sizeof(*p->slots));
    cJSON_ArrayForEach(it, slots)
    {
        if (!cJSON_IsObject(it)) {
            err = DR_EINVAL;
            goto out;
        }
        err = take_slot(it, &p->slots[p->n_slots]);
        p->n_slots++; /* counted even when half-filled, so destroy frees it */
        if (err) {
            goto out;
        }
        for (size_t k = 0; k + 1 < p->n_slots; k++) {
            if (strcmp(p->slots[k].slot_id, p->slots[p->n_slots - 1].slot_id) == 0) {
                err = DR_EINVAL;
                goto out;
            }
        }
    }

    parts = cJSON_GetObjectItemCaseSensitive(json, "participants");
    if (parts && !cJSON_IsNull(parts)) {
        if (!cJSON_IsArray(parts)) {
            err = DR_EINVAL;
            goto out;
        }
        n = (size_t)cJSON_GetArraySize(parts);
        if (n > DR_POLL_MAX_PARTICIPANTS) {
            err = DR_ETOOBIG;
            goto out;
        }
        p->participants = n ? dr_xcalloc(n, sizeof(*p->participants)) : NULL;
        cJSON_ArrayForEach(it, parts)
        {
            struct dr_poll_participant *pp = &p->participants[p->n_participants++];
            if (!cJSON_IsObject(it)) {
                err = DR_EINVAL;
                goto out;
            }
            err = take_str(it, "email", 1, &pp->email);
            if (!err) {
                err = take_str(it, "name", 0, &pp->name);
            }
            if (!err && !strchr(pp->email, '@')) {
                err = DR_EINVAL;
            }
            if (err) {
                goto out;
            }
        }
    }
    *out = p;
    p = NULL;
    err = DR_OK;
out:
    dr_poll_destroy(p);
    return err;
}

/* Splits an address into local part (without any +tag) and domain. */
static int addr_parts(const char *s, size_t n, const char **local, size_t *llen, const char **dom,
                      size_t *dlen)
{
    const char *at = memrchr(s, '@', n);
    const char *plus;

    if (!at || at == s || at + 1 == s + n) {
        return DR_EINVAL;
    }
    *local = s;
    *llen = (size_t)(at - s);
    plus = memchr(s, '+', *llen);
    if (plus && plus > s) {
        *llen = (size_t)(plus - s);
    }
    *dom = at + 1;
    *dlen = n - (size_t)(at + 1 - s);
    return DR_OK;
}

/* The bare address inside "Name <addr>", or s itself, trimmed. */
static void bare_addr(const char *s, const char **a, size_t *n)
{
    const char *lt = strrchr(s, '<');
    const char *b = s, *e;

    if (lt && strchr(lt, '>')) {
        b = lt + 1;
        e = strchr(lt, '>');
    } else {
        e = s + strlen(s);
    }
    while (b < e && isspace((unsigned char)*b)) {
        b++;
    }
    while (e > b && isspace((unsigned char)e[-1])) {
        e--;
    }
    *a = b;
    *n = (size_t)(e - b);
}

const struct dr_poll_participant *dr_poll_find_participant(const struct dr_poll *poll,
                                                           const char *sender)
{
    const char *a, *sl, *sd;
    size_t an, sll, sdl;

    if (!poll || !sender) {
        return NULL;
    }
    bare_addr(sender, &a, &an);
    if (an > DR_POLL_MAX_FIELD || addr_parts(a, an, &sl, &sll, &sd, &sdl)) {
        return NULL;
    }
    for (size_t i = 0; i < poll->n_participants; i++) {
        const char *e = poll->participants[i].email, *pl, *pd;
        size_t pll, pdl;
        if (addr_parts(e, strlen(e), &pl, &pll, &pd, &pdl)) {
            continue;
        }
        if (pll == sll && pdl == sdl && strncasecmp(pl, sl, sll) == 0 &&
            strncasecmp(pd, sd, sdl) == 0) {
            return &poll->participants[i];
        }
    }
    return NULL;
}

void dr_poll_answer_destroy(struct dr_poll_answer *answer)
{
    if (!answer) {
        return;
    }
    for (size_t i = 0; i < answer->n_responses; i++) {
        free(answer->responses[i].slot_id);
    }
    free(answer->responses);
    free(answer->poll_id);
    free(answer->participant);
    free(answer->comment);
    free(answer);
}

const char *dr_poll_answer_name(enum dr_poll_answer_value v)
{
    switch (v) {
    case DR_POLL_YES:
        return "yes";
    case DR_POLL_NO:
        return "no";
    case DR_POLL_MAYBE:
        return "maybe";
    default:
        return NULL;
    }
}

int dr_poll_answer_to_json(const struct dr_poll_answer *answer, char **json)
{
    cJSON *root, *arr;

    if (json) {
        *json = NULL;
    }
    if (!answer || !json || !answer->poll_id) {
        return DR_EINVAL;
    }
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "poll_id", answer->poll_id);
    if (answer->participant) {
        cJSON_AddStringToObject(root, "participant", answer->participant);
    } else {
        cJSON_AddNullToObject(root, "participant");
    }
    arr = cJSON_AddArrayToObject(root, "responses");
    for (size_t i = 0; i < answer->n_responses; i++) {
        const char *name = dr_poll_answer_name(answer->responses[i].answer);
        cJSON *r;
        if (!name) {
            continue;
        }
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "slot_id", answer->responses[i].slot_id);
        cJSON_AddStringToObject(r, "answer", name);
        cJSON_AddItemToArray(arr, r);
    }
    cJSON_AddStringToObject(root, "comment", answer->comment ? answer->comment : "");
    *json = dr_json_print(root);
    cJSON_Delete(root);
    return DR_OK;
}

int dr_poll_partstat_answer(const char *partstat, enum dr_poll_answer_value *out)
{
    if (!partstat || !out) {
        return DR_EINVAL;
    }
    if (strcasecmp(partstat, "ACCEPTED") == 0) {
        *out = DR_POLL_YES;
    } else if (strcasecmp(partstat, "TENTATIVE") == 0) {
        *out = DR_POLL_MAYBE;
    } else if (strcasecmp(partstat, "DECLINED") == 0) {
        *out = DR_POLL_NO;
    } else {
        return DR_ENOTFOUND;
    }
    return DR_OK;
}
