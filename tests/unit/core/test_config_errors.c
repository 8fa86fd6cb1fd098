/* Configuration refused at start (src/core/config.c): names that must be unique, and values from
 * the environment that the service cannot take, each named with the key and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/config.h"
#include "dr/err.h"

#include "config_expect.h"

#define H1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define H2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static void expect_ok(const char *yaml)
{
    struct dr_config *c = NULL;
    char err[512] = "";

    if (dr_config_load_string(yaml, strlen(yaml), "ok.yaml", &c, err, sizeof(err)) != DR_OK) {
        fail_msg("config: %s", err);
    }
    dr_config_destroy(c);
}

static void duplicate_names(void **state)
{
    (void)state;
    expect_error("routes:\n"
                 "  - {name: a, match: {topic: t1}, processors: [log]}\n"
                 "  - {name: b, match: {topic: t2}, processors: [log]}\n"
                 "  - {name: a, match: {topic: t3}, processors: [log]}\n",
                 "bad.yaml: routes[2].name: 'a' is already the name of routes[0]");
    expect_ok("routes:\n"
              "  - {name: a, match: {topic: t1}, processors: [log]}\n"
              "  - {match: {topic: t2}, processors: [log]}\n"
              "  - {match: {topic: t3}, processors: [log]}\n");
    expect_error("api_keys:\n  - {name: k, role: service, sha256: " H1 "}\n"
                 "  - {name: k, role: admin, sha256: " H2 "}\n",
                 "bad.yaml: api_keys[1].name: 'k' is already the name of api_keys[0]");
    expect_error("api_keys:\n  - {name: k, role: service, sha256: " H1 "}\n"
                 "  - {name: j, role: admin, sha256: " H1 "}\n",
                 "bad.yaml: api_keys[1].sha256: the same key as api_keys[0]");
}

static void bad_values(void **state)
{
    (void)state;
    expect_error("log_level: loud\n", "bad.yaml: log_level: expected debug, info, warn or error");
    expect_error("store: {url: 'mysql://u:secret@h/db'}\n", "bad.yaml: store.url: expected");
    expect_ok("store: {url: 'sqlite:/tmp/x.db'}\n");
    expect_ok("store: {url: 'postgresql://u@h/db'}\n");
    expect_ok("store: {url: './x.db'}\n");
}

/* Entries of the topics, breakers and retention mappings, the default route, the listen address. */
static void entries(void **state)
{
    (void)state;
    expect_ok("topics: {test-events: {type: test}, a.b~c+d%e_f: {type: t}}\n"
              "breakers: {carrier: {failure_threshold: 3, open_for: 5s}}\n"
              "retention: {dead_letters: 7d}\nhttp: {host: '::1'}\n"
              "routes:\n  - {name: a, match: {topic: test-events}, processors: [test]}\n"
              "  - {name: b, default: true, processors: [log]}\n");
    expect_error("topics: {x: {type: test}}\n", "bad.yaml: topics.x: not a Pub/Sub topic name");
    expect_error("topics: {goog-events: {type: test}}\n", "topics.goog-events: not a Pub/Sub");
    expect_error("topics: {test-events: {type: test, ordering: x}}\n",
                 "bad.yaml: topics.test-events.ordering: unknown key");
    expect_error("topics: {test-events: 5}\n", "bad.yaml: topics.test-events: expected a mapping");
    expect_error("breakers: {carrier: {failure_threshold: 3, open_fr: 5s}}\n",
                 "bad.yaml: breakers.carrier.open_fr: unknown key");
    expect_error("retention: {dead_letter: 7d}\n", "bad.yaml: retention.dead_letter: unknown key");
    expect_error("retention: {dead_letters: a week}\n",
                 "bad.yaml: retention.dead_letters: expected a duration");
    expect_error("retention: {notification: 7d}\n",
                 "bad.yaml: retention.notification: unknown key");
    expect_error("retention: {notifications: a month}\n",
                 "bad.yaml: retention.notifications: expected a duration");
    expect_error("retention: {notifications: 36501d}\n",
                 "bad.yaml: retention.notifications: out of range: must be from 0ms to 36500d");
    expect_error("retention: {notifications: -1d}\n",
                 "bad.yaml: retention.notifications: expected a duration");
    expect_error("routes:\n  - {name: a, default: true, processors: [test]}\n"
                 "  - {name: b, default: true, processors: [log]}\n",
                 "bad.yaml: routes[1].default: routes[0] is the default route already");
    expect_error("http: {host: 999.1.1.1}\n",
                 "bad.yaml: http.host: expected an IP address such as 127.0.0.1 or ::, not "
                 "'999.1.1.1'");
    expect_error("http: {host: localhost}\n", "bad.yaml: http.host: expected an IP address");
}

/* The pull source falls back to its defaults for what it cannot take, and a push section with a
 * misspelt audience would leave the endpoint open: both refused at start. */
static void pubsub_section(void **state)
{
    (void)state;
    expect_ok("pubsub: {project: p, pulls_in_flight: 4, max_messages: 500, ack_deadline_seconds: "
              "60, nack_after_ms: 0, max_delivery_attempts: 10, auto_create: true,\n"
              "  subscriptions: [{name: sub-1, topic: topic-1}], push: {enabled: true}}\n");
    expect_error("pubsub: {project: p, ack_deadline: 60}\n",
                 "bad.yaml: pubsub.ack_deadline: unknown key");
    expect_error("pubsub: {ack_deadline_seconds: 5}\n",
                 "bad.yaml: pubsub.ack_deadline_seconds: must be between 10 and 600");
    expect_error("pubsub: {max_delivery_attempts: 200}\n",
                 "bad.yaml: pubsub.max_delivery_attempts: must be between 5 and 100");
    expect_error("pubsub: {max_messages: 5000}\n", "pubsub.max_messages: must be between 1");
    expect_error("pubsub: {pulls_in_flight: 0}\n", "pubsub.pulls_in_flight: must be between");
    expect_error("pubsub: {nack_after_ms: soon}\n", "pubsub.nack_after_ms: expected an integer");
    expect_error("pubsub: {auto_create: yes please}\n", "pubsub.auto_create: expected true or");
    expect_error("pubsub: {subscriptions: [{name: sub-1, topic: topic-1, filter: x}]}\n",
                 "pubsub.subscriptions[0].filter: unknown key");
    expect_error("pubsub: {push: {enabled: true, audiance: https://x}}\n",
                 "bad.yaml: pubsub.push.audiance: unknown key");
    expect_error("pubsub: {push: {enabled: true, audience: https://x}}\n",
                 "bad.yaml: pubsub.push.jwks: missing: pubsub.push.audience needs");
    expect_error("pubsub: {push: {audience: https://x, jwks: /nonexistent/certs.json}}\n",
                 "bad.yaml: pubsub.push.jwks: cannot read /nonexistent/certs.json");
    expect_error("pubsub: {push: {audience: https://x, jwks: https://example.com/certs}}\n",
                 "bad.yaml: pubsub.push.service_account: missing: with pubsub.push.audience");
    expect_ok("pubsub: {push: {audience: https://x, jwks: https://example.com/certs, "
              "service_account: push@p.iam.gserviceaccount.com}}\n");
}

/* Subscription and topic names Pub/Sub would refuse (3-255 characters of [A-Za-z0-9-_.~+%],
 * starting with a letter, not with "goog") stop the start with the file, the key and the
 * reason, instead of a subscription refused at every pull while the service says it is ready. */
static void pubsub_names(void **state)
{
    (void)state;
    expect_error("pubsub: {subscriptions: [{name: 1st-sub, topic: test-events}]}\n",
                 "bad.yaml: pubsub.subscriptions[0].name: '1st-sub' is not a Pub/Sub subscription "
                 "name: must start with a letter");
    expect_error("pubsub: {subscriptions: [{name: sub-a, topic: test-events},\n"
                 "  {name: ab, topic: test-events}]}\n",
                 "bad.yaml: pubsub.subscriptions[1].name: 'ab' is not a Pub/Sub subscription name: "
                 "must be 3 to 255 characters long, not 2");
    expect_error("pubsub: {subscriptions: [{name: sub-a, topic: 'test events'}]}\n",
                 "bad.yaml: pubsub.subscriptions[0].topic: 'test events' is not a Pub/Sub topic "
                 "name: ' ' is not allowed");
    expect_error("pubsub: {subscriptions: [{name: sub-a, topic: goog-events}]}\n",
                 "pubsub.subscriptions[0].topic: 'goog-events' is not a Pub/Sub topic name: must "
                 "not start with \"goog\"");
    expect_error("pubsub: {subscriptions: [{name: sub/a, topic: test-events}]}\n",
                 "pubsub.subscriptions[0].name: 'sub/a' is not a Pub/Sub subscription name: '/' "
                 "is not allowed");
    expect_error("pubsub: {subscriptions: [{name: projects/p/topics/sub-a, topic: test-events}]}\n",
                 "pubsub.subscriptions[0].name: 'projects/p/topics/sub-a' is not a Pub/Sub "
                 "subscription name: a full name is projects/PROJECT/subscriptions/ID");
    expect_error("pubsub: {dlq_suffix: ' dead', subscriptions: [{name: sub-a, topic: events}]}\n",
                 "pubsub.subscriptions[0].topic: its dead-letter topic 'events dead' "
                 "(pubsub.dlq_suffix ' dead') is not a Pub/Sub topic name");
    expect_ok("pubsub: {subscriptions: [{name: a.b~c+d%e_f-1, topic: Test-events},\n"
              "  {name: projects/other-project/subscriptions/sub-b,\n"
              "   topic: projects/other-project/topics/test-events}]}\n");
}

/* Every section's keys are checked, so a misspelt setting stops the start instead of leaving its
 * default in force (store.uri would have kept SQLite while PostgreSQL was meant). */
static void unknown_keys(void **state)
{
    (void)state;
    expect_error("store: {uri: 'postgresql://nowhere/db'}\n", "bad.yaml: store.uri: unknown key");
    expect_error("limits: {max_inflight: 5}\n", "bad.yaml: limits.max_inflight: unknown key");
    expect_error("dedup: {windw: 1h}\n", "bad.yaml: dedup.windw: unknown key");
    expect_error("shutdown: {deadlin: 5s}\n", "bad.yaml: shutdown.deadlin: unknown key");
    expect_error("redis: {uri: 'redis://127.0.0.1:6379'}\n", "bad.yaml: redis.uri: unknown key");
    expect_error("store: 'postgresql://nowhere/db'\n", "bad.yaml: store: expected a mapping");
    expect_ok("store: {url: ''}\nlimits: {max_in_flight: 5, max_in_flight_bytes: 4096}\n"
              "dedup: {window: 1h}\nshutdown: {deadline: 5s}\n"
              "redis: {url: '', channel: c, connect_timeout: 1s, command_timeout: 1s,\n"
              "        ping_interval: 1s, backoff_max: 5s, reorder_window: 100ms,\n"
              "        audit_interval: 1s}\n");
    /* a section with every setting commented out */
    expect_ok("store:\nlimits:\ndedup:\nshutdown:\nredis:\nhttp:\nretention:\n");
}

/* processors.<name> holds what that processor reads (its registration's config_keys), checked
 * whether or not a route uses it. */
static void processor_keys(void **state)
{
    (void)state;
    expect_error("processors: {shipment: {provder: {url: 'https://x'}}}\n",
                 "bad.yaml: processors.shipment.provder: unknown key");
    expect_error("processors: {shipment: {provider: {url: 'https://x', rate_per_second: 5}}}\n",
                 "bad.yaml: processors.shipment.provider.rate_per_second: unknown key");
    expect_error("processors: {shipment: {provider: 5}}\n",
                 "bad.yaml: processors.shipment.provider: expected a mapping");
    expect_error("processors: {email: {progress_interval: 5}}\n",
                 "bad.yaml: processors.email.progress_interval: unknown key");
    expect_error("processors: {meeting_poll: {unknown_poll_attempt: 5}}\n",
                 "bad.yaml: processors.meeting_poll.unknown_poll_attempt: unknown key");
    expect_error("processors: {test: {records: true}}\n",
                 "bad.yaml: processors.test.records: unknown key");
    expect_error("processors: {vespa: {endpont: 'http://x'}}\n",
                 "bad.yaml: processors.vespa.endpont: unknown key");
    expect_error("processors: {log: {level: debug}}\n",
                 "bad.yaml: processors.log.level: unknown key");
    expect_error("processors: {realtime: {heartbeat: 5s}}\n",
                 "bad.yaml: processors.realtime.heartbeat: unknown key");
    expect_error("processors: {calendar: [x]}\n",
                 "bad.yaml: processors.calendar: expected a mapping");
    /* a dot in config_keys stands for nesting: a key that holds one is no setting */
    expect_error("processors: {shipment: {\"provider.url\": 'https://x'}}\n",
                 "bad.yaml: processors.shipment.provider.url: unknown key");
    expect_ok("processors:\n"
              "  email: {reply_local_part: r, progress_interval_ms: 500, index_text_bytes: 100}\n"
              "  meeting_poll: {reply_local_part: r, unknown_poll_attempts: 2}\n"
              "  shipment: {provider: {url: 'https://x', api_key: k, rate_per_sec: 5, burst: 5,\n"
              "                        timeout_ms: 1000, max_wait_ms: 100}}\n"
              "  test: {record: true, crash: false}\n"
              "  vespa: {endpoint: 'http://x', namespace: n, enabled: true, max_in_flight: 2,\n"
              "          timeout: 1s, retries: 1, backoff: 10ms, backoff_max: 1s, http2: auto,\n"
              "          max_body: 2048}\n"
              "  log: {}\n  calendar:\n  contacts: {}\n  realtime: {}\n");
    expect_ok("processors: {shipment: {provider: }}\n");
}

/* A duration is a finite number of at most 100 years with a unit: "nan" would have made the
 * dedup window's cut-off an overflow (now - window) and crashed the first publish. */
static void durations(void **state)
{
    (void)state;
    expect_error("dedup: {window: nan}\n",
                 "bad.yaml: dedup.window: expected a duration such as 250ms, 30s, 5m, 24h, not "
                 "'nan'");
    expect_error("dedup: {window: inf}\n", "bad.yaml: dedup.window: expected a duration");
    expect_error("dedup: {window: -inf}\n", "bad.yaml: dedup.window: out of range");
    expect_error("dedup: {window: infinity}\n", "bad.yaml: dedup.window: expected a duration");
    expect_error("dedup: {window: 1e3s}\n", "bad.yaml: dedup.window: expected a duration");
    expect_error("shutdown: {deadline: nans}\n", "bad.yaml: shutdown.deadline: expected a");
    expect_error("retry: {default: {max: nanms}}\n", "bad.yaml: retry.default.max: expected a");
    expect_error("breakers: {b: {open_for: infs}}\n", "bad.yaml: breakers.b.open_for: expected");
    expect_error("retention: {dead_letters: nand}\n", "bad.yaml: retention.dead_letters: expected");
    expect_error("http: {request_timeout: 0x10s}\n", "bad.yaml: http.request_timeout: expected");
    expect_error("dedup: {window: 36501d}\n",
                 "bad.yaml: dedup.window: out of range: must be from 0ms to 36500d");
    expect_error("dedup: {window: 9000000000000000ms}\n", "dedup.window: out of range");
    expect_error("dedup: {window: 1e999}\n", "dedup.window: out of range");
    /* the HTTP server's timers take 32 bits of ms */
    expect_error("http: {request_timeout: 50d}\n",
                 "bad.yaml: http.request_timeout: out of range: must be from 1ms to 1d");
    expect_error("http: {request_timeout: 0s}\n", "http.request_timeout: out of range");
    expect_ok("dedup: {window: 36500d}\nhttp: {request_timeout: 24h}\nshutdown: {deadline: 0s}\n");
}

/* A duration needs its unit: "request_timeout: 10" was 10 ms, which nothing said, where 10 s was
 * likely meant. Zero is the one number that needs none. Keys named *_ms stay whole numbers of
 * milliseconds. */
static void duration_units(void **state)
{
    static const char *const keys[] = {
        "http: {request_timeout: %s}",    "dedup: {window: %s}",
        "shutdown: {deadline: %s}",       "retention: {dead_letters: %s}",
        "retention: {notifications: %s}", "retry: {default: {initial: %s}}",
        "retry: {default: {max: %s}}",    "retry: {types: {t: {initial: %s}}}",
        "breakers: {b: {open_for: %s}}",  "redis: {connect_timeout: %s}",
        "redis: {command_timeout: %s}",   "redis: {ping_interval: %s}",
        "redis: {backoff_max: %s}",       "redis: {reorder_window: %s}",
        "redis: {audit_interval: %s}",    "realtime: {heartbeat: %s}",
        "realtime: {idle_timeout: %s}",   "realtime: {auth_timeout: %s}",
        "realtime: {close_timeout: %s}",  "realtime: {sse_retry: %s}",
    };
    char yaml[128];

    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(yaml, sizeof(yaml), keys[i], "10");
        strcat(yaml, "\n");
        expect_error(yaml, ": give a unit: ms, s, m, h or d, such as 10s (not 10)");
        snprintf(yaml, sizeof(yaml), keys[i], "'10'");
        strcat(yaml, "\n");
        expect_error(yaml, ": give a unit: ms, s, m, h or d, such as 10s (not '10')");
        snprintf(yaml, sizeof(yaml), keys[i], "1.5");
        strcat(yaml, "\n");
        expect_error(yaml, ": give a unit: ms, s, m, h or d, such as 10s (not 1.5)");
    }
    expect_error("http: {request_timeout: 10}\n",
                 "bad.yaml: http.request_timeout: give a unit: ms, s, m, h or d, such as 10s "
                 "(not 10)");
    expect_error("redis: {ping_interval: 1000}\n", "bad.yaml: redis.ping_interval: give a unit");
    expect_error("realtime: {heartbeat: 25000}\n", "bad.yaml: realtime.heartbeat: give a unit");
    expect_ok("shutdown: {deadline: 0}\nbreakers: {b: {open_for: '0'}}\n"
              "retry: {default: {initial: 0.0, max: 0}}\n");
    expect_ok("pubsub: {nack_after_ms: 10000}\nprocessors: {email: {progress_interval_ms: 500}}\n");
}

/* retention.dead_letters and retention.notifications are read where the other durations are,
 * each on its own (30d by default): 0 keeps them. */
static void retention_value(void **state)
{
    static const struct {
        const char *yaml;
        int64_t ms, notif_ms;
    } cases[] = {
        {"mode: local\n", 30LL * 86400000, 30LL * 86400000},
        {"retention: {dead_letters: 7d}\n", 7LL * 86400000, 30LL * 86400000},
        {"retention: {dead_letters: 0}\n", 0, 30LL * 86400000},
        {"retention: {dead_letters: 1.5h}\n", 5400000, 30LL * 86400000},
        {"retention: {notifications: 90d}\n", 30LL * 86400000, 90LL * 86400000},
        {"retention: {notifications: 0}\n", 30LL * 86400000, 0},
        {"retention: {notifications: 12h, dead_letters: 1d}\n", 86400000, 12LL * 3600000},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dr_config *c = NULL;
        char err[512] = "";
        if (dr_config_load_string(cases[i].yaml, strlen(cases[i].yaml), "ok.yaml", &c, err,
                                  sizeof(err)) != DR_OK) {
            fail_msg("%s", err);
        }
        assert_int_equal(c->dlq_retention_ms, cases[i].ms);
        assert_int_equal(c->notification_retention_ms, cases[i].notif_ms);
        dr_config_destroy(c);
    }
}

/* The configuration files shipped in config/ load as they are. */
static void shipped_files(void **state)
{
    static const char *const files[] = {"local.yaml", "production.example.yaml"};
    const char *src = getenv("DR_SOURCE_DIR");

    (void)state;
    assert_non_null(src);
    for (size_t i = 0; i < 2; i++) {
        struct dr_config *c = NULL;
        char path[1024], err[512] = "";
        snprintf(path, sizeof(path), "%s/config/%s", src, files[i]);
        if (dr_config_load(path, &c, err, sizeof(err)) != DR_OK) {
            fail_msg("%s", err);
        }
        dr_config_destroy(c);
    }
}

/* The default retry policy is held to what a type's is. */
static void retry_initial_max(void **state)
{
    (void)state;
    expect_error("retry: {default: {initial: 10s, max: 1s}}\n",
                 "bad.yaml: retry.default.initial: 10000ms is larger than max (1000ms)");
    expect_error("retry: {types: {t: {initial: 10s, max: 1s}}}\n",
                 "bad.yaml: retry.types.t.initial: 10000ms is larger than max (1000ms)");
    /* the type's own max against the default's initial */
    expect_error("retry: {default: {initial: 2s, max: 1m}, types: {t: {max: 1s}}}\n",
                 "bad.yaml: retry.types.t.initial: 2000ms is larger than max (1000ms)");
    expect_ok("retry: {default: {initial: 1s, max: 1s}}\n");
}

/* A file without settings is refused; the embedded defaults are what no --config gives. */
static void empty_file(void **state)
{
    static const char *const bodies[] = {"", "# nothing\n", "---\n", "{}\n"};
    char path[] = "/tmp/dr-test-config-XXXXXX";
    char err[512] = "";
    struct dr_config *c = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < 4; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(bodies[i], f);
        fclose(f);
        assert_int_not_equal(dr_config_load(path, &c, err, sizeof(err)), DR_OK);
        assert_null(c);
        /* "---" is one empty document: not a mapping */
        assert_non_null(strstr(err, i == 2 ? "(top level): expected a mapping"
                                           : "(top level): no settings in the file"));
        assert_non_null(strstr(err, path));
    }
    unlink(path);
    assert_int_equal(dr_config_load(NULL, &c, err, sizeof(err)), DR_OK);
    dr_config_destroy(c);
}

static void bad_environment(void **state)
{
    char err[512] = "";
    struct dr_config *c = NULL;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        static const char *const ports[] = {"abc", "99999", "-1", "80x"};
        setenv("PORT", ports[i], 1);
        expect_error("mode: local\n", "bad.yaml: http.port: PORT: expected a port number");
    }
    setenv("PORT", "0", 1);
    expect_ok("mode: local\n");
    unsetenv("PORT");

    setenv("DR_HOST", "my-host", 1);
    expect_error("mode: local\n", "http.host: expected an IP address such as 127.0.0.1 or :: "
                                  "(from DR_HOST), not 'my-host'");
    unsetenv("DR_HOST");

    setenv("DR_LOG_LEVEL", "loud", 1);
    expect_error("mode: local\n", "log_level: expected debug, info, warn or error (from "
                                  "DR_LOG_LEVEL), not 'loud'");
    unsetenv("DR_LOG_LEVEL");

    /* only the scheme is quoted: the rest may hold a password */
    setenv("DATABASE_URL", "mysql://u:secret@h/db", 1);
    assert_int_not_equal(
        dr_config_load_string("mode: local\n", 12, "bad.yaml", &c, err, sizeof(err)), DR_OK);
    assert_non_null(strstr(err, "store.url: expected"));
    assert_non_null(strstr(err, "(from DATABASE_URL), not 'mysql://'"));
    assert_null(strstr(err, "secret"));
    unsetenv("DATABASE_URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duplicate_names),   cmocka_unit_test(bad_values),
        cmocka_unit_test(pubsub_section),    cmocka_unit_test(pubsub_names),
        cmocka_unit_test(entries),           cmocka_unit_test(empty_file),
        cmocka_unit_test(bad_environment),   cmocka_unit_test(unknown_keys),
        cmocka_unit_test(processor_keys),    cmocka_unit_test(shipped_files),
        cmocka_unit_test(retry_initial_max), cmocka_unit_test(durations),
        cmocka_unit_test(duration_units),    cmocka_unit_test(retention_value),
    };
    unsetenv("PORT");
    unsetenv("DR_HOST");
    unsetenv("DR_LOG_LEVEL");
    unsetenv("DATABASE_URL");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
