/* Shared by the tenants tests: a fresh database path in a private temporary
 * directory, removed (with its -wal and -shm files) afterwards. */
#ifndef REALM_TESTS_TENANTS_FIXTURE_H
#define REALM_TESTS_TENANTS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct tfix {
    char dir[64];
    char path[128];
} tfix;

static inline void tfix_init(tfix *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/realm-tenants-XXXXXX");
    if (!mkdtemp(f->dir)) abort();
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
}

static inline void tfix_done(tfix *f)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

/* Whether needle occurs in the file at path (a missing file has nothing). */
static inline int tfix_file_contains(const char *path, const void *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(fp);
    int found = 0;
    for (size_t i = 0; buf && i + n <= len && !found; i++)
        found = !memcmp(buf + i, needle, n);
    free(buf);
    return found;
}

#endif
