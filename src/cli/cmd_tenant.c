/* realm tenant — administer the tenants database from the shell: create,
 * list, disable/enable tenants and set their quotas; create (shown once),
 * list and revoke API keys; show usage; generate the admin key. Works on the
 * database of a running server too (SQLite WAL with a busy timeout). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli/commands.h"
#include "tenants/tenants.h"

static int usage(void)
{
    fprintf(stderr, "usage: realm tenant --db PATH COMMAND ...   (or REALM_DB=PATH)\n"
                    "  create NAME [--rpm N] [--tpm N] [--concurrent N]   (0 = unlimited)\n"
                    "  quotas NAME [--rpm N] [--tpm N] [--concurrent N]\n"
                    "  list\n"
                    "  disable NAME | enable NAME\n"
                    "  key-create NAME [--label L]      prints the key once\n"
                    "  keys NAME\n"
                    "  key-revoke KEYID\n"
                    "  usage NAME\n"
                    "  admin-key                        prints a new admin key once\n");
    return 2;
}

static int parse_count(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

/* Parse [--rpm N] [--tpm N] [--concurrent N] [--label L] from argv[i..]. */
static int parse_opts(int argc, char **argv, int i, realm_tenant_quotas *q, const char **label)
{
    for (; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc) goto bad;
        const char *v = argv[++i];
        int64_t *dst = !strcmp(o, "--rpm")          ? &q->requests_per_min
                       : !strcmp(o, "--tpm")        ? &q->tokens_per_min
                       : !strcmp(o, "--concurrent") ? &q->max_concurrent
                                                    : NULL;
        if (dst) {
            if (parse_count(v, dst) != 0) {
                fprintf(stderr, "realm tenant: %s needs a count >= 0, got '%s'\n", o, v);
                return -1;
            }
        } else if (label && !strcmp(o, "--label")) {
            *label = v;
        } else {
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "realm tenant: unexpected argument '%s'\n", argv[i]);
    return -1;
}

static void print_tenant(const realm_tenant_info *ti)
{
    printf("%-6" PRId64 " %-24s %-8s rpm=%" PRId64 " tpm=%" PRId64 " concurrent=%" PRId64
           " salt=%016" PRIx64 "\n",
           ti->id, ti->name, ti->enabled ? "enabled" : "disabled", ti->quotas.requests_per_min,
           ti->quotas.tokens_per_min, ti->quotas.max_concurrent, ti->salt);
}

static int fail(const realm_error *err)
{
    fprintf(stderr, "realm: %s\n", err->message);
    return 1;
}

static int run(realm_tenants_t *t, int argc, char **argv)
{
    const char *cmd = argv[0];
    realm_error err;
    realm_error_clear(&err);
    realm_tenant_info ti;
    if (!strcmp(cmd, "list") && argc == 1) {
        realm_tenant_info *v;
        size_t n;
        if (realm_tenants_list(t, &v, &n, &err) != REALM_OK) return fail(&err);
        printf("%-6s %-24s %-8s quotas\n", "id", "name", "state");
        for (size_t i = 0; i < n; i++)
            print_tenant(&v[i]);
        realm_free(v);
        return 0;
    }
    if (!strcmp(cmd, "admin-key") && argc == 1) {
        char key[REALM_TENANTS_KEY_SIZE];
        if (realm_tenants_admin_create(t, key, &err) != REALM_OK) return fail(&err);
        printf("%s\n", key);
        fprintf(stderr, "realm tenant: admin key replaced; it is shown only now\n");
        return 0;
    }
    if (!strcmp(cmd, "key-revoke") && argc == 2) {
        if (realm_tenants_key_revoke(t, argv[1], &err) != REALM_OK) return fail(&err);
        printf("revoked %s\n", argv[1]);
        return 0;
    }
    if (argc < 2) return usage();
    const char *name = argv[1];
    realm_tenant_quotas q = {0};
    const char *label = NULL;
    if (!strcmp(cmd, "create")) {
        if (parse_opts(argc, argv, 2, &q, NULL) != 0) return 2;
        if (realm_tenants_create(t, name, &q, NULL, &err) != REALM_OK) return fail(&err);
        if (realm_tenants_find(t, name, &ti, &err) != REALM_OK) return fail(&err);
        print_tenant(&ti);
        return 0;
    }
    if (realm_tenants_find(t, name, &ti, &err) != REALM_OK) return fail(&err);
    if (!strcmp(cmd, "quotas")) {
        q = ti.quotas;
        if (parse_opts(argc, argv, 2, &q, NULL) != 0) return 2;
        if (realm_tenants_set_quotas(t, ti.id, &q, &err) != REALM_OK) return fail(&err);
        ti.quotas = q;
        print_tenant(&ti);
        return 0;
    }
    if ((!strcmp(cmd, "disable") || !strcmp(cmd, "enable")) && argc == 2) {
        bool on = !strcmp(cmd, "enable");
        if (realm_tenants_set_enabled(t, ti.id, on, &err) != REALM_OK) return fail(&err);
        ti.enabled = on;
        print_tenant(&ti);
        return 0;
    }
    if (!strcmp(cmd, "key-create")) {
        if (parse_opts(argc, argv, 2, &q, &label) != 0) return 2;
        char key[REALM_TENANTS_KEY_SIZE], key_id[REALM_TENANTS_KEY_ID_SIZE];
        if (realm_tenants_key_create(t, ti.id, label, key, key_id, &err) != REALM_OK)
            return fail(&err);
        printf("%s\n", key);
        fprintf(stderr, "realm tenant: key %s for '%s'; the key is shown only now\n", key_id,
                ti.name);
        return 0;
    }
    if (!strcmp(cmd, "keys") && argc == 2) {
        realm_tenant_key *v;
        size_t n;
        if (realm_tenants_key_list(t, ti.id, &v, &n, &err) != REALM_OK) return fail(&err);
        printf("%-14s %-8s label\n", "key_id", "state");
        for (size_t i = 0; i < n; i++)
            printf("%-14s %-8s %s\n", v[i].key_id, v[i].revoked_ms ? "revoked" : "active",
                   v[i].label);
        realm_free(v);
        return 0;
    }
    if (!strcmp(cmd, "usage") && argc == 2) {
        realm_usage_totals u;
        if (realm_tenants_usage(t, ti.id, 0, INT64_MAX, &u, &err) != REALM_OK) return fail(&err);
        printf("tenant %s: requests=%" PRId64 " prompt_tokens=%" PRId64
               " completion_tokens=%" PRId64 " cached_tokens=%" PRId64 "\n",
               ti.name, u.requests, u.prompt_tokens, u.completion_tokens, u.cached_tokens);
        return 0;
    }
    return usage();
}

int realm_cmd_tenant(int argc, char **argv)
{
    const char *db = getenv("REALM_DB");
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--db")) {
        db = argv[i + 1];
        i += 2;
    }
    if (!db || i >= argc) return usage();
    realm_error err;
    realm_error_clear(&err);
    realm_tenants_t *t;
    if (realm_tenants_open(db, &t, &err) != REALM_OK) return fail(&err);
    int rc = run(t, argc - i, argv + i);
    realm_tenants_close(t);
    return rc;
}
