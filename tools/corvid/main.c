/* The corvid command-line tool: global options and dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "tools/corvid/cli.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* Later: certs, cluster, admin-channel. */
static const struct subcommand subcommands[] = {
    {"pki", pki_main, pki_summary},
    {"admin-channel", admin_main, admin_summary},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: corvid [--help] <command> [<args>]\n\n"
                 "Corvid's command-line tool.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nRun 'corvid <command> --help' for a command's options.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "corvid: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
