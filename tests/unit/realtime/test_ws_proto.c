/* Tests src/realtime/ws_proto.c: handshake key, UTF-8 validation, shared frame encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dr/err.h"
#include "realtime/rt_int.h"

static void accept_key_rfc6455_example(void **state)
{
    char out[RT_WS_ACCEPT_SIZE];

    /* RFC 6455 §1.3 */
    assert_int_equal(dr__ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), DR_OK);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void accept_key_rejects_bad_keys(void **state)
{
    char out[RT_WS_ACCEPT_SIZE];

    assert_int_equal(dr__ws_accept(NULL, out), DR_EINVAL);
    assert_int_equal(dr__ws_accept("", out), DR_EINVAL);
    assert_int_equal(dr__ws_accept("dGhlIHNhbXBsZSBub25jZQ=", out), DR_EINVAL);  /* 23 */
    assert_int_equal(dr__ws_accept("dGhlIHNhbXBsZSBub25jZQ!!", out), DR_EINVAL); /* junk */
    assert_int_equal(dr__ws_accept("YWJjZGVmZ2hpamtsbW5vcHFy", out), DR_EINVAL); /* 18 bytes */
    assert_string_equal(out, "");
}

static int valid(const char *s, size_t n)
{
    return dr__utf8_valid((const unsigned char *)s, n);
}

static void utf8_validation(void **state)
{
    assert_true(valid("", 0));
    assert_true(valid("plain ascii", 11));
    assert_true(valid("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", 15));
    assert_true(valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(valid("\xc3\x28", 2));         /* bad continuation */
    assert_false(valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(valid("\xed\xa0\x80", 3));     /* surrogate U+D800 */
    assert_false(valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(valid("\xe2\x9c", 2));         /* truncated */
    assert_false(valid("\xff", 1));
    assert_false(valid("ok\x80", 3)); /* stray continuation */
}

static void ws_frames_have_minimal_headers(void **state)
{
    static char big[70000];
    struct rt_frame *f;

    f = dr__ws_frame(1, "hi", 2);
    assert_int_equal(f->len, 4);
    assert_memory_equal(f->data, "\x81\x02hi", 4);
    dr__rt_frame_unref(f);

    memset(big, 'a', sizeof(big));
    f = dr__ws_frame(1, big, 300);
    assert_int_equal(f->len, 304);
    assert_memory_equal(f->data, "\x81\x7e\x01\x2c", 4);
    dr__rt_frame_unref(f);

    f = dr__ws_frame(1, big, sizeof(big));
    assert_int_equal(f->len, sizeof(big) + 10);
    assert_memory_equal(f->data, "\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
    dr__rt_frame_unref(f);
}

static void sse_frames(void **state)
{
    struct rt_frame *f = dr__sse_frame(42, "{\"a\":1}", 7);
    const char want[] = "id: 42\ndata: {\"a\":1}\n\n";

    assert_int_equal(f->len, sizeof(want) - 1);
    assert_memory_equal(f->data, want, sizeof(want) - 1);
    dr__rt_frame_unref(f);
    f = dr__sse_frame(-1, "{}", 2);
    assert_int_equal(f->len, 10);
    assert_memory_equal(f->data, "data: {}\n\n", 10);
    dr__rt_frame_unref(f);
    f = dr__sse_frame(0, "{}", 2);
    assert_int_equal(f->len, 16);
    assert_memory_equal(f->data, "id: 0\ndata: {}\n\n", 16);
    dr__rt_frame_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_key_rfc6455_example),
        cmocka_unit_test(accept_key_rejects_bad_keys),
        cmocka_unit_test(utf8_validation),
        cmocka_unit_test(ws_frames_have_minimal_headers),
        cmocka_unit_test(sse_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
