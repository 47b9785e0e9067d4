/* TEMPORARY: replaced by cmd_inspect.c / cmd_synth.c / cmd_quantize.c. */
#include "cli/commands.h"
int realm_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int realm_cmd_synth(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int realm_cmd_quantize(int argc, char **argv) { (void)argc; (void)argv; return 1; }
