/*
 * Per-thread scratch buffers of the email parser: the decoded raw message, a part's decoded
 * bytes, its charset conversion. Each email needs buffers of tens or hundreds of kilobytes for
 * a moment; taken from malloc and freed again every time, they cost page faults whenever the
 * heap was trimmed in between. A thread keeps one allocation per slot between emails, up to
 * DR__EMAIL_SCRATCH_KEEP bytes (a larger one is freed when given back, so one huge email does
 * not pin its memory). Freed when the thread exits.
 */
#include <pthread.h>
#include <stdlib.h>

#include "processors/email/email_int.h"

struct slot {
    char *data;
    size_t cap;
};

static __thread struct slot slots[DR__EMAIL_SCRATCH_N];
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg)
{
    (void)arg;
    for (int i = 0; i < DR__EMAIL_SCRATCH_N; i++) {
        free(slots[i].data);
        slots[i].data = NULL;
        slots[i].cap = 0;
    }
}

static void make_key(void)
{
    if (pthread_key_create(&exit_key, thread_exit) != 0) {
        exit_key = 0; /* without it an exiting thread leaks its scratch: nothing worse */
    }
}

void dr__email_scratch_take(enum dr__email_scratch_slot slot, struct dr_buf *b)
{
    struct slot *s = &slots[slot];

    if (!s->data || b->data) {
        return;
    }
    b->data = s->data;
    b->cap = s->cap;
    b->len = 0;
    b->data[0] = '\0';
    s->data = NULL;
    s->cap = 0;
}

void dr__email_scratch_give(enum dr__email_scratch_slot slot, struct dr_buf *b)
{
    struct slot *s = &slots[slot];

    if (b->data && !s->data && b->cap <= DR__EMAIL_SCRATCH_KEEP) {
        pthread_once(&key_once, make_key);
        pthread_setspecific(exit_key, (void *)1); /* a value, so thread_exit() runs */
        s->data = b->data;
        s->cap = b->cap;
        b->data = NULL;
    }
    dr_buf_cleanup(b);
}
