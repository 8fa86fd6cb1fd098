/*
 * One error enum for the whole daemon. 0 is success; every other value is a failure that
 * dr_strerror() names. Processing outcomes (OK / RETRY / REJECT) are a separate enum in
 * dr/processor.h: an error is what a function returns, an outcome is what a message gets.
 */
#ifndef DR_ERR_H
#define DR_ERR_H

enum dr_err {
    DR_OK = 0,
    DR_ENOMEM,      /* allocation failed */
    DR_EINVAL,      /* malformed input or bad argument */
    DR_ETOOBIG,     /* input exceeds a configured or protocol limit */
    DR_ENOTFOUND,   /* no such object */
    DR_EEXIST,      /* object exists already (duplicate) */
    DR_EIO,         /* I/O, network or storage failure; usually worth retrying */
    DR_ETIMEOUT,    /* a deadline passed */
    DR_EUNAVAIL,    /* a downstream is unavailable (breaker open, shutting down) */
    DR_EAUTH,       /* authentication or authorisation failed */
    DR_EUNSUPPORTED /* valid but not handled */
};

/* Static, never NULL. Thread-safe. */
const char *dr_strerror(int err);

#endif
