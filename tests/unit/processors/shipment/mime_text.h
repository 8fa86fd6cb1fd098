/*
 * Test helper: reads an .eml file with GMime and gives its decoded subject, From and body text
 * (the first text/plain part, else the first text/html part), all UTF-8. Free with
 * mime_text_free().
 */
#ifndef TEST_SHIPMENT_MIME_TEXT_H
#define TEST_SHIPMENT_MIME_TEXT_H

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

struct mime_text {
    char *subject;
    char *from;
    char *body;
    size_t body_len;
};

struct body_pick {
    char *plain;
    char *html;
};

static void mime_text_pick(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    struct body_pick *pick = data;
    GMimeContentType *ct;

    (void)parent;
    if (!GMIME_IS_TEXT_PART(part)) {
        return;
    }
    ct = g_mime_object_get_content_type(part);
    if (g_mime_content_type_is_type(ct, "text", "plain") && !pick->plain) {
        pick->plain = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    } else if (g_mime_content_type_is_type(ct, "text", "html") && !pick->html) {
        pick->html = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    }
}

/*
 * Some fixtures lack the blank line between the header and the first MIME boundary; every MUA
 * still shows them. Puts the blank line back so GMime sees the parts.
 */
static char *mime_text_repair(const char *data, size_t len, size_t *outlen)
{
    char *fixed = malloc(len + 2);
    size_t i = 0;

    if (!fixed) {
        return NULL;
    }
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;

        if (end - i <= 2 && (data[i] == '\n' || data[i] == '\r')) {
            break; /* the header ends properly */
        }
        if (end - i > 2 && data[i] == '-' && data[i + 1] == '-') {
            memcpy(fixed, data, i);
            fixed[i] = '\n';
            memcpy(fixed + i + 1, data + i, len - i);
            *outlen = len + 1;
            return fixed;
        }
        i = end;
    }
    memcpy(fixed, data, len);
    *outlen = len;
    return fixed;
}

/* 0 on success. */
static int mime_text_load(const char *path, struct mime_text *out)
{
    static int inited;
    GMimeStream *stream;
    gchar *raw = NULL;
    gsize rawlen = 0;
    char *fixed;
    size_t fixedlen;
    GMimeParser *parser;
    GMimeMessage *msg;
    InternetAddressList *from;
    struct body_pick pick = {0};
    const char *subj;
    char *body;

    memset(out, 0, sizeof(*out));
    if (!inited) {
        g_mime_init();
        inited = 1;
    }
    if (!g_file_get_contents(path, &raw, &rawlen, NULL)) {
        return -1;
    }
    fixed = mime_text_repair(raw, rawlen, &fixedlen);
    g_free(raw);
    if (!fixed) {
        return -1;
    }
    stream = g_mime_stream_mem_new_with_buffer(fixed, fixedlen);
    free(fixed);
    parser = g_mime_parser_new_with_stream(stream);
    msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    if (!msg) {
        return -1;
    }
    subj = g_mime_message_get_subject(msg);
    out->subject = strdup(subj ? subj : "");
    from = g_mime_message_get_from(msg);
    if (from) {
        char *s = internet_address_list_to_string(from, NULL, FALSE);
        out->from = strdup(s ? s : "");
        g_free(s);
    } else {
        out->from = strdup("");
    }
    g_mime_message_foreach(msg, mime_text_pick, &pick);
    body = pick.plain ? pick.plain : pick.html;
    out->body = strdup(body ? body : "");
    out->body_len = strlen(out->body);
    g_free(pick.plain);
    g_free(pick.html);
    g_object_unref(msg);
    return 0;
}

static void mime_text_shutdown(void)
{
    g_mime_shutdown();
}

static void mime_text_free(struct mime_text *m)
{
    free(m->subject);
    free(m->from);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

#endif
