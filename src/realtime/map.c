/*
 * A small chained hash map from strings to pointers: the hub's room and user indexes. Grows by
 * doubling at load factor 1 and shrinks never (room names come and go; the bucket array is
 * bounded by the peak number of rooms, itself bounded by connections x rooms per connection).
 */
#include <stdlib.h>
#include <string.h>

#include "dr/util.h"
#include "realtime/rt_int.h"

static size_t hash(const char *s)
{
    return (size_t)dr_hash_str(s);
}

void dr__rt_map_init(struct rt_map *m)
{
    m->nb = 64;
    m->n = 0;
    m->b = dr_xcalloc(m->nb, sizeof(*m->b));
}

void dr__rt_map_cleanup(struct rt_map *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct rt_map_entry *e = m->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

void *dr__rt_map_get(const struct rt_map *m, const char *key)
{
    for (struct rt_map_entry *e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            return e->val;
        }
    }
    return NULL;
}

static void grow(struct rt_map *m)
{
    size_t nb = m->nb * 2;
    struct rt_map_entry **b = dr_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < m->nb; i++) {
        struct rt_map_entry *e = m->b[i], *next;
        for (; e; e = next) {
            size_t k = hash(e->key) & (nb - 1);
            next = e->next;
            e->next = b[k];
            b[k] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

void dr__rt_map_put(struct rt_map *m, const char *key, void *val)
{
    size_t k = hash(key) & (m->nb - 1);
    struct rt_map_entry *e;

    for (e = m->b[k]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->val = val;
            return;
        }
    }
    e = dr_xmalloc(sizeof(*e));
    e->key = dr_xstrdup(key);
    e->val = val;
    e->next = m->b[k];
    m->b[k] = e;
    if (++m->n > m->nb) {
        grow(m);
    }
}

void *dr__rt_map_del(struct rt_map *m, const char *key)
{
    struct rt_map_entry **pp = &m->b[hash(key) & (m->nb - 1)];

    for (; *pp; pp = &(*pp)->next) {
        struct rt_map_entry *e = *pp;
        if (strcmp(e->key, key) == 0) {
            void *val = e->val;
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return val;
        }
    }
    return NULL;
}
