#include "dr/err.h"

const char *dr_strerror(int err)
{
    switch (err) {
    case DR_OK:
        return "ok";
    case DR_ENOMEM:
        return "out of memory";
    case DR_EINVAL:
        return "invalid input";
    case DR_ETOOBIG:
        return "too big";
    case DR_ENOTFOUND:
        return "not found";
    case DR_EEXIST:
        return "already exists";
    case DR_EIO:
        return "i/o error";
    case DR_ETIMEOUT:
        return "timed out";
    case DR_EUNAVAIL:
        return "unavailable";
    case DR_EAUTH:
        return "not authorised";
    case DR_EUNSUPPORTED:
        return "unsupported";
    }
    return "unknown error";
}
