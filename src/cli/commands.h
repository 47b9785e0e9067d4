/*
 * cli/commands.h — the subcommands of the `realm` executable.
 *
 * Each subcommand is one function `int realm_cmd_<name>(int argc, char **argv)`
 * (argv[0] is the subcommand name) returning a process exit code: 0 success,
 * 1 failure (message already printed to stderr), 2 usage error. The table in
 * main.c drives dispatch and `realm help`.
 */
#ifndef REALM_CLI_COMMANDS_H
#define REALM_CLI_COMMANDS_H

int realm_cmd_inspect(int argc, char **argv);
int realm_cmd_synth(int argc, char **argv);
int realm_cmd_quantize(int argc, char **argv);
int realm_cmd_logits(int argc, char **argv);
int realm_cmd_generate(int argc, char **argv);
int realm_cmd_tokenize(int argc, char **argv);
int realm_cmd_template(int argc, char **argv);
int realm_cmd_engine_bench(int argc, char **argv);
int realm_cmd_bench(int argc, char **argv);
int realm_cmd_tenant(int argc, char **argv);
int realm_cmd_serve(int argc, char **argv);

#endif
