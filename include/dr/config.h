/*
 * Configuration: a YAML file (the embedded config/local.yaml when none is given), then
 * environment overrides for what deployment platforms set. Errors name the file, the key and the
 * reason: "config/x.yaml: routes[2].processors[0]: unknown processor 'emial'".
 * A loaded dr_config is read-only and may be read from any thread.
 */
#ifndef DR_CONFIG_H
#define DR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct dr_ratelimit;

enum dr_attr_op { DR_ATTR_EXACT, DR_ATTR_PREFIX, DR_ATTR_EXISTS };

struct dr_match_attr {
    char *key;
    char *value; /* NULL for EXISTS */
    enum dr_attr_op op;
};

struct dr_match_field {
    char *pointer;  /* RFC 6901 into the payload */
    cJSON *equals;  /* NULL = exists */
};

struct dr_route {
    char *name;
    char **topics; /* any of; none = any topic */
    size_t ntopics;
    char **types; /* any of; none = any type */
    size_t ntypes;
    struct dr_match_attr *attrs; /* all of */
    size_t nattrs;
    struct dr_match_field *fields; /* all of */
    size_t nfields;
    char **processors;
    size_t nprocessors;
    int is_default;
    int priority;          /* default priority for matched messages, -1 = keep */
    char *ordering_pointer; /* payload field used as ordering key when the message has none */
};

struct dr_retry_policy {
    char *type; /* NULL for the default */
    int max_attempts;
    int64_t initial_ms;
    double multiplier;
    int64_t max_ms;
    double jitter; /* 0..1: fraction of the delay randomised */
};

struct dr_breaker_conf {
    char *name;
    int failure_threshold; /* consecutive failures that open it */
    int64_t open_ms;       /* how long it stays open before a half-open probe */
};

struct dr_api_key {
    char *name;
    char *role;      /* "service" or "admin" */
    char sha256[65]; /* hex digest of the key */
    double rate;     /* requests per second on this instance; 0 = no limit */
    double burst;    /* requests at once after a pause */
    /* The key's token bucket (rate, burst), NULL without a rate: the one part of a loaded
     * config that changes, behind its own lock (dr/ratelimit.h). */
    struct dr_ratelimit *limiter;
};

struct dr_topic_conf {
    char *name;
    char *type; /* default message type */
};

struct dr_subscription_conf {
    char *name;  /* subscription id */
    char *topic; /* topic id the router treats it as */
};

struct dr_config {
    char *source;     /* file name, or "<embedded>" */
    char *mode;       /* "local" or "pubsub" */
    char *host;
    int port;
    char *data_dir;
    char *store_url;
    char *redis_url;
    char *log_level;
    int workers;
    int64_t max_in_flight;
    int64_t max_in_flight_bytes;
    int64_t dedup_window_ms;
    int64_t shutdown_deadline_ms;
    int64_t dlq_retention_ms; /* retention.dead_letters: 0 = dead letters are kept */
    /* retention.notifications: 0 = real-time notifications are kept */
    int64_t notification_retention_ms;
    int64_t request_timeout_ms;
    struct dr_route *routes;
    size_t nroutes;
    struct dr_retry_policy retry_default;
    struct dr_retry_policy *retry; /* per message type */
    size_t nretry;
    struct dr_breaker_conf *breakers;
    size_t nbreakers;
    struct dr_api_key *api_keys;
    size_t napi_keys;
    struct dr_topic_conf *topics;
    size_t ntopics;
    /* pubsub mode */
    char *project;
    struct dr_subscription_conf *subscriptions;
    size_t nsubscriptions;
    char *dlq_suffix;   /* "-dlq" */
    int pubsub_grpc;    /* pubsub.transport: grpc (1) or rest (0) for pulls and acks */
    char *pubsub_endpoint; /* pubsub.endpoint: NULL = https://pubsub.googleapis.com */
    int push_enabled;
    char *push_audience; /* OIDC audience; NULL = no verification */
    char *push_service_account;
    char *push_jwks;     /* file path or URL of Google's JWKS */
    cJSON *root;         /* the whole tree (processors read their own section) */
};

/* The YAML compiled into the binary (config/local.yaml). */
extern const char dr_config_embedded[];

/* Loads path (NULL = embedded), applies the environment, validates. On failure *out is NULL and
 * err holds "<file>: <key>: <reason>". */
int dr_config_load(const char *path, struct dr_config **out, char *err, size_t errsz);
/* Same from a string (name is used in error messages). */
int dr_config_load_string(const char *yaml, size_t len, const char *name, struct dr_config **out,
                          char *err, size_t errsz);
void dr_config_destroy(struct dr_config *cfg); /* NULL-safe */

/* The retry policy for a message type (the default when none is configured). */
const struct dr_retry_policy *dr_config_retry(const struct dr_config *cfg, const char *type);
const char *dr_config_topic_type(const struct dr_config *cfg, const char *topic);
/* A processor's section (processors.<name>), or NULL. */
const cJSON *dr_config_processor(const struct dr_config *cfg, const char *name);
/* The longest duration a configuration takes: 100 years (36500d) in ms. Any duration, in ms or
 * in ns, and added to or taken from the current time, then fits an int64_t. */
#define DR_DURATION_MAX_MS (36500LL * 86400000)
/* "250ms", "1.5s", "5m", "24h", "7d" (digits, a fraction, a unit: ms, s, m, h, d) into *ms; 0
 * is the one number that needs no unit. DR_EINVAL when s is not one (*ms untouched): also "10"
 * (10 what?), "nan", "inf", "-1s", "1e3s", " 5s"; DR_ETOOBIG beyond DR_DURATION_MAX_MS. */
int dr_parse_duration(const char *s, int64_t *ms);

/* YAML text to a cJSON tree: mappings → objects, sequences → arrays, plain scalars → null /
 * true / false / numbers when they look like them, quoted scalars → strings. */
int dr_yaml_to_json(const char *yaml, size_t len, cJSON **out, char *err, size_t errsz);

#endif
