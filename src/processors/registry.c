/* The processor table: adding a processor is its folder plus one line here. */
#include <string.h>

#include "dr/processor.h"
#include "dr/util.h"

extern const struct dr_processor dr_processor_log;
extern const struct dr_processor dr_processor_email;
extern const struct dr_processor dr_processor_shipment;
extern const struct dr_processor dr_processor_meeting_poll;
extern const struct dr_processor dr_processor_calendar;
extern const struct dr_processor dr_processor_contacts;
extern const struct dr_processor dr_processor_test;
extern const struct dr_processor dr_processor_vespa;
extern const struct dr_processor dr_processor_realtime;

static const struct dr_processor *const table[] = {
    &dr_processor_log,
    &dr_processor_email,
    &dr_processor_shipment,
    &dr_processor_meeting_poll,
    &dr_processor_calendar,
    &dr_processor_contacts,
    &dr_processor_test,
    &dr_processor_vespa,
    &dr_processor_realtime,
};

const struct dr_processor *dr_processor_find(const char *name)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(table); i++) {
        if (strcmp(table[i]->name, name) == 0) {
            return table[i];
        }
    }
    return NULL;
}

const struct dr_processor *const *dr_processor_all(size_t *n)
{
    *n = DR_ARRAY_LEN(table);
    return table;
}
