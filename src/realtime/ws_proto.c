/*
 * Byte-level pieces of the two wire formats: the WebSocket opening handshake key (RFC 6455
 * §4.2.2), UTF-8 validation of text frames (§8.1), unmasked server frames encoded once and
 * shared, and Server-Sent Events records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "dr/err.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 16

int dr__ws_accept(const char *key, char out[RT_WS_ACCEPT_SIZE])
{
    unsigned char *raw = NULL, digest[SHA_DIGEST_LENGTH];
    char buf[64], *b64 = NULL;
    size_t rawlen = 0, b64len = 0, klen = key ? strlen(key) : 0;
    int err = DR_EINVAL;

    out[0] = '\0';
    if (klen != 24 || dr_base64_decode(key, klen, &raw, &rawlen) != DR_OK || rawlen != WS_KEY_LEN) {
        goto out;
    }
    snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
    SHA1((const unsigned char *)buf, strlen(buf), digest);
    if (dr_base64_encode(digest, sizeof(digest), &b64, &b64len) != DR_OK ||
        b64len + 1 > RT_WS_ACCEPT_SIZE) {
        goto out;
    }
    memcpy(out, b64, b64len + 1);
    err = DR_OK;
out:
    free(raw);
    free(b64);
    return err;
}

int dr__utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

struct rt_frame *dr__ws_frame(int opcode, const void *payload, size_t len)
{
    size_t hlen = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    struct rt_frame *f = dr__rt_frame_create(hlen + len);
    unsigned char *h = (unsigned char *)f->data;

    h[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int k = 0; k < 8; k++) {
            h[2 + k] = (unsigned char)((uint64_t)len >> (56 - 8 * k));
        }
    }
    if (len) {
        memcpy(h + hlen, payload, len);
    }
    return f;
}

struct rt_frame *dr__sse_frame(int64_t seq, const char *json, size_t len)
{
    char id[40] = "";
    size_t ilen = 0;
    struct rt_frame *f;

    if (seq >= 0) {
        ilen = (size_t)snprintf(id, sizeof(id), "id: %lld\n", (long long)seq);
    }
    f = dr__rt_frame_create(ilen + 6 + len + 2);
    memcpy(f->data, id, ilen);
    memcpy(f->data + ilen, "data: ", 6);
    memcpy(f->data + ilen + 6, json, len);
    memcpy(f->data + ilen + 6 + len, "\n\n", 2);
    return f;
}
