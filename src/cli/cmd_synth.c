/* realm synth — write a model of a known shape with random weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tools/quant_mix.h"
#include "tools/synth.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: realm synth --arch SHAPE --type SCHEME -o OUT.gguf [--seed N] [--threads N]\n"
            "                   [--layers N] [--vocab-from MODEL.gguf]\n"
            "       realm synth --list\n"
            "SCHEME: %s\n",
            realm_quant_mix_list());
    return 2;
}

static void list_shapes(void)
{
    printf("%-14s %-6s %6s %6s %5s %4s %6s %7s\n", "shape", "arch", "layers", "embd", "heads",
           "kv", "ff", "vocab");
    for (const realm_synth_shape *s = realm_synth_shapes(); s->name; s++)
        printf("%-14s %-6s %6d %6d %5d %4d %6d %7d\n", s->name, s->arch, s->n_layer, s->n_embd,
               s->n_head, s->n_head_kv, s->n_ff, s->n_vocab);
}

int realm_cmd_synth(int argc, char **argv)
{
    realm_synth_options opt = {.seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) {
            list_shapes();
            return 0;
        }
        if (!v) return usage();
        if (!strcmp(a, "--arch")) opt.shape = v;
        else if (!strcmp(a, "--type")) opt.scheme = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) opt.out_path = v;
        else if (!strcmp(a, "--seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) opt.n_threads = atoi(v);
        else if (!strcmp(a, "--layers")) opt.n_layer_override = atoi(v);
        else if (!strcmp(a, "--vocab-from")) opt.vocab_from = v;
        else return usage();
        i++;
    }
    if (!opt.shape || !opt.scheme || !opt.out_path) return usage();
    realm_error err = {0};
    if (realm_synth_write(&opt, &err) != REALM_OK) {
        fprintf(stderr, "realm synth: %s\n", err.message);
        return 1;
    }
    return 0;
}
