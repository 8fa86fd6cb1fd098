/* Tests src/store/store.c, queue.c, dedup.c, dlq.c, migrations.c on both engines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/store.h"
#include "store/store_internal.h"
#include "dr/util.h"
#define FX_STORE /* f->store, another handle on f->url: another instance */
#include "unit/store/backend.h"
#include "unit/store/refuse.h"

static struct dr_store *fx_store(void **state)
{
    return ((struct fx *)*state)->obj;
}

static const unsigned char payload[] = {'{', '}', 0x00, 0xff, 0x00, 'z'};

static struct dr_qmsg qmsg(const char *message_id)
{
    return (struct dr_qmsg){
        .message_id = (char *)message_id,
        .topic = (char *)"email-backfill",
        .attrs_json = (char *)"{\"type\":\"email\"}",
        .data = (unsigned char *)payload,
        .data_len = sizeof(payload),
        .publish_time_ms = 1700000000123,
    };
}

static int64_t queue_count(struct dr_store *st)
{
    int64_t n = -1;

    assert_int_equal(dr_store_queue_count(st, &n), DR_OK);
    return n;
}

static int64_t dlq_count(struct dr_store *st)
{
    int64_t n = -1;

    assert_int_equal(dr_store_dlq_count(st, &n), DR_OK);
    return n;
}

static void insert_load_roundtrip(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg in[3] = {qmsg("m-1"), qmsg("m-2"), qmsg("m-3")};
    struct dr_qbatch b = {.inserts = in, .ninserts = 3};
    struct dr_qmsg *out = NULL;
    size_t n = 0;

    in[1].ordering_key = (char *)"tracking-1Z999";
    in[1].attempts = 2;
    in[1].not_before_ms = 55;
    in[1].first_failure_ms = 44;
    in[1].last_error = (char *)"carrier timeout";
    in[2].data = NULL;
    in[2].data_len = 0;
    in[2].attrs_json = NULL;
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_true(in[0].id > 0 && in[1].id > in[0].id && in[2].id > in[1].id);

    assert_int_equal(dr_store_queue_load(st, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, in[0].id);
    assert_string_equal(out[0].message_id, "m-1");
    assert_string_equal(out[0].topic, "email-backfill");
    assert_string_equal(out[0].attrs_json, "{\"type\":\"email\"}");
    assert_int_equal(out[0].data_len, sizeof(payload));
    assert_memory_equal(out[0].data, payload, sizeof(payload));
    assert_null(out[0].ordering_key);
    assert_null(out[0].last_error);
    assert_int_equal(out[0].publish_time_ms, 1700000000123);
    assert_int_equal(out[0].attempts, 0);
    assert_string_equal(out[1].ordering_key, "tracking-1Z999");
    assert_int_equal(out[1].attempts, 2);
    assert_int_equal(out[1].not_before_ms, 55);
    assert_int_equal(out[1].first_failure_ms, 44);
    assert_string_equal(out[1].last_error, "carrier timeout");
    assert_int_equal(out[2].data_len, 0);
    assert_non_null(out[2].data);
    assert_string_equal(out[2].attrs_json, "{}");
    dr_qmsgs_free(out, n);
    assert_int_equal(queue_count(st), 3);
}

static void duplicate_message_id_skipped(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg first[1] = {qmsg("dup-1")};
    struct dr_qmsg again[3] = {qmsg("dup-1"), qmsg("new-1"), qmsg("new-1")};
    struct dr_qbatch b1 = {.inserts = first, .ninserts = 1};
    struct dr_qbatch b2 = {.inserts = again, .ninserts = 3};

    assert_int_equal(dr_store_apply(st, &b1), DR_OK);
    assert_true(first[0].id > 0);
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);
    assert_int_equal(again[0].id, 0); /* already queued */
    assert_true(again[1].id > first[0].id);
    assert_int_equal(again[2].id, 0); /* duplicate inside the batch */
    assert_int_equal(queue_count(st), 2);

    /* duplicates inside one multi-row statement (the first 4 go together), and ids in order */
    struct dr_qmsg many[6] = {qmsg("x"), qmsg("y"), qmsg("x"), qmsg("dup-1"), qmsg("z"), qmsg("y")};
    struct dr_qbatch b3 = {.inserts = many, .ninserts = 6};
    assert_int_equal(dr_store_apply(st, &b3), DR_OK);
    assert_true(many[0].id > again[1].id);
    assert_true(many[1].id > many[0].id);
    assert_int_equal(many[2].id, 0);
    assert_int_equal(many[3].id, 0);
    assert_true(many[4].id > many[1].id);
    assert_int_equal(many[5].id, 0);
    assert_int_equal(queue_count(st), 5);

    /* every id handed back is the id stored for that message */
    struct dr_qmsg *out = NULL;
    size_t n = 0;
    assert_int_equal(dr_store_queue_load(st, 0, 100, &out, &n), DR_OK);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        const char *want = out[i].id == many[0].id   ? "x"
                           : out[i].id == many[1].id ? "y"
                           : out[i].id == many[4].id ? "z"
                                                     : NULL;
        if (want) {
            assert_string_equal(out[i].message_id, want);
        }
    }
    dr_qmsgs_free(out, n);
}

static void queue_order_and_paging(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg in[25];
    char ids[25][16];
    struct dr_qbatch b = {.inserts = in, .ninserts = 25};
    int64_t after = 0;
    size_t total = 0, pages = 0;

    for (int i = 0; i < 25; i++) {
        snprintf(ids[i], sizeof(ids[i]), "p-%02d", i);
        in[i] = qmsg(ids[i]);
    }
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    for (;;) {
        struct dr_qmsg *out = NULL;
        size_t n = 0;
        assert_int_equal(dr_store_queue_load(st, after, 10, &out, &n), DR_OK);
        if (n == 0) {
            assert_null(out);
            break;
        }
        assert_true(n <= 10);
        for (size_t k = 0; k < n; k++) {
            assert_true(out[k].id > after);
            assert_string_equal(out[k].message_id, ids[total + k]);
            after = out[k].id;
        }
        total += n;
        pages++;
        dr_qmsgs_free(out, n);
    }
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);

    /* ids are never reused: delete the newest, insert, the new id is still larger */
    int64_t last = in[24].id;
    struct dr_qbatch del = {.deletes = &last, .ndeletes = 1};
    assert_int_equal(dr_store_apply(st, &del), DR_OK);
    struct dr_qmsg more[1] = {qmsg("p-after")};
    struct dr_qbatch add = {.inserts = more, .ninserts = 1};
    assert_int_equal(dr_store_apply(st, &add), DR_OK);
    assert_true(more[0].id > last);

    struct dr_qmsg *out = (struct dr_qmsg *)1;
    size_t n = 99;
    assert_int_equal(dr_store_queue_load(st, 0, 0, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_null(out);
}

static void updates_deletes_dedup_dead(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg in[3] = {qmsg("u-1"), qmsg("u-2"), qmsg("u-3")};
    struct dr_qbatch b = {.inserts = in, .ninserts = 3};
    struct dr_qmsg *out = NULL;
    size_t n = 0;
    int seen = 0;

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    int64_t dels[2] = {in[0].id, 987654321}; /* an id already gone is not an error */
    struct dr_qupdate up = {.id = in[1].id,
                            .attempts = 3,
                            .not_before_ms = 1700000009000,
                            .first_failure_ms = 1700000001000,
                            .last_error = "vespa 503"};
    const char *keys[2] = {"u-1", "idem:abc"};
    struct dr_dead_letter dead = {.message_id = (char *)"u-3",
                                  .topic = (char *)"email-backfill",
                                  .reason = (char *)"rejected",
                                  .error = (char *)"bad MIME",
                                  .message_json = (char *)"{\"messageId\":\"u-3\"}"};
    int64_t del3 = in[2].id;
    struct dr_qbatch b2 = {.deletes = dels,
                           .ndeletes = 2,
                           .updates = &up,
                           .nupdates = 1,
                           .dedup_keys = keys,
                           .ndedup = 2,
                           .dead = &dead,
                           .ndead = 1};
    int64_t before = dr_now_ms();
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);
    assert_true(dead.id > 0);
    assert_true(dead.created_ms >= before);
    struct dr_qbatch b3 = {.deletes = &del3, .ndeletes = 1};
    assert_int_equal(dr_store_apply(st, &b3), DR_OK);

    assert_int_equal(dr_store_queue_load(st, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, in[1].id);
    assert_int_equal(out[0].attempts, 3);
    assert_int_equal(out[0].not_before_ms, 1700000009000);
    assert_int_equal(out[0].first_failure_ms, 1700000001000);
    assert_string_equal(out[0].last_error, "vespa 503");
    dr_qmsgs_free(out, n);
    assert_int_equal(dr_store_dedup_seen(st, "idem:abc", before, &seen), DR_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(dlq_count(st), 1);

    struct dr_qbatch empty = {0};
    assert_int_equal(dr_store_apply(st, &empty), DR_OK);
}

static void apply_validation_changes_nothing(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg in[2] = {qmsg("v-1"), qmsg("v-2")};
    struct dr_qbatch b = {.inserts = in, .ninserts = 2};
    const char *keys[2] = {"k", NULL};
    struct dr_dead_letter bad = {.message_id = (char *)"x", .topic = (char *)"t"}; /* no reason */

    in[1].topic = NULL;
    assert_int_equal(dr_store_apply(st, &b), DR_EINVAL);
    in[1] = qmsg("v-2");
    b.dedup_keys = keys;
    b.ndedup = 2;
    assert_int_equal(dr_store_apply(st, &b), DR_EINVAL);
    b.ndedup = 1;
    b.dead = &bad;
    b.ndead = 1;
    assert_int_equal(dr_store_apply(st, &b), DR_EINVAL);
    b.ndead = 0;
    b.deletes = NULL;
    b.ndeletes = 4; /* count without array */
    assert_int_equal(dr_store_apply(st, &b), DR_EINVAL);
    assert_int_equal(in[0].id, 0);
    assert_int_equal(queue_count(st), 0);
    assert_int_equal(dr_store_apply(NULL, &b), DR_EINVAL);
    assert_int_equal(dr_store_apply(st, NULL), DR_EINVAL);
}

/* A failure inside the database half way through the batch (a trigger refusing the second dead
 * letter) must leave every table as it was and the caller's ids untouched. */
static void apply_is_atomic(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_db *db = dr_store_db(st);
    struct dr_qmsg seed[2] = {qmsg("a-1"), qmsg("a-2")};
    struct dr_qbatch s = {.inserts = seed, .ninserts = 2};
    struct dr_qmsg *out = NULL;
    size_t n = 0;
    int seen = 1;

    refuse_inserts(db, "dl_boom", "dead_letters", "reason", "boom");
    assert_int_equal(dr_store_apply(st, &s), DR_OK);

    struct dr_qmsg in[2] = {qmsg("a-3"), qmsg("a-4")};
    int64_t del = seed[0].id;
    struct dr_qupdate up = {.id = seed[1].id, .attempts = 9, .last_error = "changed"};
    const char *keys[1] = {"a-key"};
    struct dr_dead_letter dead[2] = {
        {.message_id = (char *)"a-1",
         .topic = (char *)"t",
         .reason = (char *)"rejected",
         .message_json = (char *)"{}"},
        {.message_id = (char *)"a-2",
         .topic = (char *)"t",
         .reason = (char *)"boom",
         .message_json = (char *)"{}"},
    };
    struct dr_qbatch b = {.inserts = in,
                          .ninserts = 2,
                          .deletes = &del,
                          .ndeletes = 1,
                          .updates = &up,
                          .nupdates = 1,
                          .dedup_keys = keys,
                          .ndedup = 1,
                          .dead = dead,
                          .ndead = 2};
    assert_int_not_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(in[0].id, 0);
    assert_int_equal(in[1].id, 0);
    assert_int_equal(dead[0].id, 0);
    assert_int_equal(dead[0].created_ms, 0);

    assert_int_equal(dr_store_queue_load(st, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].message_id, "a-1");
    assert_int_equal(out[1].attempts, 0);
    assert_null(out[1].last_error);
    dr_qmsgs_free(out, n);
    assert_int_equal(dr_store_dedup_seen(st, "a-key", 0, &seen), DR_OK);
    assert_int_equal(seen, 0);
    assert_int_equal(dlq_count(st), 0);

    /* and the store still works afterwards */
    dead[1].reason = (char *)"rejected";
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_true(in[0].id > seed[1].id);
    assert_int_equal(dlq_count(st), 2);
    assert_int_equal(queue_count(st), 3);
}

static void dedup_window_and_purge(void **state)
{
    struct dr_store *st = fx_store(state);
    int seen = -1;
    int64_t purged = -1;

    assert_int_equal(dr_store_dedup_seen(st, "k1", 0, &seen), DR_OK);
    assert_int_equal(seen, 0);
    assert_int_equal(dr_store_dedup_mark(st, "k1", 1000), DR_OK);
    assert_int_equal(dr_store_dedup_mark(st, "k2", 5000), DR_OK);
    assert_int_equal(dr_store_dedup_seen(st, "k1", 1000, &seen), DR_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(dr_store_dedup_seen(st, "k1", 1001, &seen), DR_OK);
    assert_int_equal(seen, 0); /* outside the window */
    /* a later mark moves the time forward, an older one does not move it back */
    assert_int_equal(dr_store_dedup_mark(st, "k1", 3000), DR_OK);
    assert_int_equal(dr_store_dedup_mark(st, "k1", 2000), DR_OK);
    assert_int_equal(dr_store_dedup_seen(st, "k1", 3000, &seen), DR_OK);
    assert_int_equal(seen, 1);

    assert_int_equal(dr_store_dedup_purge(st, 4000, &purged), DR_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(dr_store_dedup_seen(st, "k1", 0, &seen), DR_OK);
    assert_int_equal(seen, 0);
    assert_int_equal(dr_store_dedup_seen(st, "k2", 0, &seen), DR_OK);
    assert_int_equal(seen, 1);

    /* a batch may repeat keys, in and across its multi-row statements */
    const char *keys[7] = {"d1", "d2", "d1", "d3", "d4", "d2", "k2"};
    struct dr_qbatch b = {.dedup_keys = keys, .ndedup = 7};
    int64_t now = dr_now_ms();
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(dr_store_dedup_seen(st, keys[i], now, &seen), DR_OK);
        assert_int_equal(seen, 1);
    }
    assert_int_equal(count_rows(dr_store_db(st), "SELECT COUNT(*) FROM dedup"), 5);

    assert_int_equal(dr_store_dedup_mark(st, NULL, 1), DR_EINVAL);
    assert_int_equal(dr_store_dedup_mark(st, "", 1), DR_EINVAL);
    assert_int_equal(dr_store_dedup_seen(st, NULL, 0, &seen), DR_EINVAL);
    assert_int_equal(dr_store_dedup_seen(NULL, "k", 0, &seen), DR_EINVAL);
    assert_int_equal(dr_store_dedup_purge(NULL, 0, &purged), DR_EINVAL);
}

/* Many keys at once: across the multi-row statements (64, 16, 4, 1 keys), repeated keys, the
 * window, and keys without a value; the answers agree with one lookup per key. */
static void dedup_seen_many(void **state)
{
    struct dr_store *st = fx_store(state);
    enum { N = 150 };
    const char *keys[N];
    char names[N][16];
    int seen[N], one;
    const char **marks = dr_xcalloc(N, sizeof(*marks));
    size_t nmarks = 0;

    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "m-%d", i % 97); /* 53 keys come twice */
        keys[i] = names[i];
        if (i % 3 == 0) {
            marks[nmarks++] = names[i];
        }
    }
    keys[5] = NULL;
    keys[6] = "";
    struct dr_qbatch b = {.dedup_keys = marks, .ndedup = nmarks};
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(dr_store_dedup_mark(st, "m-old", 1000), DR_OK);

    assert_int_equal(dr_store_dedup_seen_many(st, keys, N, 0, seen), DR_OK);
    size_t nseen = 0;
    for (int i = 0; i < N; i++) {
        int want = 0;
        if (keys[i] && *keys[i]) {
            assert_int_equal(dr_store_dedup_seen(st, keys[i], 0, &one), DR_OK);
            want = one;
        }
        assert_int_equal(seen[i], want);
        nseen += (size_t)seen[i];
    }
    assert_true(nseen > 40 && nseen < 110); /* both answers are present */

    /* the window applies to all of them */
    const char *old[3] = {"m-old", "m-0", "nothing"};
    assert_int_equal(dr_store_dedup_seen_many(st, old, 3, 0, seen), DR_OK);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 0);
    assert_int_equal(dr_store_dedup_seen_many(st, old, 3, 1001, seen), DR_OK);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 1);

    assert_int_equal(dr_store_dedup_seen_many(st, keys, 0, 0, seen), DR_OK);
    assert_int_equal(dr_store_dedup_seen_many(NULL, keys, 1, 0, seen), DR_EINVAL);
    free(marks);
}

static struct dr_dead_letter dl(const char *mid, const char *topic, const char *proc,
                                const char *reason, const char *error, int64_t created)
{
    return (struct dr_dead_letter){.message_id = (char *)mid,
                                   .topic = (char *)topic,
                                   .processor = (char *)proc,
                                   .reason = (char *)reason,
                                   .error = (char *)error,
                                   .attempts = 5,
                                   .first_failure_ms = created - 100,
                                   .last_failure_ms = created - 1,
                                   .created_ms = created,
                                   .message_json = (char *)"{\"data\":\"e30=\",\"attributes\":{}}"};
}

static void dlq_put_get_delete(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_dead_letter d = dl("d-1", "shipment-updates", NULL, "no_route", NULL, 0);
    struct dr_dead_letter got = {0};
    int64_t before = dr_now_ms();

    assert_int_equal(dr_store_dlq_put(st, &d), DR_OK);
    assert_true(d.id > 0);
    assert_true(d.created_ms >= before);
    assert_int_equal(dr_store_dlq_get(st, d.id, &got), DR_OK);
    assert_int_equal(got.id, d.id);
    assert_string_equal(got.message_id, "d-1");
    assert_string_equal(got.topic, "shipment-updates");
    assert_null(got.processor);
    assert_string_equal(got.reason, "no_route");
    assert_null(got.error);
    assert_int_equal(got.attempts, 5);
    assert_int_equal(got.created_ms, d.created_ms);
    assert_string_equal(got.message_json, "{\"data\":\"e30=\",\"attributes\":{}}");
    dr_dead_letter_cleanup(&got);

    assert_int_equal(dr_store_dlq_get(st, d.id + 1000, &got), DR_ENOTFOUND);
    assert_null(got.message_id);
    assert_int_equal(dr_store_dlq_delete(st, d.id), DR_OK);
    assert_int_equal(dr_store_dlq_delete(st, d.id), DR_ENOTFOUND);
    assert_int_equal(dr_store_dlq_get(st, d.id, &got), DR_ENOTFOUND);

    struct dr_dead_letter bad = d;
    bad.message_json = NULL;
    assert_int_equal(dr_store_dlq_put(st, &bad), DR_EINVAL);
    assert_int_equal(dr_store_dlq_put(st, NULL), DR_EINVAL);
    assert_int_equal(dr_store_dlq_get(NULL, 1, &got), DR_EINVAL);
    assert_int_equal(dlq_count(st), 0);
}

static size_t list_ids(struct dr_store *st, const struct dr_dlq_filter *f, int64_t *ids, size_t max)
{
    struct dr_dead_letter *out = NULL;
    size_t n = 0;

    assert_int_equal(dr_store_dlq_list(st, f, &out, &n), DR_OK);
    for (size_t i = 0; i < n && i < max; i++) {
        ids[i] = out[i].id;
        if (i > 0) {
            assert_true(out[i].id > out[i - 1].id);
        }
    }
    dr_dead_letters_free(out, n);
    return n;
}

static void dlq_filters(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_dead_letter d[6] = {
        dl("f-0", "email-backfill", "email", "rejected", "broken MIME part", 1000),
        dl("f-1", "email-backfill", "email", "attempts_exhausted", "gmime: 100% failed", 2000),
        dl("f-2", "shipment-updates", "shipment", "attempts_exhausted", "carrier 503", 3000),
        dl("f-3", "shipment-updates", NULL, "no_route", NULL, 4000),
        dl("f-4", "calendar-updates", "calendar", "rejected", "bad ICS: X_LIC", 5000),
        dl("f-5", "email-backfill", "email", "rejected", "Broken mime", 6000),
    };
    struct dr_qbatch b = {.dead = d, .ndead = 6};
    int64_t ids[16];

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(list_ids(st, NULL, ids, 16), 6);
    assert_int_equal(ids[0], d[0].id);

    struct dr_dlq_filter f = {.topic = "email-backfill"};
    assert_int_equal(list_ids(st, &f, ids, 16), 3);
    assert_int_equal(ids[2], d[5].id);
    f = (struct dr_dlq_filter){.processor = "shipment"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    assert_int_equal(ids[0], d[2].id);
    f = (struct dr_dlq_filter){.reason = "rejected"};
    assert_int_equal(list_ids(st, &f, ids, 16), 3);
    /* substring, case-sensitive, wildcard characters taken literally */
    f = (struct dr_dlq_filter){.error = "MIME"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    assert_int_equal(ids[0], d[0].id);
    f = (struct dr_dlq_filter){.error = "100%"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    assert_int_equal(ids[0], d[1].id);
    f = (struct dr_dlq_filter){.error = "X_LIC"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    f = (struct dr_dlq_filter){.error = "%"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    f = (struct dr_dlq_filter){.since_ms = 2000, .until_ms = 5000};
    assert_int_equal(list_ids(st, &f, ids, 16), 3);
    assert_int_equal(ids[0], d[1].id);
    assert_int_equal(ids[2], d[3].id);
    f = (struct dr_dlq_filter){.until_ms = 2000};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    /* combined */
    f = (struct dr_dlq_filter){.topic = "email-backfill",
                               .reason = "rejected",
                               .processor = "email",
                               .since_ms = 1500,
                               .error = "mime"};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    assert_int_equal(ids[0], d[5].id);
    f = (struct dr_dlq_filter){.topic = "nope"};
    assert_int_equal(list_ids(st, &f, ids, 16), 0);
    /* paging */
    f = (struct dr_dlq_filter){.limit = 4};
    assert_int_equal(list_ids(st, &f, ids, 16), 4);
    f.after_id = ids[3];
    assert_int_equal(list_ids(st, &f, ids, 16), 2);
    assert_int_equal(ids[0], d[4].id);
    f = (struct dr_dlq_filter){.topic = "email-backfill", .limit = 1, .after_id = d[0].id};
    assert_int_equal(list_ids(st, &f, ids, 16), 1);
    assert_int_equal(ids[0], d[1].id);

    struct dr_dead_letter *out = (struct dr_dead_letter *)1;
    size_t n = 9;
    assert_int_equal(dr_store_dlq_list(NULL, &f, &out, &n), DR_EINVAL);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void dlq_limit_count_purge(void **state)
{
    struct dr_store *st = fx_store(state);
    enum { N = 1005 };
    struct dr_dead_letter *d = dr_xcalloc(N, sizeof(*d));
    char(*mids)[16] = dr_xcalloc(N, sizeof(*mids));
    struct dr_qbatch b = {.dead = d, .ndead = N};
    struct dr_dead_letter *out = NULL;
    struct dr_dlq_filter f = {0};
    size_t n = 0;
    int64_t purged = 0;

    for (int i = 0; i < N; i++) {
        snprintf(mids[i], sizeof(mids[i]), "l-%d", i);
        d[i] = dl(mids[i], "t", "p", "rejected", "e", 10000 + i);
    }
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(dlq_count(st), N);
    assert_int_equal(dr_store_dlq_list(st, &f, &out, &n), DR_OK);
    assert_int_equal(n, 100); /* default */
    dr_dead_letters_free(out, n);
    f.limit = 5000;
    assert_int_equal(dr_store_dlq_list(st, &f, &out, &n), DR_OK);
    assert_int_equal(n, 1000); /* cap */
    assert_string_equal(out[999].message_id, "l-999");
    dr_dead_letters_free(out, n);

    assert_int_equal(dr_store_dlq_purge(st, 10000 + 500, &purged), DR_OK);
    assert_int_equal(purged, 500);
    assert_int_equal(dlq_count(st), N - 500);
    assert_int_equal(dr_store_dlq_purge(st, 0, &purged), DR_OK);
    assert_int_equal(purged, 0);
    free(d);
    free(mids);
}

static void dlq_count_matching_fixes_the_set(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_dead_letter d[5] = {
        dl("c-0", "t", "p", "rejected", "e", 1000), dl("c-1", "u", "p", "rejected", "e", 2000),
        dl("c-2", "t", "p", "rejected", "e", 3000), dl("c-3", "t", "p", "no_route", "e", 4000),
        dl("c-4", "t", "p", "rejected", "e", 5000),
    };
    struct dr_qbatch b = {.dead = d, .ndead = 5};
    struct dr_dlq_filter f = {.topic = "t", .reason = "rejected"};
    int64_t count = -1, last = -1, ids[8];

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(dr_store_dlq_count_matching(st, &f, 100, &count, &last), DR_OK);
    assert_int_equal(count, 3);
    assert_int_equal(last, d[4].id);
    /* the first max in id order */
    assert_int_equal(dr_store_dlq_count_matching(st, &f, 2, &count, &last), DR_OK);
    assert_int_equal(count, 2);
    assert_int_equal(last, d[2].id);
    /* what is dead-lettered later is outside the set */
    f.max_id = last;
    struct dr_dead_letter later = dl("c-5", "t", "p", "rejected", "e", 6000);
    assert_int_equal(dr_store_dlq_put(st, &later), DR_OK);
    assert_int_equal(list_ids(st, &f, ids, 8), 2);
    assert_int_equal(ids[0], d[0].id);
    assert_int_equal(ids[1], d[2].id);
    f.after_id = d[0].id;
    assert_int_equal(dr_store_dlq_count_matching(st, &f, 100, &count, &last), DR_OK);
    assert_int_equal(count, 1);
    assert_int_equal(last, d[2].id);

    f = (struct dr_dlq_filter){.topic = "nope"};
    assert_int_equal(dr_store_dlq_count_matching(st, &f, 100, &count, &last), DR_OK);
    assert_int_equal(count, 0);
    assert_int_equal(last, 0);
    assert_int_equal(dr_store_dlq_count_matching(st, NULL, 100, &count, &last), DR_OK);
    assert_int_equal(count, 6);
    assert_int_equal(dr_store_dlq_count_matching(st, NULL, 0, &count, &last), DR_EINVAL);
    assert_int_equal(dr_store_dlq_count_matching(NULL, NULL, 1, &count, &last), DR_EINVAL);
}

/* A replay queues the message and removes its dead letter in one commit, and only while the dead
 * letter is there. */
static void dlq_take_requeues_once(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_dead_letter d[2] = {dl("t-0", "t", "p", "rejected", "e", 1),
                                  dl("t-1", "t", "p", "rejected", "e", 2)};
    struct dr_qbatch b = {.dead = d, .ndead = 2};
    struct dr_qmsg q[2] = {qmsg("t-0"), qmsg("t-1")};
    int64_t take[2];

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    take[0] = d[0].id;
    b = (struct dr_qbatch){.inserts = &q[0], .ninserts = 1, .dlq_take = take, .ndlq_take = 1};
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_true(q[0].id > 0);
    assert_int_equal(queue_count(st), 1);
    assert_int_equal(dlq_count(st), 1);

    /* gone: nothing applied, the insert keeps id 0 */
    q[1].id = 0;
    b = (struct dr_qbatch){.inserts = &q[1], .ninserts = 1, .dlq_take = take, .ndlq_take = 1};
    assert_int_equal(dr_store_apply(st, &b), DR_ENOTFOUND);
    assert_int_equal(q[1].id, 0);
    assert_int_equal(queue_count(st), 1);
    /* one of two gone: the other stays */
    take[0] = d[1].id;
    take[1] = d[0].id;
    b = (struct dr_qbatch){.inserts = &q[1], .ninserts = 1, .dlq_take = take, .ndlq_take = 2};
    assert_int_equal(dr_store_apply(st, &b), DR_ENOTFOUND);
    assert_int_equal(queue_count(st), 1);
    assert_int_equal(dlq_count(st), 1);
    b = (struct dr_qbatch){.dlq_take = NULL, .ndlq_take = 1};
    assert_int_equal(dr_store_apply(st, &b), DR_EINVAL);
    /* its message id queued again meanwhile: the replay would queue nothing and lose the dead
     * letter (and an edit it carries); nothing applied, the dead letter stays */
    struct dr_qmsg again = qmsg("t-0");
    take[0] = d[1].id;
    b = (struct dr_qbatch){.inserts = &again, .ninserts = 1, .dlq_take = take, .ndlq_take = 1};
    assert_int_equal(dr_store_apply(st, &b), DR_EEXIST);
    assert_int_equal(again.id, 0);
    assert_int_equal(queue_count(st), 1);
    assert_int_equal(dlq_count(st), 1);
}

struct taker {
    struct dr_store *st;
    const int64_t *ids;
    int n, no, taken, errors;
};

static void *take_all(void *arg)
{
    struct taker *t = arg;

    for (int i = 0; i < t->n; i++) {
        char mid[32];
        snprintf(mid, sizeof(mid), "race-%d-%d", t->no, i);
        struct dr_qmsg q = qmsg(mid);
        struct dr_qbatch b = {.inserts = &q, .ninserts = 1, .dlq_take = &t->ids[i], .ndlq_take = 1};
        int err = dr_store_apply(t->st, &b);
        if (err == DR_OK) {
            t->taken++;
        } else if (err != DR_ENOTFOUND) {
            t->errors++;
        }
    }
    return NULL;
}

static void dlq_take_races_queue_once(void **state)
{
    struct dr_store *st = fx_store(state);
    enum { N = 40 };
    struct dr_dead_letter d[N];
    char mids[N][16];
    int64_t ids[N];
    struct dr_qbatch b = {.dead = d, .ndead = N};
    struct taker t[3];
    pthread_t th[3];

    for (int i = 0; i < N; i++) {
        snprintf(mids[i], sizeof(mids[i]), "r-%d", i);
        d[i] = dl(mids[i], "t", "p", "rejected", "e", i + 1);
    }
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    for (int i = 0; i < N; i++) {
        ids[i] = d[i].id;
    }
    for (int i = 0; i < 3; i++) {
        t[i] = (struct taker){.st = st, .ids = ids, .n = N, .no = i};
        assert_int_equal(pthread_create(&th[i], NULL, take_all, &t[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].errors, 0);
    }
    assert_int_equal(t[0].taken + t[1].taken + t[2].taken, N);
    assert_int_equal(queue_count(st), N);
    assert_int_equal(dlq_count(st), 0);
}

static void reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct dr_qmsg in[2] = {qmsg("r-1"), qmsg("r-2")};
    struct dr_dead_letter d = dl("r-dead", "t", "p", "rejected", "e", 7);
    const char *keys[1] = {"r-key"};
    struct dr_qbatch b = {
        .inserts = in, .ninserts = 2, .dead = &d, .ndead = 1, .dedup_keys = keys, .ndedup = 1};
    struct dr_qmsg *out = NULL;
    size_t n = 0;
    int seen = 0;

    assert_int_equal(dr_store_apply(f->obj, &b), DR_OK);
    dr_store_close(f->obj);
    f->obj = NULL;
    /* reopening runs the migrations again: they must find everything in place */
    assert_int_equal(dr_store_open(f->url, (struct dr_store **)&f->obj), DR_OK);
    assert_int_equal(dr_store_queue_load(f->obj, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[1].id, in[1].id);
    assert_memory_equal(out[1].data, payload, sizeof(payload));
    dr_qmsgs_free(out, n);
    assert_int_equal(dr_store_dedup_seen(f->obj, "r-key", 0, &seen), DR_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(dlq_count(f->obj), 1);
    assert_int_equal(count_rows(dr_store_db(f->obj), "SELECT COUNT(*) FROM schema_migrations"),
                     (int64_t)dr__store_nmigrations);
}

/* Two instances on one database: each loads only what it owns or what nobody holds; a lapsed
 * lease is taken over; renewal keeps rows. */
static void queue_ownership(void **state)
{
    struct fx *f = *state;
    struct dr_store *a = f->obj, *b = NULL;
    struct dr_qmsg in[3] = {qmsg("o-1"), qmsg("o-2"), qmsg("o-3")};
    struct dr_qbatch batch = {.inserts = in, .ninserts = 3};
    struct dr_qmsg *out = NULL;
    size_t n = 0;

    assert_int_equal(dr_store_open(f->url, &b), DR_OK);
    assert_int_equal(dr_store_queue_set_owner(a, "host-a:1", 60000), DR_OK);
    assert_int_equal(dr_store_queue_set_owner(b, "host-b:1", 60000), DR_OK);
    assert_int_equal(dr_store_apply(a, &batch), DR_OK);
    /* b sees nothing a holds; a sees its own rows */
    assert_int_equal(dr_store_queue_load(b, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dr_store_queue_claim_expired(b, 10, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dr_store_queue_load(a, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 3);
    dr_qmsgs_free(out, n);
    assert_int_equal(dr_store_queue_renew(a), DR_OK);
    /* a stops renewing: its leases lapse, b takes the rows over and then a cannot load them */
    assert_int_equal(dr_db_exec(dr_store_db(a), "UPDATE queue_seg SET lease_until = 1", NULL, 0,
                                NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr_store_queue_claim_expired(b, 10, &out, &n), DR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].message_id, "o-1");
    dr_qmsgs_free(out, n);
    assert_int_equal(dr_store_queue_claim_expired(b, 10, &out, &n), DR_OK);
    assert_int_equal(n, 0); /* its own now */
    assert_int_equal(dr_store_queue_load(a, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dr_store_queue_load(b, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 3);
    dr_qmsgs_free(out, n);
    dr_store_close(b);
}

struct renewal {
    struct dr_store *st;
    int err;
};

static void *renew_thread(void *arg)
{
    struct renewal *r = arg;
    r->err = dr_store_queue_renew(r->st);
    return NULL;
}

static int64_t lock_waiters(struct dr_db *db)
{
    return count_rows(db, "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND query LIKE 'UPDATE queue_seg SET lease_until%'");
}

/*
 * PostgreSQL: a lease renewal meets a transaction that holds the first of two segments and then
 * updates the second (as finishing segments does, in id order). The first segment's row was
 * updated before, so a plain scan finds it after the second: the renewal would lock the second,
 * wait for the first, and the two would deadlock. It locks in id order instead and just waits.
 */
static void queue_renew_waits_without_deadlock(void **state)
{
    struct fx *f = *state;
    struct dr_store *a = f->obj;
    struct dr_qmsg in1[1] = {qmsg("r-1")}, in2[1] = {qmsg("r-2")};
    struct dr_qbatch b1 = {.inserts = in1, .ninserts = 1}, b2 = {.inserts = in2, .ninserts = 1};
    struct ints ids = {.n = 0};
    struct dr_db *other = NULL;
    struct dr_db_tx *tx = NULL;
    struct renewal r = {.st = a, .err = -1};
    pthread_t th;
    struct dr_db_val p[1];
    int64_t deadline;

    assert_int_equal(dr_store_queue_set_owner(a, "host-a:1", 60000), DR_OK);
    assert_int_equal(dr_store_apply(a, &b1), DR_OK);
    assert_int_equal(dr_store_apply(a, &b2), DR_OK);
    assert_int_equal(dr_db_exec(dr_store_db(a), "SELECT id FROM queue_seg ORDER BY id", NULL, 0,
                                collect_int, &ids, NULL),
                     DR_OK);
    assert_int_equal(ids.n, 2);
    assert_int_equal(dr_db_open(f->url, 2, &other), DR_OK); /* one for tx, one to watch */
    p[0] = DR_DB_INTV(ids.v[0]);
    /* the first segment's row now comes after the second's in the heap */
    assert_int_equal(
        dr_db_exec(other, "UPDATE queue_seg SET n = n WHERE id = $1", p, 1, NULL, NULL, NULL),
        DR_OK);
    assert_int_equal(dr_db_begin(other, &tx), DR_OK);
    assert_int_equal(
        dr_db_tx_exec(tx, "UPDATE queue_seg SET n = n WHERE id = $1", p, 1, NULL, NULL, NULL),
        DR_OK);

    assert_int_equal(pthread_create(&th, NULL, renew_thread, &r), 0);
    deadline = dr_mono_ms() + 10000;
    while (lock_waiters(other) == 0) {
        assert_true(dr_mono_ms() < deadline);
        usleep(10000);
    }
    p[0] = DR_DB_INTV(ids.v[1]);
    assert_int_equal(
        dr_db_tx_exec(tx, "UPDATE queue_seg SET n = n WHERE id = $1", p, 1, NULL, NULL, NULL),
        DR_OK);
    assert_int_equal(dr_db_commit(tx), DR_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(count_rows(other, "SELECT COUNT(*) FROM queue_seg WHERE lease_until > 1"), 2);
    dr_db_close(other);
}

struct worker {
    struct dr_store *st;
    int no;
    int errors;
    volatile int *stop;
};

static void *writer(void *arg)
{
    struct worker *w = arg;

    for (int k = 0; k < 40; k++) {
        char mids[5][32];
        struct dr_qmsg in[5];
        struct dr_qbatch b = {.inserts = in, .ninserts = 5};
        int64_t dels[5];
        const char *keys[5];
        for (int i = 0; i < 5; i++) {
            snprintf(mids[i], sizeof(mids[i]), "w%d-%d-%d", w->no, k, i);
            in[i] = qmsg(mids[i]);
            keys[i] = mids[i];
        }
        if (dr_store_apply(w->st, &b)) {
            w->errors++;
            continue;
        }
        for (int i = 0; i < 5; i++) {
            dels[i] = in[i].id;
            w->errors += in[i].id <= 0;
        }
        struct dr_dead_letter d = dl(mids[0], "t", "p", "rejected", "e", 1);
        struct dr_qbatch done = {.deletes = dels,
                                 .ndeletes = 5,
                                 .dedup_keys = keys,
                                 .ndedup = 5,
                                 .dead = &d,
                                 .ndead = k % 10 == 0};
        if (dr_store_apply(w->st, &done)) {
            w->errors++;
        }
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct worker *w = arg;

    while (!*w->stop) {
        struct dr_qmsg *q = NULL;
        struct dr_dead_letter *d = NULL;
        struct dr_dlq_filter f = {.topic = "t"};
        size_t n = 0;
        int64_t c;
        int seen;
        if (dr_store_queue_load(w->st, 0, 50, &q, &n)) {
            w->errors++;
        }
        dr_qmsgs_free(q, n);
        if (dr_store_dlq_list(w->st, &f, &d, &n)) {
            w->errors++;
        }
        dr_dead_letters_free(d, n);
        if (dr_store_dedup_seen(w->st, "w0-0-0", 0, &seen) || dr_store_queue_count(w->st, &c)) {
            w->errors++;
        }
    }
    return NULL;
}

static void concurrent_apply_and_reads(void **state)
{
    struct dr_store *st = fx_store(state);
    volatile int stop = 0;
    struct worker w[6];
    pthread_t th[6];
    int seen = 0;

    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.st = st, .no = i, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, i < 4 ? writer : reader, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    stop = 1;
    for (int i = 4; i < 6; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(w[i].errors, 0);
    }
    assert_int_equal(queue_count(st), 0);
    assert_int_equal(dlq_count(st), 4 * 4);
    assert_int_equal(dr_store_dedup_seen(st, "w3-39-4", 0, &seen), DR_OK);
    assert_int_equal(seen, 1);
}

static int64_t rows_in(struct dr_store *st, const char *table)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    return count_rows(dr_store_db(st), sql);
}

static void mark_done(struct dr_store *st, const int64_t *ids, size_t n)
{
    struct dr_qbatch b = {.deletes = ids, .ndeletes = n};

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
}

/* 2,500 messages inserted together fill three segments; paging goes through segment boundaries;
 * done messages never come back; retry bookkeeping of a done or deleted message changes
 * nothing; a segment whose messages are all done is deleted with its per-message rows. */
static void segments_page_finish_and_clean_up(void **state)
{
    enum { N = 2500 };
    struct dr_store *st = fx_store(state);
    struct dr_qmsg *in = dr_xcalloc(N, sizeof(*in));
    char(*mids)[16] = dr_xcalloc(N, sizeof(*mids));
    int64_t *ids = dr_xcalloc(N + 3, sizeof(*ids));
    struct dr_qbatch b = {.inserts = in, .ninserts = N};
    int64_t after = 0;
    size_t total = 0, nd = 0;

    for (int i = 0; i < N; i++) {
        snprintf(mids[i], sizeof(mids[i]), "s-%04d", i);
        in[i] = qmsg(mids[i]);
        in[i].fresh_id = 1;
    }
    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    for (int i = 1; i < N; i++) {
        assert_true(in[i].id > in[i - 1].id);
    }
    assert_int_equal(rows_in(st, "queue_seg"), 3);
    assert_int_equal(rows_in(st, "queue_mid"), 0); /* fresh ids cannot repeat: nothing to check */
    assert_int_equal(queue_count(st), N);
    for (;;) {
        struct dr_qmsg *out = NULL;
        size_t n = 0;
        assert_int_equal(dr_store_queue_load(st, after, 700, &out, &n), DR_OK);
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(out[k].id, in[total + k].id);
            assert_string_equal(out[k].message_id, mids[total + k]);
            assert_int_equal(out[k].fresh_id, 1);
            assert_memory_equal(out[k].data, payload, sizeof(payload));
        }
        after = out[n - 1].id;
        total += n;
        dr_qmsgs_free(out, n);
    }
    assert_int_equal(total, N);

    /* every other message of the first segment, all of the third, with repeats and ids that
     * are not queued mixed in */
    for (int i = 0; i < 1024; i += 2) {
        ids[nd++] = in[i].id;
    }
    for (int i = 2048; i < N; i++) {
        ids[nd++] = in[i].id;
    }
    ids[nd++] = in[0].id;
    ids[nd++] = in[N - 1].id + 1;
    ids[nd++] = -5;
    mark_done(st, ids, nd);
    assert_int_equal(queue_count(st), N - 512 - 452);
    assert_int_equal(rows_in(st, "queue_seg"), 2);
    assert_int_equal(rows_in(st, "queue_body"), 2);
    assert_int_equal(rows_in(st, "queue_state"), 512);

    struct dr_qupdate ups[2] = {{.id = in[0].id, .attempts = 4, .last_error = "late"},
                                {.id = in[N - 1].id, .attempts = 4, .last_error = "gone"}};
    struct dr_qbatch ub = {.updates = ups, .nupdates = 2};
    assert_int_equal(dr_store_apply(st, &ub), DR_OK);
    assert_int_equal(rows_in(st, "queue_state"), 512);

    struct dr_qmsg *out = NULL;
    size_t n = 0;
    assert_int_equal(dr_store_queue_load(st, 0, 5000, &out, &n), DR_OK);
    assert_int_equal(n, 512 + 1024);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(out[k].attempts, 0);
        assert_true(k >= 512 || out[k].id == in[2 * k + 1].id);
    }
    dr_qmsgs_free(out, n);

    nd = 0;
    for (int i = 1; i < 2048; i += 2) {
        ids[nd++] = in[i].id;
    }
    for (int i = 1024; i < 2048; i += 2) {
        ids[nd++] = in[i].id;
    }
    mark_done(st, ids, nd);
    assert_int_equal(queue_count(st), 0);
    assert_int_equal(rows_in(st, "queue_seg"), 0);
    assert_int_equal(rows_in(st, "queue_body"), 0);
    assert_int_equal(rows_in(st, "queue_state"), 0);
    free(in);
    free(mids);
    free(ids);
}

/* A message_id that can repeat (an emit) is refused while queued and taken again once done. */
static void message_id_queued_again_after_done(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg a[2] = {qmsg("emit-1"), qmsg("emit-2")};
    struct dr_qmsg again[1] = {qmsg("emit-1")};
    struct dr_qbatch b = {.inserts = a, .ninserts = 2};
    struct dr_qbatch b2 = {.inserts = again, .ninserts = 1};

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(rows_in(st, "queue_mid"), 2);
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);
    assert_int_equal(again[0].id, 0);
    mark_done(st, &a[0].id, 1);
    assert_int_equal(rows_in(st, "queue_mid"), 1);
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);
    assert_true(again[0].id > a[1].id);
    mark_done(st, &a[1].id, 1);
    mark_done(st, &again[0].id, 1);
    assert_int_equal(rows_in(st, "queue_mid"), 0);
    assert_int_equal(rows_in(st, "queue_seg"), 0);
}

/* Rows of the one-row-per-message table of earlier versions move into segments on open, with
 * their retry bookkeeping, and their message_ids still cannot be queued twice. */
static void legacy_rows_converted_on_open(void **state)
{
    struct fx *f = *state;
    struct dr_db_val p[2] = {DR_DB_BLOBV(payload, sizeof(payload)), DR_DB_BLOBV("", 0)};
    struct dr_qmsg *out = NULL;
    size_t n = 0;

    assert_int_equal(
        dr_db_exec(dr_store_db(f->obj),
                   "INSERT INTO queue (message_id, topic, attrs_json, data, ordering_key, "
                   "publish_time_ms, attempts, not_before_ms, first_failure_ms, last_error) "
                   "VALUES ('old-1', 't1', '{\"a\":\"b\"}', $1, 'key', 5, 2, 6, 7, 'boom'), "
                   "('old-2', 't2', '{}', $2, NULL, 8, 0, 0, 0, NULL)",
                   p, 2, NULL, NULL, NULL),
        DR_OK);
    dr_store_close(f->obj);
    f->obj = NULL;
    assert_int_equal(dr_store_open(f->url, (struct dr_store **)&f->obj), DR_OK);
    assert_int_equal(rows_in(f->obj, "queue"), 0);
    assert_int_equal(dr_store_queue_load(f->obj, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].message_id, "old-1");
    assert_string_equal(out[0].topic, "t1");
    assert_string_equal(out[0].attrs_json, "{\"a\":\"b\"}");
    assert_int_equal(out[0].data_len, sizeof(payload));
    assert_memory_equal(out[0].data, payload, sizeof(payload));
    assert_string_equal(out[0].ordering_key, "key");
    assert_int_equal(out[0].publish_time_ms, 5);
    assert_int_equal(out[0].attempts, 2);
    assert_int_equal(out[0].not_before_ms, 6);
    assert_int_equal(out[0].first_failure_ms, 7);
    assert_string_equal(out[0].last_error, "boom");
    assert_string_equal(out[1].message_id, "old-2");
    assert_int_equal(out[1].data_len, 0);
    assert_null(out[1].ordering_key);
    assert_null(out[1].last_error);
    assert_int_equal(out[1].attempts, 0);
    dr_qmsgs_free(out, n);

    struct dr_qmsg again[1] = {qmsg("old-1")};
    struct dr_qbatch b = {.inserts = again, .ninserts = 1};
    assert_int_equal(dr_store_apply(f->obj, &b), DR_OK);
    assert_int_equal(again[0].id, 0);
}

/* A damaged body: what can be read is, the rest of that segment is skipped (and logged), the
 * segments after it are read as usual. */
static void damaged_segment_skipped(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg a[2] = {qmsg("d-1"), qmsg("d-2")};
    struct dr_qmsg c[1] = {qmsg("d-3")};
    struct dr_qbatch b = {.inserts = a, .ninserts = 2};
    struct dr_qbatch b2 = {.inserts = c, .ninserts = 1};
    struct dr_qmsg *out = NULL;
    size_t n = 0;
    char sql[160];

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);
    /* cut the first segment's body inside its second message */
    snprintf(sql, sizeof(sql),
             "UPDATE queue_body SET body = substr(body, 1, length(body) - 3) WHERE seg = %lld",
             (long long)(a[0].id >> 10));
    assert_int_equal(dr_db_exec(dr_store_db(st), sql, NULL, 0, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_store_queue_load(st, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].message_id, "d-1");
    assert_string_equal(out[1].message_id, "d-3");
    dr_qmsgs_free(out, n);
}

/* dr_store_queue_count_crash: an attempt more for each queued message named, first failure set
 * once, last error replaced; done and unknown ids left alone. */
static void crash_counted_once_per_death(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg in[3] = {qmsg("c-1"), qmsg("c-2"), qmsg("c-3")};
    struct dr_qbatch b = {.inserts = in, .ninserts = 3};
    struct dr_qmsg *out = NULL;
    size_t n = 0, counted = 99;

    assert_int_equal(dr_store_apply(st, &b), DR_OK);
    struct dr_qupdate up = {.id = in[1].id,
                            .attempts = 2,
                            .first_failure_ms = 1700000001000,
                            .last_error = "vespa 503"};
    int64_t done = in[2].id;
    struct dr_qbatch b2 = {.updates = &up, .nupdates = 1, .deletes = &done, .ndeletes = 1};
    assert_int_equal(dr_store_apply(st, &b2), DR_OK);

    int64_t ids[4] = {in[0].id, in[1].id, in[2].id, in[2].id + 1000000};
    int64_t before = dr_now_ms();
    assert_int_equal(dr_store_queue_count_crash(st, ids, 4, "died", &counted), DR_OK);
    assert_int_equal(counted, 2);
    assert_int_equal(dr_store_queue_count_crash(st, ids, 1, "died again", NULL), DR_OK);

    assert_int_equal(dr_store_queue_load(st, 0, 10, &out, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, in[0].id);
    assert_int_equal(out[0].attempts, 2);
    assert_true(out[0].first_failure_ms >= before);
    assert_string_equal(out[0].last_error, "died again");
    assert_int_equal(out[1].id, in[1].id);
    assert_int_equal(out[1].attempts, 3);
    assert_int_equal(out[1].first_failure_ms, 1700000001000);
    assert_string_equal(out[1].last_error, "died");
    dr_qmsgs_free(out, n);

    assert_int_equal(dr_store_queue_count_crash(st, NULL, 0, "x", &counted), DR_OK);
    assert_int_equal(counted, 0);
    assert_int_equal(dr_store_queue_count_crash(st, ids, 1, NULL, NULL), DR_EINVAL);
}

static void null_arguments(void **state)
{
    struct dr_store *st = fx_store(state);
    struct dr_qmsg *q = NULL;
    size_t n = 0;
    int64_t c = 0;

    assert_int_equal(dr_store_open(NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_store_queue_load(NULL, 0, 1, &q, &n), DR_EINVAL);
    assert_int_equal(dr_store_queue_load(st, 0, 1, NULL, &n), DR_EINVAL);
    assert_int_equal(dr_store_queue_count(st, NULL), DR_EINVAL);
    assert_int_equal(dr_store_dlq_count(NULL, &c), DR_EINVAL);
    assert_int_equal(dr_store_dlq_delete(NULL, 1), DR_EINVAL);
    assert_null(dr_store_db(NULL));
    assert_non_null(dr_store_db(st));
    dr_store_close(NULL);
    dr_qmsg_cleanup(NULL);
    dr_qmsgs_free(NULL, 3);
    dr_dead_letter_cleanup(NULL);
    dr_dead_letters_free(NULL, 3);
}

#define STORE_TESTS(X)                                                                             \
    X(insert_load_roundtrip)                                                                       \
    X(duplicate_message_id_skipped)                                                                \
    X(queue_order_and_paging)                                                                      \
    X(updates_deletes_dedup_dead)                                                                  \
    X(apply_validation_changes_nothing)                                                            \
    X(apply_is_atomic)                                                                             \
    X(dedup_window_and_purge)                                                                      \
    X(dedup_seen_many)                                                                             \
    X(dlq_put_get_delete)                                                                          \
    X(dlq_filters)                                                                                 \
    X(dlq_limit_count_purge)                                                                       \
    X(dlq_count_matching_fixes_the_set)                                                            \
    X(dlq_take_requeues_once)                                                                      \
    X(dlq_take_races_queue_once)                                                                   \
    X(reopen_keeps_data)                                                                           \
    X(queue_ownership)                                                                             \
    X(concurrent_apply_and_reads)                                                                  \
    X(segments_page_finish_and_clean_up)                                                           \
    X(message_id_queued_again_after_done)                                                          \
    X(legacy_rows_converted_on_open)                                                               \
    X(damaged_segment_skipped)                                                                     \
    X(crash_counted_once_per_death)                                                                \
    X(null_arguments)

int main(void)
{
    const struct CMUnitTest lite[] = {STORE_TESTS(ON_SQLITE)};
    const struct CMUnitTest pg[] = {STORE_TESTS(ON_PG) ON_PG(queue_renew_waits_without_deadlock)};
    int failed = 0;

    failed += cmocka_run_group_tests_name("store sqlite", lite, NULL, NULL);
    failed += cmocka_run_group_tests_name("store postgresql", pg, NULL, NULL);
    return failed ? 1 : 0;
}
