/* realm quantize — convert a model's weights to another type or mix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tools/quant_mix.h"
#include "tools/quantize.h"

int realm_cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {0};
    int n_pos = 0, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (n_pos < 3 && argv[i][0] != '-') pos[n_pos++] = argv[i];
        else n_pos = 99;
    }
    if (n_pos != 3) {
        fprintf(stderr, "usage: realm quantize IN.gguf OUT.gguf SCHEME [--threads N]\nSCHEME: %s\n",
                realm_quant_mix_list());
        return 2;
    }
    realm_error err = {0};
    if (realm_quantize_file(pos[0], pos[1], pos[2], n_threads, &err) != REALM_OK) {
        fprintf(stderr, "realm quantize: %s\n", err.message);
        return 1;
    }
    return 0;
}
