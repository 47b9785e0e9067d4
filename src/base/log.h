/*
 * base/log.h — leveled logging to stderr.
 *
 * Contract: realm_log writes one line "realm <level>: message" to stderr when
 * level >= the current threshold (REALM_LOG_INFO by default; the environment
 * variable REALM_LOG=debug|info|warn|error overrides it at first use).
 * Thread-safe: each line is written with a single fprintf.
 */
#ifndef REALM_BASE_LOG_H
#define REALM_BASE_LOG_H

typedef enum realm_log_level {
    REALM_LOG_DEBUG = 0,
    REALM_LOG_INFO,
    REALM_LOG_WARN,
    REALM_LOG_ERROR,
    REALM_LOG_COUNT
} realm_log_level;

void realm_log_set_level(realm_log_level level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void realm_log(realm_log_level level, const char *fmt, ...);

#endif
