/*
 * Tracking number formats (src/processors/shipment/tracking.c, formats.c) against the public
 * test numbers of tracking_number_data (tests/data/shipment/tracking_number_data), plus the
 * carriers that set does not cover, with numbers built for these tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/shipment.h"
#include "processors/shipment/tracking_int.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* The test data of one courier in tracking_number_data (dir: the test data directory). */
static cJSON *load_courier(const char *dir, const char *courier)
{
    char path[1024], *json;
    cJSON *root;

    snprintf(path, sizeof(path), "%s/shipment/tracking_number_data/couriers/%s.json", dir, courier);
    json = read_file(path);
    assert_non_null(json);
    root = cJSON_Parse(json);
    free(json);
    assert_non_null(root);
    return root;
}

static void compact(const char *in, char *out, size_t outsz)
{
    size_t n = 0;
    for (; *in && n + 1 < outsz; in++) {
        if (*in != ' ') {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
}

static const struct dr__format *format_by_name(const char *name)
{
    for (size_t i = 0; i < dr__format_count; i++) {
        if (strcmp(dr__formats[i].name, name) == 0) {
            return &dr__formats[i];
        }
    }
    return NULL;
}

/* The match of format f among the matches of number, or NULL. */
static const struct dr_tracking_match *validate_as(const char *number, const struct dr__format *f,
                                                   struct dr_tracking_match *m, size_t max)
{
    size_t n = 0;

    if (dr_tracking_validate(number, m, max, &n) != DR_OK) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].format, f->id) == 0) {
            return &m[i];
        }
    }
    return NULL;
}

static int validates_as_carrier(const char *number, const char *courier_code)
{
    struct dr_tracking_match m[8];
    size_t n = 0;

    if (dr_tracking_validate(number, m, 8, &n) != DR_OK) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(courier_code, "s10") == 0 ? strcmp(m[i].format, "s10") == 0
                                             : strcmp(m[i].carrier, courier_code) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The shipment entry for number in an extraction of text, or NULL. */
static const cJSON *find_in_text(const char *text, const char *number, cJSON **root)
{
    const cJSON *s;

    assert_int_equal(dr_shipment_extract(NULL, NULL, text, strlen(text), root), DR_OK);
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(*root, "shipments"))
    {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(s, "tracking_number");
        if (cJSON_IsString(tn) && strcmp(tn->valuestring, number) == 0) {
            return s;
        }
    }
    return NULL;
}

static int lists(const cJSON *shipment, const char *key, const char *value)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(shipment, key))
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, value) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Asserts text holds number as a valid shipment of format f. */
static void assert_found(const char *text, const char *number, const struct dr__format *f)
{
    cJSON *root = NULL;
    const cJSON *s = find_in_text(text, number, &root);

    if (!s || !lists(s, "formats", f->id) ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "valid"))) {
        char *dump = cJSON_PrintUnformatted(root);
        print_error("%s (%s) not found in \"%s\": %s\n", number, f->id, text, dump);
        free(dump);
        cJSON_Delete(root);
        fail();
    }
    cJSON_Delete(root);
}

static void assert_not_found(const char *text, const char *number)
{
    cJSON *root = NULL;
    const cJSON *s = find_in_text(text, number, &root);

    if (s) {
        print_error("%s should need context in \"%s\"\n", number, text);
        cJSON_Delete(root);
        fail();
    }
    cJSON_Delete(root);
}

/* Every character apart, as upstream writes some of its test numbers. */
static void spread(const char *in, char *out, size_t outsz)
{
    size_t n = 0;
    for (; *in && n + 3 < outsz; in++) {
        if (*in == ' ') {
            continue;
        }
        if (n && *in != '-' && out[n - 1] != '-') {
            out[n++] = ' ';
        }
        out[n++] = *in;
    }
    out[n] = '\0';
}

struct tally {
    int valid, invalid, check_changes, texts;
};

static void check_number_valid(const char *courier, const struct dr__format *f, const char *raw,
                               struct tally *t)
{
    struct dr_tracking_match m[8];
    const struct dr_tracking_match *hit;
    char num[128], spaced[256], text[512];

    compact(raw, num, sizeof(num));
    hit = validate_as(raw, f, m, 8);
    if (!hit) {
        print_error("%s: valid number \"%s\" does not validate as %s\n", courier, raw, f->id);
        fail();
    }
    assert_string_equal(hit->number, num);
    if (strcmp(courier, "s10") != 0) {
        assert_string_equal(hit->carrier, courier);
    }
    t->valid++;

    /* a changed check digit must fail */
    if (hit->check_pos >= 0) {
        const char *alphabet =
            f->checksum == DR__CK_MOD37_36 ? "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" : "0123456789";
        char changed[128];
        for (const char *a = alphabet; *a; a++) {
            if (*a == num[hit->check_pos]) {
                continue;
            }
            strcpy(changed, num);
            changed[hit->check_pos] = *a;
            if (validate_as(changed, f, m, 8)) {
                print_error("%s: \"%s\" validates with check digit changed\n", f->id, changed);
                fail();
            }
            t->check_changes++;
        }
    }

    /* in text: labelled, compact and with the characters spread out */
    snprintf(text, sizeof(text), "Your parcel is on its way.\nTracking number: %s\nThank you.",
             raw);
    assert_found(text, num, f);
    snprintf(text, sizeof(text), "Tracking number: %s.", num);
    assert_found(text, num, f);
    spread(num, spaced, sizeof(spaced));
    snprintf(text, sizeof(text), "Track & trace code: %s - thanks", spaced);
    assert_found(text, num, f);
    t->texts += 3;

    /* without context only the formats that can stand alone */
    snprintf(text, sizeof(text), "The box %s left the building.", num);
    if (f->trust == DR__TRUST_CONTEXT) {
        assert_not_found(text, num);
    } else {
        assert_found(text, num, f);
    }
    snprintf(text, sizeof(text), "Your order: see %s today", raw);
    if (f->trust == DR__TRUST_ALWAYS) {
        assert_found(text, num, f);
    }
    t->texts += 2;
}

static void corpus(void **state)
{
    static const char *const files[] = {"amazon", "canadapost", "dhl", "fedex", "lasership",
                                        "ontrac", "s10",        "ups", "usps"};
    const char *dir = getenv("DR_TEST_DATA");
    struct tally t = {0};
    int formats = 0;

    assert_non_null(dir);
    for (size_t fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
        cJSON *root = load_courier(dir, files[fi]);
        const cJSON *tn;
        const char *courier;

        courier = cJSON_GetObjectItemCaseSensitive(root, "courier_code")->valuestring;
        cJSON_ArrayForEach(tn, cJSON_GetObjectItemCaseSensitive(root, "tracking_numbers"))
        {
            const char *name = cJSON_GetObjectItemCaseSensitive(tn, "name")->valuestring;
            const cJSON *nums = cJSON_GetObjectItemCaseSensitive(tn, "test_numbers"), *v;
            const struct dr__format *f = format_by_name(name);

            if (!f) {
                print_error("format \"%s\" of %s is not implemented\n", name, courier);
                fail();
            }
            formats++;
            cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(nums, "valid"))
            {
                check_number_valid(courier, f, v->valuestring, &t);
            }
            cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(nums, "invalid"))
            {
                if (validates_as_carrier(v->valuestring, courier)) {
                    print_error("%s: invalid number \"%s\" validates\n", courier, v->valuestring);
                    fail();
                }
                t.invalid++;
            }
        }
        cJSON_Delete(root);
    }
    print_message("corpus: %d formats, %d valid, %d invalid, %d changed check digits, %d texts\n",
                  formats, t.valid, t.invalid, t.check_changes, t.texts);
    assert_true(formats >= 27);
    assert_true(t.valid >= 60 && t.invalid >= 25);
}

/*
 * Carriers beyond the corpus: numbers built for these tests, check digits computed by hand with
 * each carrier's algorithm (see test_checksum.c), and the same with a wrong check digit.
 */
struct extra {
    const char *format;
    const char *good;
    const char *bad; /* wrong check digit, wrong prefix or wrong length */
};

static const struct extra extras[] = {
    {"purolator_numeric", "412345678905", "412345678904"},
    {"purolator_numeric", "320595463938", "320595463939"},
    {"purolator_alpha", "KYV009956937", "KY009956937"},
    {"canpar_22", "D576002440000001718010", "M576002440000002510003"},
    {"dpd", "008182709980000020045327276N", "008182709980000020045327276A"},
    {"dpd", "0081 827 0998 0000 0200 33 350 276 C", "008182709980000020033350276D"},
    {"dpd_14", "09980000020033F", "09980000020033D"},
    {"dpd_14", "13490015284111V", "13490015284111W"},
    {"yodel", "JJD0002257639032011", "JC0002254405060992"},
    {"yodel", "JD0002242617644732", "JD000225440506099"},
    {"landmark_global", "LTN74207623N1", "LTN74207623N2"},
    {"old_dominion", "07209562763", "07209562773"},
    {"old_dominion", "77812345674", "77812345675"},
    {"old_dominion_guaranteed", "80123456784", "80123456783"},
    {"speedee", "SP029692510000920746", "SX029692510000920746"},
    {"yunexpress", "YT2229521272164446", "YT222952127216444"},
    {"gofo_us", "GFUS01011884214464", "GFUS0101188421446"},
    {"dhl_paket_sscc", "00340434161094042557", "00340434161094042558"},
    {"dhl_paket_sscc", "00 3404 3416 1094 0425 57", "01340434161094042557"},
};

static const struct dr__format *format_by_id(const char *id)
{
    for (size_t i = 0; i < dr__format_count; i++) {
        if (strcmp(dr__formats[i].id, id) == 0) {
            return &dr__formats[i];
        }
    }
    return NULL;
}

static void extra_formats(void **state)
{
    struct dr_tracking_match m[8];

    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        const struct dr__format *f = format_by_id(extras[i].format);
        char num[64], text[256];

        assert_non_null(f);
        if (!validate_as(extras[i].good, f, m, 8)) {
            print_error("%s does not validate as %s\n", extras[i].good, f->id);
            fail();
        }
        if (validate_as(extras[i].bad, f, m, 8)) {
            print_error("%s validates as %s\n", extras[i].bad, f->id);
            fail();
        }
        compact(extras[i].good, num, sizeof(num));
        snprintf(text, sizeof(text), "Your %s tracking number is %s.", f->carrier, num);
        assert_found(text, num, f);
    }
}

/* 1 (with a message) when number, valid as f, still validates as f once every digit of its
 * serial is d, whatever its check character then is. The serial is found with f's own pattern.
 * Formats without a check digit are exempt: the corpus lists TBA000000000000 as valid. */
static int degenerate_validates(const char *raw, const struct dr__format *f, char d)
{
    const char *alphabet =
        f->checksum == DR__CK_MOD37_36 ? "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" : "0123456789";
    struct dr_tracking_match m[8];
    char num[128], v[128];
    int errcode, bad = 0;
    PCRE2_SIZE erroff, *ov;
    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t serial, check;

    if (f->checksum == DR__CK_NONE) {
        return 0;
    }
    compact(raw, num, sizeof(num));
    re = pcre2_compile((PCRE2_SPTR)f->regex, PCRE2_ZERO_TERMINATED,
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY, &errcode, &erroff,
                       NULL);
    assert_non_null(re);
    md = pcre2_match_data_create_from_pattern(re, NULL);
    assert_true(pcre2_match(re, (PCRE2_SPTR)num, strlen(num), 0, 0, md, NULL) > 0);
    ov = pcre2_get_ovector_pointer(md);
    serial = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "SerialNumber");
    check = (uint32_t)pcre2_substring_number_from_name(re, (PCRE2_SPTR) "CheckDigit");
    strcpy(v, num);
    for (size_t i = ov[2 * serial]; i < ov[2 * serial + 1]; i++) {
        if (v[i] >= '0' && v[i] <= '9') {
            v[i] = d;
        }
    }
    for (const char *c = alphabet; *c && !bad; c++) {
        v[ov[2 * check]] = *c;
        if (validate_as(v, f, m, 8)) {
            print_error("degenerate \"%s\" validates as %s\n", v, f->id);
            bad = 1;
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return bad;
}

static void degenerate_numbers(void **state)
{
    static const char *const files[] = {"amazon", "canadapost", "dhl", "fedex", "lasership",
                                        "ontrac", "s10",        "ups", "usps"};
    static const char *const named[] = {"000000000000",
                                        "111111111111",
                                        "999999999999",
                                        "000000000000000",
                                        "0000000000",
                                        "00000000000000000000",
                                        "1Z0000000000000000",
                                        "RR000000005GB",
                                        "001111111111111119",
                                        "0000000000000000",
                                        "00000000000000000000000000",
                                        "777777777777"};
    const char *dir = getenv("DR_TEST_DATA");
    struct dr_tracking_match m[8];
    size_t n = 0;
    int tried = 0, bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (dr_tracking_validate(named[i], m, 8, &n) == DR_OK) {
            print_error("degenerate \"%s\" validates as %s\n", named[i], m[0].format);
            bad++;
        }
    }
    for (char d = '0'; d <= '9'; d++) {
        for (size_t len = 8; len <= DR_TRACKING_MAX; len++) {
            char v[DR_TRACKING_MAX + 1];
            memset(v, d, len);
            v[len] = '\0';
            if (dr_tracking_validate(v, m, 8, &n) == DR_OK) {
                print_error("degenerate \"%s\" validates as %s\n", v, m[0].format);
                bad++;
            }
            tried++;
        }
    }
    assert_non_null(dir);
    for (size_t fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
        cJSON *root = load_courier(dir, files[fi]);
        const cJSON *tn, *v;

        cJSON_ArrayForEach(tn, cJSON_GetObjectItemCaseSensitive(root, "tracking_numbers"))
        {
            const cJSON *nums = cJSON_GetObjectItemCaseSensitive(tn, "test_numbers");
            const struct dr__format *f =
                format_by_name(cJSON_GetObjectItemCaseSensitive(tn, "name")->valuestring);

            assert_non_null(f);
            cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(nums, "valid"))
            {
                for (char d = '0'; d <= '9'; d++, tried++) {
                    bad += degenerate_validates(v->valuestring, f, d);
                }
            }
        }
        cJSON_Delete(root);
    }
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        for (char d = '0'; d <= '9'; d++, tried++) {
            bad += degenerate_validates(extras[i].good, format_by_id(extras[i].format), d);
        }
    }
    print_message("degenerate: %d tried\n", tried);
    assert_int_equal(bad, 0);
}

static void ambiguity(void **state)
{
    struct dr_tracking_match m[8];
    size_t n = 0;
    int fedex = 0, dpd = 0;
    cJSON *root = NULL;
    const cJSON *s;

    /* 15 digits that pass both FedEx Ground (mod 10) and DPD (MOD 37,36) */
    assert_int_equal(dr_tracking_validate("012345678901217", m, 8, &n), DR_OK);
    for (size_t i = 0; i < n; i++) {
        fedex |= strcmp(m[i].format, "fedex_ground") == 0;
        dpd |= strcmp(m[i].format, "dpd_14") == 0;
    }
    assert_true(fedex && dpd);
    /* reported once, with both candidates; the sender picks the likely one */
    assert_int_equal(dr_shipment_extract("Your parcel", "DPD <noreply@dpd.co.uk>",
                                         "Parcel number: 012345678901217", 31, &root),
                     DR_OK);
    s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "shipments"), 0);
    assert_non_null(s);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "shipments")), 1);
    assert_true(lists(s, "carriers", "fedex") && lists(s, "carriers", "dpd"));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(s, "carrier")->valuestring, "dpd");
    cJSON_Delete(root);
}

/* Carrier names read as the module's codes, whatever their case: a label spelling "UPS" does not
 * spare a number UPS's check digit refutes. */
static void carrier_codes(void **state)
{
    (void)state;
    assert_string_equal(dr_shipment_carrier_code("ups"), "ups");
    assert_string_equal(dr_shipment_carrier_code("UPS"), "ups");
    assert_string_equal(dr_shipment_carrier_code(" FedEx "), "fedex");
    assert_string_equal(dr_shipment_carrier_code("Royal Mail"), "royal_mail");
    assert_string_equal(dr_shipment_carrier_code("royal-mail"), "royal_mail");
    assert_string_equal(dr_shipment_carrier_code("CANADA_POST"), "canada_post");
    assert_string_equal(dr_shipment_carrier_code("AusPost"), "auspost");
    assert_string_equal(dr_shipment_carrier_code("china_post"), "china_post"); /* S10 only */
    assert_string_equal(dr_shipment_carrier_code("S10"), "s10");
    assert_string_equal(dr_shipment_carrier_code("GLS"), "gls"); /* named, no format */
    assert_null(dr_shipment_carrier_code("shopify"));
    assert_null(dr_shipment_carrier_code("aftership"));
    assert_null(dr_shipment_carrier_code("narvar"));
    assert_null(dr_shipment_carrier_code("australia_post"));
    assert_null(dr_shipment_carrier_code("colissimo"));
    assert_null(dr_shipment_carrier_code(""));
    assert_null(dr_shipment_carrier_code(NULL));

    assert_int_equal(dr_tracking_refuted("1Z5R89390357567128", "ups", NULL), 1);
    assert_int_equal(dr_tracking_refuted("1Z5R89390357567128", "UPS", NULL), 1);
    assert_int_equal(dr_tracking_refuted("1Z5R89390357567128", "Ups", NULL), 1);
    assert_int_equal(dr_tracking_refuted("MA038501234GB", "Royal Mail", NULL), 1);
    assert_int_equal(dr_tracking_refuted("1Z5R89390357567127", "UPS", NULL), 0);
}

static void validate_contract(void **state)
{
    struct dr_tracking_match m[4];
    size_t n = 99;
    char url[128], small[8];
    char longnum[400];

    assert_int_equal(dr_tracking_validate(NULL, m, 4, &n), DR_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(dr_tracking_validate("", m, 4, &n), DR_ENOTFOUND);
    assert_int_equal(dr_tracking_validate("1z879e930346834440", m, 4, &n), DR_ENOTFOUND);
    memset(longnum, '1', sizeof(longnum) - 1);
    longnum[sizeof(longnum) - 1] = '\0';
    assert_int_equal(dr_tracking_validate(longnum, m, 4, &n), DR_EINVAL);
    longnum[60] = '\0';
    assert_int_equal(dr_tracking_validate(longnum, m, 4, &n), DR_ENOTFOUND);

    assert_int_equal(dr_tracking_validate("1Z 879E93 03 4683444 0", m, 4, &n), DR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].number, "1Z879E930346834440");
    assert_int_equal(m[0].check_pos, 17);
    assert_int_equal(dr_tracking_url(&m[0], url, sizeof(url)), DR_OK);
    assert_non_null(strstr(url, "1Z879E930346834440"));
    assert_int_equal(dr_tracking_url(&m[0], small, sizeof(small)), DR_ETOOBIG);
    assert_string_equal(small, "");

    /* S10: the issuing country decides the carrier; an unknown country is invalid */
    assert_int_equal(dr_tracking_validate("RB123456785GB", m, 4, &n), DR_OK);
    assert_string_equal(m[0].carrier, "royal_mail");
    assert_string_equal(m[0].country, "GB");
    assert_string_equal(m[0].operator_name, "Royal Mail Group plc");
    assert_int_equal(dr_tracking_validate("CP000000014PL", m, 4, &n), DR_OK);
    assert_string_equal(m[0].carrier, "poczta_polska");
    assert_int_equal(dr_tracking_validate("RB123456785XX", m, 4, &n), DR_ENOTFOUND);

    /* a carrier's check digit refutes a number of its layout that fails it */
    {
        const char *fmt = NULL;
        assert_int_equal(dr_tracking_refuted("1Z879E930346834441", "ups", &fmt), 1);
        assert_string_equal(fmt, "UPS");
        assert_int_equal(dr_tracking_refuted("1Z879E930346834440", "ups", &fmt), 0);
        assert_null(fmt);
        assert_int_equal(dr_tracking_refuted("RB123456786GB", "royal_mail", NULL), 1);
        assert_int_equal(dr_tracking_refuted("RB123456786GB", "ups", NULL), 0);
        assert_int_equal(dr_tracking_refuted("000000000000", "fedex", NULL), 1);
        assert_int_equal(dr_tracking_refuted("TBA12345678901", "amazon", NULL), 0);
        assert_int_equal(dr_tracking_refuted("1Z879E930346834441", "gls", NULL), 0);
        assert_int_equal(dr_tracking_refuted(NULL, "ups", NULL), 0);
    }
}

/* ---- dr__scan(): the table-driven token loop against the loop it replaced ---------------- */

static int ref_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The loop before: every token of capitals and digits starts the windows scan_from() tries; a
 * scan of the text from that token on gives those windows first (scan_from looks only forward). */
static void ref_scan(const char *t, size_t len, pcre2_match_data *md, struct dr__hits *out)
{
    size_t p = 0;

    while (p < len) {
        size_t e = p;
        int lower = 0;

        if (!ref_alnum((unsigned char)t[p])) {
            p++;
            continue;
        }
        while (e < len && ref_alnum((unsigned char)t[e])) {
            lower |= t[e] >= 'a' && t[e] <= 'z';
            e++;
        }
        if (!lower) {
            struct dr__hits one = {.max = 512};
            assert_int_equal(dr__scan(t + p, len - p, md, &one), DR_OK);
            for (size_t i = 0; i < one.n && one.v[i].start == 0; i++) {
                struct dr__hit h = one.v[i];
                h.start += p;
                h.end += p;
                assert_true(out->n < out->max);
                out->v[out->n++] = h;
            }
            free(one.v);
        }
        p = e;
    }
}

static uint64_t scan_rng = 0x2545F4914F6CDD1Dull;
static size_t scan_rand(size_t n)
{
    scan_rng ^= scan_rng << 13;
    scan_rng ^= scan_rng >> 7;
    scan_rng ^= scan_rng << 17;
    return (size_t)(scan_rng % n);
}

static void scan_loop_finds_what_the_old_loop_found(void **state)
{
    static const char *const pieces[] = {"1Z879E930346834440",
                                         "1Z 879E 9303 4683 4440",
                                         "RR123456785GB",
                                         "4294142591",
                                         "9274 8931 5085 7730 7776 69",
                                         "61290912345678912345",
                                         "JJD0001234567890",
                                         "00340434161234567890",
                                         "AB",
                                         "12",
                                         "1234",
                                         "abc",
                                         "Order",
                                         "x9",
                                         "9x",
                                         "ÄB12",
                                         "é",
                                         "\xc2\xa0",
                                         "-",
                                         " ",
                                         "  ",
                                         "    ",
                                         "\n",
                                         "\t",
                                         ",",
                                         "#",
                                         "_",
                                         "\xff"};
    pcre2_match_data *md = pcre2_match_data_create(40, NULL);
    size_t texts = 0, hits = 0;

    (void)state;
    assert_int_equal(dr_shipment_init(), DR_OK);
    for (int round = 0; round < 3000; round++) {
        char t[2048];
        size_t len = 0, n = 1 + scan_rand(40);
        struct dr__hits now = {.max = 4096}, old = {.max = 4096};

        for (size_t w = 0; w < n; w++) {
            const char *p = pieces[scan_rand(sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = strlen(p);
            if (len + pl + 1 >= sizeof(t)) {
                break;
            }
            memcpy(t + len, p, pl);
            len += pl;
            if (scan_rand(3)) {
                t[len++] = ' ';
            }
        }
        old.v = calloc(old.max, sizeof(*old.v));
        assert_non_null(old.v);
        assert_int_equal(dr__scan(t, len, md, &now), DR_OK);
        ref_scan(t, len, md, &old);
        assert_int_equal(now.n, old.n);
        for (size_t i = 0; i < now.n; i++) {
            assert_int_equal(now.v[i].start, old.v[i].start);
            assert_int_equal(now.v[i].end, old.v[i].end);
            assert_int_equal(now.v[i].single_token, old.v[i].single_token);
            assert_int_equal(now.v[i].format, old.v[i].format);
            assert_string_equal(now.v[i].m.number, old.v[i].m.number);
        }
        hits += now.n;
        texts++;
        free(now.v);
        free(old.v);
    }
    /* numbers and long tokens on both sides of the scan's 64-byte blocks */
    for (size_t off = 0; off <= 140; off++) {
        static const char *const tails[] = {
            "1Z879E930346834440 x",
            "1Z879E930346834440",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ01234567891Z879E93034683"
            "4440",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789b 4294142591",
            "4294142591a",
            "RR123456785GB-1Z879E930346834440",
        };
        for (size_t k = 0; k < sizeof(tails) / sizeof(tails[0]); k++) {
            char t[512];
            struct dr__hits now = {.max = 4096}, old = {.max = 4096};
            size_t len;

            memset(t, k % 2 ? 'Q' : ' ', off); /* a token or spaces before */
            len = off + (size_t)snprintf(t + off, sizeof(t) - off, "%s", tails[k]);
            old.v = calloc(old.max, sizeof(*old.v));
            assert_non_null(old.v);
            assert_int_equal(dr__scan(t, len, md, &now), DR_OK);
            ref_scan(t, len, md, &old);
            assert_int_equal(now.n, old.n);
            for (size_t i = 0; i < now.n; i++) {
                assert_int_equal(now.v[i].start, old.v[i].start);
                assert_int_equal(now.v[i].end, old.v[i].end);
                assert_string_equal(now.v[i].m.number, old.v[i].m.number);
            }
            hits += now.n;
            free(now.v);
            free(old.v);
        }
    }
    print_message("scan: %zu texts, %zu hits\n", texts, hits);
    assert_true(hits > 1000);
    pcre2_match_data_free(md);
}

/* The work a scan may do is bounded per run of groups: a run of a thousand spaced digits (more
 * windows than any text needs) is read only so far, and a number after it is still found. */
static void scan_bounded_per_run(void **state)
{
    static const char tail[] = " then 1Z5R89390357567127 and 1Z879E930346834440.";
    pcre2_match_data *md = pcre2_match_data_create(40, NULL);
    size_t len = 0, found = 0;
    char *t = malloc(2 * 5000 + sizeof(tail));
    struct dr__hits hits = {.max = 1 << 20};

    (void)state;
    assert_non_null(t);
    assert_int_equal(dr_shipment_init(), DR_OK);
    for (int i = 0; i < 5000; i++) {
        t[len++] = (char)('0' + (i * 7) % 10);
        t[len++] = ' ';
    }
    memcpy(t + len, tail, sizeof(tail));
    len += sizeof(tail) - 1;
    assert_int_equal(dr__scan(t, len, md, &hits), DR_OK);
    assert_true(hits.truncated);
    for (size_t i = 0; i < hits.n; i++) {
        found += strcmp(hits.v[i].m.number, "1Z5R89390357567127") == 0 ||
                 strcmp(hits.v[i].m.number, "1Z879E930346834440") == 0;
        assert_true(hits.v[i].start < 2 * 5000 || hits.v[i].single_token);
    }
    assert_int_equal(found, 2);
    assert_true(hits.n < 512); /* a run keeps few of its matches */
    free(hits.v);
    free(t);
    pcre2_match_data_free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus),
        cmocka_unit_test(extra_formats),
        cmocka_unit_test(degenerate_numbers),
        cmocka_unit_test(ambiguity),
        cmocka_unit_test(validate_contract),
        cmocka_unit_test(carrier_codes),
        cmocka_unit_test(scan_loop_finds_what_the_old_loop_found),
        cmocka_unit_test(scan_bounded_per_run),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dr_shipment_cleanup();
    return rc;
}
