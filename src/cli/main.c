/* realm — command-line entry point: dispatches to the subcommand table. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *summary;
} command;

static const command commands[] = {
    {"inspect", realm_cmd_inspect, "inspect [--all] FILE.gguf",
     "print a GGUF file's metadata and tensor table"},
    {"synth", realm_cmd_synth,
     "synth --arch NAME --type TYPE -o OUT.gguf [--seed N] [--threads N] [--vocab-from FILE.gguf]",
     "write a model with random weights (architectures: realm synth --list)"},
    {"quantize", realm_cmd_quantize, "quantize IN.gguf OUT.gguf TYPE [--threads N]",
     "convert a model's weight tensors to another type"},
    {"logits", realm_cmd_logits,
     "logits MODEL.gguf --tokens ID,ID,... [--chunk N] [--greedy N] [--out FILE.f32]",
     "run the forward pass on token ids; write every position's logits"},
    {"generate", realm_cmd_generate,
     "generate [MODEL.gguf] -p PROMPT [--chat] [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S]",
     "answer a prompt, streaming the text (realm generate --help for every option)"},
    {"tokenize", realm_cmd_tokenize, "tokenize MODEL.gguf [--special] [--no-bos] [--json] TEXT|-",
     "show the token ids and pieces of a text (also --decode, --batch, --bench)"},
    {"template", realm_cmd_template,
     "template MODEL.gguf|--template-file PATH [--messages FILE.json|-] [--no-generation-prompt]",
     "show a model's chat template family; render a conversation with it"},
    {"engine-bench", realm_cmd_engine_bench,
     "engine-bench MODEL.gguf [--conc 1,4,16,64] [--prompt N] [--gen N] [--shared N]",
     "measure the engine: tokens/s at several concurrencies, time to first token, shared prefix"},
    {"bench", realm_cmd_bench, "bench MODEL.gguf [-p 512] [-n 128] [-t 1,2] [-r 5]",
     "prompt and generation tokens/s (mean ± sd) and % of the memory roofline"},
    {"serve", realm_cmd_serve, "serve [--model PATH] --db PATH [--host H] [--port P] [--threads N]",
     "OpenAI-compatible HTTP/SSE + WebSocket server (realm serve --help for every option)"},
    {"tenant", realm_cmd_tenant,
     "tenant --db PATH create|list|disable|enable|key-create|key-revoke|usage|... ARGS",
     "manage tenants, API keys, quotas and usage (realm tenant for details)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: realm <command> [args]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n             realm %s\n", commands[i].name, commands[i].summary,
                commands[i].usage);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "realm: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
