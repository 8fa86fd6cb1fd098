/* The running file (dr/running.h). */
#include "dr/running.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/util.h"

#define MAGIC     "DRRUN001"
#define HDR_BYTES 16 /* the magic and the slot count */
#define MAX_SLOTS 4096

struct dr_running {
    int fd;
    size_t nslots;
    size_t len;
    unsigned char *map;
    _Atomic int64_t *slot;
};

/* native byte order: the file never leaves the machine */
static int64_t get64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* The ids a file left by an earlier process holds: whatever it could tell, nothing from a file
 * that is not one of these. */
static void read_left(int fd, int64_t **left, size_t *nleft)
{
    struct stat sb;
    unsigned char hdr[HDR_BYTES];

    if (fstat(fd, &sb) != 0 || sb.st_size < HDR_BYTES ||
        pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || memcmp(hdr, MAGIC, 8) != 0) {
        return;
    }
    int64_t n = get64(hdr + 8);
    if (n <= 0 || n > MAX_SLOTS || sb.st_size < HDR_BYTES + n * 8) {
        return;
    }
    unsigned char *buf = dr_xmalloc((size_t)n * 8);
    if (pread(fd, buf, (size_t)n * 8, HDR_BYTES) == n * 8) {
        for (int64_t i = 0; i < n; i++) {
            int64_t id = get64(buf + i * 8);
            int seen = 0;
            for (size_t k = 0; k < *nleft && !seen; k++) {
                seen = (*left)[k] == id; /* one message in two workers: one death, one attempt */
            }
            if (id > 0 && !seen) {
                *left = dr_xrealloc(*left, (*nleft + 1) * sizeof(**left));
                (*left)[(*nleft)++] = id;
            }
        }
    }
    free(buf);
}

int dr_running_open(const char *path, size_t nslots, struct dr_running **out, int64_t **left,
                    size_t *nleft)
{
    struct dr_running *r;
    int fd;

    *out = NULL;
    *left = NULL;
    *nleft = 0;
    if (!path || !*path || nslots == 0 || nslots > MAX_SLOTS) {
        return DR_EINVAL;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return DR_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return errno == EWOULDBLOCK ? DR_EUNAVAIL : DR_EIO;
    }
    read_left(fd, left, nleft);
    size_t len = HDR_BYTES + nslots * 8;
    if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)len) != 0) {
        close(fd);
        free(*left);
        *left = NULL;
        *nleft = 0;
        return DR_EIO;
    }
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        free(*left);
        *left = NULL;
        *nleft = 0;
        return DR_EIO;
    }
    r = dr_xcalloc(1, sizeof(*r));
    r->fd = fd;
    r->nslots = nslots;
    r->len = len;
    r->map = map;
    memcpy(r->map, MAGIC, 8);
    int64_t ns = (int64_t)nslots;
    memcpy(r->map + 8, &ns, sizeof(ns));
    r->slot = (_Atomic int64_t *)(r->map + HDR_BYTES); /* page-aligned map + 16: 8-aligned */
    for (size_t i = 0; i < nslots; i++) {
        atomic_store_explicit(&r->slot[i], 0, memory_order_relaxed);
    }
    *out = r;
    return DR_OK;
}

void dr_running_set(struct dr_running *r, size_t i, int64_t id)
{
    if (r && i < r->nslots) {
        atomic_store_explicit(&r->slot[i], id, memory_order_relaxed);
    }
}

size_t dr_running_slots(const struct dr_running *r)
{
    return r ? r->nslots : 0;
}

void dr_running_close(struct dr_running *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->nslots; i++) {
        atomic_store_explicit(&r->slot[i], 0, memory_order_relaxed);
    }
    munmap(r->map, r->len);
    close(r->fd); /* drops the lock */
    free(r);
}
