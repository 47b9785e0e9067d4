#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const level_names[REALM_LOG_COUNT] = {"debug", "info", "warn", "error"};
static atomic_int threshold = -1; /* -1: not yet read from the environment */

static int current_threshold(void)
{
    int t = atomic_load(&threshold);
    if (t >= 0) return t;
    t = REALM_LOG_INFO;
    const char *env = getenv("REALM_LOG");
    for (int i = 0; env && i < REALM_LOG_COUNT; i++)
        if (strcmp(env, level_names[i]) == 0) t = i;
    atomic_store(&threshold, t);
    return t;
}

void realm_log_set_level(realm_log_level level)
{
    atomic_store(&threshold, (int)level);
}

void realm_log(realm_log_level level, const char *fmt, ...)
{
    if ((int)level < current_threshold() || level >= REALM_LOG_COUNT) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "realm %s: %s\n", level_names[level], line);
}
